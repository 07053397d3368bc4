"""The compute engine on real Dask: a scheduler and two worker processes on 127.0.0.1 (order, retries,
a worker killed mid-run, feature extraction and a two-month materialization equal to the local path),
and a real single-node SLURM through dask-jobqueue where ``.ci/slurm-up`` could start one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from tame_assets.compute import (
    ComputeSettings,
    extract_features_distributed,
    load_compute_settings,
    open_engine,
    parse_compute,
    resolve_compute_settings,
)
from tame_assets.config import SAMPLE_MONTHS, TameSettings, load_settings

REPO = Path(__file__).resolve().parents[2]
#: Columns that legitimately differ between two data roots (absolute paths, loopback port).
ROOT_DEPENDENT = {"local_path", "url", "path", "month"}


# ----------------------------------------------------------------------------- settings (no cluster)
def test_parse_compute_accepts_the_cli_values_and_rejects_others_in_one_line(tmp_path, monkeypatch):
    base = ComputeSettings(queue="normal", cores=4, processes=2, memory="8GB")
    assert parse_compute("slurm", base).queue == "normal" and parse_compute("slurm", base).mode == "slurm"
    assert parse_compute("dask://10.0.0.5:8786").scheduler_address == "tcp://10.0.0.5:8786"
    assert parse_compute("local").is_local and not parse_compute("dask-local").is_local
    for bad, says in [
        ("slurmm", "expected one of"),
        ("dask://host", "dask://HOST:PORT"),
        ("dask://h:70000", "outside 1–65535"),
        ("dask://h:1; rm -rf /", "dask://HOST:PORT"),
    ]:
        with pytest.raises(ValueError, match=says) as err:
            parse_compute(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="walltime '1h'"):
        ComputeSettings(mode="slurm", walltime="1h")
    with pytest.raises(ValueError, match="queue 'debug; rm'"):
        ComputeSettings(mode="slurm", queue="debug; rm")

    good = tmp_path / "slurm.toml"
    good.write_text(
        '[compute]\nmode = "slurm"\nqueue = "normal"\ncores = 8\nprocesses = 8\n'
        'job_script_prologue = ["module load python/3.11", "source /shared/venv/bin/activate"]\n'
    )
    loaded = load_compute_settings(good)
    assert loaded.cores == 8 and loaded.job_script_prologue[0] == "module load python/3.11"
    assert resolve_compute_settings("pbs", good).cores == 8 and resolve_compute_settings().is_local
    assert resolve_compute_settings("", good).mode == "slurm"  # the file's mode when none is given
    project = tmp_path / "tame.toml"  # the project file's [compute] table: mode + cluster parameters inline
    project.write_text('[compute]\nmode = "dask://127.0.0.1:8786"\ncores = 8\nprocesses = 8\n')
    from_file = load_settings(project)
    assert from_file.compute_settings.mode == "dask://127.0.0.1:8786" and from_file.compute_settings.cores == 8
    assert load_settings(project, compute="local").compute_settings.is_local  # a --compute flag wins
    assert TameSettings(compute_settings_file=str(good)).compute_settings.mode == "slurm"
    assert TameSettings().compute_settings.is_local
    typo = tmp_path / "typo.toml"
    typo.write_text('mode = "slurm"\nqeue = "normal"\n')
    with pytest.raises(ValueError, match=f"{typo}: unknown key\\(s\\) qeue"):
        load_compute_settings(typo)


def test_jobqueue_scripts_carry_the_cluster_parameters():
    """The SLURM and PBS job scripts dask-jobqueue would submit hold queue, resources and prologue."""
    from tame_assets.compute.dask_engine import start_cluster

    prologue = ("module load python/3.11", "source /cluster/tame/venv/bin/activate")
    for mode, directive in [("slurm", "#SBATCH -p normal"), ("pbs", "#PBS -q normal")]:
        settings = ComputeSettings(
            mode=mode,
            queue="normal",
            cores=4,
            processes=2,
            memory="16GB",
            walltime="02:00:00",
            job_script_prologue=prologue,
            scheduler_host="127.0.0.1",
        )
        cluster = start_cluster(settings)
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
        assert script.startswith("#!") and directive in script
        assert "02:00:00" in script and all(line in script for line in prologue)
        assert "--nworkers 2" in script and "--nthreads 2" in script


def test_cli_rejects_a_bad_compute_value_before_running_anything():
    from typer.testing import CliRunner

    from tame_assets.cli import app

    result = CliRunner().invoke(app, ["materialize", "--compute", "dask://nohost", "--month", "2010-12"])
    assert result.exit_code == 2 and "dask://HOST:PORT" in result.output


def test_deploy_dagster_yaml_queues_runs_with_a_concurrency_limit(tmp_path):
    from dagster import DagsterInstance, QueuedRunCoordinator

    shutil.copy(REPO / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert [(t["key"], t["limit"]) for t in queue.tag_concurrency_limits] == [("dagster/backfill", 3)]
    finally:
        instance.dispose()


# ----------------------------------------------------------------------------- a real local Dask cluster
@pytest.fixture(scope="module")
def dask_cluster():
    """A scheduler and two single-threaded worker processes (with nannies) on 127.0.0.1."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0")
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """A data root holding a small sample archive: both sample months, 2 images a day (2 truncated), 60 OATH crops."""
    from tame_assets.sources.sample.generator import generate_sample_archive, sample_archive_dir

    root = tmp_path_factory.mktemp("small_root")
    generate_sample_archive(sample_archive_dir(root), months=SAMPLE_MONTHS, images_per_day=2, oath_images=60)
    return root


