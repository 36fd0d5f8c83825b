"""Open files of each kind, driven through ``Operations`` in-process over an in-memory
service that records every request: what each handler sends, and every errno it answers."""

from __future__ import annotations

import errno
import os

import pytest
import yaml

from neurofs.errors import AccessDenied, Conflict
from neurofs.tree.buffers import MAX_EDIT_BYTES
from tests.inprocess.conftest import MemoryMounted
from tests.inprocess.kernel import fails_with
from tests.inprocess.memory_tree import Request

ALPHA = "records/alpha.yaml"
WRITE = os.O_WRONLY
WRITE_TRUNC = os.O_WRONLY | os.O_TRUNC


def changed(text: bytes, **fields: object) -> bytes:
    doc = yaml.safe_load(text)
    doc.update(fields)
    return yaml.safe_dump(doc, sort_keys=False).encode()


def patch(record: str, **fields: object) -> Request:
    return Request("PATCH", record, dict(fields))


# ---------------------------------------------------------------- reading


async def test_a_generated_file_reads_its_rendering_and_refuses_writes(memory: MemoryMounted):
    k = memory.kernel
    assert await k.read_file("records/summary.json") == b'["alpha", "beta"]\n'
    assert await k.size("records/summary.json") == len(b'["alpha", "beta"]\n')
    fh = await k.open("records/summary.json")
    assert await k.read(fh, offset=2, size=5) == b"alpha"
    with fails_with(errno.EBADF):  # opened for reading
        await k.write(fh, b"x")
    await k.close(fh)
    with fails_with(errno.EROFS):
        await k.open("records/summary.json", WRITE)
    with fails_with(errno.EROFS):
        await k.truncate("records/summary.json", 0)
    with fails_with(errno.EROFS):
        await k.touch("records/summary.json")
    assert memory.service.requests == []


async def test_a_sidecar_reads_as_the_server_state(memory: MemoryMounted):
    text = await memory.kernel.read_file(ALPHA)
    assert yaml.safe_load(text) == {"id": 1, "name": "alpha", "description": "the first"}
    assert await memory.kernel.size(ALPHA) == len(text)
    assert memory.service.changes() == []


# ---------------------------------------------------------------- sidecar edits


async def test_write_and_flush_of_a_sidecar_sends_one_patch_of_the_change(
    memory: MemoryMounted,
):
    k = memory.kernel
    new = changed(await k.read_file(ALPHA), description="edited")
    fh = await k.open(ALPHA, WRITE_TRUNC)
    assert await k.write(fh, new) == len(new)
    # While the edit is open the file is what was written, and nothing is sent yet.
    assert await k.size(ALPHA) == len(new)
    assert await k.read(fh) == new
    assert memory.service.changes() == []
    await k.flush(fh)
    assert memory.service.changes() == [patch("alpha", description="edited")]
    await k.release(fh)
    assert memory.service.changes() == [patch("alpha", description="edited")]
    assert memory.service.records["alpha"]["description"] == "edited"
    assert yaml.safe_load(await k.read_file(ALPHA))["description"] == "edited"


async def test_an_unchanged_save_sends_nothing(memory: MemoryMounted):
    k = memory.kernel
    await k.write_file(ALPHA, await k.read_file(ALPHA))
    assert memory.service.changes() == []


async def test_writes_after_a_flush_on_the_same_handle_are_a_second_save(memory: MemoryMounted):
    k = memory.kernel
    text = await k.read_file(ALPHA)
    fh = await k.open(ALPHA, WRITE_TRUNC)
    first = changed(text, description="one")
    await k.write(fh, first)
    await k.flush(fh)
    second = changed(first, name="alpha two")
    await k.truncate(ALPHA, 0, fh=fh)
    await k.write(fh, second)
    await k.close(fh)
    assert memory.service.changes() == [
        patch("alpha", description="one"),
        patch("alpha", name="alpha two"),
    ]


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
async def test_invalid_text_is_einval_sends_nothing_and_keeps_the_bytes(memory: MemoryMounted):
    k = memory.kernel
    before = await k.read_file(ALPHA)
    bad = b"name: [unclosed\n"
    fh = await k.open(ALPHA, WRITE_TRUNC)
    await k.write(fh, bad)
    with fails_with(errno.EINVAL):
        await k.close(fh)
    assert memory.service.changes() == []
    assert memory.kept("records", "alpha.yaml") == [bad]
    last = (await k.errors_log())[-1]
    assert "records/alpha.yaml EINVAL" in last and "invalid YAML" in last
    # The kept copy is readable under .neurofs/rejected/, and the sidecar is the server's again.
    (name,) = (memory.rejected / "records").iterdir()
    assert await k.read_file(f".neurofs/rejected/records/{name.name}") == bad
    assert await k.read_file(ALPHA) == before


