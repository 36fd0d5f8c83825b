"""What a server's error answer means: its status (one table) and its message.

Every final HTTP error of every source becomes a domain error here and nowhere else. A
source whose server hides the real status in the message (CAVE's engines answer most
refusals with a 500) passes a ``StatusReader`` that recovers it; the table then decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from neurofs.errors import (
    AccessDenied,
    Conflict,
    InvalidContent,
    NeurofsError,
    NotFound,
    ReadOnly,
    RemoteError,
    TooLarge,
)
from neurofs.secrets import redact

# Bodies of API error answers are shown to users; keep them short.
_MAX_ERROR_TEXT = 300
_MAX_ERROR_TEXT_WITH_URL = 600  # room for a URL the user must visit

ErrorType = type[NeurofsError]

# status: (on a read, on a write). A write is a request that carries a body (PUT, PATCH,
# POST, DELETE through ``HttpClient.send_json``), a read is a GET.
#
# The columns differ only where the status blames the request itself. A read's URL and
# query are built by neurofs, so a 400/422 (malformed), 405 (method not allowed) or 413 (too
# large) on a read is neurofs's or the server's fault, not the user's: EIO, like any answer
# it cannot act on. A write carries the user's edit, so the same statuses are the server
# refusing that edit: EINVAL, EROFS, EFBIG, which tell the user what to change.
#
# 409 is Conflict on both: the server says the target's current state conflicts with the
# request, whatever the method. DANDI answers 409 when an asset path clashes with another or
# a dandiset is being validated, CAVE's annotation engine when a row was already superseded
# (inside a 500, see ``sources/cave/api.real_status``); none of them sends it to a GET, and
# should one, "busy, try again" (EBUSY) is truer than "the server or network failed" (EIO).
#
# Statuses not named here are RemoteError (EIO). 429 and 5xx are first retried when the
# request may be sent again (``transient``); when retries end they are RemoteError too.
TABLE: Final[Mapping[int, tuple[ErrorType, ErrorType]]] = {
    400: (RemoteError, InvalidContent),
    401: (AccessDenied, AccessDenied),
    403: (AccessDenied, AccessDenied),
    404: (NotFound, NotFound),
    405: (RemoteError, ReadOnly),
    409: (Conflict, Conflict),
    410: (NotFound, NotFound),
    413: (RemoteError, TooLarge),
    422: (RemoteError, InvalidContent),
}

# Answers of a gateway whose server is gone or overloaded: the server cannot be reached,
# rather than this one request being in trouble.
GATEWAY_DOWN: Final = frozenset({502, 503, 504})

# A service's reading of an error answer (status, message) → the real (status, message),
# or None when the answer means what its status says.
StatusReader = Callable[[int, str], tuple[int, str] | None]


class LinkExpired(AccessDenied):
    """A presigned URL answered 403: the caller should resolve a fresh one."""


def transient(status: int) -> bool:
    """Worth another try: rate limited, or the server failed (not refused)."""
    return status == 429 or status >= 500


def error_for(status: int, message: str, *, write: bool, off_api: bool = False) -> NeurofsError:
    """The domain error of a final error status (see TABLE).

    ``off_api``: the answer came from a data host, not the API. Data URLs on other hosts
    are presigned, and a 403 there means the signature expired, not that access is refused."""
    if off_api and status == 403:
        return LinkExpired(message)
    on_read, on_write = TABLE.get(status, (RemoteError, RemoteError))
    return (on_write if write else on_read)(message)


def error_text(response: httpx.Response) -> str:
    """The server's message: a bare JSON string, DRF's {"detail": ...}, CAVE's
    {"message": ...}, WEBKNOSSOS's {"messages": [...]}, or the raw text; short and redacted."""
    try:
        body = response.json()
    except ValueError:
        text = response.text
    else:
        if isinstance(body, str):
            text = body
        elif isinstance(body, dict) and isinstance(body.get("detail"), str):
            text = body["detail"]  # DRF
        elif isinstance(body, dict) and isinstance(body.get("message"), str):
            # CAVE: {"error": "missing_tos", "message": ...} or {"code": 500, "message": ...}
            error = body.get("error")
            text = f"{error}: {body['message']}" if isinstance(error, str) else body["message"]
            data = body.get("data")
            if isinstance(data, dict) and isinstance(data.get("tos_form_url"), str):
                text += f" (accept the terms at {data['tos_form_url']})"
        elif isinstance(body, dict) and isinstance(body.get("messages"), list):
            text = _messages_text(body)
        else:
            text = str(body)
    return redact(text.strip()[: _MAX_ERROR_TEXT_WITH_URL if "http" in text else _MAX_ERROR_TEXT])


# The head of a WEBKNOSSOS error chain (its ExtendedController's ``formatChain``).
_CHAIN_HEAD = re.compile(r"^\s*\[Server Time [^\]]*\]")


def _messages_text(body: dict[str, Any]) -> str:
    """WEBKNOSSOS's errors: ``{"messages": [{"error": ...}, ...]}``, joined, with the causes
    of a chained failure (``{"chain": "[Server Time …]  <~ cause <~ deeper cause"}``) after
    them, and the fields its JSON reads refused (``"errors": [{"field": "obj.owner",
    "error": ...}]``)."""
    texts = [str(m["error"]) for m in body["messages"] if isinstance(m, dict) and "error" in m]
    for m in body["messages"]:
        if isinstance(m, dict) and isinstance(m.get("chain"), str):
            causes = _CHAIN_HEAD.sub("", m["chain"]).split("<~")
            texts += [cause.strip() for cause in causes if cause.strip()]
    fields = [
        f"{str(e['field']).removeprefix('obj.')}: {e['error']}"
        for e in body.get("errors") or []
        if isinstance(e, dict) and "field" in e and "error" in e
    ]
    text = "; ".join(texts) or str(body)
    return f"{text} ({'; '.join(fields)})" if fields else text
