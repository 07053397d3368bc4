"""CLI materializations (defs/runner.py) under concurrency and failure (issue 25): two runs of one
partition never overlap — the second waits, naming the run that holds the partition, or gives up in
one line; the shared instance's first use cannot race; a failed step (e.g. a Dask RuntimeError) is one
line saying why, with no traceback on the console."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, asset

from tame_assets.config import load_settings
from tame_assets.defs import runner
from tame_assets.defs.assets.common import monthly_partitions

FORK = multiprocessing.get_context("fork")  # children share the test's imports: no second start-up


def _hold(home: Path, key: str, run_id: str, locked, release, hold_s: float) -> None:
    with runner.partition_lock(home, key, run_id, ["asim_images"], echo=lambda _line: None):
        locked.set()
        release.wait(hold_s)


def test_a_second_run_of_a_partition_waits_naming_the_run_that_holds_it(tmp_path):
    """Ten times in a row, with real processes: the waiting side names the holder and gets the lock only
    after the holder has let it go."""
    for i in range(10):
        locked, release = FORK.Event(), FORK.Event()
        holder = FORK.Process(target=_hold, args=(tmp_path, "2010-12|NYA", f"run-{i}", locked, release, 30))
        holder.start()
        assert locked.wait(30)
        lines: list[str] = []
        FORK.Process(target=time.sleep, args=(0,)).start()  # noise: an unrelated process starting meanwhile
        releaser = FORK.Process(target=_release_later, args=(release, 0.1))
        releaser.start()
        with runner.partition_lock(tmp_path, "2010-12|NYA", f"waiter-{i}", ["asim_features"], echo=lines.append):
            assert not holder.is_alive() or release.is_set()
            record = (tmp_path / "locks" / "2010-12_NYA.lock").read_text()
            assert f'"run_id": "waiter-{i}"' in record
        holder.join(10)
        releaser.join(10)
        assert len(lines) == 1 and lines[0].startswith(
            f"· partition 2010-12|NYA is being materialized by run run-{i} (asim_images; pid {holder.pid} on "
        ), lines
        assert lines[0].endswith("; waiting for it to finish")


def _release_later(release, delay_s: float) -> None:
    time.sleep(delay_s)
    release.set()


def test_a_wait_that_runs_out_is_one_line_naming_the_holding_run(tmp_path):
    locked, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold, args=(tmp_path, "2011-01", "run-that-holds", locked, release, 30))
    holder.start()
    try:
        assert locked.wait(30)
        with pytest.raises(runner.PartitionBusy) as error:
            with runner.partition_lock(tmp_path, "2011-01", "mine", echo=lambda _line: None, wait_s=0.3):
                pass
    finally:
        release.set()
        holder.join(10)
    message = str(error.value)
    assert message.startswith("partition 2011-01 is still held by run run-that-holds (asim_images; pid ")
    assert message.endswith("after 0 s; try again when it has finished") and "\n" not in message
    with runner.partition_lock(tmp_path, "2011-01", "mine", echo=lambda _line: None, wait_s=0.3):
        pass  # free again once its holder has ended


@asset(partitions_def=monthly_partitions)
def tiny(context) -> None:
    log = LOG[0]  # set by the test before the processes fork
    with open(log, "a") as fh:
        fh.write(f"start {time.time()}\n")
    time.sleep(1.0)  # long enough for the other process to find the partition taken
    with open(log, "a") as fh:
        fh.write(f"end {time.time()}\n")


LOG: list[Path] = []


def _materialize_tiny(config: Path, queue, barrier) -> None:
    runner._asset_defs = lambda: [tiny]
    runner._with_checks = lambda: [tiny]
    settings = load_settings(config)
    runner._instance(settings)  # both open the fresh instance at once (its first use, under the instance lock)
    barrier.wait(60)  # then both materialize at once
    lines: list[str] = []
    ok = runner.materialize_selection(settings, ["tiny"], ["2010-12"], echo=lines.append, stations=["NYA"])
    queue.put((ok, lines))


@pytest.fixture()
def fast_tmp(tmp_path):
    """A folder on tmpfs when there is one (the instance's SQLite writes sync to disk: 4 s per run on a
    busy disk, 1 s on tmpfs; locking is the same)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="tame-runner-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_two_materializations_of_one_partition_at_once_run_one_after_the_other(fast_tmp, monkeypatch):
    """Real Dagster runs on one fresh shared instance (its first use included), in two processes."""
    tmp_path = fast_tmp
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    config = tmp_path / "tame.toml"
    config.write_text(f'[storage]\ndata_root = "{tmp_path / "data"}"\n')
    LOG[:] = [tmp_path / "runs.log"]
    queue, barrier = FORK.Queue(), FORK.Barrier(2)
    children = [FORK.Process(target=_materialize_tiny, args=(config, queue, barrier)) for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(30)
    assert [ok for ok, _ in results] == [True, True], results
    waited = [lines for _, lines in results if any("is being materialized by run" in line for line in lines)]
    assert len(waited) == 1, results  # the second waited for the first, naming its run
    events = [line.split() for line in LOG[0].read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end", "start", "end"]  # never overlapping
    assert float(events[1][1]) <= float(events[2][1])
    runs = DagsterInstance.from_config(str(tmp_path / "data" / "dagster_home")).get_run_records()
    assert len(runs) == 2 and all(r.dagster_run.is_success for r in runs)
    assert any(r.dagster_run.run_id in waited[0][0] for r in runs)  # the run named is a real run


@asset
def boom() -> None:
    raise RuntimeError("cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s ([compute] connect_timeout_s)")


def test_a_failed_step_is_one_line_saying_why(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(runner, "_with_checks", lambda: [boom])
    settings = load_settings(None, data_root=str(tmp_path / "data"))
    lines: list[str] = []
    assert not runner._run(settings, ["boom"], None, DagsterInstance.ephemeral(), lines.append)
    assert lines[1] == (
        "  ✗ boom failed: RuntimeError: cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s "
        "([compute] connect_timeout_s)"
    )
    console = capfd.readouterr().err  # Dagster's own console log: one line per event, no stack trace
    assert 'Execution of step "boom" failed.' in console
    assert "Traceback" not in console and "Stack Trace" not in console and 'File "' not in console
