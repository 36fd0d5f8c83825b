"""Handles over the real DANDI tree and the DANDI emulator on loopback, in-process: a remote
file's bytes, a save of dandiset.yaml as exactly one PUT, a refusal, and a refresh."""

from __future__ import annotations

import errno
import os

import pytest
import yaml

from neurofs.sources.dandi.sidecars import COMPUTED_KEYS
from tests.inprocess.conftest import DandiMounted
from tests.inprocess.kernel import fails_with

DANDISET = "000004"
DRAFT = f"dandi/{DANDISET}/draft"
SIDECAR = f"{DRAFT}/dandiset.yaml"
INFO_PATH = f"/api/dandisets/{DANDISET}/versions/draft/info/"


def edited(text: bytes, **fields: object) -> bytes:
    doc = yaml.safe_load(text)
    doc.update(fields)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


async def test_a_remote_file_reads_the_archived_bytes(dandi: DandiMounted):
    assets = dandi.emulator.all_assets(DANDISET, "draft")
    (asset,) = [a for a in assets if a["path"] == "README.txt"]
    expected = dandi.emulator.download(asset["asset_id"])
    dandi.emulator.reset()
    k = dandi.kernel
    assert await k.size(f"{DRAFT}/README.txt") == len(expected)
    fh = await k.open(f"{DRAFT}/README.txt")
    assert await k.read(fh) == expected
    assert await k.read(fh, offset=3, size=7) == expected[3:10]
    with fails_with(errno.EBADF):
        await k.write(fh, b"x")
    await k.close(fh)
    blob_gets = [r for r in dandi.emulator.requests() if r["path"].startswith("/dandiarchive/")]
    assert len(blob_gets) == 1  # one fetch from the blob store; the second read was cached
    with fails_with(errno.EROFS):
        await k.open(f"{DRAFT}/README.txt", os.O_WRONLY)
    assert dandi.emulator.writes() == []


async def test_a_sidecar_save_is_one_put_of_the_change(dandi: DandiMounted):
    k = dandi.kernel
    before = dandi.emulator.draft_metadata(DANDISET)
    new = edited(await k.read_file(SIDECAR), description="edited in-process")
    fh = await k.open(SIDECAR, os.O_WRONLY | os.O_TRUNC)
    await k.write(fh, new)
    assert dandi.emulator.writes() == []
    await k.flush(fh)
    await k.release(fh)
    writes = dandi.emulator.writes()
    assert [(w["method"], w["path"]) for w in writes] == [
        ("PUT", f"/api/dandisets/{DANDISET}/versions/draft/")
    ]
    expected = {k: v for k, v in before.items() if k not in COMPUTED_KEYS}
    expected["description"] = "edited in-process"
    assert writes[0]["body"]["metadata"] == expected
    assert dandi.emulator.draft_metadata(DANDISET)["description"] == "edited in-process"


@pytest.mark.expect_log(r"write refused \(EBUSY\)")
async def test_a_server_refusal_keeps_the_bytes_and_changes_nothing(dandi: DandiMounted):
    k = dandi.kernel
    emulator = dandi.emulator
    before = emulator.settled_draft_metadata(DANDISET)
    new = edited(await k.read_file(SIDECAR), description="refused")
    emulator.refuse("PUT", f"/api/dandisets/{DANDISET}/", 409, "Dandiset is currently locked")
    fh = await k.open(SIDECAR, os.O_WRONLY | os.O_TRUNC)
    await k.write(fh, new)
    with fails_with(errno.EBUSY):
        await k.close(fh)
    assert [w["method"] for w in emulator.writes()] == ["PUT"]
    assert emulator.draft_metadata(DANDISET) == before
    assert dandi.kept("dandi", DANDISET, "draft", "dandiset.yaml") == [new]
    last = (await k.errors_log())[-1]
    assert f"{SIDECAR} EBUSY" in last and "409" in last


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
async def test_invalid_text_sends_nothing(dandi: DandiMounted):
    k = dandi.kernel
    bad = edited(await k.read_file(SIDECAR), name="")
    fh = await k.open(SIDECAR, os.O_WRONLY | os.O_TRUNC)
    await k.write(fh, bad)
    with fails_with(errno.EINVAL):
        await k.close(fh)
    assert dandi.emulator.writes() == []
    assert dandi.kept("dandi", DANDISET, "draft", "dandiset.yaml") == [bad]


async def test_a_refresh_command_fetches_the_metadata_again(dandi: DandiMounted):
    k = dandi.kernel

    def info_gets() -> int:
        return sum(1 for r in dandi.emulator.requests() if r["path"] == INFO_PATH)

    first = await k.read_file(SIDECAR)
    fetched = info_gets()
    assert fetched >= 1
    assert await k.read_file(SIDECAR) == first
    assert info_gets() == fetched  # remembered
    await k.write_file(".neurofs/control", f"refresh {DRAFT}\n".encode())
    assert await k.read_file(SIDECAR) == first
    assert info_gets() == fetched + 1
