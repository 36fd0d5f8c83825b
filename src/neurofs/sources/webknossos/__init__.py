"""WEBKNOSSOS: datasets, layers and magnifications as OME-Zarr, native zarr and plain volumes."""

from __future__ import annotations

from neurofs.config import SourceConfig
from neurofs.io.fetcher import Fetcher
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier
from neurofs.sources import Source
from neurofs.sources.webknossos.api import PROBE_PATH, WebknossosApi
from neurofs.sources.webknossos.tree import WkContext, WkOptions, WkRoot

__all__ = ["PROBE_PATH", "build", "connect"]


def connect(
    config: SourceConfig,
    stats: Stats,
    responses: ResponseStore | None,
    *,
    tier: Tier | None = None,
) -> WebknossosApi:
    return WebknossosApi(config, stats, responses, tier=tier)


def build(
    config: SourceConfig,
    stats: Stats,
    fetcher: Fetcher,
    responses: ResponseStore | None,
    *,
    allow_delete: bool = False,  # nothing is deleted through WEBKNOSSOS's directories
) -> Source:
    api = connect(config, stats, responses, tier=fetcher.tier)
    ctx = WkContext(api, fetcher, WkOptions(raw_max_bytes=config.raw_max_bytes))
    root = WkRoot((config.name,), ctx)
    return Source(config.name, root, api.http, probe_path=PROBE_PATH, api=api)
