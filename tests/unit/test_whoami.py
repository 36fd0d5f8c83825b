"""The services' "who am I" answers as models, and asking a source who we are there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio

from neurofs.config import SourceConfig
from neurofs.errors import RemoteError
from neurofs.io.http import HttpClient, RetryPolicy
from neurofs.io.stats import Stats
from neurofs.sources import identity
from neurofs.sources.cave.api import CaveApi
from neurofs.sources.cave.models import User as CaveUser
from neurofs.sources.dandi.api import DandiApi
from neurofs.sources.dandi.models import User as DandiUser
from neurofs.sources.webknossos.api import WebknossosApi
from neurofs.sources.webknossos.models import User as WkUser

TOKEN = "s3cret-token-value-0123456789"

# DANDI ``GET users/me/`` (UserDetailSerializer).
DANDI_ME = {
    "admin": False,
    "name": "Olivia Owner",
    "username": "neurofs-owner",
    "status": "APPROVED",
}

# WEBKNOSSOS ``GET api/v<N>/user`` (scalableminds/webknossos ``UserController``), with
# fields neurofs ignores.
WK_ME = {
    "id": "570b9f4d2a7c0e4d008da6ef",
    "email": "scmboy@scalableminds.com",
    "firstName": "SCM",
    "lastName": "Boy",
    "isAdmin": True,
    "isOrganizationOwner": True,
    "isDatasetManager": True,
    "isActive": True,
    "teams": [{"id": "570b9f4b2a7c0e3b008da6ec", "name": "team_X1", "isTeamManager": True}],
    "experiences": {"abc": 5},
    "lastActivity": 1460379469053,
    "isAnonymous": False,
    "isEditable": True,
    "organization": "sample_organization",
    "novelUserExperienceInfos": {},
    "selectedTheme": "auto",
    "created": 1460379469000,
    "lastTaskTypeId": None,
    "isSuperUser": True,
    "isEmailVerified": True,
}

# middle_auth ``GET auth/api/v1/user/cache`` (``create_cache``: ``permissions`` holds the
# highest level per dataset, 1 view and 2 edit; a dataset whose terms are not accepted is in
# neither permission map).
CAVE_ME = {
    "id": 101,
    "name": "Olivia Owner",
    "email": "olivia@neurofs.invalid",
    "admin": False,
    "service_account": False,
    "groups": ["minnie65_phase3"],
    "parents": [],
    "permissions": {"minnie65_phase3": 2},
    "permissions_v2": {"minnie65_phase3": ["view", "edit"]},
    "missing_tos": [],
}
CAVE_TOS = {
    **CAVE_ME,
    "permissions": {},
    "permissions_v2": {},
    "missing_tos": [{"tos_id": 7, "tos_name": "MICrONS Public Terms", "dataset_id": 3}],
}


# ------------------------------------------------------------------ models


def test_dandi_user():
    user = DandiUser.model_validate(DANDI_ME)
    assert user.display == "neurofs-owner (Olivia Owner)" and user.note is None
    assert DandiUser.model_validate({"username": "u", "name": ""}).display == "u"
    pending = DandiUser.model_validate({**DANDI_ME, "status": "PENDING", "extra": 1})
    assert pending.note == "account pending"


def test_webknossos_user():
    user = WkUser.model_validate(WK_ME)
    assert user.display == "SCM Boy <scmboy@scalableminds.com>"
    assert user.organization == "sample_organization" and user.is_admin
    assert WkUser.model_validate({"id": "x", "email": "a@b.c"}).display == "a@b.c"
    assert WkUser.model_validate({"id": "x", "firstName": "Ann"}).display == "Ann"


def test_cave_user():
    user = CaveUser.model_validate(CAVE_ME)
    assert user.display == "Olivia Owner <olivia@neurofs.invalid>" and user.note is None
    assert user.permissions_v2 == {"minnie65_phase3": ["view", "edit"]}
    assert user.permissions == {"minnie65_phase3": 2}
    tos = CaveUser.model_validate(CAVE_TOS)
    assert tos.note == "terms of service not accepted"
    assert tos.missing_tos[0].tos_id == 7 and tos.missing_tos[0].tos_name


@pytest.mark.parametrize(
    ("model", "body"),
    [(DandiUser, {"name": "no username"}), (WkUser, {"email": "no id"}), (CaveUser, ["x"])],
)
def test_a_malformed_answer_does_not_validate(model: Any, body: Any):
    with pytest.raises(ValueError):
        model.model_validate(body)


# ------------------------------------------------------------------ the "who am I" calls

Handler = Callable[[httpx.Request], httpx.Response]


def _http(url: str, handler: Handler, headers: dict[str, str] | None) -> HttpClient:
    return HttpClient(
        "t",
        url,
        Stats(),
        auth_headers=headers,
        retry=RetryPolicy(total_seconds=0.3, first_backoff=0.01, min_answer_seconds=1.0),
        transport=httpx.MockTransport(handler),
    )


def _server(public: dict[str, Any], private: dict[str, Any], header: str, expected: str) -> Handler:
    """Answers ``public`` routes to anyone, ``private`` ones only with ``header: expected``
    (else 401), anything else 404."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in public:
            return httpx.Response(200, json=public[path])
        if path not in private:
            return httpx.Response(404, json={"detail": "Not found."})
        if request.headers.get(header) != expected:
            return httpx.Response(401, json={"detail": "Invalid token."})
        return httpx.Response(200, json=private[path])

    return handler


