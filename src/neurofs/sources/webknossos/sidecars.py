"""WEBKNOSSOS sidecars: ``dataset.json`` in each dataset directory.

Editable: ``name``, ``description``, ``tags``, ``isPublic``, ``allowedTeams`` (team names),
``folder`` (a folder path below the organization's root, "" for the root) and ``metadata``
(typed key/value entries). Shown but computed: ``id``, ``url``, ``created``, ``voxelSize``,
``boundingBox``, ``layers``. A save sends the API's own calls: one PATCH ``updatePartial``
with only the changed keys (``folder`` as ``folderId``), and PATCH ``teams`` when the allowed
teams changed. Team names and folder paths are resolved before anything is sent, so an
unknown one is refused (EINVAL) with nothing sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from neurofs.errors import AccessDenied, InvalidContent
from neurofs.sources.webknossos.api import WebknossosApi, folder_paths
from neurofs.sources.webknossos.models import Dataset
from neurofs.tree.merge import FieldPath
from neurofs.tree.nodes import NodePath
from neurofs.tree.sidecar import (
    Document,
    Sidecar,
    SidecarSpec,
    TextFormat,
    describe_validation,
)

COMPUTED_KEYS = frozenset({"id", "url", "created", "voxelSize", "boundingBox", "layers"})
# Keys sent with updatePartial under their own name.
_PARTIAL_KEYS = ("name", "description", "tags", "isPublic", "metadata")

Text = Annotated[str, Field(strict=True)]


class MetadataEntryEdit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    key: Annotated[str, StringConstraints(min_length=1)]
    type: Literal["string", "number", "string[]"]
    value: str | int | float | list[str]


class DatasetEdit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    description: Text | None = None
    tags: list[Text] = Field(default_factory=list)
    isPublic: bool = False
    allowedTeams: list[Text] = Field(default_factory=list)
    folder: Text = ""
    metadata: list[MetadataEntryEdit] = Field(default_factory=list)
    id: Any = None
    url: Any = None
    created: Any = None
    voxelSize: Any = None
    boundingBox: Any = None
    layers: Any = None


def validate_dataset(doc: Document) -> None:
    try:
        edit = DatasetEdit.model_validate(doc)
    except ValidationError as exc:
        raise InvalidContent(describe_validation(exc)) from None
    for entry in edit.metadata:
        ok = {
            "string": isinstance(entry.value, str),
            "number": isinstance(entry.value, int | float) and not isinstance(entry.value, bool),
            "string[]": isinstance(entry.value, list),
        }[entry.type]
        if not ok:
            raise InvalidContent(f"metadata '{entry.key}': value does not match type {entry.type}")


def render_dataset(
    d: Dataset, teams_by_id: dict[str, str], folders: dict[str, str], base_url: str
) -> Document:
    scale = d.data_source.scale
    return {
        "name": d.name,
        "description": d.description,
        "tags": list(d.tags),
        "isPublic": d.is_public,
        "allowedTeams": sorted(teams_by_id.get(t.id, t.name) for t in d.allowed_teams),
        "folder": folders.get(d.folder_id or "", ""),
        "metadata": [m.model_dump() for m in d.metadata],
        "id": d.id,
        "url": f"{base_url.rstrip('/')}/datasets/{d.id}",
        "created": d.created,
        "voxelSize": scale.model_dump() if scale is not None else None,
        "boundingBox": _union_box(d),
        "layers": [{"name": la.name, "category": la.category} for la in d.data_source.data_layers],
    }


def _union_box(d: Dataset) -> dict[str, Any] | None:
    boxes = [la.bounding_box for la in d.data_source.data_layers]
    if not boxes:
        return None
    start = [min(b.top_left[i] for b in boxes) for i in range(3)]
    end = [max(b.end[i] for b in boxes) for i in range(3)]
    return {
        "topLeft": start,
        "width": end[0] - start[0],
        "height": end[1] - start[1],
        "depth": end[2] - start[2],
    }


def dataset_json(api: WebknossosApi, key: NodePath, dataset_id: str, mtime: float) -> Sidecar:
    async def load(fresh: bool) -> Document:
        dataset = await api.dataset(dataset_id, fresh=fresh)
        try:
            teams = {t.id: t.name for t in await api.teams()}
            folders = await api.folders_indexed(folder_paths)
        except AccessDenied:  # mounted with a sharing token only: no team or folder names
            teams, folders = {}, {}
        return render_dataset(dataset, teams, folders, api.http.base_url)

    async def send(changes: dict[FieldPath, Any], merged: Document, current: Document) -> None:
        changed = {p[0] for p in changes}
        partial = {k: merged.get(k) for k in _PARTIAL_KEYS if k in changed}
        team_ids: list[str] | None = None
        if "allowedTeams" in changed:
            by_name = {t.name: t.id for t in await api.teams()}
            unknown = [t for t in merged["allowedTeams"] if t not in by_name]
            if unknown:
                raise InvalidContent(
                    f"unknown teams: {', '.join(unknown)} (known: {', '.join(sorted(by_name))})"
                )
            team_ids = [by_name[t] for t in merged["allowedTeams"]]
        if "folder" in changed:
            by_path = {p: i for i, p in (await api.folders_indexed(folder_paths)).items()}
            wanted = str(merged["folder"]).strip("/")
            if wanted not in by_path:
                raise InvalidContent(f"unknown folder '{wanted}'")
            partial["folderId"] = by_path[wanted]
        try:
            if partial:
                await api.send("PATCH", f"datasets/{dataset_id}/updatePartial", partial)
            if team_ids is not None:
                await api.send("PATCH", f"datasets/{dataset_id}/teams", team_ids)
        finally:
            api.forget_dataset(dataset_id)

    spec = SidecarSpec(
        load=load,
        validate=validate_dataset,
        send=send,
        fmt=TextFormat.JSON,
        computed_keys=COMPUTED_KEYS,
    )
    return Sidecar(key, spec, mtime)
