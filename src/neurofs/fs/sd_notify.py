"""The systemd notification protocol (``sd_notify``), without libsystemd.

Under a ``Type=notify`` unit, systemd names a datagram socket in ``$NOTIFY_SOCKET``: a path,
or an abstract address written with a leading ``@``. The daemon sends ``READY=1`` once the
mount serves, ``STOPPING=1`` when it starts to stop, and ``STATUS=...`` lines that
``systemctl status`` shows. Outside systemd the variable is unset and every call does
nothing.

:meth:`Notifier.from_environment` takes the variable out of the environment, as
``sd_notify(unset_environment=1)`` does: processes the daemon starts (fusermount3, the
demo's emulators) must not speak for the unit.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

ENV = "NOTIFY_SOCKET"


class Notifier:
    """Sends notifications to one socket; never raises (the mount matters more)."""

    def __init__(self, address: str | None) -> None:
        self._address = _socket_address(address) if address else None

    @classmethod
    def from_environment(cls) -> Notifier:
        return cls(os.environ.pop(ENV, None))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one message; True if sent."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # A full receive queue must not stall the file system: drop the message.
                sock.setblocking(False)
                sock.sendto(message, self._address)
        except OSError as exc:
            log.debug("sd_notify to %r failed: %s", self._address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")


def _socket_address(address: str) -> str | None:
    if address.startswith("@"):
        # Linux abstract namespace: the name starts with a NUL byte.
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    # systemd also knows vsock: addresses (virtual machines); a mount has no use for them.
    log.warning("ignoring %s=%r: not a socket path or abstract address", ENV, address)
    return None
