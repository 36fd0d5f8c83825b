"""Tasks run in parallel for one request (the chunks of one read, the pages of one listing).

They fail for one reason as far as the caller is concerned: ``tasks_of_one_request`` is a
trio nursery whose failure is the first domain error among its tasks', so the fs layer maps
it to that error's errno instead of an unexpected ExceptionGroup (EIO with a traceback).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from neurofs.errors import first_domain_error


@asynccontextmanager
async def tasks_of_one_request() -> AsyncIterator[trio.Nursery]:
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        error = first_domain_error(group)
        if error is None:
            raise
        raise error from None
