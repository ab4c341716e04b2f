"""A threaded HTTP server on 127.0.0.1 that honours Range requests and counts what it sends.

Python's ``http.server`` ignores ``Range``; remote ingest needs it, so the tests serve the
real NWB files through this handler (single ranges, ``bytes=a-b``, ``bytes=a-`` and
``bytes=-n``), and read ``bytes_sent`` to check how much of a file travelled.
"""

from __future__ import annotations

import re
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _Handler(SimpleHTTPRequestHandler):
    server: RangeServer

    def log_message(self, format, *args):
        pass

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        size = path.stat().st_size
        start, stop = 0, size - 1
        header = self.headers.get("Range")
        status = HTTPStatus.OK
        if header:
            m = _RANGE.match(header.strip())
            if not m or m.groups() == ("", ""):
                self.send_error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                return
            a, b = m.groups()
            if a == "":
                start = max(size - int(b), 0)
            else:
                start, stop = int(a), min(int(b), size - 1) if b else size - 1
            if start >= size or start > stop:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT
        length = stop - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.end_headers()
        with self.server.lock:
            self.server.requests.append((self.command, self.path, header))
        if not body:
            return
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(length)
        self.wfile.write(data)
        with self.server.lock:
            self.server.bytes_sent += len(data)


class RangeServer(ThreadingHTTPServer):
    """Serve ``directory`` on 127.0.0.1 (a free port) in a daemon thread.

    Use as a context manager; ``url(name)`` is a file's URL, ``bytes_sent`` the body bytes
    sent so far and ``requests`` the (method, path, Range header) of each request.
    """

    daemon_threads = True

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)
        self.lock = threading.Lock()
        self.bytes_sent = 0
        self.requests: list[tuple[str, str, str | None]] = []

        def handler(*args, **kwargs):
            return _Handler(*args, directory=self.directory, **kwargs)

        super().__init__(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"

    def reset(self) -> None:
        with self.lock:
            self.bytes_sent = 0
            self.requests.clear()

    def __enter__(self) -> RangeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