@pytest.mark.expect_log(r"write refused \(EACCES\)")
@pytest.mark.expect_log(r"write refused \(EBUSY\)")
async def test_a_server_refusal_is_its_errno_and_keeps_the_bytes(memory: MemoryMounted):
    k = memory.kernel
    before = await k.read_file(ALPHA)
    new = changed(before, description="refused")
    for refusal, code in ((Conflict("locked"), errno.EBUSY), (AccessDenied("no"), errno.EACCES)):
        memory.service.refusal = refusal
        fh = await k.open(ALPHA, WRITE_TRUNC)
        await k.write(fh, new)
        with fails_with(code):
            await k.close(fh)
        assert (await k.errors_log())[-1].split()[2] == errno.errorcode[code]
    # Each refusal: one attempt, its bytes kept; the server's state is shown again.
    assert memory.service.changes() == [patch("alpha", description="refused")] * 2
    assert memory.kept("records", "alpha.yaml") == [new, new]
    assert await k.read_file(ALPHA) == before
    memory.service.refusal = None
    await k.write_file(ALPHA, new)
    assert memory.service.records["alpha"]["description"] == "refused"


@pytest.mark.expect_log(r"write refused \(EFBIG\)")
async def test_a_write_past_the_size_limit_is_efbig_at_write_and_close(memory: MemoryMounted):
    k = memory.kernel
    text = await k.read_file(ALPHA)
    fh = await k.open(ALPHA, WRITE_TRUNC)
    await k.write(fh, text)
    with fails_with(errno.EFBIG):
        await k.write(fh, b"x", offset=MAX_EDIT_BYTES)
    with fails_with(errno.EFBIG):
        await k.close(fh)
    assert memory.service.changes() == []
    assert memory.kept("records", "alpha.yaml") == [text]


# ---------------------------------------------------------------- truncation


async def test_ftruncate_then_write_is_one_save_at_close(memory: MemoryMounted):
    k = memory.kernel
    new = changed(await k.read_file(ALPHA), description="after ftruncate")
    fh = await k.open(ALPHA, os.O_RDWR)
    await k.truncate(ALPHA, 0, fh=fh)
    assert await k.size(ALPHA) == 0
    assert memory.service.changes() == []
    await k.write(fh, new)
    await k.close(fh)
    assert memory.service.changes() == [patch("alpha", description="after ftruncate")]


async def test_truncate_by_path_is_the_save(memory: MemoryMounted):
    k = memory.kernel
    text = await k.read_file(ALPHA)
    # Cutting the last line (the description) off: no close follows, so this is the save.
    cut = text[: text.rindex(b"description:")]
    await k.truncate(ALPHA, len(cut))
    assert memory.service.changes() == [patch("alpha", description=None)]
    assert "description" not in memory.service.records["alpha"]


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
async def test_truncate_by_path_to_nothing_is_einval_and_sends_nothing(memory: MemoryMounted):
    k = memory.kernel
    with fails_with(errno.EINVAL):
        await k.truncate(ALPHA, 0)
    assert memory.service.changes() == []
    assert memory.kept("records", "alpha.yaml") == [b""]
    # Mode and times are accepted and ignored (touch, cp -p).
    await k.touch(ALPHA)
    assert memory.service.changes() == []


async def test_shell_redirect_flushes_an_empty_duplicate_before_writing(memory: MemoryMounted):
    """`cmd > file`: the shell's descriptor is flushed while the file is only emptied (EINVAL,
    nothing ended), then cmd writes and closes: one save."""
    k = memory.kernel
    new = changed(await k.read_file(ALPHA), description="redirected")
    fh = await k.open(ALPHA, WRITE_TRUNC)
    with fails_with(errno.EINVAL):
        await k.flush(fh)
    await k.write(fh, new)
    await k.close(fh)
    assert memory.service.changes() == [patch("alpha", description="redirected")]
    assert memory.kept("records", "alpha.yaml") == []


