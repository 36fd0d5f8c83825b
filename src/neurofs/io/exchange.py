"""One HTTP exchange: send a request, read its body under the try's deadline, classify it.

Reads and writes both go through ``exchange``. It returns an answer whose status is below 400
with its body read (at most ``MAX_JSON_BYTES``), or, given a ``sink``, the body of a success
handed to the sink as it arrives and kept nowhere (answers of any length: a root's millions of
supervoxel ids); what may succeed on another try raises
``Transient``; a final refusal raises the domain error of ``io/status.TABLE``. What to do with
a success (follow a redirect, check a range, parse JSON) is the caller's.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from neurofs.errors import RemoteError
from neurofs.io.deadline import TryClock
from neurofs.io.status import GATEWAY_DOWN, StatusReader, error_for, error_text, transient
from neurofs.secrets import redact_url

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# Answers bigger than this are refused (a hostile or broken server cannot exhaust memory).
MAX_JSON_BYTES = 64 * 1024 * 1024


class Transient(Exception):
    """This try failed in a way worth another.

    ``down``: the failure says the server cannot be reached (no connection, no answer, a
    gateway's 502/503/504), rather than that this one request is in trouble (a 500, a cut or
    stalled body, bad bytes): only the former marks the whole source down.
    ``reached``: the request may have reached the server, so one that is not idempotent
    must not be sent again (only a connection never made is certain to have sent nothing)."""

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        *,
        down: bool = False,
        reached: bool = True,
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.down = down
        self.reached = reached


@dataclass(frozen=True)
class Reading:
    """How to read the answers of one request."""

    describe: str  # "METHOD url", redacted, for messages
    write: bool  # the status table's column (see io/status.TABLE)
    resend: bool  # 429 and 5xx may be retried (else they are final)
    off_api: bool = False  # answered by a data host: a 403 is an expired link
    reader: StatusReader | None = None  # the service's reading of its error answers


async def exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    clock: TryClock,
    reading: Reading,
    record: Callable[[int, int], None],
    sink: Callable[[bytes], None] | None = None,
) -> httpx.Response:
    """Send ``request`` and read its answer; ``record(status, bytes)`` once per exchange
    (status 0: no answer). ``sink``: the body of a 2xx answer goes to it, chunk by chunk, with
    no cap (the response's ``content`` is then empty); other answers are read as always."""
    clock.request_out()
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        record(0, 0)
        raise Transient(
            type(exc).__name__, down=True, reached=not isinstance(exc, httpx.ConnectError)
        ) from None
    clock.headers_in()
    if sink is not None and not 200 <= response.status_code < 300:
        sink = None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            clock.body_in(len(chunk))
            size += len(chunk)
            if sink is not None:
                sink(chunk)
                continue
            if size > MAX_JSON_BYTES:
                raise RemoteError(
                    f"{redact_url(str(request.url))}: answer larger than {MAX_JSON_BYTES}"
                )
            chunks.append(chunk)
    except httpx.TransportError as exc:
        record(response.status_code, size)
        raise Transient(f"body cut: {type(exc).__name__}") from None
    finally:
        await response.aclose()
    _keep_body(response, chunks)
    record(response.status_code, size)
    classify(response, reading)
    return response


def classify(response: httpx.Response, reading: Reading) -> None:
    """Raise for an error status: Transient for one worth another try, else its domain error."""
    status = response.status_code
    if status < 400:
        return
    message = error_text(response)
    real = None if reading.off_api or reading.reader is None else reading.reader(status, message)
    # The real status decides, as if the server had answered with it: CAVE's "500" that says
    # "409 Conflict: ..." is a refusal, not a server failure to retry.
    effective, message = real if real is not None else (status, message)
    if transient(effective) and reading.resend:
        raise Transient(
            f"HTTP {status}",
            _retry_after(response.headers.get("Retry-After")),
            down=status in GATEWAY_DOWN,
        )
    raise error_for(
        effective,
        f"{reading.describe}: HTTP {status}: {message}",
        write=reading.write,
        off_api=reading.off_api,
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _keep_body(response: httpx.Response, chunks: list[bytes]) -> None:
    """Attach the body read by hand to a closed response, and drop the response's stream:
    the stream refers back to the response, and that cycle would keep multi-MiB bodies alive
    until the next cyclic garbage collection (hundreds of MiB during a fast read)."""
    response._content = b"".join(chunks)
    response.stream = httpx.ByteStream(b"")


def checked_range(response: httpx.Response, start: int, end: int, total: int) -> bytes:
    """The body of an answer to ``Range: bytes=start-(end-1)`` of an object ``total`` bytes
    long, if it is exactly those bytes: a 206 whose Content-Range and length match, or a 200
    that is the whole object. Anything else raises ``Transient`` and is never returned, so a
    short or mismatched body cannot reach the block cache (whoever answered: the origin or
    the shared tier)."""
    body = response.content
    if response.status_code == 200:
        # A server may ignore Range; acceptable only when the range is the whole object.
        if start == 0 and end == total and len(body) == total:
            return body
        raise Transient(f"HTTP 200 instead of 206 ({len(body)} bytes)")
    if response.status_code != 206:
        raise Transient(f"unexpected HTTP {response.status_code} to a range request")
    m = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if not m:
        raise Transient("206 without a valid Content-Range")
    first, last, size = int(m.group(1)), int(m.group(2)), m.group(3)
    if first != start or last != end - 1 or (size != "*" and int(size) != total):
        raise Transient(f"Content-Range {m.group(0)} does not match the request")
    if len(body) != end - start:
        raise Transient(f"short body: {len(body)} of {end - start} bytes")
    return body
