"""What every emulator is made of, written once: its command line, its two origins, the
dispatcher behind the network knobs, and the run.

Each service is two servers on two ports, as real deployments are: DANDI's API and its S3
object store, the WEBKNOSSOS main server and its datastore, CAVE's global server and its
local server. One process serves both (:mod:`.server`); :class:`Origins` knows which port
is which once the sockets are bound, so a request can be answered as the server it reached
would, and URLs in answers can name the other one. Without ports (an app used in-process)
one origin serves both.

A service module declares an :class:`Emulator` (name, flags, how to build its app from
them); ``python -m neurofs_emulators.<service>`` and ``neurofs emulate <service>`` run its
:meth:`Emulator.main`, which prints the ready line :mod:`.launch` waits for.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.network import (
    ASGIApp,
    NetworkKnobs,
    NetworkMiddleware,
    Receive,
    RequestLog,
    Scope,
    Send,
)
from neurofs_emulators.requestlog import CaptureWriteBodies
from neurofs_emulators.server import serve


@dataclass
class Origins:
    """The ports of the two servers; None until bound (and in-process, where one origin
    serves both)."""

    main_port: int | None = None
    second_port: int | None = None

    def bind(self, urls: Sequence[str]) -> None:
        """Learn the ports from the URLs of the bound sockets (main server first)."""
        self.main_port, self.second_port = (urlsplit(url).port for url in urls)

    def on_second(self, scope: Scope) -> bool | None:
        """Whether the request reached the second server (None: one origin serves both)."""
        if self.second_port is None:
            return None
        server = scope.get("server") or (None, None)
        return bool(server[1] == self.second_port)

    def main_url(self, request: Request) -> str:
        return origin_url(request, self.main_port)

    def second_url(self, request: Request) -> str:
        return origin_url(request, self.second_port)


def origin_url(request: Request, port: int | None) -> str:
    """``scheme://host:port`` of a server on the host the request was sent to (``port``
    None: the request's own port)."""
    hostname = request.url.hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    port = port if port is not None else request.url.port
    scheme = request.url.scheme
    return f"{scheme}://{hostname}:{port}" if port else f"{scheme}://{hostname}"


class Dispatcher:
    """A service's innermost ASGI app: one :class:`Request` in, one :class:`Response` out.
    Subclasses route (:mod:`.routing`) and answer errors as their service does."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError


class EmulatorApp:
    """The ASGI app an emulator serves: the service's dispatcher behind the network knobs
    (:mod:`.network`) and the capture of write bodies for the request log. ``controls``
    wraps the whole in a service's own control routes (``/__emulator__/...``, never delayed,
    faulted or logged). ``network`` is kept for tests that change knobs at run time."""

    def __init__(
        self,
        dispatcher: ASGIApp,
        knobs: NetworkKnobs,
        log: RequestLog,
        controls: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.network = NetworkMiddleware(dispatcher, knobs, log=log)
        app: ASGIApp = CaptureWriteBodies(self.network)
        self._app = controls(app) if controls is not None else app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


# The data sets every emulator serves: ``demo`` (small, stored in memory or generated at
# start) and ``large`` (archives of real size, computed on the fly from the seed).
SAMPLES = ("demo", "large")


def parser(service: str, description: str) -> argparse.ArgumentParser:
    """The flags of every emulator; a service adds its own before parsing."""
    p = argparse.ArgumentParser(
        prog=f"python -m neurofs_emulators.{service}", description=description
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="first server's port (0: a free one)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--bandwidth-mbps", type=float, default=None)
    p.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests given a random fault"
    )
    p.add_argument("--error-rate", type=float, default=0.0, help="share answered 500/502/503")
    p.add_argument("--cut-rate", type=float, default=0.0, help="share cut mid-body")
    p.add_argument("--throttle-rate", type=float, default=0.0, help="share answered 429")
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After of a 429, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument(
        "--sample",
        choices=SAMPLES,
        default="demo",
        help="demo: the small sample data; large: the scale sample, computed on the fly",
    )
    return p


def knobs(args: argparse.Namespace) -> NetworkKnobs:
    return NetworkKnobs(
        latency_ms=args.latency_ms,
        bandwidth_mbps=args.bandwidth_mbps,
        fault_rate=args.fault_rate,
        error_rate=args.error_rate,
        cut_rate=args.cut_rate,
        throttle_rate=args.throttle_rate,
        retry_after=args.retry_after,
        seed=args.seed,
    )


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True)
class Emulator:
    """One service's emulator as a program.

    ``build`` makes the app from the parsed flags, the network knobs and the (not yet bound)
    origins. ``arguments`` adds the service's own flags; one of them may set ``second_port``
    (the second server's port; a free one by default). ``url_paths`` are appended to the
    two socket URLs in the ready line (the DANDI API lives under ``/api``).
    """

    service: str
    description: str
    build: Callable[[argparse.Namespace, NetworkKnobs, Origins], ASGIApp]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    url_paths: tuple[str, str] = ("", "")

    def main(self, argv: Sequence[str] | None = None) -> None:
        """Parse the flags and serve until SIGTERM/SIGINT; prints the ready line
        ``neurofs-emulator <service> ready <main server url> <second server url>``."""
        p = parser(self.service, self.description)
        self.arguments(p)
        args = p.parse_args(argv)
        origins = Origins()
        app = self.build(args, knobs(args), origins)
        serve(
            app,
            host=args.host,
            ports=[args.port, getattr(args, "second_port", 0)],
            service=self.service,
            # The ports are known only once bound, before any client can know them.
            on_ready=origins.bind,
            url_paths=self.url_paths,
        )
