"""A 4-month backfill of one station: one run per station × month partition, all four at once, each
with Dagster's multiprocess executor (one process per step) on a shared instance and data root — no
DuckDB lock error, and the same tables as a sequential in-process run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import polars as pl
from dagster import DagsterInstance, materialize

from tame_assets.defs.definitions import all_assets
from tame_assets.defs.resources import TameResource
from tame_assets.sources.sample.generator import generate_sample_archive, sample_archive_dir
from tame_assets.warehouse.store import Warehouse

MONTHS = ["2010-11", "2010-12", "2011-01", "2011-02"]
SELECTION = ["asim_images", "asim_features"]
STATION = "NYA"
#: Columns that legitimately differ between two data roots (absolute paths, loopback port).
ROOT_DEPENDENT = {"local_path", "url", "path", "month"}

JOB_FILE = """
from dagster import Definitions, define_asset_job, multiprocess_executor
from tame_assets.config import load_settings
from tame_assets.defs.definitions import all_assets
from tame_assets.defs.resources import TameResource

executor = multiprocess_executor.configured({{"max_concurrent": 2}})
backfill = define_asset_job("backfill", selection={selection!r}, executor_def=executor)
tame = TameResource.from_settings(load_settings())
defs = Definitions(assets=all_assets, jobs=[backfill], resources={{"tame": tame}})
"""


def _table(root, table: str) -> pl.DataFrame:
    """The table sorted, without root-dependent columns, the root in messages replaced by ``<root>``."""
    frame = Warehouse(root).sql(f"select * from {table}")
    frame = frame.drop([c for c in frame.columns if c in ROOT_DEPENDENT])
    frame = frame.with_columns(pl.col(pl.String).str.replace_all(str(root), "<root>", literal=True))
    return frame.sort(["time", *[c for c in ("file_name",) if c in frame.columns]])


def test_four_month_backfill_in_parallel_equals_sequential(tmp_path):
    seq_root, par_root = tmp_path / "sequential", tmp_path / "parallel"
    generate_sample_archive(sample_archive_dir(seq_root), months=MONTHS, images_per_day=1)
    shutil.copytree(sample_archive_dir(seq_root), sample_archive_dir(par_root))

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("stations", [STATION])
    for month in MONTHS:  # reference: one in-process run after the other
        result = materialize(
            all_assets,
            selection=SELECTION,
            partition_key=f"{month}|{STATION}",
            resources={"tame": TameResource(data_root=str(seq_root))},
            instance=instance,
        )
        assert result.success

    job_file = tmp_path / "backfill_defs.py"
    job_file.write_text(JOB_FILE.format(selection=SELECTION))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shared = DagsterInstance.from_config(str(home))  # create its storage once, not in four racing processes
    shared.add_dynamic_partitions("stations", [STATION])
    shared.dispose()
    project = tmp_path / "tame.toml"  # every step process reads the same project file ($TAME_CONFIG)
    project.write_text(f'[storage]\ndata_root = "{par_root}"\n')
    env = {**os.environ, "DAGSTER_HOME": str(home), "TAME_CONFIG": str(project)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagster",
                "job",
                "execute",
                "-f",
                str(job_file),
                "-a",
                "defs",
                "-j",
                "backfill",
                "--tags",
                json.dumps(
                    {
                        "dagster/partition": f"{month}|{STATION}",
                        "dagster/partition/month": month,
                        "dagster/partition/station": STATION,
                    }
                ),
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for month in MONTHS
    ]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(MONTHS), "\n\n".join(logs)[-5000:]
    for log in logs:
        assert "multiprocess" in log.lower()  # really one process per step
        assert "lock" not in log.lower() or "error" not in log.lower(), log[-3000:]

    par = Warehouse(par_root)
    for table in SELECTION:
        assert par.months(table) == MONTHS
        expected, got = _table(seq_root, table), _table(par_root, table)
        assert got.height > 0
        assert got.equals(expected), table
