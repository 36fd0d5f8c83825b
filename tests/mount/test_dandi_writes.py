"""Editing dandiset.yaml through a real mount, with the tools people use.

Each save must become exactly one PUT carrying the server's state with only the user's change
applied; every bad input must fail at close with the right errno, send nothing when the input
was locally invalid, leave the server unchanged, keep the user's bytes and log one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from neurofs.sources.dandi.sidecars import COMPUTED_KEYS

from .conftest import OTHER_TOKEN, Emulator, Mount

pytestmark = pytest.mark.mount

DANDISET = "000004"
SIDECAR = f"dandi/{DANDISET}/draft/dandiset.yaml"


@pytest.fixture
def mount(make_mount, private_dandi_emulator: Emulator) -> Mount:
    m = make_mount(private_dandi_emulator, retry_seconds=1)
    private_dandi_emulator.clear_refusals()
    private_dandi_emulator.reset()
    return m


def edited(text: str, key: str, value: Any) -> str:
    doc = yaml.safe_load(text)
    doc[key] = value
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def assert_one_put_changing(emulator: Emulator, before: dict, key: str, value: Any) -> None:
    writes = emulator.writes()
    assert [(w["method"], w["path"]) for w in writes] == [
        ("PUT", f"/api/dandisets/{DANDISET}/versions/draft/")
    ], writes
    sent = writes[0]["body"]["metadata"]
    expected = {k: v for k, v in before.items() if k not in COMPUTED_KEYS}
    expected[key] = value
    assert sent == expected
    assert emulator.draft_metadata(DANDISET)[key] == value


# ---------------------------------------------------------------- editors and tools


def _sed(path: Path, key: str, value: str) -> None:
    subprocess.run(["sed", "-i", f"s/^{key}: .*/{key}: {value}/", str(path)], check=True)


def _vim(*settings: str) -> Callable[[Path, str, str], None]:
    def run(path: Path, key: str, value: str) -> None:
        commands = [f"set {s}" for s in settings] + [f"%s/^{key}: .*/{key}: {value}/", "wq"]
        args = ["vim", "-u", "NONE", "-i", "NONE", "-N", "-es"]
        for c in commands:
            args += ["-c", c]
        result = subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr

    return run


def _python_write(path: Path, key: str, value: str) -> None:
    text = edited(path.read_text(), key, value)
    with open(path, "w") as f:
        f.write(text)


def _shell_redirect(path: Path, key: str, value: str) -> None:
    text = edited(path.read_text(), key, value)
    subprocess.run(["sh", "-c", 'printf "%s" "$1" > "$2"', "sh", text, str(path)], check=True)


def _cp_other(path: Path, key: str, value: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(edited(path.read_text(), key, value))
    subprocess.run(["cp", f.name, str(path)], check=True)
    os.unlink(f.name)


def _truncate_then_write(path: Path, key: str, value: str) -> None:
    text = edited(path.read_text(), key, value)
    with open(path, "r+") as f:
        f.truncate(0)
        f.write(text)


def _atomic_rename(path: Path, key: str, value: str) -> None:
    text = edited(path.read_text(), key, value)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dandiset.yaml.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


EDITORS = {
    "sed -i": _sed,
    "vim": _vim(),
    "vim backupcopy=no": _vim("backupcopy=no"),
    "vim backup writebackup": _vim("backup", "writebackup", "backupcopy=auto"),
    "python open(w)": _python_write,
    "shell >": _shell_redirect,
    "cp": _cp_other,
    "truncate then write": _truncate_then_write,
    "atomic rename": _atomic_rename,
}


@pytest.mark.parametrize("tool", EDITORS)
def test_each_editor_sends_exactly_one_put_with_the_change(
    tool: str, mount: Mount, private_dandi_emulator: Emulator
):
    if tool.startswith("vim") and shutil.which("vim") is None:
        pytest.fail("vim is not installed (scripts/test installs it)")
    emulator = private_dandi_emulator
    path = mount / SIDECAR
    before = emulator.draft_metadata(DANDISET)
    value = f"Edited with {tool.replace(' ', '_').replace('/', '_')}"
    emulator.reset()
    EDITORS[tool](path, "description", value)
    assert_one_put_changing(emulator, before, "description", value)
    # The sidecar shows the new state, and nothing the editor made is left behind.
    assert yaml.safe_load(path.read_text())["description"] == value
    leftovers = [
        n for n in os.listdir(path.parent) if n not in ("dandiset.yaml", "README.txt", "sub-01")
    ]
    assert leftovers == []


def test_unchanged_save_sends_nothing(mount: Mount, private_dandi_emulator: Emulator):
    path = mount / SIDECAR
    text = path.read_text()
    private_dandi_emulator.reset()
    path.write_text(text)
    subprocess.run(["cp", str(path), str(path.parent / "copy.yaml")], check=True)
    os.unlink(path.parent / "copy.yaml")
    assert private_dandi_emulator.writes() == []


def test_official_client_sees_the_edit(mount: Mount, private_dandi_emulator: Emulator):
    from tests.conformance.venvs import ensure_venv

    python = ensure_venv("conformance-venv", ".venv-conformance")
    _python_write(mount / SIDECAR, "description", "Seen by the official client")
    code = (
        "import json\n"
        "from dandi.dandiapi import DandiAPIClient\n"
        f"c = DandiAPIClient(api_url={private_dandi_emulator.api_url!r})\n"
        f"print(json.dumps(c.get_dandiset({DANDISET!r}, 'draft').get_raw_metadata()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "DANDI_NO_ET": "1", "DANDI_CACHE": "ignore"},
        check=True,
    )
    metadata = json.loads(result.stdout.strip().splitlines()[-1])
    assert metadata["description"] == "Seen by the official client"


def test_concurrent_server_edit_of_another_field_survives(
    mount: Mount, private_dandi_emulator: Emulator
):
    emulator = private_dandi_emulator
    path = mount / SIDECAR
    with open(path) as f:  # the user opens and reads the file...
        text = f.read()
    # ...someone else changes another field on the server...
    current = emulator.draft_metadata(DANDISET)
    current["keywords"] = ["changed", "elsewhere"]
    with emulator.api() as c:
        c.put(
            f"dandisets/{DANDISET}/versions/draft/",
            json={"metadata": current, "name": current["name"]},
        ).raise_for_status()
    # ...and the user saves their own change, from the text they read.
    with open(path, "w") as f:
        f.write(edited(text, "description", "Mine"))
    after = emulator.draft_metadata(DANDISET)
    assert after["description"] == "Mine"
    assert after["keywords"] == ["changed", "elsewhere"]


@pytest.mark.expect_log(r"write refused \(EBUSY\): .* was changed on the server since you read it")
def test_same_field_changed_on_both_sides_is_ebusy(mount: Mount, private_dandi_emulator: Emulator):
    emulator = private_dandi_emulator
    path = mount / SIDECAR
    text = path.read_text()
    current = emulator.draft_metadata(DANDISET)
    current["description"] = "Theirs"
    with emulator.api() as c:
        c.put(
            f"dandisets/{DANDISET}/versions/draft/",
            json={"metadata": current, "name": current["name"]},
        ).raise_for_status()
    emulator.reset()
    data = edited(text, "description", "Mine, conflicting").encode()
    code = write_and_close(path, data)
    assert code == errno.EBUSY
    assert emulator.writes() == []
    assert emulator.draft_metadata(DANDISET)["description"] == "Theirs"
    assert_kept(mount, data)


def test_published_version_is_read_only(mount: Mount):
    release = os.listdir(mount / "dandi/000001/releases")[0]
    path = mount / f"dandi/000001/releases/{release}/dandiset.yaml"
    assert os.stat(path).st_mode & 0o777 == 0o444
    with pytest.raises(OSError) as info, open(path, "w"):
        pass
    assert info.value.errno == errno.EROFS


# ---------------------------------------------------------------- bad inputs


def write_and_close(path: Path, data: bytes) -> int:
    """Write ``data`` with open/write/close; the errno of the first failure, or 0."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        view = memoryview(data)
        while view:  # short writes are normal; keep going like every careful writer
            view = view[os.write(fd, view) :]
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.close(fd)
        return exc.errno or -1
    try:
        os.close(fd)
    except OSError as exc:
        return exc.errno or -1
    return 0


