"""The WEBKNOSSOS emulator's fixed sample data, and :class:`SampleWorld`, its ground truth.

Everything is deterministic: ids, tokens, timestamps and every voxel (see :mod:`.volume` for
the formulas). Tests import :class:`SampleWorld` to know what the emulator serves. The objects
are declared below (:data:`DATASETS`, :data:`TEAMS`, :data:`USERS`, :data:`FOLDERS`,
:data:`TASK_TYPES`, :data:`PROJECTS`, :data:`TASKS`, :data:`ANNOTATIONS`); :func:`build_world`
copies them into a fresh :class:`World`.

Organization ``neurofs_lab``; users (token → who):

| token | user | rights |
|---|---|---|
| ``OWNER_TOKEN`` | Olivia Owner | admin, dataset manager, org owner, manager of every team |
| ``OTHER_TOKEN`` | Oscar Other | normal user, member (not manager) of ``team_beta`` only |

Teams: ``neurofs_lab`` (the organization team), ``team_alpha``, ``team_beta``.

Folders: ``neurofs_lab`` (root) → ``EM`` → ``Cortex``; root → ``LM``; root → ``Archive`` (empty).

| dataset | id | public | teams | folder | layers |
|---|---|---|---|---|---|
| ``l4_demo`` | ``DATASET_L4`` | yes | team_alpha | EM/Cortex | color uint8, segmentation uint32 |
| ``retina_rgb`` | ``DATASET_RETINA`` | no | team_alpha | LM | color, segmentation, rgb uint24 |
| ``cerebellum_beta`` | ``DATASET_CEREBELLUM`` | no | team_beta | EM | color, segmentation |

Every layer has mags ``1``, ``2-2-1``, ``4-4-2``; bounding boxes (mag 1, topLeft + size):
l4_demo (64, 32, 16) + 320×256×96; retina_rgb (128, 64, 8) + 192×160×48; cerebellum_beta
(32, 32, 32) + 128×128×64. Voxel size in nanometers: l4_demo (11.24, 11.24, 28), retina_rgb
(100, 100, 250), cerebellum_beta (8, 8, 30).

The scale sample (``--sample large``) serves all of the above plus ``large_volume``
(``DATASET_LARGE``, public, team_alpha, folder EM): one ``uint8`` color layer of
40,000 × 40,000 × 10,000 voxels at top-left (0, 0, 0), mags 1, 2, 4, … 64 (isotropic, as
``mag: [m, m, m]`` and paths ``./color/<m>``), voxel size 8 × 8 × 8 nm, every voxel computed
on request (striding for the coarser mags, see :mod:`.volume`); nothing is stored, so it
starts as fast as the demo.

So Oscar sees l4_demo (public) and cerebellum_beta (team_beta) but not retina_rgb (404), and
can edit none of them (403). Each dataset has a sharing token (``SampleWorld.sharing_token``).

Task types: ``Trace axons`` (skeleton, team_alpha), ``Segment cells`` (volume, team_beta).
Projects: ``demo_project`` (team_alpha), ``beta_project`` (team_beta), both owned by Olivia.
Tasks: three in demo_project (two on l4_demo, one with a bounding box on retina_rgb), one in
beta_project on cerebellum_beta; the tasks without a bounding box have ``boundingBox: null``, as
the real server sends them. The first task has an active and a finished annotation.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from neurofs_emulators.webknossos.state import (
    Annotation,
    BoundingBox,
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

ORGANIZATION = "neurofs_lab"
OWNER_TOKEN = "neurofs-demo-wk-owner-token"
OTHER_TOKEN = "neurofs-demo-wk-other-token"

DATASTORE_NAME = "localhost"
# What /api/buildinfo announces by default: what a recorded real server announces (current 12,
# oldest 5). The emulator can announce 13 or 14 instead (``--api-version``): the official client
# (webknossos 4.3.x) speaks 13–16, refuses a server at 12 and picks the highest version both
# sides support; 14 is the newest version whose zarr streaming is Zarr v2 (scalableminds/webknossos,
# ``app/controllers/ZarrStreamingController.scala``), so the client's tests run at 14.
CURRENT_API_VERSION = 12
API_VERSIONS = (12, 13, 14)
OLDEST_SUPPORTED_API_VERSION = 5
SCHEMA_VERSION = 145
# Where the "underlying storage" of the sample layers pretends to live on the datastore.
BINARY_DATA_DIR = "/srv/webknossos/binaryData"

# 2024-01-01T00:00:00Z, the creation time of everything in the sample.
EPOCH_MS = 1_704_067_200_000

TEAM_ORG = "66a0c00000000000000000a1"
TEAM_ALPHA = "66a0c00000000000000000a2"
TEAM_BETA = "66a0c00000000000000000a3"

USER_OWNER = "66a0e00000000000000000b1"
USER_OTHER = "66a0e00000000000000000b2"

FOLDER_ROOT = "66a0f00000000000000000f0"
FOLDER_EM = "66a0f00000000000000000f1"
FOLDER_CORTEX = "66a0f00000000000000000f2"
FOLDER_LM = "66a0f00000000000000000f3"
FOLDER_ARCHIVE = "66a0f00000000000000000f4"

DATASET_L4 = "66a0d00000000000000000d1"
DATASET_RETINA = "66a0d00000000000000000d2"
DATASET_CEREBELLUM = "66a0d00000000000000000d3"
DATASET_LARGE = "66a0d00000000000000000d4"

TASK_TYPE_SKELETON = "66a0a00000000000000000e1"
TASK_TYPE_VOLUME = "66a0a00000000000000000e2"
PROJECT_DEMO = "66a0b00000000000000000c1"
PROJECT_BETA = "66a0b00000000000000000c2"
TASK_IDS = (
    "66a0900000000000000000a1",
    "66a0900000000000000000a2",
    "66a0900000000000000000a3",
    "66a0900000000000000000a4",
)

MAGS: tuple[Vec3, ...] = ((1, 1, 1), (2, 2, 1), (4, 4, 2))
# The scale sample's mags: 1 to 64, isotropic.
LARGE_MAGS: tuple[Vec3, ...] = tuple((m, m, m) for m in (1, 2, 4, 8, 16, 32, 64))
LARGE_SIZE: Vec3 = (40_000, 40_000, 10_000)
SAMPLES = ("demo", "large")

# Settings the server keeps of a task type (it drops the view-configuration keys clients send).
TASK_TYPE_SETTING_KEYS = (
    "allowedModes",
    "branchPointsAllowed",
    "somaClickingAllowed",
    "volumeInterpolationAllowed",
    "mergerMode",
    "magRestrictions",
)


def sharing_token_for(dataset_id: str) -> str:
    """The deterministic sharing token of a sample dataset."""
    return hashlib.sha256(f"neurofs-wk-sharing:{dataset_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DatasetSpec:
    """Ground truth of one sample dataset as first served (before any write)."""

    id: str
    name: str
    layers: tuple[LayerSpec, ...]
    voxel_size: tuple[float, float, float]
    is_public: bool
    allowed_teams: tuple[str, ...]
    folder_id: str
    tags: tuple[str, ...]
    description: str | None
    metadata: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    unit: str = "nanometer"

    @property
    def sharing_token(self) -> str:
        return sharing_token_for(self.id)

    def layer(self, name: str) -> LayerSpec:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"dataset {self.name} has no layer {name}")


def _layers(top_left: Vec3, size: Vec3, seed: int, with_rgb: bool = False) -> tuple[LayerSpec, ...]:
    layers = [
        LayerSpec("color", "color", "uint8", "color", top_left, size, MAGS, seed),
        LayerSpec(
            "segmentation", "segmentation", "uint32", "segmentation", top_left, size, MAGS, seed
        ),
    ]
    if with_rgb:
        layers.append(LayerSpec("rgb", "color", "uint24", "rgb", top_left, size, MAGS, seed))
    return tuple(layers)


DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        id=DATASET_L4,
        name="l4_demo",
        layers=_layers((64, 32, 16), (320, 256, 96), seed=0),
        voxel_size=(11.24, 11.24, 28.0),
        is_public=True,
        allowed_teams=(TEAM_ALPHA,),
        folder_id=FOLDER_CORTEX,
        tags=("EM", "cortex"),
        description="Synthetic SBEM-like volume of mouse cortex layer 4.",
        metadata=(
            {"key": "species", "type": "string", "value": "mouse"},
            {"key": "sections", "type": "number", "value": 96},
            {"key": "stains", "type": "string[]", "value": ["osmium", "uranyl"]},
        ),
    ),
    DatasetSpec(
        id=DATASET_RETINA,
        name="retina_rgb",
        layers=_layers((128, 64, 8), (192, 160, 48), seed=1, with_rgb=True),
        voxel_size=(100.0, 100.0, 250.0),
        is_public=False,
        allowed_teams=(TEAM_ALPHA,),
        folder_id=FOLDER_LM,
        tags=("LM",),
        description=None,
        metadata=({"key": "species", "type": "string", "value": "zebrafish"},),
    ),
    DatasetSpec(
        id=DATASET_CEREBELLUM,
        name="cerebellum_beta",
        layers=_layers((32, 32, 32), (128, 128, 64), seed=2),
        voxel_size=(8.0, 8.0, 30.0),
        is_public=False,
        allowed_teams=(TEAM_BETA,),
        folder_id=FOLDER_EM,
        tags=(),
        description="Team beta's cerebellum crop.",
    ),
)


LARGE_DATASET = DatasetSpec(
    id=DATASET_LARGE,
    name="large_volume",
    layers=(
        LayerSpec(
            "color",
            "color",
            "uint8",
            "color",
            (0, 0, 0),
            LARGE_SIZE,
            LARGE_MAGS,
            seed=3,
            downsampling="stride",
        ),
    ),
    voxel_size=(8.0, 8.0, 8.0),
    is_public=True,
    allowed_teams=(TEAM_ALPHA,),
    folder_id=FOLDER_EM,
    tags=("EM", "scale"),
    description="Synthetic 40,000 × 40,000 × 10,000 volume, computed on request.",
)


def sample_datasets(sample: str = "demo") -> tuple[DatasetSpec, ...]:
    """The datasets of a sample: the demo's, and for ``large`` the big one too."""
    if sample not in SAMPLES:
        raise ValueError(f"no WEBKNOSSOS sample {sample!r}")
    return (*DATASETS, LARGE_DATASET) if sample == "large" else DATASETS


