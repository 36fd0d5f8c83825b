"""Offline emulator of CAVE: the global server (info, schema, neuroglancer states) and a
local server (annotation engine, materialization engine).

:data:`EMULATOR` is what ``python -m neurofs_emulators.cave``, ``neurofs emulate cave`` and
``neurofs demo`` run: the global server at ``http://HOST:PORT``, the local server on a second,
free port; the ready line lists both, ``neurofs-emulator cave ready <global url> <local
url>``. ``--sample large`` adds a 10,000,000-row table computed on the fly;
``--row-cap N`` caps the rows of every materialization query at N. ``--data-dir`` is
accepted for symmetry with the other emulators and unused: the
sample is generated in memory at start (well under a second). Writes change the in-memory
state only.

``create_app()`` builds the ASGI app for in-process use. The sample data and its ground truth
are described in :mod:`.sample`; the engines' behaviour, quirks included, in
:mod:`.annotation`, :mod:`.materialize`, :mod:`.globalserver` and :mod:`.auth`.
"""

from __future__ import annotations

import argparse

from neurofs_emulators.cave.app import create_app
from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME,
    DATASTACK,
    EDITOR_TOKEN,
    OTHER_TOKEN,
    OWNER_TOKEN,
    TOS_TOKEN,
    SampleCave,
    build_state,
)
from neurofs_emulators.network import NetworkKnobs
from neurofs_emulators.service import Emulator, EmulatorApp, Origins

__all__ = [
    "ALIGNED_VOLUME",
    "DATASTACK",
    "EDITOR_TOKEN",
    "EMULATOR",
    "OTHER_TOKEN",
    "OWNER_TOKEN",
    "TOS_TOKEN",
    "SampleCave",
    "create_app",
]


def _build(args: argparse.Namespace, knobs: NetworkKnobs, origins: Origins) -> EmulatorApp:
    return create_app(knobs, state=build_state(args.sample), origins=origins, row_cap=args.row_cap)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--row-cap",
        type=int,
        default=None,
        help="rows per materialization query, whatever the client asks (the deployment's "
        "QUERY_LIMIT_SIZE; default 200000)",
    )


EMULATOR = Emulator(
    "cave",
    "Offline CAVE emulator (global server + local server) with sample data.",
    _build,
    _arguments,
)
