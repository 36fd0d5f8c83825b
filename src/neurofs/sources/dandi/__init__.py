"""The DANDI Archive: dandisets, versions and assets (blobs and zarrs)."""

from __future__ import annotations

from neurofs.config import SourceConfig
from neurofs.io.fetcher import Fetcher
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.sources import Source
from neurofs.sources.dandi.api import PROBE_PATH, connect
from neurofs.sources.dandi.tree import DandiContext, DandiOptions, SourceRoot

__all__ = ["PROBE_PATH", "build", "connect"]


def build(
    config: SourceConfig,
    stats: Stats,
    fetcher: Fetcher,
    responses: ResponseStore | None,
    *,
    allow_delete: bool = False,  # deleting assets is the fs layer's to allow
) -> Source:
    api = connect(config, stats, responses, tier=fetcher.tier)
    ctx = DandiContext(
        api, fetcher, DandiOptions(flat_listing_max_assets=config.flat_listing_max_assets)
    )
    root = SourceRoot((config.name,), ctx)
    return Source(config.name, root, api.http, probe_path=PROBE_PATH, api=api)
