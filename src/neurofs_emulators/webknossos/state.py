"""The WEBKNOSSOS emulator's in-memory world: organization, users, teams, folders, datasets,
task types, projects, tasks and annotations, plus the access rules the real server applies.

Writes change this state only (one process, one event loop, no locking needed); a restart
serves the sample data of :mod:`.sample` again. Ids are 24-hex-digit ObjectIds; new objects get
ids from a deterministic counter, so the same sequence of writes gives the same ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from neurofs_emulators.webknossos.volume import LayerSpec, Vec3

TracingType = Literal["skeleton", "volume", "hybrid"]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Team:
    id: str
    name: str
    is_organization_team: bool = False


@dataclass
class User:
    id: str
    email: str
    first_name: str
    last_name: str
    token: str
    is_admin: bool
    is_dataset_manager: bool
    is_organization_owner: bool
    # team id -> is team manager
    teams: dict[str, bool]
    experiences: dict[str, int]
    created: int
    last_activity: int

    def is_manager_of(self, team_id: str) -> bool:
        return self.is_admin or self.teams.get(team_id, False)

    def is_member_of(self, team_id: str) -> bool:
        return self.is_admin or team_id in self.teams


@dataclass
class Folder:
    id: str
    name: str
    parent_id: str | None
    metadata: list[dict[str, Any]] = field(default_factory=list)
    allowed_team_ids: list[str] = field(default_factory=list)


@dataclass
class Dataset:
    id: str
    name: str
    directory_name: str
    layers: list[LayerSpec]
    voxel_size: tuple[float, float, float]
    unit: str
    is_public: bool
    allowed_team_ids: list[str]
    folder_id: str
    description: str | None
    tags: list[str]
    metadata: list[dict[str, Any]]
    created: int
    sharing_token: str
    # Each layer's defaultViewConfiguration as last set through updatePartial's dataSource
    # (None: cleared); a layer not named here shows the sample's own.
    layer_views: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def layer(self, name: str) -> LayerSpec | None:
        return next((layer for layer in self.layers if layer.name == name), None)


@dataclass
class TaskType:
    id: str
    summary: str
    description: str
    team_id: str
    settings: dict[str, Any]
    tracing_type: TracingType
    recommended_configuration: Any = None


@dataclass
class Project:
    id: str
    name: str
    team_id: str
    owner_id: str
    priority: int
    paused: bool
    expected_time: int | None
    is_blacklisted_from_report: bool
    created: int


@dataclass
class BoundingBox:
    top_left: Vec3
    width: int
    height: int
    depth: int


@dataclass
class Annotation:
    id: str
    task_id: str
    owner_id: str
    state: Literal["Active", "Finished"]
    created: int
    modified: int
    tracing_time: int | None
    # (tracing id, "Skeleton" | "Volume", layer name)
    layers: list[tuple[str, str, str]]


@dataclass
class Task:
    id: str
    project_id: str
    task_type_id: str
    dataset_id: str
    experience_domain: str
    experience_value: int
    pending: int
    bounding_box: BoundingBox | None
    edit_position: Vec3
    edit_rotation: tuple[float, float, float]
    created: int
    script_id: str | None = None
    # A task made from a base annotation: its file's name, and the size of its skeleton.
    creation_info: str | None = None
    base_trees: int = 0
    base_nodes: int = 0


class World:
    """All state of one emulator process."""

    def __init__(self, organization: str, id_prefix: str = "6a") -> None:
        self.organization = organization
        self.teams: dict[str, Team] = {}
        self.users: dict[str, User] = {}
        self.folders: dict[str, Folder] = {}
        self.root_folder_id = ""
        self.datasets: dict[str, Dataset] = {}
        self.task_types: dict[str, TaskType] = {}
        self.projects: dict[str, Project] = {}
        self.tasks: dict[str, Task] = {}
        self.annotations: dict[str, Annotation] = {}
        self._id_prefix = id_prefix
        self._counter = 0

    # ------------------------------------------------------------------ ids

    def new_id(self) -> str:
        """A fresh ObjectId-shaped id, deterministic per process."""
        self._counter += 1
        return f"{self._id_prefix}{self._counter:022x}"

    # ------------------------------------------------------------------ lookups

    def user_for_token(self, token: str | None) -> User | None:
        if not token:
            return None
        return next((u for u in self.users.values() if u.token == token), None)

    def dataset_for_sharing_token(self, token: str | None) -> Dataset | None:
        if not token:
            return None
        return next((d for d in self.datasets.values() if d.sharing_token == token), None)

    def team_by_name(self, name: str) -> Team | None:
        return next((t for t in self.teams.values() if t.name == name), None)

    def project_by_name(self, name: str) -> Project | None:
        return next((p for p in self.projects.values() if p.name == name), None)

    def folder_path(self, folder_id: str) -> list[Folder]:
        """Root first."""
        chain: list[Folder] = []
        current = self.folders.get(folder_id)
        while current is not None:
            chain.append(current)
            current = self.folders.get(current.parent_id) if current.parent_id else None
        return list(reversed(chain))

    def folder_descendants(self, folder_id: str) -> set[str]:
        """``folder_id`` and every folder below it."""
        out = {folder_id}
        changed = True
        while changed:
            changed = False
            for folder in self.folders.values():
                if folder.parent_id in out and folder.id not in out:
                    out.add(folder.id)
                    changed = True
        return out

    def folder_teams_cumulative(self, folder_id: str) -> list[str]:
        """Allowed teams of the folder and all its ancestors (order of first appearance)."""
        out: list[str] = []
        for folder in self.folder_path(folder_id):
            for team_id in folder.allowed_team_ids:
                if team_id not in out:
                    out.append(team_id)
        return out

    def dataset_teams_cumulative(self, dataset: Dataset) -> list[str]:
        out = list(dataset.allowed_team_ids)
        for team_id in self.folder_teams_cumulative(dataset.folder_id):
            if team_id not in out:
                out.append(team_id)
        return out

    # ------------------------------------------------------------------ access rules

    def can_read_dataset(
        self, dataset: Dataset, user: User | None, sharing_token: str | None
    ) -> bool:
        """Public datasets: everyone; else admins and dataset managers of the organization,
        members of an allowed team (of the dataset or its folders), or the sharing token."""
        if dataset.is_public:
            return True
        if sharing_token is not None and sharing_token == dataset.sharing_token:
            return True
        if user is None:
            return False
        if user.is_admin or user.is_dataset_manager:
            return True
        return any(team in user.teams for team in self.dataset_teams_cumulative(dataset))

    def can_edit_dataset(self, dataset: Dataset, user: User | None) -> bool:
        """Admins, dataset managers, and team managers of an allowed team."""
        if user is None:
            return False
        if user.is_admin or user.is_dataset_manager:
            return True
        return any(user.teams.get(t, False) for t in self.dataset_teams_cumulative(dataset))

    def can_administrate_datasets(self, user: User, organization: str) -> bool:
        """The main server's ``tryAdministrate`` for an organization: an admin or a team
        manager of that organization (every user here belongs to this one), or a dataset
        manager of any."""
        in_organization = organization == self.organization
        manages_a_team = any(user.teams.values())
        return (in_organization and (user.is_admin or manages_a_team)) or user.is_dataset_manager

    def can_read_folder(self, folder: Folder, user: User) -> bool:
        if user.is_admin or user.is_dataset_manager:
            return True
        cumulative = self.folder_teams_cumulative(folder.id)
        return folder.id == self.root_folder_id or any(t in user.teams for t in cumulative)

    def can_edit_folder(self, folder: Folder, user: User) -> bool:
        if user.is_admin or user.is_dataset_manager:
            return True
        return any(user.teams.get(t, False) for t in self.folder_teams_cumulative(folder.id))

    def visible_teams(self, user: User) -> list[Team]:
        if user.is_admin:
            return list(self.teams.values())
        return [t for t in self.teams.values() if t.id in user.teams]

    def can_read_project(self, project: Project, user: User) -> bool:
        return user.is_member_of(project.team_id)

    def can_read_task(self, task: Task, user: User) -> bool:
        project = self.projects.get(task.project_id)
        return project is not None and self.can_read_project(project, user)

    def can_read_task_type(self, task_type: TaskType, user: User) -> bool:
        return user.is_member_of(task_type.team_id)

    # ------------------------------------------------------------------ task status

    def task_status(self, task: Task) -> tuple[int, int, int]:
        """(pending, active, finished): pending are the open instances."""
        active = sum(
            1 for a in self.annotations.values() if a.task_id == task.id and a.state == "Active"
        )
        finished = sum(
            1 for a in self.annotations.values() if a.task_id == task.id and a.state == "Finished"
        )
        return task.pending, active, finished

    def task_annotations(self, task_id: str) -> list[Annotation]:
        return [a for a in self.annotations.values() if a.task_id == task_id]
