"""What every test gets: the log checker, and the emulators' ground truth.

The log checker (``tests/support/logcheck.py``) fails a test when neurofs logs a warning or
an error the test did not declare, in-process or in the daemon of a mount the test started::

    @pytest.mark.expect_log(r"WARNING neurofs\\.io\\.http: .* 503")
    def test_retries(...): ...

    def test_refusal(expected_logs, ...):
        expected_logs.expect(f"refused .*{name}")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neurofs_emulators.cave.sample import SampleCave
from neurofs_emulators.dandi.sample import SampleArchive
from neurofs_emulators.webknossos.sample import SampleWorld
from tests.support.logcheck import MARKER, LogChecker, describe

_checker = LogChecker()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*patterns): warning/error lines neurofs may log during this test "
        "(regexes searched in 'LEVEL logger: message'); any other fails it",
    )
    _checker.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    _checker.uninstall()


def _check(item: pytest.Item, when: str, failing: bool) -> None:
    lines = _checker.take()
    patterns = [p for marker in item.iter_markers(MARKER) for p in marker.args]
    unexpected = _checker.unexpected(lines, patterns)
    if not unexpected:
        return
    message = describe(unexpected)
    if failing:  # the phase failed already and says why; the lines go beside its report
        item.add_report_section(when, "neurofs log", message)
    else:
        pytest.fail(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _checker.take()  # nothing logged between tests is this test's
    _checker.reset_expectations()
    return (yield from _phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _phase(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    return (yield from _phase(item, "teardown"))


def _phase(item: pytest.Item, when: str) -> Iterator[None]:
    try:
        result = yield
    except BaseException:
        _check(item, when, failing=True)
        raise
    _check(item, when, failing=False)
    return result


@pytest.fixture
def expected_logs() -> LogChecker:
    """``expected_logs.expect(pattern)``: lines matching ``pattern`` are expected for the rest
    of this test (its teardown included)."""
    return _checker


# ---------------------------------------------------------------- the emulators' ground truth


@pytest.fixture(scope="session")
def sample() -> SampleArchive:
    """The DANDI emulator's sample archive: what it serves (shares its data-dir cache)."""
    return SampleArchive()


@pytest.fixture(scope="session")
def wk_sample() -> SampleWorld:
    """Ground truth of the WEBKNOSSOS emulator's sample data."""
    return SampleWorld()


@pytest.fixture(scope="session")
def cave_sample() -> SampleCave:
    """Ground truth of the CAVE emulator's sample data."""
    return SampleCave()
