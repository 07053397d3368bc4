"""The Dagster UI in a real browser: `tame ui` (`dagster dev`) on 127.0.0.1 driven by Debian's headless
Chromium through Playwright (no browser download). Everything runs from one project file, `tame.toml`,
which adds the real Gakona THEMIS camera (GAKO: a station defined nowhere else) and sets the compute
mode to `dask-local`. A month of `magnetometer` is first materialized through the CLI (`tame
materialize --config`, default shared instance); the UI, started afterwards with the same file, shows
that partition as materialized (green). Then it opens the asset graph, launches the other sample month
from the asset page, waits for that run and checks that the quicklook preview renders inline. Last, it
launches `asim_images` for GAKO × 2011-01 from the station × month partition picker; the automation
sensor then carries the new raw partition on to `asim_features` without a hand-started run, on the
file's Dask cluster. Finally a live-path commit recorded on the shared instance shows on the
`live_frames` asset page (rows of the live day, latest frame time)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tame_assets.sources.sample.generator import ensure_sample_archive
from tame_assets.warehouse.store import Warehouse

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TAME = str(Path(sys.executable).with_name("tame"))
CLI_MONTH, MONTH = "2010-12", "2011-01"  # materialized by the CLI / launched from the UI
LOCATION = "tame_assets.defs.definitions"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} not up after {timeout_s:.0f} s:\n{log.read_text()[-4000:]}")


def _is_launch_mutation(response) -> bool:
    """The GraphQL response to the launch dialog's mutation (LaunchPipelineExecution / LaunchPartitionBackfill)."""
    try:
        body = json.loads(response.request.post_data or "{}")
    except ValueError:
        return False
    return "/graphql" in response.url and str(body.get("operationName", "")).startswith("Launch")


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url + "/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


def _launched_run_id(response) -> str:
    """The run id in the launch mutation's answer (``launchPipelineExecution.run.id``)."""
    answer = json.loads(response.text())["data"]["launchPipelineExecution"]
    assert answer.get("__typename") == "LaunchRunSuccess", answer
    return answer["run"]["id"]


def _wait_for_run(url: str, run_id: str, log: Path, timeout_s: float = 600) -> float:
    """Poll the run's status until SUCCESS (seconds waited); any other end state fails with the UI's log."""
    started = time.monotonic()
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
    while (status := _graphql(url, query, {"id": run_id})["runOrError"].get("status")) != "SUCCESS":
        assert status in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED"), (run_id, status, log.read_text()[-4000:])
        assert time.monotonic() - started < timeout_s, f"run {run_id} not done after {timeout_s:.0f} s: {status}"
        time.sleep(3)
    return time.monotonic() - started


def _run_messages(url: str, run_id: str) -> str:
    query = (
        "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { ... on MessageEvent "
        "{ message } } } } }"
    )
    return "\n".join(e.get("message") or "" for e in _graphql(url, query, {"id": run_id})["logsForRun"]["events"])


