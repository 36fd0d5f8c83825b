"""Asset metadata sidecars (draft.meta/), mv and rm of assets in a draft, through real mounts."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import Emulator, Mount

pytestmark = pytest.mark.mount

DANDISET = "000004"


@pytest.fixture
def mount(make_mount, private_dandi_emulator: Emulator) -> Mount:
    m = make_mount(private_dandi_emulator, retry_seconds=1, fuse_options=["allow_delete"])
    private_dandi_emulator.clear_refusals()
    private_dandi_emulator.reset()
    return m


def draft(mount: Mount) -> Path:
    return mount / f"dandi/{DANDISET}/draft"


def paths(emulator: Emulator) -> dict[str, dict]:
    return {a["path"]: a for a in emulator.all_assets(DANDISET, "draft")}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_metadata_tree_mirrors_the_draft(mount: Mount, private_dandi_emulator: Emulator):
    meta = mount / f"dandi/{DANDISET}/draft.meta"
    assert sorted(os.listdir(mount / f"dandi/{DANDISET}")) == ["draft", "draft.meta", "releases"]
    for path, asset in paths(private_dandi_emulator).items():
        doc = yaml.safe_load((meta / path).read_text())
        assert doc["path"] == path and doc["identifier"] == asset["asset_id"]
    # Published dandisets have no draft.meta of their releases.
    assert "draft.meta" in os.listdir(mount / "dandi/000001")


def test_editing_asset_metadata_puts_the_asset_and_follows_its_new_id(
    mount: Mount, private_dandi_emulator: Emulator
):
    emulator = private_dandi_emulator
    path = sorted(paths(emulator))[0]
    before = paths(emulator)[path]
    sidecar = mount / f"dandi/{DANDISET}/draft.meta" / path
    doc = yaml.safe_load(sidecar.read_text())
    doc["description"] = "described through the mount"
    content_before = sha(draft(mount) / path)
    emulator.reset()
    sidecar.write_text(yaml.safe_dump(doc, sort_keys=False))
    writes = emulator.writes()
    assert [(w["method"], w["path"]) for w in writes] == [
        ("PUT", f"/api/dandisets/{DANDISET}/versions/draft/assets/{before['asset_id']}/")
    ]
    sent = writes[0]["body"]
    assert sent["blob_id"] == before["blob"]
    assert sent["metadata"]["description"] == "described through the mount"
    assert sent["metadata"]["path"] == path
    after = paths(emulator)[path]
    assert after["asset_id"] != before["asset_id"]
    assert yaml.safe_load(sidecar.read_text())["identifier"] == after["asset_id"]
    assert sha(draft(mount) / path) == content_before
    # A second edit of the same file goes to the new id.
    doc = yaml.safe_load(sidecar.read_text())
    doc["description"] = "again"
    sidecar.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert paths(emulator)[path]["metadata"]["description"] == "again"


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_asset_metadata_bad_input(mount: Mount, private_dandi_emulator: Emulator):
    path = sorted(paths(private_dandi_emulator))[0]
    sidecar = mount / f"dandi/{DANDISET}/draft.meta" / path
    doc = yaml.safe_load(sidecar.read_text())
    private_dandi_emulator.reset()
    for bad in (
        {**doc, "keywords": "not a list"},
        {**doc, "schemaKey": "Dandiset"},
        {**doc, "contentSize": 1},
    ):
        with pytest.raises(OSError) as info:
            sidecar.write_text(yaml.safe_dump(bad))
        assert info.value.errno == errno.EINVAL
    assert private_dandi_emulator.writes() == []


def test_mv_file_and_folder(mount: Mount, private_dandi_emulator: Emulator):
    emulator = private_dandi_emulator
    before = paths(emulator)
    top_file = next(p for p in before if "/" not in p)
    digest = sha(draft(mount) / top_file)
    emulator.reset()
    subprocess.run(
        ["mv", str(draft(mount) / top_file), str(draft(mount) / "moved.txt")], check=True
    )
    assert [w["method"] for w in emulator.writes()] == ["PUT"]
    assert emulator.writes()[0]["body"]["metadata"]["path"] == "moved.txt"
    assert "moved.txt" in paths(emulator) and top_file not in paths(emulator)
    assert sha(draft(mount) / "moved.txt") == digest
    assert not (draft(mount) / top_file).exists()
    # A folder: one PUT per asset below it.
    folder = next(p.split("/")[0] for p in before if "/" in p)
    inside = [p for p in before if p.startswith(folder + "/")]
    emulator.reset()
    os.rename(draft(mount) / folder, draft(mount) / "renamed-folder")
    assert len(emulator.writes()) == len(inside)
    now = paths(emulator)
    assert all(f"renamed-folder/{p[len(folder) + 1 :]}" in now for p in inside)
    assert sorted(os.listdir(draft(mount) / "renamed-folder")) == sorted(
        {p[len(folder) + 1 :].split("/")[0] for p in inside}
    )
    # Put things back for the next tests.
    os.rename(draft(mount) / "renamed-folder", draft(mount) / folder)
    os.rename(draft(mount) / "moved.txt", draft(mount) / top_file)
    assert set(paths(emulator)) == set(before)


def test_mv_onto_an_existing_asset_is_eexist_and_moves_nothing(
    mount: Mount, private_dandi_emulator: Emulator
):
    emulator = private_dandi_emulator
    before = paths(emulator)
    a, b = sorted(before)[:2]
    emulator.reset()
    with pytest.raises(OSError) as info:
        os.rename(draft(mount) / a, draft(mount) / b)
    assert info.value.errno == errno.EEXIST
    assert emulator.writes() == []
    assert set(paths(emulator)) == set(before)


@pytest.mark.expect_log(r"PUT .*/assets/.*: giving up after \d+ tries: HTTP 500")
def test_failed_folder_move_is_rolled_back(mount: Mount, private_dandi_emulator: Emulator):
    emulator = private_dandi_emulator
    before = paths(emulator)
    folder = next(p.split("/")[0] for p in before if "/" in p)
    inside = sorted(p for p in before if p.startswith(folder + "/"))
    # Make a second asset in the folder so that a refusal can happen halfway.
    if len(inside) < 2:
        subprocess.run(
            [
                "mv",
                str(draft(mount) / next(p for p in before if "/" not in p)),
                str(draft(mount) / folder / "second.txt"),
            ],
            check=True,
        )
        before = paths(emulator)
        inside = sorted(p for p in before if p.startswith(folder + "/"))
    # The first asset's PUT goes through; the second one's keeps failing.
    emulator.reset()
    # Assets are moved in the order the server lists them: refuse the last one.
    with emulator.api() as c:
        listed = c.get(
            f"dandisets/{DANDISET}/versions/draft/assets/", params={"path": folder + "/"}
        ).json()["results"]
    second = listed[-1]["asset_id"]
    emulator.refuse(
        "PUT",
        f"/api/dandisets/{DANDISET}/versions/draft/assets/{second}/",
        500,
        {"detail": "boom"},
        times=1000,
    )
    with pytest.raises(OSError) as info:
        os.rename(draft(mount) / folder, draft(mount) / "elsewhere")
    assert info.value.errno == errno.EIO
    emulator.clear_refusals()
    assert set(paths(emulator)) == set(before), "nothing may be left half-moved"
    puts = [w for w in emulator.writes() if w["method"] == "PUT" and w["status"] == 200]
    assert len(puts) >= 2  # the first move, and the move back


def test_rm_needs_the_delete_option(make_mount, private_dandi_emulator: Emulator):
    emulator = private_dandi_emulator
    plain = make_mount(emulator, retry_seconds=1)
    target = sorted(paths(emulator))[0]
    emulator.reset()
    with pytest.raises(OSError) as info:
        os.unlink(plain / f"dandi/{DANDISET}/draft" / target)
    assert info.value.errno == errno.EPERM
    assert emulator.writes() == []
    allowed = make_mount(emulator, retry_seconds=1, fuse_options=["allow_delete"])
    os.unlink(allowed / f"dandi/{DANDISET}/draft" / target)
    assert [w["method"] for w in emulator.writes()] == ["DELETE"]
    assert target not in paths(emulator)
    assert not (allowed / f"dandi/{DANDISET}/draft" / target).exists()


def test_nothing_moves_out_of_the_draft(mount: Mount, private_dandi_emulator: Emulator):
    release = os.listdir(mount / "dandi/000001/releases")[0]
    some = sorted(paths(private_dandi_emulator))[0]
    with pytest.raises(OSError) as info:
        os.rename(draft(mount) / some, mount / f"dandi/000001/releases/{release}/x")
    assert info.value.errno in (errno.EROFS, errno.EXDEV)
    asset = private_dandi_emulator.all_assets("000001", release)[0]
    with pytest.raises(OSError) as info:
        os.rename(
            mount / f"dandi/000001/releases/{release}" / asset["path"],
            mount / f"dandi/000001/releases/{release}/y",
        )
    assert info.value.errno == errno.EROFS
