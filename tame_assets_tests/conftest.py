"""Shared fixtures: the developers' real data folder, the sample archive and loopback HTTP servers
(with a test-only fault-injecting handler)."""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# pytest-xdist workers share the cores: each gets cores / workers BLAS, OpenMP and torch threads
# (set before numpy and torch load; child processes inherit it), or two workers with two threads
# each oversubscribe a 2-core machine. Not set without xdist, nor where the caller chose a number.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_variable, str(max(1, (os.cpu_count() or 1) // _WORKERS)))

from tame_assets.sources.sample.server import ArchiveRequestHandler, server_url, start_server  # noqa: E402

os.environ.setdefault("TZ", "UTC")

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL = SHARED / "data" / "real"
E2E = Path(__file__).resolve().parent / "e2e"


def pytest_addoption(parser):
    parser.addoption(
        "--fresh-clone",
        action="store_true",
        help="also run the fresh_clone test (clones the repo and runs .ci/run: install + demo + suite)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """Let pytest keep the assertion-rewritten test modules it compiles while collecting
    (``__pycache__/*-pytest-*.pyc``), even where ``PYTHONDONTWRITEBYTECODE`` is set, as on this
    machine: otherwise every run and each xdist worker rewrites ~90 test modules again (~2 s each).
    Only during collection; the setting is restored for the tests and the processes they start."""
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, False
    try:
        return (yield)
    finally:
        sys.dont_write_bytecode = saved


@pytest.hookimpl(tryfirst=True)  # before -m selection, so `-m "not e2e"` sees the markers added here
def pytest_collection_modifyitems(config, items):
    """Every test under ``e2e/`` is ``e2e``; ``fresh_clone`` tests are deselected (not skipped) without
    ``--fresh-clone``. Longest first, so that xdist starts the long chains at once and the short tests
    fill in around them instead of one long test running alone at the end: the browser scenario
    (~4 min, mostly waiting on `dagster dev`'s processes), then ``heavy`` files (the shared
    materialized root's, ~6 min: on the other worker, as xdist gives a worker whose file has ≤ 2 tests
    left the next file at once), then the other end-to-end tests, then the rest.
    (``--no-loadscope-reorder`` in pyproject.toml keeps this order: by default ``--dist loadfile``
    sorts files by their number of tests, which put these one-test files last.)"""
    keep, deselected = [], []
    for item in items:
        if E2E in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("fresh_clone") and not config.getoption("--fresh-clone"):
            deselected.append(item)
        else:
            keep.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = sorted(keep, key=_start_order)  # stable: collection order within each rank


def _start_order(item) -> int:
    for rank, marker in enumerate(("browser", "heavy", "e2e")):
        if item.get_closest_marker(marker):
            return rank
    return 3


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` next to the project (real instrument files); tests using it skip when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent (only developers' machines and CI have ../shared)")
    return SHARED


@pytest.fixture(scope="session")
def real_dir(shared_dir) -> Path:
    """``../shared/data/real`` (real instrument files); tests using it skip when it is absent."""
    if not REAL.is_dir():
        pytest.skip(f"real data folder {REAL} is absent (only developers' machines and CI have ../shared)")
    return REAL


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory) -> Path:
    """The default sample archive, generated once per test session."""
    from tame_assets.sources.sample.generator import ensure_sample_archive

    return ensure_sample_archive(tmp_path_factory.mktemp("sample_root"))


@pytest.fixture(scope="session")
def small_classifier(sample_archive, tmp_path_factory):
    """(model folder, metrics) of a six-class SVM fitted on 12 sample-OATH images per class."""
    from tame_assets.ml.classifier import fit_oath_classifier
    from tame_assets.ml.features import extract_features
    from tame_assets.sources.http import HttpClient
    from tame_assets.sources.oath import fetch_oath

    root = tmp_path_factory.mktemp("oath")
    oath = fetch_oath(HttpClient(), (sample_archive / "oath" / "oath_v1.1_sample.tgz").as_uri(), root)
    oath = oath.group_by("label", maintain_order=True).head(12)
    result = extract_features(oath["path_rotated"].to_list(), oath=True)
    clf, metrics = fit_oath_classifier(result.features, oath["label"].to_numpy(), C=1e-3)
    path = clf.save(root / "model")
    return path, metrics


@pytest.fixture()
def sample_image_folder(sample_archive, tmp_path):
    """Factory: ``sample_image_folder(n)`` → a fresh folder holding copies of n sample all-sky PNGs."""
    import shutil

    def make(n: int) -> Path:
        folder = tmp_path / "imgs"
        folder.mkdir()
        for p in sorted((sample_archive / "asim").rglob("*.png"))[:n]:
            shutil.copy(p, folder / p.name)
        return folder

    return make


class FaultInjectingHandler(ArchiveRequestHandler):
    """Test-only faults, per server, keyed by URL path in ``server.faults``:

    - ``("status", code, n)``: the first ``n`` requests get HTTP ``code`` (e.g. 500, 429);
    - ``("drop", fraction, n)``: the first ``n`` responses announce the full Content-Length, send
      ``fraction`` of the body and close the connection;
    - ``("slow", seconds)``: every response waits ``seconds`` before answering;
    - ``("ignore_range",)``: ``Range`` headers are ignored (always 200 with the whole file);
    - ``("unsized", fraction, n)``: the first ``n`` responses are a 200 without Content-Length (the
      closed connection ends the body) carrying only ``fraction`` of the file;
    - ``("drip", seconds)``: the whole Content-Length is announced, then one byte every ``seconds``;
    - ``("gzip",)``: the body is sent gzip-compressed (``Content-Encoding: gzip``) whatever the request's
      ``Accept-Encoding`` says.

    Every request is logged in ``server.requests`` as (path, Range header or None).
    """

    def do_GET(self):
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.requests.append((path, self.headers.get("Range")))
            n = sum(1 for p, _ in self.server.requests if p == path)
        fault = self.server.faults.get(path, ("none",))
        if fault[0] == "status" and n <= fault[2]:
            self.send_response(fault[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault[0] == "slow":
            time.sleep(fault[1])
        if fault[0] in ("drop", "unsized") and n <= fault[2]:
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            if fault[0] == "drop":
                self.send_header("Content-Length", str(len(data)))
            else:  # no length: the closed connection ends the body
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: int(len(data) * fault[1])])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault[0] in ("drip", "gzip"):
            import gzip

            data = Path(self.translate_path(self.path)).read_bytes()
            body = gzip.compress(data) if fault[0] == "gzip" else data
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if fault[0] == "gzip":
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            step = len(body) if fault[0] == "gzip" else 1
            try:
                for start in range(0, len(body), step):
                    self.wfile.write(body[start : start + step])
                    self.wfile.flush()
                    if fault[0] == "drip":
                        time.sleep(fault[1])
            except OSError:  # the client gave up
                self.close_connection = True
            return
        if fault[0] == "ignore_range" and "Range" in self.headers:
            del self.headers["Range"]
        super().do_GET()


@dataclass
class Served:
    """A running loopback server: its base URL, fault table and request log."""

    url: str
    server: object

    @property
    def faults(self) -> dict:
        return self.server.faults

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self.server.requests

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.server.requests if p == path)


@pytest.fixture()
def loopback_server():
    """Factory: ``loopback_server(root, handler=FaultInjectingHandler) -> Served``; stopped at teardown."""
    import threading

    servers = []

    def start(root: Path, handler=FaultInjectingHandler) -> Served:
        server = start_server(root, handler=handler)
        server.faults, server.requests, server.lock = {}, [], threading.Lock()
        servers.append(server)
        return Served(server_url(server), server)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
