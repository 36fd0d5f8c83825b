"""``neurofs cache stats | prune | clear``: look at and shrink the block cache.

With no mount using the cache directory, the cache is opened directly. A live mount holds
the directory's lock; then the command is sent to that mount's ``.neurofs/control`` and the
mount does it, so its files are never changed behind its back. ``stats`` only reads the
index (SQLite lets a reader in beside the mount).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from neurofs.cli.mounts import ControlError, find_mount_root, mount_using_cache, send_command
from neurofs.cli.progress import human_bytes, human_duration
from neurofs.config import CacheConfig, load_config, parse_size
from neurofs.errors import ConfigError
from neurofs.io.cache import BlockCache, CacheError, CacheSummary, in_use, read_summary

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` → seconds."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 30m, 12h, 7d)")
    return float(match[1]) * _UNIT_SECONDS[match[2]]


class _Target:
    """The cache directory a command works on, and the live mount using it, if any."""

    def __init__(
        self, config_path: Path | None, cache_dir: Path | None, mount: Path | None
    ) -> None:
        self.mount: Path | None
        if mount is not None:
            if config_path is not None or cache_dir is not None:
                raise click.UsageError("--mount takes no --config or --cache-dir")
            self.mount = find_mount_root(mount)
            if self.mount is None:
                raise click.ClickException(f"{mount} is not inside a neurofs mount")
            # The mount's effective configuration (the demo's, say) names its cache.
            try:
                used = CacheConfig.model_validate(
                    json.loads((self.mount / ".neurofs" / "config.json").read_text())["cache"]
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                message = f"{self.mount}: cannot read its cache settings ({exc})"
                raise click.ClickException(message) from None
            self.directory, self.capacity = used.dir, used.size
            return
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        self.directory = (cache_dir or config.cache.dir).expanduser()
        self.capacity = config.cache.size
        self.mount = mount_using_cache(self.directory) if in_use(self.directory) else None

    def run(self, command: str, on_cache: Callable[[BlockCache], object]) -> None:
        """Have the live mount run ``command`` (it holds the cache), or with no mount open
        the cache and call ``on_cache`` on it."""
        if self.mount is not None:
            try:
                send_command(self.mount, command)
            except ControlError as exc:
                raise click.ClickException(f"the mount at {self.mount}: {exc}") from None
            return
        if in_use(self.directory):
            raise click.ClickException(
                f"cache directory {self.directory} is in use by a process that is not a "
                "neurofs mount visible here (a neurofs:// worker?); stop it first"
            )
        try:
            opened = BlockCache(self.directory, self.capacity)
        except CacheError as exc:
            raise click.ClickException(f"{exc}; try again") from None
        with opened:
            on_cache(opened)

    def summary(self) -> CacheSummary:
        try:
            return read_summary(self.directory)
        except sqlite3.Error as exc:
            message = f"cannot read the index of {self.directory}: {exc}"
            raise click.ClickException(message) from None


_cache_options = [
    click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file."),
    click.option("--cache-dir", type=click.Path(path_type=Path), help="Block cache directory."),
    click.option(
        "--mount",
        type=click.Path(path_type=Path),
        help="The cache of the live mount holding this path (e.g. a demo mount).",
    ),
]


def _with_cache_options(f: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_cache_options):
        f = option(f)
    return f


@click.group()
def cache() -> None:
    """Show, prune or clear the block cache (of a live mount too)."""


def _when(stamp: float | None, now: float) -> str:
    if stamp is None:
        return "-"
    text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    return f"{text} ({human_duration(max(0.0, now - stamp))} ago)"


@cache.command()
@_with_cache_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(
    config_path: Path | None, cache_dir: Path | None, mount: Path | None, as_json: bool
) -> None:
    """Where the cache is, its cap, what it holds and how old it is."""
    target = _Target(config_path, cache_dir, mount)
    summary = target.summary()
    if as_json:
        data = {
            "directory": str(target.directory),
            "capacity_bytes": target.capacity,
            "stored_bytes": summary.stored_bytes,
            "stored_blocks": summary.stored_blocks,
            "oldest_use": summary.oldest_use,
            "newest_use": summary.newest_use,
            "in_use_by": str(target.mount) if target.mount else None,
            "by_kind": {
                k: {"blocks": u.blocks, "bytes": u.bytes} for k, u in summary.by_kind.items()
            },
        }
        click.echo(json.dumps(data, indent=2))
        return
    now = time.time()
    lines = [
        f"cache directory  {target.directory}",
        f"cap              {human_bytes(target.capacity)}",
        f"stored           {human_bytes(summary.stored_bytes)} in {summary.stored_blocks} blocks",
        f"oldest use       {_when(summary.oldest_use, now)}",
        f"newest use       {_when(summary.newest_use, now)}",
        f"in use by        {target.mount or 'no mount'}",
    ]
    if summary.by_kind:
        lines.append("by kind")
        for kind, usage in summary.by_kind.items():
            lines.append(f"  {kind:<14} {human_bytes(usage.bytes):>10}  {usage.blocks} blocks")
    click.echo("\n".join(lines))


@cache.command()
@_with_cache_options
@click.option("--older-than", help="Drop blocks not used for this long (e.g. 7d, 12h).")
@click.option("--to", "to_size", help="Then drop the least recently used down to SIZE.")
def prune(
    config_path: Path | None,
    cache_dir: Path | None,
    mount: Path | None,
    older_than: str | None,
    to_size: str | None,
) -> None:
    """Drop blocks not used for a while, or shrink the cache to a size."""
    if older_than is None and to_size is None:
        raise click.UsageError("give --older-than DURATION, --to SIZE, or both")
    try:
        seconds = parse_duration(older_than) if older_than is not None else None
        size = parse_size(to_size) if to_size is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    target = _Target(config_path, cache_dir, mount)
    before = target.summary()
    if seconds is not None:
        target.run(f"cache prune older-than={int(seconds)}", lambda c: c.prune(seconds))
    if size is not None:
        target.run(f"cache prune to={size}", lambda c: c.shrink_to(size))
    _report(target, before)


@cache.command()
@_with_cache_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def clear(config_path: Path | None, cache_dir: Path | None, mount: Path | None, yes: bool) -> None:
    """Drop every cached block."""
    target = _Target(config_path, cache_dir, mount)
    before = target.summary()
    if not yes and sys.stdin.isatty():
        click.confirm(
            f"Drop all {human_bytes(before.stored_bytes)} cached in {target.directory}?",
            abort=True,
        )
    target.run("cache clear", BlockCache.clear)
    _report(target, before)


def _report(target: _Target, before: CacheSummary) -> None:
    after = target.summary()
    where = f" (by the mount at {target.mount})" if target.mount else ""
    click.echo(
        f"dropped {before.stored_blocks - after.stored_blocks} blocks, "
        f"{human_bytes(before.stored_bytes - after.stored_bytes)}{where}; "
        f"{human_bytes(after.stored_bytes)} in {after.stored_blocks} blocks left"
    )
