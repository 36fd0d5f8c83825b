"""Tokens never leak: not in logs at any level, stats, errors.log, rejected copies, exception
messages, ``ps`` output, ``.neurofs/config.json`` or the cache directory.

One mount of all three services, each signed in a different way (DANDI: ``token`` in the
config file; WEBKNOSSOS: ``token_env`` plus a sharing token from ``sharing_token_env``; CAVE:
the official client's token file), logging at debug level. The run provokes errors: refusals
whose messages echo the token back (401, 403, 500), refused sidecar writes (so rejected
copies exist), reads of missing paths, a sharing token fetched from the server, and the
server going down. Then every artefact is searched for every token, plain and URL-encoded.
HOME and XDG_RUNTIME_DIR point into the test's directory so that every file the daemon
writes (log, rejected store, pid file) is found and searched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest

from neurofs_emulators.cave.sample import ALIGNED_VOLUME
from neurofs_emulators.cave.sample import DATASTACK as CAVE_DATASTACK
from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_TOKEN
from neurofs_emulators.dandi.sample import OWNER_TOKEN as DANDI_TOKEN
from neurofs_emulators.launch import start_emulator
from neurofs_emulators.webknossos.sample import DATASET_L4, ORGANIZATION, sharing_token_for
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_TOKEN
from tests.mount.conftest import (
    NEUROFS,
    CaveEmulator,
    Emulator,
    Mount,
    WkEmulator,
    require_fuse,
)
from tests.reliability.conftest import Figures

WK_TOKEN_ENV = "NEUROFS_TEST_WK_TOKEN"
WK_SHARING_ENV = "NEUROFS_TEST_WK_SHARING_TOKEN"
RETRY_SECONDS = 2


def _forms(token: str) -> set[str]:
    return {token, quote(token, safe=""), quote_plus(token)}


def _isolated_env(home: Path) -> dict[str, str]:
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home / "run"),
        WK_TOKEN_ENV: WK_TOKEN,
        WK_SHARING_ENV: sharing_token_for(DATASET_L4),
    }
    (home / "run").mkdir(parents=True, mode=0o700)
    return env


def _config(path: Path, dandi: Emulator, wk: WkEmulator, cave: CaveEmulator) -> Path:
    path.write_text(
        f"""
[[source]]
kind = "dandi"
name = "dandi"
url = "{dandi.api_url}"
token = "{DANDI_TOKEN}"
retry_seconds = {RETRY_SECONDS}

[[source]]
kind = "webknossos"
name = "webknossos"
url = "{wk.api_url}"
token_env = "{WK_TOKEN_ENV}"
sharing_token_env = "{WK_SHARING_ENV}"
retry_seconds = {RETRY_SECONDS}

[[source]]
kind = "cave"
name = "cave"
url = "{cave.api_url}"
datastacks = ["{CAVE_DATASTACK}"]
retry_seconds = {RETRY_SECONDS}
"""
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def own_dandi_emulator() -> Iterator[Emulator]:
    """A DANDI emulator of this test alone: the test stops it (the server goes down)."""
    with start_emulator("dandi", []) as running:
        yield Emulator(running)


@pytest.fixture
def signed_in(
    tmp_path: Path,
    own_dandi_emulator: Emulator,
    wk_emulator: WkEmulator,
    cave_emulator: CaveEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Mount]:
    require_fuse()
    home = tmp_path / "home"
    secrets_dir = home / ".cloudvolume" / "secrets"
    secrets_dir.mkdir(parents=True)
    (secrets_dir / "cave-secret.json").write_text(json.dumps({"token": CAVE_TOKEN}))
    for name in ("CAVE_TOKEN", "DANDI_API_KEY", "WK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "mnt").mkdir()
    mount = Mount(
        tmp_path / "mnt",
        _config(tmp_path / "config.toml", own_dandi_emulator, wk_emulator, cave_emulator),
        tmp_path / "cache",
        extra=["--log-level", "debug"],
        env=_isolated_env(home),
    )
    mount.start()
    try:
        yield mount
    finally:
        for emulator in (own_dandi_emulator, wk_emulator, cave_emulator):
            with contextlib.suppress(httpx.HTTPError):  # the DANDI one was stopped
                emulator.clear_refusals()
        mount.stop()


def _errno_of(action: object) -> int | None:
    try:
        action()  # type: ignore[operator]
    except OSError as exc:
        return exc.errno
    return None


def _save(path: Path, data: bytes) -> int | None:
    """Write ``data`` as an editor's save; the errno close(2) reported, or None."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        try:
            os.close(fd)
        except OSError as exc:
            return exc.errno
    return None


