"""Network conditions and the request log shared by every emulator.

:class:`NetworkMiddleware` wraps an emulator's ASGI app and, on every route except the
``/__emulator__/...`` control routes:

- waits ``latency_ms`` before the request reaches the app (so before the first byte);
- paces response bodies to ``bandwidth_mbps`` (per response stream, in small chunks);
- at ``fault_rate``, injects a fault drawn from ``random.Random(seed)``: a 500/502/503 with a
  JSON body, a 429 with ``Retry-After: 1``, or a connection cut mid-body (the headers with the
  full Content-Length, part of the body, then the connection is closed);
- per kind, on top of ``fault_rate``: ``error_rate`` (a 500, 502 or 503), ``cut_rate`` (a cut
  mid-body) and ``throttle_rate`` (a 429 with ``Retry-After: <retry_after>``). One roll per
  request decides, so "10 % 5xx, 5 % cuts, 2 % 429" is exactly those shares; the rates add up
  to at most 1;
- ``outage``: every request is accepted and left unanswered (the connection stays open, as
  with a hung server or a black-holed route) until the knob is cleared, then answered;
- on paths starting with ``slow_path_prefix`` (every path when empty): ``trickle_bps`` sends
  response bodies at that many bytes per second after prompt headers, and
  ``stall_after_bytes`` stops a body after that many bytes (0: right after the headers) and
  holds the connection open until the knob is cleared;
- records ``{method, path, query, status, range, host, fault, sent}`` of the request
  (``sent``: the body bytes handed to the connection so far).

Control routes (never logged, never delayed or faulted):

- ``GET /__emulator__/requests``: the log since start or the last ``DELETE``;
- ``DELETE /__emulator__/requests``: clear it (204);
- ``GET /__emulator__/knobs`` / ``PUT /__emulator__/knobs`` (JSON body of
  :class:`NetworkKnobs` fields): read or change the knobs at run time; a PUT re-seeds the
  fault generator from ``seed``;
- ``POST /__emulator__/refusals`` (JSON :class:`Refusal`): answer the next matching requests
  with a given error, or cut their connection, for tests of failure paths; ``DELETE`` clears
  them.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, Self

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/__emulator__"

FaultKind = Literal["500", "502", "503", "429", "cut"]
FAULT_KINDS: tuple[FaultKind, ...] = ("500", "502", "503", "429", "cut")
_SERVER_ERRORS: tuple[FaultKind, ...] = ("500", "502", "503")
_FAULT_REASONS = {
    "500": "Internal Server Error",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "429": "Too Many Requests",
}


class NetworkKnobs(BaseModel):
    """Simulated network conditions of one emulator process."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0)
    # Megabits per second, applied to each response stream separately.
    bandwidth_mbps: float | None = Field(default=None, gt=0)
    fault_rate: float = Field(default=0, ge=0, le=1)
    # Per-kind fault rates, each a share of all requests (see the module docstring).
    error_rate: float = Field(default=0, ge=0, le=1)
    cut_rate: float = Field(default=0, ge=0, le=1)
    throttle_rate: float = Field(default=0, ge=0, le=1)
    retry_after: int = Field(default=1, ge=0)
    seed: int = 0
    # The server stops answering (requests hang) while set.
    outage: bool = False
    # Slow responses on paths starting with slow_path_prefix ("" = every path).
    trickle_bps: float | None = Field(default=None, gt=0)
    stall_after_bytes: int | None = Field(default=None, ge=0)
    slow_path_prefix: str = ""

    @model_validator(mode="after")
    def _rates_fit(self) -> Self:
        if self.fault_rate + self.error_rate + self.cut_rate + self.throttle_rate > 1 + 1e-9:
            raise ValueError("fault_rate + error_rate + cut_rate + throttle_rate exceeds 1")
        return self

    def is_slow(self, path: str) -> bool:
        slow = self.trickle_bps is not None or self.stall_after_bytes is not None
        return slow and path.startswith(self.slow_path_prefix)


class RequestRecord(BaseModel):
    method: str
    path: str
    query: str
    status: int | None
    range: str | None
    host: str | None
    fault: FaultKind | None = None
    # Body bytes handed to the connection (a response the client gave up on stops there).
    sent: int = 0
    # Wall-clock (time.time) when the request arrived and when its answer ended: a reader's
    # timeline of requests (how many were out at once, and the gaps between them).
    arrived: float = 0.0
    ended: float | None = None


class RequestLog:
    """Requests seen by the emulator, oldest first (one process, one event loop)."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        self._records.append(record)

    def clear(self) -> None:
        self._records.clear()

    def snapshot(self) -> list[RequestRecord]:
        return list(self._records)


class InjectedConnectionCut(Exception):
    """Raised inside the response to make the server drop the connection mid-body."""


class _DropInjectedCuts(logging.Filter):
    """Keeps uvicorn from logging a traceback for every deliberate connection cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not _contains_cut(exc)


