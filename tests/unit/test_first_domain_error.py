"""Parallel tasks of one request fail as one domain error, so the fs layer can map it."""

from __future__ import annotations

import pytest

from neurofs.errors import NotFound, RemoteError, first_domain_error
from neurofs.io.parallel import tasks_of_one_request


def test_the_first_domain_error_is_found_depth_first():
    inner = NotFound("chunk 1")
    group = BaseExceptionGroup("outer", [ValueError("x"), ExceptionGroup("inner", [inner])])
    assert first_domain_error(group) is inner


def test_a_group_without_domain_errors_gives_none():
    assert first_domain_error(ExceptionGroup("g", [ValueError("x"), KeyError("y")])) is None


async def test_a_nursery_of_failing_fetches_surfaces_as_one_domain_error():
    async def fail(message: str) -> None:
        raise RemoteError(message)

    with pytest.raises(RemoteError) as raised:
        async with tasks_of_one_request() as nursery:
            nursery.start_soon(fail, "a")
            nursery.start_soon(fail, "b")
    assert str(raised.value) in ("a", "b")


async def test_a_group_of_unexpected_failures_stays_a_group():
    async def fail() -> None:
        raise ValueError("bug")

    with pytest.raises(ExceptionGroup):
        async with tasks_of_one_request() as nursery:
            nursery.start_soon(fail)
