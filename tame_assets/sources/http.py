"""HTTP download client shared by every source: timeouts, retries with exponential backoff,
resumable downloads (``Range`` + ``If-Range``), conditional re-validation of files already on disk
(``If-None-Match`` / ``If-Modified-Since``), size/sha256 verification, atomic rename, and ``file://``
URLs.

Retry policy: connection errors, timeouts and HTTP 429/5xx are retried ``retries`` times, waiting
``backoff_s · 2^attempt`` seconds (a ``Retry-After`` header in seconds is honoured, capped at 60 s);
any other 4xx fails at once. Every error is a :class:`DownloadError` naming the URL and the HTTP
status (or the network reason). A whole download (retries included) has a total deadline
(``deadline_s``, setting ``[archives] download_deadline_s``): a server that drips bytes slowly enough
never to trip the read timeout is cut off when it passes (a watchdog thread shuts the socket down).

File downloads ask for ``Accept-Encoding: identity`` (sizes and ``Range`` offsets are those of the
file); a server that sends a compressed body anyway (``Content-Encoding: gzip``…) is an error saying
so, not retried, instead of a size or "incomplete" error.

Files on disk: ``dest`` only ever appears after verification (written as ``dest.part``, renamed).
Next to each download a sidecar ``dest.meta.json`` keeps the server's validators (ETag,
Last-Modified) and the size, so a later call can ask "has it changed?" (304 keeps the file); the
partial ``dest.part`` has its own ``dest.part.meta.json`` so a resume sends ``If-Range`` and a remote
file that changed meanwhile is fetched again from scratch instead of being stitched from two
versions. A body sent without Content-Length and not chunked is only accepted once the server
confirms its end (a ``Range`` probe answered 416 at exactly that size).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests

from tame_assets.files import TEMP_PATTERN, replace_atomic, write_text_atomic

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CHUNK = 1 << 16
CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
#: Suffix of the sidecar holding a download's validators (ETag, Last-Modified, size).
META_SUFFIX = ".meta.json"
#: Partial/temporary files older than this (seconds) are left over from killed writers.
STALE_PARTIAL_AGE_S = 6 * 3600
#: Default total deadline of one download, s (setting ``[archives] download_deadline_s``).
DOWNLOAD_DEADLINE_S = 3600.0


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and the HTTP status or reason."""

    def __init__(self, url: str, reason: str, status: int | None = None):
        self.url, self.status, self.reason = url, status, reason
        where = f"HTTP {status}" if status else reason
        super().__init__(f"{url}: {where}" + (f" ({reason})" if status and reason else ""))


@dataclass(frozen=True)
class DownloadResult:
    """A file on disk: its path, size in bytes, sha256 hex digest, whether a partial download was
    resumed, whether the file on disk was kept without downloading (``skipped``) and whether the
    server was asked and confirmed it unchanged (``revalidated``: HTTP 304)."""

    path: Path
    bytes: int
    sha256: str
    resumed: bool
    skipped: bool = False
    revalidated: bool = False


@dataclass(frozen=True)
class RefreshPolicy:
    """Which files already on disk are re-validated against the server before being reused.

    ``refresh_days`` None (default): files whose data date lies in the current or the previous
    calendar month (UTC) — the months whose remote files may still grow. ``refresh_days = N``:
    files whose data date is less than N days before today (0 = never re-validate). ``today``
    defaults to today's UTC date.
    """

    refresh_days: int | None = None
    today: dt.date | None = None

    def __post_init__(self) -> None:
        if self.refresh_days is not None and self.refresh_days < 0:
            raise ValueError(f"refresh_days must be >= 0 (got {self.refresh_days})")

    def applies(self, data_date: dt.date) -> bool:
        """True when a file holding data of ``data_date`` (its youngest day) must be re-validated."""
        today = self.today or dt.datetime.now(dt.timezone.utc).date()
        if self.refresh_days is None:
            previous_month_start = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
            return data_date >= previous_month_start
        if self.refresh_days == 0:  # never; also for a month still running (its last day lies ahead)
            return False
        return (today - data_date).days < self.refresh_days


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _local_path(url: str) -> Path:
    return Path(url2pathname(urlparse(url).path))


