"""Reliability and security tests: injected faults, crashes, outages, hostile servers.

They use the real-mount fixtures of ``tests/support/fixtures.py``, as ``tests/mount`` does.
Every scenario reports its figures through the ``report`` fixture; ``scripts/reliability``
collects them into its table (scenario, operations, bytes verified, errors seen by readers,
edits lost, tokens leaked).

Durations: the CI run uses short bounds; ``NEUROFS_RELIABILITY_FULL=1`` (set by
``scripts/reliability``) selects the long ones. Use :func:`bounded` for every duration or
repetition count so that both variants stay in one place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import (  # noqa: F401  (fixtures of this directory)
    cave_emulator,
    dandi_emulator,
    make_mount,
    private_dandi_emulator,
    slow_dandi_emulator,
    wk_api_version,
    wk_emulator,
)

FULL = os.environ.get("NEUROFS_RELIABILITY_FULL") == "1"


def bounded(short: float, full: float) -> float:
    """``short`` in CI, ``full`` under ``scripts/reliability``."""
    return full if FULL else short


@dataclass
class Figures:
    """One row of the reliability table."""

    scenario: str
    operations: int = 0
    bytes_verified: int = 0
    reader_errors: int = 0
    edits_lost: int = 0
    tokens_leaked: int = 0
    note: str = ""


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Keep each phase's report on the item, so ``report`` knows whether the test passed."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """Figures of this test, appended (JSON lines) to $NEUROFS_RELIABILITY_REPORT if set.

    Rows are written even when the test fails, so the table shows the failing figures."""
    figures = Figures(scenario=request.node.name)
    yield figures
    target = os.environ.get("NEUROFS_RELIABILITY_REPORT")
    if target:
        call = getattr(request.node, "rep_call", None)
        outcome = "passed" if call is not None and call.passed else "FAILED"
        row = asdict(figures) | {"test": request.node.nodeid, "outcome": outcome}
        with Path(target).open("a") as out:
            out.write(json.dumps(row) + "\n")
