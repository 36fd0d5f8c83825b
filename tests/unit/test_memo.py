from __future__ import annotations

import pytest
import trio

from neurofs.errors import NotFound, RemoteError
from neurofs.io.memo import Memo


async def test_single_flight_and_caching():
    calls = []

    async def fetch():
        calls.append(1)
        await trio.sleep(0.05)
        return 42

    memo = Memo(ttl=60)
    results = []
    async with trio.open_nursery() as n:
        for _ in range(10):
            n.start_soon(lambda: _collect(memo, fetch, results))
    assert results == [42] * 10 and len(calls) == 1
    assert await memo.get("k", fetch) == 42 and len(calls) == 1


async def _collect(memo, fetch, results):
    results.append(await memo.get("k", fetch))


async def test_failures_not_cached_negative_cached_briefly():
    memo = Memo(ttl=60, negative_ttl=60)
    attempts = []

    async def failing():
        attempts.append(1)
        raise RemoteError("down")

    for _ in range(2):
        with pytest.raises(RemoteError):
            await memo.get("a", failing)
    assert len(attempts) == 2

    async def missing():
        attempts.append(1)
        raise NotFound("x")

    for _ in range(2):
        with pytest.raises(NotFound):
            await memo.get("b", missing)
    assert len(attempts) == 3


async def test_invalidate():
    memo = Memo()
    n = []

    async def fetch():
        n.append(1)
        return len(n)

    assert await memo.get(("x", 1), fetch, immutable=True) == 1
    memo.invalidate(lambda k: k[0] == "x")
    assert await memo.get(("x", 1), fetch) == 2


BUILT: list[int] = []


def _sorted_view(answer: list[int]) -> list[int]:
    BUILT.append(1)
    return sorted(answer)


async def test_a_view_is_built_once_per_fetch_and_forgotten_with_its_answer():
    memo = Memo()
    fetched = []

    async def fetch():
        fetched.append(1)
        return [3, 1, 2]

    BUILT.clear()
    for _ in range(3):
        assert await memo.view("k", fetch, _sorted_view) == [1, 2, 3]
    assert await memo.get("k", fetch) == [3, 1, 2]
    assert (len(fetched), len(BUILT)) == (1, 1)
    memo.invalidate()
    assert await memo.view("k", fetch, _sorted_view) == [1, 2, 3]
    assert (len(fetched), len(BUILT)) == (2, 2)


async def test_a_fresh_read_fetches_again_and_replaces_the_answer_and_its_views():
    memo = Memo()
    answers = iter([[2, 1], [4, 3]])

    async def fetch():
        return next(answers)

    BUILT.clear()
    assert await memo.view("k", fetch, _sorted_view) == [1, 2]
    assert await memo.view("k", fetch, _sorted_view, fresh=True) == [3, 4]
    assert await memo.get("k", fetch) == [4, 3]
    assert await memo.view("k", fetch, _sorted_view) == [3, 4]
    assert len(BUILT) == 2


async def test_a_fresh_read_does_not_take_an_answer_fetched_while_it_waited():
    memo = Memo()
    fetched = []

    async def slow():
        fetched.append("slow")
        await trio.sleep(0.05)
        return "old"

    async def quick():
        fetched.append("fresh")
        return "new"

    results = {}

    async def first():
        results["first"] = await memo.get("k", slow)

    async def fresh():
        await trio.sleep(0.01)  # asked while the first fetch is under way
        results["fresh"] = await memo.get("k", quick, fresh=True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        nursery.start_soon(fresh)
    assert results == {"first": "old", "fresh": "new"}
    assert fetched == ["slow", "fresh"]
    assert await memo.get("k", slow) == "new"


async def test_a_fresh_read_ignores_a_negative_answer():
    memo = Memo(negative_ttl=60)

    async def missing():
        raise NotFound("x")

    async def found():
        return 1

    with pytest.raises(NotFound):
        await memo.get("k", missing)
    with pytest.raises(NotFound):
        await memo.get("k", found)
    assert await memo.get("k", found, fresh=True) == 1


async def test_forget_drops_only_the_keys_named():
    memo = Memo()
    n = []

    async def fetch():
        n.append(1)
        return len(n)

    assert await memo.get(("a", 1), fetch) == 1
    assert await memo.get(("b", 1), fetch, immutable=True) == 2
    memo.forget(("b", 1), ("c",))
    assert await memo.get(("a", 1), fetch) == 1
    assert await memo.get(("b", 1), fetch) == 3
