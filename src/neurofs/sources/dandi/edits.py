"""Moving and deleting assets of a draft.

A move is one PUT per asset with the new ``metadata.path``. Every target is checked first,
so a collision (EEXIST) moves nothing; if the server refuses a PUT halfway through a folder
move, the assets already moved are put back, so nothing is left half-moved.
"""

from __future__ import annotations

import logging

from neurofs.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    InvalidContent,
    NeurofsError,
    NotFound,
)
from neurofs.sources.dandi.api import DandiApi
from neurofs.sources.dandi.models import AssetWithMetadata

log = logging.getLogger(__name__)


async def _taken(api: DandiApi, identifier: str, path: str) -> bool:
    """Is ``path`` an asset, or a folder holding assets, in the draft?"""
    for asset in await api.assets_with_metadata(identifier, "draft", path):
        if asset.path == path or asset.path.startswith(path + "/"):
            return True
    return False


def _require_token(api: DandiApi, what: str) -> None:
    """Without a token the archive answers every write with 401: say so before asking."""
    if not api.authenticated:
        raise AccessDenied(f"{what} needs a DANDI token (token_env or token in the configuration)")


async def move(api: DandiApi, identifier: str, source: str, target: str, folder: bool) -> None:
    _require_token(api, f"moving {identifier}/draft/{source}")
    if target == source or target.startswith(source + "/"):
        raise InvalidContent(f"cannot move {source} into itself")
    if folder:
        assets = await api.assets_with_metadata(identifier, "draft", source + "/")
    else:
        assets = [await api.asset_at(identifier, "draft", source)]
    if not assets:
        raise NotFound(f"{identifier}/draft/{source}")
    if await _taken(api, identifier, target):
        raise AlreadyExists(f"{identifier}/draft/{target} exists")
    moved: list[tuple[AssetWithMetadata, str]] = []
    try:
        for asset in assets:
            new_path = target + asset.path[len(source) :]
            metadata = {**asset.metadata, "path": new_path}
            try:
                new = await api.put_asset(identifier, asset, metadata)
            except Conflict as exc:
                raise AlreadyExists(str(exc)) from None
            moved.append((new, asset.path))
    except NeurofsError:
        await _undo(api, identifier, moved)
        raise
    finally:
        api.forget_version(identifier, "draft")


async def _undo(api: DandiApi, identifier: str, moved: list[tuple[AssetWithMetadata, str]]) -> None:
    for asset, old_path in reversed(moved):
        try:
            await api.put_asset(identifier, asset, {**asset.metadata, "path": old_path})
        except NeurofsError as exc:  # reported; the user sees where each asset ended up
            log.error("could not move %s back to %s: %s", asset.path, old_path, exc)


async def delete(api: DandiApi, identifier: str, path: str) -> None:
    _require_token(api, f"deleting {identifier}/draft/{path}")
    asset = await api.asset_at(identifier, "draft", path)
    try:
        await api.delete_asset(identifier, asset.asset_id)
    finally:
        api.forget_version(identifier, "draft")
