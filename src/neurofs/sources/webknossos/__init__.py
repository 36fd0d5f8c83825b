"""WEBKNOSSOS: datasets, layers and magnifications as OME-Zarr, native zarr and plain volumes."""

from __future__ import annotations

from neurofs.config import SourceConfig
from neurofs.io.fetcher import Fetcher
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.sources import Source
from neurofs.sources.webknossos.api import PROBE_PATH, WebknossosApi
from neurofs.sources.webknossos.tree import WkContext, WkOptions, WkRoot


def build(
    config: SourceConfig, stats: Stats, fetcher: Fetcher, responses: ResponseStore | None
) -> Source:
    api = WebknossosApi(config, stats, responses)
    ctx = WkContext(api, fetcher, WkOptions(raw_max_bytes=config.raw_max_bytes))
    root = WkRoot((config.name,), ctx)
    return Source(config.name, root, api.http, probe_path=PROBE_PATH, api=api)
