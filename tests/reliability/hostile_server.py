"""A hostile server on loopback: DANDI-, WEBKNOSSOS- and CAVE-shaped answers with hostile content.

It answers just enough of each API for a mount to list and read, and everything it serves is
what a broken or malicious server could send: names with ``/``, NUL, ``..``, control
characters, over 255 bytes, differing only by case or mapping to the same safe name; sizes
that lie; listings that loop or never end; redirect loops; redirects to another host.

Two instances make two origins: the API server, and a "blob host" that download redirects
point to (as DANDI's point to S3). Both record every request with its headers, so tests can
check that the service's token never reaches the blob host.

    with HostileServer() as blobs, HostileServer(blob_host=blobs) as api:
        api.url, api.requests(), blobs.requests()

The server runs in threads of the test process (http.server): it needs no emulator process
and can write the raw bytes a well-behaved framework would refuse to (lying Content-Length,
cut bodies, endless bodies).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

TOKEN = "hostile-test-token-+/=%&?"  # characters that change when put in a URL
STAMP = "2024-01-01T00:00:00Z"
SIZE = 1000  # what the metadata says of every blob


def blob_bytes(blob_id: str, size: int = SIZE) -> bytes:
    """The true content of a blob: deterministic, different per blob."""
    seed = hashlib.sha256(blob_id.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


# ---------------------------------------------------------------- DANDI: names

# Asset paths of dandiset 000001. Every path component is hostile in a different way; each
# asset's bytes are its own, so a test can tell which one it read.
HOSTILE_PATHS = [
    "plain.txt",
    "Case.txt",
    "case.txt",  # differs only by case
    "ctl\x01.txt",
    "ctl\x02.txt",  # both map to "ctl�.txt": must stay two files
    "ctl\ufffd.txt",  # and this one is literally that name
    "nul\x00name.txt",
    "tab\tand\nnewline.txt",
    "escape\x1b[31mred.txt",
    "del\x7f.txt",
    "slash\u2215lookalike.txt",
    "dots/..",  # files called ".." and "."
    "dots/.",
    "../../../../etc/passwd",  # components "..": never a path outside the tree
    "dir/./x.txt",
    "dir/../y.txt",
    "folder//double.txt",
    "long-" + "n" * 300 + ".txt",
    "long-" + "n" * 300 + ".txT",  # same first 255 bytes as the previous one
    "é" * 130,  # 260 bytes of two-byte characters
    "\ud800lone-surrogate.txt",  # not encodable as UTF-8
    "bidi\u202etxt.exe",
    " leading-and-trailing-space ",
]

# ---------------------------------------------------------------- DANDI: lying sizes

# name → how the blob host answers a range request for it (the metadata says SIZE bytes).
LYING_BLOBS = {
    "honest.bin": "honest",
    "shorter.bin": "shorter",  # the object is 600 bytes: Content-Range says /600
    "longer.bin": "longer",  # the object is 2000 bytes: Content-Range says /2000
    "cut.bin": "cut",  # Content-Length 1000, 600 bytes sent, connection closed
    "overlong.bin": "overlong",  # 206 for 0-999 with 1200 bytes of body
    "wrong-range.bin": "wrong-range",  # 206 with Content-Range of other bytes
    "full-200-short.bin": "200-short",  # 200 (Range ignored) with 600 bytes
    "no-content-range.bin": "no-content-range",  # 206 without Content-Range
}


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class _State:
    url: str = ""
    blob_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _asset(asset_id: str, path: str, size: int = SIZE) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "blob": f"blob-{asset_id}",
        "zarr": None,
        "path": path,
        "size": size,
        "created": STAMP,
        "modified": STAMP,
    }


def _version(asset_count: int) -> dict[str, Any]:
    return {
        "version": "draft",
        "name": "hostile",
        "asset_count": asset_count,
        "size": 0,
        "status": "Valid",
        "created": STAMP,
        "modified": STAMP,
    }


DANDISETS: dict[str, list[dict[str, Any]]] = {
    "000001": [_asset(f"n{i}", p) for i, p in enumerate(HOSTILE_PATHS)],
    "000002": [_asset(f"s-{name}", name) for name in LYING_BLOBS],
    "000003": [],  # assets: a page whose next link is itself
    "000004": [],  # assets: an endless JSON body
    "000005": [_asset("redirect-loop", "loop.bin")],  # download: redirects forever
    "000006": [],  # the dandiset itself: a redirect loop on the API
    "000007": [],  # the dandiset itself: redirected to another host
    "000008": [],  # assets: empty pages that never end
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # ------------------------------------------------------------ plumbing

    def _record(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        state = self.server.state
        with state.lock:
            state.requests.append(
                Recorded(self.command, parts.path, parts.query, dict(self.headers.items()))
            )
        return parts.path, parse_qs(parts.query)

    def _json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _raw(self, status: int, headers: dict[str, str], body: bytes, close: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        if close:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.shutdown(2)

    def do_GET(self) -> None:
        path, query = self._record()
        for pattern, handler in _ROUTES:
            m = re.fullmatch(pattern, path)
            if m:
                handler(self, query, *m.groups())
                return
        self._json({"detail": "Not found."}, 404)

    def do_PUT(self) -> None:
        self._record()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # Every write is "redirected to a login page": never a success.
        self._redirect("/login")

    do_POST = do_PUT
    do_PATCH = do_PUT

    # ------------------------------------------------------------ DANDI

    def dandi_info(self, query: dict[str, list[str]]) -> None:
        self._json({"schema_version": "0.6.4"})

    def dandisets(self, query: dict[str, list[str]]) -> None:
        results = [self._dandiset(i) for i in DANDISETS]
        self._json({"count": len(results), "next": None, "results": results})

    def _dandiset(self, identifier: str) -> dict[str, Any]:
        return {
            "identifier": identifier,
            "created": STAMP,
            "modified": STAMP,
            "embargo_status": "OPEN",
            "draft_version": _version(len(DANDISETS[identifier])),
            "most_recent_published_version": None,
        }

    def dandiset(self, query: dict[str, list[str]], identifier: str) -> None:
        if identifier == "000006":
            self._redirect(f"{self.server.state.url}/api/dandisets/000006/", 301)
        elif identifier == "000007":
            self._redirect(f"{self.server.state.blob_url}/api/dandisets/000007/", 302)
        elif identifier in DANDISETS:
            self._json(self._dandiset(identifier))
        else:
            self._json({"detail": "Not found."}, 404)

    def version_info(self, query: dict[str, list[str]], identifier: str) -> None:
        self._json({**_version(len(DANDISETS.get(identifier, []))), "metadata": {"name": "x"}})

    def assets(self, query: dict[str, list[str]], identifier: str) -> None:
        page = int(query.get("page", ["1"])[0])
        base = f"{self.server.state.url}/api/dandisets/{identifier}/versions/draft/assets/"
        if identifier == "000003":  # next → itself
            self._json({"next": f"{base}?page=1", "results": [_asset("loop", "loop.txt")]})
        elif identifier == "000004":
            self._endless_json()
        elif identifier == "000008":  # count withheld, a new (empty) page every time
            self._json({"next": f"{base}?page={page + 1}", "results": []})
        else:
            results = DANDISETS.get(identifier, [])
            self._json({"count": len(results), "next": None, "results": results})

    def _endless_json(self) -> None:
        """A listing that never ends: a JSON array streamed until the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        item = json.dumps(_asset("x", "endless.txt")).encode() + b","
        chunk = item * (1024 * 1024 // len(item))
        with contextlib.suppress(OSError):
            self.wfile.write(b'{"count": null, "next": null, "results": [')
            for _ in range(100_000):  # 100 GB: far beyond any bound; the client gives up
                self.wfile.write(chunk)

    def download(self, query: dict[str, list[str]], asset_id: str) -> None:
        # As DANDI does: a redirect to a presigned URL on another host (S3).
        if asset_id == "redirect-loop":
            self._redirect(f"{self.server.state.blob_url}/loop?X-Amz-Signature=abc")
            return
        self._redirect(f"{self.server.state.blob_url}/blobs/{asset_id}?X-Amz-Signature=abc")

    # ------------------------------------------------------------ the blob host

    def blob(self, query: dict[str, list[str]], asset_id: str) -> None:
        name = next((n for n in LYING_BLOBS if f"s-{n}" == asset_id), None)
        mode = LYING_BLOBS.get(name or "", "honest")
        true_size = {"shorter": 600, "longer": 2000}.get(mode, SIZE)
        data = blob_bytes(f"blob-{asset_id}", true_size)
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        start, end = (int(m.group(1)), int(m.group(2))) if m else (0, true_size - 1)
        end = min(end, true_size - 1)
        part = data[start : end + 1]
        octet = {"Content-Type": "application/octet-stream"}
        if mode == "cut":
            self._raw(
                206,
                {
                    **octet,
                    "Content-Range": f"bytes {start}-{end}/{SIZE}",
                    "Content-Length": str(len(part)),
                },
                part[:600],
                close=True,
            )
        elif mode == "overlong":
            body = part + b"\0" * 200
            headers = {**octet, "Content-Range": f"bytes {start}-{end}/{SIZE}"}
            self._raw(206, {**headers, "Content-Length": str(len(body))}, body)
        elif mode == "wrong-range":
            headers = {**octet, "Content-Range": f"bytes {start + 1}-{end + 1}/{SIZE}"}
            self._raw(206, {**headers, "Content-Length": str(len(part))}, part)
        elif mode == "200-short":
            self._raw(200, {**octet, "Content-Length": "600"}, data[:600])
        elif mode == "no-content-range":
            self._raw(206, {**octet, "Content-Length": str(len(part))}, part)
        else:
            headers = {**octet, "Content-Range": f"bytes {start}-{end}/{true_size}"}
            self._raw(206, {**headers, "Content-Length": str(len(part))}, part)

    def loop(self, query: dict[str, list[str]]) -> None:
        self._redirect(f"{self.server.state.blob_url}/loop?X-Amz-Signature=abc")

    # ------------------------------------------------------------ WEBKNOSSOS

    def wk_buildinfo(self, query: dict[str, list[str]]) -> None:
        self._json({"httpApiVersioning": {"currentApiVersion": 12, "oldestSupportedApiVersion": 5}})

    def wk_datasets(self, query: dict[str, list[str]]) -> None:
        self._json(WK_DATASETS)

    def wk_dataset(self, query: dict[str, list[str]], ident: str) -> None:
        found = [d for d in WK_DATASETS if d["id"] == ident and ident not in WK_GONE]
        self._json(
            found[0] if found else {"messages": [{"error": "not found"}]}, 200 if found else 404
        )

    def wk_sharing_token(self, query: dict[str, list[str]], ident: str) -> None:
        self._json({"sharingToken": f"hostile-sharing-{ident}"})

    def wk_folders(self, query: dict[str, list[str]]) -> None:
        self._json(WK_FOLDERS)

    def wk_list(self, query: dict[str, list[str]]) -> None:
        self._json([])

    # ------------------------------------------------------------ CAVE

    def cave_info(self, query: dict[str, list[str]], datastack: str) -> None:
        self._json({"local_server": self.server.state.url, "aligned_volume": {"name": "volume"}})

    def cave_tables(self, query: dict[str, list[str]]) -> None:
        self._json(CAVE_TABLES)

    def cave_types(self, query: dict[str, list[str]]) -> None:
        self._json(["synapse"])


WK_HUGE = 2**31 - 1  # the largest extent a 32-bit coordinate allows


def _wk_dataset(
    ident: str, name: str, org: str, layers: list[str], width: int = 64
) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "owningOrganization": org,
        "dataStore": {"name": "ds", "url": "http://127.0.0.1:9"},
        "dataSource": {
            "dataLayers": [
                {
                    "name": layer,
                    "category": "color",
                    "elementClass": "uint8",
                    "boundingBox": {
                        "topLeft": [0, 0, 0],
                        "width": width,
                        "height": width,
                        "depth": width,
                    },
                    "mags": [{"mag": [1, 1, 1]}],
                }
                for layer in layers
            ],
            "scale": {"factor": [1, 1, 1]},
        },
        "folderId": "root",
        "created": 1,
    }


