"""The corpus of bad sidecar writes (``corpus/bad_writes.py``) through real mounts.

One emulator and one mount per service serve every case of that service; the cases of a
server that is down get a second mount whose emulator is stopped once the files were read.
For every case the test checks:

1. the errno the writer sees (at write, close or fsync; for ``sed -i`` and shell
   redirections, the error the tool reports);
2. zero lost bytes: exactly one new file under ``.neurofs/rejected/`` holds the bytes written,
   byte for byte (for a write past the size cap, every byte the file accepted), and
   ``errors.log`` has a new line naming the file with that errno;
3. the server is unchanged: no write reached it (locally refused text), or only refused ones
   (refusals and cut connections), its state is the same as before, and the file reads back
   as before (a new file's directory lists what it listed).

Each service's test reports one row: operations = cases run, bytes verified = bytes found kept,
edits lost = cases whose bytes were not kept or whose change reached the server.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurofs.sources.webknossos.api import choose_version
from neurofs.sources.webknossos.models import BuildInfo
from neurofs_emulators.cave.sample import DATASTACK, STATE_ID
from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_TOKEN
from neurofs_emulators.dandi.sample import OWNER_TOKEN as DANDI_TOKEN
from neurofs_emulators.launch import start_emulator
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_TOKEN
from tests.mount.conftest import (
    CaveEmulator,
    Emulator,
    Mount,
    WkEmulator,
    require_fuse,
    write_config,
)
from tests.reliability.conftest import Figures
from tests.reliability.corpus.bad_writes import CASES, TARGETS, Case, Target, yset
from tests.unavailable import unavailable

pytestmark = [
    pytest.mark.mount,
    # Every case is a refused save; the server-side ones include a server that is down.
    pytest.mark.expect_log(
        r"neurofs\.fs\.saving: .*: write refused \(E[A-Z]+\)",
        r"neurofs\.io\.http: .*giving up after \d+ tries",
        r"server unreachable; serving the answer kept on disk",
    ),
]

TOKENS = {"dandi": DANDI_TOKEN, "webknossos": WK_TOKEN, "cave": CAVE_TOKEN}
# Short, so that persistent 5xx, cuts and a server that is down cost seconds, not minutes.
RETRY_SECONDS = 3
# A case that takes longer than this is a hang (the daemon stopped answering).
WRITE_TIMEOUT = 120
DANDISET = "000004"

_BY_MESSAGE = {os.strerror(code): code for code in errno.errorcode}


def _write_in_process(mode: str, path: Path, data: bytes) -> int:
    """Python's own ways of writing a file; the errno of the first failure, or 0."""
    first = 0
    if mode == "python":
        f = None
        try:
            f = open(path, "wb")  # noqa: SIM115 - close is checked on its own
            f.write(data)
        except OSError as exc:
            first = exc.errno or -1
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                first = first or exc.errno or -1
        return first
    flags = os.O_WRONLY | (os.O_APPEND if mode == "append" else os.O_TRUNC | os.O_CREAT)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        return exc.errno or -1
    try:
        view = memoryview(data)
        while view:  # short writes are normal; carry on like every careful writer
            view = view[os.write(fd, view) :]
        if mode == "fsync":
            os.fsync(fd)
    except OSError as exc:
        first = exc.errno or -1
    try:
        os.close(fd)
    except OSError as exc:
        first = first or exc.errno or -1
    return first


def _errno_in(stderr: str) -> int:
    """The errno a tool reported, from its message ("sed: cannot rename ...: Invalid
    argument", "cat: write error: File too large")."""
    for line in reversed(stderr.splitlines()):
        for message, code in _BY_MESSAGE.items():
            if line.rstrip().endswith(": " + message):
                return code
    return -1


