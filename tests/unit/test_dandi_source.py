"""DANDI source pieces that a mount test cannot easily provoke."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from neurofs.io.http import LinkExpired
from neurofs.sources.dandi.api import link_expiry
from neurofs.sources.dandi.models import Asset
from neurofs.sources.dandi.tree import DandiBlob, build_index


class FakeHttp:
    def __init__(self, expired: set[str]) -> None:
        self.expired = expired
        self.calls: list[str] = []

    async def get_range(self, url: str, start: int, end: int, total: int) -> bytes:
        self.calls.append(url)
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
    blob = DandiBlob(api, "aid", "bid", 100)  # type: ignore[arg-type]
    assert await blob.fetch(0, 10) == b"x" * 10
    assert api.http.calls == ["http://s3/old", "http://s3/new"]
    assert api.forgotten == [("asset", "aid")]


async def test_link_that_stays_refused_is_access_denied():
    api = FakeApi(
        ["http://s3/a", "http://s3/b", "http://s3/c"], expired={"http://s3/a", "http://s3/b"}
    )
    with pytest.raises(LinkExpired):
        await DandiBlob(api, "aid", "bid", 100).fetch(0, 10)  # type: ignore[arg-type]


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
