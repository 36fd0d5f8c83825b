"""Pydantic models of the JSON the WEBKNOSSOS emulator reads and writes.

Field names are snake_case here and camelCase on the wire (``by_alias``); field order follows
the real server's JSON writers as recorded in webknossos-libs' test cassettes. Request bodies
are validated leniently where the real server is lenient (extra keys are ignored).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.alias_generators import to_camel


class Payload(BaseModel):
    """Base of every emitted payload: camelCase keys, None kept (the server writes nulls)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def dump(self) -> Any:
        return self.model_dump(mode="json", by_alias=True)


class Body(BaseModel):
    """Base of request bodies: camelCase keys, unknown keys ignored like Play's JSON reads."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# ------------------------------------------------------------------ build info


class BuildInfoWebknossos(Payload):
    name: str = "webknossos"
    ci_tag: str = ""
    commit_hash: str = "0000000000000000000000000000000000000000"
    ci_build: str = "neurofs-emulator"
    scala_version: str = "2.13.16"
    version: str = "neurofs-emulator"
    sbt_version: str = "1.11.7"
    commit_date: str = "Mon Jan 1 00:00:00 2024 +0000"


class HttpApiVersioning(Payload):
    current_api_version: int
    oldest_supported_api_version: int


class BuildInfo(Payload):
    webknossos: BuildInfoWebknossos
    schema_version: int
    http_api_versioning: HttpApiVersioning
    local_data_store_enabled: bool = False
    local_tracing_store_enabled: bool = False


# ------------------------------------------------------------------ teams, users


class TeamOut(Payload):
    id: str
    name: str
    organization: str
    is_organization_team: bool


class TeamMembership(Payload):
    id: str
    name: str
    is_team_manager: bool


class UserOut(Payload):
    id: str
    email: str
    first_name: str
    last_name: str
    is_admin: bool
    is_organization_owner: bool
    is_dataset_manager: bool
    is_active: bool
    teams: list[TeamMembership]
    experiences: dict[str, int]
    last_activity: int
    is_anonymous: bool
    is_editable: bool
    organization: str
    novel_user_experience_infos: dict[str, Any]
    selected_theme: str
    created: int
    last_task_type_id: str | None
    is_super_user: bool
    is_email_verified: bool
    is_unlisted: bool
    is_guest: bool


class UserCompact(Payload):
    id: str
    email: str
    first_name: str
    last_name: str
    is_admin: bool
    is_dataset_manager: bool
    is_anonymous: bool
    teams: list[TeamMembership]


# ------------------------------------------------------------------ datasets


class BoundingBoxJson(Payload):
    top_left: tuple[int, int, int]
    width: int
    height: int
    depth: int


class MagLocator(Payload):
    mag: tuple[int, int, int]
    path: str
    axis_order: dict[str, int]


class LayerAttachment(Payload):
    name: str
    path: str
    data_format: str


class LayerAttachments(Payload):
    """``attachments`` of a layer: every list is written, an absent single file is left out
    (scalableminds/webknossos,
    webknossos-datastore/app/com/scalableminds/webknossos/datastore/models/datasource/DataLayerAttachments.scala,
    ``Json.using[Json.WithDefaultValues].format``)."""

    meshes: list[LayerAttachment] = Field(default_factory=list)
    agglomerates: list[LayerAttachment] = Field(default_factory=list)
    segment_index: LayerAttachment | None = None
    connectomes: list[LayerAttachment] = Field(default_factory=list)
    cumsum: LayerAttachment | None = None

    def dump(self) -> Any:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class DataLayerOut(Payload):
    """A layer as the main server lists it (``dataSource.dataLayers`` of a dataset)."""

    largest_segment_id: int | None = None
    name: str
    element_class: str
    category: str
    data_format: str
    resolutions: list[tuple[int, int, int]]
    mags: list[MagLocator]
    num_channels: int
    bounding_box: BoundingBoxJson
    default_view_configuration: dict[str, Any] | None = None
    attachments: dict[str, Any] | None = None


class DataLayerStreamed(Payload):
    """A layer of a datastore-written ``datasource-properties.json`` (zarr streaming, proxy)."""

    category: str
    name: str
    data_format: str
    bounding_box: BoundingBoxJson
    element_class: str
    mags: list[MagLocator]
    largest_segment_id: int | None = None
    resolutions: list[tuple[int, int, int]]
    num_channels: int
    default_view_configuration: dict[str, Any] | None = None


class VoxelSize(Payload):
    factor: tuple[float, float, float]
    unit: str


class DataSourceId(Payload):
    name: str
    team: str


class DataSourceOut(Payload):
    id: DataSourceId
    data_layers: list[dict[str, Any]]
    scale: VoxelSize


class DataStoreOut(Payload):
    name: str
    url: str
    allows_upload: bool
    jobs_supported_by_available_workers: list[str] = Field(default_factory=list)
    jobs_enabled: bool = False


class MetadataEntry(Body):
    """One typed key/value entry of dataset or folder metadata."""

    key: StrictStr
    type: Literal["string", "number", "string[]"]
    value: Any


class DatasetOut(Payload):
    id: str
    name: str
    data_source: DataSourceOut
    data_store: DataStoreOut
    owning_organization: str
    allowed_teams: list[TeamOut]
    allowed_teams_cumulative: list[TeamOut]
    is_active: bool
    is_public: bool
    description: str | None
    directory_name: str
    created: int
    is_editable: bool
    last_used_by_user: int
    logo_url: str | None
    sorting_key: int
    metadata: list[dict[str, Any]]
    is_unreported: bool
    tags: list[str]
    folder_id: str
    used_storage_bytes: int
    is_virtual: bool


class DatasetCompactOut(Payload):
    """``GET /datasets?compact=true`` entries."""

    id: str
    name: str
    owning_organization: str
    folder_id: str
    is_active: bool
    created: int
    is_editable: bool
    last_used_by_user: int
    status: str
    tags: list[str]
    is_unreported: bool
    color_layer_names: list[str]
    segmentation_layer_names: list[str]


class DatasetIdOut(Payload):
    id: str
    name: str
    organization: str
    directory_name: str


class DataLayerUpdate(Body):
    """A layer of ``dataSource`` in an updatePartial body (a ``StaticLayer``): the server takes
    from it the category, bounding box, coordinate transformations, view configurations and
    largest segment id, and keeps only the mags it names (scalableminds/webknossos,
    app/models/dataset/DatasetService.scala, ``applyLayerUpdates``)."""

    name: StrictStr
    category: Literal["color", "segmentation"]
    mags: list[Any] = Field(default_factory=list)
    default_view_configuration: dict[str, Any] | None = None


class DataSourceUpdate(Body):
    """``dataSource`` of an updatePartial body: a ``UsableDataSource``. Its own
    ``defaultViewConfiguration`` is read and then dropped: the server rebuilds the data source
    from its stored layers, which carry none (``applyDataSourceUpdates``)."""

    id: dict[str, Any]
    data_layers: list[DataLayerUpdate]
    scale: VoxelSize
    default_view_configuration: dict[str, Any] | None = None


class LayerRenaming(Body):
    old_name: StrictStr
    new_name: StrictStr


class UpdatePartialBody(Body):
    """``PATCH /datasets/{id}/updatePartial``: only the keys present change.

    ``description: null`` clears it; the presence of a key is read from ``model_fields_set``.
    ``dataSource`` (with ``layerRenamings`` and ``attachmentRenamings``) is what the official
    client's dataset-properties setters send.
    """

    name: StrictStr | None = None
    description: StrictStr | None = None
    tags: list[StrictStr] | None = None
    is_public: StrictBool | None = None
    folder_id: StrictStr | None = None
    metadata: list[MetadataEntry] | None = None
    sorting_key: StrictInt | None = None
    data_source: DataSourceUpdate | None = None
    layer_renamings: list[LayerRenaming] | None = None
    attachment_renamings: list[dict[str, Any]] | None = None


class ExploreAndAddRemoteBody(Body):
    """``POST /datasets/exploreAndAddRemote`` (ExploreAndAddRemoteDatasetParameters in
    scalableminds/webknossos, app/models/dataset/explore/WKExploreRemoteLayerService.scala).
    The official client also sends ``credentialIdentifier`` and ``credentialSecret``; the
    route's JSON reads ignore them, as unknown keys."""

    remote_uri: StrictStr
    dataset_name: StrictStr
    folder_id: StrictStr | None = None
    folder_path: StrictStr | None = None
    data_store_name: StrictStr | None = None


