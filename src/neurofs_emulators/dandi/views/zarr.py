"""``/api/zarr/...``: zarr archives and the listing of their files."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from neurofs_emulators.dandi import drf, models
from neurofs_emulators.dandi.archive import User, Zarr
from neurofs_emulators.dandi.drf import QueryParams
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.serializers import Serializers


class ZarrViews(Serializers):
    """Zarr archives and their files."""

    def visible_zarr(self, request: Request, user: User | None) -> Zarr:
        zarr = self.archive.zarrs.get(request.path_params["zarr_id"])
        if zarr is None:
            raise drf.not_found()
        dandiset = self.archive.dandisets.get(zarr.dandiset)
        if dandiset is None or not (dandiset.is_open or self.archive.is_owner(user, dandiset)):
            raise drf.not_found()
        return zarr

    async def zarr_list(self, request: Request) -> Response:
        user = self.authenticate(request)
        q = QueryParams(request)
        dandiset_id = q.char("dandiset")
        name = q.char("name")
        if dandiset_id is not None and not re.fullmatch(r"\d{6}", dandiset_id):
            q.errors["dandiset"] = ["A valid Dandiset identifier is required."]
        q.raise_errors()
        visible = {d.identifier for d in self.archive.visible_dandisets(user)}
        zarrs = sorted(
            (z for z in self.archive.zarrs.values() if z.dandiset in visible),
            key=lambda z: (z.created, z.zarr_id),
        )
        if dandiset_id is not None:
            zarrs = [z for z in zarrs if z.dandiset == dandiset_id]
        if name is not None:
            zarrs = [z for z in zarrs if z.name == name]
        page, links = self.page(request, zarrs)
        return json_response(
            models.Page[models.ZarrArchiveOut](**links, results=[self.zarr_out(z) for z in page])
        )

    async def zarr_detail(self, request: Request) -> Response:
        user = self.authenticate(request)
        return json_response(self.zarr_out(self.visible_zarr(request, user)))

    async def zarr_files(self, request: Request) -> Response:
        user = self.authenticate(request)
        # The real view does not check visibility here (S3 does, by bucket policy); the
        # emulator hides embargoed zarrs from non-owners on this route too.
        zarr = self.visible_zarr(request, user)
        q = QueryParams(request)
        after = q.char("after", "") or ""
        prefix = q.char("prefix", "") or ""
        limit = q.integer("limit", 1000, 0, 1000)
        download = q.boolean("download", False)
        if any(seg == ".." for seg in prefix.replace("\\", "/").split("/")):
            q.errors["prefix"] = ['Zarr path cannot contain ".." components.']
        q.raise_errors()
        raw_prefix = prefix.lstrip("/")
        if request.method == "HEAD" or download:
            key = zarr.s3_prefix + raw_prefix
            if request.method == "HEAD":
                key = key.rstrip("/")
            url = self.signer.presign(self.blob_origin(request), key)
            return RedirectResponse(
                url, status_code=302, headers={"Content-Type": "text/html; charset=utf-8"}
            )
        # The real view lists S3 under the zarr's prefix with the prefix's trailing '/'
        # stripped and starts after `after`; keys are computed lazily from there, so a page
        # costs what it returns whatever the zarr's size.
        key_prefix = raw_prefix.rstrip("/")
        raw_after = after.lstrip("/").rstrip("/")
        lowest = max(key_prefix, raw_after + "\0" if raw_after else "")
        selected: list[str] = []
        truncated = False
        for key in zarr.files.keys_from(lowest):
            if not key.startswith(key_prefix):
                break
            if len(selected) == limit:
                truncated = limit > 0
                break
            selected.append(key)
        files = [zarr.files[key] for key in selected]
        results = [
            models.ZarrFileEntry(Key=f.key, LastModified=f.last_modified, ETag=f.md5, Size=f.size)
            for f in files
        ]
        next_link = (
            drf.replace_query_param(drf.absolute_uri(request), "after", selected[-1])
            if truncated
            else None
        )
        return json_response(models.ZarrFilesPage(next=next_link, results=results))