def _archive_images(root: Path) -> tuple[list[str], set[str]]:
    """(sorted image paths of the sample archive under ``root``, names of its truncated images)."""
    from tame_assets.sources.sample.generator import read_manifest, sample_archive_dir

    archive = sample_archive_dir(root)
    return sorted(str(p) for p in (archive / "asim").rglob("*.png")), set(read_manifest(archive).corrupt_images)


def _address_settings(cluster, **kw) -> ComputeSettings:
    return parse_compute(cluster.scheduler_address.replace("tcp://", "dask://"), ComputeSettings(**kw))


def _slow_square(x: int) -> int:
    time.sleep(0.05 * (x % 3))  # finish out of order
    return x * x


def _kill_worker_once(x: int, flag: str) -> int:
    """Kills its own worker process (SIGKILL, no cleanup) the first time it sees chunk 5."""
    if x == 5 and not os.path.exists(flag):
        Path(flag).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.1)
    return x * x


def _always_fails(x: int, counter: str) -> int:
    with open(counter, "a") as fh:
        fh.write("x")
    raise ValueError(f"chunk {x} is bad")


@pytest.mark.e2e
def test_map_chunks_keeps_input_order_and_reports_each_worker(dask_cluster):
    calls = []
    with open_engine(_address_settings(dask_cluster)) as engine:
        assert engine.distributed and engine.description.startswith("Dask scheduler tcp://127.0.0.1:")
        workers = set(engine.worker_addresses())
        out = engine.map_chunks(_slow_square, range(20), on_progress=lambda *a: calls.append(a))
    assert out == [x * x for x in range(20)]
    assert [c[0] for c in calls] == list(range(1, 21)) and {c[1] for c in calls} == {20}
    assert {c[2] for c in calls} == workers and len(workers) == 2  # both workers, by address


@pytest.mark.e2e
def test_a_worker_killed_mid_run_loses_no_chunk(dask_cluster, tmp_path):
    flag = tmp_path / "killed"
    with open_engine(_address_settings(dask_cluster)) as engine:
        out = engine.map_chunks(partial(_kill_worker_once, flag=str(flag)), range(12), retries=2)
        assert out == [x * x for x in range(12)]
        assert flag.exists()  # a worker process really died
        engine.client.wait_for_workers(2, timeout=60)  # the nanny restarted it
        assert int(flag.read_text()) not in engine.client.run(os.getpid).values()


