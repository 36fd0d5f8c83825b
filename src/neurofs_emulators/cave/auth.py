"""middle_auth_client, as every CAVE service runs it in front of its routes.

``auth_required`` (any valid token) and ``auth_requires_permission`` (a permission on the
dataset a resource belongs to) follow middle_auth_client's decorators:

- The token comes from the ``middle_auth_token`` cookie, overridden by ``?middle_auth_token=``,
  overridden by an ``Authorization: Bearer <token>`` header. A non-Bearer Authorization header
  is a 400 ``bad_auth_header``.
- "Programmatic" requests (an Authorization, ``X-Requested-With`` or ``Origin`` header) get JSON
  errors: 401 ``no_token`` / ``invalid_token``, 403 ``missing_permission`` / ``missing_tos``.
  Other requests are treated as a browser: no or a bad token redirects (302) to the
  authorize page, and a ``?middle_auth_token=`` redirects to the same URL without it while
  setting the cookie. (The real cookie is ``Secure``; the emulator serves plain http on
  loopback, where a Secure cookie would never come back, so it leaves that flag off.)
- A resource the auth service does not know (unknown datastack or aligned volume) is a 400
  ``invalid_table_id``.

The error bodies are ``flask.jsonify`` output, with the real ``WWW-Authenticate`` headers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.cave.http import flask_json
from neurofs_emulators.cave.sample import (
    ALIGNED_VOLUME,
    AUTH_DATASET,
    DATASTACK,
    PCG_TABLE,
    TOS_DOCUMENT_ID,
    TOS_NAME,
    USERS,
    User,
)

TOKEN_NAME = "middle_auth_token"

# resource namespace → resource name → permission group ("dataset") in the auth service.
RESOURCES: dict[str, dict[str, str]] = {
    "datastack": {DATASTACK: AUTH_DATASET},
    "aligned_volume": {ALIGNED_VOLUME: AUTH_DATASET},
    # The ChunkedGraph's routes name their graph's table.
    "table": {PCG_TABLE: AUTH_DATASET},
}


class AuthRefused(Exception):
    """The request was answered by the auth layer; ``response`` is what it sends."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _error(
    status: int,
    code: str,
    message: str,
    data: dict[str, Any] | None = None,
    www_authenticate: str | None = None,
) -> AuthRefused:
    body: dict[str, Any] = {"error": code, "message": message}
    if data is not None:
        body["data"] = data
    headers = {"WWW-Authenticate": www_authenticate} if www_authenticate else None
    return AuthRefused(flask_json(body, status, headers))


def _redirect(location: str, cookie: str | None = None) -> AuthRefused:
    response = Response(status_code=302, headers={"Location": location})
    if cookie is not None:
        response.set_cookie(TOKEN_NAME, cookie, httponly=True)
    return AuthRefused(response)


@dataclass
class Authenticator:
    """middle_auth_client bound to the emulator's users; ``sticky_auth_url`` gives the auth
    service's base URL (``<global>/sticky_auth``) as seen by a request."""

    sticky_auth_url: Callable[[Request], str]
    users: dict[str, User] | None = None

    def _users(self) -> dict[str, User]:
        return self.users if self.users is not None else USERS

    @staticmethod
    def programmatic(request: Request) -> bool:
        headers = request.headers
        return bool(
            headers.get("authorization") or headers.get("x-requested-with") or headers.get("origin")
        )

    def user(self, request: Request) -> User:
        """``auth_required``: the calling user, or :class:`AuthRefused`."""
        authorize = self.sticky_auth_url(request) + "/api/v1/authorize"
        token = request.cookies.get(TOKEN_NAME)
        query_token = request.query_params.get(TOKEN_NAME)
        if query_token:
            token = query_token
        header = request.headers.get("authorization")
        if header:
            if not header.startswith("Bearer "):
                raise _error(
                    400,
                    "bad_auth_header",
                    "Authorization header must begin with 'Bearer'",
                    www_authenticate=f'Bearer realm="{authorize}", error="invalid_request", '
                    "error_description=\"Header must begin with 'Bearer'\"",
                )
            token = header.split(" ")[1]
        programmatic = self.programmatic(request)
        if programmatic:
            if not token:
                raise _error(
                    401,
                    "no_token",
                    "Unauthorized - No Token Provided",
                    www_authenticate=f'Bearer realm="{authorize}"',
                )
        elif query_token:
            kept = [
                (k, v)
                for k, v in request.query_params.multi_items()
                if k not in (TOKEN_NAME, "token")
            ]
            url = str(request.url.replace(query=urlencode(kept)))
            if not kept:
                url = url.rstrip("?")
            raise _redirect(url, cookie=query_token)
        user = self._users().get(token) if token else None
        if user is not None:
            return user
        if not programmatic:
            raise _redirect(authorize + "?redirect=" + quote(str(request.url)))
        raise _error(
            401,
            "invalid_token",
            "Unauthorized - Token is Invalid or Expired",
            www_authenticate=f'Bearer realm="{authorize}", error="invalid_token", '
            'error_description="Invalid/Expired Token"',
        )

    def require(
        self, request: Request, permission: str, resource: str, namespace: str = "datastack"
    ) -> User:
        """``auth_requires_permission(permission, table_arg=..., resource_namespace=...)``."""
        user = self.user(request)
        dataset = RESOURCES.get(namespace, {}).get(resource)
        if dataset is None:
            raise _error(
                400,
                "invalid_table_id",
                "Invalid table_id for service",
                data={"table_id": resource, "resource_namespace": namespace},
            )
        if dataset == AUTH_DATASET and permission in user.permissions and user.accepted_tos:
            return user
        if not user.accepted_tos and permission in user.permissions:
            form = f"{self.sticky_auth_url(request)}/api/v1/tos/{TOS_DOCUMENT_ID}/accept"
            if self.programmatic(request):
                raise _error(
                    403,
                    "missing_tos",
                    "Need to accept Terms of Service to access resource.",
                    data={"tos_id": TOS_DOCUMENT_ID, "tos_name": TOS_NAME, "tos_form_url": form},
                )
            raise _redirect(form + "?redirect=" + quote(str(request.url)))
        raise _error(
            403,
            "missing_permission",
            f"Missing permission: {permission} for dataset {dataset}",
            data={"required_permission": permission, "auth_dataset": dataset},
        )
