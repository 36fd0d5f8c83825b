"""WEBKNOSSOS sidecars: ``dataset.json`` in each dataset directory.

Editable: ``name``, ``description``, ``tags``, ``isPublic``, ``allowedTeams`` (team names),
``folder`` (a folder path below the organization's root, "" for the root), ``metadata``
(typed key/value entries) and ``defaultViewConfiguration`` (the official client's
``RemoteDataset.default_view_configuration``, with each layer's defaults under ``layers``).
Shown but computed: ``id``, ``url``, ``created``, ``voxelSize``, ``boundingBox``, ``layers``.
A save sends the API's own calls: one PATCH ``updatePartial`` with only the changed keys
(``folder`` as ``folderId``; a changed view configuration as the whole ``dataSource`` with the
layers' new defaults, as the client's setter sends it), and PATCH ``teams`` when the allowed
teams changed. Team names, folder paths and layer names are resolved before anything is sent,
so an unknown one is refused (EINVAL) with nothing sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from neurofs.errors import AccessDenied, InvalidContent
from neurofs.sources.payloads import validated
from neurofs.sources.webknossos.api import WebknossosApi, folder_paths
from neurofs.sources.webknossos.models import Dataset, DataSource, DataSourceUpdate
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


_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_Whole = Annotated[int, Field(strict=True, ge=-(2**31), lt=2**31)]


_Color = Annotated[
    list[Annotated[int, Field(strict=True, ge=0, le=255)]], Field(min_length=3, max_length=3)
]
_Position = Annotated[list[_Whole], Field(min_length=3, max_length=3)]
_Rotation = Annotated[list[_Number], Field(min_length=3, max_length=3)]


class LayerViewEdit(BaseModel):
    """One layer's view defaults: the official client's ``LayerViewConfiguration``
    (webknossos/dataset_properties/dataset_properties.py), keys as the server stores them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    color: _Color | None = None
    alpha: Annotated[_Number, Field(ge=0, le=100)] | None = None
    intensityRange: Annotated[list[_Number], Field(min_length=2, max_length=2)] | None = None
    min: _Number | None = None
    max: _Number | None = None
    isDisabled: bool | None = None
    isInverted: bool | None = None
    isInEditMode: bool | None = None
    mapping: dict[str, Text] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> LayerViewEdit:
        if self.intensityRange is not None and self.intensityRange[0] > self.intensityRange[1]:
            raise ValueError("intensityRange must be [low, high] with low ≤ high")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        return self


class DatasetViewEdit(BaseModel):
    """The dataset's view defaults: the official client's ``DatasetViewConfiguration``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    fourBit: bool | None = None
    interpolation: bool | None = None
    renderMissingDataBlack: bool | None = None
    loadingStrategy: Literal["BEST_QUALITY_FIRST", "PROGRESSIVE_QUALITY"] | None = None
    segmentationPatternOpacity: Annotated[int, Field(strict=True, ge=0, le=100)] | None = None
    zoom: Annotated[_Number, Field(gt=0)] | None = None
    position: _Position | None = None
    rotation: _Rotation | None = None
    layers: dict[str, LayerViewEdit] = Field(default_factory=dict)
    colorLayerOrder: list[Text] | None = None
    blendMode: Text | None = None
    nativelyRenderedLayerName: Text | None = None


class DatasetEdit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    description: Text | None = None
    tags: list[Text] = Field(default_factory=list)
    isPublic: bool = False
    allowedTeams: list[Text] = Field(default_factory=list)
    folder: Text = ""
    metadata: list[MetadataEntryEdit] = Field(default_factory=list)
    defaultViewConfiguration: DatasetViewEdit = Field(default_factory=DatasetViewEdit)
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
        "defaultViewConfiguration": view_document(d),
        "id": d.id,
        "url": f"{base_url.rstrip('/')}/datasets/{d.id}",
        "created": d.created,
        "voxelSize": scale.model_dump() if scale is not None else None,
        "boundingBox": _union_box(d),
        "layers": [{"name": la.name, "category": la.category} for la in d.data_source.data_layers],
    }


def view_document(d: Dataset) -> Document:
    """The view defaults as the official client reads them: the data source's own (the real
    server sends none), with each layer's under ``layers`` (``{}`` for a layer without)."""
    doc: Document = dict(d.data_source.default_view_configuration or {})
    doc["layers"] = {
        la.name: dict(la.default_view_configuration or {}) for la in d.data_source.data_layers
    }
    return doc


async def _view_update(
    api: WebknossosApi, dataset_id: str, merged: Document, current: Document
) -> dict[str, Any]:
    """``dataSource``, ``layerRenamings`` and ``attachmentRenamings`` for updatePartial: the
    data source as the server has it now, each layer with its new view defaults. Refused
    (InvalidContent, nothing sent) when it names a layer the dataset lacks, or changes the
    dataset-wide defaults: the server rebuilds the data source from its layers and drops
    those (scalableminds/webknossos, app/models/dataset/DatasetService.scala,
    ``applyDataSourceUpdates``), so they would be lost."""
    wanted = dict(merged.get("defaultViewConfiguration") or {})
    shown = dict(current.get("defaultViewConfiguration") or {})
    layers: dict[str, Any] = wanted.pop("layers", None) or {}
    shown.pop("layers", None)
    if wanted != shown:
        changed = sorted(k for k in wanted.keys() | shown.keys() if wanted.get(k) != shown.get(k))
        raise InvalidContent(
            f"defaultViewConfiguration: {', '.join(changed)} cannot be saved: WEBKNOSSOS keeps "
            "only each layer's view defaults (under 'layers') through this route"
        )
    source = await api.data_source_json(dataset_id)
    validated(DataSource, source, f"dataset {dataset_id}")
    names = [la.get("name") for la in source.get("dataLayers", []) if isinstance(la, dict)]
    unknown = sorted(set(layers) - set(names))
    if unknown:
        raise InvalidContent(
            f"defaultViewConfiguration: no layer {', '.join(repr(u) for u in unknown)} "
            f"(layers: {', '.join(str(n) for n in names)})"
        )
    for layer in source.get("dataLayers", []):
        view = layers.get(layer.get("name")) or None  # {} or left out: no defaults
        if view is None:
            layer.pop("defaultViewConfiguration", None)
        else:
            layer["defaultViewConfiguration"] = view
    return DataSourceUpdate(dataSource=source).body()


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
        if "defaultViewConfiguration" in changed:
            partial.update(await _view_update(api, dataset_id, merged, current))
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
