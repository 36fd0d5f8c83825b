"""The CAVE emulator's ASGI app: the global server and the local server.

Like a real deployment, the two are separate origins: requests arriving on
``Origins.local_port`` reach only the local services (annotation engine, materialization
engine), every other port only the global ones (info, schema, state). The datastack info names
the local origin in ``local_server``. Without a local port (in-process use) one origin serves
both.

Middleware, outermost first: :class:`CaptureWriteBodies` (the request log gets write bodies),
:class:`NetworkMiddleware` (latency, bandwidth, faults, request log, ``/__emulator__``), then
:class:`Dispatcher` (origin split, routing, the services' error handling).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from neurofs_emulators.cave.annotation import AnnotationEngine
from neurofs_emulators.cave.auth import Authenticator, AuthRefused
from neurofs_emulators.cave.globalserver import GlobalServer
from neurofs_emulators.cave.http import NOT_FOUND_TEXT, EngineError, werkzeug_html
from neurofs_emulators.cave.materialize import BadRequest, MaterializationEngine
from neurofs_emulators.cave.sample import build_state
from neurofs_emulators.cave.state import CaveState
from neurofs_emulators.network import NetworkKnobs, RequestLog
from neurofs_emulators.requestlog import BodyRequestLog, EmulatorStack
from neurofs_emulators.routing import Router

METHOD_NOT_ALLOWED_TEXT = "The method is not allowed for the requested URL."


@dataclass
class Origins:
    """Where the local server is served; filled in once the sockets are bound."""

    local_port: int | None = None
    global_port: int | None = None


def _origin(request: Request, port: int | None) -> str:
    hostname = request.url.hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    port = port if port is not None else request.url.port
    return (
        f"{request.url.scheme}://{hostname}:{port}"
        if port
        else f"{request.url.scheme}://{hostname}"
    )


class Dispatcher:
    """Origin split, routing, and the answer for errors raised by handlers."""

    def __init__(self, state: CaveState, origins: Origins) -> None:
        self.state = state
        self.origins = origins
        self.auth = Authenticator(lambda r: self.global_url(r) + "/sticky_auth")
        self.annotation = AnnotationEngine(state, self.auth)
        self.materialize = MaterializationEngine(state, self.auth)
        self.global_server = GlobalServer(state, self.auth, self.local_url)
        self.local_router = Router()
        self.local_router.include(self.annotation.router())
        self.local_router.include(self.materialize.router())
        self.global_router = self.global_server.router()
        # One origin for both (in-process use): the local routes first, as two servers would
        # be asked in turn.
        self.both = Router()
        self.both.include(self.local_router)
        self.both.include(self.global_router)

    def local_url(self, request: Request) -> str:
        return _origin(request, self.origins.local_port)

    def global_url(self, request: Request) -> str:
        return _origin(request, self.origins.global_port)

    def is_local(self, request: Request) -> bool | None:
        if self.origins.local_port is None:
            return None
        server = request.scope.get("server") or (None, None)
        return bool(server[1] == self.origins.local_port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        local = self.is_local(request)
        router = self.both if local is None else self.local_router if local else self.global_router
        path = request.url.path
        matched = router.match(request.method, path)
        if matched is None:
            if router.methods(path):
                return werkzeug_html(405, METHOD_NOT_ALLOWED_TEXT)
            return werkzeug_html(404, NOT_FOUND_TEXT)
        try:
            return await matched(request)
        except AuthRefused as refused:
            return refused.response
        except BadRequest as exc:
            return werkzeug_html(400, exc.description)
        except EngineError as exc:
            if path.startswith("/materialize"):
                exc.where = "materializationengine/blueprints/client/common.py"
            return exc.response()


class EmulatorApp(EmulatorStack):
    """The full middleware stack as one ASGI callable, with handles for tests."""

    def __init__(
        self, state: CaveState, knobs: NetworkKnobs, origins: Origins, log: RequestLog
    ) -> None:
        super().__init__(Dispatcher(state, origins), knobs, log)
        self.state = state
        self.origins = origins


def create_app(
    knobs: NetworkKnobs | None = None,
    *,
    state: CaveState | None = None,
    origins: Origins | None = None,
    request_log: RequestLog | None = None,
) -> EmulatorApp:
    """The emulator's ASGI app.

    ``state`` defaults to a fresh copy of the sample data (:func:`.sample.build_state`).
    ``origins.local_port`` (settable after creation) splits the local server onto its own
    port; until set, every port serves both. The request log (default: a
    :class:`BodyRequestLog`) records the JSON body of writes.
    """
    return EmulatorApp(
        state if state is not None else build_state(),
        knobs if knobs is not None else NetworkKnobs(),
        origins if origins is not None else Origins(),
        request_log if request_log is not None else BodyRequestLog(),
    )