class SampleWorld:
    """Ground truth of the sample data, for tests and for the emulator itself."""

    organization = ORGANIZATION

    def __init__(self, sample: str = "demo") -> None:
        self.datasets: dict[str, DatasetSpec] = {d.id: d for d in sample_datasets(sample)}

    def dataset(self, dataset: str) -> DatasetSpec:
        """By id or by name."""
        if dataset in self.datasets:
            return self.datasets[dataset]
        for spec in self.datasets.values():
            if spec.name == dataset:
                return spec
        raise KeyError(f"no sample dataset {dataset}")

    def layer(self, dataset: str, layer: str) -> LayerSpec:
        return self.dataset(dataset).layer(layer)

    def sharing_token(self, dataset: str) -> str:
        return self.dataset(dataset).sharing_token

    def voxels(
        self,
        dataset: str,
        layer: str,
        mag: Vec3,
        x0: int,
        y0: int,
        z0: int,
        x1: int,
        y1: int,
        z1: int,
    ) -> npt.NDArray[np.generic]:
        """Exact values of ``[x0, x1) × [y0, y1) × [z0, z1)`` in **mag coordinates**.

        Shape ``(c, x1 - x0, y1 - y0, z1 - z0)``, axis order (c, x, y, z), dtype uint8
        (color, and each channel of uint24 RGB) or uint32 (segmentation). Zero outside the
        layer's bounding box.
        """
        return self.layer(dataset, layer).voxels(tuple(mag), (x0, y0, z0), (x1, y1, z1))  # type: ignore[arg-type]

    def chunk(
        self, dataset: str, layer: str, mag: Vec3, cx: int, cy: int, cz: int
    ) -> npt.NDArray[np.generic]:
        """The zarr-streaming chunk ``0.cx.cy.cz`` (32³ voxels, all channels)."""
        c = 32
        return self.voxels(
            dataset, layer, mag, cx * c, cy * c, cz * c, (cx + 1) * c, (cy + 1) * c, (cz + 1) * c
        )

    @staticmethod
    def mag_name(mag: Vec3) -> str:
        return mag_literal(mag)


