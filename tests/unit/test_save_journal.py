"""The save journal: saves in progress survive the death of their daemon and end up in the
rejected store at the next start, and only those of daemons that are gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurofs.fs.saving import recover_interrupted
from neurofs.tree.control import ErrorLog
from neurofs.tree.rejected import RejectedStore

KEY = ("dandi", "000004", "draft", "dandiset.yaml")


def store(tmp_path: Path) -> RejectedStore:
    return RejectedStore(tmp_path / "rejected", journal=tmp_path / "journal")


def kept_files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "rejected").rglob("*") if p.is_file())


def die_mid_save(tmp_path: Path, data: bytes) -> None:
    """A process that journals a save and dies before it ends (os._exit: no cleanup)."""
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from neurofs.tree.rejected import RejectedStore\n"
        f"s = RejectedStore(Path({str(tmp_path / 'rejected')!r}), "
        f"journal=Path({str(tmp_path / 'journal')!r}))\n"
        f"s.begin({KEY!r}, sys.stdin.buffer.read())\n"
        "os._exit(9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], input=data, check=False)
    assert result.returncode == 9


def test_an_answered_save_leaves_nothing(tmp_path: Path):
    s = store(tmp_path)
    s.end(s.begin(KEY, b"name: x\n"))
    s.close()
    assert store(tmp_path).recover_interrupted() == []
    assert kept_files(tmp_path) == []


@pytest.mark.expect_log(r"neurofs\.fs\.saving: .*was interrupted .*may or may not have been")
def test_a_save_of_a_dead_daemon_is_kept_once(tmp_path: Path):
    data = bytes(range(256)) * 3 + b"\n\nlast line"
    die_mid_save(tmp_path, data)
    s = store(tmp_path)
    errors = ErrorLog()
    assert recover_interrupted(s, errors) == 1
    (kept,) = kept_files(tmp_path)
    assert kept.read_bytes() == data
    assert kept.relative_to(tmp_path / "rejected").parts[:-1] == KEY[:-1]
    line = errors.render().decode()
    assert "/".join(KEY) in line and "interrupted" in line and "may or may not" in line
    # Recovered once: the dead journal is gone.
    assert recover_interrupted(store(tmp_path), ErrorLog()) == 0
    assert len(kept_files(tmp_path)) == 1
    s.close()


def test_the_saves_of_a_live_daemon_are_left_alone(tmp_path: Path):
    live = store(tmp_path)
    entry = live.begin(KEY, b"in flight")
    other = store(tmp_path)
    assert other.recover_interrupted() == []
    assert entry is not None and entry.exists()
    # A clean exit with a save still pending (cut short by the shutdown) keeps it for later.
    live.close()
    recovered = other.recover_interrupted()
    assert [r.path for r in recovered] == [KEY]
    assert kept_files(tmp_path)[0].read_bytes() == b"in flight"
    other.close()


def test_a_clean_exit_removes_its_empty_journal(tmp_path: Path):
    s = store(tmp_path)
    s.close()
    assert os.listdir(tmp_path / "journal") == []


def test_a_half_written_entry_was_never_sent_and_is_dropped(tmp_path: Path):
    die_mid_save(tmp_path, b"complete")
    (dead,) = (tmp_path / "journal").iterdir()
    (dead / "0000000002.save.tmp").write_bytes(b"half")
    recovered = store(tmp_path).recover_interrupted()
    assert len(recovered) == 1
    assert [p.read_bytes() for p in kept_files(tmp_path)] == [b"complete"]
    assert not dead.exists()


def test_journal_and_kept_files_are_private(tmp_path: Path):
    s = store(tmp_path)
    entry = s.begin(KEY, b"secret-ish")
    assert entry is not None
    assert entry.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "journal").stat().st_mode & 0o777 == 0o700
    assert entry.parent.stat().st_mode & 0o777 == 0o700
    s.close()


@pytest.mark.expect_log(r"giving up after \d+ tries")
@pytest.mark.expect_log(r"neurofs\.fs\.saving: .*cannot keep a copy of your text before sending")
def test_a_save_that_cannot_be_journaled_is_refused(tmp_path: Path):
    """No journal, no send: the daemon cannot promise to keep the bytes."""
    import trio

    from neurofs.errors import NeurofsError
    from neurofs.fs.saving import Saver
    from neurofs.tree.sidecar import Sidecar, SidecarSpec

    sent: list[object] = []

    async def load(fresh: bool) -> dict[str, object]:
        return {"name": "before"}

    async def send(changes: object, merged: object, current: object) -> None:
        sent.append(changes)

    sidecar = Sidecar(KEY, SidecarSpec(load=load, validate=lambda doc: None, send=send))
    s = store(tmp_path)
    assert s.journal is not None
    # Entries cannot be created: the journal's directory is gone (root ignores modes).
    (tmp_path / "journal").rename(tmp_path / "elsewhere")
    errors = ErrorLog()
    edits = Saver(errors, s)

    async def save() -> None:
        await edits.commit_bytes(sidecar, b"name: after\n", None)

    with pytest.raises(NeurofsError, match="nothing was sent"):
        trio.run(save)
    assert sent == []
    assert "nothing was sent" in errors.render().decode()
    # With the journal back, the same save goes out.
    (tmp_path / "elsewhere").rename(tmp_path / "journal")
    trio.run(save)
    assert len(sent) == 1