def assert_kept(mount: Mount, data: bytes) -> None:
    kept_dir = mount / ".neurofs/rejected/dandi" / DANDISET / "draft"
    kept = sorted(kept_dir.iterdir(), key=lambda p: p.stat().st_mtime)
    assert any(p.read_bytes() == data for p in kept), "the refused bytes must be kept"


def _doc(mount: Mount) -> dict:
    return yaml.safe_load((mount / SIDECAR).read_text())


def _with(**changes: Any) -> Callable[[Mount], bytes]:
    def make(mount: Mount) -> bytes:
        doc = _doc(mount)
        doc.update(changes)
        return yaml.safe_dump(doc, sort_keys=False).encode()

    return make


def _without(key: str) -> Callable[[Mount], bytes]:
    def make(mount: Mount) -> bytes:
        doc = _doc(mount)
        doc.pop(key)
        return yaml.safe_dump(doc, sort_keys=False).encode()

    return make


def _raw(data: bytes) -> Callable[[Mount], bytes]:
    return lambda mount: data


LOCALLY_INVALID = {
    "unclosed YAML list": _raw(b"name: [unclosed\n"),
    "tab indentation": _raw(b"name: x\n\tdescription: y\n"),
    "YAML list at top": _raw(b"- a\n- b\n"),
    "YAML scalar at top": _raw(b"just some text\n"),
    "empty file": _raw(b""),
    "only whitespace": _raw(b"   \n\n"),
    "binary garbage": _raw(bytes(range(256)) * 4),
    "invalid UTF-8": _raw(b"name: \xff\xfe\n"),
    "python tag": _raw(b"name: !!python/object:os.system x\n"),
    "missing name": _without("name"),
    "blank name": _with(name=""),
    "whitespace name": _with(name="   "),
    "name over 300 chars": _with(name="x" * 301),
    "name is a number": _with(name=123),
    "name is null": _with(name=None),
    "name is a mapping": _with(name={"a": 1}),
    "description is a list": _with(description=[1, 2]),
    "license is a string": _with(license="spdx:CC-BY-4.0"),
    "keywords hold a number": _with(keywords=[1]),
    "contributor is a string": _with(contributor="me"),
    "studyTarget is a number": _with(studyTarget=5),
    "unknown key (typo)": _with(descripton="typo"),
    "unknown key": _with(foo="bar"),
    "only computed keys changed (identifier)": _with(identifier="DANDI:999999"),
    "only computed keys changed (citation)": _with(citation="Someone else (2020)"),
    "only computed keys changed (dateCreated)": _with(dateCreated="1999-01-01T00:00:00Z"),
}