WK_DATASETS = [
    _wk_dataset("d1", "../escape", "org/with/slashes", ["color", "color", "col\x00or", ".."]),
    _wk_dataset("d2", "../escape", "org/with/slashes", ["x" * 300]),  # same name, other id
    _wk_dataset("d3", "huge", "..", ["color"], width=WK_HUGE),
    _wk_dataset("d4", "", "", ["a/b"]),
    _wk_dataset("d5", "ctl\x01", "org\x01", []),
    _wk_dataset("d6", "ctl\x02", "org\x02", []),
    _wk_dataset("d7", "vanishing", "lab", ["color"]),  # listed, but its own route says 404
]
WK_GONE = {"d7"}
# Two folders named alike under the root, and a cycle (c1 ↔ c2) that is not under any root.
WK_FOLDERS = [
    {"id": "root", "name": "Root", "parent": None},
    {"id": "f1", "name": "same", "parent": "root"},
    {"id": "f2", "name": "same", "parent": "root"},
    {"id": "f3", "name": "..", "parent": "root"},
    {"id": "f4", "name": "a/b", "parent": "root"},
    {"id": "c1", "name": "cycle-1", "parent": "c2"},
    {"id": "c2", "name": "cycle-2", "parent": "c1"},
]
CAVE_TABLES = ["synapse", "syn/apse", "..", "", "t\x01", "t\x02", "T\x01", "x" * 300, "synapse"]


