"""One package per service: its API models, client and nodes. Nothing here knows FUSE."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol, cast

from neurofs.config import SourceConfig
from neurofs.io.fetcher import Fetcher
from neurofs.io.http import HttpClient, Unreachable
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier
from neurofs.tree.nodes import Directory, NodePath

# The probe at mount time retries for this long, so that one lost packet or one 503 does not
# mark a healthy server as down (which would leave every request a single try for a while).
PROBE_BUDGET_SECONDS = 3.0


class Account(Protocol):
    """Who a token belongs to, as a service's "who am I" route says."""

    @property
    def display(self) -> str: ...

    @property
    def note(self) -> str | None: ...


class SourceApi(Protocol):
    """What the rest of neurofs asks of a source's API client besides its routes."""

    # The client of the source's server (the one the mount probes).
    http: HttpClient

    @property
    def authenticated(self) -> bool: ...

    async def me(self) -> Account: ...

    def refresh(self, path: NodePath) -> None:
        """Forget the answers held in memory that may have changed at ``path`` (relative to
        the source's directory; () is all of it), so that they are fetched again."""

    async def aclose(self) -> None:
        """Close every HTTP client it opened, ``http`` among them."""


@dataclass
class Source:
    """A mounted service instance: its top-level directory and its API client."""

    name: str
    root: Directory
    http: HttpClient
    # A cheap route that answers when the server is up.
    probe_path: str = "info/"
    # None only for a bare server probe (``http`` alone).
    api: SourceApi | None = None

    async def aclose(self) -> None:
        await (self.http.aclose() if self.api is None else self.api.aclose())

    def refresh(self, path: NodePath) -> None:
        """Show the server's current state at ``path`` (relative to the source's directory)
        from the next request on (``neurofs refresh``)."""
        if self.api is not None:
            self.api.refresh(path)

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


class SourcePackage(Protocol):
    """What each service's package (``sources/<kind>/__init__.py``) provides."""

    # A cheap route that answers when the server is up (the mount's probe).
    PROBE_PATH: str

    def build(
        self,
        config: SourceConfig,
        stats: Stats,
        fetcher: Fetcher,
        responses: ResponseStore | None,
        *,
        allow_delete: bool = False,
    ) -> Source:
        """The mounted source: its directory tree over its API client."""
        ...

    def connect(
        self,
        config: SourceConfig,
        stats: Stats,
        responses: ResponseStore | None,
        *,
        tier: Tier | None = None,
    ) -> SourceApi:
        """Its API client alone (``neurofs ls-sources`` asks it without mounting); its
        public, immutable bytes read through the shared ``tier`` if given."""
        ...


# The package of each kind of source. Imported only when a source of that kind is configured:
# it is large (WEBKNOSSOS brings numpy), and it imports this module.
KINDS: dict[str, str] = {
    "dandi": "neurofs.sources.dandi",
    "webknossos": "neurofs.sources.webknossos",
    "cave": "neurofs.sources.cave",
}


def package(kind: str) -> SourcePackage:
    if kind not in KINDS:
        raise ValueError(f"unknown source kind {kind!r}")
    return cast(SourcePackage, importlib.import_module(KINDS[kind]))


def build_source(
    config: SourceConfig,
    stats: Stats,
    fetcher: Fetcher,
    responses: ResponseStore | None,
    *,
    allow_delete: bool = False,
) -> Source:
    return package(config.kind).build(config, stats, fetcher, responses, allow_delete=allow_delete)