@pytest.fixture()
def dagster_dev(tmp_path, real_dir):
    """A tame.toml (data root `data/` beside it, the GAKO station, compute mode dask-local), `tame
    materialize --config` of one month, then `tame ui --config` (webserver + daemon) on a free loopback
    port: the instance in <data root>/dagster_home."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; README's test command does it)")
    root = tmp_path / "data"
    ensure_sample_archive(root)
    gako = real_dir / "themis" / "cdf_gako"  # the real Gakona CDF (2011-01-06 17 UT, 23 frames) + skymap
    skymap = next(gako.glob("themis_skymap_gako_*.sav"))
    project = tmp_path / "tame.toml"
    project.write_text(
        '[storage]\ndata_root = "data"\n\n'
        f'[stations.GAKO]\nnetwork = "themis"\ncamera = "gako"\nimage_format = "cdf"\nfolder = "{gako}"\n'
        f'skymap_file = "{skymap}"\n\n'
        '[compute]\nmode = "dask-local"\nn_workers = 1\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "TAME_CONFIG")}
    cli = subprocess.run(
        [TAME, "materialize", "--select", "magnetometer", "--month", CLI_MONTH, "--config", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    port = _free_port()
    log = tmp_path / "tame_ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [TAME, "ui", "--config", str(project), "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/server_info", proc, log)
        yield f"http://127.0.0.1:{port}", root, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_launch_a_partition_from_the_ui_and_see_its_figure(dagster_dev):
    from playwright.sync_api import expect, sync_playwright

    # the UI answers in seconds when the machine is idle, far slower beside the other test worker:
    # every expectation waits up to 30 s (playwright's default is 5 s) unless it says otherwise
    expect.set_options(timeout=30_000)
    url, root, log = dagster_dev
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)

        # the CLI's materialization is in the UI: its partition is green in the asset's partitions view
        page.goto(url + "/assets/magnetometer?view=partitions")
        expect(page.get_by_text("Materialized (1)")).to_be_visible(timeout=120_000)
        page.get_by_placeholder("Filter by name").fill(CLI_MONTH)  # the list shows the newest month first
        dot = page.locator(f'[data-tooltip="{CLI_MONTH}"] + div')
        expect(dot).to_have_attribute("style", re.compile(r"--color-accent-green"), timeout=60_000)
        page.screenshot(path=str(log.with_name("ui_cli_partition.png")))
        assert "PreviewWarning" not in log.read_text() and "superseded" not in log.read_text()

        # the asset graph: the four layers, then the raw group's assets
        page.goto(url + "/asset-groups")
        for group in ("raw", "ml", "merged", "analysis"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        page.set_viewport_size(
            {"width": 2400, "height": 1800}
        )  # the group graph draws names only when not zoomed far out
        page.goto(f"{url}/locations/{LOCATION}/asset-groups/raw")
        for asset in ("asim_images", "magnetometer", "ceilometer", "oath_images"):
            expect(page.get_by_text(asset, exact=True).first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(log.with_name("ui_raw_group.png")))
        page.set_viewport_size({"width": 1400, "height": 1000})

        # launch one partition from the asset page
        page.goto(url + "/assets/magnetometer")
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize magnetometer")
        partitions = dialog.get_by_placeholder("ex: 2010-11")
        partitions.fill(MONTH)
        partitions.press("Enter")
        launch = dialog.get_by_role("button", name="Launch 1 run")
        expect(launch).to_be_enabled()
        with page.expect_response(_is_launch_mutation) as response:  # navigating on too early cancels it
            launch.click()
        assert response.value.ok and "Error" not in response.value.text(), response.value.text()[:2000]

        # wait for that run (launched by the daemon in its own process; the automation sensor launches
        # runs of its own beside it), then for its materialization on the asset page
        waited = _wait_for_run(url, _launched_run_id(response.value), log)
        print(f"the UI's run succeeded {waited:.0f} s after the launch")
        page.goto(f"{url}/assets/magnetometer?partition={MONTH}")
        preview_row = page.locator("tr", has_text=f"magnetometer_NAL_{MONTH}_preview")
        try:  # no reloads: a busy UI needs more than a few seconds to render the asset page
            expect(preview_row.first).to_be_visible(timeout=120_000)
        except AssertionError:
            page.screenshot(path=str(log.with_name("ui_no_preview.png")), full_page=True)
            raise
        expect(page.get_by_text(MONTH).first).to_be_visible(timeout=30_000)  # e.g. the quicklook's file name

        # the figure preview is shown inline (no "[Show Markdown]" click) and is a real, decoded image
        image = preview_row.first.locator(f'img[alt="magnetometer_NAL_{MONTH}"]')
        expect(image).to_be_visible()
        # decode(): resolves once the image has loaded and decoded, rejects (an error here) if it is broken;
        # visible is not loaded: a busy machine showed the element before its pixels had arrived
        complete, width, height = image.evaluate(
            "e => e.decode().then(() => [e.complete, e.naturalWidth, e.naturalHeight])"
        )
        assert complete and width >= 300 and height >= 200
        page.screenshot(path=str(log.with_name("ui_figure_preview.png")))

        # a station defined only in tame.toml, launched from the station × month partition picker
        page.goto(url + "/assets/asim_images")
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize asim_images")
        months = dialog.get_by_placeholder(re.compile(r"^ex: 2010-11"))
        months.fill(MONTH)
        months.press("Enter")
        dialog.get_by_text("Select a partition or create one").click()
        page.locator('text="GAKO" >> visible=true').first.click()  # registered by `tame ui` from the project file
        page.screenshot(path=str(log.with_name("ui_station_month_picker.png")))
        launch = dialog.get_by_role("button", name="Launch 1 run")
        expect(launch).to_be_enabled()
        with page.expect_response(_is_launch_mutation) as response:
            launch.click()
        assert response.value.ok and "Error" not in response.value.text(), response.value.text()[:2000]
        _wait_for_run(url, _launched_run_id(response.value), log)
        browser.close()

    images = Warehouse(root).sql("SELECT * FROM asim_images WHERE station = 'GAKO'")
    assert images.height == 23 and set(images["frame_index"]) == set(range(23))  # the file's 23 frames

    # no hand-started run: the automation sensor (every 60 s) requests asim_features of the new partition,
    # and the run extracts them on the Dask cluster the project file asks for
    query = "{ runsOrError { ... on Runs { results { runId status tags { key value } assetSelection { path } } } } }"
    deadline = time.monotonic() + 600
    while True:
        runs = [
            r
            for r in _graphql(url, query)["runsOrError"]["results"]
            if ["asim_features"] in [a["path"] for a in r["assetSelection"] or []]
            and {"key": "dagster/partition", "value": f"{MONTH}|GAKO"} in r["tags"]
        ]
        if runs:
            break
        assert time.monotonic() < deadline, f"no automated asim_features run for GAKO:\n{log.read_text()[-4000:]}"
        time.sleep(5)
    _wait_for_run(url, runs[0]["runId"], log)
    assert "dask-local cluster" in _run_messages(url, runs[0]["runId"])
    features = Warehouse(root).sql("SELECT * FROM asim_features WHERE station = 'GAKO'")
    assert features.height == 23

    assert Warehouse(root).months("magnetometer") == [CLI_MONTH, MONTH]
    assert (root / "figures" / f"magnetometer_NAL_{MONTH}.png").exists()

    # the live path (`tame live`) records each commit on the shared instance through its reporter: the UI
    # shows the live day's rows, latest frame and latency on the live_frames asset
    from dagster import DagsterInstance

    from tame_assets.defs.live import live_event_reporter

    instance = DagsterInstance.from_config(str(root / "dagster_home"))
    commit = {"station": "NYA", "day": "2011-01-06", "rows": 12, "failed": 1, "rows_today": 40}
    live_event_reporter(instance, every_s=0)(
        {**commit, "latest_frame_time": "2011-01-06T17:59:50", "latency_s_max": 3.2}
    )
    instance.dispose()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url + "/assets/live_frames")
        expect(page.get_by_text("rows_today").first).to_be_visible()
        expect(page.get_by_text("2011-01-06T17:59:50").first).to_be_visible()
        page.screenshot(path=str(log.with_name("ui_live_frames.png")))
        browser.close()
