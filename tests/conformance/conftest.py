"""Fixtures for conformance tests: the official clients, in their own venv, against emulators.

The official DANDI client lives in ``.venv-conformance`` (made by ``scripts/conformance-venv``,
which is idempotent and fast once the venv exists). Tests run small Python snippets there in
a subprocess and get JSON back; the emulator runs as a real subprocess on loopback. The
emulator and mount fixtures are those of ``tests/support/fixtures.py``.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.venvs import ensure_venv, run_snippet
from tests.support.emulators import Emulator
from tests.support.fixtures import (  # noqa: F401  (fixtures of this directory and below)
    dandi_emulator,
    make_mount,
)

ClientRunner = Callable[..., Any]


@pytest.fixture(scope="session")
def conformance_python() -> Path:
    """The conformance venv's interpreter, created on first use."""
    return ensure_venv("conformance-venv", ".venv-conformance")


@pytest.fixture
def run_client(
    conformance_python: Path,
    dandi_emulator: Emulator,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> ClientRunner:
    """Run a snippet in the conformance venv; it must ``emit(obj)`` its JSON result.

    The snippet sees ``API_URL`` (the emulator's API), ``TMP`` (a scratch dir) and
    ``emit``. Keyword arguments become extra environment variables.
    """

    def run(code: str, timeout: float = 600, **env: str) -> Any:
        prelude = textwrap.dedent(
            """
            import json, os, sys
            API_URL = os.environ["NEUROFS_TEST_API_URL"]
            TMP = os.environ["NEUROFS_TEST_TMP"]
            def emit(obj):
                sys.stdout.write("\\nNEUROFS-RESULT " + json.dumps(obj) + "\\n")
            """
        )
        full_env = {
            **os.environ,
            "NEUROFS_TEST_API_URL": dandi_emulator.api_url,
            "NEUROFS_TEST_TMP": str(tmp_path),
            # No network calls to version-check services; no on-disk digest caches.
            "DANDI_NO_ET": "1",
            "DANDI_CACHE": "ignore",
            **env,
        }
        return run_snippet(conformance_python, prelude + textwrap.dedent(code), full_env, timeout)

    return run
