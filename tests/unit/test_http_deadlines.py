"""Deadlines of the HTTP client: servers that never answer, trickle or stall mid-body.

httpx's read timeout applies to each socket read, so these behaviours need the client's own
per-try deadline (``io/deadline.TryClock``). The server is scripted with
``httpx.MockTransport`` whose handlers and bodies sleep on trio's clock; bounds are the
configured budgets plus a margin.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from neurofs.errors import NotFound, RemoteError
from neurofs.io.http import HttpClient, RetryPolicy, Timeouts
from neurofs.io.stats import Stats

API = "http://api.test/api"
DATA = bytes(range(256)) * 256  # 64 KiB
# Scheduling on a loaded machine: how late a deadline may be noticed.
MARGIN = 2.0


def client(
    handler: object,
    *,
    budget: float = 1.0,
    stall_seconds: float = 0.3,
    stall_bytes: int = 1024,
    down_seconds: float = 10.0,
    min_answer_seconds: float = 0.2,
) -> HttpClient:
    return HttpClient(
        "t",
        API,
        Stats(),
        retry=RetryPolicy(
            total_seconds=budget,
            first_backoff=0.01,
            max_backoff=0.05,
            down_seconds=down_seconds,
            min_answer_seconds=min_answer_seconds,
        ),
        timeouts=Timeouts(stall_seconds=stall_seconds, stall_bytes=stall_bytes),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
    )


def range_headers(start: int, end: int) -> dict[str, str]:
    return {"Content-Range": f"bytes {start}-{end - 1}/{len(DATA)}"}


async def paced(
    data: bytes, piece: int, pause: float, stop_after: int | None = None
) -> AsyncIterator[bytes]:
    """``data`` in pieces with a pause after each; with ``stop_after``, hangs after that many."""
    sent = 0
    while sent < len(data):
        if stop_after is not None and sent >= stop_after:
            await trio.sleep_forever()
        yield data[sent : sent + piece]
        sent += piece
        await trio.sleep(pause)


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_a_server_that_never_answers_fails_within_the_budget() -> None:
    calls: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    c = client(handler, budget=1.0)
    started = time.monotonic()
    with trio.fail_after(10), pytest.raises(RemoteError, match="no answer in time"):
        await c.get_range("http://s3.test/blob", 0, 10, len(DATA))
    assert time.monotonic() - started < 1.0 + MARGIN
    assert c._stats.get("errors", source="t") == 1


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_a_trickling_body_is_abandoned_and_fails_within_the_budget() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        # 16 bytes every 0.1 s: far below 1 KiB per 0.3 s.
        return httpx.Response(
            206, content=paced(DATA, 16, 0.1), headers=range_headers(0, len(DATA))
        )

    c = client(handler, budget=1.0)
    started = time.monotonic()
    with trio.fail_after(10), pytest.raises(RemoteError, match="body stalled"):
        await c.get_range("http://s3.test/blob", 0, len(DATA), len(DATA))
    # Each try was abandoned after one stall window, so there was room for several.
    assert len(calls) >= 2
    assert time.monotonic() - started < 1.0 + MARGIN


async def test_a_body_that_stops_halfway_is_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        stop = 8 * 1024 if len(calls) == 1 else None
        body = paced(DATA, 4096, 0.0, stop_after=stop)
        return httpx.Response(206, content=body, headers=range_headers(0, len(DATA)))

    c = client(handler, budget=5.0)
    with trio.fail_after(10):
        assert await c.get_range("http://s3.test/blob", 0, len(DATA), len(DATA)) == DATA
    assert len(calls) == 2
    assert c._stats.get("retries", source="t") == 1


async def test_a_slow_body_that_keeps_coming_outlasts_the_budget() -> None:
    """A slow link is not an outage: a body above the minimum rate is never cut."""

    def handler(request: httpx.Request) -> httpx.Response:
        # 2 KiB every 0.05 s: 64 KiB take about 1.6 s, over the 0.5 s budget.
        return httpx.Response(
            206, content=paced(DATA, 2048, 0.05), headers=range_headers(0, len(DATA))
        )

    c = client(handler, budget=0.5)
    assert await c.get_range("http://s3.test/blob", 0, len(DATA), len(DATA)) == DATA
    assert c._stats.get("retries", source="t") == 0


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_while_down_requests_fail_at_once_and_one_trial_is_bounded() -> None:
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    c = client(handler, budget=0.5, down_seconds=0.5)
    with trio.fail_after(10), pytest.raises(RemoteError):
        await c.get_json("a/")
    assert c.seems_down
    # Down: nothing is sent, the answer is immediate.
    with trio.fail_after(1), pytest.raises(RemoteError, match="not sent, the server is down"):
        await c.get_json("b/")
    assert calls[-1] == "/api/a/"
    await trio.sleep(0.6)
    # Then one request is the trial: one try, bounded by min_answer_seconds; others
    # meanwhile fail at once.
    started = time.monotonic()
    refused: list[bool] = []

    async def other() -> None:
        await trio.sleep(0.1)
        with pytest.raises(RemoteError, match="not sent"):
            await c.get_json("d/")
        refused.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        with trio.fail_after(10), pytest.raises(RemoteError, match="no answer in time"):
            await c.get_json("c/")
    assert time.monotonic() - started < 0.5 + MARGIN
    assert refused == [True]
    assert calls.count("/api/c/") == 1 and "/api/d/" not in calls


async def test_a_post_cut_off_by_its_deadline_is_not_sent_again() -> None:
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    c = client(handler, budget=0.5)
    with trio.fail_after(10), pytest.raises(RemoteError, match="may or may not"):
        await c.send_json("POST", "things/", {"a": 1})
    assert calls == ["POST"]


def test_answer_seconds() -> None:
    assert RetryPolicy().answer_seconds(30) == 30
    assert RetryPolicy().answer_seconds(0) == 10  # the trial while down, or "no retries"
    assert RetryPolicy().answer_seconds(2) == 10  # a short budget limits retries only


def test_default_budget_is_at_most_thirty_seconds() -> None:
    from neurofs.config import SourceConfig

    default = SourceConfig(kind="dandi", name="d", url="http://x").retry_seconds
    assert default <= 30
    assert RetryPolicy().total_seconds <= 30
    # The bound on EIO from a server that never answers: max(budget, min_answer_seconds).
    assert RetryPolicy().answer_seconds(default) <= 30
    assert RetryPolicy().answer_seconds(0) <= 30


async def test_a_query_answer_that_keeps_coming_outlasts_the_budget() -> None:
    """POSTed queries (CAVE's row pages) read their answers under the same stall rule."""
    payload = b"[" + b",".join(b"%d" % i for i in range(20_000)) + b"]"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=paced(payload, 4096, 0.05))

    c = client(handler, budget=0.5)
    with trio.fail_after(30):
        rows = await c.send_json("POST", "query", {"table": "t"}, idempotent=True)
    assert rows == list(range(20_000))


