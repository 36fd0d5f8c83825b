"""What the API clients of the three services share: how their HTTP clients are made from the
source's configuration, one client per origin they talk to, and the memo of answers that a
refresh empties.

A source talks to its server and, for WEBKNOSSOS and CAVE, to more origins it learns from the
server's answers (datastores, a datastack's local server): each gets an HTTP client of its own,
made like the server's, so that the token is sent to those origins only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from neurofs.config import SourceConfig
from neurofs.io.http import HttpClient, RetryPolicy
from neurofs.io.memo import Memo
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.status import StatusReader
from neurofs.io.tier import Tier
from neurofs.tree.nodes import NodePath


@dataclass(frozen=True)
class ClientMaker:
    """Makes the HTTP clients of one source: its name, counters, retry budget and answers kept
    on disk, and the token in the header the service reads it from."""

    config: SourceConfig
    stats: Stats
    responses: ResponseStore | None
    # The header that carries the token, and the word before the token in it ("Bearer").
    auth_header: str
    auth_scheme: str | None = None
    # Recovers the real status a service hides in its error answers (CAVE's 500s).
    status_reader: StatusReader | None = None
    # The lab's shared cache tier, asked first for bytes the callers say may be shared.
    tier: Tier | None = None

    def __call__(self, url: str, token: str | None) -> HttpClient:
        """A client of ``url`` whose API requests carry ``token`` (none without one)."""
        headers = None
        if token:
            value = f"{self.auth_scheme} {token}" if self.auth_scheme else token
            headers = {self.auth_header: value}
        return HttpClient(
            self.config.name,
            url,
            self.stats,
            auth_headers=headers,
            responses=self.responses,
            retry=RetryPolicy(total_seconds=self.config.retry_seconds),
            status_reader=self.status_reader,
            tier=self.tier,
        )


class ApiClient:
    """The base of each service's API client: the client of its server, those of the other
    origins it talks to, and its memo of answers (keyed by the subclass alone)."""

    def __init__(self, http: HttpClient, *, ttl: float = 30.0) -> None:
        self.http = http
        self.memo = Memo(ttl=ttl)
        self._origins: dict[str, HttpClient] = {}

    def client_at(self, url: str, make: Callable[[str], HttpClient]) -> HttpClient:
        """The client of another origin, made by ``make`` at first use; closed with this."""
        client = self._origins.get(url)
        if client is None:
            client = self._origins[url] = make(url)
        return client

    def refresh(self, path: NodePath) -> None:
        """Forget every answer that may change; published ones stay, they cannot.

        Not only those about ``path``: the listings above it hold its attributes, and which
        answers those are depends on how each directory is listed."""
        self.memo.forget_changeable()

    async def aclose(self) -> None:
        await self.http.aclose()
        for client in self._origins.values():
            await client.aclose()
