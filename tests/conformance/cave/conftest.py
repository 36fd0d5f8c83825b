"""Fixtures for the CAVE conformance tests: the official ``caveclient``, in its own venv
(``.venv-conformance-cave``, made by ``scripts/conformance-venv-cave``), against the CAVE
emulator running as a real subprocess on loopback.

Tests run small Python snippets in that venv and get JSON back. The client is pointed at the
emulator with ``server_address`` and ``auth_token`` and never writes the user's home: ``HOME``
is a temporary directory (the client would otherwise cache the datastack → server map and look
for token files under ``~/.cloudvolume``), and snippets pass ``write_server_cache=False``.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from neurofs_emulators.cave.sample import OWNER_TOKEN
from tests.conformance.venvs import ensure_venv, run_snippet
from tests.support.emulators import CaveEmulator, started_cave_emulator

CaveClientRunner = Callable[..., Any]


@pytest.fixture(scope="session")
def cave_conformance_python() -> Path:
    """The CAVE conformance venv's interpreter, created on first use."""
    return ensure_venv("conformance-venv-cave", ".venv-conformance-cave")


@pytest.fixture
def cave_emulator() -> Iterator[CaveEmulator]:
    """Here, unlike elsewhere (``tests/support/fixtures.py``: one per module), an emulator
    per test: the client writes, and tests stay independent."""
    with started_cave_emulator() as emulator:
        yield emulator


@pytest.fixture
def run_cave_client(
    cave_conformance_python: Path, cave_emulator: CaveEmulator, tmp_path: Path
) -> CaveClientRunner:
    """Run a snippet in the conformance venv; it must ``emit(obj)`` its JSON result.

    The snippet sees ``client`` (a ``CAVEclient`` on the emulator's datastack with the owner's
    token), ``GLOBAL_URL``, ``TMP`` and ``emit``. Keyword arguments become environment
    variables.
    """

    def run(code: str, timeout: float = 600, **env: str) -> Any:
        prelude = textwrap.dedent(
            """
            import json, os, sys
            from caveclient import CAVEclient
            GLOBAL_URL = os.environ["CAVE_GLOBAL_URL"]
            TMP = os.environ["NEUROFS_TEST_TMP"]
            def emit(obj):
                sys.stdout.write("\\nNEUROFS-RESULT " + json.dumps(obj, default=str) + "\\n")
            client = CAVEclient(
                os.environ["CAVE_DATASTACK"],
                server_address=GLOBAL_URL,
                auth_token=os.environ["CAVE_TOKEN"],
                write_server_cache=False,
            )
            """
        )
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        full_env = {
            **os.environ,
            "HOME": str(home),
            "CAVE_GLOBAL_URL": cave_emulator.urls[0],
            "CAVE_DATASTACK": "neurofs_demo",
            "CAVE_TOKEN": OWNER_TOKEN,
            "NEUROFS_TEST_TMP": str(tmp_path),
            **env,
        }
        return run_snippet(
            cave_conformance_python,
            prelude + textwrap.dedent(code),
            full_env,
            timeout,
            cwd=tmp_path,
        )

    return run