TEAMS = (
    Team(TEAM_ORG, ORGANIZATION, is_organization_team=True),
    Team(TEAM_ALPHA, "team_alpha"),
    Team(TEAM_BETA, "team_beta"),
)

USERS = (
    User(
        id=USER_OWNER,
        email="olivia.owner@neurofs.example",
        first_name="Olivia",
        last_name="Owner",
        token=OWNER_TOKEN,
        is_admin=True,
        is_dataset_manager=True,
        is_organization_owner=True,
        teams={TEAM_ORG: True, TEAM_ALPHA: True, TEAM_BETA: True},
        experiences={"tracing": 10, "segmentation": 5},
        created=EPOCH_MS,
        last_activity=EPOCH_MS + 86_400_000,
    ),
    User(
        id=USER_OTHER,
        email="oscar.other@neurofs.example",
        first_name="Oscar",
        last_name="Other",
        token=OTHER_TOKEN,
        is_admin=False,
        is_dataset_manager=False,
        is_organization_owner=False,
        teams={TEAM_BETA: False},
        experiences={"segmentation": 2},
        created=EPOCH_MS + 1000,
        last_activity=EPOCH_MS + 2 * 86_400_000,
    ),
)

FOLDERS = (
    Folder(FOLDER_ROOT, ORGANIZATION, parent_id=None),
    Folder(
        FOLDER_EM,
        "EM",
        parent_id=FOLDER_ROOT,
        metadata=[{"key": "modality", "type": "string", "value": "EM"}],
    ),
    Folder(FOLDER_CORTEX, "Cortex", parent_id=FOLDER_EM),
    Folder(FOLDER_LM, "LM", parent_id=FOLDER_ROOT),
    Folder(FOLDER_ARCHIVE, "Archive", parent_id=FOLDER_ROOT),
)

