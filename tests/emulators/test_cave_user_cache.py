"""The CAVE emulator's "who am I" route (middle_auth's ``/auth/api/v1/user/cache``)."""

from __future__ import annotations

import httpx

from neurofs.emulators.cave.sample import AUTH_DATASET, OTHER_TOKEN, OWNER_TOKEN, TOS_TOKEN
from neurofs.emulators.launch import RunningEmulator


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


def test_user_cache_answers_a_token_without_terms_of_service(cave: RunningEmulator) -> None:
    body = _user_cache(cave, {"Authorization": f"Bearer {TOS_TOKEN}"}).json()
    assert body["name"] == "Tess Newcomer"
    assert body["permissions_v2"] == {AUTH_DATASET: []}
    assert [t["tos_id"] for t in body["missing_tos"]] != []


def test_user_cache_refuses_a_bad_or_missing_token(cave: RunningEmulator) -> None:
    bad = _user_cache(cave, {"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    none = _user_cache(cave, {"X-Requested-With": "XMLHttpRequest"})
    assert none.status_code == 401 and none.json()["error"] == "no_token"
