"""Replaying a recorded night into a folder, in time order, at real time × ``speed``.

Each frame file is copied to a temporary name in the target folder and renamed into place
(:func:`tame_assets.files.atomic_path`), so a watcher never sees half a file. Frame times come
from the file names (any registered camera network); file ``i`` appears ``(t_i − t_0) / speed``
seconds after the start. ``tame replay`` and ``bench/live_replay.py`` use it.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tame_assets.config import UsageError
from tame_assets.files import atomic_path
from tame_assets.sources.networks import network_of_file


@dataclass(frozen=True)
class ReplayFrame:
    path: Path
    time: object  # datetime


@dataclass(frozen=True)
class Delivered:
    name: str
    target: Path
    frame_time: object
    appeared: float  # time.time() just after the rename


def recorded_frames(sources: Iterable[str | Path]) -> list[ReplayFrame]:
    """Frame files of ``sources`` (files, or folders searched recursively) sorted by the time in their
    names; UsageError when none is a frame file of a known network."""
    frames = []
    for source in sources:
        source = Path(source)
        candidates = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for path in candidates:
            network = network_of_file(path)
            if network is None:
                continue
            try:
                frames.append(ReplayFrame(path, network.parse_file_name(path.name).time))
            except ValueError:
                continue
    if not frames:
        raise UsageError(f"no frame files (of a known camera network) in {', '.join(map(str, sources))}")
    return sorted(frames, key=lambda f: (f.time, f.path.name))


def replay(
    frames: Sequence[ReplayFrame],
    target: str | Path,
    speed: float = 1.0,
    *,
    on_file: Callable[[Delivered, int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivered]:
    """Copy ``frames`` into ``target`` at real time × ``speed`` (``speed <= 0``: as fast as possible)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    delivered: list[Delivered] = []
    if not frames:
        return delivered
    t0, started = frames[0].time, time.monotonic()
    for i, frame in enumerate(frames):
        if stop is not None and stop():
            break
        if speed > 0:
            due = (frame.time - t0).total_seconds() / speed
            wait = due - (time.monotonic() - started)
            if wait > 0:
                sleep(wait)
        destination = target / frame.path.name
        with atomic_path(destination, fsync=False) as tmp:
            shutil.copyfile(frame.path, tmp)
        item = Delivered(frame.path.name, destination, frame.time, time.time())
        delivered.append(item)
        if on_file is not None:
            on_file(item, i + 1, len(frames))
    return delivered
