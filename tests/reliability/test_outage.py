"""Outages through a real mount: the server stops answering, then comes back.

Two kinds of outage, both real: the server hangs (connections are accepted and never
answered: the emulator's ``outage`` knob), and the server is gone (the emulator process is
killed, so connections are refused; it is then started again on the same ports, as a
restarted service would be).

During the outage, reads of bytes that are not cached fail with EIO within the retry budget
(``retry_seconds``; the CI run sets 5 s, the full run keeps the default, which must be at most
30 s), while ``ls``, ``stat`` and ``cat`` of what was seen before keep working. When the server
is back, everything works again without a remount.

Every operation runs in a thread with a watchdog: an operation that does not return within
``HANG`` seconds fails the test as a hang instead of blocking it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from neurofs.config import SourceConfig
from neurofs.io.http import RetryPolicy
from neurofs_emulators.launch import RunningEmulator, start_emulator
from tests.mount.conftest import Emulator, Mount

from .conftest import Figures, bounded
from .network import free_port

pytestmark = pytest.mark.mount

T = TypeVar("T")

DEFAULT_BUDGET = SourceConfig(kind="dandi", name="d", url="http://x").retry_seconds
# The retry budget of the mounts here: short in CI, the shipped default in the full run.
BUDGET = bounded(5.0, DEFAULT_BUDGET)
# The documented bound on EIO when the server does not answer: the budget, but at least the
# time an answer may take to start (neurofs.io.http.RetryPolicy.answer_seconds).
EIO_BOUND = RetryPolicy().answer_seconds(BUDGET)
# Scheduling delays on a loaded machine, on top of a documented bound.
MARGIN = 10.0
# An operation that takes longer than this is a hang.
HANG = 4 * EIO_BOUND + 60
# How long cached files are used during a hang: longer than the in-memory listing cache
# (30 s for drafts), so that listings are answered from disk as well. The refused-connection
# outage takes the same path once the source is down, so its CI run is shorter.
HUNG_SECONDS = bounded(40.0, 120.0)
GONE_SECONDS = bounded(12.0, 120.0)


def test_the_default_budget_is_at_most_thirty_seconds() -> None:
    assert DEFAULT_BUDGET <= 30


# ---------------------------------------------------------------- an emulator that can die


@dataclass
class Restartable:
    """A DANDI emulator on fixed ports: it can be killed and started again."""

    api_port: int = field(default_factory=free_port)
    blob_port: int = field(default_factory=free_port)
    running: RunningEmulator | None = None

    def start(self) -> Emulator:
        args = ["--port", str(self.api_port), "--blob-port", str(self.blob_port)]
        self.running = start_emulator("dandi", args)
        return Emulator(self.running)

    def kill(self) -> None:
        assert self.running is not None
        self.running.process.kill()
        self.running.stop()
        self.running = None


@pytest.fixture
def server() -> Iterator[Restartable]:
    restartable = Restartable()
    restartable.start()
    yield restartable
    if restartable.running is not None:
        restartable.running.stop()


# ---------------------------------------------------------------- operations with a watchdog


@dataclass
class Outcome:
    what: str
    seconds: float
    value: Any = None
    error: OSError | None = None


@dataclass
class Watchdog:
    """Runs filesystem operations in threads; records how long each took and what it gave."""

    outcomes: list[Outcome] = field(default_factory=list)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8))

    def run(self, what: str, op: Callable[[], T]) -> Outcome:
        started = time.monotonic()
        future = self.pool.submit(op)
        try:
            outcome = Outcome(what, 0.0, value=future.result(timeout=HANG))
        except FutureTimeout:
            raise AssertionError(f"{what} hung for more than {HANG:.0f} s") from None
        except OSError as exc:
            outcome = Outcome(what, 0.0, error=exc)
        outcome.seconds = time.monotonic() - started
        self.outcomes.append(outcome)
        return outcome

    def ok(self, what: str, op: Callable[[], T]) -> T:
        outcome = self.run(what, op)
        assert outcome.error is None, f"{what}: {outcome.error}"
        return outcome.value  # type: ignore[no-any-return]

    def eio(self, what: str, op: Callable[[], Any]) -> float:
        outcome = self.run(what, op)
        assert outcome.error is not None, f"{what} succeeded during the outage"
        assert outcome.error.errno == errno.EIO, f"{what}: {outcome.error}"
        return outcome.seconds

    def slowest(self, prefix: str) -> float:
        return max((o.seconds for o in self.outcomes if o.what.startswith(prefix)), default=0.0)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    dog = Watchdog()
    yield dog
    dog.close()


# ---------------------------------------------------------------- what the tests read


@dataclass
class Seen:
    """Files and folders of 000003 read or listed before the outage, and some never touched."""

    folder: Path
    listing: list[str]
    cached: dict[Path, bytes]  # file → its bytes, read whole before the outage
    uncached: list[tuple[Path, str]]  # (file, sha256 from the API), never read
    unlisted: Path  # a folder of another dandiset, never listed


def warm_up(mount: Mount, emulator: Emulator, dog: Watchdog) -> Seen:
    assets = emulator.all_assets("000003", "draft")
    root = mount / "dandi/000003/draft"
    by_folder: dict[str, list[dict[str, Any]]] = {}
    for a in assets:
        if a["blob"] and "/" in a["path"]:
            by_folder.setdefault(a["path"].rsplit("/", 1)[0], []).append(a)
    name, members = max(by_folder.items(), key=lambda kv: len(kv[1]))
    folder = root / name
    listing = sorted(dog.ok("ls before", lambda: os.listdir(folder)))
    cached = {}
    for a in members[:3]:
        path = root / a["path"]
        data = dog.ok("cat before", path.read_bytes)
        assert hashlib.sha256(data).hexdigest() == a["metadata"]["digest"]["dandi:sha2-256"]
        cached[path] = data
    uncached = [(root / a["path"], a["metadata"]["digest"]["dandi:sha2-256"]) for a in members[3:9]]
    for path, _ in uncached:
        dog.ok("stat before", lambda p=path: os.stat(p))
    return Seen(folder, listing, cached, uncached, mount / "dandi/000004/draft")


def use_the_cache(seen: Seen, dog: Watchdog, seconds: float) -> int:
    """ls, stat and cat of what was seen, over and over for ``seconds``; returns how many."""
    done = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert sorted(dog.ok("ls cached", lambda: os.listdir(seen.folder))) == seen.listing
        for path, data in seen.cached.items():
            assert dog.ok("stat cached", lambda p=path: os.stat(p)).st_size == len(data)
            assert dog.ok("cat cached", path.read_bytes) == data
            done += 2
        done += 1
        time.sleep(1.0)
    return done


def recovered(seen: Seen, dog: Watchdog) -> int:
    """Reads of the never-read files succeed again by themselves; returns the bytes verified.

    The source stays marked down for a few seconds after its last failure (each request then
    gets one try), so the first reads may still fail: they are retried for a bounded time."""
    verified = 0
    deadline = time.monotonic() + EIO_BOUND + RetryPolicy().down_seconds + MARGIN
    for path, digest in seen.uncached:
        while True:
            outcome = dog.run("read after", path.read_bytes)
            if outcome.error is None:
                break
            assert time.monotonic() < deadline, f"{path}: still failing: {outcome.error}"
            time.sleep(1.0)
        assert hashlib.sha256(outcome.value).hexdigest() == digest
        verified += len(outcome.value)
    assert dog.ok("ls after", lambda: sorted(os.listdir(seen.unlisted)))
    return verified


def summary(dog: Watchdog, eio: list[float]) -> str:
    return (
        f"budget {BUDGET:.0f} s (EIO bound {EIO_BOUND:.0f} s); "
        f"time to EIO {min(eio):.1f}-{max(eio):.1f} s; slowest cached "
        f"ls {dog.slowest('ls cached'):.1f} s, stat {dog.slowest('stat cached'):.1f} s, "
        f"cat {dog.slowest('cat cached'):.1f} s"
    )


def fill(report: Figures, dog: Watchdog, verified: int, note: str) -> None:
    report.operations = len(dog.outcomes)
    report.bytes_verified = verified
    # Errors a reader saw where the data was there to serve (EIO of uncached bytes during
    # the outage is the documented answer, not an error of the mount).
    report.reader_errors = sum(
        1 for o in dog.outcomes if o.error is not None and o.what.endswith(" cached")
    )
    report.note = note


# ---------------------------------------------------------------- the scenarios


# What the daemon logs while its server hangs or is gone: requests given up, and listings
# served from the answers kept on disk.
OUTAGE_LOGS = (
    r"neurofs\.io\.http: .*giving up after \d+ tries: (no answer in time|ConnectError|body)",
    r"server unreachable; serving the answer kept on disk",
)


@pytest.mark.expect_log(*OUTAGE_LOGS)
def test_hung_server(
    make_mount: Any, server: Restartable, watchdog: Watchdog, report: Figures
) -> None:
    """The server accepts connections and never answers."""
    emulator = Emulator(server.running)  # type: ignore[arg-type]
    mount = make_mount(emulator, retry_seconds=BUDGET)
    seen = warm_up(mount, emulator, watchdog)
    server.running.set_knobs(outage=True)  # type: ignore[union-attr]
    try:
        eio = [watchdog.eio("read uncached", seen.uncached[0][0].read_bytes)]
        assert eio[0] <= EIO_BOUND + MARGIN
        operations = use_the_cache(seen, watchdog, HUNG_SECONDS)
        eio.append(watchdog.eio("read uncached", seen.uncached[1][0].read_bytes))
        eio.append(watchdog.eio("ls unlisted", lambda: os.listdir(seen.unlisted)))
        assert max(eio) <= EIO_BOUND + MARGIN, eio
    finally:
        server.running.set_knobs(outage=False)  # type: ignore[union-attr]
    verified = recovered(seen, watchdog)
    fill(report, watchdog, verified, summary(watchdog, eio) + f"; {operations} cached ops")
    assert report.reader_errors == 0
    # Cached files are served without the server: never slower than one request's bound.
    assert watchdog.slowest("ls cached") <= EIO_BOUND + MARGIN
    assert watchdog.slowest("cat cached") <= EIO_BOUND + MARGIN


@pytest.mark.expect_log(*OUTAGE_LOGS)
def test_server_gone_and_restarted(
    make_mount: Any, server: Restartable, watchdog: Watchdog, report: Figures
) -> None:
    """The server process dies (connections refused), then a new one starts on its ports."""
    emulator = Emulator(server.running)  # type: ignore[arg-type]
    mount = make_mount(emulator, retry_seconds=BUDGET)
    seen = warm_up(mount, emulator, watchdog)
    server.kill()
    eio = [watchdog.eio("read uncached", seen.uncached[0][0].read_bytes)]
    operations = use_the_cache(seen, watchdog, GONE_SECONDS)
    eio.append(watchdog.eio("read uncached", seen.uncached[1][0].read_bytes))
    eio.append(watchdog.eio("ls unlisted", lambda: os.listdir(seen.unlisted)))
    assert max(eio) <= EIO_BOUND + MARGIN, eio
    server.start()
    verified = recovered(seen, watchdog)
    fill(report, watchdog, verified, summary(watchdog, eio) + f"; {operations} cached ops")
    assert report.reader_errors == 0
    assert watchdog.slowest("ls cached") <= EIO_BOUND + MARGIN
    assert watchdog.slowest("cat cached") <= EIO_BOUND + MARGIN
