"""JSON writers of the emulated WEBKNOSSOS main server and datastore (state → payloads)."""

from __future__ import annotations

from typing import Any

from neurofs_emulators.webknossos import models
from neurofs_emulators.webknossos.sample import (
    BINARY_DATA_DIR,
    DATASTORE_NAME,
    TASK_TYPE_SETTING_KEYS,
)
from neurofs_emulators.webknossos.state import (
    Annotation,
    Dataset,
    Folder,
    Project,
    Task,
    TaskType,
    Team,
    User,
    World,
)
from neurofs_emulators.webknossos.volume import LayerSpec, Vec3, mag_literal

AXIS_ORDER_CXYZ = {"x": 1, "y": 2, "z": 3, "c": 0}


def team(world: World, t: Team) -> models.TeamOut:
    return models.TeamOut(
        id=t.id,
        name=t.name,
        organization=world.organization,
        is_organization_team=t.is_organization_team,
    )


def memberships(world: World, user: User) -> list[models.TeamMembership]:
    return [
        models.TeamMembership(id=tid, name=world.teams[tid].name, is_team_manager=manager)
        for tid, manager in user.teams.items()
        if tid in world.teams
    ]


def user(world: World, u: User) -> models.UserOut:
    return models.UserOut(
        id=u.id,
        email=u.email,
        first_name=u.first_name,
        last_name=u.last_name,
        is_admin=u.is_admin,
        is_organization_owner=u.is_organization_owner,
        is_dataset_manager=u.is_dataset_manager,
        is_active=True,
        teams=memberships(world, u),
        experiences=dict(u.experiences),
        last_activity=u.last_activity,
        is_anonymous=False,
        is_editable=True,
        organization=world.organization,
        novel_user_experience_infos={},
        selected_theme="auto",
        created=u.created,
        last_task_type_id=None,
        is_super_user=False,
        is_email_verified=True,
        is_unlisted=False,
        is_guest=False,
    )


def user_compact(world: World, u: User) -> models.UserCompact:
    return models.UserCompact(
        id=u.id,
        email=u.email,
        first_name=u.first_name,
        last_name=u.last_name,
        is_admin=u.is_admin,
        is_dataset_manager=u.is_dataset_manager,
        is_anonymous=False,
        teams=memberships(world, u),
    )


def datastore(url: str) -> models.DataStoreOut:
    return models.DataStoreOut(name=DATASTORE_NAME, url=url, allows_upload=True)


def bbox(layer: LayerSpec) -> models.BoundingBoxJson:
    return models.BoundingBoxJson(
        top_left=layer.top_left, width=layer.size[0], height=layer.size[1], depth=layer.size[2]
    )


def _drop_absent(layer: dict[str, Any]) -> dict[str, Any]:
    # Play writes no key for an absent option: only segmentation layers carry
    # largestSegmentId and attachments.
    for key in ("largestSegmentId", "defaultViewConfiguration", "attachments"):
        if layer.get(key) is None:
            layer.pop(key, None)
    return layer


def layer_view(dataset: Dataset, layer: LayerSpec) -> dict[str, Any] | None:
    """The layer's ``defaultViewConfiguration`` as the server holds it: set through
    updatePartial, else the sample's."""
    if layer.name in dataset.layer_views:
        return dataset.layer_views[layer.name]
    return view_configuration(layer)


def view_configuration(layer: LayerSpec) -> dict[str, Any]:
    """The layer's ``defaultViewConfiguration`` as a datasource-properties.json sets it."""
    if layer.category == "segmentation":
        return {"alpha": 20}
    return {"color": [255, 255, 255], "intensityRange": [0, 255]}


def attachments(base: str, layer: LayerSpec) -> dict[str, Any] | None:
    """Files next to a segmentation layer on the datastore's disk: a mesh file, an
    agglomerate file and a segment index, as the datastore finds them in ``meshes/``,
    ``agglomerates/`` and ``segmentIndex/``."""
    if layer.category != "segmentation":
        return None

    def hdf5(kind: str, name: str) -> models.LayerAttachment:
        return models.LayerAttachment(
            name=name, path=f"file://{base}/{kind}/{name}.hdf5", data_format="hdf5"
        )

    found = models.LayerAttachments(
        meshes=[hdf5("meshes", "meshfile_4-4-2")],
        agglomerates=[hdf5("agglomerates", "agglomerate_view_5")],
        segment_index=hdf5("segmentIndex", "segmentIndex"),
    )
    out: dict[str, Any] = found.dump()
    return out


