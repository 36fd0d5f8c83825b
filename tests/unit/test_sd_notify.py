"""sd_notify against real datagram sockets: a path and an abstract address."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurofs.fs.sd_notify import ENV, Notifier


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(10)
        yield address, sock


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"neurofs-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        yield "@" + name, sock


def test_ready_reaches_a_path_socket(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    assert Notifier(address).ready("mounted at /mnt")
    fields = sock.recv(4096).decode().split("\n")
    assert fields == ["READY=1", "STATUS=mounted at /mnt", f"MAINPID={os.getpid()}"]


def test_stopping_reaches_an_abstract_socket(abstract_socket: tuple[str, socket.socket]) -> None:
    address, sock = abstract_socket
    notifier = Notifier(address)
    assert notifier.stopping("received SIGTERM")
    assert notifier.status("unmounting")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=received SIGTERM"
    assert sock.recv(4096) == b"STATUS=unmounting"


def test_from_environment_takes_the_variable_out(
    path_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, sock = path_socket
    monkeypatch.setenv(ENV, address)
    notifier = Notifier.from_environment()
    # Processes started from now on must not inherit the unit's socket.
    assert ENV not in os.environ
    assert notifier.enabled
    assert notifier.notify("READY=1")
    assert sock.recv(4096) == b"READY=1"


def test_without_the_variable_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    assert not notifier.ready("mounted")


@pytest.mark.parametrize(
    "address",
    ["relative/path", "vsock:2:1234"],
    ids=["relative path", "vsock"],
)
@pytest.mark.expect_log(r"ignoring NOTIFY_SOCKET=.*: not a socket path or abstract address")
def test_unusable_addresses_are_ignored(address: str) -> None:
    assert not Notifier(address).enabled
    assert not Notifier(address).notify("READY=1")


def test_a_socket_that_is_gone_never_raises(tmp_path: Path) -> None:
    assert not Notifier(str(tmp_path / "missing")).ready("mounted")
    assert not Notifier(f"@neurofs-test-missing-{uuid.uuid4().hex}").stopping("stop")


def test_a_full_queue_drops_the_message_instead_of_blocking(
    path_socket: tuple[str, socket.socket],
) -> None:
    address, _ = path_socket
    notifier = Notifier(address)
    # Nobody reads: the receive queue fills and later sends fail at once (EAGAIN).
    sent = [notifier.notify("STATUS=" + "x" * 4000) for _ in range(10_000)]
    assert sent[0]
    assert not sent[-1]
