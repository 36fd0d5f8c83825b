"""Mounting: checks before the mount, the trio main loop, clean shutdown.

``run_mount`` mounts, reports readiness through a callback (the CLI passes it on to the
parent process that waits for it) and to systemd (``sd_notify``), serves until the
filesystem is unmounted or the process gets SIGTERM/SIGINT, then unmounts and closes the cache.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyfuse3
import trio

from neurofs.config import Config, default_state_dir, private_dir
from neurofs.errors import ConfigError
from neurofs.fs.kernel_readahead import raise_read_ahead_once_mounted
from neurofs.fs.operations import Operations
from neurofs.fs.saving import recover_interrupted
from neurofs.fs.sd_notify import Notifier
from neurofs.io.cache import BlockCache, CacheError
from neurofs.io.durable import NotOwnedError, private_directory
from neurofs.io.fetcher import Fetcher
from neurofs.io.malloc import map_large_buffers
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier
from neurofs.secrets import redact
from neurofs.sources import Source, build_source
from neurofs.tree.control import ErrorLog, build_root
from neurofs.tree.rejected import RejectedStore

log = logging.getLogger(__name__)


class DroppedRequests(logging.Filter):
    """pyfuse3 logs an ERROR when an answer finds its request gone (``fuse_reply_*`` fails
    with ENOENT): the kernel had dropped it, because its reader was killed or interrupted,
    or because the mount is going away with reads still in flight (read-ahead past where a
    reader stopped, slowed by retries). Nothing is lost and nothing is wrong with the
    daemon: such a record is noted at debug level instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "fuse_reply_* failed with" in message and message.endswith(os.strerror(errno.ENOENT)):
            log.debug("the kernel dropped a request before its answer: %s", message)
            return False
        return True


# A source that does not answer within this time at mount is reported as a warning.
PROBE_SECONDS = 5.0
# On SIGTERM/SIGINT, saves waiting on a server get this long to finish before the unmount (a
# second signal cuts it short). A save cut short is kept for the next mount to put in
# rejected/; one that finishes needs nothing more from the user.
SAVE_GRACE_SECONDS = 30.0


@dataclass
class MountOptions:
    mountpoint: Path
    config: Config
    fuse_options: list[str] = field(default_factory=list)


class MountError(Exception):
    """A problem that prevents mounting; the message is shown to the user as is."""


# ---------------------------------------------------------------- checks


def is_stale_mount(path: Path) -> bool:
    """A mount whose daemon died: operations fail with ENOTCONN.

    The kernel may answer ``stat`` of the mount root from its attribute cache for a while
    after the daemon died, so a never-seen name is looked up too: that always reaches the
    daemon (or fails with ENOTCONN when there is none).
    """
    probe = f".neurofs-probe-{os.getpid()}-{time.monotonic_ns()}"
    for target in (path, path / probe):
        try:
            os.stat(target)
        except OSError as exc:
            if exc.errno == errno.ENOTCONN:
                return True
            if target == path:
                return False
    return False


def lazy_unmount(path: Path) -> bool:
    for cmd in (["fusermount3", "-u", "-z", str(path)], ["umount", "-l", str(path)]):
        try:
            if subprocess.run(cmd, capture_output=True, check=False).returncode == 0:
                return True
        except FileNotFoundError:
            continue
    return False


def check_mountpoint(path: Path) -> None:
    if is_stale_mount(path):
        log.warning("%s: cleaning up a stale mount left by a daemon that died", path)
        if not lazy_unmount(path):
            raise MountError(f"{path} is a stale mount and could not be unmounted")
    if not path.exists():
        raise MountError(f"mount point {path} does not exist")
    if not path.is_dir():
        raise MountError(f"mount point {path} is not a directory")
    if os.path.ismount(path):
        raise MountError(f"{path} is already a mount point (busy)")
    if not os.path.exists("/dev/fuse"):
        raise MountError("/dev/fuse is missing: install fuse3 and load the fuse kernel module")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise MountError("/dev/fuse is not accessible to this user (see docs/troubleshooting.md)")


# Options that are neurofs's own, not the kernel's: taken out before mounting.
NEUROFS_OPTIONS = frozenset({"allow_delete"})