BUILDINFO = {"httpApiVersioning": {"currentApiVersion": 14, "oldestSupportedApiVersion": 5}}


def _dandi(token: str | None, body: Any = DANDI_ME) -> tuple[DandiApi, str]:
    public = {"/api/info/": {"version": "0.4"}}
    handler = _server(public, {"/api/users/me/": body}, "Authorization", f"token {TOKEN}")
    headers = {"Authorization": f"token {token}"} if token else None
    api = DandiApi(_http("http://dandi.test/api", handler, headers), authenticated=bool(token))
    return api, "info/"


def _wk(token: str | None) -> tuple[WebknossosApi, str]:
    config = SourceConfig(kind="webknossos", name="w", url="http://wk.test", token=token)
    api = WebknossosApi(config, Stats(), None)
    public = {"/api/buildinfo": BUILDINFO}
    handler = _server(public, {"/api/v14/user": WK_ME}, "X-Auth-Token", TOKEN)
    api.http = _http(config.url, handler, {"X-Auth-Token": token} if token else None)
    return api, "api/buildinfo"


def _cave(token: str, body: Any = CAVE_ME) -> tuple[CaveApi, str]:
    config = SourceConfig(kind="cave", name="c", url="http://cave.test", token=token)
    api = CaveApi(config, Stats(), None)
    public = {"/schema/api/v2/type": ["synapse"]}
    private = {"/auth/api/v1/user/cache": body}
    handler = _server(public, private, "Authorization", f"Bearer {TOKEN}")
    api.http = _http(config.url, handler, {"Authorization": f"Bearer {token}"})
    return api, "schema/api/v2/type"


async def _ask(api: Any, probe: str) -> identity.SourceIdentity:
    result = identity.SourceIdentity("s", "k", "http://x", False, None, "unknown")
    try:
        await identity._ask(api, probe, result)
    finally:
        await api.http.aclose()
    return result


async def test_me_returns_the_model():
    dandi, _ = _dandi(TOKEN)
    assert (await dandi.me()).username == "neurofs-owner"
    await dandi.http.aclose()
    wk, _ = _wk(TOKEN)
    assert (await wk.me()).email == WK_ME["email"]
    await wk.http.aclose()
    cave, _ = _cave(TOKEN)
    assert (await cave.me()).id == 101
    await cave.http.aclose()


async def test_an_unexpected_me_answer_is_a_remote_error():
    dandi, _ = _dandi(TOKEN, body=["not", "a", "user"])
    with pytest.raises(RemoteError, match="unexpected answer"):
        await dandi.me()
    await dandi.http.aclose()


@pytest.mark.parametrize("make", [_dandi, _wk, _cave])
async def test_signed_in(make: Any):
    result = await _ask(*make(TOKEN))
    assert result.reachable and result.auth == "signed in" and result.ok
    assert result.user and result.note is None and result.error is None


@pytest.mark.parametrize("make", [_dandi, _wk, _cave])
async def test_token_refused(make: Any):
    result = await _ask(*make("wrong-token"))
    assert result.reachable and result.auth == "token refused" and not result.ok
    assert result.note is not None and result.note.startswith("HTTP 401")


@pytest.mark.parametrize("make", [_dandi, _wk])
async def test_anonymous(make: Any):
    result = await _ask(*make(None))
    assert result.reachable and result.auth == "anonymous" and result.ok


async def test_terms_of_service_not_accepted_is_signed_in_with_a_note():
    result = await _ask(*_cave(TOKEN, body=CAVE_TOS))
    assert result.auth == "signed in" and result.ok
    assert result.note == "terms of service not accepted"


async def test_an_unexpected_me_answer_leaves_the_state_unknown():
    result = await _ask(*_dandi(TOKEN, body={"name": "no username"}))
    assert result.reachable and result.auth == "unknown" and result.ok
    assert result.note is not None and "unexpected answer" in result.note


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_unreachable():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    api = DandiApi(_http("http://dandi.test/api", down, None), authenticated=False)
    result = await _ask(api, "info/")
    assert not result.reachable and not result.ok and result.auth == "unknown"
    assert result.error and "ConnectError" in result.error


@pytest.mark.expect_log(r"WARNING neurofs\.io\.http: GET .*: giving up after \d+ tries")
async def test_identify_masks_the_token_and_answers_quickly():
    config = SourceConfig(kind="dandi", name="gone", url="http://127.0.0.1:9/api", token=TOKEN)
    with trio.fail_after(15):
        result = await identity.identify(config, budget=0.5)
    assert not result.reachable and result.error
    assert TOKEN not in repr(result)
