"""One package per service: its API models, client and nodes. Nothing here knows FUSE."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from neurofs.config import SourceConfig
from neurofs.io.fetcher import Fetcher
from neurofs.io.http import HttpClient, Unreachable
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.tree.nodes import Directory

# The probe at mount time retries for this long, so that one lost packet or one 503 does not
# mark a healthy server as down (which would leave every request a single try for a while).
PROBE_BUDGET_SECONDS = 3.0


@dataclass
class Source:
    """A mounted service instance: its top-level directory and its HTTP client."""

    name: str
    root: Directory
    http: HttpClient
    # A cheap route that answers when the server is up.
    probe_path: str = "info/"
    # Extra clients to close (WEBKNOSSOS datastores).
    close: Callable[[], Awaitable[None]] | None = None

    async def aclose(self) -> None:
        await self.http.aclose()
        if self.close is not None:
            await self.close()

    async def probe(self) -> str | None:
        """None when the server answers, else a one-line warning."""
        try:
            budget = min(PROBE_BUDGET_SECONDS, self.http.retry.total_seconds)
            await self.http.get_json(self.probe_path, budget=budget, offline=False)
        except Unreachable as exc:
            return f"{self.name}: {self.http.base_url} is not reachable now ({exc})"
        except Exception as exc:  # any other failure is only a warning at mount time too
            return f"{self.name}: {self.http.base_url} answered with an error ({exc})"
        return None


def build_source(
    config: SourceConfig,
    stats: Stats,
    fetcher: Fetcher,
    responses: ResponseStore | None,
    *,
    allow_delete: bool = False,
) -> Source:
    if config.kind == "dandi":
        from neurofs.sources.dandi import build

        return build(config, stats, fetcher, responses)
    if config.kind == "webknossos":
        from neurofs.sources.webknossos import build as build_wk

        return build_wk(config, stats, fetcher, responses)
    if config.kind == "cave":
        from neurofs.sources.cave import build as build_cave

        return build_cave(config, stats, responses, allow_delete=allow_delete)
    raise ValueError(f"unknown source kind {config.kind!r}")
