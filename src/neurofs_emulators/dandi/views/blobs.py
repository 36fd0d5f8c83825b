"""Blobs: ``/api/blobs/digest/`` finds one by digest; the object store serves their bytes
(and zarr keys) under ``/dandiarchive/``, as S3 does (see
:mod:`neurofs_emulators.dandi.blobstore`)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from neurofs_emulators.dandi import drf, htmlindex, models, s3listing
from neurofs_emulators.dandi.blobstore import BUCKET, S3Error, serve_object
from neurofs_emulators.dandi.drf import APIError
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.serializers import Serializers


class BlobViews(Serializers):
    """Blobs by digest, and the object store."""

    async def blob_digest(self, request: Request) -> Response:
        self.authenticate(request)
        try:
            body = await request.json()
        except ValueError as exc:
            raise APIError(400, {"detail": f"JSON parse error - {exc}"}) from exc
        errors: dict[str, list[str]] = {}
        if not isinstance(body, dict):
            raise APIError(
                400,
                {
                    "non_field_errors": [
                        f"Invalid data. Expected a dictionary, but got {type(body).__name__}."
                    ]
                },
            )
        for key in ("algorithm", "value"):
            value = body.get(key)
            if value is None:
                errors[key] = ["This field is required."]
            elif not isinstance(value, str | int | float) or str(value).strip() == "":
                errors[key] = (
                    ["This field may not be blank."]
                    if isinstance(value, str)
                    else ["Not a valid string."]
                )
        if errors:
            raise APIError(400, errors)
        algorithm, value = str(body["algorithm"]).strip(), str(body["value"]).strip()
        if algorithm not in ("dandi:dandi-etag", "dandi:sha2-256"):
            raise APIError(
                400, "Unsupported Digest Algorithm. Supported: dandi:dandi-etag, dandi:sha2-256"
            )
        blob = self.archive.blob_by_digest(algorithm, value)
        if blob is None:
            raise drf.not_found()
        return json_response(
            models.BlobOut(blob_id=blob.blob_id, etag=blob.etag, sha256=blob.sha256, size=blob.size)
        )

    async def object_get(self, request: Request) -> Response:
        head = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            return S3Error(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            ).response(head)
        if "authorization" in request.headers:
            # Never echo the header: it may carry a secret.
            presigned = "X-Amz-Signature" in request.query_params
            return S3Error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified"
                if presigned
                else "Unsupported Authorization Type",
                {"ArgumentName": "Authorization"},
            ).response(head)
        key: str = request.path_params["key"]
        if not key:  # `/dandiarchive/`: the bucket itself
            return await self.bucket_root(request)
        path = f"/{BUCKET}/{key}"
        signed = any(k.startswith("X-Amz-") for k in request.query_params)
        if signed:
            error = self.signer.check(path, request.query_params)
            if error is not None:
                return error.response(head)
        # The HTML index covers the blobs only (zarr keys keep S3's answers exactly).
        indexed = key.startswith(htmlindex.PREFIX) and not signed
        if indexed and key.endswith("/"):
            index = self.html_index(key, head)
            if index is not None:
                return index
        found = self.resolve_object(key)
        if (
            found is None
            and indexed
            and not head
            and htmlindex.is_directory(s3listing.bucket_keys(self.archive), key + "/")
        ):
            # nginx sends a directory's URL without its slash to the URL with it.
            return Response(
                status_code=301,
                headers={"Location": quote(f"{path}/", safe="/-_.~"), "Server": "nginx"},
            )
        if found is None:
            return S3Error(
                404, "NoSuchKey", "The specified key does not exist.", {"Key": key}
            ).response(head)
        source, etag, modified, embargoed = found
        if embargoed and not signed:
            return S3Error(403, "AccessDenied", "Access Denied").response(head)
        return serve_object(request, self.corruption.source(key, source), etag, modified)

    def html_index(self, prefix: str, head: bool) -> Response | None:
        """The autoindex page of a "directory" (:mod:`..htmlindex`), None when empty."""

        def readable(key: str) -> tuple[int, Any] | None:
            found = self.resolve_object(key)
            if found is None or found[3]:  # gone, or embargoed (an unsigned GET is refused)
                return None
            return found[0].size, found[2]

        entries = htmlindex.directory_entries(s3listing.bucket_keys(self.archive), prefix, readable)
        if entries is None:
            return None
        body = htmlindex.render(prefix, entries)
        response = HTMLResponse(b"" if head else body, headers={"Server": "nginx"})
        response.headers["content-length"] = str(len(body))
        return response

    def resolve_object(self, key: str) -> tuple[Any, str, Any, bool] | None:
        if key.startswith("blobs/"):
            blob = self.archive.blob_by_s3_key(key)
            if blob is None:
                return None
            return blob.source, blob.etag, blob.created, blob.embargoed
        if key.startswith("zarr/"):
            zarr_id, _, rel = key[len("zarr/") :].partition("/")
            zarr = self.archive.zarrs.get(zarr_id)
            if zarr is None or rel not in zarr.files:
                return None
            entry = zarr.files[rel]
            return entry.source, entry.md5, entry.last_modified, zarr.embargoed
        return None

    async def bucket_root(self, request: Request) -> Response:
        """``ListObjectsV2`` (:mod:`..s3listing`); the public bucket lets anyone list it."""
        head = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            return S3Error(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            ).response(head)
        if "authorization" in request.headers:
            return S3Error(
                400,
                "InvalidArgument",
                "Unsupported Authorization Type",
                {"ArgumentName": "Authorization"},
            ).response(head)
        if request.query_params.get("list-type") != "2":
            return S3Error(
                501, "NotImplemented", "Only ListObjectsV2 (list-type=2) is emulated."
            ).response(head)
        req = s3listing.parse(request.query_params)
        if isinstance(req, S3Error):
            return req.response(head)
        page = s3listing.list_page(s3listing.bucket_keys(self.archive), req)
        body = s3listing.render(req, page, self.describe_object)
        return Response(
            b"" if head else body,
            media_type="application/xml",
            headers={"x-amz-request-id": secrets.token_hex(8).upper(), "Server": "AmazonS3"},
        )

    def describe_object(self, key: str) -> tuple[str, int, Any] | None:
        found = self.resolve_object(key)
        if found is None:
            return None
        source, etag, modified, _ = found
        return etag, source.size, modified