@pytest.mark.e2e
def test_a_failing_chunk_is_retried_then_reported_with_its_index(dask_cluster, tmp_path):
    counter = tmp_path / "attempts"
    with open_engine(_address_settings(dask_cluster)) as engine:
        with pytest.raises(RuntimeError, match=r"chunk 1/1 failed after 2 retries: ValueError: chunk 7 is bad"):
            engine.map_chunks(partial(_always_fails, counter=str(counter)), [7], retries=2)
    assert counter.read_text() == "xxx"  # first attempt + 2 retries


@pytest.mark.e2e
def test_extract_features_on_dask_equals_the_local_path(dask_cluster, small_root):
    from tame_assets.ml.backbones import backbone_builds
    from tame_assets.ml.features import extract_features

    paths, corrupt = _archive_images(small_root)
    paths = [p for p in paths if Path(p).name not in corrupt][:38] + [p for p in paths if Path(p).name in corrupt]
    reference = extract_features(paths)
    with open_engine(_address_settings(dask_cluster)) as engine:
        chunks = []
        result = extract_features_distributed(paths, engine, chunk_frames=8, on_progress=lambda *a: chunks.append(a))
        builds = engine.client.run(backbone_builds)
    assert len(chunks) == 5 and result.extra["chunks"] == 5
    assert result.paths == reference.paths and result.precision == reference.precision
    assert result.errors == reference.errors and (result.ok == reference.ok).all()
    assert (~result.ok).sum() == len(corrupt) == 2  # the sample's truncated images, rows kept
    np.testing.assert_array_equal(result.stats, reference.stats)
    np.testing.assert_allclose(result.features[result.ok], reference.features[reference.ok], rtol=1e-4, atol=1e-4)
    assert np.isnan(result.features[~result.ok]).all()
    assert set(builds.values()) <= {0, 1}, builds  # one backbone per worker process, not one per chunk


# ----------------------------------------------------------------------------- Dagster, two months
def _table(root: Path, table: str) -> pl.DataFrame:
    from tame_assets.warehouse.store import Warehouse

    frame = Warehouse(root).sql(f"select * from {table}")
    frame = frame.drop([c for c in frame.columns if c in ROOT_DEPENDENT])
    frame = frame.with_columns(pl.col(pl.String).str.replace_all(str(root), "<root>", literal=True))
    return frame.sort(["time", "file_name"])


def _assert_same_up_to_float_rounding(local: pl.DataFrame, dask: pl.DataFrame) -> None:
    assert local.columns == dask.columns and local.height == dask.height > 0
    floats = [c for c, t in local.schema.items() if t in (pl.Float32, pl.Float64)]
    exact = [c for c in local.columns if c not in floats and c != "features"]
    assert dask.select(exact).equals(local.select(exact))
    for c in floats:
        np.testing.assert_allclose(dask[c].to_numpy(), local[c].to_numpy(), rtol=1e-5, atol=1e-6, err_msg=c)
    if "features" in local.columns:
        ok = local["features"].is_not_null()
        assert (dask["features"].is_not_null() == ok).all()
        a = np.asarray(local.filter(ok)["features"].to_list())
        b = np.asarray(dask.filter(ok)["features"].to_list())
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


