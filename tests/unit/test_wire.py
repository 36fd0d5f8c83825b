"""The HTTP/1.1 transport (``io/wire.py``) against scripted servers on loopback.

Each server is a real TCP listener whose connections answer with the exact bytes a test
gives (framing by Content-Length, chunks or the connection's end; servers that close kept-
alive connections, cut bodies, stall or speak nonsense), so the transport is checked on the
wire, with httpx's client above it as ``HttpClient`` uses it.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from neurofs.io.http import HttpClient
from neurofs.io.stats import Stats
from neurofs.io.wire import Wire

Handler = Callable[[trio.SocketStream, int], Awaitable[None]]


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0


async def read_request(stream: trio.abc.Stream, server: Server) -> bytes | None:
    """One request's head and body (by its Content-Length), or None at the connection's end."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = await stream.receive_some(65536)
        if not piece:
            return None
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            while len(body) < int(value):
                body += await stream.receive_some(65536)
    server.requests.append(head + b"\r\n\r\n" + body)
    return head


@asynccontextmanager
async def serving(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()

    async def accept(stream: trio.SocketStream) -> None:
        server.connections += 1
        number = server.connections
        try:
            if tls is not None:
                wrapped = trio.SSLStream(stream, tls, server_side=True)
                await handler(wrapped, number)  # type: ignore[arg-type]
            else:
                await handler(stream, number)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, accept, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


def answer(body: bytes, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


def keep_answering(reply: Callable[[bytes], bytes]) -> Handler:
    """A server that answers every request of a connection with ``reply(request head)``."""

    async def handler(stream: trio.SocketStream, number: int) -> None:
        while (head := await read_request(stream, server_of[0])) is not None:
            await stream.send_all(reply(head))

    server_of: list[Server] = []
    handler.server_of = server_of  # type: ignore[attr-defined]
    return handler


@asynccontextmanager
async def answering(reply: Callable[[bytes], bytes]) -> AsyncIterator[Server]:
    handler = keep_answering(reply)
    async with serving(handler) as server:
        handler.server_of.append(server)  # type: ignore[attr-defined]
        yield server


def client(max_connections: int = 4, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=Wire(max_connections=max_connections, **kwargs),  # type: ignore[arg-type]
        timeout=httpx.Timeout(2.0),
    )


async def test_a_sized_body_arrives_and_the_connection_carries_the_next_request() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    async with answering(lambda head: answer(body)) as server, client() as c:
        for _ in range(3):
            r = await c.get(f"http://127.0.0.1:{server.port}/blob?x=1")
            assert r.status_code == 200 and r.content == body
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /blob?x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in server.requests[0]


async def test_a_chunked_body_with_trailers_is_decoded() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    async with answering(lambda head: chunked) as server, client() as c:
        for _ in range(2):
            r = await c.get(f"http://127.0.0.1:{server.port}/")
            assert r.content == b"hello world"
    assert server.connections == 1


async def test_a_body_that_ends_with_the_connection_is_read_whole_and_not_reused() -> None:
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await stream.send_all(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        await stream.aclose()

    async with serving(handler) as server, client() as c:
        for _ in range(2):
            r = await c.get(f"http://127.0.0.1:{server.port}/")
            assert r.content == b"all of it"
    assert server.connections == 2


async def test_connection_close_is_honoured() -> None:
    closing = answer(b"x", extra=b"Connection: close\r\n")
    async with answering(lambda head: closing) as server, client() as c:
        for _ in range(2):
            assert (await c.get(f"http://127.0.0.1:{server.port}/")).content == b"x"
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_used() -> None:
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await stream.send_all(answer(b"one"))
        await stream.aclose()  # closed without saying so: the client finds out

    async with serving(handler) as server, client() as c:
        await c.get(f"http://127.0.0.1:{server.port}/")
        await trio.sleep(0.05)
        # A POST too: it was never sent on the closed connection.
        r = await c.post(f"http://127.0.0.1:{server.port}/", content=b"payload")
        assert r.content == b"one"
    assert server.connections == 2
    assert server.requests[1].endswith(b"\r\n\r\npayload")


async def test_a_get_is_sent_again_when_a_kept_alive_connection_dies_unanswered() -> None:
    # The server reads the second request of its first connection, then closes: the race
    # a kept-alive connection can lose. An idempotent request goes again, once.
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await stream.send_all(answer(b"first"))
        if number == 1:
            await read_request(stream, server)
            await stream.aclose()
            return
        while await read_request(stream, server) is not None:
            await stream.send_all(answer(b"again"))

    async with serving(handler) as server, client() as c:
        assert (await c.get(f"http://127.0.0.1:{server.port}/")).content == b"first"
        assert (await c.get(f"http://127.0.0.1:{server.port}/")).content == b"first"
    assert server.connections == 2


async def test_a_post_is_not_sent_again_when_a_kept_alive_connection_dies_unanswered() -> None:
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await stream.send_all(answer(b"first"))
        await read_request(stream, server)
        await stream.aclose()

    async with serving(handler) as server, client() as c:
        await c.get(f"http://127.0.0.1:{server.port}/")
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post(f"http://127.0.0.1:{server.port}/", content=b"once")
    assert server.connections == 1
    assert sum(r.endswith(b"once") for r in server.requests) == 1


async def test_a_cut_body_is_an_error_and_its_connection_is_not_reused() -> None:
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await stream.aclose()

    async with serving(handler) as server, client() as c:
        with pytest.raises(httpx.RemoteProtocolError, match="received 9 bytes, expected 100"):
            await c.get(f"http://127.0.0.1:{server.port}/")
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(f"http://127.0.0.1:{server.port}/")
    assert server.connections == 2


async def test_an_abandoned_body_frees_its_slot_and_closes_its_connection() -> None:
    big = b"z" * (4 * 1024 * 1024)
    async with answering(lambda head: answer(big)) as server, client(max_connections=1) as c:
        for _ in range(3):  # with one slot, a leaked slot would hang the second
            with trio.fail_after(5):
                async with c.stream("GET", f"http://127.0.0.1:{server.port}/") as r:
                    async for _chunk in r.aiter_raw():
                        break
        r2 = await c.get(f"http://127.0.0.1:{server.port}/")
        assert r2.content == big
    assert server.connections == 4  # the three abandoned connections were never reused


async def test_requests_beyond_the_limit_wait_for_a_connection() -> None:
    in_flight = 0
    most = 0

    async def handler(stream: trio.SocketStream, number: int) -> None:
        nonlocal in_flight, most
        while await read_request(stream, server) is not None:
            in_flight += 1
            most = max(most, in_flight)
            await trio.sleep(0.02)
            in_flight -= 1
            await stream.send_all(answer(b"ok"))

    async with (
        serving(handler) as server,
        client(max_connections=2) as c,
        trio.open_nursery() as nursery,
    ):
        for _ in range(6):
            nursery.start_soon(c.get, f"http://127.0.0.1:{server.port}/")
    assert most == 2 and server.connections == 2


async def test_no_listener_is_a_connect_error() -> None:
    with trio.socket.socket() as s:
        await s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        async with client() as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"http://127.0.0.1:{port}/")


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await trio.sleep(10)

    async with (
        serving(handler) as server,
        httpx.AsyncClient(transport=Wire(max_connections=2), timeout=httpx.Timeout(0.2)) as c,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await c.get(f"http://127.0.0.1:{server.port}/")


async def test_informational_answers_are_skipped_and_bodyless_answers_read_nothing() -> None:
    def reply(head: bytes) -> bytes:
        if head.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        if head.startswith(b"DELETE"):
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"done", b"201 Created")

    async with answering(reply) as server, client() as c:
        url = f"http://127.0.0.1:{server.port}/"
        r = await c.post(url, json={"a": 1})
        assert (r.status_code, r.content) == (201, b"done")
        head = await c.head(url)
        assert head.status_code == 200 and head.content == b""
        assert (await c.delete(url)).status_code == 204
        assert (await c.get(url)).content == b"done"
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST / HTTP/1.1\r\n") and body.replace(b" ", b"") == b'{"a":1}'
    assert f"\r\nContent-Length: {len(body)}".encode() in head


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"nonsense\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_malformed_answers_are_protocol_errors(reply: bytes) -> None:
    async with answering(lambda head: reply) as server, client() as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get(f"http://127.0.0.1:{server.port}/")


async def test_an_endless_head_is_refused() -> None:
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await stream.send_all(b"HTTP/1.1 200 OK\r\n")
        for _ in range(100):
            await stream.send_all(b"X-Filler: " + b"f" * 1000 + b"\r\n")

    async with serving(handler) as server, client() as c:
        with pytest.raises(httpx.RemoteProtocolError, match="head too long"):
            await c.get(f"http://127.0.0.1:{server.port}/")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_with_the_callers_trust_and_kept_alive(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)

    async def handler(stream: trio.SocketStream, number: int) -> None:
        while await read_request(stream, server) is not None:
            await stream.send_all(answer(b"secret bytes"))

    async with serving(handler, tls=server_side) as server:
        trusting = ssl.create_default_context(cafile=str(cert))
        async with client(ssl_context=trusting) as c:
            for _ in range(2):
                r = await c.get(f"https://127.0.0.1:{server.port}/")
                assert r.content == b"secret bytes"
        # Without that trust the certificate is refused before anything is sent.
        async with client() as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"https://127.0.0.1:{server.port}/")
    assert len(server.requests) == 2  # nothing was sent without trust


async def test_https_by_default_trusts_what_httpx_trusts_and_offers_only_http11(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # honoured by httpx's context
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server_side.set_alpn_protocols(["h2", "http/1.1"])  # would pick HTTP/2 if offered
    chosen: list[str | None] = []

    async def handler(stream: trio.SSLStream[trio.SocketStream], number: int) -> None:
        while await read_request(stream, server) is not None:
            chosen.append(stream.selected_alpn_protocol())
            await stream.send_all(answer(b"over TLS"))

    async with serving(handler, tls=server_side) as server, client() as c:  # type: ignore[arg-type]
        assert (await c.get(f"https://127.0.0.1:{server.port}/")).content == b"over TLS"
    assert chosen == ["http/1.1"]


async def test_idle_connections_the_server_closed_are_all_dropped() -> None:
    async def handler(stream: trio.SocketStream, number: int) -> None:
        await read_request(stream, server)
        await trio.sleep(0.02)  # both requests are in flight at once: two connections
        await stream.send_all(answer(b"once"))
        await stream.aclose()

    wire = Wire(max_connections=4)
    async with (
        serving(handler) as server,
        httpx.AsyncClient(transport=wire, timeout=httpx.Timeout(2.0)) as c,
    ):
        url = f"http://127.0.0.1:{server.port}/"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(c.get, url)
            nursery.start_soon(c.get, url)
        assert len(wire._idle[("http", "127.0.0.1", server.port)]) == 2
        await trio.sleep(0.05)
        assert (await c.get(url)).content == b"once"
        # The two dead ones are gone; only the third (closed too, found out next time) is left.
        assert len(wire._idle[("http", "127.0.0.1", server.port)]) <= 1
    assert server.connections == 3


async def test_http_client_puts_the_wire_under_it_unless_a_proxy_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = HttpClient("t", "http://127.0.0.1:1/api", Stats())
    assert isinstance(plain._client._transport, Wire)
    await plain.aclose()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    proxied = HttpClient("t", "http://127.0.0.1:1/api", Stats())
    assert not isinstance(proxied._client._transport, Wire)
    await proxied.aclose()
