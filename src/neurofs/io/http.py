"""The one HTTP client every source uses.

One ``HttpClient`` per configured source: an ``httpx.AsyncClient`` on trio (over
``io/wire.Wire``, kept-alive HTTP/1.1 connections on trio sockets) with
explicit timeouts, the source's auth header on API requests only, retries with exponential
backoff and jitter (connect errors, resets, cut bodies, 5xx, 429 with Retry-After) inside a
bounded total retry time, per-source stats, and URLs redacted in every log line.

The parts it is made of, each in its own module:

- ``io/exchange.py``: one request sent, its body read and its status classified;
- ``io/status.py``: the one table of HTTP status → domain error, and servers' messages;
- ``io/deadline.py``: the deadline of each try (an answer must start in time and keep
  arriving), handed to the exchange by the retry loop here;
- ``io/breaker.py``: the down-window after an outage;
- ``io/responses.py``: the last good answers, served here when the server is unreachable.

Ranged reads are verified: a 206 with a matching Content-Range and an exact body length, or a
200 that covers the whole object. Anything else is retried and never returned, so a short or
mismatched body can never reach the block cache.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import cachetools
import httpx
import trio

from neurofs.errors import NeurofsError, RemoteError
from neurofs.io.breaker import Breaker, BreakerOpen
from neurofs.io.deadline import Timeouts, TryClock
from neurofs.io.exchange import Reading, Transient, checked_range, exchange
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.status import LinkExpired, StatusReader
from neurofs.io.tier import Tier
from neurofs.io.wire import transport_for
from neurofs.secrets import redact_url

# Importers name these as parts of the client.
__all__ = [
    "HttpClient",
    "LinkExpired",
    "RetryPolicy",
    "Timeouts",
    "Unreachable",
    "same_origin",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
# One try of a request: given the try's clock, the result or an exception.
Attempt = Callable[[TryClock], Awaitable[T]]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry one logical request."""

    total_seconds: float = 30.0
    first_backoff: float = 0.2
    max_backoff: float = 5.0
    # A Retry-After longer than this is cut to it (but never beyond the total budget).
    max_retry_after: float = 10.0
    # After a request used up its whole budget without reaching the server, the server counts
    # as down (io/breaker.py) for this long. A range request that failed for any reason is not
    # sent again for this long either.
    down_seconds: float = 10.0
    # However short the budget, an answer may take this long to start: a short budget limits
    # retrying, not a slow server (and the single try of a budget of 0 needs time too).
    min_answer_seconds: float = 10.0

    def answer_seconds(self, budget: float) -> float:
        """How long the tries of one request may wait for answers to start, in all."""
        return max(budget, self.min_answer_seconds)


@functools.lru_cache(maxsize=1024)
def _parsed(url: str) -> httpx.URL:
    """A URL parsed once: an object's range requests all name the same presigned URL, which
    httpx takes 35 µs to parse."""
    return httpx.URL(url)


class Unreachable(RemoteError):
    """The server could not be reached (or kept failing) for the whole retry budget."""


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


@dataclass(frozen=True)
class Form:
    """A multipart form: its text fields (name, value) and its files (field name,
    (file name, bytes)), in order; a field name may repeat."""

    fields: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, tuple[str, bytes]], ...]

    def data(self) -> dict[str, list[str]]:
        """The text fields as httpx takes them (a repeated name keeps all its values)."""
        grouped: dict[str, list[str]] = {}
        for name, value in self.fields:
            grouped.setdefault(name, []).append(value)
        return grouped