def _provoke(
    mount: Mount, dandi: Emulator, wk: WkEmulator, cave: CaveEmulator
) -> dict[str, int | None]:
    """Errors of every kind, with the servers echoing each token back in their messages."""
    seen: dict[str, int | None] = {}
    echo = {
        "dandi": {"detail": f"Invalid token {DANDI_TOKEN} ({quote(DANDI_TOKEN)})"},
        "wk": {"messages": [{"error": f"X-Auth-Token {WK_TOKEN} may not do this"}]},
        "cave": {"error": "invalid_token", "message": f"Bearer {CAVE_TOKEN} is not valid"},
    }
    # Reads that work first, so that the cache and the offline answers hold something.
    seen["list dandiset"] = _errno_of(lambda: os.listdir(mount / "dandi/000004/draft"))
    ds = mount / f"webknossos/datasets/{ORGANIZATION}/l4_demo"
    seen["read dataset.json"] = _errno_of(lambda: (ds / "dataset.json").read_bytes())
    sharing = (ds / "sharing-token").read_text().strip()
    table = mount / f"cave/{CAVE_DATASTACK}/tables/bound_tag"
    seen["read table"] = _errno_of(lambda: (table / "annotations.csv").read_bytes())
    # 401 and 403 on reads, their messages holding the token.
    dandi.refuse("GET", "/api/dandisets/000002/", 401, echo["dandi"], times=20)
    seen["401 dandiset"] = _errno_of(lambda: (mount / "dandi/000002").stat())
    cave.refuse(
        "GET", f"/annotation/api/v2/aligned_volume/{ALIGNED_VOLUME}/table/synapse", 401,
        echo["cave"], times=20,
    )  # fmt: skip
    seen["401 cave metadata"] = _errno_of(
        lambda: (mount / f"cave/{CAVE_DATASTACK}/tables/synapse/metadata.json").read_bytes()
    )
    # Refused saves: rejected copies and errors.log lines, the server's message echoing.
    yaml_path = mount / "dandi/000004/draft/dandiset.yaml"
    text = yaml_path.read_bytes()
    dandi.refuse("PUT", "/api/dandisets/000004/", 403, echo["dandi"], times=20)
    seen["403 dandi save"] = _save(
        yaml_path, text.replace(b"name: ", b"name: Edited ", 1) + b"# my notes\n"
    )
    wk.refuse("PATCH", "/api/v1", 403, echo["wk"], times=20)
    doc = json.loads((ds / "dataset.json").read_text())
    doc["description"] = "edited under test"
    seen["403 wk save"] = _save(ds / "dataset.json", json.dumps(doc).encode())
    seen["invalid wk save"] = _save(ds / "dataset.json", b"{not json")
    # 500s (with the token in the body) until the retry budget is spent.
    dandi.refuse("GET", "/api/dandisets/000003/", 500, echo["dandi"], times=1000)
    seen["500 dandiset"] = _errno_of(lambda: (mount / "dandi/000003").stat())
    # Missing paths.
    seen["missing dandiset"] = _errno_of(lambda: (mount / "dandi/999999").stat())
    seen["missing file"] = _errno_of(lambda: (mount / "dandi/000004/draft/nope.nwb").stat())
    seen["sharing token read"] = 0 if sharing else None
    return seen