# ---------------------------------------------------------------- several writers


async def test_two_writers_share_one_edit_and_one_save(memory: MemoryMounted):
    k = memory.kernel
    new = changed(await k.read_file(ALPHA), name="alpha", description="two writers")
    half = len(new) // 2
    a = await k.open(ALPHA, WRITE_TRUNC)
    b = await k.open(ALPHA, WRITE)
    await k.write(a, new[:half])
    await k.write(b, new[half:], offset=half)
    assert await k.read(a) == new  # one buffer behind both handles
    await k.release(a)  # the last writer's close sends it
    assert memory.service.changes() == []
    await k.close(b)
    assert memory.service.changes() == [patch("alpha", description="two writers")]


async def test_an_emptied_file_left_by_one_writer_stays_open_for_the_other(
    memory: MemoryMounted,
):
    k = memory.kernel
    new = changed(await k.read_file(ALPHA), description="second writer")
    a = await k.open(ALPHA, WRITE_TRUNC)
    b = await k.open(ALPHA, WRITE)
    await k.release(a)  # emptied and never written: not refused while b still writes
    assert memory.kept("records", "alpha.yaml") == []
    await k.write(b, new)
    await k.close(b)
    assert memory.service.changes() == [patch("alpha", description="second writer")]
    assert memory.kept("records", "alpha.yaml") == []


async def test_a_second_writer_flushing_after_the_save_sends_nothing_more(memory: MemoryMounted):
    k = memory.kernel
    new = changed(await k.read_file(ALPHA), description="once")
    a = await k.open(ALPHA, WRITE_TRUNC)
    b = await k.open(ALPHA, WRITE)
    await k.write(a, new)
    await k.close(a)
    await k.close(b)
    assert memory.service.changes() == [patch("alpha", description="once")]


# ---------------------------------------------------------------- release without flush


async def test_release_without_flush_sends_nothing_and_keeps_the_edit_pending(
    memory: MemoryMounted,
):
    k = memory.kernel
    new = changed(await k.read_file(ALPHA), description="pending")
    fh = await k.open(ALPHA, WRITE_TRUNC)
    await k.write(fh, new)
    await k.release(fh)
    assert memory.service.changes() == []
    assert await k.size(ALPHA) == len(new)
    # The next writer's close sends what was written.
    await k.close(await k.open(ALPHA, WRITE))
    assert memory.service.changes() == [patch("alpha", description="pending")]


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
async def test_release_of_an_emptied_file_never_written_is_refused_and_kept(
    memory: MemoryMounted,
):
    k = memory.kernel
    before = await k.read_file(ALPHA)
    await k.release(await k.open(ALPHA, WRITE_TRUNC))
    assert memory.service.changes() == []
    assert memory.kept("records", "alpha.yaml") == [b""]
    assert "EINVAL the file is empty; nothing was sent" in (await k.errors_log())[-1]
    assert await k.read_file(ALPHA) == before


async def test_release_of_a_clean_edit_ends_it(memory: MemoryMounted):
    k = memory.kernel
    await k.release(await k.open(ALPHA, WRITE))
    memory.service.records["alpha"]["description"] = "changed on the server"
    assert yaml.safe_load(await k.read_file(ALPHA))["description"] == "changed on the server"
    assert memory.service.changes() == []


# ---------------------------------------------------------------- scratch files