def split_options(user_options: list[str]) -> tuple[set[str], set[str]]:
    """(kernel options, neurofs options) from ``-o a,b -o c``."""
    given = {o.strip() for opt in user_options for o in opt.split(",") if o.strip()}
    return given - NEUROFS_OPTIONS, given & NEUROFS_OPTIONS


# Options libfuse cannot take through pyfuse3: max_read makes fuse_session_new and init()
# disagree and libfuse aborts the daemon after mounting (measured: the kernel already sends
# reads of 256 KiB without it).
REFUSED_OPTIONS = ("max_read",)


# What every neurofs mount gets, besides pyfuse3's defaults.
BASE_OPTIONS = frozenset({"fsname=neurofs", "subtype=neurofs", "noatime"})


def fuse_options(user_options: list[str]) -> set[str]:
    options = set(pyfuse3.default_options)
    for option in split_options(user_options)[0]:
        if option.split("=", 1)[0] in REFUSED_OPTIONS:
            raise MountError(f"-o {option} is not supported by neurofs's FUSE library")
    options |= BASE_OPTIONS
    options |= split_options(user_options)[0]
    if "allow_other" in options:
        # Other users may enter the mount only with the kernel enforcing the mode bits.
        options.add("default_permissions")
    return options


# ---------------------------------------------------------------- pid files


def _runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "neurofs" if base else Path(f"/tmp/neurofs-{os.getuid()}")
    try:
        return private_directory(path, must_own=True)
    except NotOwnedError:
        raise MountError(f"{path} belongs to another user") from None


def pid_file(mountpoint: Path) -> Path:
    digest = hashlib.sha256(str(mountpoint.resolve()).encode()).hexdigest()[:16]
    return _runtime_dir() / f"mount-{digest}.pid"


# ---------------------------------------------------------------- the mount


async def _serve(
    ops_factory: Callable[[], tuple[Operations, list[Source]]],
    fetcher: Fetcher,
    mountpoint: Path,
    options: set[str],
    on_ready: Callable[[list[str]], None],
    notifier: Notifier,
) -> None:
    ops, sources = ops_factory()
    try:
        pyfuse3.init(ops, str(mountpoint), options)
    except RuntimeError as exc:
        raise MountError(_init_failure(exc, options)) from None
    unmount = True
    try:
        async with trio.open_nursery() as nursery:
            fetcher.start_background(nursery)
            nursery.start_soon(_stop_on_signals, nursery.cancel_scope, ops, notifier)
            warnings = await _probe(sources)
            nursery.start_soon(_ready_once_serving, mountpoint, warnings, on_ready, notifier)
            await pyfuse3.main()
            # main() returns when the kernel unmounted us (fusermount -u, umount).
            unmount = False
            notifier.stopping(f"{mountpoint} was unmounted; stopping")
            nursery.cancel_scope.cancel()
    finally:
        for source in sources:
            with trio.CancelScope(shield=True):
                await source.aclose()
        if fetcher.tier is not None:
            with trio.CancelScope(shield=True):
                await fetcher.tier.aclose()
        pyfuse3.close(unmount=unmount)


def _init_failure(exc: RuntimeError, options: set[str]) -> str:
    """libfuse says only "fuse_session_new() failed" for an option it does not know (the
    name goes to the daemon's stderr, the log): name the options the user added."""
    given = options - set(pyfuse3.default_options) - BASE_OPTIONS - {"default_permissions"}
    hint = f" (libfuse may not know one of: -o {','.join(sorted(given))})" if given else ""
    return f"mount failed: {exc}{hint}"


async def _ready_once_serving(
    mountpoint: Path,
    warnings: list[str],
    on_ready: Callable[[list[str]], None],
    notifier: Notifier,
) -> None:
    """Report readiness once the kernel has main()'s answer to its INIT: until then the
    daemon's own stat of the mount (for the read-ahead window) keeps the mount busy, and an
    unmount right after the report would fail with EBUSY."""
    await raise_read_ahead_once_mounted(mountpoint)
    on_ready(warnings)
    notifier.ready("; ".join([f"mounted at {mountpoint}", *map(redact, warnings)]))


