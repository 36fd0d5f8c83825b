"""Offline emulator of the WEBKNOSSOS main server and its datastore.

``run()`` is what ``neurofs emulate webknossos`` and ``neurofs demo`` call; ``create_app()``
builds the ASGI app for in-process use. The sample data and its ground truth are described in
:mod:`.sample`, the voxel formulas in :mod:`.volume`.
"""

from __future__ import annotations

from pathlib import Path

from neurofs_emulators.network import NetworkKnobs
from neurofs_emulators.server import serve
from neurofs_emulators.webknossos.app import EmulatorApp, Origins, create_app
from neurofs_emulators.webknossos.sample import (
    CURRENT_API_VERSION,
    ORGANIZATION,
    OTHER_TOKEN,
    OWNER_TOKEN,
    SampleWorld,
)

__all__ = [
    "ORGANIZATION",
    "OTHER_TOKEN",
    "OWNER_TOKEN",
    "EmulatorApp",
    "Origins",
    "SampleWorld",
    "create_app",
    "run",
]

SERVICE = "webknossos"


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    knobs: NetworkKnobs,
    data_dir: Path | None = None,
    api_version: int = CURRENT_API_VERSION,
) -> None:
    """Serve the WEBKNOSSOS emulator until SIGTERM/SIGINT. Prints the ready line.

    The main server is at ``http://HOST:PORT`` (routes under ``/api``); the datastore gets a
    second, free port (routes under ``/data``). The ready line lists both:
    ``neurofs-emulator webknossos ready <main server url> <datastore url>``.
    ``data_dir`` is accepted for symmetry with the other emulators and unused: every voxel is
    computed from formulas, nothing is stored. Writes change the in-memory state only.
    ``api_version`` is the current API version announced and served (12, 13 or 14).
    """
    del data_dir
    origins = Origins()
    app = create_app(knobs, origins=origins, api_version=api_version)

    def on_ready(urls: list[str]) -> None:
        # The datastore is the second socket: its port is known only once bound.
        origins.datastore_port = int(urls[1].rsplit(":", 1)[1])

    serve(app, host=host, ports=[port, 0], service=SERVICE, on_ready=on_ready)