# ------------------------------------------------------------------ folders


class FolderOut(Payload):
    id: str
    name: str
    metadata: list[dict[str, Any]]
    allowed_teams: list[TeamOut]
    allowed_teams_cumulative: list[TeamOut]
    is_editable: bool


class FolderTreeEntry(Payload):
    id: str
    name: str
    parent: str | None
    metadata: list[dict[str, Any]]
    is_editable: bool


class FolderUpdateBody(Body):
    name: StrictStr
    allowed_teams: list[StrictStr]
    metadata: list[MetadataEntry] | None = None


# ------------------------------------------------------------------ datastores


class SharingTokenOut(Payload):
    sharing_token: str


# ------------------------------------------------------------------ task types, projects, tasks


class TaskTypeOut(Payload):
    id: str
    summary: str
    description: str
    team_id: str
    team_name: str
    settings: dict[str, Any]
    recommended_configuration: Any
    tracing_type: str


class TaskTypeCreateBody(Body):
    summary: StrictStr = Field(min_length=1)
    description: StrictStr
    team_id: StrictStr
    team_name: StrictStr | None = None
    tracing_type: Literal["skeleton", "volume", "hybrid"] = "skeleton"
    settings: dict[str, Any] = Field(default_factory=dict)
    recommended_configuration: Any = None


