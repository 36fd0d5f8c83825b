"""The ``neurofs`` command: mount, unmount, demo, emulate and status here; the other
commands (prefetch, verify, cache, refresh, ls-sources, ng-url, completion) in modules of
their own."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from neurofs import secrets
from neurofs.cli.background import Readiness, spawn_and_wait
from neurofs.cli.cache import cache
from neurofs.cli.completion import completion
from neurofs.cli.ngurl import ng_url
from neurofs.cli.prefetch import prefetch
from neurofs.cli.progress import human_bytes
from neurofs.cli.refresh import refresh
from neurofs.cli.sources import ls_sources
from neurofs.cli.tier import tier
from neurofs.cli.verify import verify
from neurofs.config import CacheConfig, Config, SourceConfig, default_cache_dir, load_config
from neurofs.config import parse_size as _parse_size
from neurofs.errors import ConfigError

log = logging.getLogger("neurofs")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Library chatter (connection pools) stays at warning level unless asked for.
    if level.upper() != "DEBUG":
        for noisy in ("httpx", "httpcore", "hpack"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    secrets.install_log_filter()


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return _parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _fail(message: str) -> None:
    click.echo(f"neurofs: {secrets.redact(message)}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurofs")
def main() -> None:
    """Mount DANDI, WEBKNOSSOS and CAVE as one directory tree."""


_mount_options = [
    click.option("--foreground", "-f", is_flag=True, help="Stay in the foreground."),
    click.option("--cache-dir", type=click.Path(path_type=Path), help="Block cache directory."),
    click.option("--cache-size", callback=_size, help="Cache cap, e.g. 20GiB."),
    click.option("-o", "fuse_opts", multiple=True, help="FUSE mount options (e.g. allow_other)."),
    click.option(
        "--log-level",
        default="info",
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    ),
    click.option("--ready-fd", type=int, hidden=True),
]


def mount_options(f: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_mount_options):
        f = option(f)
    return f


def _background_argv(command: str, mountpoint: Path, **opts: object) -> list[str]:
    argv = [command, str(mountpoint)]
    for name, value in opts.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if name == "fuse_opts":
            for o in value:  # type: ignore[attr-defined]
                argv += ["-o", str(o)]
        elif value is True:
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv


def _apply_cache_overrides(config: Config, cache_dir: Path | None, cache_size: int | None) -> None:
    if cache_dir is not None:
        config.cache.dir = cache_dir.expanduser()
    if cache_size is not None:
        config.cache.size = cache_size


def _run_daemon(
    mountpoint: Path, config: Config, fuse_opts: tuple[str, ...], ready_fd: int | None
) -> None:
    from neurofs.fs.daemon import MountError, MountOptions, run_mount

    readiness = Readiness(ready_fd)
    try:
        run_mount(
            MountOptions(mountpoint, config, list(fuse_opts)),
            on_ready=readiness.ready,
        )
    except (MountError, ConfigError) as exc:
        readiness.failed(str(exc))
        _fail(str(exc))
    except RuntimeError as exc:  # pyfuse3.init failing to mount
        readiness.failed(f"mount failed: {exc}")
        _fail(f"mount failed: {exc}")
    except Exception as exc:
        readiness.failed(f"unexpected error: {exc!r} (see the log)")
        raise


@main.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@mount_options
def mount(
    mountpoint: Path,
    config_path: Path | None,
    foreground: bool,
    cache_dir: Path | None,
    cache_size: int | None,
    fuse_opts: tuple[str, ...],
    log_level: str,
    ready_fd: int | None,
) -> None:
    """Mount the configured sources at MOUNTPOINT."""
    _setup_logging(log_level)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        Readiness(ready_fd).failed(str(exc))
        _fail(str(exc))
        return
    _apply_cache_overrides(config, cache_dir, cache_size)
    if not foreground:
        sys.exit(
            spawn_and_wait(
                _background_argv(
                    "mount",
                    mountpoint,
                    config=config_path.resolve() if config_path else None,
                    cache_dir=cache_dir,
                    cache_size=cache_size,
                    fuse_opts=fuse_opts,
                    log_level=log_level,
                ),
                mountpoint,
            )
        )
    _run_daemon(mountpoint, config, fuse_opts, ready_fd)


@main.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@click.option("--timeout", default=30.0, help="Seconds to wait for the daemon to exit.")
def unmount(mountpoint: Path, timeout: float) -> None:
    """Unmount MOUNTPOINT (also cleans up a dead mount)."""
    from neurofs.fs.daemon import is_stale_mount, lazy_unmount, pid_file

    pid = _read_pid(pid_file(mountpoint))
    if is_stale_mount(mountpoint):
        if not lazy_unmount(mountpoint):
            _fail(f"could not clean up the stale mount at {mountpoint}")
        click.echo(f"neurofs: cleaned up a stale mount at {mountpoint}")
        return
    if not os.path.ismount(mountpoint):
        _fail(f"{mountpoint} is not mounted")
    result = subprocess.run(
        ["fusermount3", "-u", str(mountpoint)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        _fail(f"could not unmount {mountpoint}: {result.stderr.strip()}")
    # Wait for the daemon to finish (cache bookkeeping is written on the way out).
    if pid is not None:
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    click.echo(f"neurofs: unmounted {mountpoint}")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours would look alive: check its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@main.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@click.option(
    "--sample",
    type=click.Choice(["demo", "large"]),
    default="demo",
    show_default=True,
    help="The emulators' data: the small demo sample, or archives of real size, computed.",
)
@mount_options
def demo(
    mountpoint: Path,
    sample: str,
    foreground: bool,
    cache_dir: Path | None,
    cache_size: int | None,
    fuse_opts: tuple[str, ...],
    log_level: str,
    ready_fd: int | None,
) -> None:
    """Start the emulators with their sample data and mount them at MOUNTPOINT."""
    _setup_logging(log_level)
    if not foreground:
        sys.exit(
            spawn_and_wait(
                _background_argv(
                    "demo",
                    mountpoint,
                    sample=sample,
                    cache_dir=cache_dir,
                    cache_size=cache_size,
                    fuse_opts=fuse_opts,
                    log_level=log_level,
                ),
                mountpoint,
            )
        )
    with _emulators(sample) as config:
        _apply_cache_overrides(config, cache_dir, cache_size)
        _run_daemon(mountpoint, config, fuse_opts, ready_fd)


@contextlib.contextmanager
def _emulators(sample: str = "demo") -> Iterator[Config]:
    """Start every emulator on loopback with ``sample``'s data; yield a configuration that
    mounts them."""
    from neurofs_emulators.cave.sample import DATASTACK
    from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_TOKEN
    from neurofs_emulators.dandi.sample import OWNER_TOKEN as DANDI_TOKEN
    from neurofs_emulators.launch import start_emulator
    from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_TOKEN

    with (
        start_emulator("dandi", ["--sample", sample]) as dandi,
        start_emulator("webknossos", ["--sample", sample]) as wk,
        start_emulator("cave", ["--sample", sample]) as cave,
    ):
        for token in (DANDI_TOKEN, WK_TOKEN, CAVE_TOKEN):
            secrets.register(token)
        yield Config(
            source=[
                SourceConfig(kind="dandi", name="dandi", url=dandi.api_url, token=DANDI_TOKEN),
                SourceConfig(kind="webknossos", name="webknossos", url=wk.urls[0], token=WK_TOKEN),
                SourceConfig(
                    kind="cave",
                    name="cave",
                    url=cave.urls[0],
                    token=CAVE_TOKEN,
                    datastacks=[DATASTACK],
                ),
            ],
            cache=CacheConfig(dir=default_cache_dir() / "demo"),
            demo=True,
        )


@main.group()
def emulate() -> None:
    """Run one service emulator on loopback (for tests, benchmarks and trying things out)."""


def _add_emulator_command(service: str, help_text: str) -> None:
    # The emulator parses its own flags (see neurofs_emulators.service): one definition of
    # them, with `neurofs emulate <service> --help` printing the emulator's own help.
    @emulate.command(
        service,
        help=help_text,
        context_settings={"ignore_unknown_options": True, "help_option_names": []},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        importlib.import_module(f"neurofs_emulators.{service}.__main__").main(list(args))


for _service, _help in (
    ("dandi", "The DANDI Archive API and an S3-like blob store (flags: --help)."),
    (
        "webknossos",
        "The WEBKNOSSOS main server and a datastore with synthetic volumes (flags: --help).",
    ),
    ("cave", "The CAVE global server and a local server with annotation tables (flags: --help)."),
):
    _add_emulator_command(_service, _help)


@main.command()
@click.argument("mountpoint", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the raw stats.json.")
def status(mountpoint: Path, as_json: bool) -> None:
    """Show the live counters of the mount at MOUNTPOINT."""
    path = mountpoint / ".neurofs" / "stats.json"
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        _fail(f"{mountpoint} does not look like a neurofs mount ({exc.strerror})")
        return
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_format_status(mountpoint, data))


def _format_status(mountpoint: Path, d: dict[str, object]) -> str:
    cache = d.get("cache", {})
    assert isinstance(cache, dict)
    lines = [
        f"neurofs mount at {mountpoint}, up {d.get('uptime_seconds')} s",
        f"  requests        {d.get('requests')}  (retries {d.get('retries')}, "
        f"errors {d.get('errors')})",
        f"  fetched         {human_bytes(float(str(d.get('bytes_fetched', 0))))}",
        f"  served          {human_bytes(float(str(d.get('bytes_served', 0))))}",
        f"  cache           {cache.get('hits')} hits, {cache.get('misses')} misses, "
        f"{cache.get('evictions')} evictions",
        f"  cache size      {human_bytes(float(cache.get('stored_bytes', 0)))} of "
        f"{human_bytes(float(cache.get('capacity_bytes', 0)))}",
    ]
    if d.get("tier"):
        lines.append(
            f"  shared tier     {d['tier']}: {d.get('tier_hits', 0)} hits, "
            f"{d.get('tier_misses', 0)} misses, "
            f"{human_bytes(float(str(d.get('tier_bytes', 0))))}; "
            f"{d.get('tier_fallbacks', 0)} fallbacks ({d.get('tier_rejected', 0)} wrong answers)"
        )
    sources = d.get("sources", {})
    assert isinstance(sources, dict)
    for name, counters in sources.items():
        classes = ", ".join(
            f"{k.removeprefix('requests_')}: {v}"
            for k, v in counters.items()
            if k.startswith("requests_")
        )
        lines.append(f"  {name:<15} {counters.get('requests', 0)} requests ({classes})")
    return "\n".join(lines)


for _command in (prefetch, verify, cache, refresh, ls_sources, ng_url, completion, tier):
    main.add_command(_command)
