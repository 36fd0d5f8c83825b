"""The official clients' virtualenvs, made by the scripts/conformance-venv* scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.unavailable import unavailable

REPO = Path(__file__).resolve().parents[2]


def ensure_venv(script: str, venv: str) -> Path:
    """Run ``scripts/<script>`` (idempotent) and return ``<venv>/bin/python``.

    When the venv cannot be made, the tests are skipped on a developer's machine and fail in
    CI (CI=true), where a skipped conformance test would hide a broken client.
    """
    python = REPO / venv / "bin" / "python"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / script)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0 or not python.exists():
        message = (
            f"scripts/{script} could not create {venv}:\n"
            + result.stdout[-2000:]
            + result.stderr[-2000:]
        )
        unavailable(message)
    return python


RESULT_PREFIX = "NEUROFS-RESULT "


def run_snippet(
    python: Path, code: str, env: dict[str, str], timeout: float, cwd: Path | None = None
) -> object:
    """Run ``code`` with a client venv's interpreter; return what it ``emit``ted (the last
    ``NEUROFS-RESULT <json>`` line). PYTHONPATH is dropped so neurofs's own tree stays out."""
    import json

    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"client snippet failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-6000:]}"
        )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise AssertionError(f"client snippet emitted nothing:\n{result.stdout[-4000:]}")