async def _probe(sources: list[Source]) -> list[str]:
    warnings: list[str] = []

    async def one(source: Source) -> None:
        with trio.move_on_after(PROBE_SECONDS) as scope:
            problem = await source.probe()
            if problem:
                warnings.append(problem)
        if scope.cancelled_caught:
            warnings.append(f"{source.name}: {source.http.base_url} did not answer in time")

    async with trio.open_nursery() as nursery:
        for source in sources:
            nursery.start_soon(one, source)
    for w in warnings:
        log.warning("%s (the mount is up; cached data stays readable)", w)
    return warnings


async def _stop_on_signals(scope: trio.CancelScope, ops: Operations, notifier: Notifier) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("received %s: unmounting", signal.Signals(signum).name)
            notifier.stopping(
                f"received {signal.Signals(signum).name}: letting saves in flight finish "
                f"(up to {SAVE_GRACE_SECONDS:.0f} s), then unmounting"
            )
            break
        with trio.move_on_after(SAVE_GRACE_SECONDS):
            async with trio.open_nursery() as grace:

                async def second_signal() -> None:
                    async for signum in signals:
                        log.info("received %s again: not waiting", signal.Signals(signum).name)
                        grace.cancel_scope.cancel()

                grace.start_soon(second_signal)
                await ops.saves_finished()
                grace.cancel_scope.cancel()
        notifier.status("unmounting")
        scope.cancel()


def run_mount(opts: MountOptions, on_ready: Callable[[list[str]], None]) -> None:
    """Mount and serve until unmounted or signalled. Raises MountError before mounting."""
    # Taken out of the environment first, so that nothing the daemon starts inherits it.
    notifier = Notifier.from_environment()
    mountpoint = opts.mountpoint.resolve()
    check_mountpoint(mountpoint)
    options = fuse_options(opts.fuse_options)
    config = opts.config
    if not config.source:
        raise ConfigError("the configuration names no source")
    map_large_buffers()
    pyfuse3_log = logging.getLogger("pyfuse3")
    if not any(isinstance(f, DroppedRequests) for f in pyfuse3_log.filters):
        pyfuse3_log.addFilter(DroppedRequests())
    stats = Stats()
    errors = ErrorLog()
    try:
        cache = BlockCache(config.cache.dir, config.cache.size)
    except CacheError as exc:
        raise MountError(f"{exc}; give this mount its own --cache-dir") from None
    responses = ResponseStore(config.cache.dir / "responses.sqlite")
    state = private_dir(default_state_dir())
    rejected = RejectedStore(state / "rejected", journal=state / "journal")
    allow_delete = "allow_delete" in split_options(opts.fuse_options)[1]
    try:
        # Saves cut short by a daemon that died are kept before anything else is served.
        recover_interrupted(rejected, errors)
        tier = None
        if config.cache.tier is not None:
            tier = Tier(config.cache.tier, stats, trusted=config.cache.tier_trusted)
        fetcher = Fetcher(cache, stats, tier=tier)

        def snapshot() -> dict[str, object]:
            c = cache.stats()
            return stats.snapshot(
                {
                    "cache": {
                        "hits": c.hits,
                        "misses": c.misses,
                        "evictions": c.evictions,
                        "corrupt_dropped": c.corrupt_dropped,
                        "write_failures": c.write_failures,
                        "verified_bytes": c.verified_bytes,
                        "stored_bytes": c.stored_bytes,
                        "stored_blocks": c.stored_blocks,
                        "capacity_bytes": config.cache.size,
                    },
                    "tier": config.cache.tier,
                }
            )

        def make_ops() -> tuple[Operations, list[Source]]:
            sources = [
                build_source(s, stats, fetcher, responses, allow_delete=allow_delete)
                for s in config.source
            ]
            root = build_root(
                [s.root for s in sources],
                stats=snapshot,
                config=config.redacted(),
                errors=errors,
                rejected=rejected,
            )
            ops = Operations(root, errors, rejected, allow_delete, stats, cache, sources)
            return ops, sources

        pidfile = pid_file(mountpoint)
        fd = os.open(pidfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with open(fd, "w") as out:
            out.write(f"{os.getpid()}\n")
        try:
            trio.run(_serve, make_ops, fetcher, mountpoint, options, on_ready, notifier)
        finally:
            pidfile.unlink(missing_ok=True)
    finally:
        rejected.close()
        responses.close()
        cache.close()
