"""The CAVE emulator's "who am I" route (middle_auth's ``/auth/api/v1/user/cache``), and
neurofs's model of its answer (``CaveApi.me``)."""

from __future__ import annotations

import httpx

from neurofs.sources.cave.models import User
from neurofs.sources.payloads import validated
from neurofs_emulators.cave.sample import (
    AUTH_DATASET,
    EDITOR_TOKEN,
    OTHER_TOKEN,
    OWNER_TOKEN,
    TOS_TOKEN,
)
from neurofs_emulators.launch import RunningEmulator


def _user_cache(cave: RunningEmulator, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{cave.urls[0]}/auth/api/v1/user/cache", headers=headers)


def test_user_cache_names_the_tokens_user(cave: RunningEmulator) -> None:
    r = _user_cache(cave, {"Authorization": f"Bearer {OWNER_TOKEN}"})
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "Olivia Owner" and body["email"] == "olivia@neurofs.invalid"
    assert body["permissions_v2"] == {AUTH_DATASET: ["view", "edit"]}
    assert body["missing_tos"] == []
    other = _user_cache(cave, {"Authorization": f"Bearer {OTHER_TOKEN}"}).json()
    assert other["name"] == "Oscar Other" and other["permissions_v2"] == {AUTH_DATASET: ["view"]}


def test_user_cache_gives_permissions_as_levels(cave: RunningEmulator) -> None:
    """middle_auth's ``create_cache``: ``permissions`` maps each dataset to the highest level
    held (view 1, edit 2), and neurofs's model of the answer reads it."""
    levels = {}
    for token in (OWNER_TOKEN, EDITOR_TOKEN, OTHER_TOKEN):
        body = _user_cache(cave, {"Authorization": f"Bearer {token}"}).json()
        user = validated(User, body, "user")
        assert user.permissions == body["permissions"]
        levels[token] = user.permissions
    assert levels == {
        OWNER_TOKEN: {AUTH_DATASET: 2},
        EDITOR_TOKEN: {AUTH_DATASET: 2},
        OTHER_TOKEN: {AUTH_DATASET: 1},
    }


def test_user_cache_answers_a_token_without_terms_of_service(cave: RunningEmulator) -> None:
    """A dataset whose terms are not accepted is in neither permission map; it is named in
    ``missing_tos`` and kept in ``permissions_v2_ignore_tos``."""
    body = _user_cache(cave, {"Authorization": f"Bearer {TOS_TOKEN}"}).json()
    assert body["name"] == "Tess Newcomer"
    assert body["permissions"] == {} and body["permissions_v2"] == {}
    assert body["permissions_v2_ignore_tos"] == {AUTH_DATASET: ["view", "edit"]}
    assert [t["dataset_name"] for t in body["missing_tos"]] == [AUTH_DATASET]
    user = validated(User, body, "user")
    assert user.note == "terms of service not accepted"


def test_user_cache_refuses_a_bad_or_missing_token(cave: RunningEmulator) -> None:
    bad = _user_cache(cave, {"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    none = _user_cache(cave, {"X-Requested-With": "XMLHttpRequest"})
    assert none.status_code == 401 and none.json()["error"] == "no_token"
