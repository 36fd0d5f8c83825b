"""The answers of WEBKNOSSOS's Play application, shared by the main server and the datastore.

Routes match on method and path exactly (no trailing slash redirects; a wrong method is a
404 like an unknown path: :mod:`neurofs_emulators.routing` with no 405), errors are JSON
``{"messages": [{"error": "..."}]}`` (plus a ``{"chain": ...}`` entry for a failure with causes,
see :class:`WkError`), and every route lives under ``/api/v{N}`` (main server) or
``/data/v{N}`` (datastore), ``N`` between the oldest supported and the current API version,
or unversioned (= current). Other versions answer 404 with the real server's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

JSON_TYPE = "application/json"


class WkError(Exception):
    """An error answer in the real server's shape.

    ``causes`` are the failures this one wraps, outermost first: the real server chains a
    message onto a failure with ``?~>`` and answers the outermost message as the error and
    the causes as one ``{"chain": "[Server Time <now>]  <~ cause <~ deeper cause"}`` entry
    (scalableminds/webknossos, util/.../mvc/ExtendedController.scala, ``asResult`` and
    ``formatChain``; a message put on an *empty* result starts no chain)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        plain: bool = False,
        errors: list[dict[str, str]] | None = None,
        causes: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # The datastore answers some access errors as plain text (Play's Forbidden("...")).
        self.plain = plain
        # Per-field errors of a body the JSON reads refused (see invalid_json).
        self.errors = errors
        self.causes = causes or []

    def response(self) -> Response:
        if self.plain:
            return Response(self.message, status_code=self.status, media_type="text/plain")
        body: dict[str, Any] = {"errors": self.errors} if self.errors is not None else {}
        messages: list[dict[str, str]] = [{"error": self.message}]
        if self.causes:
            messages.append({"chain": chain_text(self.causes)})
        body["messages"] = messages
        return json_response(body, self.status)


def chain_text(causes: list[str], now: datetime | None = None) -> str:
    """The real server's ``formatChain``: the server time (its ``Instant.toString``, Java's
    ``ISO_INSTANT`` of milliseconds), then `` <~ `` before each cause."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    millis = moment.microsecond // 1000
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}" if millis else "") + "Z"
    return f"[Server Time {stamp}] " + "".join(f" <~ {cause}" for cause in causes)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Compact JSON like Play writes it (no spaces)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)


def success_message(text: str) -> dict[str, Any]:
    return {"messages": [{"success": text}]}


async def json_body(request: Request) -> Any:
    """The request body as JSON, or the real server's 400 for invalid JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise WkError(400, "Invalid Json format: the request body is not valid JSON") from None


def validation_message(exc: Exception) -> str:
    """A short, readable summary of a pydantic validation error."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors(include_url=False):
            loc = "/".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return "Invalid Json format: " + "; ".join(parts)
    return f"Invalid Json format: {exc}"


# Play's default messages (playframework, core/play/src/main/resources/messages.default) for
# the pydantic error types the request bodies can produce.
_PLAY_MESSAGES = {
    "missing": "Missing path",
    "string_type": "String value expected",
    "int_type": "Number value expected",
    "int_from_float": "Number value expected",
    "bool_type": "Boolean value expected",
    "model_type": "Object value expected",
    "model_attributes_type": "Object value expected",
}


def invalid_json(exc: ValidationError, messages: Mapping[str, str] | None = None) -> WkError:
    """The real server's 400 for a body its JSON reads refuse (``withJsonBodyUsing`` in
    scalableminds/webknossos, ``app/controllers/Controller.scala``): "Invalid Json format"
    plus one ``{"field": "obj.<key>", "error": ...}`` per refused field. ``messages`` gives
    the text of further pydantic error types (a route's own checks, such as a name pattern)."""
    known = {**_PLAY_MESSAGES, **(messages or {})}
    errors = []
    for err in exc.errors(include_url=False):
        field = ".".join(["obj", *(str(p) for p in err["loc"])])
        template = known.get(err["type"])
        text = template.format(**err.get("ctx", {})) if template else str(err["msg"])
        errors.append({"field": field, "error": text})
    return WkError(400, "Invalid Json format", errors=errors)


OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")


def require_object_id(value: str) -> str:
    """Path and query ids are Play ``ObjectId`` binders: malformed ids are a 400."""
    if not OBJECT_ID.match(value):
        raise WkError(400, f"The passed resource id “{value}” is invalid")
    return value


VERSIONED = re.compile(r"^/(?P<prefix>api|data)(?:/v(?P<version>\d+))?(?P<rest>/.*)?$")


def invalid_version_message(requested: int, oldest: int, current: int) -> str:
    return (
        "This WEBKNOSSOS instance does not support the requested HTTP API version. "
        f"Client requested {requested} but must be at least {oldest} and at most {current}."
    )
