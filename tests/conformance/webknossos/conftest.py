"""Fixtures for the WEBKNOSSOS conformance tests: the official ``webknossos`` client, in its
own venv (``.venv-conformance-webknossos``, made by ``scripts/conformance-venv-webknossos``),
against the WEBKNOSSOS emulator running as a real subprocess on loopback.

Tests run small Python snippets in that venv and get JSON back. The snippets import nothing
from neurofs: expected voxel arrays are handed over as ``.npy`` files written by the test.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from neurofs_emulators.webknossos.sample import OWNER_TOKEN
from tests.conformance.venvs import ensure_venv, run_snippet
from tests.support.emulators import WkEmulator, started_wk_emulator

WkClientRunner = Callable[..., Any]


@pytest.fixture(scope="session")
def wk_conformance_python() -> Path:
    """The WEBKNOSSOS conformance venv's interpreter, created on first use."""
    return ensure_venv("conformance-venv-webknossos", ".venv-conformance-webknossos")


@pytest.fixture
def wk_emulator() -> Iterator[WkEmulator]:
    """Here, unlike elsewhere (``tests/support/fixtures.py``: one per module), an emulator
    per test: the client writes, and tests stay independent. It announces API v14: the
    official client refuses a server at v12, the emulator's default."""
    with started_wk_emulator(14) as emulator:
        yield emulator


@pytest.fixture
def run_wk_client(
    wk_conformance_python: Path, wk_emulator: WkEmulator, tmp_path: Path
) -> WkClientRunner:
    """Run a snippet in the conformance venv; it must ``emit(obj)`` its JSON result.

    The snippet sees ``WK_URL`` (the main server), ``TMP`` (a scratch dir) and ``emit``;
    the client takes the server and token from ``WK_URL`` / ``WK_TOKEN`` (owner token unless
    overridden). Keyword arguments become extra environment variables.
    """

    def run(code: str, timeout: float = 600, **env: str) -> Any:
        prelude = textwrap.dedent(
            """
            import json, os, sys
            WK_URL = os.environ["WK_URL"]
            TMP = os.environ["NEUROFS_TEST_TMP"]
            def emit(obj):
                sys.stdout.write("\\nNEUROFS-RESULT " + json.dumps(obj) + "\\n")
            """
        )
        full_env = {
            **os.environ,
            "WK_URL": wk_emulator.urls[0],
            "WK_TOKEN": OWNER_TOKEN,
            "NEUROFS_TEST_TMP": str(tmp_path),
            # No background version check against PyPI on import.
            "WEBKNOSSOS_SKIP_VERSION_CHECK": "True",
            **env,
        }
        # cwd: the client reads a .env file from the working directory.
        return run_snippet(
            wk_conformance_python, prelude + textwrap.dedent(code), full_env, timeout, cwd=tmp_path
        )

    return run
