"""Offline emulator of the DANDI Archive REST API and its S3 object store.

``run()`` is what ``neurofs emulate dandi`` and ``neurofs demo`` call; ``create_app()`` builds
the ASGI app for in-process use. The sample data is described in :mod:`.sample`.
"""

from __future__ import annotations

from pathlib import Path

from neurofs_emulators.dandi.app import Origins, create_app
from neurofs_emulators.dandi.sample import OTHER_TOKEN, OWNER_TOKEN, SampleArchive
from neurofs_emulators.network import NetworkKnobs
from neurofs_emulators.server import serve

__all__ = ["OTHER_TOKEN", "OWNER_TOKEN", "Origins", "SampleArchive", "create_app", "run"]

SERVICE = "dandi"


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    blob_port: int = 0,
    knobs: NetworkKnobs,
    data_dir: Path | None = None,
    validation_delay: float | None = None,
) -> None:
    """Serve the DANDI emulator until SIGTERM/SIGINT. Prints the ready line.

    The API is at ``http://HOST:PORT/api``; the object store is on ``blob_port`` (0: a free
    one).
    The ready line lists both: ``neurofs-emulator dandi ready <api url> <blob store url>``.
    Writes change the in-memory archive only: a restart serves the sample data again.
    ``validation_delay``: seconds a written draft or asset stays Pending (default 1, or the
    ``NEUROFS_EMULATOR_VALIDATION_DELAY`` environment variable).
    """
    archive = SampleArchive(data_dir)
    origins = Origins()
    app = create_app(archive, knobs, origins=origins, validation_delay=validation_delay)

    def on_ready(urls: list[str]) -> None:
        # The object store is the second socket: its port is known only once bound.
        origins.blob_port = int(urls[1].rsplit(":", 1)[1])

    serve(
        app,
        host=host,
        ports=[port, blob_port],
        service=SERVICE,
        on_ready=on_ready,
        url_paths=["/api", ""],
    )
