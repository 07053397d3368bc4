"""Watching a local folder for new frame files by polling its listing.

A file counts once it is complete: its size and modification time unchanged across two polls (a
writer still appending changes one of them; a file renamed into place finished is complete on the
second poll that sees it). Hidden and temporary names (``.name….tmp``, the atomic writers' and
``tame replay``'s) and names no camera network owns are ignored. A missing or unreadable folder is
"unreachable": :meth:`FolderWatcher.poll` returns nothing and the next poll tries again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class SeenFile:
    path: str
    name: str
    size: int
    mtime_ns: int
    first_seen: float  # time.time() of the first poll that listed it
    appeared: float  # when it appeared: its inode change time (a rename into place sets it), s since the epoch


@dataclass
class FolderWatcher:
    """Lists ``folder`` (recursively) on each :meth:`poll`; returns the files newly complete."""

    folder: Path
    accept: Callable[[str], bool]
    clock: Callable[[], float] = time.time
    reachable: bool = True
    _pending: dict[str, SeenFile] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)

    def _listing(self) -> dict[str, os.stat_result] | None:
        out: dict[str, os.stat_result] = {}
        try:
            stack = [self.folder]
            while stack:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False) and self.accept(entry.name):
                            try:
                                out[entry.path] = entry.stat(follow_symlinks=False)
                            except FileNotFoundError:
                                continue  # removed between listing and stat
        except (FileNotFoundError, NotADirectoryError, PermissionError, OSError):
            return None
        return out

    def poll(self) -> list[SeenFile]:
        """Files complete since the last poll (each path reported once), oldest first seen first."""
        listing = self._listing()
        self.reachable = listing is not None
        if listing is None:
            return []
        now = self.clock()
        ready = []
        for path, info in listing.items():
            if path in self._reported:
                continue
            seen = self._pending.get(path)
            if seen is not None and seen.size == info.st_size and seen.mtime_ns == info.st_mtime_ns:
                ready.append(seen)
                self._reported.add(path)
                del self._pending[path]
            else:
                first = seen.first_seen if seen else now
                self._pending[path] = SeenFile(
                    path, os.path.basename(path), info.st_size, info.st_mtime_ns, first, min(info.st_ctime, first)
                )
        for path in list(self._pending):
            if path not in listing:
                del self._pending[path]  # vanished before it was complete
        return sorted(ready, key=lambda s: (s.first_seen, s.name))

    def forget(self, path: str) -> None:
        """Report ``path`` again if it reappears (e.g. after it was replaced)."""
        self._reported.discard(path)
