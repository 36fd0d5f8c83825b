"""DANDI source pieces that a mount test cannot easily provoke."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest
import trio

from neurofs.io.http import LinkExpired
from neurofs.sources.dandi.api import link_expiry
from neurofs.sources.dandi.models import Asset
from neurofs.sources.dandi.tree import DandiBlob, build_index
from neurofs.sources.dandi.zarr_keys import ZarrKeys, public_prefix


class FakeHttp:
    """Range reads, and a shared tier that takes public bytes only."""

    def __init__(self, expired: set[str]) -> None:
        self.expired = expired
        self.calls: list[str] = []
        self.shared: list[str | None] = []

    def shareable(self, key: str, *, private: bool) -> str | None:
        return None if private else key

    async def get_range(
        self, url: str, start: int, end: int, total: int, *, shared: str | None = None
    ) -> bytes:
        self.calls.append(url)
        self.shared.append(shared)
        if url in self.expired:
            raise LinkExpired(url)
        return b"x" * (end - start)


class FakeApi:
    def __init__(self, links: list[str], expired: set[str]) -> None:
        self.links = links
        self.http = FakeHttp(expired)
        self.forgotten: list[tuple[str, ...]] = []

    async def blob_url(self, asset_id: str) -> str:
        return self.links[0]

    def forget_link(self, key: tuple[str, ...]) -> None:
        self.forgotten.append(key)
        self.links.pop(0)


async def test_expired_link_is_resolved_again_once():
    api = FakeApi(["http://s3/old", "http://s3/new"], expired={"http://s3/old"})
    blob = DandiBlob(api, "aid", "bid", 100, embargoed=False)  # type: ignore[arg-type]
    assert await blob.fetch(0, 10) == b"x" * 10
    assert api.http.calls == ["http://s3/old", "http://s3/new"]
    assert api.forgotten == [("asset", "aid")]


async def test_link_that_stays_refused_is_access_denied():
    api = FakeApi(
        ["http://s3/a", "http://s3/b", "http://s3/c"], expired={"http://s3/a", "http://s3/b"}
    )
    with pytest.raises(LinkExpired):
        await DandiBlob(api, "aid", "bid", 100, embargoed=False).fetch(0, 10)  # type: ignore[arg-type]


def test_link_expiry_reads_amz_parameters():
    url = "https://b.s3.amazonaws.com/x?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600"
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert link_expiry(url, now=0) == start + 3600
    assert link_expiry("https://b/x", now=100) == 100 + 3600


def test_index_builds_folders_with_newest_mtimes_and_safe_names():
    def asset(path: str, day: int) -> Asset:
        t = datetime(2024, 1, day, tzinfo=UTC)
        return Asset(asset_id=path, blob="b", path=path, size=day, created=t, modified=t)

    index = build_index(
        [asset("a/b/c.nwb", 1), asset("a/d.nwb", 3), asset("top.txt", 2), asset("x/../evil", 4)]
    )
    assert set(index[""]) == {"a", "top.txt", "x"}
    assert (
        index[""]["a"].is_folder
        and index[""]["a"].mtime == datetime(2024, 1, 3, tzinfo=UTC).timestamp()
    )
    assert set(index["a"]) == {"b", "d.nwb"}
    assert set(index["x"]) == {"\uff0e\uff0e"}  # '..' cannot escape


# ---------------------------------------------------------------- zarr keys

ZID = "42b202ce-3304-4789-b10c-76c10b5f23d9"
SIGNED = "?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=ab"


def test_public_prefix_is_the_presigned_url_without_key_and_query():
    real = f"https://dandiarchive.s3.amazonaws.com/zarr/{ZID}/"
    assert public_prefix(f"{real}0/1.2.3{SIGNED}", ZID, "0/1.2.3") == real
    path_style = f"http://127.0.0.1:9/dandiarchive/zarr/{ZID}/"
    assert public_prefix(f"{path_style}a%20b/.zarray{SIGNED}", ZID, "a b/.zarray") == path_style
    other = f"https://b.s3.amazonaws.com/other/0/1.2.3{SIGNED}"
    assert public_prefix(other, ZID, "0/1.2.3") is None


class FakeZarrApi:
    """Presigned URLs under ``s3/zarr/<id>/``; ``refused`` URLs answer 403."""

    def __init__(self, refused: set[str]) -> None:
        self.resolved: list[str] = []
        self.forgotten: list[tuple[str, ...]] = []
        self.http = FakeHttp(refused)

    async def zarr_file_url(self, zarr_id: str, key: str) -> str:
        self.resolved.append(key)
        await trio.sleep(0.01)  # lets parallel first reads overlap
        return f"http://s3/zarr/{zarr_id}/{key}{SIGNED}"

    def forget_link(self, key: tuple[str, ...]) -> None:
        self.forgotten.append(key)


async def test_parallel_first_reads_of_a_zarr_resolve_one_redirect():
    api = FakeZarrApi(refused=set())
    keys = ZarrKeys(api)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(
                partial(keys.fetch, ZID, f"0/{i}", 100, 0, 10, embargoed=False, content_id="c")
            )
    assert len(api.resolved) == 1
    assert sorted(api.http.calls) == sorted(f"http://s3/zarr/{ZID}/0/{i}" for i in range(10))


async def test_key_refused_by_both_routes_leaves_the_zarr_on_the_direct_route():
    gone = f"http://s3/zarr/{ZID}/0/9"
    api = FakeZarrApi(refused={gone, gone + SIGNED})
    keys = ZarrKeys(api)  # type: ignore[arg-type]
    with pytest.raises(LinkExpired):
        await keys.fetch(ZID, "0/9", 100, 0, 10, embargoed=False, content_id="c")
    assert set(api.forgotten) == {("zarr", ZID, "0/9")}
    api.http.calls.clear()
    assert await keys.fetch(ZID, "0/1", 100, 0, 10, embargoed=False, content_id="c") == b"x" * 10
    assert api.http.calls == [f"http://s3/zarr/{ZID}/0/1"]


async def test_embargoed_zarr_keys_are_always_presigned():
    api = FakeZarrApi(refused=set())
    keys = ZarrKeys(api)  # type: ignore[arg-type]
    for key in ("0/1", "0/2"):
        await keys.fetch(ZID, key, 100, 0, 10, embargoed=True, content_id="c")
    assert api.http.calls == [f"http://s3/zarr/{ZID}/0/{i}{SIGNED}" for i in (1, 2)]
    assert api.http.shared == [None, None]  # private bytes never go through the shared tier


async def test_public_bytes_are_offered_to_the_shared_tier_under_their_identity():
    api = FakeZarrApi(refused=set())
    keys = ZarrKeys(api)  # type: ignore[arg-type]
    await keys.fetch(ZID, "0/1", 100, 0, 10, embargoed=False, content_id="dandi-zarr:z/0/1@e")
    assert api.http.shared == ["dandi-zarr:z/0/1@e"]
    blobs = FakeApi(["http://s3/a"], expired=set())
    await DandiBlob(blobs, "aid", "bid", 100, embargoed=False).fetch(0, 10)  # type: ignore[arg-type]
    await DandiBlob(blobs, "aid", "bid", 100, embargoed=True).fetch(0, 10)  # type: ignore[arg-type]
    assert blobs.http.shared == ["dandi-blob:bid", None]
