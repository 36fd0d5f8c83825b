"""``neurofs refresh PATH...``: show the server's current state under PATH at once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from neurofs.cli.mounts import ControlError, find_mount_root, send_command


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def refresh(paths: tuple[Path, ...]) -> None:
    """Drop cached listings, attributes and metadata under PATH in its running mount.

    Remote file bytes stay cached: they are keyed by content identity and cannot change
    under the same key.
    """
    failed = False
    for path in paths:
        root = find_mount_root(path)
        if root is None:
            click.echo(f"neurofs: refresh: {path} is not inside a neurofs mount", err=True)
            failed = True
            continue
        # Through a symlink inside the mount (``latest``): refresh what it points at.
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        inside = os.path.commonpath([real, real_root]) == real_root
        relative = os.path.relpath(real if inside else os.path.abspath(path), real_root)
        try:
            send_command(root, f"refresh {'' if relative == '.' else relative}")
        except ControlError as exc:
            click.echo(f"neurofs: refresh: {path}: {exc}", err=True)
            failed = True
    if failed:
        sys.exit(1)
