"""``mount.fuse.neurofs``: lets mount(8) and /etc/fstab mount neurofs.

For ``mount -t fuse.neurofs neurofs /mnt/neuro -o config=/etc/neurofs.toml`` or the fstab line

    neurofs  /mnt/neuro  fuse.neurofs  _netdev,user,config=/etc/neurofs.toml  0 0

mount(8) runs ``mount.fuse.neurofs SOURCE MOUNTPOINT [-sfnvrw] [-o OPTIONS]``. The helper
drops the options meant for mount(8) and systemd, turns neurofs's own options into
``neurofs mount`` flags, passes the rest on as ``-o``, and mounts in the background: it
returns once the mount serves, or fails with the reason on stderr.
"""

from __future__ import annotations

import contextlib
import getopt
import io
import os
import pwd
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROG = "mount.fuse.neurofs"

# Meant for mount(8) and systemd (fstab bookkeeping, who may mount, boot ordering).
MOUNT_ONLY = frozenset(
    {"_netdev", "user", "nouser", "users", "owner", "group", "auto", "noauto", "nofail"}
    | {"defaults"}
)
MOUNT_ONLY_PREFIXES = ("x-", "comment=", "user=")
# A FUSE mount has these anyway (rw, and no devices, setuid files or atime updates), and
# libfuse refuses some of them (relatime).
ALREADY_SO = frozenset(
    {"rw", "dev", "nodev", "suid", "nosuid", "exec", "async"}
    | {"atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime"}
    | {"lazytime", "nolazytime", "diratime", "nodiratime"}
)
# neurofs's own options and the `neurofs mount` flag each becomes.
FLAGS = {
    "config": "--config",
    "cache_dir": "--cache-dir",
    "cache_size": "--cache-size",
    "log_level": "--log-level",
}
# Paths must not depend on mount(8)'s working directory.
PATH_OPTIONS = ("config", "cache_dir")
# mount(8) runs helpers with a bare environment (no PATH, no HOME).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class UsageError(Exception):
    """Arguments or options that cannot be mounted; the message is shown as is."""


@dataclass
class Request:
    """What mount(8) asked for."""

    source: str
    mountpoint: Path
    options: list[str] = field(default_factory=list)
    fake: bool = False
    verbose: bool = False


def split_options(text: str) -> list[str]:
    """``a,b=1,c="x,y"`` → ``['a', 'b=1', 'c=x,y']`` (libmount's quoting of values)."""
    options: list[str] = []
    current, quoted = "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            options.append(current)
            current = ""
        else:
            current += char
    if quoted:
        raise UsageError(f"unbalanced quote in the options: {text}")
    options.append(current)
    return [o.strip() for o in options if o.strip()]


def parse_args(argv: list[str]) -> Request:
    """``SOURCE MOUNTPOINT [-o OPTS] [-s] [-f] [-n] [-v] [-r|-w] [-t TYPE] [-N NS]``."""
    try:
        # mount(8) puts the flags after the two positional arguments.
        flags, rest = getopt.gnu_getopt(argv, "o:sfnvrwt:N:h")
    except getopt.GetoptError as exc:
        raise UsageError(str(exc)) from None
    if any(flag == "-h" for flag, _ in flags):
        raise UsageError(usage())
    if len(rest) != 2:
        raise UsageError(usage())
    request = Request(source=rest[0], mountpoint=Path(rest[1]))
    for flag, value in flags:
        if flag == "-o":
            request.options += split_options(value)
        elif flag == "-r":
            request.options.append("ro")
        elif flag == "-f":
            request.fake = True
        elif flag == "-v":
            request.verbose = True
        elif flag == "-N":
            raise UsageError("-N (mounting in another namespace) is not supported")
        # -s (sloppy), -n (no mtab), -w (rw: the default) and -t (the type) change nothing.
    return request


def usage() -> str:
    return (
        f"usage: {PROG} SOURCE MOUNTPOINT [-o OPTIONS] [-s] [-f] [-n] [-v] [-r|-w]\n"
        "  OPTIONS: config=/abs/path.toml, cache_dir=/abs/dir, cache_size=20GiB,\n"
        "  log_level=debug|info|warning|error, and FUSE options (allow_other, ro, ...)"
    )


def neurofs_argv(request: Request) -> list[str]:
    """The ``neurofs mount`` arguments for ``request``."""
    flags: list[str] = []
    passed: list[str] = []
    for option in request.options:
        name, has_value, value = option.partition("=")
        if option in MOUNT_ONLY or option.startswith(MOUNT_ONLY_PREFIXES) or option in ALREADY_SO:
            continue
        if name in FLAGS:
            if not has_value or not value:
                raise UsageError(f"option {name}= needs a value")
            if name in PATH_OPTIONS and not os.path.isabs(value):
                raise UsageError(
                    f"option {name}={value} must be an absolute path "
                    "(mount runs this helper from any directory)"
                )
            flags += [FLAGS[name], value]
        elif option not in passed:
            passed.append(option)
    mountpoint = os.path.abspath(request.mountpoint)
    argv = ["mount", mountpoint, *flags]
    if passed:
        argv += ["-o", ",".join(passed)]
    return argv


def sane_environment() -> None:
    """Give the daemon what a login would: PATH (fusermount3) and HOME (config, cache)."""
    os.environ.setdefault("PATH", DEFAULT_PATH)
    if not os.environ.get("HOME"):
        with contextlib.suppress(KeyError):
            os.environ["HOME"] = pwd.getpwuid(os.getuid()).pw_dir


def main(argv: list[str] | None = None) -> int:
    try:
        request = parse_args(sys.argv[1:] if argv is None else argv)
        args = neurofs_argv(request)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    if request.verbose or request.fake:
        print(f"{PROG}: neurofs {shlex.join(args)}", file=sys.stderr)
    if request.fake:
        return 0
    sane_environment()
    from neurofs.cli.main import main as neurofs

    # Quiet on success, as mount helpers are; problems and warnings go to stderr.
    out = sys.stdout if request.verbose else io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            neurofs.main(args=args, prog_name="neurofs", standalone_mode=True)
        except SystemExit as exc:
            return _exit_code(exc.code)
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