_TASK_TYPE_SETTINGS: dict[str, Any] = {
    "allowedModes": ["orthogonal", "oblique", "flight"],
    "branchPointsAllowed": True,
    "somaClickingAllowed": True,
    "volumeInterpolationAllowed": False,
    "mergerMode": False,
    "magRestrictions": {},
}

TASK_TYPES = (
    TaskType(
        id=TASK_TYPE_SKELETON,
        summary="Trace axons",
        description="Trace every axon crossing the box.",
        team_id=TEAM_ALPHA,
        settings=dict(_TASK_TYPE_SETTINGS),
        tracing_type="skeleton",
    ),
    TaskType(
        id=TASK_TYPE_VOLUME,
        summary="Segment cells",
        description="Paint the cell bodies.",
        team_id=TEAM_BETA,
        settings={
            **_TASK_TYPE_SETTINGS,
            "allowedModes": ["orthogonal"],
            "volumeInterpolationAllowed": True,
            "magRestrictions": {"min": 1, "max": 2},
        },
        tracing_type="volume",
    ),
)

PROJECTS = (
    Project(
        id=PROJECT_DEMO,
        name="demo_project",
        team_id=TEAM_ALPHA,
        owner_id=USER_OWNER,
        priority=100,
        paused=False,
        expected_time=3_600_000,
        is_blacklisted_from_report=False,
        created=EPOCH_MS + 7_200_000,
    ),
    Project(
        id=PROJECT_BETA,
        name="beta_project",
        team_id=TEAM_BETA,
        owner_id=USER_OWNER,
        priority=50,
        paused=False,
        expected_time=None,
        is_blacklisted_from_report=False,
        created=EPOCH_MS + 7_300_000,
    ),
)


def _task(
    index: int,
    *,
    project: str,
    task_type: str,
    dataset: str,
    domain: str,
    experience: int,
    pending: int,
    position: Vec3,
    box: BoundingBox | None = None,
) -> Task:
    return Task(
        id=TASK_IDS[index],
        project_id=project,
        task_type_id=task_type,
        dataset_id=dataset,
        experience_domain=domain,
        experience_value=experience,
        pending=pending,
        bounding_box=box,
        edit_position=position,
        edit_rotation=(0.0, 0.0, 0.0),
        created=EPOCH_MS + 10_000_000 + index * 1000,
    )


