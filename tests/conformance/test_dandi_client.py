"""The official ``dandi`` client (PyPI, in .venv-conformance) against the DANDI emulator.

If the real client works against the emulator, and its validators accept what the emulator
serves, the emulator has not drifted from the real archive where neurofs relies on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from neurofs_emulators.dandi.sample import (
    BIG_BLOB_KEY,
    BIG_BLOB_PATH,
    BIG_BLOB_SIZE,
    DRAFT_ONLY_PATH,
    EMBARGOED_BLOB_PATH,
    EMBARGOED_ZARR_PATH,
    LARGE_ZARR_PATH,
    NWB_PATH,
    OWNER_TOKEN,
    RELEASE_VERSION,
    SampleArchive,
)
from neurofs_emulators.launch import RunningEmulator, start_emulator

from .conftest import ClientRunner

pytestmark = pytest.mark.conformance

SMALL_000003 = "sub-013/ses-03/behavior/sub-013_ses-03_run-2_behavior.json"


def test_list_dandisets(run_client: ClientRunner) -> None:
    result = run_client(
        """
        from dandi.dandiapi import DandiAPIClient
        anonymous = DandiAPIClient(api_url=API_URL)
        owner = DandiAPIClient(api_url=API_URL, token=os.environ["TOKEN"])
        emit({
            "anonymous": [d.identifier for d in anonymous.get_dandisets()],
            "embargoed": [d.identifier for d in owner.get_dandisets(embargoed=True)],
            "mine": [d.identifier for d in owner.get_dandisets(mine=True)],
            "published": [d.identifier for d in anonymous.get_dandisets(draft=False)],
            "by_id_desc": [d.identifier for d in anonymous.get_dandisets(order="-id")],
            "search": [d.identifier for d in anonymous.get_dandisets(search="foraging")],
            "api": anonymous.api_url,
        })
        """,
        TOKEN=OWNER_TOKEN,
    )
    assert result["anonymous"] == ["000001", "000003", "000004"]
    assert result["embargoed"] == ["000001", "000002", "000003", "000004"]
    assert result["mine"] == ["000001", "000003", "000004"]
    assert result["published"] == ["000001"]
    assert result["by_id_desc"] == ["000004", "000003", "000001"]
    assert result["search"] == ["000001"]


def test_dandiset_versions_and_metadata(run_client: ClientRunner, sample: SampleArchive) -> None:
    result = run_client(
        f"""
        from dandi.dandiapi import DandiAPIClient
        from dandischema.models import PublishedDandiset
        client = DandiAPIClient(api_url=API_URL)
        d = client.get_dandiset("000001", lazy=False)
        release = client.get_dandiset("000001", "{RELEASE_VERSION}")
        draft = client.get_dandiset("000001", "draft")
        info = draft.get_version("draft")
        release_md = release.get_raw_metadata()
        PublishedDandiset.model_validate(release_md)   # the schema's own validator
        draft.get_metadata()
        emit({{
            "default_version": d.version_id,
            "published": str(d.most_recent_published_version),
            "draft_count": d.draft_version.asset_count,
            "draft_size": d.draft_version.size,
            "contact": d.contact_person,
            "embargo": d.embargo_status.value,
            "versions": [str(v) for v in d.get_versions()],
            "info_status": info.status.value,
            "info_errors": [info.asset_validation_errors, info.version_validation_errors],
            "release_id": release_md["id"],
            "draft_name": draft.get_raw_metadata()["name"],
        }})
        """
    )
    truth = sample.dandisets["000001"]
    assert result["default_version"] == RELEASE_VERSION
    assert result["published"] == RELEASE_VERSION
    assert result["draft_count"] == len(truth.draft.assets)
    assert result["draft_size"] == truth.draft.size
    assert result["contact"] == "Doe, Jane"
    assert result["embargo"] == "OPEN"
    assert result["versions"] == ["draft", RELEASE_VERSION]
    assert result["info_status"] == "Valid"
    assert result["info_errors"] == [[], []]
    assert result["release_id"] == f"DANDI:000001/{RELEASE_VERSION}"
    assert result["draft_name"] == truth.draft.name


def test_assets(run_client: ClientRunner, sample: SampleArchive) -> None:
    result = run_client(
        f"""
        from dandi.dandiapi import DandiAPIClient
        from dandischema.models import PublishedAsset
        client = DandiAPIClient(api_url=API_URL)
        draft = client.get_dandiset("000001", "draft")
        release = client.get_dandiset("000001", "{RELEASE_VERSION}")
        nwb = draft.get_asset_by_path("{NWB_PATH}")
        for asset in release.get_assets():
            PublishedAsset.model_validate(asset.get_raw_metadata())
        nwb.get_metadata()
        large = client.get_dandiset("000003", "draft")
        base = client.get_asset(nwb.identifier)
        emit({{
            "draft": [a.path for a in draft.get_assets()],
            "release": [a.path for a in release.get_assets()],
            "by_path": [nwb.identifier, nwb.size, nwb.blob],
            "digest": nwb.get_raw_digest(),
            "sha256": nwb.get_raw_digest("dandi:sha2-256"),
            "via_id": [draft.get_asset(nwb.identifier).path, base.path],
            "prefix": [a.path for a in large.get_assets_with_path_prefix("sub-002/ses-04/")],
            "glob": [a.path for a in large.get_assets_by_glob("*.ome.zarr")],
            "by_path_order": [a.path for a in draft.get_assets(order="path")],
            "large_count": sum(1 for _ in large.get_assets()),
            "content_url": nwb.get_content_url(regex="dandiarchive"),
        }})
        """
    )
    draft = sample.asset_list("000001")
    assert result["draft"] == [a.path for a in draft]
    assert result["release"] == [a.path for a in sample.asset_list("000001", RELEASE_VERSION)]
    nwb = sample.asset_by_path("000001", NWB_PATH)
    assert nwb.blob is not None
    assert result["by_path"] == [nwb.asset_id, nwb.size, nwb.blob.blob_id]
    assert result["digest"] == nwb.blob.etag and result["sha256"] == nwb.blob.sha256
    assert result["via_id"] == [NWB_PATH, NWB_PATH]
    assert result["prefix"] == [
        a.path for a in sample.asset_list("000003") if a.path.startswith("sub-002/ses-04/")
    ]
    assert result["glob"] == [LARGE_ZARR_PATH]
    assert result["by_path_order"] == sorted(a.path for a in draft)
    assert result["large_count"] == len(sample.asset_list("000003"))
    assert result["content_url"].endswith(nwb.blob.s3_key)


def test_downloads(run_client: ClientRunner, sample: SampleArchive) -> None:
    result = run_client(
        f"""
        import hashlib
        from pathlib import Path
        from dandi.dandiapi import DandiAPIClient
        from dandi.support.digests import get_digest
        client = DandiAPIClient(api_url=API_URL)
        out = {{}}
        for dandiset, path in (("000001", "{NWB_PATH}"), ("000001", "{DRAFT_ONLY_PATH}"),
                               ("000003", "{SMALL_000003}")):
            asset = client.get_dandiset(dandiset, "draft").get_asset_by_path(path)
            target = Path(TMP) / path.replace("/", "_")
            asset.download(target)
            out[path] = [hashlib.sha256(target.read_bytes()).hexdigest(),
                         get_digest(target, "dandi-etag"), target.stat().st_size]
        emit(out)
        """
    )
    for dandiset, path in (
        ("000001", NWB_PATH),
        ("000001", DRAFT_ONLY_PATH),
        ("000003", SMALL_000003),
    ):
        blob = sample.asset_by_path(dandiset, path).blob
        assert blob is not None
        assert result[path] == [blob.sha256, blob.etag, blob.size], path


def test_zarr_entries_and_checksum(run_client: ClientRunner, sample: SampleArchive) -> None:
    result = run_client(
        f"""
        from pathlib import Path
        from dandi.dandiapi import DandiAPIClient
        from dandi.support.digests import get_digest
        client = DandiAPIClient(api_url=API_URL)
        asset = client.get_dandiset("000003", "draft").get_asset_by_path("{LARGE_ZARR_PATH}")
        root = Path(TMP) / "store.zarr"
        keys = []
        for entry in asset.iterfiles():
            keys.append(str(entry))
            target = root / str(entry)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                for chunk in entry.get_download_file_iter()():
                    fh.write(chunk)
        one = asset.get_entry_by_path("0/.zarray")
        emit({{
            "keys": keys,
            "api_checksum": asset.get_raw_digest(),
            "local_checksum": get_digest(root, "zarr-checksum"),
            "entry": [str(one), one.size, one.digest.value],
        }})
        """
    )
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    assert zarr is not None
    assert result["keys"] == sample.zarr_keys(zarr.zarr_id)
    assert result["api_checksum"] == zarr.checksum
    assert result["local_checksum"] == zarr.checksum
    entry = zarr.files["0/.zarray"]
    assert result["entry"] == ["0/.zarray", entry.size, entry.md5]


def test_zarr_content_url_is_the_prefix_of_its_keys(
    run_client: ClientRunner, sample: SampleArchive
) -> None:
    """The S3 URL the client finds in a zarr's ``contentUrl`` is where its keys are read
    (as dandidav and s3fs users do): plain GETs for an open zarr, refused for an embargoed one."""
    result = run_client(
        f"""
        import requests
        from dandi.dandiapi import DandiAPIClient
        owner = DandiAPIClient(api_url=API_URL, token=os.environ["TOKEN"])
        def s3_url(dandiset, path):
            asset = owner.get_dandiset(dandiset, "draft").get_asset_by_path(path)
            return asset.get_content_url(r"/zarr/", strip_query=True)
        open_url = s3_url("000003", "{LARGE_ZARR_PATH}")
        part = requests.get(open_url + "0/.zarray", headers={{"Range": "bytes=0-9"}})
        embargoed_url = s3_url("000002", "{EMBARGOED_ZARR_PATH}")
        emit({{
            "open": open_url,
            "status": part.status_code,
            "bytes": part.content.decode("latin-1"),
            "embargoed": embargoed_url,
            "embargoed_status": requests.get(embargoed_url + "0/.zarray").status_code,
        }})
        """,
        TOKEN=OWNER_TOKEN,
    )
    zarr = sample.asset_by_path("000003", LARGE_ZARR_PATH).zarr
    private = sample.asset_by_path("000002", EMBARGOED_ZARR_PATH).zarr
    assert zarr is not None and private is not None
    assert result["open"].endswith(f"/dandiarchive/zarr/{zarr.zarr_id}/")
    assert result["status"] == 206
    assert result["bytes"] == sample.zarr_read(zarr.zarr_id, "0/.zarray")[:10].decode("latin-1")
    assert result["embargoed"].endswith(f"/dandiarchive/zarr/{private.zarr_id}/")
    assert result["embargoed_status"] == 403


def test_embargoed_dandiset_needs_the_owner_token(
    run_client: ClientRunner, sample: SampleArchive
) -> None:
    result = run_client(
        f"""
        import hashlib
        from pathlib import Path
        import requests
        from dandi.dandiapi import DandiAPIClient
        from dandi.exceptions import NotFoundError
        owner = DandiAPIClient(api_url=API_URL, token=os.environ["TOKEN"])
        d = owner.get_dandiset("000002", lazy=False)
        asset = d.get_asset_by_path("{EMBARGOED_BLOB_PATH}")
        target = Path(TMP) / "notes.txt"
        asset.download(target)
        try:
            DandiAPIClient(api_url=API_URL).get_dandiset("000002", lazy=False)
            anonymous = "allowed"
        except requests.HTTPError as exc:
            anonymous = exc.response.status_code
        emit({{
            "status": d.embargo_status.value,
            "paths": [a.path for a in d.get_assets()],
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "anonymous": anonymous,
        }})
        """,
        TOKEN=OWNER_TOKEN,
    )
    assert result["status"] == "EMBARGOED"
    assert result["paths"] == [a.path for a in sample.asset_list("000002")]
    blob = sample.asset_by_path("000002", EMBARGOED_BLOB_PATH).blob
    assert blob is not None and result["sha256"] == blob.sha256
    assert result["anonymous"] == 401


def test_gibibyte_etag_agrees_with_dandischema(
    run_client: ClientRunner, sample: SampleArchive
) -> None:
    """The multipart (16 x 64 MiB) etag rule, checked by dandischema's own implementation.

    The snippet regenerates the blob's bytes from their definition (PCG64 raw stream keyed
    by ``(key, 1 MiB block)``) instead of downloading 1 GiB.
    """
    result = run_client(
        f"""
        import hashlib
        import numpy as np
        from dandischema.digests.dandietag import DandiETag
        size, key, block = {BIG_BLOB_SIZE}, {BIG_BLOB_KEY}, 1 << 20
        etag, sha = DandiETag(size), hashlib.sha256()
        for part in etag.get_parts():  # dandischema decides the part layout
            assert part.offset % block == 0 and part.size % block == 0
            first = part.offset // block
            data = b"".join(
                np.random.PCG64([key, index]).random_raw(block // 8).astype("<u8").tobytes()
                for index in range(first, first + part.size // block)
            )
            etag.update(data, part)
            sha.update(data)
        emit([etag.as_str(), sha.hexdigest(), etag.part_qty])
        """
    )
    blob = sample.asset_by_path("000001", BIG_BLOB_PATH).blob
    assert blob is not None
    assert result == [blob.etag, blob.sha256, 16]


# ---------------------------------------------------------------------------- writes


@pytest.fixture
def writable() -> Iterator[RunningEmulator]:
    """A private emulator: the write tests change its state (the shared one stays pristine)."""
    with start_emulator("dandi", env={"NEUROFS_EMULATOR_VALIDATION_DELAY": "0.5"}) as emulator:
        yield emulator


def test_set_raw_metadata_round_trip(run_client: ClientRunner, writable: RunningEmulator) -> None:
    result = run_client(
        """
        from dandi.dandiapi import DandiAPIClient, VersionStatus
        client = DandiAPIClient(api_url=API_URL, token=os.environ["TOKEN"])
        d = client.get_dandiset("000004", "draft")
        md = d.get_raw_metadata()
        md["description"] = "Edited by the official client."
        d.set_raw_metadata(md)
        right_after = d.get_version("draft").status.value
        d.wait_until_valid(max_time=30)
        fresh = client.get_dandiset("000004", "draft")
        model = fresh.get_metadata()              # dandischema's model of what was stored
        model.keywords = ["edited", "twice"]
        fresh.set_metadata(model)
        fresh.wait_until_valid(max_time=30)
        emit({
            "description": fresh.get_raw_metadata()["description"],
            "keywords": client.get_dandiset("000004", "draft").get_raw_metadata()["keywords"],
            "status": [right_after, fresh.get_version("draft").status.value],
            "name": fresh.get_version("draft").name,
        })
        """,
        TOKEN=OWNER_TOKEN,
        NEUROFS_TEST_API_URL=writable.api_url,
    )
    assert result["description"] == "Edited by the official client."
    assert result["keywords"] == ["edited", "twice"]
    assert result["status"] == ["Pending", "Valid"]
    assert result["name"] == "A small dandiset to edit"
    puts = [r for r in writable.requests() if r["method"] == "PUT"]
    assert [(r["path"], r["status"]) for r in puts] == [
        ("/api/dandisets/000004/versions/draft/", 200)
    ] * 2
    # What the client sends: the whole document, and the name taken from it.
    assert set(puts[0]["body"]) == {"metadata", "name"}
    assert puts[0]["body"]["name"] == "A small dandiset to edit"
    assert puts[0]["body"]["metadata"]["description"] == "Edited by the official client."


def test_asset_set_raw_metadata_rename_and_delete(
    run_client: ClientRunner, writable: RunningEmulator, sample: SampleArchive
) -> None:
    result = run_client(
        """
        from dandi.dandiapi import DandiAPIClient
        from dandi.exceptions import NotFoundError
        client = DandiAPIClient(api_url=API_URL, token=os.environ["TOKEN"])
        d = client.get_dandiset("000004", "draft")
        asset = d.get_asset_by_path("README.txt")
        old_id = asset.identifier
        md = asset.get_raw_metadata()
        md["keywords"] = ["edited"]
        asset.set_raw_metadata(md)
        new_id = asset.identifier
        asset.rename("docs/README.txt")
        renamed_id = asset.identifier
        probe = d.get_asset_by_path("sub-01/sub-01_probe.json")
        probe.delete()
        try:
            d.get_asset_by_path("sub-01/sub-01_probe.json")
            gone = False
        except NotFoundError:
            gone = True
        emit({
            "ids": [old_id, new_id, renamed_id],
            "keywords": d.get_asset(renamed_id).get_raw_metadata()["keywords"],
            "old_still_there": client.get_asset(old_id).path,
            "paths": sorted(a.path for a in d.get_assets()),
            "gone": gone,
            "count": client.get_dandiset("000004", "draft", lazy=False).version.asset_count,
        })
        """,
        TOKEN=OWNER_TOKEN,
        NEUROFS_TEST_API_URL=writable.api_url,
    )
    old_id, new_id, renamed_id = result["ids"]
    assert old_id == sample.asset_by_path("000004", "README.txt").asset_id
    assert len({old_id, new_id, renamed_id}) == 3
    assert result["keywords"] == ["edited"]
    assert result["old_still_there"] == "README.txt"
    assert result["paths"] == ["docs/README.txt"]
    assert result["gone"] is True
    assert result["count"] == 1
    writes = [(r["method"], r["status"]) for r in writable.requests() if r["method"] != "GET"]
    assert writes == [("PUT", 200), ("PUT", 200), ("DELETE", 204)]


def test_client_sees_a_raw_put(run_client: ClientRunner, writable: RunningEmulator) -> None:
    url = f"{writable.api_url}/dandisets/000004/versions/draft/"
    metadata = httpx.get(url, timeout=30).json()
    metadata["description"] = "Written with plain HTTP."
    response = httpx.put(
        url,
        json={"metadata": metadata, "name": "Renamed over HTTP"},
        headers={"Authorization": f"token {OWNER_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200 and response.json()["status"] == "Pending"
    result = run_client(
        """
        from dandi.dandiapi import DandiAPIClient
        client = DandiAPIClient(api_url=API_URL)
        d = client.get_dandiset("000004", "draft", lazy=False)
        emit({
            "description": d.get_raw_metadata()["description"],
            "name": d.version.name,
            "listed": [x.version.name for x in client.get_dandisets() if x.identifier == "000004"],
        })
        """,
        NEUROFS_TEST_API_URL=writable.api_url,
    )
    assert result == {
        "description": "Written with plain HTTP.",
        "name": "Renamed over HTTP",
        "listed": ["Renamed over HTTP"],
    }
