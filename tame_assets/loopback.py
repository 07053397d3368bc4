"""A small HTTP file server on 127.0.0.1: Content-Length, byte ranges (206) and Apache-style
directory index pages. It serves the embedded sample archive to the real download clients."""

from __future__ import annotations

import contextlib
import html
import os
import re
import threading
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")


class ArchiveRequestHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range`` support and ``<a href>`` index pages like Apache's."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def list_directory(self, path: str):
        names = sorted(os.listdir(path))
        links = []
        for name in names:
            full = os.path.join(path, name)
            shown = name + "/" if os.path.isdir(full) else name
            links.append(f'<tr><td><a href="{urllib.parse.quote(shown)}">{html.escape(shown)}</a></td></tr>')
        title = html.escape(urllib.parse.unquote(self.path))
        body = (
            f"<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html><head><title>Index of {title}</title></head>"
            f"<body><h1>Index of {title}</h1><table><tr><th>Name</th></tr>"
            '<tr><td><a href="../">Parent Directory</a></td></tr>' + "".join(links) + "</table></body></html>\n"
        ).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io

        return io.BytesIO(body)

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path) or "Range" not in self.headers:
            return super().send_head()
        match = RANGE_RE.match(self.headers["Range"].strip())
        if not match or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(match.group(1) or 0)
        end = int(match.group(2)) if match.group(2) else size - 1
        if start >= size:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        fh = open(path, "rb")
        fh.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return fh

    def copyfile(self, source, outputfile) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None


@contextlib.contextmanager
def serve_directory(root: Path, host: str = "127.0.0.1", port: int = 0,
                    handler: type[ArchiveRequestHandler] = ArchiveRequestHandler) -> Iterator[str]:
    """Serve ``root`` over HTTP in a daemon thread; yields the base URL (no trailing slash)."""
    server = start_server(root, host, port, handler)
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def start_server(root: Path, host: str = "127.0.0.1", port: int = 0,
                 handler: type[ArchiveRequestHandler] = ArchiveRequestHandler) -> ThreadingHTTPServer:
    """Start (and return) a daemon-thread server for ``root``; caller shuts it down."""
    bound = type("BoundHandler", (handler,), {"__init__": _bind(handler, str(root))})
    server = ThreadingHTTPServer((host, port), bound)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"serve {root}", daemon=True).start()
    return server


def _bind(handler, directory: str):
    def __init__(self, *args, **kwargs):
        handler.__init__(self, *args, directory=directory, **kwargs)

    return __init__