def write(mode: str, path: Path, data: bytes, sed: str | None = None) -> int:
    """Write ``data`` (or run ``sed``) the way ``mode`` says; the first errno seen, or 0."""
    if mode == "sed":
        assert sed is not None
        done = subprocess.run(
            ["sed", "-i", "-e", sed, str(path)],
            capture_output=True,
            text=True,
            timeout=WRITE_TIMEOUT,
        )
        return 0 if done.returncode == 0 else _errno_in(done.stderr)
    if mode in ("shell", "shell-append"):
        with tempfile.NamedTemporaryFile(delete=False) as source:
            source.write(data)
        try:
            redirect = ">>" if mode == "shell-append" else ">"
            done = subprocess.run(
                ["sh", "-c", f'cat "$1" {redirect} "$2"', "sh", source.name, str(path)],
                capture_output=True,
                text=True,
                timeout=WRITE_TIMEOUT,
            )
            return 0 if done.returncode == 0 else _errno_in(done.stderr)
        finally:
            os.unlink(source.name)
    # In a thread of its own, so that a write the daemon never answers cannot hang the run.
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(_write_in_process(mode, path, data)), daemon=True
    )
    worker.start()
    worker.join(WRITE_TIMEOUT)
    if not result:
        raise subprocess.TimeoutExpired(f"{mode} write of {path}", WRITE_TIMEOUT)
    return result[0]


def sed_result(expression: str, text: bytes) -> bytes:
    """What ``sed -i -e expression`` makes of ``text`` (run on a local copy)."""
    with tempfile.NamedTemporaryFile(delete=False) as local:
        local.write(text)
    try:
        subprocess.run(["sed", "-i", "-e", expression, local.name], check=True)
        return Path(local.name).read_bytes()
    finally:
        os.unlink(local.name)


# ---------------------------------------------------------------- the services


@dataclass
class Service:
    """One service's emulator and mount, and what the corpus needs to know about them."""

    name: str
    emulator: Emulator
    mount: Mount
    # Placeholders of refusal paths and target paths ({wk}, {dataset}, {task}, ...).
    names: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.emulator.running.origin

    def refuse(self, method: str, path: str, status: int, body: Any, times: int, cut: bool) -> None:
        httpx.post(
            f"{self.origin}/__emulator__/refusals",
            json={
                "method": method,
                "path_prefix": path,
                "status": status,
                "body": body,
                "times": times,
                "cut": cut,
            },
            timeout=30,
        ).raise_for_status()

    def mutations(self) -> list[dict[str, Any]]:
        """Logged requests that would change something (queries sent as POST left out)."""
        return [
            r
            for r in self.emulator.requests()
            if r["method"] not in ("GET", "HEAD")
            and not r["path"].endswith("/tasks/list")
            and not r["path"].startswith("/materialize/")
        ]

    def snapshot(self) -> Any:
        """The server state every case could touch, read from the API directly."""
        if self.name == "dandi":
            assets = self.emulator.all_assets(DANDISET, "draft")
            return (
                self.emulator.draft_metadata(DANDISET),
                sorted(((a["path"], a["asset_id"], a["metadata"]) for a in assets), key=str),
            )
        if self.name == "webknossos":
            assert isinstance(self.emulator, WkEmulator)
            with self.emulator.wk() as c:
                return (
                    c.get(f"datasets/{self.names['dataset']}").json(),
                    c.post("tasks/list", json={}).json(),
                    c.get("projects").json(),
                    c.get("taskTypes").json(),
                )
        assert isinstance(self.emulator, CaveEmulator)
        av = self.names["av"].lstrip("/")
        with self.emulator.local() as c:
            return (
                c.get(f"{av}/table").json(),
                c.get(f"{av}/table/bound_tag").json(),
                c.get(f"{av}/table/bound_tag/count").json(),
                c.post(
                    f"materialize/api/v3/datastack/{DATASTACK}/query",
                    params={"return_pyarrow": "false", "split_positions": "false"},
                    json={
                        "table": "bound_tag",
                        "offset": 0,
                        "limit": 200_000,
                        "timestamp": datetime.now(UTC).isoformat(),
                    },
                ).json(),
            )


