"""The preview's HTTP server: the page, its config and the store, on 127.0.0.1 only.

Store objects are served under ``/store/`` with single byte ranges (zarrita reads shard
indexes by suffix range and chunks by offset range) and CORS headers, so the same URL also
works from a page served elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

from topozarr.preview.objects import ObjectReader, object_reader

HOST = "127.0.0.1"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, Content-Type",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, Accept-Ranges",
}


def static_files() -> Any:
    """The shipped page and bundle (package data)."""
    return resources.files("topozarr.preview") / "static"


def byte_range(header: str | None, size: int) -> tuple[int, int]:
    """``(start, stop)`` of a ``Range: bytes=...`` header; the whole object without one.

    Raises
    ------
    ValueError
        The range is malformed or starts past the end (HTTP 416).
    """
    if not header:
        return (0, size)
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise ValueError(header)
    first, last = match.groups()
    if first == "":  # suffix: the last N bytes
        return (max(0, size - int(last)), size)
    start = int(first)
    stop = size if last == "" else min(size, int(last) + 1)
    if start >= size or stop <= start:
        raise ValueError(header)
    return (start, stop)


class _Handler(BaseHTTPRequestHandler):
    server: PreviewServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per chunk request would drown the terminal

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {**_CORS, "Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_OPTIONS(self) -> None:
        self._send(HTTPStatus.NO_CONTENT, b"", {})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        try:
            if path.startswith("/store/"):
                self._store(path.removeprefix("/store/"))
            elif path == "/config.json":
                body = json.dumps(self.server.config).encode()
                self._send(HTTPStatus.OK, body, {"Content-Type": "application/json"})
            else:
                self._static(path)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page navigated away mid-response

    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        item = static_files() / name
        if "/" in name or not item.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"not found", {"Content-Type": "text/plain"})
            return
        kind = _TYPES.get("." + name.rsplit(".", 1)[-1], "application/octet-stream")
        self._send(HTTPStatus.OK, item.read_bytes(), {"Content-Type": kind})

    def _store(self, key: str) -> None:
        objects = self.server.objects
        size = objects.size(key) if key else None
        if size is None:
            self._send(HTTPStatus.NOT_FOUND, b"", {})
            return
        try:
            start, stop = byte_range(self.headers.get("Range"), size)
        except ValueError:
            self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", {
                "Content-Range": f"bytes */{size}"
            })  # fmt: skip
            return
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        status = HTTPStatus.OK
        if self.headers.get("Range"):
            status = HTTPStatus.PARTIAL_CONTENT
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        body = b"" if self.command == "HEAD" else objects.read(key, start, stop)
        if self.command == "HEAD":
            headers["Content-Length"] = str(stop - start)
        self._send(status, body, headers)


class PreviewServer(ThreadingHTTPServer):
    """Serves one pyramid's preview on ``http://127.0.0.1:<port>/``.

    Parameters
    ----------
    store
        A local path or an ``s3://bucket/prefix`` URL.
    variable
        The variable shown first.
    port
        0 picks a free port.
    """

    daemon_threads = True

    def __init__(self, store: str, *, variable: str | None = None, port: int = 0) -> None:
        from topozarr.inspect_store import open_root
        from topozarr.preview.config import preview_config

        self.config = preview_config(open_root(store), variable=variable)
        self.config["name"] = store
        self.objects: ObjectReader = object_reader(store)
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as err:
            raise OSError(
                f"cannot listen on {HOST}:{port} ({err.strerror}); choose another --port"
            ) from err

    @property
    def url(self) -> str:
        """The page's address."""
        return f"http://{HOST}:{self.server_address[1]}/"

    def start(self) -> threading.Thread:
        """Serve from a daemon thread (tests, notebooks); :meth:`shutdown` stops it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread


def serve_preview(
    store: str, *, variable: str | None = None, port: int = 0, open_browser: bool = True
) -> None:
    """Serve the preview until Ctrl-C, opening it in the default browser unless told not to."""
    import sys
    import webbrowser

    with PreviewServer(store, variable=variable, port=port) as server:
        if server.config.get("problem"):
            print(f"topozarr: warning: {server.config['problem']}", file=sys.stderr)
        print(f"previewing {store} at {server.url} (Ctrl-C to stop)", flush=True)
        if open_browser:
            webbrowser.open(server.url)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a preview ends
            server.serve_forever()