def _server_down(mount: Mount, dandi: Emulator) -> int | None:
    """The DANDI server goes away: a read of something never read before fails with EIO."""
    dandi.running.stop()
    t0 = time.monotonic()
    code = _errno_of(lambda: os.listdir(mount / "dandi/000001/releases"))
    assert time.monotonic() - t0 < 10 * RETRY_SECONDS + 30
    return code


def _artefacts(mount: Mount, home: Path) -> dict[str, bytes]:
    """Everything the daemon and the CLI wrote or show, by name."""
    found: dict[str, bytes] = {"mount command output": mount.last_output.encode()}
    for name in ("stats.json", "config.json", "errors.log"):
        found[f".neurofs/{name}"] = (mount / ".neurofs" / name).read_bytes()
    for where, _, files in os.walk(mount / ".neurofs/rejected"):
        for f in files:
            found[f"mount rejected/{f}"] = Path(where, f).read_bytes()
    for top in (home, mount.cache_dir, mount.config.parent / "run"):
        for where, _, files in os.walk(top):
            for f in files:
                path = Path(where, f)
                if ".cloudvolume" in path.parts:  # the token file itself
                    continue
                found[str(path.relative_to(mount.config.parent))] = path.read_bytes()
    daemon_pid = int(mount.last_output.split("daemon pid ", 1)[1].split(",", 1)[0])
    ps = subprocess.run(
        ["ps", "-ww", "-o", "args", "-p", str(daemon_pid)], capture_output=True, check=True
    )
    found["ps of the daemon"] = ps.stdout
    found["/proc/mounts"] = Path("/proc/mounts").read_bytes()
    return found


@pytest.mark.expect_log(
    r"write refused \(E(ACCES|INVAL)\)",
    r"giving up after \d+ tries: (HTTP 5\d\d|ConnectError)",
)
def test_no_token_in_any_artefact(
    signed_in: Mount,
    own_dandi_emulator: Emulator,
    wk_emulator: WkEmulator,
    cave_emulator: CaveEmulator,
    report: Figures,
) -> None:
    mount = signed_in
    home = mount.config.parent / "home"
    seen = _provoke(mount, own_dandi_emulator, wk_emulator, cave_emulator)
    assert seen["401 dandiset"] == errno.EACCES, seen
    assert seen["401 cave metadata"] == errno.EACCES, seen
    assert seen["403 dandi save"] == errno.EACCES, seen
    assert seen["403 wk save"] == errno.EACCES, seen
    assert seen["invalid wk save"] == errno.EINVAL, seen
    assert seen["500 dandiset"] == errno.EIO, seen
    assert seen["missing dandiset"] == errno.ENOENT, seen
    errors_log = (mount / ".neurofs/errors.log").read_text()
    assert "Invalid token ***" in errors_log  # the echoed token, masked
    fetched_sharing = (
        (mount / f"webknossos/datasets/{ORGANIZATION}/l4_demo/sharing-token").read_text().strip()
    )
    seen["server down"] = _server_down(mount, own_dandi_emulator)
    assert seen["server down"] == errno.EIO, seen

    artefacts = _artefacts(mount, home)
    log_files = [k for k in artefacts if k.startswith("home/.local/state/neurofs/log/")]
    assert log_files and any(b" DEBUG " in artefacts[k] for k in log_files), "no debug log"
    rejected = [k for k in artefacts if "/rejected/" in k]
    assert rejected, "no rejected copy was made: the test would prove nothing about them"
    assert any(k.endswith(".sqlite") for k in artefacts), "no responses.sqlite searched"
    assert any("pid" in k for k in artefacts), "no pid file searched"

    tokens = {
        "DANDI token": DANDI_TOKEN,
        "WEBKNOSSOS token": WK_TOKEN,
        "WEBKNOSSOS configured sharing token": sharing_token_for(DATASET_L4),
        "WEBKNOSSOS fetched sharing token": fetched_sharing,
        "CAVE token": CAVE_TOKEN,
    }
    leaks = [
        f"{what} in {name}"
        for name, data in artefacts.items()
        for what, token in tokens.items()
        if any(form.encode() in data for form in _forms(token))
    ]
    report.operations = len(seen)
    report.bytes_verified = sum(len(v) for v in artefacts.values())
    report.tokens_leaked = len(leaks)
    report.note = f"{len(artefacts)} artefacts searched for {len(tokens)} tokens; errnos {seen}"
    assert not leaks, leaks