def _start(service: str, base: Path) -> tuple[Emulator, Mount]:
    running = start_emulator(service, [])
    emulator: Emulator = {"webknossos": WkEmulator, "cave": CaveEmulator}.get(service, Emulator)(
        running
    )
    (base / "mnt").mkdir(parents=True)
    options: dict[str, Any] = {"retry_seconds": RETRY_SECONDS}
    if service == "cave":
        options["datastacks"] = [DATASTACK]
    mount = Mount(
        base / "mnt",
        write_config(base / "config.toml", emulator.api_url, TOKENS[service], service, **options),
        base / "cache",
        # The mount's own state dir: rejected writes and logs of this run only.
        env={"XDG_STATE_HOME": str(base / "state")},
    )
    try:
        mount.start()
    except BaseException:
        running.stop()
        raise
    return emulator, mount


def _names(service: str, emulator: Emulator, mount: Mount) -> dict[str, str]:
    if service == "webknossos":
        info = httpx.get(f"{emulator.running.origin}/api/buildinfo", timeout=30).json()
        dataset = json.loads(
            (mount.path / TARGETS["dataset.json"].path).read_text(),
        )
        project = json.loads((mount.path / TARGETS["project"].path).read_text())
        tasks = sorted(
            n[: -len(".json")]
            for n in os.listdir(mount.path / "webknossos/tasks")
            if n.endswith(".json") and not n.endswith(".annotations.json")
        )
        types = sorted(os.listdir(mount.path / "webknossos/task-types"))
        return {
            "wk": f"/api/v{choose_version(BuildInfo.model_validate(info))}",
            "dataset": dataset["id"],
            "project": project["id"],
            "task": tasks[0],
            "tasktype": types[0][: -len(".json")],
        }
    if service == "cave":
        info = json.loads((mount.path / f"cave/{DATASTACK}/info.json").read_text())
        return {"av": f"/annotation/api/v2/aligned_volume/{info['aligned_volume']['name']}"}
    return {"release": sorted(os.listdir(mount.path / "dandi/000001/releases"))[0]}


@contextlib.contextmanager
def running_service(service: str, base: Path) -> Iterator[Service]:
    emulator, mount = _start(service, base)
    try:
        yield Service(service, emulator, mount, _names(service, emulator, mount))
    finally:
        with contextlib.suppress(Exception):
            mount.stop()
        emulator.running.stop()


# ---------------------------------------------------------------- one case


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    kept_bytes: int = 0
    lost: bool = False
    seconds: float = 0.0


def _valid_request(svc: Service, target: Target, path: Path) -> bytes:
    """A request the server would accept, for a target that creates something."""
    root = svc.mount.path
    if target.path.startswith("webknossos/tasks/"):
        doc = json.loads((root / TARGETS["task"].path.format(**svc.names)).read_text())
        keep = (
            "taskTypeId",
            "neededExperience",
            "pendingInstances",
            "projectName",
            "scriptId",
            "boundingBox",
            "datasetId",
            "editPosition",
            "editRotation",
        )
        return _dump({k: doc[k] for k in keep})
    if target.path.startswith("webknossos/task-types/"):
        types = root / "webknossos/task-types"
        existing = json.loads(next(p for p in sorted(types.iterdir())).read_text())
        doc = {k: v for k, v in existing.items() if k not in ("id", "teamName")}
        return _dump({**doc, "summary": f"corpus {path.stem}"})
    if target.path.startswith("webknossos/projects/"):
        existing = json.loads((root / TARGETS["project"].path).read_text())
        computed = ("id", "created", "owner", "teamName")
        doc = {k: v for k, v in existing.items() if k not in computed}
        return _dump({**doc, "name": path.stem})
    if target.path.startswith(f"cave/{DATASTACK}/states/"):
        return (root / f"cave/{DATASTACK}/states/{STATE_ID}.json").read_bytes()
    assert target.mkdir  # a new table: its metadata.json template, filled in
    doc = json.loads(path.read_text())
    doc.update(
        schema_type="bound_tag",
        description="A table made by the corpus",
        voxel_resolution_x=4.0,
        voxel_resolution_y=4.0,
        voxel_resolution_z=40.0,
    )
    return _dump(doc)


