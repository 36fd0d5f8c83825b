"""The emulators' request log: the shared :class:`RequestLog`, plus the JSON body of writes.

``GET /__emulator__/requests`` then shows, on every ``POST``/``PUT``/``PATCH``/``DELETE``
record, a field ``body``: the request body parsed as JSON, or ``null`` when there was none or
it was not JSON; of a multipart form, its text fields and the names and sizes of its files
(``multipart.describe``). Read records are unchanged.

The body is read by :class:`CaptureWriteBodies`, an ASGI middleware placed *outside*
:class:`~neurofs_emulators.network.NetworkMiddleware`: it buffers the body (then replays it to
the app) and leaves it in a context variable, which :class:`BodyRequestLog` reads when the
network middleware appends the record. So injected faults, which never reach the app, are
logged with their body too.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from neurofs_emulators.multipart import describe, parse_multipart
from neurofs_emulators.network import (
    CONTROL_PREFIX,
    ASGIApp,
    Message,
    Receive,
    RequestLog,
    RequestRecord,
    Scope,
    Send,
)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_NO_BODY = object()
_current_body: ContextVar[Any] = ContextVar("neurofs_dandi_request_body", default=_NO_BODY)


class WriteRecord(RequestRecord):
    """A logged write: the common fields plus the JSON body (``None`` if absent or not JSON)."""

    body: Any = None


class BodyRequestLog(RequestLog):
    """A :class:`RequestLog` whose write records carry the request body."""

    def __init__(self) -> None:
        super().__init__()
        # Keyed by id(): records stay alive in the log until clear(), which empties this too.
        self._bodies: dict[int, Any] = {}

    def append(self, record: RequestRecord) -> None:
        super().append(record)
        body = _current_body.get()
        if record.method in WRITE_METHODS and body is not _NO_BODY:
            self._bodies[id(record)] = body

    def clear(self) -> None:
        super().clear()
        self._bodies.clear()

    def snapshot(self) -> list[RequestRecord]:
        out: list[RequestRecord] = []
        for record in super().snapshot():
            if record.method in WRITE_METHODS:
                body = self._bodies.get(id(record))
                out.append(WriteRecord(**record.model_dump(), body=body))
            else:
                out.append(record)
        return out


def parse_body(raw: bytes, content_type: str = "") -> Any:
    if not raw:
        return None
    form = parse_multipart(content_type, raw)
    if form is not None:
        return describe(form)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None


class CaptureWriteBodies:
    """Buffer the body of write requests and expose it to :class:`BodyRequestLog`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITE_METHODS
            or path == CONTROL_PREFIX
            or path.startswith(CONTROL_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        pending: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending.append(message)  # a disconnect: hand it on after the body
                break
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        pending.insert(0, {"type": "http.request", "body": raw, "more_body": False})

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        token = _current_body.set(parse_body(raw, content_type.decode("latin-1")))
        try:
            await self.app(scope, replay, send)
        finally:
            _current_body.reset(token)