def api_layer(world: World, dataset: Dataset, layer: LayerSpec) -> dict[str, Any]:
    """A layer of the dataset's data source as stored on the server: Zarr 3 on the datastore's
    disk, mags at absolute paths (what ``DIRECT_PATH`` access would open)."""
    base = f"{BINARY_DATA_DIR}/{world.organization}/{dataset.directory_name}/{layer.name}"
    out = models.DataLayerOut(
        largest_segment_id=layer.largest_segment_id(),
        name=layer.name,
        element_class=layer.element_class,
        category=layer.category,
        data_format="zarr3",
        resolutions=list(layer.mags),
        mags=[
            models.MagLocator(mag=m, path=f"{base}/{mag_literal(m)}", axis_order=AXIS_ORDER_CXYZ)
            for m in layer.mags
        ],
        num_channels=layer.num_channels,
        bounding_box=bbox(layer),
        default_view_configuration=layer_view(dataset, layer),
        attachments=attachments(base, layer),
    ).dump()
    return _drop_absent(out)


def streamed_layer(
    dataset: Dataset, layer: LayerSpec, data_format: str, path_of: Any
) -> dict[str, Any]:
    """A layer of a datastore-generated datasource-properties.json (zarr streaming / proxy)."""
    out = models.DataLayerStreamed(
        category=layer.category,
        name=layer.name,
        data_format=data_format,
        bounding_box=bbox(layer),
        element_class=layer.element_class,
        mags=[
            models.MagLocator(mag=m, path=path_of(layer, m), axis_order=AXIS_ORDER_CXYZ)
            for m in layer.mags
        ],
        largest_segment_id=layer.largest_segment_id(),
        resolutions=list(layer.mags),
        num_channels=layer.num_channels,
        default_view_configuration=layer_view(dataset, layer),
    ).dump()
    return _drop_absent(out)


def data_source(world: World, dataset: Dataset, layers: list[dict[str, Any]]) -> dict[str, Any]:
    return models.DataSourceOut(
        id=models.DataSourceId(name=dataset.directory_name, team=world.organization),
        data_layers=layers,
        scale=models.VoxelSize(factor=dataset.voxel_size, unit=dataset.unit),
    ).dump()


def zarr_streaming_properties(world: World, dataset: Dataset) -> dict[str, Any]:
    def path_of(layer: LayerSpec, mag: Vec3) -> str:
        return f"./{layer.name}/{mag_literal(mag)}"

    return data_source(
        world, dataset, [streamed_layer(dataset, lay, "zarr", path_of) for lay in dataset.layers]
    )


def proxy_properties(world: World, dataset: Dataset) -> dict[str, Any]:
    def path_of(layer: LayerSpec, mag: Vec3) -> str:
        return f"./layers/{layer.name}/mags/{mag_literal(mag)}"

    return data_source(
        world, dataset, [streamed_layer(dataset, lay, "zarr3", path_of) for lay in dataset.layers]
    )


def dataset(
    world: World, d: Dataset, viewer: User | None, datastore_url: str, last_used: int = 0
) -> dict[str, Any]:
    teams = [team(world, world.teams[t]) for t in d.allowed_team_ids if t in world.teams]
    cumulative = [
        team(world, world.teams[t]) for t in world.dataset_teams_cumulative(d) if t in world.teams
    ]
    return models.DatasetOut(
        id=d.id,
        name=d.name,
        data_source=models.DataSourceOut.model_validate(
            data_source(world, d, [api_layer(world, d, lay) for lay in d.layers])
        ),
        data_store=datastore(datastore_url),
        owning_organization=world.organization,
        allowed_teams=teams,
        allowed_teams_cumulative=cumulative,
        is_active=True,
        is_public=d.is_public,
        description=d.description,
        directory_name=d.directory_name,
        created=d.created,
        is_editable=world.can_edit_dataset(d, viewer),
        last_used_by_user=last_used,
        logo_url=None,
        sorting_key=d.created,
        metadata=[dict(m) for m in d.metadata],
        is_unreported=False,
        tags=list(d.tags),
        folder_id=d.folder_id,
        used_storage_bytes=0,
        is_virtual=False,
    ).dump()


def dataset_compact(world: World, d: Dataset, viewer: User | None) -> dict[str, Any]:
    return models.DatasetCompactOut(
        id=d.id,
        name=d.name,
        owning_organization=world.organization,
        folder_id=d.folder_id,
        is_active=True,
        created=d.created,
        is_editable=world.can_edit_dataset(d, viewer),
        last_used_by_user=0,
        status="",
        tags=list(d.tags),
        is_unreported=False,
        color_layer_names=[lay.name for lay in d.layers if lay.category == "color"],
        segmentation_layer_names=[lay.name for lay in d.layers if lay.category == "segmentation"],
    ).dump()