def _dump(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


def _rejected(svc: Service, path: Path) -> tuple[Path, set[str]]:
    """The rejected/ directory for ``path`` and the names kept there for it so far."""
    relative = path.relative_to(svc.mount.path)
    directory = svc.mount.path / ".neurofs/rejected"
    # Walk down by listings: looking up a directory that does not exist yet would leave a
    # negative entry in the kernel's cache, hiding the directory for a while once it exists.
    for part in relative.parent.parts:
        if part not in os.listdir(directory):
            return svc.mount.path / ".neurofs/rejected" / relative.parent, set()
        directory /= part
    return directory, {n for n in os.listdir(directory) if n.startswith(relative.name + ".")}


def _log_lines(svc: Service) -> list[str]:
    return (svc.mount.path / ".neurofs/errors.log").read_text().splitlines()


def _listing(directory: Path) -> set[str]:
    return set(os.listdir(directory))


def run_case(svc: Service, case: Case, serial: int, *, down: bool = False) -> Outcome:
    out = Outcome()
    problems = out.problems
    target = TARGETS[case.target]
    new = f"corpus_{serial}"
    path = svc.mount.path / target.path.format(new=new, **svc.names)
    started = time.monotonic()
    directory = path.parent.parent if target.mkdir else path.parent
    listing_before = _listing(directory) if target.mkdir else set()
    if target.mkdir:
        os.mkdir(path.parent)
    base = _valid_request(svc, target, path) if target.creates else path.read_bytes()
    if target.creates and not target.mkdir:
        # Taken after the request was made up (reading a state lists it), and fresh: the
        # case's refusal cannot meet a listing query.
        listing_before = _listing(directory)
    if case.writer == "sed":
        assert case.sed is not None
        written = sed_result(case.sed, base)
        expected = written
    else:
        written = case.make(base) if case.make is not None else base
        expected = base + written if case.writer in ("append", "shell-append") else written
    if case.errno == errno.EFBIG and case.refuse is None:
        expected = expected[: target.cap]  # what the file accepted before refusing the rest
    state_before = None if down else svc.snapshot()
    log_before = _log_lines(svc)
    kept_dir, kept_before = _rejected(svc, path)
    if not down:
        svc.emulator.reset()
        if case.refuse is not None:
            r = case.refuse
            svc.refuse(r.method, r.path.format(**svc.names), r.status, r.body, r.times, r.cut)
    try:
        seen = write(case.writer or "python", path, written, case.sed)
    except subprocess.TimeoutExpired:
        seen = -1
        problems.append(f"the write hung for more than {WRITE_TIMEOUT} s")
    finally:
        if not down:
            svc.emulator.clear_refusals()
    if seen != case.errno:
        problems.append(
            f"errno {errno.errorcode.get(seen, seen)}, expected {errno.errorcode[case.errno]}"
        )

    # (2) zero lost bytes. The refusal of a file emptied and never written is logged when
    # the last descriptor is released, just after close returns: allow it a moment.
    name = str(path.relative_to(svc.mount.path))
    deadline = time.monotonic() + 10
    while True:
        kept_now = _rejected(svc, path)[1] - kept_before
        log_new = _log_lines(svc)[len(log_before) :]
        logged = [line for line in log_new if f" {name} " in line]
        if ((kept_now or target.read_only) and logged) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if target.read_only:  # refused at open: not a byte was accepted, so none can be lost
        if kept_now:
            problems.append(f"new files in rejected/ for a file never opened: {kept_now}")
    else:
        if len(kept_now) != 1:
            problems.append(f"{len(kept_now)} new files in rejected/ (expected 1): {kept_now}")
        if any((kept_dir / n).read_bytes() == expected for n in kept_now):
            out.kept_bytes = len(expected)
        else:
            out.lost = True
            sizes = [(kept_dir / n).stat().st_size for n in kept_now]
            problems.append(f"the {len(expected)} bytes written are not kept (sizes {sizes})")
    if not any(errno.errorcode[case.errno] in line for line in logged):
        problems.append(f"no errors.log line names {name} with {errno.errorcode[case.errno]}")

    # (3) the server is unchanged, and the file shows what it showed before.
    if not down:
        mutations = svc.mutations()
        if case.kind in ("syntax", "schema"):
            if mutations:
                problems.append(f"refused locally, yet sent: {mutations}")
        elif case.refuse is not None:
            # Only the injected refusals or cuts were met; a refusal by the service itself
            # (a batch answered 200 with every item refused) is judged by the state below.
            reached = [m for m in mutations if m["status"] < 400 and m.get("fault") != "cut"]
            if reached:
                out.lost = True
                problems.append(f"a write reached the service: {reached}")
        if svc.snapshot() != state_before:
            out.lost = True
            problems.append("the server state changed")
    try:
        if target.creates:
            after = _listing(directory) - {new, f"{new}.json"}
            if after != listing_before:
                problems.append(f"the directory lists {sorted(after ^ listing_before)} anew")
        elif path.read_bytes() != base:
            problems.append("the file does not read back as before")
    except OSError as exc:
        problems.append(f"reading back failed: {exc}")
    # A new file stays as a scratch file with the user's text (or a receipt): remove it.
    if target.creates:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if target.mkdir:
            with contextlib.suppress(OSError):
                os.rmdir(path.parent)
    out.seconds = time.monotonic() - started
    return out


# ---------------------------------------------------------------- the tests


@contextlib.contextmanager
def _down_service(service: str, base: Path, cases: list[Case]) -> Iterator[Service]:
    """A mount of a server that is then stopped: the files the cases write were read first."""
    with running_service(service, base) as svc:
        for case in cases:
            target = TARGETS[case.target]
            if not target.creates:
                (svc.mount.path / target.path.format(**svc.names)).read_bytes()
            else:
                os.listdir((svc.mount.path / target.path.format(new="x", **svc.names)).parent)
                _valid_request(
                    svc, target, svc.mount.path / target.path.format(new="x", **svc.names)
                )
        svc.emulator.running.stop()
        with pytest.raises(httpx.TransportError):
            httpx.get(svc.origin, timeout=5)
        yield svc


def _run_corpus(service: str, tmp_path_factory: pytest.TempPathFactory, report: Figures) -> None:
    require_fuse()
    cases = [c for c in CASES if c.service == service]
    selected = os.environ.get("NEUROFS_CORPUS_CASE")  # one case by name, when debugging one
    if selected:
        cases = [c for c in cases if selected in f"{c.target}: {c.name}"]
        if not cases:
            # A debugging filter that runs none of a service's cases: a skip on a developer's
            # machine, a failure in CI (where the whole corpus must run).
            unavailable(f"NEUROFS_CORPUS_CASE={selected!r} selects no case of {service}")
    failures: list[str] = []
    outcomes: list[tuple[Case, Outcome]] = []

    def record(case: Case, run: Callable[[], Outcome]) -> None:
        try:
            outcome = run()
        except Exception as exc:  # one broken case must not hide the others
            outcome = Outcome([f"the case failed to run: {exc!r}"], lost=True)
        outcomes.append((case, outcome))
        print(f"{outcome.seconds:5.1f} s  {case.target}: {case.name}")  # shown with -s
        if outcome.problems:
            failures.append(f"{case.target}: {case.name}: " + "; ".join(outcome.problems))

    started = time.monotonic()
    live = [c for c in cases if not c.down]
    down = [c for c in cases if c.down]
    bases = [tmp_path_factory.mktemp(f"corpus-{service}")]
    with running_service(service, bases[0]) as svc:
        for serial, case in enumerate(live):
            record(case, functools.partial(run_case, svc, case, serial))
            if case.refuse is not None and case.refuse.times > 1:
                # The retry budget was spent: the mount now counts the server as down and
                # sends nothing for a while. A new mount starts afresh.
                svc.mount.remount()
        leaked = _leaks(svc, TOKENS[service])
    if down:
        bases.append(tmp_path_factory.mktemp(f"corpus-{service}-down"))
        with _down_service(service, bases[-1], down) as svc:
            for serial, case in enumerate(down, start=len(live)):
                record(case, functools.partial(run_case, svc, case, serial, down=True))
            leaked += _leaks(svc, TOKENS[service])

    kinds = Counter(c.kind for c in cases)
    slow_case, slow = max(outcomes, key=lambda pair: pair[1].seconds)
    report.operations = len(outcomes)
    report.bytes_verified = sum(o.kept_bytes for _, o in outcomes)
    report.edits_lost = sum(o.lost for _, o in outcomes)
    report.tokens_leaked = leaked
    report.note = (
        ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + f"; {len(failures)} failed; {time.monotonic() - started:.0f} s"
        + f" (slowest: {slow_case.target}: {slow_case.name}, {slow.seconds:.1f} s)"
    )
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)
    assert report.edits_lost == 0
    assert leaked == 0
    for base in bases:  # passed: the kept copies (some of 16 and 64 MiB) are not needed
        shutil.rmtree(base / "state" / "neurofs" / "rejected", ignore_errors=True)


