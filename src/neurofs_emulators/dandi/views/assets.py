"""Reading assets: a version's asset list and path tree, one asset (nested in its version
or by id alone), its metadata and its download link."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from neurofs_emulators.dandi import drf, models
from neurofs_emulators.dandi.archive import Asset, PathNode, Version
from neurofs_emulators.dandi.drf import APIError, QueryParams
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.serializers import Serializers


class AssetViews(Serializers):
    """Reading assets."""

    async def asset_list(self, request: Request) -> Response:
        user = self.authenticate(request)
        version = self.get_version(request, user)
        q = QueryParams(request)
        glob = q.char("glob")
        with_metadata = q.boolean("metadata", False)
        zarr_only = q.boolean("zarr", False)
        order = q.ordering_choice("order", ["created", "modified", "path"])
        q.raise_errors()
        path = request.query_params.get("path")
        computed = version.computed
        if computed is not None:
            # Every asset ordering is the index order there (see large_dandiset); zarr=true
            # finds nothing: it holds blobs only.
            descending = order is not None and order[0].startswith("-")
            rows: Sequence[int] = [] if zarr_only else computed.matching(path, glob, descending)
            indices, links = self.page(request, rows, lazy=True)
            results = [
                self.asset_item(request, computed.asset(i), True).dump()
                if with_metadata
                else computed.item(i)
                for i in indices
            ]
            return json_response({**links, "results": results})
        assets = list(version.assets.values())
        if path:
            exact = [a for a in assets if a.path == path]
            if exact:
                assets = exact
            else:
                prefix = path.upper()
                assets = [a for a in assets if a.path.upper().startswith(prefix)]
        if zarr_only:
            assets = [a for a in assets if a.zarr is not None]
        if glob is not None:
            pattern = re.compile(
                "^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$",
                re.IGNORECASE | re.DOTALL,
            )
            assets = [a for a in assets if pattern.match(a.path)]
        assets = order_assets(assets, order)
        page, links = self.page(request, assets, lazy=True)
        return json_response(
            {**links, "results": [self.asset_item(request, a, with_metadata).dump() for a in page]}
        )

    async def asset_paths(self, request: Request) -> Response:
        user = self.authenticate(request)
        q = QueryParams(request)
        prefix = q.char("path_prefix", "")
        q.raise_errors()
        version = self.get_version(request, user)
        query = (prefix or "").rstrip("/")
        if version.computed is not None:
            nodes = version.computed.path_children(query)
            if nodes is None:
                raise drf.not_found("Specified path not found.")
            return self.path_page(request, version, nodes)
        index = version.paths
        if not prefix:
            children = index.children.get("", [])
        elif query in index.nodes:
            children = index.children.get(query, [])
        else:
            raise drf.not_found("Specified path not found.")
        return self.path_page(request, version, [index.nodes[path] for path in children])

    def path_page(self, request: Request, version: Version, nodes: list[PathNode]) -> Response:
        page, links = self.page(request, nodes)
        results = []
        for node in page:
            results.append(
                models.AssetPathItem(
                    path=node.path,
                    version=version.pk,
                    aggregate_files=node.aggregate_files,
                    aggregate_size=node.aggregate_size,
                    asset=models.AssetFile(
                        asset_id=node.asset.asset_id, url=self.s3_url(request, node.asset)
                    )
                    if node.asset is not None
                    else None,
                )
            )
        return json_response(models.Page[models.AssetPathItem](**links, results=results))

    async def nested_asset_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.nested_asset(request, user)
        return json_response(models.AssetMetadata(**self.full_metadata(request, asset)))

    async def nested_asset_info(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.nested_asset(request, user)
        return json_response(self.asset_item(request, asset, metadata=True))

    async def nested_asset_download(self, request: Request) -> Response:
        user = self.authenticate(request)
        return self.download(request, self.nested_asset(request, user))

    async def asset_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.top_level_asset(request, user)
        return json_response(models.AssetMetadata(**self.full_metadata(request, asset)))

    async def asset_info(self, request: Request) -> Response:
        user = self.authenticate(request)
        asset = self.top_level_asset(request, user)
        return json_response(self.asset_item(request, asset, metadata=True))

    async def asset_download(self, request: Request) -> Response:
        user = self.authenticate(request)
        return self.download(request, self.top_level_asset(request, user))

    def download(self, request: Request, asset: Asset) -> Response:
        if asset.blob is None:
            raise APIError(
                400,
                "Unable to provide download link for zarr assets. Please browse the zarr "
                "files directly to do so.",
            )
        q = QueryParams(request)
        disposition = q.choice("content_disposition", ["attachment", "inline"], "attachment")
        q.raise_errors()
        basename = asset.path.rsplit("/", 1)[-1]
        content_type = str(asset.metadata.get("encodingFormat", "application/octet-stream"))
        params = {"response-content-disposition": f'{disposition}; filename="{basename}"'}
        if disposition == "inline":
            params["response-content-type"] = content_type
        url = self.signer.presign(self.blob_origin(request), asset.blob.s3_key, params)
        if disposition == "inline" and content_type.startswith("video/"):
            return HTMLResponse(
                f'\n<video autoplay muted controls>\n<source src="{url}">\n</video>\n'
            )
        return RedirectResponse(
            url, status_code=302, headers={"Content-Type": "text/html; charset=utf-8"}
        )


def order_assets(assets: list[Asset], order: list[str] | None) -> list[Asset]:
    result = sorted(assets, key=lambda a: (a.created, a.pk))
    for field in reversed(order or []):
        name = field.lstrip("-")
        key: Callable[[Asset], Any]
        if name == "path":
            key = lambda a: a.path.encode()  # noqa: E731 - C collation: byte order
        elif name == "modified":
            key = lambda a: a.modified  # noqa: E731
        else:
            key = lambda a: a.created  # noqa: E731
        result.sort(key=key, reverse=field.startswith("-"))
    return result
