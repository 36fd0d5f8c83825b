"""``neurofs refresh PATH...``: show the server's current state under PATH at once.

With ``--reload-datastore``, each PATH is a WEBKNOSSOS dataset directory whose datastore is
first asked to read the dataset again from its storage (after its files changed there).
Exit status then: 0 done, 1 the server refused, 2 a PATH that is not a dataset directory of
a mount (nothing sent), 3 the server failed or could not be reached; with several PATHs,
that of the first failure.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import click

from neurofs.cli.mounts import ControlError, find_mount_root, last_control_error, send_command

# Exit statuses of --reload-datastore (see the module docstring).
REFUSED = 1
NOT_A_DATASET = 2
SERVER_FAILED = 3


@click.command()
@click.option(
    "--reload-datastore",
    is_flag=True,
    help="First have the WEBKNOSSOS datastore reload each PATH, a dataset directory "
    "(its files changed on the datastore's storage); the token must be an admin's, a team "
    "manager's or a dataset manager's. Exit status: 1 refused, 2 not a dataset directory, "
    "3 server failed or unreachable.",
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def refresh(paths: tuple[Path, ...], reload_datastore: bool) -> None:
    """Drop cached listings, attributes and metadata under PATH in its running mount.

    Remote file bytes stay cached: they are keyed by content identity and cannot change
    under the same key.
    """
    verb = "refresh --reload-datastore" if reload_datastore else "refresh"
    status = 0
    for path in paths:
        code = _one(path, reload_datastore, verb)
        status = status or code
    if status:
        sys.exit(status)


def _one(path: Path, reload_datastore: bool, verb: str) -> int:
    """Refresh (and reload) one PATH; 0, or the exit status of its failure (printed)."""
    root = find_mount_root(path)
    if root is None:
        click.echo(f"neurofs: {verb}: {path} is not inside a neurofs mount", err=True)
        return NOT_A_DATASET if reload_datastore else 1
    # Through a symlink inside the mount (``latest``, a WEBKNOSSOS folder's dataset link):
    # refresh what it points at.
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    inside = os.path.commonpath([real, real_root]) == real_root
    relative = os.path.relpath(real if inside else os.path.abspath(path), real_root)
    relative = "" if relative == "." else relative
    command = f"reload-datastore {relative}" if reload_datastore else f"refresh {relative}"
    try:
        send_command(root, command)
    except ControlError as exc:
        if not reload_datastore:
            click.echo(f"neurofs: {verb}: {path}: {exc}", err=True)
            return 1
        return _reload_failed(root, path, exc)
    return 0


def _reload_failed(root: Path, path: Path, exc: ControlError) -> int:
    """Print why a reload failed; its exit status. The server's own words, when it answered,
    are in the mount's errors.log."""
    detail: str | None = None
    if exc.errno == errno.ENOENT:
        reason, status = "no such file or directory in the mount; nothing was sent", NOT_A_DATASET
    elif exc.errno == errno.EINVAL:
        reason, status = "not a WEBKNOSSOS dataset directory; nothing was sent", NOT_A_DATASET
    elif exc.errno == errno.EACCES:
        reason, status = (
            "the server refused the reload (it takes the token of an admin or team manager "
            "of the dataset's organization, or of a dataset manager)",
            REFUSED,
        )
        detail = last_control_error(root)
    elif exc.errno == errno.EIO:
        reason, status = "the server failed or could not be reached", SERVER_FAILED
        detail = last_control_error(root)
    else:
        reason, status = str(exc), REFUSED
    message = f"neurofs: refresh --reload-datastore: {path}: {reason}"
    click.echo(f"{message}: {detail}" if detail else message, err=True)
    return status