def _leaks(svc: Service, token: str) -> int:
    """Lines of errors.log and kept files that hold the token (there must be none)."""
    count = sum(token in line for line in _log_lines(svc))
    rejected = svc.mount.path / ".neurofs/rejected"
    for directory, _, files in os.walk(rejected):
        count += sum(token.encode() in (Path(directory) / f).read_bytes() for f in files)
    return count


def test_bad_writes_dandi(tmp_path_factory: pytest.TempPathFactory, report: Figures) -> None:
    _run_corpus("dandi", tmp_path_factory, report)


def test_bad_writes_webknossos(tmp_path_factory: pytest.TempPathFactory, report: Figures) -> None:
    _run_corpus("webknossos", tmp_path_factory, report)


def test_bad_writes_cave(tmp_path_factory: pytest.TempPathFactory, report: Figures) -> None:
    _run_corpus("cave", tmp_path_factory, report)


def test_the_corpus_covers_every_writable_file_and_kind() -> None:
    """At least 100 cases, every service and writable file, every kind of failure."""
    assert len(CASES) >= 100
    assert {c.target for c in CASES} == set(TARGETS)
    for service in ("dandi", "webknossos", "cave"):
        kinds = {c.kind for c in CASES if c.service == service}
        assert kinds == {"syntax", "schema", "refusal", "network"}, service
    assert len({(c.target, c.name) for c in CASES}) == len(CASES), "case names repeat"
    writers = {c.writer for c in CASES}
    assert {"python", "os", "fsync", "append", "sed", "shell", "shell-append"} <= writers
    statuses = {c.refuse.status for c in CASES if c.refuse is not None and not c.refuse.cut}
    assert {400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503} <= statuses
    assert any(c.down for c in CASES) and any(c.refuse and c.refuse.cut for c in CASES)