_ROUTES: list[tuple[str, Any]] = [
    (r"/api/info/", _Handler.dandi_info),
    (r"/api/dandisets/", _Handler.dandisets),
    (r"/api/dandisets/(\d{6})/", _Handler.dandiset),
    (r"/api/dandisets/(\d{6})/versions/draft/info/", _Handler.version_info),
    (r"/api/dandisets/(\d{6})/versions/draft/assets/", _Handler.assets),
    (r"/api/assets/([^/]+)/download/", _Handler.download),
    (r"/blobs/([^/]+)", _Handler.blob),
    (r"/loop", _Handler.loop),
    (r"/api/buildinfo", _Handler.wk_buildinfo),
    (r"/api/v12/datasets", _Handler.wk_datasets),
    (r"/api/v12/datasets/([^/]+)", _Handler.wk_dataset),
    (r"/api/v12/datasets/([^/]+)/sharingToken", _Handler.wk_sharing_token),
    (r"/api/v12/folders/tree", _Handler.wk_folders),
    (r"/api/v12/(?:teams|taskTypes|projects)", _Handler.wk_list),
    (r"/info/api/v2/datastack/full/([^/]+)", _Handler.cave_info),
    (r"/annotation/api/v2/aligned_volume/volume/table", _Handler.cave_tables),
    (r"/schema/api/v2/type", _Handler.cave_types),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class HostileServer:
    """One origin on loopback (see the module docstring)."""

    def __init__(self, blob_host: HostileServer | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._server.state.url = self.url
        self._server.state.blob_url = blob_host.url if blob_host else self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def requests(self) -> list[Recorded]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
