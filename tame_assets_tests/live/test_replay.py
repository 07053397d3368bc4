import datetime as dt
import shutil
import threading
import time

import pytest

from tame_assets.config import UsageError
from tame_assets.live.replay import recorded_frames, replay
from tame_assets.live.watch import FolderWatcher
from tame_assets.sources.networks import network_of_file


def renamed(frames, folder, seconds):
    """Copies of ``frames`` named ``seconds`` apart from 2010-12-29 20:00 (UiO names), in reverse order on disk."""
    out = []
    for i, frame in enumerate(frames):
        when = dt.datetime(2010, 12, 29, 20) + dt.timedelta(seconds=seconds * i)
        target = folder / f"nya4_{when:%Y%m%d_%H%M%S}_5577_cal.png"
        shutil.copyfile(frame, target)
        out.append(target)
    return out


def test_replay_plays_in_time_order_at_speed_and_the_watcher_never_sees_half_a_file(night_frames, tmp_path):
    source = tmp_path / "night"
    (source / "b").mkdir(parents=True)
    made = renamed(night_frames[:4], source / "b", 10)
    (source / "notes.txt").write_text("not a frame")
    frames = recorded_frames([source])
    assert [f.path for f in frames] == made
    watch = tmp_path / "watch"
    watcher = FolderWatcher(watch, lambda name: network_of_file(name) is not None)
    seen, stop = [], threading.Event()

    def poll():
        while not stop.is_set():
            for item in watcher.poll():
                seen.append((item.name, item.size))
            time.sleep(0.002)

    thread = threading.Thread(target=poll)
    thread.start()
    started = time.monotonic()
    delivered = replay(frames, watch, speed=100)  # 10 s apart → 0.1 s apart
    elapsed = time.monotonic() - started
    time.sleep(0.05)
    stop.set()
    thread.join()
    assert 0.3 <= elapsed < 2.0
    assert [d.name for d in delivered] == [p.name for p in made]
    assert sorted(p.name for p in watch.iterdir()) == [p.name for p in made]  # no temporary file left
    assert sorted(seen) == sorted((p.name, p.stat().st_size) for p in made)  # each once, complete


def test_replay_of_nothing_is_a_usage_error(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(UsageError, match="no frame files"):
        recorded_frames([tmp_path])