@pytest.mark.e2e
def test_two_months_materialized_on_dask_equal_a_local_run(dask_cluster, small_root, tmp_path, capfd):
    """asim_images → asim_features → asim_predictions of both sample months through the real assets,
    once in-process and once on the Dask cluster (its scheduler address in the resource config)."""
    from tame_assets.defs.definitions import all_assets
    from tame_assets.defs.resources import TameResource
    from tame_assets.ml.classifier import fit_oath_classifier
    from tame_assets.ml.tables import feature_matrix
    from tame_assets.sources.sample.generator import sample_archive_dir
    from tame_assets.warehouse.store import Warehouse

    local_root, dask_root = tmp_path / "local", tmp_path / "dask"
    for root in (local_root, dask_root):
        shutil.copytree(sample_archive_dir(small_root), sample_archive_dir(root))
    settings_file = tmp_path / "compute.toml"
    settings_file.write_text("chunk_frames = 16\n")
    address = dask_cluster.scheduler_address.replace("tcp://", "dask://")

    def run(root, selection, month=None, **compute):
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("stations", ["NYA"])
        resource = TameResource(
            data_root=str(root), benchmark_backbones=["efficientnet_lite0"], feature_kinds=["logits"], **compute
        )
        result = materialize(
            all_assets,
            selection=selection,
            partition_key=month and f"{month}|NYA",
            resources={"tame": resource},
            instance=instance,
        )
        assert result.success

    # the paper's linear SVM on the sample's OATH features (what oath_classifier fits, without the C search)
    run(local_root, ["oath_images", "oath_features"])
    X, y = feature_matrix(Warehouse(local_root).read_partition("oath_features", None))
    classifier, _ = fit_oath_classifier(X, y, C=1e-3)
    for root in (local_root, dask_root):
        classifier.save(root / "models" / "oath_classifier")

    monthly = ["asim_images", "asim_features", "asim_predictions"]
    for month in SAMPLE_MONTHS:
        run(local_root, monthly, month)
    capfd.readouterr()
    for month in SAMPLE_MONTHS:
        run(dask_root, monthly, month, compute=address, compute_settings_file=str(settings_file))
    text = capfd.readouterr().err  # Dagster's console log of the Dask runs
    for table in ("asim_features", "asim_predictions"):
        _assert_same_up_to_float_rounding(_table(local_root, table), _table(dask_root, table))
    assert _table(dask_root, "asim_predictions")["pred"].null_count() == 2  # the truncated images: rows kept
    assert f"frames on Dask scheduler {dask_cluster.scheduler_address}" in text
    assert "asim_features NYA 2010-12: chunk 1/" in text and "done on tcp://127.0.0.1:" in text
    assert "asim_predictions NYA 2011-01: chunk 4/4 done on tcp://127.0.0.1:" in text  # 62 rows, 16 per chunk
    assert "chunks per worker" in text


# ----------------------------------------------------------------------------- a real SLURM (dask-jobqueue)
def _slurm_ready() -> str:
    """'' when a SLURM node is idle here, else why not."""
    if not shutil.which("sinfo"):
        return "sinfo not found (SLURM not installed; .ci/slurm-up installs and starts it as root)"
    try:
        state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    states = state.stdout.split()
    if state.returncode or not {"idle", "mix"} & set(states):
        return f"no idle SLURM node (sinfo: {state.stdout.strip() or state.stderr.strip()!r})"
    return ""


@pytest.mark.e2e
def test_extract_features_through_slurm_jobs_equals_local(small_root, tmp_path):
    reason = _slurm_ready()
    if reason:
        pytest.skip(reason)
    from tame_assets.ml.features import extract_features

    paths = _archive_images(small_root)[0][:12]
    settings = ComputeSettings(
        mode="slurm",
        queue="debug",
        cores=1,
        processes=1,
        memory="2GB",
        walltime="00:10:00",
        n_workers=2,
        python=sys.executable,
        scheduler_host="127.0.0.1",
        local_directory=str(tmp_path),
        job_script_prologue=(f"export PYTHONPATH={REPO}",),
        worker_timeout_s=120,
        job_extra_directives=(f"--output={tmp_path}/slurm-%j.out",),  # job logs out of the working directory
    )
    reference = extract_features(paths)
    with open_engine(settings) as engine:
        assert engine.description.startswith("slurm cluster tcp://127.0.0.1:")
        jobs = engine.map_chunks(partial(os.getenv, "SLURM_JOB_ID"), [None, None])
        result = extract_features_distributed(paths, engine, chunk_frames=4)
    assert all(j and j.isdigit() for j in jobs), jobs  # the chunks ran inside SLURM jobs
    assert result.extra["chunks"] == 3 and result.paths == reference.paths and result.errors == reference.errors
    np.testing.assert_allclose(result.features, reference.features, rtol=1e-4, atol=1e-4)
    # the cluster closed its jobs on exit
    deadline = time.time() + 30
    while time.time() < deadline:
        queue = subprocess.run(["squeue", "-h", "-j", ",".join(set(jobs))], capture_output=True, text=True).stdout
        if not queue.strip():
            break
        time.sleep(1)
    assert not queue.strip(), queue


