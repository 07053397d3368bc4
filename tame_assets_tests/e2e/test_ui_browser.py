"""The Dagster UI in a real browser: `tame ui` (`dagster dev`) on 127.0.0.1 driven by Debian's headless
Chromium through Playwright (no browser download). A month of `magnetometer` is first materialized
through the CLI (`tame materialize`, default shared instance); the UI, started afterwards on the same
data root, shows that partition as materialized (green). Then it opens the asset graph, launches the
other sample month from the asset page, waits for the run to succeed and checks that the quicklook
figure preview in the materialization metadata renders as an image."""

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


def _runs(url: str) -> list:
    """(run id, status) of every run, from the webserver's GraphQL API (for failure messages)."""
    query = "{ runsOrError { ... on Runs { results { runId status } } } }"
    request = urllib.request.Request(
        url + "/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]["runsOrError"].get("results", [])


@pytest.fixture()
def dagster_dev(tmp_path):
    """`tame materialize` of one month, then `tame ui` (webserver + daemon) on a free loopback port,
    both with their defaults: the instance in <data root>/dagster_home."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; README's test command does it)")
    root = tmp_path / "data"
    ensure_sample_archive(root)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "TAME_CONFIG")}
    cli = subprocess.run(
        [TAME, "materialize", "--select", "magnetometer", "--month", CLI_MONTH, "--data-root", str(root)],
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
            [TAME, "ui", "--data-root", str(root), "--port", str(port)],
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

        # wait for the run (launched by the daemon in its own process; the newest run is the UI's, the
        # CLI's run is recorded in the same instance), then for its materialization on the asset page
        started, deadline = time.monotonic(), time.monotonic() + 600
        while len(statuses := [r["status"] for r in _runs(url)]) < 2 or statuses[0] != "SUCCESS":
            assert statuses[0] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED"), (statuses, log.read_text()[-4000:])
            assert time.monotonic() < deadline, f"run not done after 600 s: {statuses}\n{log.read_text()[-4000:]}"
            time.sleep(3)
        assert statuses == ["SUCCESS", "SUCCESS"]
        print(f"the UI's run succeeded {time.monotonic() - started:.0f} s after the launch")
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
        complete, width, height = image.evaluate("e => [e.complete, e.naturalWidth, e.naturalHeight]")
        assert complete and width >= 300 and height >= 200
        page.screenshot(path=str(log.with_name("ui_figure_preview.png")))
        browser.close()

    assert Warehouse(root).months("magnetometer") == [CLI_MONTH, MONTH]
    assert (root / "figures" / f"magnetometer_NAL_{MONTH}.png").exists()
