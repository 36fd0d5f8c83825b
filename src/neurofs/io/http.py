"""The one HTTP client every source uses.

One ``HttpClient`` per configured source: a pooled ``httpx.AsyncClient`` on trio with
explicit timeouts, the source's auth header on API requests only, retries with exponential
backoff and jitter (connect errors, resets, cut bodies, 5xx, 429 with Retry-After) inside a
bounded total retry time, per-source stats, and URLs redacted in every log line.

Every try has a deadline, because httpx's read timeout is per socket read: a server that
accepts and never answers, or trickles a byte every few seconds, would otherwise hold a reader
forever. An answer must start within the retry budget; its body must then keep coming (see
``Timeouts.stall_seconds``). A try that misses either is abandoned and retried like a cut body.

Ranged reads are verified: a 206 with a matching Content-Range and an exact body length, or a
200 that covers the whole object. Anything else is retried and never returned, so a short or
mismatched body can never reach the block cache.
"""

from __future__ import annotations

import contextvars
import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import cachetools
import httpx
import trio

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
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.secrets import redact, redact_url

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# Bodies of API error answers are shown to users; keep them short.
_MAX_ERROR_TEXT = 300
_MAX_ERROR_TEXT_WITH_URL = 600  # room for a URL the user must visit
# JSON answers bigger than this are refused (a hostile or broken server cannot exhaust memory).
MAX_JSON_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry one logical request."""

    total_seconds: float = 30.0
    first_backoff: float = 0.2
    max_backoff: float = 5.0
    # A Retry-After longer than this is cut to it (but never beyond the total budget).
    max_retry_after: float = 10.0
    # After a request used up its whole budget without reaching the server, the server counts
    # as down: for this long requests fail at once (an outage costs one wait, not one per
    # file), then one request tries once; the first success ends the outage. A range request
    # that failed for any reason is not sent again for this long either.
    down_seconds: float = 10.0
    # However short the budget, an answer may take this long to start: a short budget limits
    # retrying, not a slow server (and the single try of a budget of 0 needs time too).
    min_answer_seconds: float = 10.0

    def answer_seconds(self, budget: float) -> float:
        """How long the tries of one request may wait for answers to start, in all."""
        return max(budget, self.min_answer_seconds)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 20.0
    # Once its headers are in, a body must bring stall_bytes within every stall_seconds, or the
    # try is abandoned as stalled (a minimum rate of 6.4 KB/s with the defaults).
    stall_seconds: float = 10.0
    stall_bytes: int = 64 * 1024


class _TryClock:
    """The deadline of one try, moved as its answer arrives: the retry deadline until the
    headers are in, then at most ``stall_seconds`` ahead, pushed on by each ``stall_bytes``."""

    def __init__(self, scope: trio.CancelScope, answer_by: float, timeouts: Timeouts) -> None:
        self.scope = scope
        self._answer_by = answer_by
        self._timeouts = timeouts
        self._since_mark = 0
        self.answered = False

    def request_out(self) -> None:
        """A request (the first, or one following a redirect) waits for its answer."""
        self.answered = False
        self._since_mark = 0
        self.scope.deadline = self._answer_by

    def headers_in(self) -> None:
        self.answered = True
        self.scope.deadline = min(
            self.scope.deadline, trio.current_time() + self._timeouts.stall_seconds
        )

    def body_in(self, nbytes: int) -> None:
        self._since_mark += nbytes
        if self._since_mark >= self._timeouts.stall_bytes:
            self._since_mark = 0
            self.scope.deadline = trio.current_time() + self._timeouts.stall_seconds


# The clock of the try running in this task (set by HttpClient._one_try).
_TRY_CLOCK: contextvars.ContextVar[_TryClock | None] = contextvars.ContextVar(
    "neurofs_try_clock", default=None
)


class Unreachable(RemoteError):
    """The server could not be reached (or kept failing) for the whole retry budget."""


class LinkExpired(AccessDenied):
    """A presigned URL answered 403: the caller should resolve a fresh one."""


class _Retryable(Exception):
    """Internal: this attempt failed in a way worth another try.

    ``down``: the failure says the server cannot be reached (no connection, no answer, a
    gateway's 502/503/504), rather than that this one request is in trouble (a 500, a cut or
    stalled body, bad bytes): only the former marks the whole source down."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, down: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.down = down


