"""CAVE: datastacks, annotation tables as files, neuroglancer states."""

from __future__ import annotations

from neurofs.config import SourceConfig
from neurofs.errors import ConfigError
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.sources import Source
from neurofs.sources.cave.api import PROBE_PATH, CaveApi
from neurofs.sources.cave.tree import CaveContext, CaveRoot


def build(
    config: SourceConfig, stats: Stats, responses: ResponseStore | None, *, allow_delete: bool
) -> Source:
    if not config.datastacks:
        raise ConfigError(
            f"source {config.name}: name the datastacks to mount (datastacks = [...])"
        )
    api = CaveApi(config, stats, responses)
    root = CaveRoot((config.name,), CaveContext(api, allow_delete), config.datastacks)
    return Source(config.name, root, api.http, probe_path=PROBE_PATH, api=api)
