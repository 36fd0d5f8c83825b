"""Asking a configured source, without mounting it, whether it answers and who we are there.

Only the source's API client is built (no tree, no cache, no answers kept on disk). The
server counts as reachable when it answers the route the mount probes
(``Source.probe_path``); each service's "who am I" route then tells whether the token is
taken:

| kind | who am I |
|---|---|
| dandi | ``GET users/me/`` (``DandiApi.me``) |
| webknossos | ``GET api/v<N>/user`` (``WebknossosApi.me``) |
| cave | ``GET auth/api/v1/user/cache`` (``CaveApi.me``) |

A refusal (401 or 403) from that route means the token is refused. Every request has a short
retry budget, so an unreachable server answers within seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx
import trio

from neurofs import secrets
from neurofs.config import SourceConfig
from neurofs.errors import AccessDenied, NeurofsError
from neurofs.io.http import Unreachable
from neurofs.io.stats import Stats
from neurofs.sources import PROBE_BUDGET_SECONDS, SourceApi, package

# "unknown": not reachable, or the "who am I" route failed in another way (see ``note``).
AuthState = Literal["anonymous", "signed in", "token refused", "unknown"]


@dataclass
class SourceIdentity:
    """What a configured source says about itself and about us."""

    name: str
    kind: str
    url: str  # credentials masked
    reachable: bool
    error: str | None  # why not reachable
    auth: AuthState
    user: str | None = None  # who the token belongs to, for display
    note: str | None = None  # e.g. terms of service not accepted, or why the token is refused

    @property
    def ok(self) -> bool:
        return self.reachable and self.auth != "token refused"


def _connect(config: SourceConfig, stats: Stats) -> tuple[SourceApi, str]:
    """The source's API client (answers never kept on disk) and the route its mount probes."""
    kind = package(config.kind)
    return kind.connect(config, stats, None), kind.PROBE_PATH


def _reason(exc: Exception) -> str:
    """An error's message from its HTTP status on (the request's URL is shown apart)."""
    text = secrets.redact(str(exc) or type(exc).__name__)
    at = text.find(": HTTP ")
    return text[at + 2 :] if at >= 0 else text


async def _ask(api: SourceApi, probe_path: str, result: SourceIdentity) -> None:
    try:
        await api.http.get_json(probe_path, keep=False, offline=False)
    except (Unreachable, httpx.HTTPError, httpx.InvalidURL) as exc:
        result.error = secrets.redact(str(exc) or type(exc).__name__)
        return
    except NeurofsError:
        pass  # an answer, if a refusal: the server is up
    result.reachable = True
    if not api.authenticated:
        result.auth = "anonymous"
        return
    try:
        account = await api.me()
    except Unreachable as exc:
        result.reachable = False
        result.error = secrets.redact(str(exc))
    except AccessDenied as exc:
        result.auth = "token refused"
        result.note = _reason(exc)
    except NeurofsError as exc:  # an unexpected answer, an API version neurofs does not speak
        result.note = f"who am I: {_reason(exc)}"
    else:
        result.auth = "signed in"
        result.user = secrets.redact(account.display)
        result.note = account.note


async def identify(config: SourceConfig, *, budget: float = PROBE_BUDGET_SECONDS) -> SourceIdentity:
    """Whether the source answers and who its token belongs to. Every request is retried
    for at most ``budget`` seconds (or the source's own ``retry_seconds``, if shorter)."""
    secrets.register(config.resolved_token())
    result = SourceIdentity(
        config.name, config.kind, secrets.redact_url(config.url), False, None, "unknown"
    )
    quick = config.model_copy(update={"retry_seconds": min(config.retry_seconds, budget)})
    api, probe_path = _connect(quick, Stats())
    try:
        await _ask(api, probe_path, result)
    finally:
        await api.aclose()
    return result


def identify_all(
    configs: Sequence[SourceConfig], *, budget: float = PROBE_BUDGET_SECONDS
) -> list[SourceIdentity]:
    """``identify`` for every source at once; the answers in the order of ``configs``."""

    async def run() -> list[SourceIdentity]:
        found: dict[int, SourceIdentity] = {}

        async def one(i: int, config: SourceConfig) -> None:
            found[i] = await identify(config, budget=budget)

        async with trio.open_nursery() as nursery:
            for i, config in enumerate(configs):
                nursery.start_soon(one, i, config)
        return [found[i] for i in range(len(configs))]

    return trio.run(run)
