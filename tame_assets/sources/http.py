"""HTTP download client shared by every source: timeouts, retries with exponential backoff,
resumable downloads (``Range``), size/sha256 verification, atomic rename, and ``file://`` URLs."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests

RETRY_STATUS = {429, 500, 502, 503, 504}
CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download failed; the message names the URL and the HTTP status or reason."""

    def __init__(self, url: str, reason: str, status: int | None = None):
        self.url, self.status = url, status
        where = f"HTTP {status}" if status else reason
        super().__init__(f"{url}: {where}" + (f" ({reason})" if status and reason else ""))


@dataclass(frozen=True)
class DownloadResult:
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
    """Small robust client over ``requests``.

    Retries connection errors, timeouts and HTTP 429/5xx ``retries`` times with exponential
    backoff (``backoff_s``·2^attempt); other 4xx fail at once with :class:`DownloadError`.
    ``timeout`` is (connect, read) in seconds.
    """

    def __init__(self, timeout: tuple[float, float] = (5.0, 60.0), retries: int = 4, backoff_s: float = 0.5,
                 session: requests.Session | None = None):
        self.timeout, self.retries, self.backoff_s = timeout, retries, backoff_s
        self.session = session or requests.Session()

    # ------------------------------------------------------------------ requests
    def _request(self, url: str, headers: dict | None = None, stream: bool = False) -> requests.Response:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self.session.get(url, headers=headers, timeout=self.timeout, stream=stream)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = DownloadError(url, f"{type(exc).__name__}: {exc}")
            else:
                if response.status_code < 400:
                    return response
                error = DownloadError(url, response.reason or "", response.status_code)
                response.close()
                if response.status_code not in RETRY_STATUS:
                    raise error
                last = error
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        assert last is not None
        raise DownloadError(last.url, f"gave up after {self.retries + 1} attempts: {last}", last.status) from last

    def get_bytes(self, url: str) -> bytes:
        if url.startswith("file://"):
            path = _local_path(url)
            if not path.exists():
                raise DownloadError(url, "no such file", 404)
            return path.read_bytes()
        return self._request(url).content

    def get_text(self, url: str) -> str:
        data = self.get_bytes(url)
        return data.decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ files
    def download(self, url: str, dest: Path, expected_size: int | None = None, sha256: str | None = None) -> DownloadResult:
        """Download ``url`` to ``dest`` (atomically), resuming a previous partial ``dest.part``.

        An existing ``dest`` that matches ``expected_size``/``sha256`` (when given; else any existing
        file) is kept and not downloaded again.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and self._matches(dest, expected_size, sha256, url, raise_=False):
            return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), resumed=False, skipped=True)
        part = dest.with_name(dest.name + ".part")
        if url.startswith("file://"):
            part.write_bytes(self.get_bytes(url))
            resumed = False
        else:
            resumed = self._stream(url, part, expected_size)
        self._matches(part, expected_size, sha256, url, raise_=True)
        os.replace(part, dest)
        return DownloadResult(dest, dest.stat().st_size, sha256_of(dest), resumed=resumed)

    def _stream(self, url: str, part: Path, expected_size: int | None) -> bool:
        resumed = False
        for attempt in range(self.retries + 1):
            offset = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={offset}-"} if offset else None
            response = self._request(url, headers=headers, stream=True)
            if response.status_code == 416:  # already complete
                response.close()
                return resumed
            append = offset and response.status_code == 206
            total = response.headers.get("Content-Length")
            total = int(total) + (offset if append else 0) if total is not None else expected_size
            resumed = resumed or bool(append)
            try:
                with open(part, "ab" if append else "wb") as fh:
                    for chunk in response.iter_content(CHUNK):
                        fh.write(chunk)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                if attempt == self.retries:
                    raise DownloadError(url, f"connection lost after {part.stat().st_size} bytes: {exc}") from exc
                time.sleep(self.backoff_s * 2**attempt)
                continue
            finally:
                response.close()
            if total is None or part.stat().st_size >= total:
                return resumed
            if attempt < self.retries:  # short body: the server closed early; resume
                time.sleep(self.backoff_s * 2**attempt)
        raise DownloadError(url, f"incomplete: {part.stat().st_size} of {total} bytes")

    @staticmethod
    def _matches(path: Path, size: int | None, sha256: str | None, url: str, raise_: bool) -> bool:
        actual = path.stat().st_size
        if size is not None and actual != size:
            if raise_:
                raise DownloadError(url, f"size mismatch: got {actual} bytes, expected {size}")
            return False
        if sha256 is not None and sha256_of(path) != sha256:
            if raise_:
                raise DownloadError(url, "sha256 mismatch")
            return False
        return True
