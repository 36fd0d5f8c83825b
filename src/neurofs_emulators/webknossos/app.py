"""The WEBKNOSSOS emulator's ASGI app: main server (``/api``) and datastore (``/data``).

Like the real split deployment, the datastore gets its own origin (the second server of
:class:`~neurofs_emulators.service.Origins`): requests arriving on its port reach only
``/data/...``, every other port only ``/api/...``, and
dataset JSON names the datastore's URL in ``dataStore.url``. Without a datastore port
(in-process use) both live on one origin, like a WEBKNOSSOS instance with a local datastore.

Middleware, outermost first: :class:`CaptureWriteBodies` (request log gets write bodies),
:class:`NetworkMiddleware` (latency, bandwidth, faults, request log, ``/__emulator__``),
then :class:`WkDispatcher` (origin split, API version check, routing, errors).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.network import NetworkKnobs, RequestLog
from neurofs_emulators.requestlog import BodyRequestLog
from neurofs_emulators.routing import Router
from neurofs_emulators.service import Dispatcher, EmulatorApp, Origins
from neurofs_emulators.webknossos.api import MainApi
from neurofs_emulators.webknossos.datastore import Datastore
from neurofs_emulators.webknossos.http import VERSIONED, WkError, invalid_version_message
from neurofs_emulators.webknossos.sample import (
    CURRENT_API_VERSION,
    OLDEST_SUPPORTED_API_VERSION,
    build_world,
)
from neurofs_emulators.webknossos.state import World


class WkDispatcher(Dispatcher):
    """Origin split, API version check and routing of both hosts."""

    def __init__(self, world: World, origins: Origins, api_version: int) -> None:
        self.world = world
        self.origins = origins
        self.api_version = api_version
        self.main = MainApi(world, origins.second_url, api_version)
        self.datastore = Datastore(world)
        self.routers: dict[str, Router] = {
            "api": self.main.router(),
            "data": self.datastore.router(),
        }

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        found = VERSIONED.match(path)
        expected = self.expected_prefix(request)
        if found is None or (expected is not None and found.group("prefix") != expected):
            return WkError(404, f"No route for {request.method} {path}").response()
        version_text = found.group("version")
        if version_text is not None:
            version = int(version_text)
            if not OLDEST_SUPPORTED_API_VERSION <= version <= self.api_version:
                message = invalid_version_message(
                    version, OLDEST_SUPPORTED_API_VERSION, self.api_version
                )
                return WkError(404, message).response()
        rest = found.group("rest") or "/"
        prefix = found.group("prefix")
        # /api/buildinfo is unversioned by design; versioned forms work too.
        matched = self.routers[prefix].match(request.method, rest)
        if matched is None:  # a wrong method too: Play has no 405
            return WkError(404, f"No route for {request.method} {path}").response()
        try:
            return await matched(request)
        except WkError as err:
            return err.response()

    def expected_prefix(self, request: Request) -> str | None:
        on_datastore = self.origins.on_second(request.scope)
        if on_datastore is None:
            return None
        return "data" if on_datastore else "api"


def create_app(
    knobs: NetworkKnobs | None = None,
    *,
    world: World | None = None,
    origins: Origins | None = None,
    request_log: RequestLog | None = None,
    api_version: int = CURRENT_API_VERSION,
    sample: str = "demo",
) -> EmulatorApp:
    """The emulator's ASGI app.

    ``world`` defaults to a fresh copy of the sample data (:func:`.sample.build_world`).
    ``origins.second_port`` (settable after creation) splits the datastore onto its own
    port; until set, both hosts are served on every port. The request log (default: a
    :class:`BodyRequestLog`) records the JSON body of writes. ``api_version`` is the current
    API version it announces and serves (one of :data:`.sample.API_VERSIONS`). ``sample``
    picks the default world: ``demo``, or ``large`` (the demo plus the scale dataset).
    """
    origins = origins if origins is not None else Origins()
    return EmulatorApp(
        WkDispatcher(world if world is not None else build_world(sample), origins, api_version),
        knobs if knobs is not None else NetworkKnobs(),
        request_log if request_log is not None else BodyRequestLog(),
    )