def meta_path(path: Path) -> Path:
    """The validators sidecar of ``path`` (``<name>.meta.json``)."""
    return path.with_name(path.name + META_SUFFIX)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(meta_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _write_meta(path: Path, meta: dict) -> None:
    write_text_atomic(meta_path(path), json.dumps(meta, sort_keys=True), fsync=False)


def _open_no_symlink(path: str, flags: int) -> int:
    """``open`` opener for partial downloads: a symlink planted at the predictable ``.part`` name fails."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o666)


def _validators(response: requests.Response) -> dict:
    return {"etag": response.headers.get("ETag"), "last_modified": response.headers.get("Last-Modified")}


def _drop(path: Path) -> None:
    path.unlink(missing_ok=True)
    meta_path(path).unlink(missing_ok=True)


def sweep_stale_partials(folder: Path, max_age_s: float = STALE_PARTIAL_AGE_S) -> list[Path]:
    """Delete ``*.part`` files (and their sidecars) and temp files of :mod:`tame_assets.files` under
    ``folder`` not modified for ``max_age_s`` seconds — left over from killed writers; returns what
    was removed. Younger ones may belong to a writer still running and are kept."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = time.time() - max_age_s
    removed = []
    for path in sorted(folder.rglob("*")):
        if not (path.name.endswith((".part", ".part" + META_SUFFIX)) or TEMP_PATTERN.match(path.name)):
            continue
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                _drop(path)
                removed.append(path)
        except FileNotFoundError:  # removed meanwhile (with its partial)
            continue
    return removed


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket a streaming ``response`` reads from (None once released)."""
    try:
        return response.raw._fp.fp.raw._sock  # urllib3 HTTPResponse → http.client → BufferedReader → SocketIO
    except AttributeError:
        return None


@contextmanager
def _watchdog(response: requests.Response, seconds: float) -> Iterator[threading.Event]:
    """Shut ``response``'s socket down after ``seconds`` (a blocked read then fails at once); the
    yielded event tells whether it fired."""
    fired = threading.Event()

    def cut() -> None:
        fired.set()
        sock = _socket_of(response)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(max(seconds, 0.0), cut)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


class HttpClient:
    """Small robust client over ``requests`` (see the module docstring for the retry policy).

    ``timeout`` is (connect, read) in seconds; the read timeout applies between received bytes.
    ``deadline_s``: the longest one call (:meth:`download`, :meth:`get_bytes`) may take in all,
    retries included (None = no deadline).
    """

    def __init__(
        self,
        timeout: tuple[float, float] = (5.0, 60.0),
        retries: int = 4,
        backoff_s: float = 0.5,
        session: requests.Session | None = None,
        deadline_s: float | None = DOWNLOAD_DEADLINE_S,
    ):
        self.timeout, self.retries, self.backoff_s = timeout, retries, backoff_s
        self.deadline_s = deadline_s
        self.session = session or requests.Session()

    def _deadline(self) -> float:
        """``time.monotonic()`` value at which a call starting now must end (inf: no deadline)."""
        return time.monotonic() + self.deadline_s if self.deadline_s else float("inf")

    def _expired(self, url: str, part: Path | None = None) -> DownloadError:
        got = f" after {part.stat().st_size:,} bytes" if part is not None and part.exists() else ""
        return DownloadError(
            url, f"download exceeded its deadline of {self.deadline_s:g} s{got} ([archives] download_deadline_s)"
        )

    def _sleep(self, attempt: int, response: requests.Response | None = None) -> None:
        delay = self.backoff_s * 2**attempt
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), 60.0))
        time.sleep(delay)

    # ------------------------------------------------------------------ requests
    def _request(
        self,
        url: str,
        headers: dict | None = None,
        stream: bool = False,
        accept: frozenset[int] = frozenset(),
        deadline: float = float("inf"),
    ) -> requests.Response:
        """GET with retries; returns a response with status < 400 (or in ``accept``), else raises
        :class:`DownloadError` (also once ``deadline``, a ``time.monotonic()`` value, has passed)."""
        last: DownloadError | None = None
        for attempt in range(self.retries + 1):
            response = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._expired(url)
            timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
            try:
                response = self.session.get(url, headers=headers, timeout=timeout, stream=stream)
            except _NETWORK_ERRORS as exc:  # refused, reset, timed out, body cut short
                last = DownloadError(url, f"{type(exc).__name__}: {exc}")
            except requests.RequestException as exc:  # invalid URL, unsupported scheme, ...
                raise DownloadError(url, f"{type(exc).__name__}: {exc}") from exc
            else:
                if response.status_code < 400 or response.status_code in accept:
                    return response
                error = DownloadError(url, response.reason or "", response.status_code)
                response.close()
                if response.status_code not in RETRY_STATUS:
                    raise error
                last = error
            if attempt < self.retries:
                self._sleep(attempt, response)
        assert last is not None
        raise DownloadError(url, f"gave up after {self.retries + 1} attempts: {last.reason}", last.status) from last

    def get_bytes(self, url: str) -> bytes:
        """The body of ``url`` (``http(s)://`` or ``file://``)."""
        if url.startswith("file://"):
            path = _local_path(url)
            if not path.is_file():
                raise DownloadError(url, "no such file", 404)
            return path.read_bytes()
        deadline = self._deadline()
        for attempt in range(self.retries + 1):
            response = self._request(url, stream=True, deadline=deadline)
            try:
                with _watchdog(response, deadline - time.monotonic()) as fired:
                    return response.content
            except _NETWORK_ERRORS as exc:  # body cut off: fetch again
                if fired.is_set():
                    raise self._expired(url) from None
                if attempt == self.retries:
                    raise DownloadError(url, f"connection lost while reading the body: {exc}") from exc
                self._sleep(attempt)
            finally:
                response.close()
        raise AssertionError("unreachable")

    def get_text(self, url: str) -> str:
        """The body of ``url`` decoded as UTF-8 (invalid bytes replaced)."""
        return self.get_bytes(url).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ files
    def download(
        self,
        url: str,
        dest: Path,
        expected_size: int | None = None,
        sha256: str | None = None,
        revalidate: bool = False,
    ) -> DownloadResult:
        """Download ``url`` to ``dest`` atomically (via ``dest.part``), resuming a partial ``.part``
        only when the server confirms (``If-Range``) that the remote file has not changed.

        The size is checked against ``expected_size`` or, failing that, the server's Content-Length;
        ``sha256`` (hex) when given. An existing ``dest`` that matches ``expected_size``/``sha256`` is
        kept without a request, or — with ``revalidate`` — after a conditional request answered 304
        (a file without stored validators is fetched again). A ``.part`` that fails verification is
        deleted so the next call starts afresh; a failed download leaves ``dest`` untouched.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        conditional = None
        if dest.exists() and self._problem(dest, expected_size, sha256) is None:
            if not revalidate:
                return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), resumed=False, skipped=True)
            meta = _read_meta(dest)
            if meta.get("bytes") == dest.stat().st_size and (meta.get("etag") or meta.get("last_modified")):
                conditional = meta
            _drop(part)  # a newer version may be on its way: start it from a clean slate
        if url.startswith("file://"):
            resumed, size = False, self._copy_local(url, dest, part, conditional)
            if size is None:
                return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), False, skipped=True, revalidated=True)
        else:
            try:
                outcome = self._stream(url, part, conditional, self._deadline())
            except DownloadError as exc:
                if exc.status == 404:  # gone: nothing to resume later
                    _drop(part)
                raise
            if outcome == "not modified":
                return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), False, skipped=True, revalidated=True)
            resumed, size = outcome
        problem = self._problem(part, expected_size if expected_size is not None else size, sha256)
        if problem:
            _drop(part)
            raise DownloadError(url, problem)
        meta = {
            **_read_meta(part),
            "url": url,
            "bytes": part.stat().st_size,
            "fetched_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        replace_atomic(part, dest, fsync=False)  # a re-fetchable copy: not worth ~10 ms of fsync per file
        _write_meta(dest, meta)
        meta_path(part).unlink(missing_ok=True)
        return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), resumed=resumed)

    @staticmethod
    def _copy_local(url: str, dest: Path, part: Path, conditional: dict | None) -> int | None:
        """Copy a ``file://`` source into ``part``; None when ``conditional`` shows it unchanged."""
        source = _local_path(url)
        if not source.is_file():
            raise DownloadError(url, "no such file", 404)
        stat = source.stat()
        stamp = {"etag": f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"', "last_modified": None}
        if conditional and conditional.get("etag") == stamp["etag"]:
            return None
        with open(source, "rb") as src, open(part, "wb", opener=_open_no_symlink) as dst:
            shutil.copyfileobj(src, dst)
        _write_meta(part, stamp)
        return stat.st_size

    def _stream(
        self, url: str, part: Path, conditional: dict | None = None, deadline: float = float("inf")
    ) -> tuple[bool, int | None] | str:
        """Fill ``part`` from ``url``; returns (resumed, total size announced by the server), or
        ``"not modified"`` when ``conditional`` (validators of the file on disk) got a 304.
        ``deadline``: ``time.monotonic()`` value after which it fails (:class:`DownloadError`)."""
        resumed, total, unconfirmed = False, None, False
        for attempt in range(self.retries + 1):
            offset = part.stat().st_size if part.exists() else 0
            stored = _read_meta(part) if offset else {}
            if offset and not (stored.get("etag") or stored.get("last_modified")):
                _drop(part)  # a partial of unknown version cannot be resumed safely
                offset, stored = 0, {}
            headers = {"Accept-Encoding": "identity"}  # byte offsets and sizes of the file itself
            accept: frozenset[int] = frozenset()
            if offset:
                headers["Range"] = f"bytes={offset}-"
                strong_etag = stored.get("etag") if not str(stored.get("etag") or "").startswith("W/") else None
                headers["If-Range"] = strong_etag or stored["last_modified"]
                accept = frozenset({416})
            elif conditional:
                if conditional.get("etag"):
                    headers["If-None-Match"] = conditional["etag"]
                if conditional.get("last_modified"):
                    headers["If-Modified-Since"] = conditional["last_modified"]
            response = self._request(url, headers=headers, stream=True, accept=accept, deadline=deadline)
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            if encoding not in ("", "identity"):
                response.close()
                raise DownloadError(
                    url,
                    f"the server sent a {encoding}-encoded body although the request asked for "
                    "Accept-Encoding: identity (its size and byte ranges are not the file's); "
                    "the server is misconfigured for this file",
                )
            if response.status_code == 304 and conditional and not offset:
                response.close()
                return "not modified"
            if response.status_code == 416:  # nothing after offset: complete when the sizes agree
                response.close()
                match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", ""))
                if match and int(match.group(1)) == offset:
                    return resumed, offset
                _drop(part)  # longer than the remote file: stale, start again
                unconfirmed = False
                continue
            append = False
            if offset and response.status_code == 206:
                match = CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
                same_version = not stored.get("etag") or response.headers.get("ETag") in (None, stored["etag"])
                append = bool(match) and int(match.group(1)) == offset and same_version
                if match and match.group(3) != "*":
                    total = int(match.group(3))
            if not append:  # 200 (Range ignored, or the file changed: If-Range) or an unusable 206
                if response.status_code == 206:
                    response.close()
                    _drop(part)
                    continue
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None else None
                _write_meta(part, _validators(response))
            elif unconfirmed and response.headers.get("Content-Length") is not None:
                total = offset + int(response.headers["Content-Length"])
            resumed = resumed or append
            delimited_by_close = (
                response.headers.get("Content-Length") is None
                and "chunked" not in response.headers.get("Transfer-Encoding", "").lower()
            )
            try:
                with (
                    _watchdog(response, deadline - time.monotonic()) as fired,
                    open(part, "ab" if append else "wb", opener=_open_no_symlink) as fh,
                ):
                    for chunk in response.iter_content(CHUNK):
                        fh.write(chunk)
                if fired.is_set():
                    raise self._expired(url, part)
            except _NETWORK_ERRORS as exc:
                if fired.is_set():
                    raise self._expired(url, part) from None
                if attempt == self.retries:
                    raise DownloadError(url, f"connection lost after {part.stat().st_size} bytes: {exc}") from exc
                self._sleep(attempt)
                continue
            finally:
                response.close()
            if delimited_by_close and total is None:
                unconfirmed = True  # the body ended when the connection closed: ask whether there is more
                continue
            if total is None or part.stat().st_size >= total:
                return resumed, total
            if attempt < self.retries:  # short body without an error: the server closed early
                self._sleep(attempt)
        size = part.stat().st_size if part.exists() else 0
        if unconfirmed:
            raise DownloadError(
                url,
                f"body sent without Content-Length ended after {size} bytes and the server "
                "could not confirm that this is the whole file",
            )
        raise DownloadError(url, f"incomplete after {self.retries + 1} attempts: {size} of {total} bytes")

    @staticmethod
    def _problem(path: Path, size: int | None, sha256: str | None) -> str | None:
        actual = path.stat().st_size
        if size is not None and actual != size:
            return f"size mismatch: got {actual} bytes, expected {size}"
        if sha256 is not None:
            actual_sha = sha256_of(path)
            if actual_sha != sha256.strip().lower():
                return f"sha256 mismatch: got {actual_sha}, expected {sha256.strip().lower()}"
        return None
