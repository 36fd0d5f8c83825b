"""The official ``dandi`` client on the scale sample's dandiset of 100,000 assets (000100,
``--sample large``): its listing, filters, metadata and downloads work on the computed
dandiset as on the real archive."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from neurofs.io.digests import dandi_etag
from neurofs_emulators.dandi.large_dandiset import (
    ASSET_COUNT,
    LARGE_DANDISET,
    LARGE_RELEASE,
    ComputedAssets,
    asset_path,
)
from neurofs_emulators.launch import RunningEmulator, start_emulator

from .conftest import ClientRunner

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def large() -> Iterator[RunningEmulator]:
    with start_emulator("dandi", ["--sample", "large"]) as running:
        yield running


def test_client_lists_and_reads_the_large_dandiset(
    run_client: ClientRunner, large: RunningEmulator
) -> None:
    i = 31_416
    result = run_client(
        f"""
        import hashlib
        from pathlib import Path
        from dandi.dandiapi import DandiAPIClient
        from dandischema.models import PublishedAsset
        client = DandiAPIClient(api_url=API_URL)
        draft = client.get_dandiset("{LARGE_DANDISET}", "draft")
        release = client.get_dandiset("{LARGE_DANDISET}", "{LARGE_RELEASE}")
        paths = [a.path for a in draft.get_assets()]
        asset = release.get_asset_by_path("{asset_path(i)}")
        PublishedAsset.model_validate(asset.get_raw_metadata())
        target = Path(TMP) / "one.bin"
        asset.download(target)
        emit({{
            "count": len(paths),
            "unique": len(set(paths)),
            "first_last": [paths[0], paths[-1]],
            "release_count": release.version.asset_count,
            "prefix": [a.path for a in draft.get_assets_with_path_prefix("sub-0042/ses-03/")],
            "glob": sum(1 for _ in draft.get_assets_by_glob("*run-099.bin")),
            "asset": [asset.identifier, asset.size, asset.get_raw_digest()],
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        }})
        """,
        NEUROFS_TEST_API_URL=large.api_url,
    )
    truth = ComputedAssets(0)
    assert result["count"] == result["unique"] == ASSET_COUNT
    assert result["first_last"] == [asset_path(0), asset_path(ASSET_COUNT - 1)]
    assert result["release_count"] == ASSET_COUNT
    assert result["prefix"] == [asset_path(42_300 + r) for r in range(100)]
    assert result["glob"] == 1000
    data = truth.blob(i).source.read(0, truth.size(i))
    assert result["asset"] == [truth.asset_id(i), truth.size(i), dandi_etag(data)]
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