@pytest.mark.parametrize("case", LOCALLY_INVALID)
@pytest.mark.expect_log(r"write refused \(EINVAL\)")
def test_locally_invalid_input_is_einval_and_sends_nothing(
    case: str, mount: Mount, private_dandi_emulator: Emulator
):
    emulator = private_dandi_emulator
    before = emulator.draft_metadata(DANDISET)
    data = LOCALLY_INVALID[case](mount)
    log_before = (mount / ".neurofs/errors.log").read_text().count("\n")
    emulator.reset()
    assert write_and_close(mount / SIDECAR, data) == errno.EINVAL
    assert emulator.writes() == []
    assert emulator.draft_metadata(DANDISET) == before
    assert_kept(mount, data)
    log = (mount / ".neurofs/errors.log").read_text().splitlines()
    assert len(log) == log_before + 1 and "EINVAL" in log[-1] and "dandiset.yaml" in log[-1]
    # The sidecar shows the server's state again.
    assert yaml.safe_load((mount / SIDECAR).read_text()) == before


@pytest.mark.expect_log(r"write refused \(EFBIG\): the file grew beyond")
def test_huge_write_is_efbig(mount: Mount, private_dandi_emulator: Emulator):
    emulator = private_dandi_emulator
    emulator.reset()
    data = b"x" * (17 * 1024 * 1024)
    assert write_and_close(mount / SIDECAR, data) == errno.EFBIG
    # A single write(2) is cut short at the cap; the refusal then comes at close.
    fd = os.open(mount / SIDECAR, os.O_WRONLY | os.O_TRUNC)
    assert os.write(fd, data) < len(data)
    with pytest.raises(OSError) as info:
        os.close(fd)
    assert info.value.errno == errno.EFBIG
    assert emulator.writes() == []
    kept = list((mount / ".neurofs/rejected/dandi" / DANDISET / "draft").iterdir())
    assert any(p.stat().st_size == 16 * 1024 * 1024 for p in kept)