async def test_an_editor_save_by_rename_over_a_sidecar_is_one_save(memory: MemoryMounted):
    k = memory.kernel
    text = await k.read_file(ALPHA)
    new = changed(text, description="saved by rename")
    # vim: the original moved aside as a backup (a scratch copy; the sidecar stays) ...
    await k.rename(ALPHA, "records/alpha.yaml~")
    assert await k.read_file("records/alpha.yaml~") == text
    # ... the new text written to a temporary, then renamed over the sidecar.
    fh = await k.create("records/.alpha.yaml.swp", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    await k.write(fh, new)
    await k.close(fh)
    assert memory.service.changes() == []
    await k.rename("records/.alpha.yaml.swp", ALPHA)
    assert memory.service.changes() == [patch("alpha", description="saved by rename")]
    with fails_with(errno.ENOENT):
        await k.lookup("records/.alpha.yaml.swp")
    assert await k.read_file(ALPHA) == new
    await k.unlink("records/alpha.yaml~")
    with fails_with(errno.ENOENT):
        await k.lookup("records/alpha.yaml~")
    assert memory.service.changes() == [patch("alpha", description="saved by rename")]


@pytest.mark.expect_log(r"write refused \(EINVAL\)")
async def test_a_refused_save_by_rename_keeps_the_bytes_and_the_temporary(memory: MemoryMounted):
    k = memory.kernel
    bad = b"name: ''\n"
    fh = await k.create("records/alpha.yaml.tmp")
    await k.write(fh, bad)
    await k.close(fh)
    with fails_with(errno.EINVAL):
        await k.rename("records/alpha.yaml.tmp", ALPHA)
    assert memory.service.changes() == []
    assert memory.kept("records", "alpha.yaml") == [bad]
    assert await k.read_file("records/alpha.yaml.tmp") == bad


async def test_scratch_files_truncate_and_append_in_memory(memory: MemoryMounted):
    k = memory.kernel
    fh = await k.create("records/notes.txt")
    await k.write(fh, b"hello world")
    await k.close(fh)
    await k.truncate("records/notes.txt", 5)
    assert await k.read_file("records/notes.txt") == b"hello"
    fh = await k.open("records/notes.txt", os.O_WRONLY | os.O_APPEND)
    await k.write(fh, b", again")
    await k.close(fh)
    assert await k.read_file("records/notes.txt") == b"hello, again"
    await k.write_file("records/notes.txt", b"new")  # O_TRUNC
    assert await k.read_file("records/notes.txt") == b"new"
    assert memory.service.requests == []


async def test_a_new_file_in_a_creating_directory_is_sent_at_close(memory: MemoryMounted):
    k = memory.kernel
    fh = await k.create("records/new-gamma.yaml")
    await k.write(fh, b"name: gamma\n")
    await k.release(fh)  # a request goes out at flush only
    assert memory.service.changes() == []
    fh = await k.open("records/new-gamma.yaml", WRITE_TRUNC)
    await k.write(fh, b"name: gamma\n")
    await k.close(fh)
    assert memory.service.changes() == [Request("POST", "new-gamma.yaml", {"name": "gamma"})]
    assert await k.read_file("records/new-gamma.yaml") == b"created: gamma\n"
    assert yaml.safe_load(await k.read_file("records/gamma.yaml"))["name"] == "gamma"


async def test_sidecars_cannot_be_deleted(memory: MemoryMounted):
    with fails_with(errno.EPERM):
        await memory.kernel.unlink(ALPHA)


# ---------------------------------------------------------------- the control file


async def test_a_refresh_command_looks_the_paths_up_again(memory: MemoryMounted):
    k = memory.kernel
    inode = await k.lookup(ALPHA)
    listed = memory.service.listings
    await k.ops.getattr(inode, k.ctx)
    assert memory.service.listings == listed  # the inode's node is used as it is
    await k.write_file(".neurofs/control", b"refresh records\n")
    await k.ops.getattr(inode, k.ctx)
    assert memory.service.listings == listed + 1  # found again by its path
    assert memory.service.requests == []


async def test_control_commands_answer_with_their_errno(memory: MemoryMounted):
    k = memory.kernel
    with fails_with(errno.EACCES):  # write-only
        await k.open(".neurofs/control")
    fh = await k.open(".neurofs/control", os.O_RDWR)
    with fails_with(errno.EACCES):
        await k.read(fh)
    with fails_with(errno.EINVAL):
        await k.write(fh, b"frobnicate\n")
    assert "EINVAL control: unknown command" in (await k.errors_log())[-1]
    with fails_with(errno.ENOENT):
        await k.write(fh, b"refresh records/nowhere\n")
    assert "ENOENT control: refresh: no such path" in (await k.errors_log())[-1]
    await k.close(fh)
    # `echo … > .neurofs/control` truncates first, by path and through the handle.
    await k.truncate(".neurofs/control", 0)
    fh = await k.open(".neurofs/control", WRITE_TRUNC)
    await k.truncate(".neurofs/control", 0, fh=fh)
    assert await k.write(fh, b"refresh\n") == len(b"refresh\n")
    await k.close(fh)