async def test_one_fault_at_mount_time_does_not_mark_the_server_down() -> None:
    """The mount-time probe retries: a single 503 (or cut) must not leave every request of
    the next seconds with a single try."""
    from neurofs.sources import Source

    statuses = [503]

    def handler(request: httpx.Request) -> httpx.Response:
        if statuses:
            return httpx.Response(statuses.pop(0))
        return httpx.Response(200, json={"ok": True})

    c = client(handler, budget=30.0)
    source = Source("t", root=None, http=c)  # type: ignore[arg-type]
    with trio.fail_after(10):
        assert await source.probe() is None
    assert not c.seems_down


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_a_server_down_at_mount_time_is_reported_and_marked_down() -> None:
    from neurofs.sources import Source

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    c = client(handler, budget=30.0)
    source = Source("t", root=None, http=c)  # type: ignore[arg-type]
    with trio.fail_after(10):
        problem = await source.probe()
    assert problem is not None and "not reachable" in problem
    assert c.seems_down


@pytest.mark.parametrize(
    ("answer", "down"),
    [
        (lambda: httpx.Response(500, json={"detail": "bug"}), False),  # one endpoint's bug
        (lambda: httpx.Response(206, content=paced(DATA, 16, 0.1)), False),  # stalled body
        (lambda: httpx.Response(206, content=b"short"), False),  # bad bytes
        (lambda: httpx.Response(503), True),  # a gateway without its server
        (lambda: httpx.Response(502), True),
    ],
)
@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_only_an_unreachable_server_marks_the_source_down(answer: Any, down: bool) -> None:
    """One request in trouble must not make every other request fail for a while."""
    failing = "http://s3.test/bad"

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == failing:
            response: httpx.Response = answer()
            if response.status_code == 206:
                response.headers["Content-Range"] = f"bytes 0-{len(DATA) - 1}/{len(DATA)}"
            return response
        return httpx.Response(200, json={"ok": True})

    c = client(handler, budget=0.5)
    with trio.fail_after(10), pytest.raises(RemoteError):
        await c.get_range(failing, 0, len(DATA), len(DATA))
    assert c.seems_down is down
    if not down:
        assert await c.get_json("info/") == {"ok": True}


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_an_object_that_just_failed_fails_at_once_for_a_while() -> None:
    """The kernel reads a page again right after its read-ahead failed: that read must not
    wait for a second budget."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if request.url.host == "bad.test":
            return httpx.Response(500)
        start, end = (int(x) for x in request.headers["Range"][6:].split("-"))
        return httpx.Response(
            206, content=DATA[start : end + 1], headers=range_headers(start, end + 1)
        )

    c = client(handler, budget=0.3, down_seconds=1.0)
    with trio.fail_after(10), pytest.raises(RemoteError):
        await c.get_range("http://bad.test/x", 0, 1024, len(DATA))
    sent = len(calls)
    started = time.monotonic()
    with pytest.raises(RemoteError, match="just failed"):
        await c.get_range("http://bad.test/x", 0, 10, len(DATA))
    assert len(calls) == sent and time.monotonic() - started < 0.3
    assert await c.get_range("http://good.test/y", 0, 10, len(DATA)) == DATA[:10]
    await trio.sleep(1.1)
    with trio.fail_after(10), pytest.raises(RemoteError, match="HTTP 500"):
        await c.get_range("http://bad.test/x", 0, 10, len(DATA))
    assert len(calls) > sent + 1


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_any_answer_from_the_server_ends_the_outage() -> None:
    """While down, a trial that gets an answer (even an error) proves the server is up."""
    up = [False]

    def handler(request: httpx.Request) -> httpx.Response:
        if not up[0]:
            raise httpx.ConnectError("refused")
        return httpx.Response(404, json={"detail": "no such thing"})

    c = client(handler, budget=0.3, down_seconds=0.2)
    with trio.fail_after(10), pytest.raises(RemoteError):
        await c.get_json("a/")
    assert c.seems_down
    up[0] = True
    await trio.sleep(0.3)
    with pytest.raises(NotFound):
        await c.get_json("b/")
    assert not c.seems_down