def test_a_shell_redirect_keeps_the_merge_base(
    tmp_path_factory: pytest.TempPathFactory, report: Figures
) -> None:
    """`cat edited > dandiset.yaml`: the shell flushes a copy of the descriptor before cat
    writes. That flush of the emptied file must not end the edit: the save that follows
    applies only the user's change (a field changed on the server meanwhile survives), and
    nothing is logged as refused."""
    require_fuse()
    with running_service("dandi", tmp_path_factory.mktemp("redirect")) as svc:
        path = svc.mount.path / TARGETS["dandiset.yaml"].path
        text = path.read_bytes()  # the user reads the file...
        emulator = svc.emulator
        current = emulator.draft_metadata(DANDISET)  # ...someone else changes another field...
        current["keywords"] = ["changed", "elsewhere"]
        with emulator.api() as c:
            c.put(
                f"dandisets/{DANDISET}/versions/draft/",
                json={"metadata": current, "name": current["name"]},
            ).raise_for_status()
        log_before = _log_lines(svc)
        edited = yset("description", "Written by a shell")(text)
        seen = write("shell", path, edited)  # ...and the user's shell saves their edit
        after = emulator.draft_metadata(DANDISET)
        report.operations = 1
        report.edits_lost = int(after.get("description") != "Written by a shell")
        report.note = "cat edited > dandiset.yaml while another field changed on the server"
        assert seen == 0
        assert after["description"] == "Written by a shell"
        assert after["keywords"] == ["changed", "elsewhere"], "the other field was overwritten"
        assert _log_lines(svc) == log_before
        assert _rejected(svc, path)[1] == set()
