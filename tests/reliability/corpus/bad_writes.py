"""The corpus of bad sidecar writes: every writable file of the three services (and a few
read-only ones), written with text that must be refused, or refused by the server, or cut off
by the network.

Each :class:`Case` says which file is written (:data:`TARGETS`), how the bytes are made from
the file's current text (or, for a file that creates something, from a valid request), how
they are written, what the server or network does meanwhile, and the errno the writing
process must see. ``tests/reliability/test_bad_writes_corpus.py`` runs them all against real
mounts and checks, for every case, that errno, that the exact bytes are kept under
``.neurofs/rejected/`` with a line in ``errors.log``, and that the server did not change.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from errno import EACCES, EBUSY, EFBIG, EINVAL, EIO, ENOENT, EPERM, EROFS
from typing import Any, Literal

import yaml

MiB = 1024 * 1024
SIDECAR_CAP = 16 * MiB  # sidecars and new files (docs/editing.md: "Writes beyond 16 MiB")
TABLE_CAP = 64 * MiB  # annotation tables

Kind = Literal["syntax", "schema", "refusal", "network"]
# How the bytes are written: Python open("wb")/write/close; os.open/os.write/os.close;
# the same plus fsync before close; O_APPEND with only the new bytes; `sed -i`; a shell's
# `cat new > file` and `cat new >> file`.
Writer = Literal["python", "os", "fsync", "append", "sed", "shell", "shell-append"]
Make = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Target:
    service: Literal["dandi", "webknossos", "cave"]
    # Below the mount point. "{new}" is replaced by a name unique to the case.
    path: str
    cap: int = SIDECAR_CAP
    # A new file whose content is a request to create something (it starts from a valid
    # request instead of the file's current text).
    creates: bool = False
    # The parent directory is made first (a new CAVE table).
    mkdir: bool = False
    # Never writable: opening it for writing fails (EROFS) before a byte is accepted, so
    # there is nothing to keep; errors.log still names it.
    read_only: bool = False


TARGETS: dict[str, Target] = {
    "dandiset.yaml": Target("dandi", "dandi/000004/draft/dandiset.yaml"),
    "asset sidecar": Target("dandi", "dandi/000004/draft.meta/sub-01/sub-01_probe.json"),
    "dataset.json": Target("webknossos", "webknossos/datasets/neurofs_lab/l4_demo/dataset.json"),
    "task": Target("webknossos", "webknossos/tasks/{task}.json"),
    "new task": Target("webknossos", "webknossos/tasks/{new}.json", creates=True),
    "new task type": Target("webknossos", "webknossos/task-types/{new}.json", creates=True),
    "project": Target("webknossos", "webknossos/projects/demo_project.json"),
    "new project": Target("webknossos", "webknossos/projects/{new}.json", creates=True),
    "annotations.csv": Target(
        "cave", "cave/neurofs_demo/tables/bound_tag/annotations.csv", cap=TABLE_CAP
    ),
    "annotations.jsonl": Target(
        "cave", "cave/neurofs_demo/tables/bound_tag/annotations.jsonl", cap=TABLE_CAP
    ),
    "metadata.json": Target("cave", "cave/neurofs_demo/tables/bound_tag/metadata.json"),
    "new state": Target("cave", "cave/neurofs_demo/states/{new}.json", creates=True),
    "new table": Target(
        "cave", "cave/neurofs_demo/tables/{new}/metadata.json", creates=True, mkdir=True
    ),
    "published dandiset.yaml": Target(
        "dandi", "dandi/000001/releases/{release}/dandiset.yaml", read_only=True
    ),
    "task type": Target("webknossos", "webknossos/task-types/{tasktype}.json", read_only=True),
    "datasource-properties.json": Target(
        "webknossos",
        "webknossos/datasets/neurofs_lab/l4_demo/datasource-properties.json",
        read_only=True,
    ),
    "schema.json": Target("cave", "cave/neurofs_demo/tables/bound_tag/schema.json", read_only=True),
}


@dataclass(frozen=True)
class Refuse:
    """A scripted answer of the emulator (its refusal knob). The path prefix may hold
    ``{wk}`` (``/api/v<N>`` of WEBKNOSSOS), ``{dataset}``, ``{task}``, ``{project}`` (ids) and
    ``{av}`` (the CAVE aligned volume's annotation route)."""

    method: str
    path: str
    status: int
    body: Any = None
    times: int = 1
    # Drop the connection after the headers instead of answering (never reaches the service).
    cut: bool = False


@dataclass(frozen=True)
class Case:
    name: str
    target: str
    kind: Kind
    errno: int
    # The bytes written, from the current text (or a valid request for new files; None: that
    # text unchanged). With the "append" writers, only the bytes appended.
    make: Make | None = None
    # None: one of ROTATION, in turn (see CASES).
    writer: Writer | None = None
    sed: str | None = None  # the expression of the "sed" writer
    refuse: Refuse | None = None
    # Run against a mount whose server has been stopped.
    down: bool = False

    @property
    def service(self) -> str:
        return TARGETS[self.target].service


# ---------------------------------------------------------------- making bytes


def raw(data: bytes) -> Make:
    return lambda _: data


def _yaml(change: Callable[[dict[str, Any]], None]) -> Make:
    def make(text: bytes) -> bytes:
        doc = yaml.safe_load(text)
        change(doc)
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()

    return make


def _json(change: Callable[[Any], Any]) -> Make:
    def make(text: bytes) -> bytes:
        doc = json.loads(text)
        result = change(doc)
        return (json.dumps(doc if result is None else result, indent=2) + "\n").encode()

    return make


def yset(key: str, value: Any) -> Make:
    return _yaml(lambda d: d.__setitem__(key, value))


def ydel(key: str) -> Make:
    return _yaml(lambda d: d.pop(key))


def jset(key: str, value: Any) -> Make:
    return _json(lambda d: d.__setitem__(key, value))


def jdel(key: str) -> Make:
    return _json(lambda d: d.pop(key))


def jwith(change: Callable[[Any], Any]) -> Make:
    return _json(change)


def replace(old: bytes, new: bytes) -> Make:
    def make(text: bytes) -> bytes:
        assert old in text, f"{old!r} is not in the file"
        return text.replace(old, new, 1)

    return make


def prefixed(prefix: bytes) -> Make:
    return lambda text: prefix + text


def half() -> Make:
    """The file cut off in the middle (a save interrupted half way)."""
    return lambda text: text[: len(text) // 2]


def cut_inside(marker: bytes, keep: int = 3) -> Make:
    """The file cut off ``keep`` bytes after ``marker`` (inside a quoted value)."""

    def make(text: bytes) -> bytes:
        at = text.index(marker) + len(marker)
        return text[: at + keep]

    return make


def utf16() -> Make:
    return lambda text: text.decode().encode("utf-16")


def padded(cap: int, change: Make | None = None) -> Make:
    """A valid (changed) text followed by blank lines beyond the cap: its first ``cap``
    bytes still parse, so only the size refusal keeps it from being sent."""

    def make(text: bytes) -> bytes:
        body = change(text) if change is not None else text
        return body + b"\n" * (cap + 1 - len(body) + 4096)

    return make


def deep(key: str, depth: int = 20_000) -> Make:
    """JSON with one value nested ``depth`` lists deep."""

    def make(text: bytes) -> bytes:
        body = text.rstrip().rstrip(b"}").rstrip()
        nested = b"[" * depth + b"]" * depth
        return body + b',\n  "' + key.encode() + b'": ' + nested + b"\n}\n"

    return make


def alias_bomb() -> bytes:
    """A few lines of YAML aliases that stand for a billion values."""
    levels = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return ("name: bomb\n'@context': [" + ", ".join(levels) + "]\n").encode()


# CSV rows of bound_tag: id, pt_position_x/y/z, pt_supervoxel_id, pt_root_id, tag, valid,
# created, superceded_id, deleted.
def csv_append(row: str) -> Make:
    return lambda text: text + row.encode() + b"\n"


def csv_lines(change: Callable[[list[str]], list[str]]) -> Make:
    def make(text: bytes) -> bytes:
        lines = text.decode().splitlines()
        return ("\n".join(change(lines)) + "\n").encode()

    return make


def jsonl_append(line: str) -> Make:
    return lambda text: text + line.encode() + b"\n"


GOOD_ROW = ",60000,60000,2000,,,corpus,,,,"
GOOD_JSONL = '{"pt": {"position": [60000, 60000, 2000]}, "tag": "corpus"}'

# What each refusal's server would say, in its own shape.
DRF = {
    400: {"metadata": ["This field is invalid."]},
    401: {"detail": "Authentication credentials were not provided."},
    403: {"detail": "You do not have permission to perform this action."},
    404: {"detail": "Not found."},
    405: {"detail": 'Method "PUT" not allowed.'},
    409: {"detail": "The draft is being published."},
    413: {"detail": "Request body too large."},
    422: {"detail": "Unprocessable metadata."},
    429: {"detail": "Request was throttled."},
    500: {"detail": "Internal Server Error"},
    503: {"detail": "Service Unavailable"},
}


def wk_error(message: str) -> dict[str, Any]:
    return {"messages": [{"error": message}]}


def engine(status_line: str) -> dict[str, Any]:
    """The CAVE annotation engine's way of refusing: HTTP 500, the real status in the text."""
    return {"code": 500, "message": status_line}


MISSING_TOS = {
    "error": "missing_tos",
    "message": "You have not accepted the terms of service",
    "data": {"tos_form_url": "http://127.0.0.1/sticky_auth/api/v1/tos/2/accept"},
}

# ---------------------------------------------------------------- DANDI

_DANDISET_PUT = "/api/dandisets/000004/versions/draft/"
_ASSET_PUT = "/api/dandisets/000004/versions/draft/assets/"
_DESCRIPTION = yset("description", "An edit the server refuses")


def _dandiset_refusal(status: int, errno: int, times: int = 1) -> Case:
    return Case(
        f"server answers {status}",
        "dandiset.yaml",
        "refusal",
        errno,
        _DESCRIPTION,
        refuse=Refuse("PUT", _DANDISET_PUT, status, DRF[status], times=times),
    )


DANDI: list[Case] = [
    # syntax
    Case("unclosed flow sequence", "dandiset.yaml", "syntax", EINVAL,
         replace(b"name: A small dandiset to edit", b"name: [A small dandiset")),
    Case("tab indentation", "dandiset.yaml", "syntax", EINVAL,
         replace(b"\nlicense:", b"\n\tlicense:")),
    Case("invalid UTF-8 (Latin-1 byte)", "dandiset.yaml", "syntax", EINVAL,
         replace(b"Two small files", b"Two sm\xe4ll files")),
    Case("UTF-16 with BOM", "dandiset.yaml", "syntax", EINVAL, utf16()),
    Case("NUL byte in a value", "dandiset.yaml", "syntax", EINVAL,
         replace(b"Two small files", b"Two\x00small files")),
    Case("empty file", "dandiset.yaml", "syntax", EINVAL, raw(b"")),
    Case("empty file (os.open)", "dandiset.yaml", "syntax", EINVAL, raw(b""), writer="os"),
    Case("only whitespace", "dandiset.yaml", "syntax", EINVAL, raw(b" \n\n\t\n")),
    Case("truncated inside a quoted date", "dandiset.yaml", "syntax", EINVAL,
         cut_inside(b"dateCreated: '")),
    Case("list at the top level", "dandiset.yaml", "syntax", EINVAL, raw(b"- a\n- b\n")),
    Case("scalar at the top level", "dandiset.yaml", "syntax", EINVAL, raw(b"just text\n")),
    Case("python object tag", "dandiset.yaml", "syntax", EINVAL,
         raw(b"name: !!python/object/apply:os.system [true]\n")),
    Case("alias bomb", "dandiset.yaml", "syntax", EINVAL, raw(alias_bomb())),
    Case("over 16 MiB, valid start", "dandiset.yaml", "syntax", EFBIG,
         padded(SIDECAR_CAP, _DESCRIPTION)),
    Case("over 16 MiB of garbage (os.write)", "dandiset.yaml", "syntax", EFBIG,
         raw(b"x" * (SIDECAR_CAP + 1)), writer="os"),
    Case("sed -i breaks the YAML", "dandiset.yaml", "syntax", EINVAL,
         writer="sed", sed="s/^name: .*/name: [unclosed/"),
    Case("shell > with broken YAML", "dandiset.yaml", "syntax", EINVAL,
         raw(b"name: {unclosed\n"), writer="shell"),
    # schema
    Case("blank name", "dandiset.yaml", "schema", EINVAL, yset("name", "  ")),
    Case("name over 300 characters", "dandiset.yaml", "schema", EINVAL, yset("name", "n" * 301)),
    Case("name missing", "dandiset.yaml", "schema", EINVAL, ydel("name")),
    Case("license is a string", "dandiset.yaml", "schema", EINVAL,
         yset("license", "spdx:CC-BY-4.0")),
    Case("keywords are numbers", "dandiset.yaml", "schema", EINVAL, yset("keywords", [1, 2])),
    Case("description is a number", "dandiset.yaml", "schema", EINVAL, yset("description", 42)),
    Case("contributor is a mapping", "dandiset.yaml", "schema", EINVAL,
         yset("contributor", {"name": "Me"})),
    Case("schemaVersion is a number", "dandiset.yaml", "schema", EINVAL,
         yset("schemaVersion", 0.7)),
    Case("misspelt key", "dandiset.yaml", "schema", EINVAL, yset("descripton", "typo")),
    Case("only the DOI changed (server-computed)", "dandiset.yaml", "schema", EINVAL,
         yset("doi", "10.80507/dandi.000004/0.1")),
    Case("only dateCreated changed, to a bad date", "dandiset.yaml", "schema", EINVAL,
         yset("dateCreated", "2024-13-45T99:00:00")),
    Case("only the identifier changed", "dandiset.yaml", "schema", EINVAL,
         yset("identifier", "DANDI:999999")),
    Case("sed -i renames a key to an unknown one", "dandiset.yaml", "schema", EINVAL,
         writer="sed", sed="s/^license:/licence:/"),
    Case("fsync reports an invalid edit", "dandiset.yaml", "schema", EINVAL,
         yset("keywords", "not a list"), writer="fsync"),
    # refusals
    _dandiset_refusal(400, EINVAL),
    _dandiset_refusal(401, EACCES),
    _dandiset_refusal(403, EACCES),
    _dandiset_refusal(404, ENOENT),
    _dandiset_refusal(405, EROFS),
    _dandiset_refusal(409, EBUSY),
    _dandiset_refusal(413, EFBIG),
    _dandiset_refusal(422, EINVAL),
    _dandiset_refusal(500, EIO, times=1000),
    _dandiset_refusal(503, EIO, times=1000),
    Case("server answers 403 to sed -i", "dandiset.yaml", "refusal", EACCES, writer="sed",
         sed="s/^description: .*/description: Edited by sed/",
         refuse=Refuse("PUT", _DANDISET_PUT, 403, DRF[403])),
    # network
    Case("connection cut on every try", "dandiset.yaml", "network", EIO, _DESCRIPTION,
         refuse=Refuse("PUT", _DANDISET_PUT, 500, cut=True, times=1000)),
    Case("server down", "dandiset.yaml", "network", EIO, _DESCRIPTION, down=True),
    # asset sidecars
    Case("broken YAML", "asset sidecar", "syntax", EINVAL,
         replace(b"schemaKey: Asset\n", b"schemaKey: [Asset\n")),
    Case("invalid UTF-8", "asset sidecar", "syntax", EINVAL,
         replace(b"encodingFormat: application/json", b"encodingFormat: \xff\xfe")),
    Case("empty file", "asset sidecar", "syntax", EINVAL, raw(b""), writer="os"),
    Case("NUL bytes", "asset sidecar", "syntax", EINVAL, raw(b"\x00" * 64)),
    Case("over 16 MiB, valid start", "asset sidecar", "syntax", EFBIG,
         padded(SIDECAR_CAP, yset("description", "big"))),
    Case("schemaKey changed", "asset sidecar", "schema", EINVAL, yset("schemaKey", "Dandiset")),
    Case("keywords is a string", "asset sidecar", "schema", EINVAL, yset("keywords", "mouse")),
    Case("description is a mapping", "asset sidecar", "schema", EINVAL,
         yset("description", {"text": "x"})),
    Case("wasGeneratedBy is a string", "asset sidecar", "schema", EINVAL,
         yset("wasGeneratedBy", "me")),
    Case("only path changed (moves are mv)", "asset sidecar", "schema", EINVAL,
         yset("path", "sub-02/moved.json")),
    Case("only the digest changed", "asset sidecar", "schema", EINVAL,
         yset("digest", {"dandi:sha2-256": "0" * 64})),
    Case("only contentSize changed, out of range", "asset sidecar", "schema", EINVAL,
         yset("contentSize", -1)),
    Case("server answers 400", "asset sidecar", "refusal", EINVAL,
         yset("description", "refused"), refuse=Refuse("PUT", _ASSET_PUT, 400, DRF[400])),
    Case("server answers 403", "asset sidecar", "refusal", EACCES,
         yset("description", "refused"), refuse=Refuse("PUT", _ASSET_PUT, 403, DRF[403])),
    Case("server answers 404", "asset sidecar", "refusal", ENOENT,
         yset("description", "refused"), refuse=Refuse("PUT", _ASSET_PUT, 404, DRF[404])),
    Case("server answers 409", "asset sidecar", "refusal", EBUSY,
         yset("description", "refused"), refuse=Refuse("PUT", _ASSET_PUT, 409, DRF[409])),
    Case("server answers 429 past the retry budget", "asset sidecar", "refusal", EIO,
         yset("description", "refused"),
         refuse=Refuse("PUT", _ASSET_PUT, 429, DRF[429], times=1000)),
    Case("connection cut on every try", "asset sidecar", "network", EIO,
         yset("description", "cut"), refuse=Refuse("PUT", _ASSET_PUT, 500, cut=True, times=1000)),
    Case("server down", "asset sidecar", "network", EIO, yset("description", "down"), down=True),
    Case("a published version is immutable", "published dandiset.yaml", "schema", EROFS,
         yset("description", "too late")),
]  # fmt: skip

# ---------------------------------------------------------------- WEBKNOSSOS

_UPDATE = "{wk}/datasets/{dataset}/updatePartial"
_DS_DESCRIPTION = jset("description", "An edit the server refuses")


def _dataset_refusal(status: int, errno: int, times: int = 1) -> Case:
    return Case(
        f"server answers {status}",
        "dataset.json",
        "refusal",
        errno,
        _DS_DESCRIPTION,
        refuse=Refuse("PATCH", _UPDATE, status, wk_error(f"refused with {status}"), times=times),
    )


def _metadata_entry(entry: dict[str, Any]) -> Make:
    return jwith(lambda d: d["metadata"].append(entry))


def _one_more(key: str) -> Make:
    return jwith(lambda d: d.update({key: d[key] + 1}))


WEBKNOSSOS: list[Case] = [
    # dataset.json: syntax
    Case("trailing comma", "dataset.json", "syntax", EINVAL,
         replace(b'"isPublic": true,', b'"isPublic": true,,')),
    Case("single-quoted strings", "dataset.json", "syntax", EINVAL,
         replace(b'"name": "l4_demo"', b"'name': 'l4_demo'")),
    Case("UTF-8 BOM", "dataset.json", "syntax", EINVAL, prefixed(b"\xef\xbb\xbf")),
    Case("invalid UTF-8", "dataset.json", "syntax", EINVAL,
         replace(b"Synthetic SBEM", b"Synth\xc3\x28tic SBEM")),
    Case("NUL byte in a string", "dataset.json", "syntax", EINVAL,
         replace(b"Synthetic SBEM", b"Synthetic\x00SBEM")),
    Case("empty file", "dataset.json", "syntax", EINVAL, raw(b"")),
    Case("truncated half way", "dataset.json", "syntax", EINVAL, half()),
    Case("array at the top level", "dataset.json", "syntax", EINVAL, raw(b"[1, 2, 3]\n")),
    Case("nested 20000 deep", "dataset.json", "syntax", EINVAL, deep("extra")),
    Case("over 16 MiB, valid start", "dataset.json", "syntax", EFBIG,
         padded(SIDECAR_CAP, _DS_DESCRIPTION)),
    Case("shell > with a truncated file", "dataset.json", "syntax", EINVAL, half(),
         writer="shell"),
    # dataset.json: schema
    Case("blank name", "dataset.json", "schema", EINVAL, jset("name", " ")),
    Case("name over 256 characters", "dataset.json", "schema", EINVAL, jset("name", "n" * 257)),
    Case("tags is a string", "dataset.json", "schema", EINVAL, jset("tags", "EM")),
    Case("tags are numbers", "dataset.json", "schema", EINVAL, jset("tags", [1])),
    Case("isPublic is a string", "dataset.json", "schema", EINVAL, jset("isPublic", "yes")),
    Case("description is a number", "dataset.json", "schema", EINVAL, jset("description", 7)),
    Case("metadata value does not match its type", "dataset.json", "schema", EINVAL,
         _metadata_entry({"key": "age", "type": "number", "value": "old"})),
    Case("metadata type is not an allowed value", "dataset.json", "schema", EINVAL,
         _metadata_entry({"key": "when", "type": "date", "value": "2024-01-01"})),
    Case("metadata entry without a key", "dataset.json", "schema", EINVAL,
         _metadata_entry({"type": "string", "value": "x"})),
    Case("unknown key", "dataset.json", "schema", EINVAL, jset("descripion", "typo")),
    Case("only boundingBox changed (server-computed)", "dataset.json", "schema", EINVAL,
         jset("boundingBox", {"topLeft": [0, 0, 0], "width": 1, "height": 1, "depth": 1})),
    Case("only the id changed", "dataset.json", "schema", EINVAL,
         jset("id", "000000000000000000000000")),
    Case("unknown team", "dataset.json", "schema", EINVAL,
         jset("allowedTeams", ["team_alpha", "no_such_team"])),
    Case("unknown folder", "dataset.json", "schema", EINVAL, jset("folder", "EM/Nowhere")),
    Case("sed -i makes isPublic a string", "dataset.json", "schema", EINVAL,
         writer="sed", sed='s/"isPublic": true/"isPublic": "true"/'),
    # dataset.json: refusals and network
    _dataset_refusal(400, EINVAL),
    _dataset_refusal(401, EACCES),
    _dataset_refusal(403, EACCES),
    _dataset_refusal(404, ENOENT),
    _dataset_refusal(409, EBUSY),
    _dataset_refusal(422, EINVAL),
    _dataset_refusal(503, EIO, times=1000),
    Case("connection cut on every try", "dataset.json", "network", EIO, _DS_DESCRIPTION,
         refuse=Refuse("PATCH", _UPDATE, 500, cut=True, times=1000)),
    Case("server down", "dataset.json", "network", EIO, _DS_DESCRIPTION, down=True),
    # tasks/<id>.json
    Case("invalid JSON", "task", "syntax", EINVAL, replace(b'"pendingInstances": ', b'"p": ,')),
    Case("pendingInstances below 0", "task", "schema", EINVAL, jset("pendingInstances", -1)),
    Case("pendingInstances is text", "task", "schema", EINVAL, jset("pendingInstances", "2")),
    Case("editPosition has two numbers", "task", "schema", EINVAL, jset("editPosition", [1, 2])),
    Case("editRotation holds text", "task", "schema", EINVAL,
         jset("editRotation", [0, "90", 0])),
    Case("neededExperience without a value", "task", "schema", EINVAL,
         jset("neededExperience", {"domain": "tracing"})),
    Case("empty taskTypeId", "task", "schema", EINVAL, jset("taskTypeId", "")),
    Case("unknown key", "task", "schema", EINVAL, jset("priority", 3)),
    Case("only the status changed (server-computed)", "task", "schema", EINVAL,
         jset("status", {"pending": 9, "active": 0, "finished": 0})),
    Case("server answers 400", "task", "refusal", EINVAL, _one_more("pendingInstances"),
         refuse=Refuse("PUT", "{wk}/tasks/{task}", 400, wk_error("Invalid task"))),
    Case("server answers 403", "task", "refusal", EACCES, _one_more("pendingInstances"),
         refuse=Refuse("PUT", "{wk}/tasks/{task}", 403, wk_error("Access denied"))),
    Case("server answers 404", "task", "refusal", ENOENT, _one_more("pendingInstances"),
         refuse=Refuse("PUT", "{wk}/tasks/{task}", 404, wk_error("Task not found"))),
    # new tasks/*.json
    Case("invalid JSON", "new task", "syntax", EINVAL, lambda t: t[:-3]),
    Case("invalid UTF-8", "new task", "syntax", EINVAL, prefixed(b"\xc0\xaf")),
    Case("nested 20000 deep", "new task", "syntax", EINVAL, raw(b"[" * 20000 + b"]" * 20000)),
    Case("over 16 MiB, valid start", "new task", "syntax", EFBIG, padded(SIDECAR_CAP)),
    Case("empty list", "new task", "schema", EINVAL, raw(b"[]")),
    Case("list holding a number", "new task", "schema", EINVAL, lambda t: b"[" + t + b", 1]"),
    Case("datasetId missing", "new task", "schema", EINVAL, jdel("datasetId")),
    Case("pendingInstances below 0", "new task", "schema", EINVAL, jset("pendingInstances", -5)),
    Case("unknown key", "new task", "schema", EINVAL, jset("assignee", "someone")),
    Case("server refuses every item (unknown task type)", "new task", "refusal", EINVAL,
         jset("taskTypeId", "000000000000000000000000")),
    Case("server answers 400", "new task", "refusal", EINVAL,
         refuse=Refuse("POST", "{wk}/tasks", 400, wk_error("Invalid task parameters"))),
    Case("server answers 403", "new task", "refusal", EACCES,
         refuse=Refuse("POST", "{wk}/tasks", 403, wk_error("Access denied"))),
    Case("server answers 500 (a POST is not repeated)", "new task", "refusal", EIO,
         refuse=Refuse("POST", "{wk}/tasks", 500, wk_error("Internal error"))),
    Case("connection cut", "new task", "network", EIO,
         refuse=Refuse("POST", "{wk}/tasks", 500, cut=True)),
    Case("server down", "new task", "network", EIO, down=True),
    # new task-types/*.json
    Case("invalid JSON", "new task type", "syntax", EINVAL, replace(b'"summary"', b"summary")),
    Case("summary missing", "new task type", "schema", EINVAL, jdel("summary")),
    Case("blank description", "new task type", "schema", EINVAL, jset("description", "  ")),
    Case("tracingType not allowed", "new task type", "schema", EINVAL,
         jset("tracingType", "mesh")),
    Case("server answers 400", "new task type", "refusal", EINVAL,
         refuse=Refuse("POST", "{wk}/taskTypes", 400, wk_error("Invalid task type"))),
    Case("server answers 409", "new task type", "refusal", EBUSY,
         refuse=Refuse("POST", "{wk}/taskTypes", 409, wk_error("Task type exists"))),
    # projects
    Case("invalid JSON", "project", "syntax", EINVAL, replace(b'"paused": false', b'"paused": f')),
    Case("priority is text", "project", "schema", EINVAL, jset("priority", "high")),
    Case("paused is text", "project", "schema", EINVAL, jset("paused", "no")),
    Case("expectedTime is fractional", "project", "schema", EINVAL, jset("expectedTime", 1.5)),
    Case("only the owner changed (server-computed)", "project", "schema", EINVAL,
         jset("owner", "someone@else.example")),
    Case("server answers 400", "project", "refusal", EINVAL,
         _one_more("priority"),
         refuse=Refuse("PUT", "{wk}/projects/{project}", 400, wk_error("Invalid project"))),
    Case("server answers 403", "project", "refusal", EACCES,
         _one_more("priority"),
         refuse=Refuse("PUT", "{wk}/projects/{project}", 403, wk_error("Access denied"))),
    Case("server answers 503 past the retry budget", "project", "refusal", EIO,
         _one_more("priority"),
         refuse=Refuse("PUT", "{wk}/projects/{project}", 503, wk_error("Unavailable"),
                       times=1000)),
    Case("name missing", "new project", "schema", EINVAL, jdel("name")),
    Case("isBlacklistedFromReport is text", "new project", "schema", EINVAL,
         jset("isBlacklistedFromReport", "x")),
    Case("UTF-8 BOM", "new project", "syntax", EINVAL, prefixed(b"\xef\xbb\xbf")),
    Case("server answers 409 (name taken)", "new project", "refusal", EBUSY,
         refuse=Refuse("POST", "{wk}/projects", 409, wk_error("Project name taken"))),
    Case("task types have no update route", "task type", "schema", EROFS,
         jset("summary", "renamed")),
    Case("the datastore's properties are read-only", "datasource-properties.json", "schema",
         EROFS, jset("id", {"name": "other"}), writer="os"),
]  # fmt: skip

# ---------------------------------------------------------------- CAVE

_ANNOTATIONS = "{av}/table/bound_tag/annotations"
_TABLE = "{av}/table"
_META_DESCRIPTION = jset("description", "An edit the server refuses")


def _engine_refusal(status_line: str, errno: int) -> Case:
    return Case(
        f"engine refuses with {status_line.split(':')[0]} inside a 500",
        "annotations.csv",
        "refusal",
        errno,
        raw((GOOD_ROW + "\n").encode()),
        writer="append",
        refuse=Refuse("POST", _ANNOTATIONS, 500, engine(status_line)),
    )


def _first_data_line(lines: list[str], cells: Callable[[list[str]], list[str]]) -> list[str]:
    return [lines[0], ",".join(cells(lines[1].split(","))), *lines[2:]]


def _set_cell(index: int, value: str) -> Make:
    def change(cells: list[str]) -> list[str]:
        cells[index] = value
        return cells

    return csv_lines(lambda lines: _first_data_line(lines, change))


CAVE: list[Case] = [
    # annotations.csv: syntax
    Case("empty file", "annotations.csv", "syntax", EINVAL, raw(b"")),
    Case("invalid UTF-8", "annotations.csv", "syntax", EINVAL,
         lambda t: t + b",1,2,3,,,caf\xe9,,,,\n"),
    Case("UTF-8 BOM before the header", "annotations.csv", "syntax", EINVAL,
         prefixed(b"\xef\xbb\xbf")),
    Case("NUL byte in a cell", "annotations.csv", "syntax", EINVAL,
         csv_append(",1,2,3,,,ta\x00g,,,,")),
    Case("binary garbage", "annotations.csv", "syntax", EINVAL, raw(bytes(range(256)) * 8)),
    Case("unterminated quote", "annotations.csv", "syntax", EINVAL,
         csv_append(',1,2,3,,,"apical,,,,')),
    Case("truncated in the last row", "annotations.csv", "syntax", EINVAL,
         lambda t: t.rstrip(b"\n")[:-12]),
    Case("a cell over the CSV field limit", "annotations.csv", "syntax", EINVAL,
         csv_append(',1,2,3,,,"' + "t" * 200_000 + '",,,,')),
    Case("over 64 MiB", "annotations.csv", "syntax", EFBIG,
         lambda t: t + (GOOD_ROW + "\n").encode() * (TABLE_CAP // len(GOOD_ROW) + 2)),
    # annotations.csv: schema
    Case("only a wrong header", "annotations.csv", "schema", EINVAL, raw(b"a,b,c\n")),
    Case("a column missing", "annotations.csv", "schema", EINVAL,
         csv_lines(lambda ls: [",".join(c for i, c in enumerate(line.split(",")) if i != 4)
                               for line in ls])),
    Case("an unknown column", "annotations.csv", "schema", EINVAL,
         csv_lines(lambda ls: [ls[0] + ",extra"] + [line + "," for line in ls[1:]])),
    Case("non-numeric position", "annotations.csv", "schema", EINVAL,
         csv_append(",x,2,3,,,apical,,,,")),
    Case("fractional position", "annotations.csv", "schema", EINVAL,
         csv_append(",1.5,2,3,,,apical,,,,")),
    Case("infinite position", "annotations.csv", "schema", EINVAL,
         csv_append(",inf,2,3,,,apical,,,,")),
    Case("a coordinate missing", "annotations.csv", "schema", EINVAL,
         csv_append(",,2,3,,,apical,,,,")),
    Case("required tag missing", "annotations.csv", "schema", EINVAL, csv_append(",1,2,3,,,,,,,")),
    Case("too few cells", "annotations.csv", "schema", EINVAL, csv_append(",1,2,3")),
    Case("too many cells", "annotations.csv", "schema", EINVAL,
         csv_append(",1,2,3,,,apical,,,,,,")),
    Case("non-numeric id", "annotations.csv", "schema", EINVAL,
         csv_append("abc,1,2,3,,,apical,,,,")),
    Case("negative id", "annotations.csv", "schema", EINVAL, csv_append("-4,1,2,3,,,apical,,,,")),
    Case("id that is not a row", "annotations.csv", "schema", EINVAL,
         csv_append("999999999,1,2,3,,,apical,,,,")),
    Case("duplicate id", "annotations.csv", "schema", EINVAL,
         lambda t: t + t.splitlines(True)[1]),
    Case("changed row with a bad position", "annotations.csv", "schema", EINVAL,
         _set_cell(2, "1e400")),
    Case("removing rows without -o allow_delete", "annotations.csv", "schema", EPERM,
         lambda t: b"".join(t.splitlines(True)[:-2])),
    Case("appended row with a text position", "annotations.csv", "schema", EINVAL,
         raw(b",x,y,z,,,apical,,,,\n"), writer="append"),
    Case("appended row with too few cells (shell >>)", "annotations.csv", "schema", EINVAL,
         raw(b",1,2\n"), writer="shell-append"),
    Case("sed -i makes a position fractional", "annotations.csv", "schema", EINVAL,
         writer="sed", sed="2s/^\\([0-9]*\\),\\([0-9]*\\),/\\1,\\2.5,/"),
    # annotations.csv: refusals and network
    _engine_refusal("422 Unprocessable Entity: {'tag': ['Not a valid string.']}", EINVAL),
    _engine_refusal("400 Bad Request: malformed annotation", EINVAL),
    _engine_refusal("401 Unauthorized: The table can only be written to by owner", EACCES),
    _engine_refusal("403 Forbidden: no write permission", EACCES),
    _engine_refusal("404 Not Found: no such table", ENOENT),
    _engine_refusal("409 Conflict: the table is being materialized", EBUSY),
    _engine_refusal("413 Request Entity Too Large: The insertion limit is 10000", EFBIG),
    Case("engine schema errors inside a 500", "annotations.csv", "refusal", EINVAL,
         raw((GOOD_ROW + "\n").encode()), writer="append",
         refuse=Refuse("POST", _ANNOTATIONS, 500,
                       {"schema_errors": {"annotations": ["Missing data for required field."]}})),
    Case("plain 500 (a POST is not repeated)", "annotations.csv", "refusal", EIO,
         raw((GOOD_ROW + "\n").encode()), writer="append",
         refuse=Refuse("POST", _ANNOTATIONS, 500, engine("Internal Server Error"))),
    Case("terms of service not accepted (403)", "annotations.csv", "refusal", EACCES,
         raw((GOOD_ROW + "\n").encode()), writer="append",
         refuse=Refuse("POST", _ANNOTATIONS, 403, MISSING_TOS)),
    Case("update refused with 409 inside a 500", "annotations.csv", "refusal", EBUSY,
         _set_cell(6, "changed"),  # the tag
         refuse=Refuse("PUT", _ANNOTATIONS, 500, engine("409 Conflict: row superseded"))),
    Case("connection cut", "annotations.csv", "network", EIO,
         raw((GOOD_ROW + "\n").encode()), writer="append",
         refuse=Refuse("POST", _ANNOTATIONS, 500, cut=True)),
    Case("server down", "annotations.csv", "network", EIO,
         raw((GOOD_ROW + "\n").encode()), writer="append", down=True),
    # annotations.jsonl
    Case("invalid JSON line", "annotations.jsonl", "syntax", EINVAL,
         jsonl_append('{"pt": {"position": [1, 2, 3]}, "tag": "x"')),
    Case("invalid UTF-8", "annotations.jsonl", "syntax", EINVAL,
         lambda t: t + b'{"pt": {"position": [1, 2, 3]}, "tag": "\xff"}\n'),
    Case("empty file", "annotations.jsonl", "syntax", EINVAL, raw(b"")),
    Case("a line is a list", "annotations.jsonl", "schema", EINVAL, jsonl_append("[1, 2, 3]")),
    Case("unknown field", "annotations.jsonl", "schema", EINVAL,
         jsonl_append('{"pt": {"position": [1, 2, 3]}, "tag": "x", "colour": "red"}')),
    Case("point without a position", "annotations.jsonl", "schema", EINVAL,
         jsonl_append('{"pt": [1, 2, 3], "tag": "x"}')),
    Case("position of two numbers", "annotations.jsonl", "schema", EINVAL,
         jsonl_append('{"pt": {"position": [1, 2]}, "tag": "x"}')),
    Case("fractional position", "annotations.jsonl", "schema", EINVAL,
         jsonl_append('{"pt": {"position": [1, 2.5, 3]}, "tag": "x"}')),
    Case("required tag missing", "annotations.jsonl", "schema", EINVAL,
         jsonl_append('{"pt": {"position": [1, 2, 3]}}')),
    Case("id is text", "annotations.jsonl", "schema", EINVAL,
         jsonl_append('{"id": "abc", "pt": {"position": [1, 2, 3]}, "tag": "x"}')),
    Case("id that is not a row", "annotations.jsonl", "schema", EINVAL,
         jsonl_append('{"id": 999999999, "pt": {"position": [1, 2, 3]}, "tag": "x"}')),
    Case("appended line with a NUL", "annotations.jsonl", "syntax", EINVAL,
         raw(b'{"pt": {"position": [1, 2, 3]}, "tag": "x"}\x00\n'), writer="append"),
    Case("engine refuses with 422 inside a 500", "annotations.jsonl", "refusal", EINVAL,
         raw((GOOD_JSONL + "\n").encode()), writer="append",
         refuse=Refuse("POST", _ANNOTATIONS, 500,
                       engine("422 Unprocessable Entity: {'pt': ['Invalid position']}"))),
    # metadata.json
    Case("invalid JSON", "metadata.json", "syntax", EINVAL, replace(b'"valid": true', b"valid")),
    Case("UTF-8 BOM", "metadata.json", "syntax", EINVAL, prefixed(b"\xef\xbb\xbf")),
    Case("empty file", "metadata.json", "syntax", EINVAL, raw(b""), writer="os"),
    Case("array at the top level", "metadata.json", "syntax", EINVAL, raw(b"[]")),
    Case("read_permission not allowed", "metadata.json", "schema", EINVAL,
         jset("read_permission", "EVERYONE")),
    Case("write_permission is a number", "metadata.json", "schema", EINVAL,
         jset("write_permission", 5)),
    Case("description is a number", "metadata.json", "schema", EINVAL,
         jset("description", 12)),
    Case("schema_type changed (read-only)", "metadata.json", "schema", EINVAL,
         jset("schema_type", "synapse")),
    Case("voxel resolution changed (read-only)", "metadata.json", "schema", EINVAL,
         jset("voxel_resolution_z", -40.0)),
    Case("unknown key", "metadata.json", "schema", EINVAL, jset("colour", "red")),
    Case("server answers 403 inside a 500", "metadata.json", "refusal", EACCES,
         _META_DESCRIPTION,
         refuse=Refuse("PUT", _TABLE, 500, engine("403 Forbidden: not the owner"))),
    Case("server answers 404 inside a 500", "metadata.json", "refusal", ENOENT,
         _META_DESCRIPTION,
         refuse=Refuse("PUT", _TABLE, 500, engine("404 Not Found: table gone"))),
    Case("server answers 401", "metadata.json", "refusal", EACCES, _META_DESCRIPTION,
         refuse=Refuse("PUT", _TABLE, 401, {"error": "not_logged_in", "message": "log in"})),
    Case("plain 500 past the retry budget", "metadata.json", "refusal", EIO, _META_DESCRIPTION,
         refuse=Refuse("PUT", _TABLE, 500, engine("Internal Server Error"), times=1000)),
    Case("503 past the retry budget", "metadata.json", "refusal", EIO, _META_DESCRIPTION,
         refuse=Refuse("PUT", _TABLE, 503, {"message": "Service Unavailable"}, times=1000)),
    Case("connection cut on every try", "metadata.json", "network", EIO, _META_DESCRIPTION,
         refuse=Refuse("PUT", _TABLE, 500, cut=True, times=1000)),
    Case("server down", "metadata.json", "network", EIO, _META_DESCRIPTION, down=True),
    # new states/*.json
    Case("invalid JSON", "new state", "syntax", EINVAL, lambda t: t[: len(t) // 3]),
    Case("a JSON list", "new state", "schema", EINVAL, raw(b"[1, 2]")),
    Case("invalid UTF-8", "new state", "syntax", EINVAL, lambda t: b"\xfe" + t),
    Case("nested 20000 deep", "new state", "syntax", EINVAL, deep("layout")),
    Case("over 16 MiB, valid start", "new state", "syntax", EFBIG, padded(SIDECAR_CAP)),
    Case("server answers 400", "new state", "refusal", EINVAL,
         refuse=Refuse("POST", "/nglstate/api/v1/post", 400, {"message": "bad state"})),
    Case("server answers 413", "new state", "refusal", EFBIG,
         refuse=Refuse("POST", "/nglstate/api/v1/post", 413, {"message": "too large"})),
    Case("server answers 500", "new state", "refusal", EIO,
         refuse=Refuse("POST", "/nglstate/api/v1/post", 500, {"message": "boom"})),
    Case("connection cut", "new state", "network", EIO,
         refuse=Refuse("POST", "/nglstate/api/v1/post", 500, cut=True)),
    Case("server down", "new state", "network", EIO, down=True),
    # a new table's metadata.json
    Case("schema_type empty", "new table", "schema", EINVAL, jset("schema_type", "")),
    Case("negative voxel resolution", "new table", "schema", EINVAL,
         jset("voxel_resolution_x", -4.0)),
    Case("read_permission not allowed", "new table", "schema", EINVAL,
         jset("read_permission", "ALL")),
    Case("invalid JSON", "new table", "syntax", EINVAL, lambda t: t.replace(b":", b"=", 1)),
    Case("server answers 409 inside a 500", "new table", "refusal", EBUSY,
         refuse=Refuse("POST", _TABLE, 500, engine("409 Conflict: table exists"))),
    Case("server answers 400 inside a 500", "new table", "refusal", EINVAL,
         refuse=Refuse("POST", _TABLE, 500, engine("400 Bad Request: unknown schema"))),
    Case("a table's schema is read-only", "schema.json", "schema", EROFS,
         jset("title", "mine")),
]  # fmt: skip

# Cases that name no writer take these in turn, so that refusals reach the writer at close
# (Python's buffered file and os.write alike) and at fsync.
ROTATION: tuple[Writer, ...] = ("python", "os", "python", "fsync")


def _with_writers(cases: list[Case]) -> list[Case]:
    turn = iter(ROTATION * len(cases))
    return [c if c.writer is not None else dataclasses.replace(c, writer=next(turn)) for c in cases]


CASES: list[Case] = _with_writers([*DANDI, *WEBKNOSSOS, *CAVE])