# ----------------------------------------------------------------------------- failures that say why (issue 25)
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_fails_fast_naming_address_and_reason():
    """Nothing listens on the port: 65 s and no reason before; now connect_timeout_s and one line."""
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(RuntimeError) as error:
        with open_engine(parse_compute(f"dask://127.0.0.1:{port}", ComputeSettings(connect_timeout_s=2))):
            pass
    elapsed = time.monotonic() - started
    message = str(error.value)
    assert message.startswith(
        f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 2 s ([compute] connect_timeout_s): "
    )
    assert ("refused" in message.lower() or "timed out" in message.lower()) and "\n" not in message, message
    assert elapsed < 10, elapsed


def test_connect_timeout_is_a_compute_setting(tmp_path):
    (tmp_path / "tame.toml").write_text('[compute]\nmode = "dask://10.0.0.5:8786"\nconnect_timeout_s = 3.5\n')
    assert load_settings(tmp_path / "tame.toml").compute_settings.connect_timeout_s == 3.5
    with pytest.raises(Exception, match="connect_timeout_s must be > 0"):
        ComputeSettings(connect_timeout_s=0)


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_a_run_whose_only_worker_is_gone_ends_with_one_line():
    """The only worker leaves before the chunks run: they used to wait for one forever, silently."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0")
    try:
        settings = _address_settings(cluster, worker_timeout_s=3)
        with open_engine(settings) as engine:
            assert engine.map_chunks(_slow_square, range(3)) == [0, 1, 4]
            cluster.scale(0)
            deadline = time.monotonic() + 60
            while engine.worker_addresses() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert engine.worker_addresses() == []
            started = time.monotonic()
            with pytest.raises(RuntimeError) as error:
                engine.map_chunks(_slow_square, range(4))
            elapsed = time.monotonic() - started
    finally:
        cluster.close()
    message = str(error.value)
    assert message.startswith(
        f"no Dask worker left on Dask scheduler {cluster.scheduler_address} for 3 s "
        "([compute] worker_timeout_s); 0/4 chunks done"
    ), message
    assert "\n" not in message and 3 <= elapsed < 20, elapsed


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("deaths", [1, 99])
def test_a_worker_lost_at_start_up_is_retried_once_or_explained(tmp_path, monkeypatch, deaths):
    """A worker killed while it is set up gave a raw CommClosedError from register_plugin."""
    from distributed import WorkerPlugin

    from tame_assets.compute import dask_engine as module

    class DiesWhileSetUp(WorkerPlugin):  # defined here: pickled by value, workers need not import this module
        def __init__(self, n: int):
            self.flag = str(tmp_path / "deaths")

        def setup(self, worker) -> None:
            flag = Path(self.flag)
            if len(flag.read_text() if flag.exists() else "") < deaths:
                with open(flag, "a") as fh:
                    fh.write("x")
                os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(module, "TorchThreads", DiesWhileSetUp)
    settings = ComputeSettings(mode="dask-local", n_workers=1, worker_timeout_s=20)
    if deaths == 1:
        with open_engine(settings) as engine:
            assert engine.map_chunks(_slow_square, range(4)) == [0, 1, 4, 9]
        assert (tmp_path / "deaths").read_text() == "x"
        return
    with pytest.raises(RuntimeError) as error:
        with open_engine(settings):
            pass
    message = str(error.value)
    assert "\n" not in message and "CommClosedError" not in type(error.value).__name__
    assert "was lost while starting, twice" in message or "no Dask worker joined" in message, message
