"""Offline emulator of the WEBKNOSSOS main server and its datastore.

:data:`EMULATOR` is what ``python -m neurofs_emulators.webknossos``, ``neurofs emulate
webknossos`` and ``neurofs demo`` run: the main server at ``http://HOST:PORT`` (routes under
``/api``), the datastore on a second, free port (routes under ``/data``); the ready line lists
both, ``neurofs-emulator webknossos ready <main server url> <datastore url>``. ``--data-dir``
is accepted for symmetry with the other emulators and unused: every voxel is computed from
formulas, nothing is stored. Writes change the in-memory state only. ``--api-version`` is the
current API version announced and served (12, 13 or 14). ``--sample large`` adds the scale
dataset ``large_volume`` (a 40,000 × 40,000 × 10,000 ``uint8`` layer, mags 1–64) to the demo's.

``create_app()`` builds the ASGI app for in-process use. The sample data and its ground truth
are described in :mod:`.sample`, the voxel formulas in :mod:`.volume`.
"""

from __future__ import annotations

import argparse

from neurofs_emulators.network import NetworkKnobs
from neurofs_emulators.service import Emulator, EmulatorApp, Origins
from neurofs_emulators.webknossos.app import create_app
from neurofs_emulators.webknossos.sample import (
    API_VERSIONS,
    CURRENT_API_VERSION,
    ORGANIZATION,
    OTHER_TOKEN,
    OWNER_TOKEN,
    SampleWorld,
)

__all__ = [
    "EMULATOR",
    "ORGANIZATION",
    "OTHER_TOKEN",
    "OWNER_TOKEN",
    "SampleWorld",
    "create_app",
]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-version",
        type=int,
        choices=API_VERSIONS,
        default=CURRENT_API_VERSION,
        help="the current HTTP API version announced and served (default: %(default)s)",
    )


def _build(args: argparse.Namespace, knobs: NetworkKnobs, origins: Origins) -> EmulatorApp:
    return create_app(knobs, origins=origins, api_version=args.api_version, sample=args.sample)


EMULATOR = Emulator(
    "webknossos",
    "Offline WEBKNOSSOS emulator (main server + datastore), synthetic data.",
    _build,
    _arguments,
)
