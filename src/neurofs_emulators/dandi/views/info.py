"""``/api/info/``, ``/api/auth/token/``, ``/api/users/me/``: the server and who is asking."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.dandi import drf, models
from neurofs_emulators.dandi.metadata import (
    ALLOWED_SCHEMA_VERSIONS,
    INSTANCE_NAME,
    JUPYTERHUB_URL,
    SCHEMA_VERSION,
    SERVER_VERSION,
    WEB_APP_URL,
)
from neurofs_emulators.dandi.views.base import json_response
from neurofs_emulators.dandi.views.serializers import Serializers


class InfoViews(Serializers):
    """The server's description, the caller's token and user."""

    async def info(self, request: Request) -> Response:
        self.authenticate(request)
        origin = self.api_origin(request)
        payload = {
            "instance_config": {
                "instance_name": INSTANCE_NAME,
                "instance_identifier": "RRID:SCR_017571",
                "instance_url": WEB_APP_URL,
                "doi_prefix": None,
                "licenses": ["spdx:CC0-1.0", "spdx:CC-BY-4.0"],
            },
            "schema_version": SCHEMA_VERSION,
            "schema_url": f"{origin}/api/schemas/?model=Dandiset",
            "allowed_schema_versions": ALLOWED_SCHEMA_VERSIONS,
            "version": SERVER_VERSION,
            "services": {
                "api": {"url": f"{origin}/api"},
                "webui": {"url": WEB_APP_URL},
                "jupyterhub": {"url": JUPYTERHUB_URL},
            },
            # dandi-cli reads these hyphenated names to refuse too-old clients.
            "cli-minimal-version": "0.74.0",
            "cli-requires-python": ">=3.10",
            "cli-bad-versions": [],
        }
        return json_response(models.ServerInfo.model_validate(payload))

    async def auth_token(self, request: Request) -> Response:
        user = self.authenticate(request)
        if user is None:
            raise drf.not_authenticated()
        return json_response(user.token)

    async def users_me(self, request: Request) -> Response:
        user = self.authenticate(request)
        if user is None:
            raise drf.not_authenticated()
        return json_response(
            models.UserDetail(
                username=user.username, name=user.name, admin=user.admin, status=user.status
            )
        )