def folder(world: World, f: Folder, viewer: User) -> dict[str, Any]:
    return models.FolderOut(
        id=f.id,
        name=f.name,
        metadata=[dict(m) for m in f.metadata],
        allowed_teams=[team(world, world.teams[t]) for t in f.allowed_team_ids if t in world.teams],
        allowed_teams_cumulative=[
            team(world, world.teams[t])
            for t in world.folder_teams_cumulative(f.id)
            if t in world.teams
        ],
        is_editable=world.can_edit_folder(f, viewer),
    ).dump()


def folder_tree_entry(world: World, f: Folder, viewer: User) -> dict[str, Any]:
    return models.FolderTreeEntry(
        id=f.id,
        name=f.name,
        parent=f.parent_id,
        metadata=[dict(m) for m in f.metadata],
        is_editable=world.can_edit_folder(f, viewer),
    ).dump()


def task_type(world: World, t: TaskType) -> models.TaskTypeOut:
    return models.TaskTypeOut(
        id=t.id,
        summary=t.summary,
        description=t.description,
        team_id=t.team_id,
        team_name=world.teams[t.team_id].name if t.team_id in world.teams else "",
        settings={k: t.settings[k] for k in TASK_TYPE_SETTING_KEYS if k in t.settings},
        recommended_configuration=t.recommended_configuration,
        tracing_type=t.tracing_type,
    )


def project(world: World, p: Project) -> dict[str, Any]:
    owner = world.users.get(p.owner_id)
    return models.ProjectOut(
        name=p.name,
        team=p.team_id,
        team_name=world.teams[p.team_id].name if p.team_id in world.teams else "",
        owner=user_compact(world, owner) if owner is not None else None,
        priority=p.priority,
        paused=p.paused,
        expected_time=p.expected_time,
        is_blacklisted_from_report=p.is_blacklisted_from_report,
        id=p.id,
        created=p.created,
    ).dump()


def task_model(world: World, t: Task) -> models.TaskOut:
    proj = world.projects[t.project_id]
    ds = world.datasets.get(t.dataset_id)
    pending, active, finished = world.task_status(t)
    times = [a.tracing_time for a in world.task_annotations(t.id) if a.tracing_time is not None]
    return models.TaskOut(
        id=t.id,
        project_id=t.project_id,
        project_name=proj.name,
        team=world.teams[proj.team_id].name if proj.team_id in world.teams else "",
        type=task_type(world, world.task_types[t.task_type_id]),
        dataset_name=ds.name if ds is not None else "",
        dataset_id=t.dataset_id,
        needed_experience=models.ExperienceJson(
            domain=t.experience_domain, value=t.experience_value
        ),
        created=t.created,
        status=models.TaskStatusJson(pending=pending, active=active, finished=finished),
        script=None,
        tracing_time=sum(times) if times else None,
        creation_info=t.creation_info,
        bounding_box=(
            models.BoundingBoxJson(
                top_left=t.bounding_box.top_left,
                width=t.bounding_box.width,
                height=t.bounding_box.height,
                depth=t.bounding_box.depth,
            )
            if t.bounding_box is not None
            else None
        ),
        edit_position=t.edit_position,
        edit_rotation=t.edit_rotation,
    )


def task(world: World, t: Task) -> dict[str, Any]:
    out: dict[str, Any] = task_model(world, t).dump()
    return out


def annotation(
    world: World, a: Annotation, datastore_url: str, tracingstore_url: str
) -> dict[str, Any]:
    t = world.tasks[a.task_id]
    ds = world.datasets.get(t.dataset_id)
    owner = world.users[a.owner_id]
    tt = world.task_types[t.task_type_id]
    proj = world.projects[t.project_id]
    return models.AnnotationOut(
        modified=a.modified,
        state=a.state,
        is_locked_by_owner=False,
        id=a.id,
        name="",
        description="",
        view_configuration=None,
        typ="Task",
        task=task_model(world, t),
        stats={},
        restrictions={
            "allowAccess": True,
            "allowUpdate": a.state == "Active",
            "allowFinish": a.state == "Active",
            "allowDownload": True,
        },
        annotation_layers=[
            models.AnnotationLayerOut(tracing_id=tid, typ=typ, name=name, stats={})
            for tid, typ, name in a.layers
        ],
        dataset_id=t.dataset_id,
        data_set_name=ds.name if ds is not None else "",
        organization=world.organization,
        data_store=datastore(datastore_url),
        tracing_store=models.TracingStoreOut(name=DATASTORE_NAME, url=tracingstore_url),
        visibility="Internal",
        settings={k: tt.settings[k] for k in TASK_TYPE_SETTING_KEYS if k in tt.settings},
        tracing_time=a.tracing_time,
        teams=[team(world, world.teams[proj.team_id])] if proj.team_id in world.teams else [],
        tags=[ds.name if ds is not None else "", tt.tracing_type],
        user=user_compact(world, owner),
        owner=user_compact(world, owner),
        contributors=[],
        others_may_edit=False,
        created=a.created,
    ).dump()
