"""HttpClient against real loopback servers (with injected faults) and the loopback server itself."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time

import numpy as np
import pytest
import requests

from tame_assets.files import temp_name
from tame_assets.sources.http import DownloadError, HttpClient, RefreshPolicy, meta_path, sweep_stale_partials
from tame_assets.sources.sample.server import parse_range
from tame_assets.sources.uio_asi import parse_listing

PAYLOAD = np.random.default_rng(1).bytes(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture()
def served(tmp_path, loopback_server):
    root = tmp_path / "www"
    (root / "sub dir").mkdir(parents=True)
    (root / "blob.bin").write_bytes(PAYLOAD)
    (root / "sub dir" / "a b.txt").write_text("hello")
    return loopback_server(root)


def fast(**kw) -> HttpClient:
    return HttpClient(backoff_s=0.01, **kw)


# ----------------------------------------------------------------------------- retries and errors
@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_after_server_errors(served, tmp_path, status):
    served.faults["/blob.bin"] = ("status", status, 2)
    result = fast().download(f"{served.url}/blob.bin", tmp_path / "out" / "blob.bin", sha256=SHA)
    assert result.path.read_bytes() == PAYLOAD and result.sha256 == SHA and not result.resumed
    assert served.count("/blob.bin") == 3


def test_gives_up_after_retries_naming_url_and_status(served, tmp_path):
    served.faults["/blob.bin"] = ("status", 500, 99)
    with pytest.raises(DownloadError, match=rf"{served.url}/blob.bin: HTTP 500 \(gave up after 3 attempts") as err:
        fast(retries=2).download(f"{served.url}/blob.bin", tmp_path / "x")
    assert err.value.status == 500 and served.count("/blob.bin") == 3
    assert not (tmp_path / "x").exists()


def test_404_names_url_and_is_not_retried(served, tmp_path):
    with pytest.raises(DownloadError, match=rf"^{served.url}/nothing.bin: HTTP 404") as err:
        fast().download(f"{served.url}/nothing.bin", tmp_path / "x")
    assert err.value.status == 404 and served.count("/nothing.bin") == 1
    with pytest.raises(DownloadError, match="HTTP 404"):
        fast().get_text(f"{served.url}/nothing.txt")


def test_timeout_is_retried_then_reported(served, tmp_path):
    served.faults["/blob.bin"] = ("slow", 1.0)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"blob.bin: .*gave up after 2 attempts.*ReadTimeout"):
        fast(timeout=(1, 0.2), retries=1).download(f"{served.url}/blob.bin", tmp_path / "x")
    assert served.count("/blob.bin") == 2 and time.monotonic() - t0 < 1.5  # did not wait for the server


def test_connection_refused_is_a_download_error(tmp_path):
    with socket_closed_port() as port:
        with pytest.raises(DownloadError, match=rf"127.0.0.1:{port}/x.bin: .*ConnectionError"):
            fast(retries=1).get_bytes(f"http://127.0.0.1:{port}/x.bin")


class socket_closed_port:
    """A port on 127.0.0.1 with nothing listening."""

    def __enter__(self) -> int:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        return self.port

    def __exit__(self, *exc):
        return False


# ----------------------------------------------------------------------------- resume and verification
def test_resumes_after_dropped_connection_with_range(served, tmp_path):
    served.faults["/blob.bin"] = ("drop", 0.4, 1)
    result = fast().download(f"{served.url}/blob.bin", tmp_path / "out" / "blob.bin", sha256=SHA)
    assert result.path.read_bytes() == PAYLOAD and result.resumed and result.bytes == len(PAYLOAD)
    ranges = [r for p, r in served.requests if p == "/blob.bin"]
    assert ranges[0] is None and ranges[1] is not None
    offset = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset < len(PAYLOAD)  # the second request asked only for the rest
    assert not (tmp_path / "out" / "blob.bin.part").exists()


def test_get_bytes_retries_a_cut_off_body(served):
    served.faults["/blob.bin"] = ("drop", 0.5, 1)
    assert fast().get_bytes(f"{served.url}/blob.bin") == PAYLOAD and served.count("/blob.bin") == 2


def test_resume_against_server_ignoring_range(served, tmp_path):
    served.faults["/blob.bin"] = ("ignore_range",)
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:1000] + b"garbage")  # stale partial file
    result = fast().download(f"{served.url}/blob.bin", dest, sha256=SHA)
    assert result.path.read_bytes() == PAYLOAD and not result.resumed  # 200: started from scratch


def test_partial_file_is_completed_with_206(served, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:123_456])
    etag = requests.head(f"{served.url}/blob.bin", timeout=5).headers["ETag"]
    meta_path(dest.with_name("blob.bin.part")).write_text(json.dumps({"etag": etag}))
    served.requests.clear()
    result = fast().download(f"{served.url}/blob.bin", dest)
    assert result.resumed and dest.read_bytes() == PAYLOAD
    assert served.requests == [("/blob.bin", "bytes=123456-")]


def test_partial_file_of_unknown_version_is_not_resumed(served, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(b"x" * 123_456)  # no validators: from which version?
    result = fast().download(f"{served.url}/blob.bin", dest)
    assert not result.resumed and dest.read_bytes() == PAYLOAD and served.requests == [("/blob.bin", None)]


def _replace_remote(served_root, data: bytes) -> None:
    path = served_root / "blob.bin"
    before = path.stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))  # a later version, even on coarse clocks


def test_resumed_download_of_a_changed_remote_file_restarts_instead_of_stitching(served, tmp_path):
    served.faults["/blob.bin"] = ("drop", 0.4, 1)
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match="connection lost"):
        fast(retries=0).download(f"{served.url}/blob.bin", dest)
    assert dest.with_name("blob.bin.part").stat().st_size > 0  # the partial copy of version 1
    new = PAYLOAD[::-1]
    _replace_remote(tmp_path / "www", new)
    result = fast().download(f"{served.url}/blob.bin", dest)
    assert dest.read_bytes() == new and not result.resumed


def test_revalidation_keeps_an_unchanged_file_and_fetches_a_changed_one(served, tmp_path):
    dest = tmp_path / "blob.bin"
    fast().download(f"{served.url}/blob.bin", dest)
    assert json.loads(meta_path(dest).read_text())["etag"]
    same = fast().download(f"{served.url}/blob.bin", dest, revalidate=True)
    assert same.skipped and same.revalidated and served.count("/blob.bin") == 2
    grown = PAYLOAD + b"more records"
    _replace_remote(tmp_path / "www", grown)
    assert fast().download(f"{served.url}/blob.bin", dest).skipped  # without revalidation: kept as is
    fresh = fast().download(f"{served.url}/blob.bin", dest, revalidate=True)
    assert not fresh.skipped and dest.read_bytes() == grown and fresh.bytes == len(grown)


def test_file_without_validators_is_fetched_again_on_revalidation(served, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"an old partial copy")  # e.g. downloaded by an earlier version
    result = fast().download(f"{served.url}/blob.bin", dest, revalidate=True)
    assert not result.skipped and dest.read_bytes() == PAYLOAD


def test_body_without_length_cut_short_is_completed_not_accepted(served, tmp_path):
    served.faults["/blob.bin"] = ("unsized", 0.3, 1)
    dest = tmp_path / "blob.bin"
    result = fast().download(f"{served.url}/blob.bin", dest)
    assert dest.read_bytes() == PAYLOAD and result.resumed


def test_body_without_length_that_cannot_be_confirmed_is_refused(served, tmp_path):
    served.faults["/blob.bin"] = ("unsized", 0.3, 99)
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match="without Content-Length ended after"):
        fast(retries=2).download(f"{served.url}/blob.bin", dest)
    assert not dest.exists()


def test_stale_partials_of_killed_writers_are_swept(tmp_path):
    old, young = tmp_path / "a" / "x.png.part", tmp_path / "b" / temp_name("y.tab")
    old_temp, not_ours = tmp_path / "a" / temp_name("x.png.meta.json"), tmp_path / "a" / "notes.tmp"
    for path in (old, young, old_temp, not_ours):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\0" * 1000)
    meta_path(old).write_text("{}")
    for path in (old, old_temp, not_ours):
        os.utime(path, (time.time() - 2 * 86400,) * 2)
    assert sweep_stale_partials(tmp_path) == sorted([old, old_temp])
    assert not old.exists() and not meta_path(old).exists() and young.exists() and not_ours.exists()


def test_a_symlink_at_the_partial_name_is_not_followed(served, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    dest = tmp_path / "blob.bin"
    part = dest.with_name("blob.bin.part")
    part.symlink_to(victim)
    meta_path(part).write_text(json.dumps({"etag": '"planted"'}))  # looks resumable
    with pytest.raises(OSError, match="blob.bin.part"):
        fast(retries=0).download(f"{served.url}/blob.bin", dest)
    assert victim.read_bytes() == b"precious" and not dest.exists()


def test_refresh_policy_covers_current_and_previous_month_by_default():
    today = dt.date(2026, 3, 5)
    policy = RefreshPolicy(today=today)
    assert policy.applies(dt.date(2026, 3, 1)) and policy.applies(dt.date(2026, 2, 1))
    assert not policy.applies(dt.date(2026, 1, 31))
    assert RefreshPolicy(refresh_days=10, today=today).applies(dt.date(2026, 2, 24))
    assert not RefreshPolicy(refresh_days=10, today=today).applies(dt.date(2026, 2, 23))
    assert not RefreshPolicy(refresh_days=0, today=today).applies(today)
    with pytest.raises(ValueError, match="refresh_days"):
        RefreshPolicy(refresh_days=-1)


def test_complete_part_file_gets_416_and_is_accepted(served, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD)
    etag = requests.head(f"{served.url}/blob.bin", timeout=5).headers["ETag"]
    meta_path(dest.with_name("blob.bin.part")).write_text(json.dumps({"etag": etag}))
    served.requests.clear()
    result = fast().download(f"{served.url}/blob.bin", dest, sha256=SHA)
    assert dest.read_bytes() == PAYLOAD and result.sha256 == SHA
    assert served.requests == [("/blob.bin", f"bytes={len(PAYLOAD)}-")]


def test_sha256_mismatch_is_refused_and_partial_removed(served, tmp_path):
    with pytest.raises(DownloadError, match=rf"{served.url}/blob.bin: sha256 mismatch"):
        fast().download(f"{served.url}/blob.bin", tmp_path / "x", sha256="0" * 64)
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()


def test_size_mismatch_is_refused(served, tmp_path):
    with pytest.raises(DownloadError, match="size mismatch: got 300000 bytes, expected 300001"):
        fast().download(f"{served.url}/blob.bin", tmp_path / "x", expected_size=len(PAYLOAD) + 1)


def test_existing_complete_file_is_not_downloaded_again(served, tmp_path):
    dest = tmp_path / "blob.bin"
    fast().download(f"{served.url}/blob.bin", dest, sha256=SHA)
    again = fast().download(f"{served.url}/blob.bin", dest, expected_size=len(PAYLOAD), sha256=SHA)
    assert again.skipped and served.count("/blob.bin") == 1
    dest.write_bytes(b"corrupted")  # no longer matches: fetched again
    third = fast().download(f"{served.url}/blob.bin", dest, sha256=SHA)
    assert not third.skipped and dest.read_bytes() == PAYLOAD and served.count("/blob.bin") == 2


def test_file_urls_are_verified_too(tmp_path):
    source = tmp_path / "src" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    result = fast().download(source.as_uri(), tmp_path / "copy.bin", sha256=SHA)
    assert result.path.read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fast().download(source.as_uri(), tmp_path / "copy2.bin", sha256="f" * 64)
    with pytest.raises(DownloadError, match="missing.bin: HTTP 404"):
        fast().download((tmp_path / "missing.bin").as_uri(), tmp_path / "copy3.bin")
    assert fast().get_bytes(source.as_uri()) == PAYLOAD


# ----------------------------------------------------------------------------- the loopback server
def test_server_ranges_and_headers(served):
    url = f"{served.url}/blob.bin"
    full = requests.get(url, timeout=5)
    assert full.status_code == 200 and full.content == PAYLOAD
    assert full.headers["Content-Length"] == str(len(PAYLOAD)) and full.headers["Accept-Ranges"] == "bytes"
    part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=5)
    assert part.status_code == 206 and part.content == PAYLOAD[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(PAYLOAD)}"
    tail = requests.get(url, headers={"Range": "bytes=-10"}, timeout=5)
    assert tail.status_code == 206 and tail.content == PAYLOAD[-10:]
    beyond = requests.get(url, headers={"Range": f"bytes={len(PAYLOAD)}-"}, timeout=5)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(PAYLOAD)}"
    assert requests.get(f"{served.url}/missing", timeout=5).status_code == 404


def test_server_validators_and_conditional_requests(served, tmp_path):
    url = f"{served.url}/blob.bin"
    head = requests.get(url, timeout=5)
    etag, modified = head.headers["ETag"], head.headers["Last-Modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=5).status_code == 304
    assert requests.get(url, headers={"If-Modified-Since": modified}, timeout=5).status_code == 304
    assert (
        requests.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}, timeout=5).status_code
        == 200
    )  # If-None-Match decides
    ranged = requests.get(url, headers={"Range": "bytes=10-19", "If-Range": etag}, timeout=5)
    assert ranged.status_code == 206 and ranged.content == PAYLOAD[10:20]
    stale = requests.get(url, headers={"Range": "bytes=10-19", "If-Range": '"old"'}, timeout=5)
    assert stale.status_code == 200 and stale.content == PAYLOAD
    _replace_remote(tmp_path / "www", PAYLOAD[:5])
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=5).status_code == 200


def test_parse_range_rules():
    assert parse_range("bytes=0-", 10) == (0, 9)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=10-", 10) == "unsatisfiable"
    assert parse_range("bytes=0-1,4-5", 10) is None  # multi-range: the whole file (200)


def test_directory_index_pages(served):
    text = fast().get_text(f"{served.url}/")
    assert "Index of /" in text and parse_listing(text) == ["blob.bin", "sub dir/"]
    sub = fast().get_text(f"{served.url}/sub%20dir/")
    assert parse_listing(sub) == ["a b.txt"]
    assert fast().get_text(f"{served.url}/sub%20dir/a%20b.txt") == "hello"
    # a folder without its trailing slash redirects to it
    assert parse_listing(fast().get_text(f"{served.url}/sub%20dir")) == ["a b.txt"]


# ----------------------------------------------------------------------------- deadline and encodings (issue 25)
def test_a_drip_feeding_server_is_cut_off_at_the_total_deadline(served, tmp_path):
    """One byte every 50 ms never trips the 60 s read timeout; the 2 s total deadline ends it."""
    served.faults["/blob.bin"] = ("drip", 0.05)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as error:
        fast(deadline_s=2.0).download(f"{served.url}/blob.bin", tmp_path / "x")
    elapsed = time.monotonic() - t0
    message = str(error.value)
    assert message.startswith(f"{served.url}/blob.bin: download exceeded its deadline of 2 s")
    assert "download_deadline_s" in message and "\n" not in message
    assert 1.9 < elapsed < 5, elapsed
    assert served.count("/blob.bin") == 1 and not (tmp_path / "x").exists()


def test_get_bytes_has_the_deadline_too(served):
    served.faults["/blob.bin"] = ("drip", 0.05)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="deadline of 1 s"):
        fast(deadline_s=1.0).get_bytes(f"{served.url}/blob.bin")
    assert time.monotonic() - t0 < 4


def test_a_gzip_body_despite_identity_is_named_not_called_incomplete(served, tmp_path):
    served.faults["/blob.bin"] = ("gzip",)
    with pytest.raises(DownloadError) as error:
        fast().download(f"{served.url}/blob.bin", tmp_path / "x")
    message = str(error.value)
    assert "gzip-encoded body" in message and "Accept-Encoding: identity" in message, message
    assert "incomplete" not in message and served.count("/blob.bin") == 1  # not retried
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()


def test_refresh_days_0_never_revalidates_even_the_running_month():
    today = dt.date(2026, 3, 5)
    month_end = dt.date(2026, 3, 31)  # a monthly file's youngest day lies ahead while the month runs
    assert not RefreshPolicy(refresh_days=0, today=today).applies(month_end)
    assert RefreshPolicy(refresh_days=1, today=today).applies(month_end)
