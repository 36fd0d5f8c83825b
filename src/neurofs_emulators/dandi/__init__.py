"""Offline emulator of the DANDI Archive REST API and its S3 object store.

:data:`EMULATOR` is what ``python -m neurofs_emulators.dandi``, ``neurofs emulate dandi`` and
``neurofs demo`` run: the API at ``http://HOST:PORT/api``, the object store on
``--blob-port`` (0: a free one); the ready line lists both, ``neurofs-emulator dandi ready
<api url> <blob store url>``. Writes change the in-memory archive only: a restart serves the
sample data again. ``--validation-delay``: seconds a written draft or asset stays Pending
(default 1, or the ``NEUROFS_EMULATOR_VALIDATION_DELAY`` environment variable).

``create_app()`` builds the ASGI app for in-process use. The sample data is described in
:mod:`.sample`.
"""

from __future__ import annotations

import argparse

from neurofs_emulators.dandi.app import create_app
from neurofs_emulators.dandi.large_dandiset import add_large_dandiset
from neurofs_emulators.dandi.sample import OTHER_TOKEN, OWNER_TOKEN, SampleArchive
from neurofs_emulators.network import NetworkKnobs
from neurofs_emulators.service import Emulator, EmulatorApp, Origins

__all__ = ["EMULATOR", "OTHER_TOKEN", "OWNER_TOKEN", "SampleArchive", "create_app"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--validation-delay",
        type=float,
        default=None,
        help="seconds a written draft or asset stays Pending (default 1)",
    )
    parser.add_argument(
        "--blob-port",
        dest="second_port",
        metavar="BLOB_PORT",
        type=int,
        default=0,
        help="the object store's port (0: a free one); fixed, it survives a restart",
    )


def _build(args: argparse.Namespace, knobs: NetworkKnobs, origins: Origins) -> EmulatorApp:
    archive = SampleArchive(args.data_dir)
    if args.sample == "large":
        add_large_dandiset(archive, args.seed)
        archive.add_scale_zarr()
    return create_app(
        archive,
        knobs,
        origins=origins,
        validation_delay=args.validation_delay,
    )


EMULATOR = Emulator(
    "dandi",
    "Offline DANDI Archive emulator with deterministic data.",
    _build,
    _arguments,
    url_paths=("/api", ""),
)
