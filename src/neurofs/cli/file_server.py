"""A read-only HTTP server of one directory tree, for browser viewers such as neuroglancer:
CORS headers (the viewer's page comes from another origin), single byte ranges, 404 for
missing files (neuroglancer takes a missing chunk for the fill value), and no way out of the
tree (``..``, NUL, symlinks leaving it)."""

from __future__ import annotations

import errno
import logging
import mimetypes
import os
import re
import socket
import stat
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("neurofs.ngurl")

# The neuroglancer Python package's client finds its server's token in its own URL
# (``/v/<token>/``); this server has no Python side, so the token is only a name. The client
# still shows the state given in the URL (its status line says it is connecting to Python).
CLIENT_PREFIX = "/v/neurofs/"


def resolve(root: Path, url_path: str) -> Path | None:
    """The file under ``root`` that ``url_path`` names, or None if it names nothing allowed:
    ``..`` or ``.`` segments, NUL bytes, and anything whose real path leaves ``root``."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path)
    parts = [p for p in path.split("/") if p]
    if "\0" in path or any(p in (".", "..") for p in parts):
        return None
    target = root.joinpath(*parts)
    real = Path(os.path.realpath(target))
    real_root = Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        return None
    return target


_CONTENT_TYPES = {
    ".zattrs": "application/json",
    ".zarray": "application/json",
    ".zgroup": "application/json",
    ".zmetadata": "application/json",
    ".json": "application/json",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
}


def content_type(path: Path) -> str:
    name = path.name
    if name in _CONTENT_TYPES:
        return _CONTENT_TYPES[name]
    if path.suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[path.suffix]
    guess, _ = mimetypes.guess_type(name)
    return guess or "application/octet-stream"


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(start, stop)`` for a single satisfiable byte range, None to send the whole file
    (no header, or several ranges), or ``"unsatisfiable"``."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if m is None:
        return None  # several ranges, or a unit we do not know: the whole file is allowed
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        return (max(0, size - n), size)
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if start >= size or stop <= start:
        return "unsatisfiable"
    return (start, stop)


_BLOCK = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    server: FileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Range")
        self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range")

    def _error(self, status: HTTPStatus, message: str, head: bool) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_OPTIONS(self) -> None:
        self.send_response(HTTPStatus.NO_CONTENT)
        self._cors()
        self.send_header("Access-Control-Max-Age", "3600")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_POST(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "read-only", head=False)

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _serve(self, head: bool) -> None:
        path = self.server.lookup(self.path)
        if path is None:
            self._error(HTTPStatus.FORBIDDEN, "outside the served directory", head)
            return
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "not a file")
                self._send_file(f, path, st.st_size, head)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            # neuroglancer takes a missing chunk for the fill value.
            self._error(HTTPStatus.NOT_FOUND, "not found", head)
        except PermissionError:
            self._error(HTTPStatus.FORBIDDEN, "permission denied", head)
        except OSError as exc:
            log.warning("reading %s failed: %s", path, exc)
            self._error(HTTPStatus.BAD_GATEWAY, f"reading failed: {exc.strerror}", head)

    def _send_file(self, f: Any, path: Path, size: int, head: bool) -> None:
        span = parse_range(self.headers.get("Range"), size)
        if span == "unsatisfiable":
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self._cors()
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, stop = span if isinstance(span, tuple) else (0, size)
        # The first block is read before answering, so that a failed read is an error
        # status; a later failure cuts the body short, which the client sees as an error.
        f.seek(start)
        block = b"" if head else f.read(min(_BLOCK, stop - start))
        if not head and stop > start and not block:
            raise OSError(errno.EIO, "short read")
        self.send_response(HTTPStatus.PARTIAL_CONTENT if isinstance(span, tuple) else HTTPStatus.OK)
        self._cors()
        self.send_header("Content-Type", content_type(path))
        self.send_header("Accept-Ranges", "bytes")
        if isinstance(span, tuple):
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        if head:
            return
        sent = 0
        while block:
            self.wfile.write(block)
            sent += len(block)
            block = f.read(min(_BLOCK, stop - start - sent)) if sent < stop - start else b""
        if sent != stop - start:
            self.close_connection = True


class FileServer(ThreadingHTTPServer):
    """Serves ``root`` read-only; with ``client_dir``, also the neuroglancer client at ``/``."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], root: Path, client_dir: Path | None = None
    ) -> None:
        self.root = root
        self.client_dir = client_dir
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def lookup(self, url_path: str) -> Path | None:
        if self.client_dir is not None:
            rel = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path)
            if rel.startswith(CLIENT_PREFIX):
                name = rel.removeprefix(CLIENT_PREFIX) or "index.html"
                # The client's files sit flat in its directory.
                if "/" in name or "\0" in name or name in (".", ".."):
                    return None
                return self.client_dir / name
        return resolve(self.root, url_path)


def base_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