# Answers of a gateway whose server is gone or overloaded.
_GATEWAY_DOWN = frozenset({502, 503, 504})


def _parse_retry_after(value: str | None) -> float | None:
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


def _error_text(response: httpx.Response) -> str:
    """The server's message: a bare JSON string, DRF's {"detail": ...}, or the raw text."""
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


def _messages_text(body: dict[str, Any]) -> str:
    """WEBKNOSSOS's errors: ``{"messages": [{"error": ...}, ...]}``, joined, and the fields
    its JSON reads refused (``"errors": [{"field": "obj.owner", "error": ...}]``)."""
    texts = [str(m["error"]) for m in body["messages"] if isinstance(m, dict) and "error" in m]
    fields = [
        f"{str(e['field']).removeprefix('obj.')}: {e['error']}"
        for e in body.get("errors") or []
        if isinstance(e, dict) and "field" in e and "error" in e
    ]
    text = "; ".join(texts) or str(body)
    return f"{text} ({'; '.join(fields)})" if fields else text


def _write_error(status: int, message: str) -> Exception:
    if status in (400, 422):
        return InvalidContent(message)
    if status in (401, 403):
        return AccessDenied(message)
    if status in (404, 410):
        return NotFound(message)
    if status == 405:
        return ReadOnly(message)
    if status == 409:
        return Conflict(message)
    if status == 413:
        return TooLarge(message)
    return RemoteError(message)


def _keep_body(response: httpx.Response, chunks: list[bytes]) -> None:
    """Attach the body read by hand to a closed response, and drop the response's stream:
    the stream refers back to the response, and that cycle would keep multi-MiB bodies alive
    until the next cyclic garbage collection (hundreds of MiB during a fast read)."""
    response._content = b"".join(chunks)
    response.stream = httpx.ByteStream(b"")


async def _read_limited(response: httpx.Response, url: str) -> None:
    """Read a streamed answer's body into ``response``, at most MAX_JSON_BYTES of it."""
    clock = _TRY_CLOCK.get()
    if clock is not None:
        clock.headers_in()
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            if clock is not None:
                clock.body_in(len(chunk))
            size += len(chunk)
            if size > MAX_JSON_BYTES:
                raise RemoteError(f"{redact_url(url)}: answer larger than {MAX_JSON_BYTES}")
            chunks.append(chunk)
    finally:
        await response.aclose()
    _keep_body(response, chunks)


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


