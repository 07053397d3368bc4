"""HTTP download client shared by every source: timeouts, retries with exponential backoff,
resumable downloads (``Range``), size/sha256 verification, atomic rename, and ``file://`` URLs.

Retry policy: connection errors, timeouts and HTTP 429/5xx are retried ``retries`` times, waiting
``backoff_s · 2^attempt`` seconds (a ``Retry-After`` header in seconds is honoured, capped at 60 s);
any other 4xx fails at once. Every error is a :class:`DownloadError` naming the URL and the HTTP
status (or the network reason).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CHUNK = 1 << 16
CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and the HTTP status or reason."""

    def __init__(self, url: str, reason: str, status: int | None = None):
        self.url, self.status, self.reason = url, status, reason
        where = f"HTTP {status}" if status else reason
        super().__init__(f"{url}: {where}" + (f" ({reason})" if status and reason else ""))


@dataclass(frozen=True)
class DownloadResult:
    """A file on disk: its path, size in bytes, sha256 hex digest, whether a partial download was
    resumed, and whether an already complete file was kept without downloading (``skipped``)."""

    path: Path
    bytes: int
    sha256: str
    resumed: bool
    skipped: bool = False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _local_path(url: str) -> Path:
    return Path(url2pathname(urlparse(url).path))


class HttpClient:
    """Small robust client over ``requests`` (see the module docstring for the retry policy).

    ``timeout`` is (connect, read) in seconds; the read timeout applies between received bytes.
    """

    def __init__(self, timeout: tuple[float, float] = (5.0, 60.0), retries: int = 4, backoff_s: float = 0.5,
                 session: requests.Session | None = None):
        self.timeout, self.retries, self.backoff_s = timeout, retries, backoff_s
        self.session = session or requests.Session()

    def _sleep(self, attempt: int, response: requests.Response | None = None) -> None:
        delay = self.backoff_s * 2**attempt
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), 60.0))
        time.sleep(delay)

    # ------------------------------------------------------------------ requests
    def _request(self, url: str, headers: dict | None = None, stream: bool = False,
                 accept: frozenset[int] = frozenset()) -> requests.Response:
        """GET with retries; returns a response with status < 400 (or in ``accept``), else raises
        :class:`DownloadError`."""
        last: DownloadError | None = None
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = self.session.get(url, headers=headers, timeout=self.timeout, stream=stream)
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
        for attempt in range(self.retries + 1):
            response = self._request(url)
            try:
                return response.content
            except _NETWORK_ERRORS as exc:  # body cut off: fetch again
                if attempt == self.retries:
                    raise DownloadError(url, f"connection lost while reading the body: {exc}") from exc
                self._sleep(attempt)
        raise AssertionError("unreachable")

    def get_text(self, url: str) -> str:
        """The body of ``url`` decoded as UTF-8 (invalid bytes replaced)."""
        return self.get_bytes(url).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ files
    def download(self, url: str, dest: Path, expected_size: int | None = None, sha256: str | None = None) -> DownloadResult:
        """Download ``url`` to ``dest`` atomically (via ``dest.part``), resuming a partial ``.part``.

        The size is checked against ``expected_size`` or, failing that, the server's Content-Length;
        ``sha256`` (hex) when given. An existing ``dest`` is kept without a request when it matches
        ``expected_size``/``sha256`` (files only ever reach ``dest`` after verification). A ``.part``
        that fails verification is deleted so the next call starts afresh.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and self._problem(dest, expected_size, sha256) is None:
            return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), resumed=False, skipped=True)
        part = dest.with_name(dest.name + ".part")
        if url.startswith("file://"):
            source = _local_path(url)
            if not source.is_file():
                raise DownloadError(url, "no such file", 404)
            shutil.copyfile(source, part)
            resumed, size = False, source.stat().st_size
        else:
            resumed, size = self._stream(url, part)
        problem = self._problem(part, expected_size if expected_size is not None else size, sha256)
        if problem:
            part.unlink(missing_ok=True)
            raise DownloadError(url, problem)
        os.replace(part, dest)
        return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), resumed=resumed)

    def _stream(self, url: str, part: Path) -> tuple[bool, int | None]:
        """Fill ``part`` from ``url``; returns (resumed, total size announced by the server)."""
        resumed, total = False, None
        for attempt in range(self.retries + 1):
            offset = part.stat().st_size if part.exists() else 0
            headers = {"Accept-Encoding": "identity"}  # byte offsets and sizes of the file itself
            if offset:
                headers["Range"] = f"bytes={offset}-"
            response = self._request(url, headers=headers, stream=True, accept=frozenset({416}) if offset else frozenset())
            if response.status_code == 416:  # nothing after offset: complete when the sizes agree
                response.close()
                match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", ""))
                if match and int(match.group(1)) == offset:
                    return resumed, offset
                part.unlink(missing_ok=True)  # longer than the remote file: stale, start again
                continue
            append = False
            if offset and response.status_code == 206:
                match = CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
                append = bool(match) and int(match.group(1)) == offset
                if match and match.group(3) != "*":
                    total = int(match.group(3))
            if not append:  # 200 (Range ignored) or an unusable 206: start from scratch
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None and response.status_code == 200 else total
                if response.status_code == 206:
                    response.close()
                    part.unlink(missing_ok=True)
                    continue
            resumed = resumed or append
            try:
                with open(part, "ab" if append else "wb") as fh:
                    for chunk in response.iter_content(CHUNK):
                        fh.write(chunk)
            except _NETWORK_ERRORS as exc:
                if attempt == self.retries:
                    raise DownloadError(url, f"connection lost after {part.stat().st_size} bytes: {exc}") from exc
                self._sleep(attempt)
                continue
            finally:
                response.close()
            if total is None or part.stat().st_size >= total:
                return resumed, total
            if attempt < self.retries:  # short body without an error: the server closed early
                self._sleep(attempt)
        raise DownloadError(url, f"incomplete after {self.retries + 1} attempts: {part.stat().st_size} of {total} bytes")

    @staticmethod
    def _problem(path: Path, size: int | None, sha256: str | None) -> str | None:
        actual = path.stat().st_size
        if size is not None and actual != size:
            return f"size mismatch: got {actual} bytes, expected {size}"
        if sha256 is not None and sha256_of(path) != sha256.lower():
            return "sha256 mismatch"
        return None