def _contains_cut(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, InjectedConnectionCut):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_contains_cut(e) for e in exc.exceptions)
    return _contains_cut(exc.__cause__ or exc.__context__)


def install_log_filter() -> None:
    """Silence the server's error log for injected cuts (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropInjectedCuts) for f in logger.filters):
        logger.addFilter(_DropInjectedCuts())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class Refusal(BaseModel):
    """A scripted answer for tests of failure paths: the next ``times`` requests matching
    ``method`` and ``path_prefix`` get ``status`` with the JSON ``body`` (the real server's
    error shapes), without reaching the service. A 2xx status scripts a wrong answer that
    looks right (a count no page lives up to)."""

    method: str
    path_prefix: str
    status: int = Field(ge=200, le=599)
    body: Any = None
    times: int = Field(default=1, ge=1)
    # Matching requests let through before the refusals start (a failure in the middle of a
    # run of pages).
    after: int = Field(default=0, ge=0)
    # Instead of answering: the headers of a 200 with a Content-Length, then the connection is
    # dropped before the body (``status`` and ``body`` unused). The request never reaches the
    # service, but the client cannot tell whether it did.
    cut: bool = False


class NetworkMiddleware:
    """ASGI middleware applying :class:`NetworkKnobs` and keeping the :class:`RequestLog`."""

    def __init__(self, app: ASGIApp, knobs: NetworkKnobs, log: RequestLog | None = None) -> None:
        self.app = app
        self.knobs = knobs
        self.log = log if log is not None else RequestLog()
        self._rng = random.Random(knobs.seed)
        self._refusals: list[Refusal] = []

    def _scripted(self, method: str, path: str) -> Refusal | None:
        for refusal in self._refusals:
            if refusal.method.upper() == method and path.startswith(refusal.path_prefix):
                if refusal.after > 0:
                    refusal.after -= 1
                    return None
                refusal.times -= 1
                if refusal.times == 0:
                    self._refusals.remove(refusal)
                return refusal
        return None

    def set_knobs(self, knobs: NetworkKnobs) -> None:
        self.knobs = knobs
        self._rng = random.Random(knobs.seed)

    def _draw_fault(self) -> FaultKind | None:
        # Always draw twice so the sequence of faults depends only on the request count.
        roll = self._rng.random()
        kind = self._rng.choice(FAULT_KINDS)
        knobs = self.knobs
        if roll < knobs.fault_rate:
            return kind
        # The per-kind rates take consecutive slices of the same roll after fault_rate's.
        roll -= knobs.fault_rate
        if roll < knobs.error_rate:
            return _SERVER_ERRORS[min(int(roll / knobs.error_rate * 3), 2)]
        roll -= knobs.error_rate
        if roll < knobs.cut_rate:
            return "cut"
        roll -= knobs.cut_rate
        if roll < knobs.throttle_rate:
            return "429"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            await self._control(scope, receive, send)
            return

        knobs = self.knobs
        record = RequestRecord(
            method=scope["method"],
            path=path,
            query=bytes(scope.get("query_string", b"")).decode("latin-1"),
            status=None,
            range=_header(scope, b"range"),
            host=_header(scope, b"host"),
            arrived=time.time(),
        )
        self.log.append(record)
        while self.knobs.outage:  # a hung server: accepted, never answered until it recovers
            await anyio.sleep(0.05)
        refusal = self._scripted(scope["method"], path)
        if refusal is not None and refusal.cut:
            record.status, record.fault = 200, "cut"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            raise InjectedConnectionCut
        if refusal is not None:
            record.status = refusal.status
            await _send_json(send, refusal.status, refusal.body)
            return
        fault = self._draw_fault()
        record.fault = fault
        if knobs.latency_ms:
            await anyio.sleep(knobs.latency_ms / 1000)
        if fault is not None and fault != "cut":
            record.status = int(fault)
            await self._send_fault(fault, send, knobs.retry_after)
            return

        bytes_per_second = (
            knobs.bandwidth_mbps * 1_000_000 / 8 if knobs.bandwidth_mbps is not None else None
        )
        state: dict[str, Any] = {"sent": 0, "t0": 0.0, "cut_at": None}

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
                state["t0"] = time.monotonic()
                if fault == "cut":
                    length = 0
                    for key, value in message.get("headers", []):
                        if bytes(key).lower() == b"content-length":
                            length = int(value)
                    # HEAD and empty bodies are cut right after the headers.
                    state["cut_at"] = 0 if scope["method"] == "HEAD" else length // 2
                await send(message)
                if fault == "cut" and state["cut_at"] == 0:
                    raise InjectedConnectionCut
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            if state["cut_at"] is not None:
                room = state["cut_at"] - state["sent"]
                if len(body) >= room:
                    await self._deliver(send, body[:room], True, state, bytes_per_second, path)
                    raise InjectedConnectionCut
            await self._deliver(send, body, more, state, bytes_per_second, path)
            record.sent = state["sent"]

        try:
            await self.app(scope, receive, wrapped_send)
        finally:
            record.sent = state["sent"]
            record.ended = time.time()
            if record.status is None:
                record.status = 500

    async def _deliver(
        self,
        send: Send,
        body: bytes,
        more: bool,
        state: dict[str, Any],
        rate: float | None,
        path: str,
    ) -> None:
        if self.knobs.is_slow(path):
            await self._slow(send, body, more, state, path)
        else:
            await self._paced(send, body, more, state, rate)

    async def _slow(
        self, send: Send, body: bytes, more: bool, state: dict[str, Any], path: str
    ) -> None:
        """Send ``body`` under the trickle and stall knobs, re-read before every piece so that
        clearing them lets a held response finish at full speed."""
        offset = 0
        while True:
            knobs = self.knobs
            if not knobs.is_slow(path):
                await self._paced(send, body[offset:], more, state, None)
                return
            stall = knobs.stall_after_bytes
            if stall is not None and state["sent"] >= stall:
                await anyio.sleep(0.05)
                continue
            n = len(body) - offset
            if stall is not None:
                n = min(n, stall - state["sent"])
            if knobs.trickle_bps is not None:
                n = min(n, max(1, int(knobs.trickle_bps / 10)))
            last = offset + n >= len(body)
            piece = body[offset : offset + n]
            await send({"type": "http.response.body", "body": piece, "more_body": more or not last})
            state["sent"] += n
            offset += n
            if last:
                return
            if knobs.trickle_bps is not None:
                await anyio.sleep(n / knobs.trickle_bps)

    @staticmethod
    async def _paced(
        send: Send, body: bytes, more: bool, state: dict[str, Any], rate: float | None
    ) -> None:
        if rate is None or not body:
            state["sent"] += len(body)
            await send({"type": "http.response.body", "body": body, "more_body": more})
            return
        # Small chunks (about 20 ms of transfer each) keep the pacing smooth.
        chunk = int(max(1024, min(64 * 1024, rate / 50)))
        for offset in range(0, len(body), chunk):
            piece = body[offset : offset + chunk]
            last = offset + chunk >= len(body)
            await send({"type": "http.response.body", "body": piece, "more_body": more or not last})
            state["sent"] += len(piece)
            delay = state["t0"] + state["sent"] / rate - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)

    @staticmethod
    async def _send_fault(fault: FaultKind, send: Send, retry_after: int = 1) -> None:
        status = int(fault)
        reason = _FAULT_REASONS[fault]
        body = json.dumps({"detail": f"{reason} (injected by the neurofs emulator)"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if fault == "429":
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/")
        method = scope["method"]
        if path == CONTROL_PREFIX + "/requests" and method in ("GET", "HEAD"):
            payload = [r.model_dump() for r in self.log.snapshot()]
            await _send_json(send, 200, payload)
        elif path == CONTROL_PREFIX + "/requests" and method == "DELETE":
            self.log.clear()
            await _send_json(send, 204, None)
        elif path == CONTROL_PREFIX + "/knobs" and method in ("GET", "HEAD"):
            await _send_json(send, 200, self.knobs.model_dump())
        elif path == CONTROL_PREFIX + "/knobs" and method == "PUT":
            raw = await _read_body(receive)
            try:
                knobs = NetworkKnobs.model_validate_json(raw)
            except ValidationError as exc:
                await _send_json(send, 400, {"detail": exc.errors(include_url=False)})
                return
            self.set_knobs(knobs)
            await _send_json(send, 200, knobs.model_dump())
        elif path == CONTROL_PREFIX + "/refusals" and method == "POST":
            raw = await _read_body(receive)
            try:
                refusal = Refusal.model_validate_json(raw)
            except ValidationError as exc:
                await _send_json(send, 400, {"detail": exc.errors(include_url=False)})
                return
            self._refusals.append(refusal)
            await _send_json(send, 201, refusal.model_dump())
        elif path == CONTROL_PREFIX + "/refusals" and method == "DELETE":
            self._refusals.clear()
            await _send_json(send, 204, None)
        else:
            await _send_json(send, 404, {"detail": "Not found."})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: Any) -> None:
    body = b"" if status == 204 else json.dumps(payload, default=str).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if status != 204:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