class HttpClient:
    """HTTP for one source. API calls carry ``auth_headers``; data URLs elsewhere never do."""

    def __init__(
        self,
        source: str,
        base_url: str,
        stats: Stats,
        *,
        auth_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
        responses: ResponseStore | None = None,
        refusal: Callable[[int, str], Exception | None] | None = None,
    ) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/") + "/"
        self._stats = stats
        self._auth = dict(auth_headers or {})
        self.retry = retry or RetryPolicy()
        t = self.timeouts = timeouts or Timeouts()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.read),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
            headers={"User-Agent": "neurofs/0.1"},
            transport=transport,
        )
        self._rng = random.Random()
        self._responses = responses
        # The server is down (see mark_down): requests fail at once until _next_trial, then
        # one of them (the trial) tries again.
        self._down = False
        self._next_trial = 0.0
        self._trial_running = False
        # Objects whose range request just failed after its whole budget, and why. The kernel
        # reads a page again at once when its read-ahead failed; that read, and others of the
        # same object for a while, fail at once instead of waiting for another budget.
        self._failed_objects: cachetools.TTLCache[str, str] = cachetools.TTLCache(
            maxsize=1024, ttl=self.retry.down_seconds
        )
        # A service-specific reading of error answers (status, message) → a final error, or
        # None for the usual handling. CAVE's annotation engine says "500" for refusals.
        self._refusal = refusal

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, path: str) -> str:
        """Absolute URL of an API path (absolute URLs pass through)."""
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def _headers_for(self, url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        # The token goes to the API's own origin only: never to S3 or another host.
        if same_origin(url, self.base_url):
            headers.update(self._auth)
        return headers

    # ------------------------------------------------------------------ core loop

    @property
    def seems_down(self) -> bool:
        return self._down

    def mark_down(self) -> None:
        """The server kept failing for a whole budget, or failed a trial: for the next
        ``down_seconds`` requests fail at once, so that an outage costs one wait rather than one
        per file (a hung server would make every try wait for its deadline). After that, one
        request at a time tries once; the first success ends the outage."""
        self._down = True
        self._next_trial = time.monotonic() + self.retry.down_seconds

    def _trial_or_refuse(self, describe: str) -> None:
        """While down: admit this request as the one trial, or raise Unreachable at once."""
        wait = self._next_trial - time.monotonic()
        if self._trial_running or wait > 0:
            self._stats.add("errors", source=self.source)
            log.debug("%s: not sent, the server is down", describe)
            raise Unreachable(
                f"{describe}: not sent, the server is down (next try in {max(wait, 0):.0f} s)"
            )

    async def _attempts(
        self, describe: str, attempt: Any, budget: float | None = None, *, resend: bool = True
    ) -> Any:
        """Run ``attempt()`` until it returns, raises a final error, or the budget is spent.

        ``budget`` None: the policy's total, or while the server is down a single trial (see
        mark_down). ``resend`` False: a try cut off by its deadline may have been carried out
        by the server (a POST), so it is final instead of retried."""
        if budget is not None:
            return await self._retrying(describe, attempt, budget, resend)
        if not self._down:
            return await self._retrying(describe, attempt, self.retry.total_seconds, resend)
        self._trial_or_refuse(describe)
        self._trial_running = True
        try:
            return await self._retrying(describe, attempt, 0.0, resend)
        finally:
            self._trial_running = False

    async def _retrying(self, describe: str, attempt: Any, budget: float, resend: bool) -> Any:
        deadline = time.monotonic() + budget
        answer_by = trio.current_time() + self.retry.answer_seconds(budget)
        backoff = self.retry.first_backoff
        tries = 0
        while True:
            tries += 1
            try:
                result = await self._one_try(describe, attempt, answer_by, resend)
            except _Retryable as exc:
                remaining = deadline - time.monotonic()
                wait = backoff * (0.5 + self._rng.random())
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, self.retry.max_retry_after))
                if remaining <= wait:
                    self._stats.add("errors", source=self.source)
                    if exc.down:
                        self.mark_down()
                    else:  # the server answered: it is up, only this request is in trouble
                        self._down = False
                    log.warning("%s: giving up after %d tries: %s", describe, tries, exc)
                    raise Unreachable(f"{describe}: {exc} (after {tries} tries)") from None
                self._stats.add("retries", source=self.source)
                log.info("%s: retrying in %.2fs: %s", describe, wait, exc)
                await trio.sleep(wait)
                backoff = min(backoff * 2, self.retry.max_backoff)
            else:
                self._down = False
                return result

    async def _one_try(self, describe: str, attempt: Any, answer_by: float, resend: bool) -> Any:
        """``attempt()`` under its deadline (see :class:`_TryClock`)."""
        with trio.CancelScope(deadline=answer_by) as scope:
            clock = _TryClock(scope, answer_by, self.timeouts)
            token = _TRY_CLOCK.set(clock)
            try:
                return await attempt()
            except NeurofsError:
                if clock.answered:  # a final answer (404, 403, ...): the server is up
                    self._down = False
                raise
            finally:
                _TRY_CLOCK.reset(token)
        # Only reached when the deadline cancelled the try.
        self._stats.request(self.source, 0, 0)
        reason = "body stalled" if clock.answered else "no answer in time"
        if not resend:
            raise RemoteError(
                f"{describe}: {reason}; the change may or may not have been made"
            ) from None
        raise _Retryable(reason, down=not clock.answered)

    def _classify(self, response: httpx.Response, describe: str) -> None:
        """Raise for an unsuccessful final status; _Retryable for transient ones."""
        status = response.status_code
        if status >= 400 and self._refusal is not None:
            special = self._refusal(status, _error_text(response))
            if special is not None:
                raise special
        if status == 429 or status >= 500:
            raise _Retryable(
                f"HTTP {status}",
                _parse_retry_after(response.headers.get("Retry-After")),
                down=status in _GATEWAY_DOWN,
            )
        if status in (401, 403):
            raise AccessDenied(f"{describe}: HTTP {status}: {_error_text(response)}")
        if status in (404, 410):
            raise NotFound(f"{describe}: HTTP {status}: {_error_text(response)}")
        if status >= 400:
            raise RemoteError(f"{describe}: HTTP {status}: {_error_text(response)}")

    async def _send(
        self, method: str, url: str, *, params: Mapping[str, Any] | None, headers: dict[str, str]
    ) -> httpx.Response:
        """One exchange, body read fully (bounded), stats recorded; network errors retryable."""
        clock = _TRY_CLOCK.get()
        if clock is not None:
            clock.request_out()
        try:
            request = self._client.build_request(method, url, params=params, headers=headers)
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            self._stats.request(self.source, 0, 0)
            raise _Retryable(f"{type(exc).__name__}", down=True) from None
        if clock is not None:
            clock.headers_in()
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                if clock is not None:
                    clock.body_in(len(chunk))
                size += len(chunk)
                if size > MAX_JSON_BYTES:
                    raise RemoteError(f"{redact_url(url)}: answer larger than {MAX_JSON_BYTES}")
                chunks.append(chunk)
        except httpx.TransportError as exc:
            self._stats.request(self.source, response.status_code, size)
            raise _Retryable(f"body cut: {type(exc).__name__}") from None
        finally:
            await response.aclose()
        _keep_body(response, chunks)
        self._stats.request(self.source, response.status_code, size)
        return response

    # ------------------------------------------------------------------ public calls

    async def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        budget: float | None = None,
        keep: bool = True,
        offline: bool = True,
    ) -> Any:
        """GET an API resource and parse its JSON; follows same-origin redirects (trailing slash).

        ``budget`` overrides the total retry time (0: a single try). When the server cannot
        be reached, the last good answer kept on disk is served instead (if there is one).
        ``keep`` False: the answer is a credential (a sharing token) and never kept on disk.
        ``offline`` False: never served from disk (the mount-time probe asks the server itself)."""
        url = self.url(path)
        describe = f"GET {redact_url(url)}"
        # The key names the request without credentials (a sharing token in the query).
        store_key = redact_url(str(httpx.URL(url, params=params)) if params else url)

        async def attempt() -> Any:
            current, query = url, params
            for _ in range(5):
                response = await self._send(
                    "GET", current, params=query, headers=self._headers_for(current, None)
                )
                if response.status_code in (301, 302, 303, 307, 308):
                    target = urljoin(current, response.headers.get("Location", ""))
                    if not same_origin(target, self.base_url):
                        raise RemoteError(f"{describe}: redirected off the API to another host")
                    current, query = target, None
                    continue
                if 300 <= response.status_code < 400:
                    raise RemoteError(f"{describe}: unexpected HTTP {response.status_code}")
                self._classify(response, describe)
                try:
                    return response.json()
                except ValueError:
                    raise _Retryable("answer is not JSON") from None
            raise RemoteError(f"{describe}: too many redirects")

        try:
            data = await self._attempts(describe, attempt, budget)
        except Unreachable:
            stored = None
            if self._responses is not None and keep:
                stored = self._responses.load(self.source, store_key)
            if stored is None or budget == 0 or not offline:
                raise
            self._stats.add("answers_served_offline", source=self.source)
            log.warning("%s: server unreachable; serving the answer kept on disk", describe)
            return stored[0]
        if self._responses is not None and keep:
            await trio.to_thread.run_sync(self._responses.save, self.source, store_key, data)
        return data

    async def resolve_redirect(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """GET an API route that answers with a redirect and return where it points."""
        url = self.url(path)
        describe = f"GET {redact_url(url)}"

        async def attempt() -> str:
            response = await self._send(
                "GET", url, params=params, headers=self._headers_for(url, None)
            )
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("Location")
                if not location:
                    raise RemoteError(f"{describe}: redirect without Location")
                return urljoin(url, location)
            self._classify(response, describe)
            raise RemoteError(f"{describe}: expected a redirect, got HTTP {response.status_code}")

        result: str = await self._attempts(describe, attempt)
        return result

    async def get_range(self, url: str, start: int, end: int, total_size: int) -> bytes:
        """Bytes [start, end) of the object at ``url`` whose size is ``total_size``.

        403 raises ``LinkExpired`` at once (presigned URLs expire; the caller re-resolves).
        """
        if not 0 <= start < end <= total_size:
            raise ValueError(f"bad range {start}-{end} of {total_size}")
        describe = f"GET {redact_url(url)} bytes={start}-{end - 1}"
        headers = self._headers_for(url, {"Range": f"bytes={start}-{end - 1}"})

        async def attempt() -> bytes:
            response = await self._send("GET", url, params=None, headers=headers)
            if response.status_code == 403 and not same_origin(url, self.base_url):
                raise LinkExpired(f"{describe}: HTTP 403 {_error_text(response)}")
            self._classify(response, describe)
            return self._checked_range(response, start, end, total_size)

        failed = self._failed_objects.get(url)
        if failed is not None:
            self._stats.add("errors", source=self.source)
            raise Unreachable(f"{describe}: not sent, this object just failed: {failed}")
        try:
            result: bytes = await self._attempts(describe, attempt)
        except Unreachable as exc:
            self._failed_objects[url] = str(exc)
            raise
        return result

    @staticmethod
    def _checked_range(response: httpx.Response, start: int, end: int, total: int) -> bytes:
        body = response.content
        if response.status_code == 200:
            # A server may ignore Range; acceptable only when the range is the whole object.
            if start == 0 and end == total and len(body) == total:
                return body
            raise _Retryable(f"HTTP 200 instead of 206 ({len(body)} bytes)")
        if response.status_code != 206:
            raise _Retryable(f"unexpected HTTP {response.status_code} to a range request")
        m = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if not m:
            raise _Retryable("206 without a valid Content-Range")
        first, last, size = int(m.group(1)), int(m.group(2)), m.group(3)
        if first != start or last != end - 1 or (size != "*" and int(size) != total):
            raise _Retryable(f"Content-Range {m.group(0)} does not match the request")
        if len(body) != end - start:
            raise _Retryable(f"short body: {len(body)} of {end - start} bytes")
        return body

    async def send_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """A write to the API (PUT, PATCH, POST, DELETE) with the server's refusals mapped:
        400/422 → InvalidContent, 401/403 → AccessDenied, 404 → NotFound, 405 → ReadOnly,
        409 → Conflict, 413 → TooLarge, anything else → RemoteError. Returns the parsed answer
        (None if empty).

        Server errors and cut connections are retried only for idempotent methods; a POST is
        retried only when the connection could not be made (nothing was sent).
        """
        url = self.url(path)
        describe = f"{method} {redact_url(url)}"
        # A POST that only reads (a query) may say so and be retried like a GET.
        if idempotent is None:
            idempotent = method in ("PUT", "DELETE", "PATCH")

        async def attempt() -> Any:
            clock = _TRY_CLOCK.get()
            if clock is not None:
                clock.request_out()
            try:
                request = self._client.build_request(
                    method, url, json=body, params=params, headers=self._headers_for(url, None)
                )
                response = await self._client.send(request, stream=True)
                await _read_limited(response, url)
            except httpx.ConnectError as exc:
                self._stats.request(self.source, 0, 0)
                raise _Retryable(type(exc).__name__, down=True) from None
            except httpx.TransportError as exc:
                self._stats.request(self.source, 0, 0)
                if idempotent:
                    raise _Retryable(type(exc).__name__, down=True) from None
                raise RemoteError(
                    f"{describe}: {type(exc).__name__}; the change may or may not have been made"
                ) from None
            self._stats.request(self.source, response.status_code, len(response.content))
            status = response.status_code
            if status >= 400 and self._refusal is not None:
                special = self._refusal(status, _error_text(response))
                if special is not None:
                    raise special
            if (status == 429 or status >= 500) and idempotent:
                raise _Retryable(
                    f"HTTP {status}",
                    _parse_retry_after(response.headers.get("Retry-After")),
                    down=status in _GATEWAY_DOWN,
                )
            if status >= 400:
                raise _write_error(status, f"{describe}: HTTP {status}: {_error_text(response)}")
            if 300 <= status < 400:
                # Not done here (an auth proxy's login page, a moved API): never a success.
                raise RemoteError(f"{describe}: answered with a redirect (HTTP {status})")
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return None

        return await self._attempts(describe, attempt, resend=idempotent)

    async def get_bytes(self, url: str, expected_size: int) -> bytes:
        """A whole small object (e.g. a zarr chunk) with an exact length check."""
        if expected_size == 0:
            return b""
        return await self.get_range(url, 0, expected_size, expected_size)
