"""The HTTP client against scripted server behaviour (httpx.MockTransport)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
import trio

from neurofs.errors import AccessDenied, NotFound, RemoteError
from neurofs.io.http import HttpClient, LinkExpired, RetryPolicy
from neurofs.io.stats import Stats

API = "http://api.test/api"
DATA = bytes(range(256)) * 64  # 16 KiB


def client(handler, *, token: str | None = "sekrit-token", budget: float = 2.0) -> HttpClient:
    return HttpClient(
        "t",
        API,
        Stats(),
        auth_headers={"Authorization": f"token {token}"} if token else None,
        retry=RetryPolicy(
            total_seconds=budget, first_backoff=0.01, max_backoff=0.02, max_retry_after=0.05
        ),
        transport=httpx.MockTransport(handler),
    )


def ranged(request: httpx.Request) -> httpx.Response:
    a, b = request.headers["Range"].removeprefix("bytes=").split("-")
    start, end = int(a), int(b) + 1
    return httpx.Response(
        206,
        content=DATA[start:end],
        headers={"Content-Range": f"bytes {start}-{end - 1}/{len(DATA)}"},
    )


async def test_range_ok_and_token_only_to_api_origin():
    seen = []

    def handler(request):
        seen.append(request.headers.get("Authorization"))
        return ranged(request)

    c = client(handler)
    assert await c.get_range("http://s3.test/blob", 10, 100, len(DATA)) == DATA[10:100]
    assert await c.get_range(f"{API}/x/", 0, 5, len(DATA)) == DATA[:5]
    assert seen == [None, "token sekrit-token"]


@pytest.mark.parametrize(
    "bad",
    [
        lambda r: httpx.Response(
            206, content=DATA[:3], headers={"Content-Range": "bytes 0-9/16384"}
        ),
        lambda r: httpx.Response(
            206, content=DATA[:10], headers={"Content-Range": "bytes 1-10/16384"}
        ),
        lambda r: httpx.Response(
            206, content=DATA[:10], headers={"Content-Range": "bytes 0-9/999"}
        ),
        lambda r: httpx.Response(206, content=DATA[:10]),
        lambda r: httpx.Response(200, content=DATA),
    ],
)
async def test_bad_range_answers_are_retried_never_returned(bad):
    calls = []

    def handler(request):
        calls.append(1)
        return bad(request) if len(calls) == 1 else ranged(request)

    c = client(handler)
    assert await c.get_range("http://s3.test/b", 0, 10, len(DATA)) == DATA[:10]
    assert len(calls) == 2


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_persistently_bad_body_gives_remote_error():
    c = client(lambda r: httpx.Response(206, content=b"x"), budget=0.1)
    with pytest.raises(RemoteError):
        await c.get_range("http://s3.test/b", 0, 10, len(DATA))


async def test_whole_object_200_is_accepted():
    c = client(lambda r: httpx.Response(200, content=DATA[:10]))
    assert await c.get_range("http://s3.test/b", 0, 10, 10) == DATA[:10]


async def test_retries_5xx_and_429_with_retry_after():
    statuses = [503, 429, 500]

    def handler(request):
        if statuses:
            return httpx.Response(statuses.pop(0), headers={"Retry-After": "0"})
        return httpx.Response(200, json={"ok": True})

    c = client(handler)
    assert await c.get_json("info/") == {"ok": True}
    assert c._stats.get("retries", source="t") == 3


async def test_connect_errors_are_retried():
    n = []

    def handler(request):
        n.append(1)
        if len(n) < 3:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=[1])

    assert await client(handler).get_json("x/") == [1]


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_outage_ends_in_remote_error_within_budget():
    def handler(request):
        raise httpx.ConnectError("refused")

    with pytest.raises(RemoteError):
        await client(handler, budget=0.2).get_json("x/")


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AccessDenied), (403, AccessDenied), (404, NotFound), (400, RemoteError)],
)
async def test_final_statuses_map_to_domain_errors(status, error):
    c = client(lambda r: httpx.Response(status, json={"detail": "nope"}))
    with pytest.raises(error, match="nope"):
        await c.get_json("x/")


async def test_trailing_slash_redirect_followed_on_same_origin_only():
    def handler(request):
        if request.url.path == "/api/a":
            return httpx.Response(301, headers={"Location": f"{API}/a/"})
        if request.url.path == "/api/b":
            return httpx.Response(301, headers={"Location": "http://evil.test/b/"})
        return httpx.Response(200, json="slashed")

    c = client(handler)
    assert await c.get_json("a") == "slashed"
    with pytest.raises(RemoteError, match="another host"):
        await c.get_json("b")


async def test_resolve_redirect_and_expired_link():
    def handler(request):
        if request.url.host == "api.test":
            return httpx.Response(302, headers={"Location": "http://s3.test/blob?sig=1"})
        return httpx.Response(403, text="<Error>expired</Error>")

    c = client(handler)
    url = await c.resolve_redirect("assets/x/download/")
    assert url == "http://s3.test/blob?sig=1"
    with pytest.raises(LinkExpired):
        await c.get_range(url, 0, 10, len(DATA))


async def test_error_messages_never_contain_the_token():
    from neurofs import secrets

    secrets.register("sekrit-token")
    c = client(lambda r: httpx.Response(400, json={"detail": "bad token sekrit-token"}))
    with pytest.raises(RemoteError) as info:
        await c.get_json("x/")
    assert "sekrit-token" not in str(info.value)


@pytest.mark.expect_log(
    r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries",
    r"server unreachable; serving the answer kept on disk",
)
async def test_unreachable_server_serves_last_good_answer(tmp_path):
    from neurofs.io.responses import ResponseStore

    store = ResponseStore(tmp_path / "r.sqlite")
    up = [True]

    def handler(request):
        if not up[0]:
            raise httpx.ConnectError("down")
        return httpx.Response(200, json={"page": request.url.params.get("page")})

    c = HttpClient(
        "t",
        API,
        Stats(),
        retry=RetryPolicy(total_seconds=0.1, first_backoff=0.01),
        transport=httpx.MockTransport(handler),
        responses=store,
    )
    assert await c.get_json("list/", {"page": 2}) == {"page": "2"}
    up[0] = False
    assert await c.get_json("list/", {"page": 2}) == {"page": "2"}
    assert c._stats.get("answers_served_offline", source="t") == 1
    with pytest.raises(RemoteError):
        await c.get_json("list/", {"page": 3})  # never seen: no answer to serve


async def test_final_errors_are_not_replaced_by_stored_answers(tmp_path):
    from neurofs.io.responses import ResponseStore

    store = ResponseStore(tmp_path / "r.sqlite")
    status = [200]
    c = HttpClient(
        "t",
        API,
        Stats(),
        transport=httpx.MockTransport(lambda r: httpx.Response(status[0], json={"detail": "x"})),
        responses=store,
    )
    await c.get_json("a/")
    status[0] = 404
    with pytest.raises(NotFound):
        await c.get_json("a/")


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_after_an_outage_requests_fail_fast_until_the_server_answers():
    up = [False]
    calls = []

    def handler(request):
        calls.append(1)
        if not up[0]:
            raise httpx.ConnectError("down")
        return httpx.Response(200, json=1)

    c = client(handler, budget=0.3)
    c.retry = dataclasses.replace(c.retry, down_seconds=0.2)
    with pytest.raises(RemoteError):
        await c.get_json("a/")
    first = len(calls)
    assert first > 1 and c.seems_down
    with pytest.raises(RemoteError):
        await c.get_json("b/")
    assert len(calls) == first  # nothing is sent while the server counts as down
    await trio.sleep(0.3)
    with pytest.raises(RemoteError):
        await c.get_json("b/")
    assert len(calls) == first + 1  # then one try, which fails: down again
    up[0] = True
    await trio.sleep(0.3)
    assert await c.get_json("c/") == 1
    assert not c.seems_down


class _Collect:
    """A ``BodySink`` that keeps what it was fed, and counts its tries."""

    def __init__(self) -> None:
        self.tries = 0
        self.body = b""

    def begin(self) -> None:
        self.tries += 1
        self.body = b""

    def feed(self, chunk: bytes) -> None:
        self.body += chunk


class _CutStream(httpx.AsyncByteStream):
    """A body that stops with a transport error after its first piece."""

    def __init__(self, first: bytes) -> None:
        self._first = first

    async def __aiter__(self):  # type: ignore[override]
        yield self._first
        raise httpx.ReadError("connection reset")


async def test_a_streamed_body_cut_halfway_is_fed_again_from_its_start():
    big = b"x" * (3 * 64 * 1024 * 1024)  # past the cap of answers read whole
    calls = []

    def handler(request):
        calls.append(request.headers.get("Authorization"))
        if len(calls) == 1:
            return httpx.Response(200, stream=_CutStream(big[:1000]))
        return httpx.Response(200, content=big)

    c = client(handler)
    sink = _Collect()
    await c.get_streamed("node/1/leaves", sink)
    assert sink.tries == 2 and sink.body == big
    assert calls == ["token sekrit-token"] * 2


async def test_a_streamed_get_refused_or_redirected_feeds_nothing():
    for status, error in ((404, NotFound), (403, AccessDenied), (302, RemoteError)):
        sink = _Collect()
        c = client(lambda r, s=status: httpx.Response(s, json={"message": "no"}))
        with pytest.raises(error):
            await c.get_streamed("node/1/leaves", sink)
        assert sink.body == b""


async def test_a_sink_refusing_the_body_ends_the_request_without_retry():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(200, content=b"<html>")

    class Refusing(_Collect):
        def feed(self, chunk: bytes) -> None:
            raise RemoteError("not a list")

    with pytest.raises(RemoteError, match="not a list"):
        await client(handler).get_streamed("node/1/leaves", Refusing())
    assert calls == [1]
