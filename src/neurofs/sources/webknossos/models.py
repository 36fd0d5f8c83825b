"""Pydantic models of the WEBKNOSSOS API payloads neurofs reads (scalableminds/webknossos
``conf/webknossos.latest.routes`` and its controllers).

Unknown fields are ignored; the modelled ones are the ones the tree depends on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from neurofs.errors import RemoteError


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ApiVersions(_Model):
    current: int = Field(alias="currentApiVersion")
    oldest: int = Field(alias="oldestSupportedApiVersion")


class BuildInfo(_Model):
    http_api_versioning: ApiVersions = Field(alias="httpApiVersioning")


class User(_Model):
    """``api/v<N>/user``: the account the token belongs to."""

    id: str
    email: str = ""
    first_name: str = Field(default="", alias="firstName")
    last_name: str = Field(default="", alias="lastName")
    organization: str = ""
    is_admin: bool = Field(default=False, alias="isAdmin")

    @property
    def display(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        if self.email:
            return f"{full} <{self.email}>" if full else self.email
        return full or self.id

    @property
    def note(self) -> str | None:
        return None


# WEBKNOSSOS keeps coordinates in 32-bit integers; larger values are a broken or hostile
# answer (and would make listings and sizes astronomically large).
_Coordinate = Annotated[int, Field(ge=-(2**31), lt=2**31)]
_Extent = Annotated[int, Field(ge=0, lt=2**31)]


class BoundingBox(_Model):
    top_left: tuple[_Coordinate, _Coordinate, _Coordinate] = Field(alias="topLeft")
    width: _Extent
    height: _Extent
    depth: _Extent

    @property
    def end(self) -> tuple[int, int, int]:
        x, y, z = self.top_left
        return (x + self.width, y + self.height, z + self.depth)


_MagFactor = Annotated[int, Field(ge=1, le=2**16)]


class MagInfo(_Model):
    mag: tuple[_MagFactor, _MagFactor, _MagFactor]
    path: str | None = None
    axis_order: dict[str, int] | None = Field(default=None, alias="axisOrder")


class LayerAttachment(_Model):
    """A file that belongs to a segmentation layer (a mesh file, an agglomerate file, ...)."""

    name: str
    path: str
    data_format: str = Field(alias="dataFormat")


class LayerAttachments(_Model):
    """``attachments`` of a layer (scalableminds/webknossos,
    webknossos-datastore/app/com/scalableminds/webknossos/datastore/models/datasource/DataLayerAttachments.scala)."""

    meshes: list[LayerAttachment] = Field(default_factory=list)
    agglomerates: list[LayerAttachment] = Field(default_factory=list)
    segment_index: LayerAttachment | None = Field(default=None, alias="segmentIndex")
    connectomes: list[LayerAttachment] = Field(default_factory=list)
    cumsum: LayerAttachment | None = None


# elementClass → (numpy dtype of one channel, channels)
ELEMENT_CLASSES: dict[str, tuple[str, int]] = {
    "uint8": ("u1", 1),
    "uint16": ("<u2", 1),
    "uint24": ("u1", 3),
    "uint32": ("<u4", 1),
    "uint64": ("<u8", 1),
    "int8": ("i1", 1),
    "int16": ("<i2", 1),
    "int32": ("<i4", 1),
    "int64": ("<i8", 1),
    "float": ("<f4", 1),
    "double": ("<f8", 1),
}


class DataLayer(_Model):
    name: str
    category: str
    element_class: str = Field(alias="elementClass")
    bounding_box: BoundingBox = Field(alias="boundingBox")
    data_format: str | None = Field(default=None, alias="dataFormat")
    mags: list[MagInfo] = Field(default_factory=list)
    num_channels: int | None = Field(default=None, alias="numChannels")
    largest_segment_id: int | None = Field(default=None, alias="largestSegmentId")
    # How WEBKNOSSOS shows the layer by default (color, alpha, intensityRange, ...): kept as
    # the server wrote it, for datasource-properties.json.
    default_view_configuration: dict[str, Any] | None = Field(
        default=None, alias="defaultViewConfiguration"
    )
    attachments: LayerAttachments | None = None

    @model_validator(mode="before")
    @classmethod
    def _mags(cls, data: Any) -> Any:
        # Newer servers list "mags" ([{"mag": [x, y, z], "path": ...}]); older ones only the
        # legacy "resolutions" ([[x, y, z], ...]), which newer ones still send alongside.
        if isinstance(data, dict) and "mags" not in data:
            res = data.get("resolutions")
            if isinstance(res, list):
                data = {**data, "mags": [{"mag": m} for m in res]}
        return data

    @property
    def dtype(self) -> np.dtype[Any]:
        try:
            name, _ = ELEMENT_CLASSES[self.element_class]
        except KeyError:
            raise RemoteError(f"unsupported elementClass {self.element_class!r}") from None
        return np.dtype(name)

    @property
    def channels(self) -> int:
        if self.element_class in ELEMENT_CLASSES:
            return ELEMENT_CLASSES[self.element_class][1]
        return self.num_channels or 1


class Scale(_Model):
    factor: tuple[float, float, float]
    unit: str = "nanometer"


class DataSourceId(_Model):
    name: str = ""
    team: str = ""


class DataSource(_Model):
    id: DataSourceId | None = None
    data_layers: list[DataLayer] = Field(default_factory=list, alias="dataLayers")
    scale: Scale | None = None
    # The dataset-wide view defaults (position, zoom, ...), when the server sends them.
    default_view_configuration: dict[str, Any] | None = Field(
        default=None, alias="defaultViewConfiguration"
    )


class DataSourceUpdate(BaseModel):
    """The body of ``PATCH /datasets/{id}/updatePartial`` that the official client's
    dataset-properties setters send (``RemoteDataset._save_dataset_properties_impl``): the
    whole data source as the server showed it, with the changes made, and no renamings."""

    model_config = ConfigDict(populate_by_name=True)

    data_source: dict[str, Any] = Field(alias="dataSource")
    layer_renamings: list[Any] = Field(default_factory=list, alias="layerRenamings")
    attachment_renamings: list[Any] = Field(default_factory=list, alias="attachmentRenamings")

    def body(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class DataStore(_Model):
    name: str = ""
    url: str


class TeamRef(_Model):
    id: str
    name: str


class MetadataEntry(_Model):
    key: str
    type: str = "string"
    value: Any = None


class Dataset(_Model):
    id: str
    name: str
    directory_name: str | None = Field(default=None, alias="directoryName")
    owning_organization: str = Field(alias="owningOrganization")
    data_store: DataStore = Field(alias="dataStore")
    data_source: DataSource = Field(default_factory=DataSource, alias="dataSource")
    allowed_teams: list[TeamRef] = Field(default_factory=list, alias="allowedTeams")
    is_active: bool = Field(default=True, alias="isActive")
    is_public: bool = Field(default=False, alias="isPublic")
    description: str | None = None
    created: int = 0
    metadata: list[MetadataEntry] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    folder_id: str | None = Field(default=None, alias="folderId")
    is_editable: bool = Field(default=False, alias="isEditable")


class Team(_Model):
    id: str
    name: str


class Folder(_Model):
    id: str
    name: str
    parent: str | None = None
    is_editable: bool = Field(default=False, alias="isEditable")


class Task(_Model):
    """``api/v<N>/tasks/{id}``. A task without a bounding box has ``boundingBox: null``."""

    id: str
    dataset_id: str | None = Field(default=None, alias="datasetId")
    project_name: str | None = Field(default=None, alias="projectName")
    bounding_box: BoundingBox | None = Field(default=None, alias="boundingBox")


class ProjectOwner(_Model):
    id: str


class Project(_Model):
    """``api/v<N>/projects``: what a save sends back that the project file does not show as
    such (the owner is shown by email; the API takes the owner's id)."""

    id: str
    name: str
    owner: ProjectOwner
    paused: bool = False


class CreatedTask(_Model):
    id: str


class TaskCreationResult(_Model):
    """One item of ``POST /tasks``: a created task, or the server's reason for refusing it."""

    status: int = 200
    success: CreatedTask | None = None
    error: Any = None


class TaskCreation(_Model):
    """The answer of ``POST /tasks``: one result per submitted item, in order."""

    tasks: list[TaskCreationResult]
    warnings: list[Any] = Field(default_factory=list)


# The characters the server allows in a dataset's name.
_DATASET_NAME = re.compile(r"[A-Za-z0-9_\-.]*")


class RemoteDatasetRequest(BaseModel):
    """A new ``datasets/<organization>/<name>.json``: the dataset to explore and add.
    ``folder`` is a folder path below the organization's root, as ``dataset.json`` shows it.
    Unknown keys are refused, so a misspelt key is caught instead of being ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    remote_uri: StrictStr = Field(alias="remoteUri")
    dataset_name: StrictStr = Field(alias="datasetName", max_length=300)
    folder: StrictStr | None = None

    @field_validator("remote_uri")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        # The server refuses a URI without a scheme ("Received invalid URI") after it stored
        # nothing; checking here spares the round trip.
        scheme, sep, rest = value.partition("://")
        if not sep or not scheme or not rest or any(c.isspace() for c in value):
            raise ValueError("must be a URI such as https://…, s3://… or gs://…")
        return value

    @field_validator("dataset_name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        # The server's rules, in its order and words (DatasetService.assertValidDatasetName):
        # checked here, a refused name costs no round trip and says why at once.
        if not _DATASET_NAME.fullmatch(value):
            raise ValueError("use only letters, digits, dots, underscores, hyphens")
        if value.startswith("."):
            raise ValueError("use a name that does not start with a dot")
        if len(value) < 3:
            raise ValueError("use at least three characters")
        return value


class ExploreAndAddRemote(BaseModel):
    """The body of ``POST /datasets/exploreAndAddRemote`` exactly as the official client sends
    it (webknossos-libs, ``ApiDatasetExploreAndAddRemote``: every key, nulls included)."""

    model_config = ConfigDict(populate_by_name=True)

    remote_uri: str = Field(alias="remoteUri")
    dataset_name: str = Field(alias="datasetName")
    folder_id: str | None = Field(default=None, alias="folderId")
    data_store_name: str | None = Field(default=None, alias="dataStoreName")
    credential_identifier: str | None = Field(default=None, alias="credentialIdentifier")
    credential_secret: str | None = Field(default=None, alias="credentialSecret")


class Experience(BaseModel):
    domain: StrictStr = Field(min_length=1)
    value: StrictInt


class TasksFromAnnotations(BaseModel):
    """A new task request file that names base annotations: one task per annotation file,
    sent as ``POST /tasks/createFromFiles``. Its keys are those of a task request without
    what each annotation brings (dataset, position, rotation), and ``baseAnnotations``: the
    absolute paths of NML files or zips of them on this machine."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    task_type_id: StrictStr = Field(alias="taskTypeId", min_length=1)
    needed_experience: Experience = Field(alias="neededExperience")
    pending_instances: StrictInt = Field(alias="pendingInstances", ge=1)
    project_name: StrictStr = Field(alias="projectName", min_length=1)
    script_id: StrictStr | None = Field(default=None, alias="scriptId")
    # Unset: each task takes the bounding box its annotation has, if any.
    bounding_box: BoundingBox | None = Field(default=None, alias="boundingBox")
    base_annotations: list[StrictStr] = Field(alias="baseAnnotations", min_length=1)

    def form_json(self) -> dict[str, Any]:
        """``formJSON`` of the request (the server's ``NmlTaskParameters``), as the official
        client's ``Task.create_from_annotations`` writes it."""
        return {
            "taskTypeId": self.task_type_id,
            "neededExperience": self.needed_experience.model_dump(),
            "pendingInstances": self.pending_instances,
            "projectName": self.project_name,
            "scriptId": self.script_id,
            "boundingBox": (
                self.bounding_box.model_dump(by_alias=True) if self.bounding_box else None
            ),
        }


class FullMeshRequest(BaseModel):
    """The body of the datastore's ``meshes/fullMesh.stl``: an ad-hoc mesh of a segment at
    ``mag`` (scalableminds/webknossos, webknossos-datastore/.../services/mesh/
    DSFullMeshService.scala, ``FullMeshRequest``). A layer with a segment index needs no
    ``seedPosition``."""

    model_config = ConfigDict(populate_by_name=True)

    segment_id: int = Field(alias="segmentId")
    mag: tuple[int, int, int]
    lod: int = 0