SERVER_REFUSALS = {
    "400 validation": (400, {"name": ["This field may not be blank."]}, errno.EINVAL),
    "403 not owner": (
        403,
        {"detail": "You do not have permission to perform this action."},
        errno.EACCES,
    ),
    "401 anonymous": (
        401,
        {"detail": "Authentication credentials were not provided."},
        errno.EACCES,
    ),
    "409 conflict": (409, "Dandiset is currently locked", errno.EBUSY),
    "500 server error": (500, {"detail": "Internal Server Error"}, errno.EIO),
    "503 unavailable": (503, {"detail": "Service Unavailable"}, errno.EIO),
}


@pytest.mark.parametrize("case", SERVER_REFUSALS)
@pytest.mark.expect_log(
    r"write refused \(E[A-Z]+\): PUT .*: HTTP \d{3}",
    r"PUT .*: giving up after \d+ tries: HTTP 50\d",
)
def test_server_refusals(case: str, mount: Mount, private_dandi_emulator: Emulator):
    status, body, expected = SERVER_REFUSALS[case]
    emulator = private_dandi_emulator
    before = emulator.draft_metadata(DANDISET)
    # Server errors are retried for retry_seconds: refuse more times than that allows.
    emulator.refuse("PUT", f"/api/dandisets/{DANDISET}/", status, body, times=50)
    data = _with(description=f"refused with {status}")(mount)
    assert write_and_close(mount / SIDECAR, data) == expected
    emulator.clear_refusals()
    assert emulator.draft_metadata(DANDISET) == before
    assert_kept(mount, data)
    last = (mount / ".neurofs/errors.log").read_text().splitlines()[-1]
    assert errno.errorcode[expected] in last and str(status) in last


@pytest.mark.expect_log(r"write refused \(EACCES\): PUT .*: HTTP 403")
def test_writes_without_ownership_are_eacces(make_mount, private_dandi_emulator: Emulator):
    emulator = private_dandi_emulator
    mount = make_mount(emulator, token=OTHER_TOKEN, retry_seconds=1)
    before = emulator.draft_metadata(DANDISET)
    data = _with(description="not mine")(mount)
    assert write_and_close(mount / SIDECAR, data) == errno.EACCES
    assert emulator.draft_metadata(DANDISET) == before
    assert_kept(mount, data)


