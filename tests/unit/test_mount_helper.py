"""mount.fuse.neurofs: what mount(8) passes, and the `neurofs mount` arguments made of it."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from neurofs.cli import mount_helper
from neurofs.cli.mount_helper import (
    Request,
    UsageError,
    neurofs_argv,
    parse_args,
    sane_environment,
    split_options,
)


def argv_for(options: str, *flags: str) -> list[str]:
    return neurofs_argv(parse_args(["neurofs", "/mnt/neuro", *flags, "-o", options]))


def test_an_fstab_line_as_mount_passes_it() -> None:
    # What util-linux 2.38 runs for: neurofs /mnt/neuro fuse.neurofs _netdev,user,config=...
    request = parse_args(
        ["neurofs", "/mnt/neuro", "-o", "rw,noexec,nosuid,nodev,config=/etc/n.toml,_netdev,user"]
    )
    assert request == Request(
        source="neurofs",
        mountpoint=Path("/mnt/neuro"),
        options=["rw", "noexec", "nosuid", "nodev", "config=/etc/n.toml", "_netdev", "user"],
    )
    assert neurofs_argv(request) == [
        "mount",
        "/mnt/neuro",
        "--config",
        "/etc/n.toml",
        "-o",
        "noexec",
    ]


def test_neurofs_options_become_flags() -> None:
    assert argv_for("config=/c.toml,cache_dir=/var/cache/n,cache_size=5GiB,log_level=debug") == [
        "mount",
        "/mnt/neuro",
        "--config",
        "/c.toml",
        "--cache-dir",
        "/var/cache/n",
        "--cache-size",
        "5GiB",
        "--log-level",
        "debug",
    ]


@pytest.mark.parametrize(
    "option",
    [
        "_netdev",
        "user",
        "nouser",
        "users",
        "owner",
        "group",
        "auto",
        "noauto",
        "nofail",
        "defaults",
        "rw",
        "dev",
        "nodev",
        "suid",
        "nosuid",
        "exec",
        "async",
        "relatime",
        "noatime",
        "x-systemd.automount",
        "x-systemd.mount-timeout=30",
        "x-gvfs-show",
        "comment=systemd.automount",
        "user=alice",
    ],
)
def test_options_for_mount_and_systemd_are_dropped(option: str) -> None:
    assert argv_for(option) == ["mount", "/mnt/neuro"]


def test_fuse_and_neurofs_options_pass_through_once() -> None:
    assert argv_for("allow_other,ro,allow_delete,noexec,sync,allow_other") == [
        "mount",
        "/mnt/neuro",
        "-o",
        "allow_other,ro,allow_delete,noexec,sync",
    ]


def test_read_only_flag() -> None:
    assert argv_for("config=/c.toml", "-r") == [
        "mount",
        "/mnt/neuro",
        "--config",
        "/c.toml",
        "-o",
        "ro",
    ]
    assert argv_for("config=/c.toml", "-w") == ["mount", "/mnt/neuro", "--config", "/c.toml"]


def test_flags_before_and_after_the_operands() -> None:
    request = parse_args(["-v", "neurofs", "/mnt/neuro", "-s", "-n", "-o", "allow_other", "-f"])
    assert request.verbose and request.fake
    assert request.options == ["allow_other"]
    assert parse_args(["neurofs", "/mnt/neuro", "-t", "fuse.neurofs"]).options == []


def test_a_relative_mount_point_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert neurofs_argv(parse_args(["neurofs", "mnt"]))[1] == str(tmp_path / "mnt")


def test_quoted_values_keep_their_commas() -> None:
    assert split_options('config="/etc/a,b.toml",allow_other') == [
        "config=/etc/a,b.toml",
        "allow_other",
    ]
    assert split_options(",,ro,, ") == ["ro"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["neurofs", "/mnt", "-o", "config=relative.toml"], "must be an absolute path"),
        (["neurofs", "/mnt", "-o", "cache_dir=~/cache"], "must be an absolute path"),
        (["neurofs", "/mnt", "-o", "config="], "needs a value"),
        (["neurofs", "/mnt", "-o", "cache_size"], "needs a value"),
        (["neurofs", "/mnt", "-o", 'config="/a'], "unbalanced quote"),
        (["neurofs"], "usage:"),
        (["neurofs", "/mnt", "extra"], "usage:"),
        (["neurofs", "/mnt", "-x"], "option -x not recognized"),
        (["neurofs", "/mnt", "-N", "/proc/1/ns/mnt"], "not supported"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        neurofs_argv(parse_args(argv))


def test_main_reports_bad_arguments_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert mount_helper.main(["neurofs", "/mnt", "-o", "config=rel.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mount.fuse.neurofs: option config=rel.toml must be an absolute path")


def test_fake_mode_prints_the_command_and_mounts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mnt"
    assert (
        mount_helper.main(["neurofs", str(target), "-f", "-o", "config=/c.toml,allow_other"]) == 0
    )
    err = capsys.readouterr().err
    assert f"neurofs mount {target} --config /c.toml -o allow_other" in err
    assert not target.exists()


def test_a_bare_environment_gets_path_and_home(monkeypatch: pytest.MonkeyPatch) -> None:
    # mount(8) runs helpers without PATH and HOME.
    monkeypatch.delenv("PATH")
    monkeypatch.delenv("HOME", raising=False)
    sane_environment()
    assert "/usr/bin" in os.environ["PATH"].split(":")
    assert os.environ["HOME"] == pwd.getpwuid(os.getuid()).pw_dir


def test_an_existing_environment_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/opt/bin")
    monkeypatch.setenv("HOME", "/home/lab")
    sane_environment()
    assert (os.environ["PATH"], os.environ["HOME"]) == ("/opt/bin", "/home/lab")
