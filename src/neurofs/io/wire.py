"""HTTP/1.1 on trio sockets, as an httpx transport: the wire under every ``HttpClient``.

Why not httpx's own transport (httpcore and h11): on this event loop it costs about 0.8 ms
of CPU per request and 3 ms per MiB of body (loopback, measured against the DANDI emulator:
a 1 MiB range took 3.1 ms of CPU through it against 0.45 ms here), as much as everything
else a read does. This transport speaks only what the services and object stores answer:
HTTP/1.1, bodies framed by Content-Length, chunked encoding or the connection's end, TLS
with the context httpx would use, kept-alive connections per origin. httpx above it still
builds the requests, decodes the bodies and raises its own errors, so the client code is the
same whichever transport is under it; a proxy set in the environment (``HTTPS_PROXY`` and
the like) is left to httpx's own transport (``io/http.py`` decides).

Errors are httpx's: ``ConnectError`` when no connection could be made (nothing was sent),
``ConnectTimeout``, ``ReadTimeout``/``WriteTimeout`` per socket operation, ``ReadError`` and
``WriteError`` for a broken connection, ``RemoteProtocolError`` for an answer cut or
malformed. A request on a kept-alive connection that the server closed meanwhile is sent
again once on a new connection if it is idempotent, as a browser does.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import trio
from httpx._utils import get_environment_proxies

# A response's status line and headers may not be longer than this.
MAX_HEAD_BYTES = 64 * 1024
# How much one socket read asks for: a 1 MiB block arrives in 4 or more reads.
RECEIVE_BYTES = 256 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_NO_BODY_STATUS = frozenset({204, 304})

Origin = tuple[str, str, int]


@dataclass
class _Connection:
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
    origin: Origin
    # Bytes received and not yet consumed (the head's tail, the body's start).
    pending: bytearray = field(default_factory=bytearray)

    @property
    def _socket(self) -> trio.socket.SocketType:
        stream = self.stream
        tcp = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        return tcp.socket

    def socket_readable(self) -> bool:
        """Whether an idle connection has something to read: the server's close (or bytes
        it should not have sent). Either way it must not carry another request."""
        poller = select.poll()
        poller.register(self._socket.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def take(self, most: int) -> bytes:
        """Up to ``most`` of the bytes received and not yet consumed (one copy)."""
        with memoryview(self.pending) as view:
            piece = bytes(view[:most])
        del self.pending[: len(piece)]
        return piece

    async def receive(self, timeout: float | None) -> bytes:
        try:
            with trio.move_on_after(_seconds(timeout)) as scope:
                data = await self.stream.receive_some(RECEIVE_BYTES)
                return data if isinstance(data, bytes) else bytes(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from None
        assert scope.cancelled_caught
        raise httpx.ReadTimeout("no bytes within the read timeout")

    async def send(self, data: bytes, timeout: float | None) -> None:
        try:
            with trio.move_on_after(_seconds(timeout)) as scope:
                await self.stream.send_all(data)
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__) from None
        assert scope.cancelled_caught
        raise httpx.WriteTimeout("request not sent within the write timeout")

    def drop(self) -> None:
        """Close at once, without waiting (an answer abandoned, possibly under cancellation;
        a connection the server closed): never a TLS goodbye to a peer that may be gone."""
        self._socket.close()


class _Stale(Exception):
    """A kept-alive connection was closed by the server before any byte of the answer."""


class Wire(httpx.AsyncBaseTransport):
    """Kept-alive HTTP/1.1 connections, at most ``max_connections`` in use at once (the
    others wait for one, as in httpx's pool)."""

    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext | None = None):
        self._slots = trio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._idle: dict[Origin, list[_Connection]] = {}
        self._ssl = ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        origin = _origin(request.url)
        body = await request.aread()
        head = _request_head(request, len(body))
        with trio.move_on_after(_seconds(timeouts.get("pool"))) as waited:
            await self._slots.acquire()
        if waited.cancelled_caught:
            raise httpx.PoolTimeout("no connection free within the pool timeout")
        try:
            return await self._exchange(request, origin, head + body, timeouts)
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self, request: httpx.Request, origin: Origin, message: bytes, timeouts: dict[str, float]
    ) -> httpx.Response:
        connection = self._take_idle(origin)
        if connection is not None:
            try:
                return await self._send(request, connection, message, timeouts)
            except _Stale:
                if request.method not in _IDEMPOTENT:
                    raise httpx.RemoteProtocolError(
                        "the server closed a kept-alive connection before answering"
                    ) from None
        connection = await self._connect(origin, timeouts)
        try:
            return await self._send(request, connection, message, timeouts)
        except _Stale:
            raise httpx.RemoteProtocolError(
                "server disconnected without sending a response"
            ) from None

    async def _send(
        self,
        request: httpx.Request,
        connection: _Connection,
        message: bytes,
        timeouts: dict[str, float],
    ) -> httpx.Response:
        try:
            try:
                await connection.send(message, timeouts.get("write"))
            except httpx.WriteError:
                raise _Stale from None
            status, reason, version, headers = await _read_head(connection, timeouts.get("read"))
        except BaseException:
            connection.drop()
            raise
        length, keep = _framing(request.method, status, version, headers)
        body = _Body(self, connection, length, keep, timeouts.get("read"))
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={"http_version": version, "reason_phrase": reason},
        )

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        # Those the server closed while idle are dropped, all of them (not left open
        # half-closed until their turn comes); the most recent live one is used.
        live = []
        for connection in idle:
            if connection.socket_readable():
                connection.drop()
            else:
                live.append(connection)
        self._idle[origin] = live
        return live.pop() if live else None

    async def _connect(self, origin: Origin, timeouts: dict[str, float]) -> _Connection:
        scheme, host, port = origin
        try:
            with trio.fail_after(_seconds(timeouts.get("connect"))):
                tcp = await trio.open_tcp_stream(host, port)
                if scheme != "https":
                    return _Connection(tcp, origin)
                self._ssl = self._ssl or _http11_context()
                tls = trio.SSLStream(tcp, self._ssl, server_hostname=host, https_compatible=True)
                try:
                    await tls.do_handshake()
                except BaseException:
                    tcp.socket.close()
                    raise
                return _Connection(tls, origin)
        except trio.TooSlowError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc}") from None

    def _done(self, connection: _Connection, reusable: bool) -> None:
        """A body was read to its end (reusable) or abandoned: its slot is free again."""
        self._slots.release()
        if reusable:
            idle = self._idle.setdefault(connection.origin, [])
            if len(idle) < self._max_idle:
                idle.append(connection)
                return
        connection.drop()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.drop()
        self._idle.clear()


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives. ``length`` None: chunked; -1: until the connection
    closes; else exactly that many bytes."""

    def __init__(
        self,
        wire: Wire,
        connection: _Connection,
        length: int | None,
        keep: bool,
        read_timeout: float | None,
    ) -> None:
        self._wire = wire
        self._connection = connection
        self._length = length
        self._keep = keep
        self._timeout = read_timeout
        self._open = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._length is None:
            chunks = self._chunked()
        elif self._length < 0:
            chunks = self._until_close()
        else:
            chunks = self._sized(self._length)
        async for chunk in chunks:
            yield chunk
        self._release(self._keep)

    async def _sized(self, length: int) -> AsyncIterator[bytes]:
        connection = self._connection
        remaining = length
        if connection.pending:
            piece = connection.take(remaining)
            remaining -= len(piece)
            yield piece
        while remaining > 0:
            data = await connection.receive(self._timeout)
            if not data:
                raise httpx.RemoteProtocolError(
                    f"peer closed connection without sending complete message body: "
                    f"received {length - remaining} bytes, expected {length}"
                )
            if len(data) > remaining:  # a server sending more than it said: not reusable
                self._keep = False
                data = data[:remaining]
            remaining -= len(data)
            yield data

    async def _until_close(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection.pending:
            yield connection.take(len(connection.pending))
        while data := await connection.receive(self._timeout):
            yield data

    async def _chunked(self) -> AsyncIterator[bytes]:
        connection = self._connection
        while True:
            line = await _read_line(connection, self._timeout)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise httpx.RemoteProtocolError("malformed chunk size") from None
            if size == 0:
                while await _read_line(connection, self._timeout):  # trailers, then a blank
                    pass
                return
            async for piece in _exactly(connection, size, self._timeout):
                yield piece
            if await _read_line(connection, self._timeout):
                raise httpx.RemoteProtocolError("chunk not followed by CRLF")

    def _release(self, reusable: bool) -> None:
        if self._open:
            self._open = False
            self._wire._done(self._connection, reusable)

    async def aclose(self) -> None:
        # A body not read to its end leaves the connection mid-answer: closed, never reused.
        self._release(False)


async def _exactly(
    connection: _Connection, size: int, timeout: float | None
) -> AsyncIterator[bytes]:
    remaining = size
    while remaining > 0:
        if not connection.pending:
            data = await connection.receive(timeout)
            if not data:
                raise httpx.RemoteProtocolError("peer closed connection within a chunk")
            connection.pending += data
        piece = connection.take(remaining)
        remaining -= len(piece)
        yield piece


async def _read_line(connection: _Connection, timeout: float | None) -> bytes:
    """One CRLF-ended line of a chunked body (without its CRLF)."""
    while (end := connection.pending.find(b"\r\n")) < 0:
        if len(connection.pending) > MAX_HEAD_BYTES:
            raise httpx.RemoteProtocolError("line too long in a chunked body")
        data = await connection.receive(timeout)
        if not data:
            raise httpx.RemoteProtocolError("peer closed connection within a chunked body")
        connection.pending += data
    return connection.take(end + 2)[:-2]


async def _read_head(
    connection: _Connection, timeout: float | None
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """The status line and headers of the next final answer (informational 1xx skipped).
    Raises ``_Stale`` when the connection ends before the first byte."""
    first = True
    while True:
        searched = 0
        while (end := connection.pending.find(b"\r\n\r\n", searched)) < 0:
            if len(connection.pending) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("answer's head too long")
            searched = max(0, len(connection.pending) - 3)
            try:
                data = await connection.receive(timeout)
            except httpx.ReadError:
                if first and not connection.pending:
                    raise _Stale from None
                raise
            if not data:
                if first and not connection.pending:
                    raise _Stale
                raise httpx.RemoteProtocolError("peer closed connection within the headers")
            connection.pending += data
        first = False
        lines = connection.take(end + 4)[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise httpx.RemoteProtocolError(f"malformed status line {lines[0][:80]!r}")
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise httpx.RemoteProtocolError(f"malformed header line {line[:80]!r}")
            headers.append((name.strip(), value.strip()))
        status = int(code)
        if status >= 200 or status == 101:
            return status, reason, version, headers


def _framing(
    method: str, status: int, version: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int | None, bool]:
    """How the body ends (see ``_Body``) and whether the connection may carry another request."""
    fields: dict[bytes, bytes] = {}
    for name, value in headers:
        key = name.lower()
        fields[key] = fields[key] + b"," + value if key in fields else value
    keep = version == b"HTTP/1.1" and b"close" not in fields.get(b"connection", b"").lower()
    if method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
        return 0, keep
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        return None, keep
    length = fields.get(b"content-length")
    if length is None:
        return -1, False
    values = {v.strip() for v in length.split(b",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise httpx.RemoteProtocolError(f"bad Content-Length {length[:40]!r}")
    return int(next(iter(values))), keep


def _request_head(request: httpx.Request, body_length: int) -> bytes:
    target = request.url.raw_path or b"/"
    lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
    for name, value in request.headers.raw:
        if name.lower() in (b"transfer-encoding", b"content-length"):
            continue  # the body is sent whole, with its length
        lines.append(name + b": " + value)
    if body_length or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: " + str(body_length).encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def transport_for(max_connections: int) -> Wire | None:
    """The transport of a new client: this one, or None (httpx's own) when the environment
    names a proxy (``HTTPS_PROXY``, ``ALL_PROXY``, ...), which httpx honours and this does not."""
    if get_environment_proxies():
        return None
    return Wire(max_connections=max_connections)


def _origin(url: httpx.URL) -> Origin:
    scheme = url.scheme
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
    port = url.port or (443 if scheme == "https" else 80)
    return scheme, url.host, port


def _http11_context() -> ssl.SSLContext:
    """httpx's TLS context (its CA bundle, ``SSL_CERT_FILE``/``SSL_CERT_DIR``), offering only
    HTTP/1.1 by ALPN: a server that would pick HTTP/2 must not."""
    context = httpx.create_ssl_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def _seconds(timeout: float | None) -> float:
    return float("inf") if timeout is None else timeout