def test_without_a_token_the_draft_is_read_only(
    make_mount, private_dandi_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
):
    """Sidecars show 0444 and refuse a write at open (EACCES); moving or deleting an asset
    is refused before any request; nothing reaches the server."""
    monkeypatch.delenv("DANDI_API_KEY", raising=False)
    emulator = private_dandi_emulator
    mount = make_mount(emulator, token=None, fuse_options=["allow_delete"])
    draft = mount / f"dandi/{DANDISET}/draft"
    sidecars = [mount / SIDECAR, mount / f"dandi/{DANDISET}/draft.meta/sub-01/sub-01_probe.json"]
    before = [p.read_bytes() for p in sidecars]
    emulator.reset()
    for path in sidecars:
        assert os.stat(path).st_mode & 0o777 == 0o444
        for flags in (os.O_WRONLY | os.O_TRUNC, os.O_RDWR, os.O_WRONLY | os.O_APPEND):
            with pytest.raises(OSError) as info:
                os.close(os.open(path, flags))
            assert info.value.errno == errno.EACCES
    with pytest.raises(OSError) as info:
        os.rename(draft / "README.txt", draft / "sub-01/README.txt")
    assert info.value.errno == errno.EACCES
    with pytest.raises(OSError) as info:
        os.unlink(draft / "README.txt")
    assert info.value.errno == errno.EACCES
    assert emulator.writes() == []
    assert [p.read_bytes() for p in sidecars] == before
    assert (draft / "README.txt").exists()
    assert "needs a DANDI token" in (mount / ".neurofs/errors.log").read_text()


@pytest.mark.expect_log(
    r"giving up after \d+ tries: ConnectError",
    r"server unreachable; serving the answer kept on disk",
    r"write refused \(EIO\): PUT .*: not sent, the server is down",
)
def test_server_down_is_eio_and_keeps_the_bytes(make_mount, tmp_path: Path):
    from neurofs_emulators.launch import start_emulator

    with start_emulator("dandi", []) as running:
        emulator = Emulator(running)
        mount = make_mount(emulator, retry_seconds=1)
        path = mount / SIDECAR
        data = _with(description="never arrives")(mount)
    assert write_and_close(path, data) == errno.EIO
    assert_kept(mount, data)


@pytest.mark.expect_log(r"write refused \(EINVAL\): invalid YAML")
def test_rejected_copies_survive_remount(mount: Mount):
    data = b"name: [broken\n"
    assert write_and_close(mount / SIDECAR, data) == errno.EINVAL
    mount.remount()
    assert_kept(mount, data)


def test_scratch_files_live_in_memory_and_vanish(mount: Mount, private_dandi_emulator: Emulator):
    folder = mount / f"dandi/{DANDISET}/draft"
    private_dandi_emulator.reset()
    (folder / ".notes.swp").write_bytes(b"scratch")
    assert ".notes.swp" in os.listdir(folder)
    assert (folder / ".notes.swp").read_bytes() == b"scratch"
    os.rename(folder / ".notes.swp", folder / "notes~")
    assert (folder / "notes~").read_bytes() == b"scratch"
    os.unlink(folder / "notes~")
    assert "notes~" not in os.listdir(folder)
    (folder / "left-behind.tmp").write_bytes(b"x")
    mount.remount()
    assert "left-behind.tmp" not in os.listdir(folder)
    assert private_dandi_emulator.writes() == []
    # Published versions take no scratch files.
    release = os.listdir(mount / "dandi/000001/releases")[0]
    with pytest.raises(OSError) as info:
        (mount / f"dandi/000001/releases/{release}/x.tmp").write_bytes(b"x")
    assert info.value.errno == errno.EROFS


def test_sidecars_cannot_be_deleted(mount: Mount):
    with pytest.raises(OSError) as info:
        os.unlink(mount / SIDECAR)
    assert info.value.errno == errno.EPERM


def test_fsync_commits(mount: Mount, private_dandi_emulator: Emulator):
    emulator = private_dandi_emulator
    path = mount / SIDECAR
    data = _with(description="fsynced")(mount)
    emulator.reset()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, data)
    os.fsync(fd)
    assert len(emulator.writes()) == 1
    os.close(fd)
    assert len(emulator.writes()) == 1  # close after fsync sends nothing more
    assert emulator.draft_metadata(DANDISET)["description"] == "fsynced"
