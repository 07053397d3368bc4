"""The code location reads the project file: the UI's launches, schedules and sensors run with tame.toml's
settings (the file named by $TAME_CONFIG, as `tame ui` passes it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json
from tame_assets.defs.definitions import defs
tame = defs.resources["tame"]
settings = tame.settings
print(json.dumps({"data_root": tame.data_root, "config_file": tame.config_file, "backbone": tame.backbone,
                  "stations": settings.station_table().codes, "compute": settings.compute_settings.mode,
                  "n_workers": settings.compute_settings.n_workers}))
"""


def test_definitions_resource_carries_the_files_settings(tmp_path):
    project = tmp_path / "tame.toml"
    project.write_text(
        '[storage]\ndata_root = "root"\n[model]\nbackbone = "efficientnet_lite1"\n'
        '[compute]\nmode = "dask-local"\nn_workers = 3\n'
        '[stations.GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\n'
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}, "TAME_CONFIG": str(project)}
    run = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=elsewhere, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen == {
        "data_root": str(tmp_path / "root"),
        "config_file": str(project),
        "backbone": "efficientnet_lite1",
        "stations": ["NYA", "GILL", "GAKO"],
        "compute": "dask-local",
        "n_workers": 3,
    }
    # without a project file: the defaults (./data of the code server's working directory)
    env.pop("TAME_CONFIG")
    run = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=elsewhere, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["config_file"] == "" and seen["stations"] == ["NYA", "GILL"] and seen["compute"] == "local"
