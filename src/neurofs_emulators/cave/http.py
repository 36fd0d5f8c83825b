"""The response styles of CAVE's Flask services (routing: :mod:`neurofs_emulators.routing`).

The real services are Flask apps, and clients can tell which part of Flask answered:

- flask-restx resources (annotation engine, materialization engine, info, schema) write JSON
  with ``json.dumps`` defaults (``", "`` and ``": "`` separators, keys unsorted) plus a newline;
- ``flask.jsonify`` (middle_auth errors, version routes, the state server) writes compact JSON
  with sorted keys plus a newline;
- werkzeug's own error pages are HTML.

The annotation and materialization engines register a catch-all ``errorhandler(Exception)`` on
their flask-restx namespace. flask-restx picks the first registered handler whose type matches,
so every exception, ``abort(4xx)`` included, becomes HTTP 500 with
``{"code": 500, "message": str(e), "traceback": [...]}``; an exception carrying a ``data``
attribute (flask-accepts' schema errors, reqparse errors) sends that ``data`` as the body
instead, still with status 500. :class:`EngineError` models such an exception.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from starlette.responses import Response

JSON_TYPE = "application/json"

# werkzeug's reason phrases (HTTPException.name) for the codes the engines abort with.
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Request Entity Too Large",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}

BROWSER_400 = "The browser (or proxy) sent a request that this server could not understand."
NOT_FOUND_TEXT = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)
INTERNAL_ERROR_TEXT = (
    "The server encountered an internal error and was unable to complete your request. "
    "Either the server is overloaded or there is an error in the application."
)


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def restx_json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A flask-restx resource's answer (``json.dumps`` defaults + newline)."""
    body = (json.dumps(payload, default=_default) + "\n").encode()
    return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)


def flask_json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``flask.jsonify``: compact, sorted keys, newline."""
    body = (
        json.dumps(payload, default=_default, separators=(",", ":"), sort_keys=True) + "\n"
    ).encode()
    return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)


def werkzeug_html(status: int, description: str) -> Response:
    """A werkzeug HTTPException rendered as its default HTML page."""
    reason = REASONS.get(status, "Error")
    body = (
        "<!doctype html>\n<html lang=en>\n"
        f"<title>{status} {reason}</title>\n<h1>{reason}</h1>\n"
        f"<p>{html.escape(description)}</p>\n"
    )
    return Response(body, status_code=status, media_type="text/html; charset=utf-8")


def http_exception_text(status: int, description: Any) -> str:
    """``str()`` of a werkzeug HTTPException: ``"422 Unprocessable Entity: {...}"``."""
    return f"{status} {REASONS[status]}: {description}"


# The exception class each status maps to in werkzeug, for the traceback's last line.
_EXCEPTION_CLASSES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    422: "UnprocessableEntity",
}


class EngineError(Exception):
    """An exception raised inside an engine resource; answered by its catch-all handler."""

    def __init__(
        self,
        message: str,
        *,
        exc_type: str = "Exception",
        data: Any = None,
        where: str = "annotationengine/api.py",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exc_type = exc_type
        self.data = data
        self.where = where

    @classmethod
    def abort(cls, status: int, description: Any, **kwargs: Any) -> EngineError:
        """``flask.abort(status, description)`` inside the resource."""
        name = _EXCEPTION_CLASSES.get(status, "HTTPException")
        return cls(
            http_exception_text(status, description),
            exc_type=f"werkzeug.exceptions.{name}",
            **kwargs,
        )

    def traceback(self) -> list[str]:
        # traceback.format_exception() of the real exception: the frames differ from the real
        # server's, the shape (a list of strings ending with "Type: message\n") does not.
        return [
            "Traceback (most recent call last):\n",
            '  File "/usr/local/lib/python3.11/site-packages/flask_restx/resource.py", '
            "line 46, in dispatch_request\n    resp = meth(*args, **kwargs)\n",
            f'  File "/app/{self.where}", line 1, in handler\n',
            f"{self.exc_type}: {self.message}\n",
        ]

    def response(self) -> Response:
        if self.data is not None:
            return restx_json(self.data, 500)
        return restx_json(
            {"code": 500, "message": self.message, "traceback": self.traceback()}, 500
        )


def none_attribute_error(attribute: str) -> EngineError:
    return EngineError(
        f"'NoneType' object has no attribute '{attribute}'", exc_type="AttributeError"
    )


def none_subscript_error() -> EngineError:
    return EngineError("'NoneType' object is not subscriptable", exc_type="TypeError")


def schema_errors(messages: dict[str, Any]) -> EngineError:
    """flask-accepts' BadRequest for an invalid body (its ``data`` is the body sent)."""
    return EngineError(
        http_exception_text(400, f"Error parsing request body: {messages}"),
        exc_type="werkzeug.exceptions.BadRequest",
        data={"schema_errors": messages},
    )


def invalid_json_error(raw: bytes) -> EngineError:
    """``request.get_json(force=True)`` on a body that is not JSON (werkzeug 1.0)."""
    try:
        json.loads(raw)
        detail = "Expecting value"
    except (ValueError, UnicodeDecodeError) as exc:
        detail = str(exc)
    return EngineError.abort(400, f"Failed to decode JSON object: {detail}")


def parse_json_body(raw: bytes) -> Any:
    """The body as flask-accepts reads it; raises :class:`EngineError` when not JSON."""
    if not raw:
        raise invalid_json_error(raw)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_json_error(raw) from None
