"""What a test does when something it needs is missing: skip on a developer's machine, fail
in CI (``CI`` set), so a skipped real-mount, conformance or imaging test never passes there."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (this test must run in CI)")
    pytest.skip(message)
