"""The down-window after an outage (io/breaker.py): on its own with a hand-moved clock, and in
the HTTP client against a scripted server (httpx.MockTransport)."""

from __future__ import annotations

import httpx
import pytest
import trio

from neurofs.errors import NotFound, RemoteError
from neurofs.io.breaker import Breaker, BreakerOpen
from neurofs.io.http import HttpClient, RetryPolicy
from neurofs.io.stats import Stats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_new_breaker_is_closed() -> None:
    breaker = Breaker(Clock())
    assert breaker.state == "closed" and not breaker.down


def test_it_opens_after_an_outage_and_refuses_until_the_window_has_passed() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.trip(10.0)
    assert breaker.state == "open" and breaker.down
    clock.now += 4.0
    with pytest.raises(BreakerOpen) as info, breaker.trial():
        raise AssertionError("not admitted while open")
    assert info.value.wait == pytest.approx(6.0)
    assert "next try in 6 s" in str(info.value)


def test_half_open_admits_one_trial_at_a_time() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.trip(10.0)
    clock.now += 10.0
    assert breaker.state == "half-open"
    with breaker.trial():
        with pytest.raises(BreakerOpen) as info, breaker.trial():
            raise AssertionError("a second trial while one runs")
        assert info.value.wait == 0.0
    # The trial ended without an answer (the caller neither reset nor tripped): the next
    # request may try.
    with breaker.trial():
        pass


def test_a_trial_that_gets_an_answer_closes_it() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.trip(10.0)
    clock.now += 11.0
    with breaker.trial():
        breaker.reset()
    assert breaker.state == "closed" and not breaker.down


def test_a_failed_trial_opens_it_for_another_window() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.trip(10.0)
    clock.now += 11.0
    with pytest.raises(OSError), breaker.trial():
        breaker.trip(10.0)
        raise OSError("trial failed")
    assert breaker.state == "open"
    clock.now += 9.0
    assert breaker.state == "open"
    clock.now += 1.0
    assert breaker.state == "half-open"


def test_a_trial_that_raises_frees_the_slot() -> None:
    clock = Clock()
    breaker = Breaker(clock)
    breaker.trip(1.0)
    clock.now += 1.0
    with pytest.raises(ValueError), breaker.trial():
        raise ValueError("boom")
    with breaker.trial():
        pass


@pytest.mark.expect_log(r"giving up after \d+ tries")
async def test_the_client_opens_on_an_outage_probes_once_half_open_and_closes() -> None:
    up = [False]
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if not up[0]:
            raise httpx.ConnectError("refused")
        return httpx.Response(404, json={"detail": "no such thing"})

    c = HttpClient(
        "t",
        "http://api.test/api",
        Stats(),
        retry=RetryPolicy(
            total_seconds=0.2, first_backoff=0.01, max_backoff=0.02, down_seconds=0.3
        ),
        transport=httpx.MockTransport(handler),
    )
    breaker = c._breaker
    with pytest.raises(RemoteError):
        await c.get_json("a/")
    assert breaker.state == "open"
    sent = len(paths)
    with pytest.raises(RemoteError, match="not sent, the server is down"):
        await c.get_json("b/")
    assert len(paths) == sent
    await trio.sleep(0.35)
    assert breaker.state == "half-open"
    up[0] = True
    with pytest.raises(NotFound):  # an answer, even a refusal: the server is up
        await c.get_json("c/")
    assert paths[sent:] == ["/api/c/"]  # one probe, one try
    assert breaker.state == "closed"
