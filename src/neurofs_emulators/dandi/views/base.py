"""What the DANDI API's views share: the archive and its origins, authentication, the
look-ups of the objects a path names, and the checks every write makes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from neurofs_emulators.dandi import drf, models, writes
from neurofs_emulators.dandi.archive import Archive, Asset, Dandiset, User, Version
from neurofs_emulators.dandi.blobstore import Corruption, Signer
from neurofs_emulators.dandi.drf import APIError
from neurofs_emulators.service import Origins


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Django REST framework's JSON (compact, UTF-8); a pydantic payload is dumped first."""
    if isinstance(payload, models.Payload):
        payload = payload.dump()
    return JSONResponse(payload, status_code=status, headers=headers)


class Views:
    """The state every view works on, and what the views of all resources check first:
    who is asking, and whether the dandiset, version or asset named in the path exists
    for them. All state lives in the :class:`Archive`."""

    def __init__(
        self,
        archive: Archive,
        origins: Origins,
        signer: Signer,
        validation_delay: float = writes.DEFAULT_VALIDATION_DELAY,
    ) -> None:
        self.archive = archive
        self.origins = origins
        self.signer = signer
        self.validation_delay = validation_delay
        self.corruption = Corruption()

    def settle(self) -> None:
        """Finish the emulated background validation that is due (before each request)."""
        writes.settle(self.archive)

    def authenticate(self, request: Request) -> User | None:
        """DRF TokenAuthentication: only the ``token`` scheme is checked, case-insensitively."""
        header = request.headers.get("authorization")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != "token":
            return None
        if len(parts) == 1:
            raise drf.authentication_failed("Invalid token header. No credentials provided.")
        if len(parts) > 2:
            raise drf.authentication_failed(
                "Invalid token header. Token string should not contain spaces."
            )
        user = self.archive.user_for_token(parts[1])
        if user is None:
            raise drf.authentication_failed("Invalid token.")
        return user

    @staticmethod
    def api_origin(request: Request) -> str:
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return f"{request.url.scheme}://{host}"

    def blob_origin(self, request: Request) -> str:
        if self.origins.second_port is None:
            return self.api_origin(request)
        return self.origins.second_url(request)

    def require_dandiset_access(self, dandiset: Dandiset, user: User | None) -> None:
        if dandiset.is_open:
            return
        if user is None:
            raise drf.not_authenticated()
        if not self.archive.is_owner(user, dandiset):
            raise drf.permission_denied()

    def get_dandiset(self, request: Request) -> Dandiset:
        dandiset = self.archive.dandisets.get(request.path_params["dandiset_id"])
        if dandiset is None:
            raise drf.not_found()
        return dandiset

    def get_version(self, request: Request, user: User | None) -> Version:
        dandiset = self.get_dandiset(request)
        self.require_dandiset_access(dandiset, user)
        version = dandiset.versions.get(request.path_params["version"])
        if version is None:
            raise drf.not_found()
        return version

    def nested_asset(self, request: Request, user: User | None) -> Asset:
        version = self.get_version(request, user)
        asset = version.asset_by_id(request.path_params["asset_id"])
        if asset is None:
            raise drf.not_found()
        return asset

    def top_level_asset(self, request: Request, user: User | None) -> Asset:
        asset = self.archive.asset(request.path_params["asset_id"])
        if asset is None:
            raise drf.not_found()
        if asset.is_embargoed:
            if user is None:
                raise drf.not_authenticated()
            if not user.admin and not any(
                self.archive.is_owner(user, d) for d in self.archive.asset_dandisets(asset)
            ):
                raise drf.permission_denied()
        return asset

    # Checks of writes, in the order of the real views: authentication and DRF's permission
    # classes (an anonymous write is a 401), django-guardian's owner check (dandiset 404,
    # else a bare 403), the version lookup, then the view's own checks, the body, the
    # service's checks.

    def require_owner(self, request: Request, user: User | None) -> Dandiset:
        if user is None:
            raise drf.not_authenticated()
        if not user.admin and user.status != "APPROVED":
            raise drf.permission_denied()  # IsApprovedOrReadOnly
        dandiset = self.get_dandiset(request)
        if not self.archive.is_owner(user, dandiset):
            raise drf.guardian_forbidden()
        return dandiset

    def lookup_version(self, request: Request, dandiset: Dandiset) -> Version:
        version = dandiset.versions.get(request.path_params["version"])
        if version is None:
            raise drf.not_found()
        return version

    @staticmethod
    def require_draft(version: Version) -> None:
        if not version.is_draft:
            # DraftDandisetNotModifiableError, or the version view's own answer: same body.
            raise APIError(405, "Only draft versions can be modified.")

    @staticmethod
    def require_not_unembargoing(dandiset: Dandiset) -> None:
        if dandiset.embargo_status == "UNEMBARGOING":
            raise APIError(400, "Dandiset modification not allowed during unembargo")