class ProjectOut(Payload):
    name: str
    team: str
    team_name: str
    owner: UserCompact | None
    priority: int
    paused: bool
    expected_time: int | None
    is_blacklisted_from_report: bool
    id: str
    created: int


class ProjectParameters(Body):
    """The body of ``POST /projects`` and ``PUT /projects/{id}`` (scalableminds/webknossos,
    ``app/controllers/ProjectController.scala``): ``owner`` and ``isBlacklistedFromReport``
    are required; a name has at least 3 characters out of letters, digits, ``_`` and ``-``."""

    name: StrictStr = Field(min_length=3, pattern=r"^[a-zA-Z0-9_-]*$")
    team: StrictStr
    priority: StrictInt
    paused: StrictBool | None = None
    expected_time: StrictInt | None = None
    owner: StrictStr
    is_blacklisted_from_report: StrictBool


class ExperienceJson(Payload):
    domain: str
    value: int


class ExperienceBody(Body):
    domain: StrictStr
    value: StrictInt


class BoundingBoxBody(Body):
    top_left: tuple[StrictInt, StrictInt, StrictInt]
    width: StrictInt = Field(ge=0)
    height: StrictInt = Field(ge=0)
    depth: StrictInt = Field(ge=0)


class NmlTaskParametersBody(Body):
    """``formJSON`` of ``POST /tasks/createFromFiles`` (the server's ``NmlTaskParameters``):
    a task's parameters without what each annotation brings."""

    # An ObjectId there: a malformed one makes the form unreadable, not a lookup that fails.
    task_type_id: StrictStr = Field(pattern=r"^[0-9a-f]{24}$")
    needed_experience: ExperienceBody
    pending_instances: StrictInt
    project_name: StrictStr
    script_id: StrictStr | None = None
    bounding_box: BoundingBoxBody | None = None


class TaskParametersBody(Body):
    """One item of ``POST /tasks`` (and the body of ``PUT /tasks/{id}``)."""

    task_type_id: StrictStr
    needed_experience: ExperienceBody
    pending_instances: StrictInt
    project_name: StrictStr
    script_id: StrictStr | None = None
    bounding_box: BoundingBoxBody | None = None
    dataset_id: StrictStr | None = None
    # Older clients sent the dataset name instead of the id.
    data_set: StrictStr | None = None
    dataset_name: StrictStr | None = None
    edit_position: tuple[StrictInt, StrictInt, StrictInt]
    edit_rotation: tuple[float, float, float]


class TaskStatusJson(Payload):
    pending: int
    active: int
    finished: int


class TaskOut(Payload):
    id: str
    project_id: str
    project_name: str
    team: str
    type: TaskTypeOut
    dataset_name: str
    dataset_id: str
    needed_experience: ExperienceJson
    created: int
    status: TaskStatusJson
    script: Any
    tracing_time: int | None
    creation_info: Any
    bounding_box: BoundingBoxJson | None
    edit_position: tuple[int, int, int]
    edit_rotation: tuple[float, float, float]


class TaskListBody(Body):
    """``POST /tasks/list`` filters (all optional)."""

    user: StrictStr | None = None
    project: StrictStr | None = None
    ids: list[StrictStr] | None = None
    task_type: StrictStr | None = None
    random: StrictBool | None = None


# ------------------------------------------------------------------ annotations


class AnnotationLayerOut(Payload):
    tracing_id: str
    typ: str
    name: str
    stats: dict[str, Any]


class TracingStoreOut(Payload):
    name: str
    url: str


class AnnotationOut(Payload):
    modified: int
    state: str
    is_locked_by_owner: bool
    id: str
    name: str
    description: str
    view_configuration: Any
    typ: str
    task: TaskOut | None
    stats: dict[str, Any]
    restrictions: dict[str, bool]
    annotation_layers: list[AnnotationLayerOut]
    dataset_id: str
    data_set_name: str
    organization: str
    data_store: DataStoreOut
    tracing_store: TracingStoreOut
    visibility: str
    settings: dict[str, Any]
    tracing_time: int | None
    teams: list[TeamOut]
    tags: list[str]
    user: UserCompact
    owner: UserCompact
    contributors: list[Any]
    others_may_edit: bool
    created: int


# ------------------------------------------------------------------ meshes


class FullMeshRequest(Body):
    """The body of the datastore's ``meshes/fullMesh.stl`` (``FullMeshRequest`` in
    scalableminds/webknossos, webknossos-datastore/.../services/mesh/DSFullMeshService.scala):
    a mesh file's mesh when ``meshFileName`` is set, else an ad-hoc one at ``mag``."""

    mesh_file_name: StrictStr | None = None
    lod: StrictInt | None = None
    segment_id: StrictInt
    mapping_name: StrictStr | None = None
    mapping_type: StrictStr | None = None
    editable_mapping_tracing_id: StrictStr | None = None
    annotation_version: StrictInt | None = None
    mag: tuple[StrictInt, StrictInt, StrictInt] | None = None
    seed_position: tuple[StrictInt, StrictInt, StrictInt] | None = None
    additional_coordinates: list[Any] | None = None