def _json_or_none(response: httpx.Response) -> Any:
    """An answer's JSON; None when it is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class BodySink(Protocol):
    """Where ``HttpClient.get_streamed`` puts a body."""

    def begin(self) -> None:
        """A try starts: forget whatever an earlier try fed."""

    def feed(self, chunk: bytes) -> None:
        """The next bytes of the body (raise a ``NeurofsError`` to refuse the answer)."""


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
        status_reader: StatusReader | None = None,
        tier: Tier | None = None,
    ) -> None:
        self.source = source
        self.base_url = base_url.rstrip("/") + "/"
        self._stats = stats
        self._auth = dict(auth_headers or {})
        self.retry = retry or RetryPolicy()
        t = self.timeouts = timeouts or Timeouts()
        if transport is None:
            transport = transport_for(max_connections)
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
        self._breaker = Breaker()
        # Objects whose range request just failed after its whole budget, and why. The kernel
        # reads a page again at once when its read-ahead failed; that read, and others of the
        # same object for a while, fail at once instead of waiting for another budget.
        self._failed_objects: cachetools.TTLCache[str, str] = cachetools.TTLCache(
            maxsize=1024, ttl=self.retry.down_seconds
        )
        # The source's reading of its error answers (CAVE's engines say "500" for refusals).
        self._status_reader = status_reader
        # The lab's shared cache, asked first for the ranges their callers say may be shared.
        self._tier = tier

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

    def _reading(self, describe: str, *, write: bool = False, resend: bool = True) -> Reading:
        return Reading(describe, write, resend, reader=self._status_reader)

    async def _exchange(
        self,
        method: str,
        url: str,
        clock: TryClock,
        reading: Reading,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        form: Form | None = None,
        sink: Callable[[bytes], None] | None = None,
    ) -> httpx.Response:
        if form is not None:  # multipart: its text fields and files instead of a JSON body
            request = self._client.build_request(
                method,
                url,
                params=params,
                data=form.data(),
                files=list(form.files),
                headers=self._headers_for(url, headers),
            )
        else:
            request = self._client.build_request(
                method,
                _parsed(url) if params is None else url,
                params=params,
                json=body,
                headers=self._headers_for(url, headers),
            )
        return await exchange(
            self._client,
            request,
            clock,
            reading,
            lambda status, nbytes: self._stats.request(self.source, status, nbytes),
            sink,
        )

    # ------------------------------------------------------------------ retry loop

    @property
    def seems_down(self) -> bool:
        return self._breaker.down

    async def _attempts(
        self,
        describe: str,
        attempt: Attempt[T],
        budget: float | None = None,
        *,
        resend: bool = True,
    ) -> T:
        """Run ``attempt(clock)`` until it returns, raises a final error, or the budget is spent.

        ``budget`` None: the policy's total, or while the server is down a single trial (see
        io/breaker.py). ``resend`` False: a try that may have reached the server (a POST) is
        not sent again; its failure is final."""
        if budget is not None:
            return await self._retrying(describe, attempt, budget, resend)
        if not self._breaker.down:
            return await self._retrying(describe, attempt, self.retry.total_seconds, resend)
        try:
            with self._breaker.trial():
                return await self._retrying(describe, attempt, 0.0, resend)
        except BreakerOpen as exc:
            self._stats.add("errors", source=self.source)
            log.debug("%s: not sent, the server is down", describe)
            raise Unreachable(f"{describe}: not sent, {exc}") from None

    async def _retrying(self, describe: str, attempt: Attempt[T], budget: float, resend: bool) -> T:
        deadline = time.monotonic() + budget
        answer_by = trio.current_time() + self.retry.answer_seconds(budget)
        backoff = self.retry.first_backoff
        tries = 0
        while True:
            tries += 1
            try:
                result = await self._one_try(describe, attempt, answer_by, resend)
            except Transient as exc:
                remaining = deadline - time.monotonic()
                wait = backoff * (0.5 + self._rng.random())
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, self.retry.max_retry_after))
                if remaining <= wait:
                    self._stats.add("errors", source=self.source)
                    if exc.down:
                        self._breaker.trip(self.retry.down_seconds)
                    else:  # the server answered: it is up, only this request is in trouble
                        self._breaker.reset()
                    log.warning("%s: giving up after %d tries: %s", describe, tries, exc)
                    raise Unreachable(f"{describe}: {exc} (after {tries} tries)") from None
                self._stats.add("retries", source=self.source)
                log.info("%s: retrying in %.2fs: %s", describe, wait, exc)
                await trio.sleep(wait)
                backoff = min(backoff * 2, self.retry.max_backoff)
            else:
                self._breaker.reset()
                return result

    async def _one_try(
        self, describe: str, attempt: Attempt[T], answer_by: float, resend: bool
    ) -> T:
        """``attempt(clock)`` under its deadline (see io/deadline.py)."""
        with trio.CancelScope(deadline=answer_by) as scope:
            clock = TryClock(scope, answer_by, self.timeouts)
            try:
                return await attempt(clock)
            except Transient as exc:
                if resend or not exc.reached:
                    raise
                final: NeurofsError = RemoteError(
                    f"{describe}: {exc}; the change may or may not have been made"
                )
            except NeurofsError as exc:
                final = exc
            if clock.answered:  # a final answer (404, 403, ...): the server is up
                self._breaker.reset()
            raise final
        # Only reached when the deadline cancelled the try.
        self._stats.request(self.source, 0, 0)
        reason = "body stalled" if clock.answered else "no answer in time"
        if not resend:
            raise RemoteError(
                f"{describe}: {reason}; the change may or may not have been made"
            ) from None
        raise Transient(reason, down=not clock.answered)

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
        reading = self._reading(describe)
        # The key names the request without credentials (a sharing token in the query).
        store_key = redact_url(str(httpx.URL(url, params=params)) if params else url)

        async def attempt(clock: TryClock) -> Any:
            current, query = url, params
            for _ in range(5):
                response = await self._exchange("GET", current, clock, reading, params=query)
                if response.status_code in _REDIRECTS:
                    target = urljoin(current, response.headers.get("Location", ""))
                    if not same_origin(target, self.base_url):
                        raise RemoteError(f"{describe}: redirected off the API to another host")
                    current, query = target, None
                    continue
                if 300 <= response.status_code < 400:
                    raise RemoteError(f"{describe}: unexpected HTTP {response.status_code}")
                try:
                    return response.json()
                except ValueError:
                    raise Transient("answer is not JSON") from None
            raise RemoteError(f"{describe}: too many redirects")

        store = self._responses if keep else None
        try:
            data = await self._attempts(describe, attempt, budget)
        except Unreachable:
            # The last good answer stands in only for an unreachable server, never for a
            # real answer (a 404 or 403 is final), and never when asked for a single try.
            stored = store.load(self.source, store_key) if store is not None else None
            if stored is None or budget == 0 or not offline:
                raise
            self._stats.add("answers_served_offline", source=self.source)
            log.warning("%s: server unreachable; serving the answer kept on disk", describe)
            return stored[0]
        if store is not None:
            await trio.to_thread.run_sync(store.save, self.source, store_key, data)
        return data

    async def get_streamed(self, path: str, sink: BodySink) -> None:
        """GET an API resource whose answer may be longer than memory should hold (a root's
        supervoxel ids): its body goes to ``sink`` as it arrives. Each try starts the sink
        again (``sink.begin()``), so a body cut halfway and sent again is not fed twice. No
        redirect is followed (a 3xx is refused) and nothing is kept for outages."""
        url = self.url(path)
        describe = f"GET {redact_url(url)}"
        reading = self._reading(describe)

        async def attempt(clock: TryClock) -> None:
            sink.begin()
            response = await self._exchange("GET", url, clock, reading, sink=sink.feed)
            if response.status_code != 200:
                raise RemoteError(f"{describe}: unexpected HTTP {response.status_code}")

        await self._attempts(describe, attempt)

    async def resolve_redirect(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """GET an API route that answers with a redirect and return where it points."""
        url = self.url(path)
        describe = f"GET {redact_url(url)}"
        reading = self._reading(describe)

        async def attempt(clock: TryClock) -> str:
            response = await self._exchange("GET", url, clock, reading, params=params)
            if response.status_code in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise RemoteError(f"{describe}: redirect without Location")
                return urljoin(url, location)
            raise RemoteError(f"{describe}: expected a redirect, got HTTP {response.status_code}")

        return await self._attempts(describe, attempt)

    async def get_text(self, url: str, params: Mapping[str, Any] | None = None) -> str:
        """GET a document off the API (an object store's listing) and return its text. Not
        kept on disk for outages. A 403 raises ``LinkExpired`` (refused there, as for objects)."""
        describe = f"GET {redact_url(url)}"
        reading = Reading(describe, write=False, resend=True, off_api=True)

        async def attempt(clock: TryClock) -> str:
            response = await self._exchange("GET", url, clock, reading, params=params)
            if response.status_code != 200:
                raise RemoteError(f"{describe}: unexpected HTTP {response.status_code}")
            return response.text

        return await self._attempts(describe, attempt)

    def shareable(self, key: str, *, private: bool) -> str | None:
        """``key`` if bytes of that identity may go through the shared tier (there is one,
        and they are public or the tier is trusted with private ones), else None."""
        if self._tier is None or (private and not self._tier.trusted):
            return None
        return key

    async def get_range(
        self, url: str, start: int, end: int, total_size: int, *, shared: str | None = None
    ) -> bytes:
        """Bytes [start, end) of the object at ``url`` whose size is ``total_size``.

        403 raises ``LinkExpired`` at once (presigned URLs expire; the caller re-resolves).
        ``shared``: the content identity of bytes that are public and never change, which
        the shared tier (``io/tier.py``) may serve and keep; asked there first, if any.
        """
        if not 0 <= start < end <= total_size:
            raise ValueError(f"bad range {start}-{end} of {total_size}")
        if shared is not None and self._tier is not None:
            body = await self._tier.get_range(url, shared, start, end, total_size)
            if body is not None:
                return body
        describe = f"GET {redact_url(url)} bytes={start}-{end - 1}"
        headers = {"Range": f"bytes={start}-{end - 1}"}
        reading = self._reading(describe)
        if not same_origin(url, self.base_url):
            reading = Reading(describe, write=False, resend=True, off_api=True)

        async def attempt(clock: TryClock) -> bytes:
            response = await self._exchange("GET", url, clock, reading, headers=headers)
            return checked_range(response, start, end, total_size)

        failed = self._failed_objects.get(url)
        if failed is not None:
            self._stats.add("errors", source=self.source)
            raise Unreachable(f"{describe}: not sent, this object just failed: {failed}")
        try:
            return await self._attempts(describe, attempt)
        except Unreachable as exc:
            self._failed_objects[url] = str(exc)
            raise

    async def send_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """A write to the API (PUT, PATCH, POST, DELETE) with the server's refusals mapped by
        the write column of ``io/status.TABLE``. Returns the parsed answer (None if empty).

        Server errors and cut connections are retried only for idempotent methods; a POST is
        retried only when the connection could not be made (nothing was sent).
        """
        return await self._send(method, path, body, params, idempotent, _json_or_none)

    async def send_form(self, path: str, form: Form) -> Any:
        """A POST of a multipart form (text fields and files, as a browser's upload form
        sends them), refused, retried and answered as ``send_json``'s POST."""
        return await self._send("POST", path, None, None, False, _json_or_none, form=form)

    async def query_content(
        self, path: str, body: Any, *, params: Mapping[str, Any] | None = None
    ) -> bytes:
        """A POST that only reads and whose answer is not JSON (an Arrow stream): its body as
        sent, retried like a GET, refusals mapped as ``send_json`` maps them."""
        return await self._send("POST", path, body, params, True, lambda r: r.content)

    async def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, Any] | None,
        idempotent: bool | None,
        answer: Callable[[httpx.Response], T],
        *,
        form: Form | None = None,
    ) -> T:
        url = self.url(path)
        describe = f"{method} {redact_url(url)}"
        # A POST that only reads (a query) may say so and be retried like a GET.
        if idempotent is None:
            idempotent = method in ("PUT", "DELETE", "PATCH")
        reading = self._reading(describe, write=True, resend=idempotent)

        async def attempt(clock: TryClock) -> T:
            response = await self._exchange(
                method, url, clock, reading, params=params, body=body, form=form
            )
            if 300 <= response.status_code < 400:
                # Not done here (an auth proxy's login page, a moved API): never a success.
                raise RemoteError(
                    f"{describe}: answered with a redirect (HTTP {response.status_code})"
                )
            return answer(response)

        return await self._attempts(describe, attempt, resend=idempotent)

    async def get_bytes(self, url: str, expected_size: int, *, shared: str | None = None) -> bytes:
        """A whole small object (e.g. a zarr chunk) with an exact length check (``shared``:
        as for ``get_range``)."""
        if expected_size == 0:
            return b""
        return await self.get_range(url, 0, expected_size, expected_size, shared=shared)
