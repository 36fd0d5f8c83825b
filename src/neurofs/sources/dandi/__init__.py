"""The DANDI Archive: dandisets, versions and assets (blobs and zarrs)."""

from __future__ import annotations

from neurofs.config import SourceConfig
from neurofs.io.fetcher import Fetcher
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.sources import Source
from neurofs.sources.dandi.api import PROBE_PATH, connect
from neurofs.sources.dandi.tree import DandiContext, DandiOptions, SourceRoot


def build(
    config: SourceConfig, stats: Stats, fetcher: Fetcher, responses: ResponseStore | None
) -> Source:
    api = connect(config, stats, responses)
    ctx = DandiContext(
        api, fetcher, DandiOptions(flat_listing_max_assets=config.flat_listing_max_assets)
    )
    root = SourceRoot((config.name,), ctx)
    return Source(config.name, root, api.http, probe_path=PROBE_PATH, api=api)
