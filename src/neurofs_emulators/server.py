"""Run an emulator's ASGI app with uvicorn on one or more loopback sockets.

One process may serve several origins (the DANDI emulator answers the API on one port and
its S3-like blob store on another): :func:`serve` binds one socket per requested port and
runs a single uvicorn server on all of them. When every socket listens, it prints exactly
one line to stdout, which :mod:`neurofs_emulators.launch` waits for::

    neurofs-emulator <service> ready <url of socket 1> <url of socket 2> ...
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import uvicorn

from neurofs_emulators.network import install_log_filter

READY_PREFIX = "neurofs-emulator"

log = logging.getLogger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (``port`` 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # IPPROTO_TCP, and without it keep-alive responses stall ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(False)
    return sock


def socket_url(sock: socket.socket, path: str = "") -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def ready_line(service: str, urls: Sequence[str]) -> str:
    return " ".join([READY_PREFIX, service, "ready", *urls])


def serve(
    app: Any,
    *,
    host: str,
    ports: list[int],
    service: str,
    on_ready: Callable[[list[str]], None] | None = None,
    url_paths: Sequence[str] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve ``app`` on one socket per entry of ``ports`` until SIGTERM or SIGINT.

    ``url_paths`` (one per port) are appended to the socket URLs in the ready line, e.g.
    ``["/api", ""]``. ``on_ready`` gets those URLs once all sockets listen, before the ready
    line is printed (so the app can learn its ports before any client can know them).
    """
    if not ports:
        raise ValueError("serve() needs at least one port")
    paths = list(url_paths) if url_paths is not None else [""] * len(ports)
    if len(paths) != len(ports):
        raise ValueError("url_paths must have one entry per port")
    sockets = [bind_socket(host, port) for port in ports]
    urls = [socket_url(sock, path) for sock, path in zip(sockets, paths, strict=True)]

    install_log_filter()
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        # Each emulator sets its own Server header where the real service has one.
        server_header=False,
    )
    server = uvicorn.Server(config)

    stop_requested: list[int] = []

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        # uvicorn captures SIGTERM/SIGINT while serving and re-raises them once shut down;
        # this handler is what runs then, so a signal means a clean exit with status 0.
        stop_requested.append(signum)
        server.should_exit = True

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=sockets))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            if on_ready is not None:
                on_ready(urls)
            sys.stdout.write(ready_line(service, urls) + "\n")
            sys.stdout.flush()
        await task

    try:
        asyncio.run(main())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in sockets:
            sock.close()
    if stop_requested:
        log.debug("stopped by signal %s", stop_requested[0])