def test_tokens_are_never_taken_from_the_command_line() -> None:
    """No option of ``neurofs mount`` takes a token (so none can show up in ``ps``)."""
    out = subprocess.run(
        [*NEUROFS, "mount", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "token" not in out and "secret" not in out and "password" not in out


# ---------------------------------------------------------------- redaction itself


def test_redaction_covers_the_forms_a_token_takes_in_urls() -> None:
    from neurofs import secrets

    token = "tok+en/with=odd&chars?"
    secrets.register(token)
    for form in _forms(token):
        text = secrets.redact(f"GET https://host/api?x={form} and header {form}")
        assert not any(f in text for f in _forms(token)), text


def test_an_uncaught_exception_never_prints_a_token(tmp_path: Path) -> None:
    """Tracebacks that bypass logging (an uncaught exception, in a thread too) are masked."""
    code = (
        "import threading\n"
        "from neurofs import secrets\n"
        "from neurofs.cli.main import _setup_logging\n"
        "_setup_logging('debug')\n"
        "secrets.register('s3cr3t-t0ken-value')\n"
        "def boom():\n"
        "    raise RuntimeError('sent s3cr3t-t0ken-value to the server')\n"
        "t = threading.Thread(target=boom); t.start(); t.join()\n"
        "import warnings; warnings.warn('s3cr3t-t0ken-value in a warning')\n"
        "boom()\n"
    )
    result = subprocess.run(
        [NEUROFS[0], "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr and "***" in result.stderr
    assert "s3cr3t-t0ken-value" not in result.stderr + result.stdout


def test_no_command_line_holds_a_token(
    tmp_path: Path, private_dandi_emulator: Emulator, report: Figures
) -> None:
    """``ps -ww -o args`` of every process while ``neurofs mount`` starts (the command and
    the daemon it spawns) and while the daemon serves: no token."""
    require_fuse()
    (tmp_path / "mnt").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[source]]\nkind = "dandi"\nname = "dandi"\nurl = "{private_dandi_emulator.api_url}"\n'
        f'token = "{DANDI_TOKEN}"\n'
    )
    config.chmod(0o600)
    command = [*NEUROFS, "mount", str(tmp_path / "mnt"), "--config", str(config)]
    command += ["--cache-dir", str(tmp_path / "cache"), "--log-level", "debug"]
    starting = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    snapshots: list[bytes] = []
    while starting.poll() is None:
        snapshots.append(
            subprocess.run(["ps", "-ww", "-e", "-o", "args"], capture_output=True).stdout
        )
        time.sleep(0.05)
    out, err = starting.communicate()
    assert starting.returncode == 0, err
    mount = Mount(tmp_path / "mnt", config, tmp_path / "cache")
    try:
        (mount / "dandi/000004/draft").stat()
        snapshots.append(
            subprocess.run(["ps", "-ww", "-e", "-o", "args"], capture_output=True).stdout
        )
        # The snapshots did catch the processes: the command while it started, the daemon.
        target = str(tmp_path / "mnt").encode()
        assert any(target in s for s in snapshots[:-1])
        assert any(target in line and b"--ready-fd" in line for line in snapshots[-1].splitlines())
        leaked = sum(1 for s in snapshots if any(f.encode() in s for f in _forms(DANDI_TOKEN)))
        leaked += int(any(f.encode() in out + err for f in _forms(DANDI_TOKEN)))
        report.operations = len(snapshots)
        report.tokens_leaked = leaked
        report.note = f"{len(snapshots)} snapshots of ps -ww -e -o args"
        assert leaked == 0
    finally:
        mount.stop()
