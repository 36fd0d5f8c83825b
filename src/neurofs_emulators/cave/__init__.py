"""Offline emulator of CAVE: the global server (info, schema, neuroglancer states) and a
local server (annotation engine, materialization engine).

``run()`` is what ``neurofs emulate cave`` and ``neurofs demo`` call; ``create_app()`` builds
the ASGI app for in-process use. The sample data and its ground truth are described in
:mod:`.sample`; the engines' behaviour, quirks included, in :mod:`.annotation`,
:mod:`.materialize`, :mod:`.globalserver` and :mod:`.auth`.
"""

from __future__ import annotations

from pathlib import Path

from neurofs_emulators.cave.app import EmulatorApp, Origins, create_app
from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME,
    DATASTACK,
    EDITOR_TOKEN,
    OTHER_TOKEN,
    OWNER_TOKEN,
    TOS_TOKEN,
    SampleCave,
)
from neurofs_emulators.network import NetworkKnobs
from neurofs_emulators.server import serve

__all__ = [
    "ALIGNED_VOLUME",
    "DATASTACK",
    "EDITOR_TOKEN",
    "OTHER_TOKEN",
    "OWNER_TOKEN",
    "TOS_TOKEN",
    "EmulatorApp",
    "Origins",
    "SampleCave",
    "create_app",
    "run",
]

SERVICE = "cave"


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    knobs: NetworkKnobs,
    data_dir: Path | None = None,
) -> None:
    """Serve the CAVE emulator until SIGTERM/SIGINT. Prints the ready line.

    The global server is at ``http://HOST:PORT``; the local server gets a second, free port.
    The ready line lists both: ``neurofs-emulator cave ready <global url> <local url>``.
    ``data_dir`` is accepted for symmetry with the other emulators and unused: the sample is
    generated in memory at start (well under a second). Writes change the in-memory state only.
    """
    del data_dir
    origins = Origins()
    app = create_app(knobs, origins=origins)

    def on_ready(urls: list[str]) -> None:
        # Ports are known only once bound; the info service must name the local origin.
        origins.global_port = int(urls[0].rsplit(":", 1)[1])
        origins.local_port = int(urls[1].rsplit(":", 1)[1])

    serve(app, host=host, ports=[port, 0], service=SERVICE, on_ready=on_ready)