# Tasks are created a second apart, in this order; none has an edit rotation.
TASKS = (
    _task(
        0,
        project=PROJECT_DEMO,
        task_type=TASK_TYPE_SKELETON,
        dataset=DATASET_L4,
        domain="tracing",
        experience=3,
        pending=1,
        position=(224, 160, 64),
    ),
    _task(
        1,
        project=PROJECT_DEMO,
        task_type=TASK_TYPE_SKELETON,
        dataset=DATASET_L4,
        domain="tracing",
        experience=1,
        pending=2,
        position=(300, 200, 80),
    ),
    _task(
        2,
        project=PROJECT_DEMO,
        task_type=TASK_TYPE_SKELETON,
        dataset=DATASET_RETINA,
        domain="tracing",
        experience=0,
        pending=1,
        position=(192, 128, 24),
        box=BoundingBox((160, 96, 16), width=64, height=64, depth=16),
    ),
    _task(
        3,
        project=PROJECT_BETA,
        task_type=TASK_TYPE_VOLUME,
        dataset=DATASET_CEREBELLUM,
        domain="segmentation",
        experience=2,
        pending=1,
        position=(96, 96, 64),
    ),
)

ANNOTATIONS = (
    Annotation(
        id="66a0800000000000000000a1",
        task_id=TASK_IDS[0],
        owner_id=USER_OTHER,
        state="Active",
        created=EPOCH_MS + 20_000_000,
        modified=EPOCH_MS + 20_500_000,
        tracing_time=480_000,
        layers=[("2f0b7c1e-0000-4000-8000-000000000001", "Skeleton", "Skeleton")],
    ),
    Annotation(
        id="66a0800000000000000000a2",
        task_id=TASK_IDS[0],
        owner_id=USER_OWNER,
        state="Finished",
        created=EPOCH_MS + 21_000_000,
        modified=EPOCH_MS + 22_000_000,
        tracing_time=1_200_000,
        layers=[("2f0b7c1e-0000-4000-8000-000000000002", "Skeleton", "Skeleton")],
    ),
    Annotation(
        id="66a0800000000000000000a3",
        task_id=TASK_IDS[3],
        owner_id=USER_OTHER,
        state="Active",
        created=EPOCH_MS + 23_000_000,
        modified=EPOCH_MS + 23_100_000,
        tracing_time=60_000,
        layers=[("2f0b7c1e-0000-4000-8000-000000000003", "Volume", "Volume")],
    ),
)


def _dataset(index: int, spec: DatasetSpec) -> Dataset:
    return Dataset(
        id=spec.id,
        name=spec.name,
        directory_name=spec.name,
        layers=list(spec.layers),
        voxel_size=spec.voxel_size,
        unit=spec.unit,
        is_public=spec.is_public,
        allowed_team_ids=list(spec.allowed_teams),
        folder_id=spec.folder_id,
        description=spec.description,
        tags=list(spec.tags),
        metadata=[dict(m) for m in spec.metadata],
        # An hour apart, in the order of DATASETS.
        created=EPOCH_MS + index * 3_600_000,
        sharing_token=spec.sharing_token,
    )


def build_world(sample: str = "demo") -> World:
    """A fresh, mutable :class:`World` holding the sample data (``demo`` or ``large``): copies
    of the objects above, since writes change them."""
    world = World(ORGANIZATION)
    world.root_folder_id = FOLDER_ROOT
    world.teams = {team.id: team for team in copy.deepcopy(TEAMS)}
    world.users = {user.id: user for user in copy.deepcopy(USERS)}
    world.folders = {folder.id: folder for folder in copy.deepcopy(FOLDERS)}
    datasets = sample_datasets(sample)
    world.datasets = {spec.id: _dataset(i, spec) for i, spec in enumerate(datasets)}
    world.task_types = {t.id: t for t in copy.deepcopy(TASK_TYPES)}
    world.projects = {p.id: p for p in copy.deepcopy(PROJECTS)}
    world.tasks = {task.id: task for task in copy.deepcopy(TASKS)}
    world.annotations = {a.id: a for a in copy.deepcopy(ANNOTATIONS)}
    return world
