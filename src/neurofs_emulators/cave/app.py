"""The CAVE emulator's ASGI app: the global server and the local server.

Like a real deployment, the two are separate origins: requests arriving on the port of the
local server (the second server of :class:`~neurofs_emulators.service.Origins`) reach only
the local services (annotation engine, materialization engine, ChunkedGraph), every other
port only the global ones (info, schema, state, and the datastack's viewer). The datastack
info names the local origin in ``local_server``. Without a local port (in-process use) one
origin serves both.

Middleware, outermost first: :class:`CaptureWriteBodies` (the request log gets write bodies),
:class:`NetworkMiddleware` (latency, bandwidth, faults, request log, ``/__emulator__``), then
:class:`CaveDispatcher` (origin split, routing, the services' error handling).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.cave.annotation import AnnotationEngine
from neurofs_emulators.cave.auth import Authenticator, AuthRefused
from neurofs_emulators.cave.chunkedgraph import ChunkedGraph
from neurofs_emulators.cave.globalserver import GlobalServer
from neurofs_emulators.cave.http import NOT_FOUND_TEXT, EngineError, werkzeug_html
from neurofs_emulators.cave.materialize import BadRequest, MaterializationEngine
from neurofs_emulators.cave.sample import build_state
from neurofs_emulators.cave.state import CaveState
from neurofs_emulators.network import NetworkKnobs, RequestLog
from neurofs_emulators.requestlog import BodyRequestLog
from neurofs_emulators.routing import Router
from neurofs_emulators.service import Dispatcher, EmulatorApp, Origins

METHOD_NOT_ALLOWED_TEXT = "The method is not allowed for the requested URL."


class CaveDispatcher(Dispatcher):
    """Origin split, routing, and the answer for errors raised by handlers."""

    def __init__(self, state: CaveState, origins: Origins, row_cap: int | None = None) -> None:
        self.state = state
        self.origins = origins
        self.auth = Authenticator(lambda r: origins.main_url(r) + "/sticky_auth")
        self.annotation = AnnotationEngine(state, self.auth)
        self.materialize = MaterializationEngine(state, self.auth, row_cap)
        # The datastack info names the local server's origin, and the viewer on the global one.
        self.global_server = GlobalServer(state, self.auth, origins.second_url, origins.main_url)
        self.local_router = Router()
        self.local_router.include(self.annotation.router())
        self.local_router.include(self.materialize.router())
        self.local_router.include(ChunkedGraph(self.auth).router())
        self.global_router = self.global_server.router()
        # One origin for both (in-process use): the local routes first, as two servers would
        # be asked in turn.
        self.both = Router()
        self.both.include(self.local_router)
        self.both.include(self.global_router)

    async def handle(self, request: Request) -> Response:
        local = self.origins.on_second(request.scope)
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


def create_app(
    knobs: NetworkKnobs | None = None,
    *,
    state: CaveState | None = None,
    origins: Origins | None = None,
    request_log: RequestLog | None = None,
    row_cap: int | None = None,
) -> EmulatorApp:
    """The emulator's ASGI app.

    ``state`` defaults to a fresh copy of the sample data (:func:`.sample.build_state`).
    ``origins.second_port`` (settable after creation) splits the local server onto its own
    port; until set, every port serves both. The request log (default: a
    :class:`BodyRequestLog`) records the JSON body of writes. ``row_cap`` is the
    materialization engine's rows per query (default: its ``QUERY_LIMIT_SIZE``).
    """
    return EmulatorApp(
        CaveDispatcher(
            state if state is not None else build_state(),
            origins if origins is not None else Origins(),
            row_cap,
        ),
        knobs if knobs is not None else NetworkKnobs(),
        request_log if request_log is not None else BodyRequestLog(),
    )
