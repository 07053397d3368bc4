"""A small HTTP file server on 127.0.0.1: Content-Length, single byte ranges (206 / 416),
validators and conditional requests like Apache's (``ETag`` = size and mtime in ns, ``Last-Modified``;
``If-None-Match`` / ``If-Modified-Since`` → 304; ``If-Range`` that does not match → the whole file,
200) and Apache-style directory index pages (``<a href="name">``, sub-folders with a trailing ``/``).

It serves the embedded sample archive to the real download clients, so the sample configuration
exercises the same code paths as the remote archives. Request logging and the tracebacks of
clients that hang up mid-response are silenced.
"""

from __future__ import annotations

import datetime as dt
import gzip
import html
import io
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tame_assets.sources.magnetometer import IMAGE_CGI_PATH

RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """``Range`` header → inclusive (start, end) clamped to the file; None when the header is not
    a single byte range we serve (→ full 200 response); ``"unsatisfiable"`` for a 416."""
    match = RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    if not match.group(1):  # suffix range: the last N bytes
        n = int(match.group(2))
        return (max(size - n, 0), size - 1) if n and size else "unsatisfiable"
    start = int(match.group(1))
    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


def file_etag(path: str | Path) -> str:
    """Strong ETag of a file from its size and modification time in ns (changes when either does)."""
    stat = os.stat(path)
    return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def _etag_matches(header: str, etag: str) -> bool:
    """``If-None-Match`` list (or ``*``) contains ``etag`` (weak comparison, as RFC 9110 asks)."""
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


class ArchiveRequestHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range`` support and Apache-like index pages. Subclass it to inject faults."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # keep-alive + small writes would otherwise cost 40 ms per request
    _remaining: int | None = None

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def list_directory(self, path: str):
        try:
            names = sorted(os.listdir(path))
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "No permission to list directory")
            return None
        title = html.escape(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
        rows = ['<tr><td><a href="../">Parent Directory</a></td></tr>']
        for name in names:
            shown = name + "/" if os.path.isdir(os.path.join(path, name)) else name
            rows.append(f'<tr><td><a href="{urllib.parse.quote(shown)}">{html.escape(shown)}</a></td></tr>')
        body = (
            '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
            f"<html>\n<head>\n<title>Index of {title}</title>\n</head>\n<body>\n<h1>Index of {title}</h1>\n"
            '<table>\n<tr><th><a href="?C=N;O=D">Name</a></th></tr>\n'
            + "\n".join(rows)
            + "\n</table>\n</body></html>\n"
        ).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def end_headers(self) -> None:
        path = self.translate_path(self.path)
        if self.command in ("GET", "HEAD") and os.path.isfile(path):
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", file_etag(path))
        super().end_headers()

    def _last_modified(self, path: str) -> str:
        return self.date_time_string(int(os.stat(path).st_mtime))

    def send_head(self):
        self._remaining = None
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return super().send_head()
        if "If-None-Match" in self.headers:  # takes precedence over If-Modified-Since
            if _etag_matches(self.headers["If-None-Match"], file_etag(path)):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("Last-Modified", self._last_modified(path))
                self.end_headers()
                return None  # otherwise the base class ignores If-Modified-Since, as RFC 9110 asks
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range.strip() not in (file_etag(path), self._last_modified(path)):
            del self.headers["Range"]  # the file changed since the client's partial copy: send it whole
        if "Range" not in self.headers:
            return super().send_head()
        size = os.path.getsize(path)
        span = parse_range(self.headers["Range"], size)
        if span is None:
            return super().send_head()
        if span == "unsatisfiable":
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        start, end = span
        fh = open(path, "rb")
        fh.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Last-Modified", self._last_modified(path))
        self.end_headers()
        self._remaining = end - start + 1
        return fh

    def copyfile(self, source, outputfile) -> None:
        remaining, self._remaining = self._remaining, None
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(1 << 16, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)


# ----------------------------------------------------------------------------------- archive emulation
#: Fields of the IMAGE request form, each required exactly once (see :func:`check_image_form`).
IMAGE_FORM_FIELDS = (
    "start",
    "eventlength",
    "station",
    "mystation",
    "column2",
    "compression",
    "yourname",
    "institute",
    "email",
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulated archive saw it: method, URL path, query and (POST) form fields."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]


def check_image_form(form: dict[str, list[str]]) -> tuple[str, dt.datetime, int, bool]:
    """(station, start UTC, event length in hours, gzip?) of a posted IMAGE form, or ValueError with a
    one-line reason: every field of :data:`IMAGE_FORM_FIELDS` exactly once and nothing else;
    ``start`` = ``YYYYMMDDHH``; ``eventlength`` 1–48 (h, the service's limit); ``station=mylist``;
    ``mystation`` a 3-letter code; ``column2=on``; ``compression`` ``gz``/``no``; a non-blank
    ``yourname`` and ``institute`` and an ``email`` address."""
    from tame_assets.sources.magnetometer import EMAIL_RE

    unknown = sorted(set(form) - set(IMAGE_FORM_FIELDS))
    if unknown:
        raise ValueError(f"unexpected field(s) {', '.join(unknown)}")
    for name in IMAGE_FORM_FIELDS:
        if len(form.get(name, [])) != 1:
            raise ValueError(
                f"field {name} missing" if name not in form else f"field {name} given {len(form[name])} times"
            )
    value = {k: v[0].strip() for k, v in form.items()}
    try:
        start = dt.datetime.strptime(value["start"], "%Y%m%d%H")
    except ValueError:
        raise ValueError(f"start {value['start']!r} is not YYYYMMDDHH") from None
    if not re.fullmatch(r"\d{1,2}", value["eventlength"]) or not 1 <= int(value["eventlength"]) <= 48:
        raise ValueError(f"eventlength {value['eventlength']!r} is not 1-48 hours")
    rules = {
        "station": value["station"] == "mylist",
        "mystation": bool(re.fullmatch(r"[A-Z]{3}", value["mystation"])),
        "column2": value["column2"] == "on",
        "compression": value["compression"] in ("gz", "no"),
        "yourname": bool(value["yourname"]),
        "institute": bool(value["institute"]),
        "email": bool(EMAIL_RE.match(value["email"])),
    }
    bad = [k for k, ok in rules.items() if not ok]
    if bad:
        raise ValueError(f"invalid {bad[0]} {value[bad[0]]!r}")
    return value["mystation"], start, int(value["eventlength"]), value["compression"] == "gz"


class SampleArchiveHandler(ArchiveRequestHandler):
    """The sample archive's server: static files plus the real archives' dynamic parts.

    - ``POST …/cgi-bin/imagecgi/image-data.cgi``: the IMAGE request form. Every field is checked
      (:func:`check_image_form`; 400 with the reason otherwise); the answer is an HTML page linking a
      generated ``image<YYYYMMDDHH>.col2[.gz]`` in IMAGE column format, built from
      ``server.image_rows(station, start, hours)`` (a "no data" page when that returns None).
    - ``…/10.1594/PANGAEA.<n>``: PANGAEA dataset exports; ``format=textfile`` is required (400 otherwise).

    Every request is appended to ``server.request_log`` (:class:`RecordedRequest`).
    """

    def _record(self, form: dict[str, list[str]] | None = None) -> urllib.parse.SplitResult:
        parts = urllib.parse.urlsplit(self.path)
        entry = RecordedRequest(
            self.command, parts.path, urllib.parse.parse_qs(parts.query, keep_blank_values=True), form or {}
        )
        with self.server.lock:
            self.server.request_log.append(entry)
        return parts

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self._record()
        generated = self.server.generated.get(parts.path)
        if generated is not None:
            return self._send(200, generated, "application/octet-stream")
        if "/10.1594/PANGAEA." in parts.path and urllib.parse.parse_qs(parts.query).get("format") != ["textfile"]:
            return self._send(400, b"format=textfile required\n", "text/plain; charset=utf-8")
        return super().do_GET()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
        parts = self._record(form)
        if not parts.path.endswith(IMAGE_CGI_PATH):
            return self._send(404, b"no such form\n", "text/plain; charset=utf-8")
        try:
            station, start, hours, gz = check_image_form(form)
        except ValueError as exc:
            return self._send(400, f"{exc}\n".encode(), "text/plain; charset=utf-8")
        rows = self.server.image_rows(station, start, hours)
        if rows is None:
            page = f"<html><body><p>No data for {html.escape(station)} from {start:%Y-%m-%d %H} UT.</p></body></html>\n"
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        from tame_assets.sources.magnetometer import write_image_column

        data = write_image_column(rows, station).encode("ascii")
        name = f"image{start:%Y%m%d%H}.col2" + (".gz" if gz else "")
        with self.server.lock:
            link = f"{parts.path[: -len(IMAGE_CGI_PATH)]}/results/{len(self.server.generated) + 1}/{name}"
            self.server.generated[link] = gzip.compress(data, mtime=0) if gz else data
        page = (
            f'<html><body><h1>IMAGE data</h1><p>Your data file: <a href="{html.escape(link)}">{html.escape(name)}</a>'
            "</p></body></html>\n"
        )
        return self._send(200, page.encode(), "text/html; charset=utf-8")


class QuietThreadingHTTPServer(ThreadingHTTPServer):
    """Daemon-threaded server that does not print tracebacks when a client disconnects."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def start_server(
    root: Path, host: str = "127.0.0.1", port: int = 0, handler: type[ArchiveRequestHandler] = ArchiveRequestHandler
) -> ThreadingHTTPServer:
    """Start (and return) a server for ``root`` in a daemon thread; the caller shuts it down."""
    if not Path(root).is_dir():
        raise NotADirectoryError(f"{root}: cannot serve, not a directory")
    directory = str(Path(root).resolve())

    class Bound(handler):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

    server = QuietThreadingHTTPServer((host, port), Bound)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"serve {directory}", daemon=True
    ).start()  # the poll interval bounds how long shutdown() waits
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    """Base URL (no trailing slash) of a running server."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"
