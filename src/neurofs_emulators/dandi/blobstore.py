"""The S3-like object store behind the emulated archive (bucket ``dandiarchive``).

It is served on its own port, so it is a different origin from the API, like S3 is:

- ``GET|HEAD /dandiarchive/blobs/<3>/<3>/<blob id>`` and ``/dandiarchive/zarr/<zarr id>/<key>``;
- ``GET /dandiarchive?list-type=2&…``: ``ListObjectsV2`` of the bucket, open to anyone as the
  public bucket is (:mod:`.s3listing`);
- presigned URLs carry SigV4-looking query parameters; ``X-Amz-Signature`` is an HMAC of the
  path and the other parameters with a per-process secret. A bad signature answers 403
  ``SignatureDoesNotMatch``, an expired one 403 ``AccessDenied`` / "Request has expired";
- unsigned requests are allowed for objects that are not embargoed (the real bucket is
  public-read; that is why asset ``contentUrl`` lists a plain S3 URL), 403 otherwise;
- any ``Authorization`` header answers 400 (S3 accepts only one auth mechanism; it also
  catches API tokens leaking to the object store through a redirect);
- one ``Range: bytes=a-b | a- | -n`` per GET (206 + ``Content-Range``); unsatisfiable → 416
  with ``Content-Range: bytes */SIZE``; several ranges or a malformed header → the header is
  ignored and the whole object is sent (200), as S3 does;
- ``GET /dandiarchive/blobs/<prefix>/`` (a key ending in ``/``) answers an nginx-style HTML
  directory index of the readable blobs under it (:mod:`.htmlindex`) instead of S3's
  ``NoSuchKey``, so that generic HTTP mounts (rclone's http backend, httpdirfs) can be
  measured on this server.

The emulator also answers HEAD with the GET signature (real S3 would refuse it: presigned
URLs are signed for one method).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

import anyio
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from neurofs_emulators.dandi.archive import ByteSource

BUCKET = "dandiarchive"
DEFAULT_PRESIGN_TTL = 6 * 3600  # the archive presigns downloads for 6 hours
PRESIGN_TTL_ENV = "NEUROFS_EMULATOR_PRESIGN_TTL"
STREAM_CHUNK = 256 * 1024
_REGION = "us-east-2"
_ACCESS_KEY = "AKIANEUROFSEMULATOR0"
_SIGNED_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
)


def presign_ttl_from_env() -> float:
    raw = os.environ.get(PRESIGN_TTL_ENV)
    return float(raw) if raw else DEFAULT_PRESIGN_TTL


class Signer:
    """Presigns object URLs and checks presigned requests."""

    def __init__(self, ttl: float = DEFAULT_PRESIGN_TTL, secret: bytes | None = None) -> None:
        self.ttl = ttl
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def _signature(self, path: str, params: Mapping[str, str]) -> str:
        canonical = "\n".join(
            [path, *(f"{k}={params[k]}" for k in sorted(params) if k != "X-Amz-Signature")]
        )
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    def presign(self, origin: str, key: str, extra: Mapping[str, str] | None = None) -> str:
        """``origin`` + the object's path + a query string valid for ``ttl`` seconds."""
        now = datetime.now(UTC)
        # The signature covers the decoded path, so clients may re-encode it as they like.
        path = f"/{BUCKET}/{key}"
        params: dict[str, str] = dict(extra or {})
        params.update(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Credential": f"{_ACCESS_KEY}/{now:%Y%m%d}/{_REGION}/s3/aws4_request",
                "X-Amz-Date": f"{now:%Y%m%dT%H%M%SZ}",
                "X-Amz-Expires": str(int(self.ttl)),
                "X-Amz-SignedHeaders": "host",
            }
        )
        params["X-Amz-Signature"] = self._signature(path, params)
        return f"{origin}{quote(path, safe='/-_.~')}?{urlencode(params, quote_via=quote)}"

    def check(self, path: str, params: Mapping[str, str]) -> S3Error | None:
        """None when the presigned request for (decoded) ``path`` is valid, else the error."""
        given = params.get("X-Amz-Signature", "")
        if any(p not in params for p in _SIGNED_PARAMS) or not hmac.compare_digest(
            given, self._signature(path, params)
        ):
            return S3Error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your key and signing method.",
            )
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC
            )
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            return S3Error(400, "AuthorizationQueryParametersError", "Invalid X-Amz-Date")
        deadline = signed_at.timestamp() + expires
        if time.time() >= deadline:
            return S3Error(
                403,
                "AccessDenied",
                "Request has expired",
                {
                    "X-Amz-Expires": str(expires),
                    "Expires": datetime.fromtimestamp(deadline, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "ServerTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
        return None


class Corruption:
    """Objects the store serves damaged, by object key (``blobs/…/<blob id>``,
    ``zarr/<zarr id>/<key>``): every read of them, by any route, has the byte in the middle
    of the object flipped, as a disk or a copy gone bad would give. Set at run time with
    ``PUT /__emulator__/corrupt`` ``{"objects": [key, …]}`` (an empty list heals them all)."""

    def __init__(self) -> None:
        self.objects: frozenset[str] = frozenset()

    def source(self, key: str, source: ByteSource) -> ByteSource:
        return _Flipped(source) if key in self.objects and source.size else source


@dataclass(frozen=True)
class _Flipped:
    inner: ByteSource

    @property
    def size(self) -> int:
        return self.inner.size

    def read(self, start: int, end: int) -> bytes:
        data = self.inner.read(start, end)
        bad = self.size // 2
        if not start <= bad < end:
            return data
        i = bad - start
        return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


class CorruptionControl:
    """``GET|PUT /__emulator__/corrupt``: read or set :class:`Corruption` (never logged or
    faulted: it sits in front of the network middleware, as the other control routes do)."""

    PATH = "/__emulator__/corrupt"

    def __init__(self, app: ASGIApp, corruption: Corruption) -> None:
        self.app = app
        self.corruption = corruption

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.PATH:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if request.method == "PUT":
            try:
                body = CorruptObjects.model_validate_json(await request.body())
            except ValidationError as exc:
                await JSONResponse({"detail": exc.errors(include_url=False)}, 400)(
                    scope, receive, send
                )
                return
            self.corruption.objects = frozenset(body.objects)
        response = JSONResponse({"objects": sorted(self.corruption.objects)})
        await response(scope, receive, send)


class CorruptObjects(BaseModel):
    objects: list[str]


@dataclass
class S3Error:
    status: int
    code: str
    message: str
    extra: Mapping[str, str] | None = None

    def response(self, head: bool = False, headers: Mapping[str, str] | None = None) -> Response:
        request_id = secrets.token_hex(8).upper()
        parts = [f"<Code>{self.code}</Code>", f"<Message>{escape(self.message)}</Message>"]
        for key, value in (self.extra or {}).items():
            parts.append(f"<{key}>{escape(value)}</{key}>")
        parts.append(f"<RequestId>{request_id}</RequestId>")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
        ).encode()
        all_headers = {"x-amz-request-id": request_id, "Server": "AmazonS3", **(headers or {})}
        # S3 answers HEAD errors without a body.
        return Response(
            b"" if head else body,
            status_code=self.status,
            media_type="application/xml",
            headers=all_headers,
        )


def parse_range(header: str | None, size: int) -> tuple[int, int] | S3Error | None:
    """S3's reading of a Range header: ``(start, end_inclusive)``, None (send all) or 416."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # other units and multi-range: ignored, like S3
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first and not last:
        return None
    unsatisfiable = S3Error(
        416,
        "InvalidRange",
        "The requested range is not satisfiable",
        {"RangeRequested": header, "ActualObjectSize": str(size)},
    )
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        return unsatisfiable
    return start, min(end, size - 1)


class ObjectResponse(Response):
    """Streams ``[start, end]`` of a byte source in chunks (reads run in a worker thread)."""

    def __init__(
        self,
        source: ByteSource,
        start: int,
        end: int,
        status_code: int,
        headers: Mapping[str, str],
        head: bool,
    ) -> None:
        super().__init__(status_code=status_code, headers=dict(headers))
        self.source = source
        self.start = start
        self.end = end
        self.head = head
        self.headers["content-length"] = str(max(0, end - start + 1))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if self.head or self.end < self.start:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # Stop when the client goes away (as S3 does), not after pacing the rest to nobody.
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                pos = self.start
                while pos <= self.end:
                    stop = min(self.end + 1, pos + STREAM_CHUNK)
                    data = await anyio.to_thread.run_sync(self.source.read, pos, stop)
                    pos = stop
                    await send(
                        {"type": "http.response.body", "body": data, "more_body": pos <= self.end}
                    )
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await _until_disconnect(receive)
            group.cancel_scope.cancel()


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def serve_object(
    request: Request,
    source: ByteSource,
    etag: str,
    last_modified: datetime,
    content_type: str = "application/octet-stream",
) -> Response:
    """A GET/HEAD answer for one object, honouring one Range and the presigned overrides."""
    head = request.method == "HEAD"
    size = source.size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{etag}"',
        "Last-Modified": format_datetime(last_modified.astimezone(UTC), usegmt=True),
        "Content-Type": request.query_params.get("response-content-type", content_type),
        "x-amz-request-id": secrets.token_hex(8).upper(),
        "Server": "AmazonS3",
    }
    disposition = request.query_params.get("response-content-disposition")
    if disposition:
        headers["Content-Disposition"] = disposition
    wanted = parse_range(request.headers.get("range"), size)
    if isinstance(wanted, S3Error):
        return wanted.response(head, {"Content-Range": f"bytes */{size}"})
    if wanted is None:
        return ObjectResponse(source, 0, size - 1, 200, headers, head)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return ObjectResponse(source, start, end, 206, headers, head)
