"""CAVE: datastacks, annotation tables as files, neuroglancer states."""

from __future__ import annotations

from neurofs.config import SourceConfig
from neurofs.errors import ConfigError
from neurofs.io.cache.rendered import RenderedFiles
from neurofs.io.fetcher import Fetcher
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier
from neurofs.sources import Source
from neurofs.sources.cave.api import PROBE_PATH, CaveApi
from neurofs.sources.cave.tree import CaveContext, CaveRoot

__all__ = ["PROBE_PATH", "build", "connect"]


def connect(
    config: SourceConfig,
    stats: Stats,
    responses: ResponseStore | None,
    *,
    tier: Tier | None = None,  # tables are not blocks of immutable objects: never shared
) -> CaveApi:
    return CaveApi(config, stats, responses)


def build(
    config: SourceConfig,
    stats: Stats,
    fetcher: Fetcher | None = None,  # its cache directory holds frozen tables as Parquet
    responses: ResponseStore | None = None,
    *,
    allow_delete: bool = False,
) -> Source:
    if not config.datastacks:
        raise ConfigError(
            f"source {config.name}: name the datastacks to mount (datastacks = [...])"
        )
    api = connect(config, stats, responses)
    rendered = None
    if fetcher is not None:
        cache = fetcher.cache
        rendered = RenderedFiles(cache.directory, sweep=not cache.shared)
    ctx = CaveContext(api, allow_delete, rendered)
    root = CaveRoot((config.name,), ctx, config.datastacks)
    return Source(config.name, root, api.http, probe_path=PROBE_PATH, api=api)
