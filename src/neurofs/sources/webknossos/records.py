"""Tasks, task types and projects as JSON files.

```
<source>/tasks/<task id>.json               editable task parameters → PUT /tasks/{id}
<source>/tasks/<task id>.annotations.json   the task's annotation infos (read-only)
<source>/task-types/<id>.json               read-only (the API has no update route)
<source>/projects/<name>.json               editable → PUT /projects/{id}; paused → PATCH
                                            /projects/{id}/pause or /resume; name read-only
```
A new ``*.json`` file written into one of these directories is a request to create: one task
parameters object or a list of them (tasks), one task type, one project (owned by the signed-in
user unless it names an ``owner`` id). It is sent when the
file is closed, and the file is then replaced by a short receipt naming what was created.
Task creation is a batch: when the server refuses some items, the others are created, the
receipt lists both, and the refused items, each with the server's message, are kept in
``.neurofs/rejected/``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from neurofs.errors import InvalidContent, NotFound, PartlyRefused, RemoteError
from neurofs.io.http import Form
from neurofs.secrets import redact
from neurofs.sources.payloads import validated
from neurofs.sources.webknossos.api import Record, WebknossosApi
from neurofs.sources.webknossos.models import Project, TaskCreation, TasksFromAnnotations
from neurofs.tree.local_files import read_local_file
from neurofs.tree.merge import FieldPath
from neurofs.tree.names import safe_name, unique_names
from neurofs.tree.nodes import Attrs, GeneratedFile, IndexedDirectory, Kind, Node, NodePath
from neurofs.tree.render import json_text
from neurofs.tree.sidecar import (
    Document,
    Sidecar,
    SidecarSpec,
    TextFormat,
    describe_validation,
    parse,
)

# What PUT /tasks/{id} and POST /tasks take; the rest of a task is shown but computed.
TASK_PARAMETERS = (
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
TASK_COMPUTED = frozenset(
    {
        "id",
        "status",
        "created",
        "team",
        "type",
        "datasetName",
        "tracingTime",
        "projectId",
        "creationInfo",
    }
)
PROJECT_COMPUTED = frozenset({"id", "created", "owner", "teamName"})
# What PUT /projects/{id} and POST /projects take (ProjectParameters, scalableminds/webknossos,
# app/controllers/ProjectController.scala): owner is a user id. The update keeps the project's
# name and paused state whatever it is sent; pausing has routes of its own.
PROJECT_PARAMETERS = (
    "name",
    "team",
    "priority",
    "paused",
    "expectedTime",
    "owner",
    "isBlacklistedFromReport",
)


def task_document(task: Record) -> Document:
    """A task as its parameters (editable) followed by what the server computes."""
    doc: Document = {
        "taskTypeId": (task.get("type") or {}).get("id"),
        "neededExperience": task.get("neededExperience"),
        "pendingInstances": (task.get("status") or {}).get("pending"),
        "projectName": task.get("projectName"),
        "scriptId": (task.get("script") or {}).get("id") if task.get("script") else None,
        "boundingBox": task.get("boundingBox"),
        "datasetId": task.get("datasetId"),
        "editPosition": task.get("editPosition"),
        "editRotation": task.get("editRotation"),
    }
    doc.update({k: task.get(k) for k in sorted(TASK_COMPUTED) if k in task})
    return doc


def _validate_task(doc: Document) -> None:
    for key in ("taskTypeId", "projectName", "datasetId"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise InvalidContent(f"'{key}' is required (text)")
    pending = doc.get("pendingInstances")
    if not isinstance(pending, int) or isinstance(pending, bool) or pending < 0:
        raise InvalidContent("'pendingInstances' must be a whole number ≥ 0")
    for key in ("editPosition", "editRotation"):
        value = doc.get(key)
        if not (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise InvalidContent(f"'{key}' must be a list of 3 numbers")
    exp = doc.get("neededExperience")
    if not (
        isinstance(exp, dict)
        and isinstance(exp.get("domain"), str)
        and isinstance(exp.get("value"), int)
    ):
        raise InvalidContent('\'neededExperience\' must be {"domain": text, "value": number}')
    if doc.get("boundingBox") is not None and not _is_box(doc["boundingBox"]):
        raise InvalidContent(
            '\'boundingBox\' must be null or {"topLeft": [x, y, z], "width": number, '
            '"height": number, "depth": number}'
        )
    unknown = set(doc) - set(TASK_PARAMETERS) - TASK_COMPUTED
    if unknown:
        raise InvalidContent(f"unknown keys: {', '.join(sorted(unknown))}")


def _is_box(box: Any) -> bool:
    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    return (
        isinstance(box, dict)
        and isinstance(box.get("topLeft"), list)
        and len(box["topLeft"]) == 3
        and all(whole(v) for v in box["topLeft"])
        and all(whole(box.get(k)) and box[k] >= 0 for k in ("width", "height", "depth"))
    )


def _validate_project(doc: Document) -> None:
    if not isinstance(doc.get("name"), str) or not doc["name"].strip():
        raise InvalidContent("'name' is required (text)")
    for key, kind in (
        ("priority", int),
        ("expectedTime", int),
        ("paused", bool),
        ("isBlacklistedFromReport", bool),
    ):
        if doc.get(key) is not None and (  # null: as the server shows an unset value
            not isinstance(doc[key], kind) or (kind is int and isinstance(doc[key], bool))
        ):
            raise InvalidContent(f"'{key}' must be {kind.__name__}")


class RecordsDir(IndexedDirectory[Any]):
    """A collection of records shown as ``<name>.json`` files."""

    accepts_scratch = True

    def __init__(self, key: NodePath, api: WebknossosApi) -> None:
        super().__init__(key)
        self.api = api

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 0.0, writable=True)

    def creates_from(self, name: str) -> bool:
        # Only plain *.json names are requests; editors' swap, backup and temporary files
        # (".x.swp", "x~", "4913", "sedXXXX") stay scratch files.
        return name.endswith(".json") and not name.startswith(".")


def _task_files(tasks: list[Record]) -> dict[str, tuple[str, bool]]:
    """File name → (task id, whether it is the annotations file); of two files with one
    name, the first."""
    ids = list(dict.fromkeys(t["id"] for t in tasks))
    files = unique_names(ids, ".json")
    annotations = unique_names(ids, ".annotations.json")
    by_name: dict[str, tuple[str, bool]] = {}
    for tid in ids:
        by_name.setdefault(files[tid], (tid, False))
        by_name.setdefault(annotations[tid], (tid, True))
    return by_name


class TasksDir(RecordsDir):
    async def entries(self) -> Mapping[str, tuple[str, bool]]:
        return await self.api.tasks_indexed(_task_files)

    def node(self, name: str, entry: tuple[str, bool]) -> Node:
        task_id, annotations = entry
        key = (*self.key, name)
        return (
            self._annotations_file(task_id, key) if annotations else self._task_file(task_id, key)
        )

    def _task_file(self, task_id: str, key: NodePath) -> Sidecar:
        api = self.api

        async def load(fresh: bool) -> Document:
            return task_document(await api.task(task_id, fresh=fresh))

        async def send(changes: dict[FieldPath, Any], merged: Document, current: Document) -> None:
            body = {k: merged.get(k) for k in TASK_PARAMETERS}
            try:
                await api.send("PUT", f"tasks/{task_id}", body)
            finally:
                api.forget_tasks(task_id)

        spec = SidecarSpec(
            load=load,
            validate=_validate_task,
            send=send,
            fmt=TextFormat.JSON,
            computed_keys=TASK_COMPUTED,
        )
        return Sidecar(key, spec)

    def _annotations_file(self, task_id: str, key: NodePath) -> GeneratedFile:
        async def render() -> bytes:
            return json_text(await self.api.get(f"tasks/{task_id}/annotations"))

        return GeneratedFile(key, render)

    async def create_from_file(self, name: str, data: bytes) -> bytes:
        doc = _json(data)
        if isinstance(doc, dict) and "baseAnnotations" in doc:
            return await self._create_from_annotations(doc, data)
        items = _items(doc)
        for i, item in enumerate(items):
            try:
                _validate_task({**item})
            except InvalidContent as exc:
                raise InvalidContent(f"item {i}: {exc}") from None
        answer = await self.api.send(
            "POST", "tasks", [{k: item.get(k) for k in TASK_PARAMETERS} for item in items]
        )
        self.api.forget_tasks()
        return _receipt(answer, "POST tasks", [{"parameters": item} for item in items], data)

    async def _create_from_annotations(self, doc: dict[str, Any], data: bytes) -> bytes:
        """One task per base annotation: ``POST /tasks/createFromFiles``, a multipart form of
        ``formJSON`` and the files, each under its own name, as the official client's
        ``Task.create_from_annotations`` sends it. Every file is read and checked first."""
        try:
            request = TasksFromAnnotations.model_validate(doc)
        except ValidationError as exc:
            raise InvalidContent(describe_validation(exc)) from None
        files = [(path, await annotation_file(path)) for path in request.base_annotations]
        form = Form(
            fields=(("formJSON", json.dumps(request.form_json())),),
            files=tuple((os.path.basename(p), (os.path.basename(p), b)) for p, b in files),
        )
        try:
            answer = await self.api.send_form("tasks/createFromFiles", form)
        finally:
            self.api.forget_tasks()
        # A zip may hold several annotations, each a task: the answer's items are the files'
        # only when there are as many.
        items = request.base_annotations
        return _receipt(
            answer, "POST tasks/createFromFiles", [{"baseAnnotation": p} for p in items], data
        )


# An annotation file is read whole into memory to be sent: this much at most.
MAX_ANNOTATION_BYTES = 256 << 20


async def annotation_file(path: str) -> bytes:
    """The bytes of a base annotation named by path: an NML file or a zip holding NML files
    (and volume data), by name and by content, else InvalidContent naming the file."""
    if not path.lower().endswith((".nml", ".zip")):
        raise InvalidContent(f"{path}: a base annotation must be an .nml or .zip file")
    try:
        data = await read_local_file(path, MAX_ANNOTATION_BYTES)
    except NotFound as exc:
        raise InvalidContent(f"base annotation {exc}") from None
    except InvalidContent as exc:
        raise InvalidContent(f"base annotation {exc}") from None
    if path.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise InvalidContent(f"{path}: not a zip file") from None
        if not any(n.lower().endswith(".nml") for n in names):
            raise InvalidContent(f"{path}: the zip holds no .nml file")
    elif b"<things" not in data[:4096]:
        raise InvalidContent(f"{path}: not an NML file (no <things> element at its start)")
    return data


def _receipt(answer: Any, what: str, described: list[Record], data: bytes) -> bytes:
    """The receipt of a task batch (``{"tasks": [...], "warnings": [...]}``, one result per
    created task): the created tasks' files and the refused items with the server's message.
    ``described`` says what each item was, when the answer has one result per item. Raises
    PartlyRefused when the server refused some: the refused items are kept, or, when nothing
    was created, the request exactly as written."""
    try:
        result = TaskCreation.model_validate(answer)
    except ValidationError:
        raise RemoteError(f"{what}: unexpected answer") from None
    if len(result.tasks) != len(described):
        if what.endswith("createFromFiles") and result.tasks:
            described = [{} for _ in result.tasks]
        else:
            raise RemoteError(f"{what}: unexpected answer")
    created = [r.success.id for r in result.tasks if r.success is not None]
    refused = [
        # The server's message is shown and kept: never with a credential in it.
        {"item": i, **described[i], "error": redact(str(r.error))}
        for i, r in enumerate(result.tasks)
        if r.success is None
    ]
    receipt = json_text(
        {
            "created": [safe_name(c, ".json") for c in created],
            "refused": refused,
            "warnings": result.warnings,
        }
    )
    if refused:
        raise PartlyRefused(
            f"{len(refused)} of {len(result.tasks)} tasks refused: "
            + "; ".join(f"item {r['item']}: {r['error']}" for r in refused),
            receipt=receipt,
            # Nothing created: the file exactly as written is what the user still needs.
            refused=json_text(refused) if created else data,
        )
    return receipt


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        parse(data, TextFormat.JSON)  # raises InvalidContent with the details
        raise InvalidContent("invalid JSON") from None


def _items(doc: Any) -> list[Record]:
    items = doc if isinstance(doc, list) else [doc]
    if not items or not all(isinstance(i, dict) for i in items):
        raise InvalidContent("expected a JSON object or a non-empty list of objects")
    if any("baseAnnotations" in i for i in items):
        raise InvalidContent("a request with 'baseAnnotations' is one object, not a list")
    return items


def _task_type_files(types: list[Record]) -> dict[str, Record]:
    """File name → task type; a repeated id: the first."""
    names = unique_names((t["id"] for t in types), ".json")
    by_name: dict[str, Record] = {}
    for t in types:
        by_name.setdefault(names[t["id"]], t)
    return by_name


class TaskTypesDir(RecordsDir):
    async def entries(self) -> Mapping[str, Record]:
        return await self.api.task_types_indexed(_task_type_files)

    def node(self, name: str, entry: Record) -> Node:
        return _static_json((*self.key, name), entry)

    async def create_from_file(self, name: str, data: bytes) -> bytes:
        doc = parse(data, TextFormat.JSON)
        for key in ("summary", "description"):
            if not isinstance(doc.get(key), str) or not doc[key].strip():
                raise InvalidContent(f"'{key}' is required (text)")
        if doc.get("tracingType") not in ("skeleton", "volume", "hybrid"):
            raise InvalidContent("'tracingType' must be skeleton, volume or hybrid")
        created = await self.api.send("POST", "taskTypes", doc)
        self.api.forget_task_types()
        tid = created.get("id") if isinstance(created, dict) else None
        return json_text({"created": [f"{tid}.json"] if tid else []})


def _static_json(key: NodePath, doc: Any) -> GeneratedFile:
    data = json_text(doc)

    async def render() -> bytes:
        return data

    return GeneratedFile(key, render)


class ProjectsDir(RecordsDir):
    async def _project(self, project_id: str) -> Project:
        """The project as the server holds it (for its owner's id), from the listing."""
        for raw in await self.api.projects():
            if raw.get("id") == project_id:
                return validated(Project, raw, "projects")
        raise NotFound(f"project {project_id}")

    async def entries(self) -> Mapping[str, str]:
        return await self.api.projects_indexed(_project_files)

    def node(self, name: str, entry: str) -> Node:
        return self._project_file(entry, (*self.key, name))

    def _project_file(self, name: str, key: NodePath) -> Sidecar:
        api = self.api

        async def load(fresh: bool) -> Document:
            for p in await api.projects(fresh=fresh):
                if p["name"] == name:
                    owner = p.get("owner")
                    return {k: v for k, v in p.items() if k != "owner"} | {
                        "owner": owner.get("email") if isinstance(owner, dict) else None
                    }
            raise NotFound(f"project {name}")

        async def send(changes: dict[FieldPath, Any], merged: Document, current: Document) -> None:
            changed = {p[0] for p in changes}
            if "name" in changed:
                raise InvalidContent(
                    "'name' cannot be changed: WEBKNOSSOS keeps a project's name "
                    "(create a new project file instead)"
                )
            if "paused" in changed and not isinstance(merged["paused"], bool):
                raise InvalidContent("'paused' must be true or false")
            project = await self._project(str(current["id"]))
            try:
                if changed - {"paused"}:
                    await api.send("PUT", f"projects/{project.id}", _parameters(merged, project))
                if "paused" in changed:
                    route = "pause" if merged["paused"] else "resume"
                    await api.send("PATCH", f"projects/{project.id}/{route}", None)
            finally:
                api.forget_projects()

        spec = SidecarSpec(
            load=load,
            validate=_validate_project,
            send=send,
            fmt=TextFormat.JSON,
            computed_keys=PROJECT_COMPUTED,
        )
        return Sidecar(key, spec)

    async def create_from_file(self, name: str, data: bytes) -> bytes:
        doc = parse(data, TextFormat.JSON)
        _validate_project(doc)
        if doc.get("owner") is None:  # the API requires an owner: the signed-in user
            doc["owner"] = (await self.api.me()).id
        body = {"paused": False, "isBlacklistedFromReport": False, **doc}
        created = await self.api.send("POST", "projects", body)
        self.api.forget_projects()
        pname = created.get("name") if isinstance(created, dict) else doc["name"]
        return json_text({"created": [safe_name(str(pname), ".json")]})


def _project_files(projects: list[Record]) -> dict[str, str]:
    """File name → project name."""
    order = list(dict.fromkeys(p["name"] for p in projects))
    names = unique_names(order, ".json")
    return {names[n]: n for n in order}


def _parameters(doc: Document, project: Project) -> Record:
    """The body of PUT /projects/{id}: the edited document's parameters with the name, paused
    state and owner the server has (the file shows the owner's email; the API takes an id)."""
    body = {k: doc.get(k) for k in PROJECT_PARAMETERS}
    body.update(name=project.name, paused=project.paused, owner=project.owner.id)
    return body
