"""The DANDI Archive: dandisets, versions and assets (blobs and zarrs)."""

from __future__ import annotations

from neurofs.config import SourceConfig
from neurofs.io.fetcher import Fetcher
from neurofs.io.http import HttpClient, RetryPolicy
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.sources import Source
from neurofs.sources.dandi.api import DandiApi
from neurofs.sources.dandi.tree import DandiContext, DandiOptions, SourceRoot


def build(
    config: SourceConfig, stats: Stats, fetcher: Fetcher, responses: ResponseStore | None
) -> Source:
    token = config.resolved_token()
    http = HttpClient(
        config.name,
        config.url,
        stats,
        auth_headers={"Authorization": f"token {token}"} if token else None,
        responses=responses,
        retry=RetryPolicy(total_seconds=config.retry_seconds),
    )
    ctx = DandiContext(
        DandiApi(http, authenticated=token is not None),
        fetcher,
        DandiOptions(flat_listing_max_assets=config.flat_listing_max_assets),
    )
    return Source(config.name, SourceRoot((config.name,), ctx), http)
