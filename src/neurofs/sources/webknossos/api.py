"""The WEBKNOSSOS API as neurofs uses it: version negotiation, datasets, teams, folders,
and the datastores' zarr streaming.

The token goes in ``X-Auth-Token`` to the main server and to every datastore (each gets an
HTTP client of its own, so the token only ever travels to those two kinds of origin).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from pydantic import BaseModel, TypeAdapter, ValidationError

from neurofs import secrets
from neurofs.config import SourceConfig
from neurofs.errors import ConfigError, NotFound, RemoteError
from neurofs.io.http import Form, HttpClient
from neurofs.io.memo import as_fetched
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.io.tier import Tier
from neurofs.sources.clients import ApiClient, ClientMaker
from neurofs.sources.payloads import adapted, validated
from neurofs.sources.webknossos.models import (
    BuildInfo,
    Dataset,
    ExploreAndAddRemote,
    Folder,
    FullMeshRequest,
    Task,
    Team,
    User,
)

M = TypeVar("M", bound=BaseModel)
# What a listing's ``index`` function makes of it (see ``Memo.view``).
D = TypeVar("D")

# The HTTP API versions neurofs speaks: those of the official client, and v12.
OLDEST_SUPPORTED = 12
NEWEST_SUPPORTED = 14
# A cheap route that answers when the server is up (and says which API versions it speaks).
PROBE_PATH = "api/buildinfo"


def choose_version(info: BuildInfo) -> int:
    """The newest version both sides speak, or ConfigError saying why there is none."""
    server = info.http_api_versioning
    version = min(server.current, NEWEST_SUPPORTED)
    if version < max(OLDEST_SUPPORTED, server.oldest):
        raise ConfigError(
            f"the server speaks WEBKNOSSOS API v{server.oldest}–v{server.current}; "
            f"neurofs speaks v{OLDEST_SUPPORTED}–v{NEWEST_SUPPORTED}"
        )
    return version


def stl_triangles(data: bytes) -> int | None:
    """The triangle count of binary STL bytes (80-byte header, uint32 count, 50 bytes per
    triangle), or None when the length does not match the count."""
    if len(data) < 84:
        return None
    count = int.from_bytes(data[80:84], "little")
    return count if len(data) == 84 + 50 * count else None


def folder_paths(folders: list[Folder]) -> dict[str, str]:
    """folder id → path below the (single) root, '' for the root itself."""
    by_id = {f.id: f for f in folders}
    roots = [f for f in folders if f.parent is None]
    single_root = roots[0].id if len(roots) == 1 else None
    paths: dict[str, str] = {}
    for f in folders:
        parts: list[str] = []
        seen: set[str] = set()
        node: Folder | None = f
        while node is not None and node.id not in seen and node.id != single_root:
            seen.add(node.id)
            parts.append(node.name)
            node = by_id.get(node.parent) if node.parent else None
        paths[f.id] = "/".join(reversed(parts))
    return paths


# Tasks, task types and projects are shown as the server wrote them (``Record``).
Record = dict[str, Any]


def _records(data: Any, what: str, name: str) -> list[Record]:
    """The objects of a listing that have a text ``name`` field (the others cannot be shown)."""
    if not isinstance(data, list):
        raise RemoteError(f"{what}: unexpected answer")
    return [r for r in data if isinstance(r, dict) and isinstance(r.get(name), str)]


_DATASETS = TypeAdapter(list[Dataset])
_DATASET_ID = TypeAdapter(str)
_TEAMS = TypeAdapter(list[Team])
_FOLDERS = TypeAdapter(list[Folder])


class WebknossosApi(ApiClient):
    def __init__(
        self,
        config: SourceConfig,
        stats: Stats,
        responses: ResponseStore | None,
        *,
        ttl: float = 30.0,
        tier: Tier | None = None,
    ) -> None:
        self._config = config
        self._token = config.resolved_token()
        # A sharing token opens one dataset without an account: it goes as ?sharingToken= to
        # the main server and, when there is no user token, as X-Auth-Token to datastores.
        self._sharing = config.resolved_sharing_token()
        self._make = ClientMaker(config, stats, responses, "X-Auth-Token", tier=tier)
        super().__init__(self._make(config.url, self._token), ttl=ttl)
        self._version: int | None = None

    @property
    def authenticated(self) -> bool:
        return self._token is not None

    def datastore(self, url: str) -> HttpClient:
        return self.client_at(url, lambda url: self._make(url, self._token or self._sharing))

    # ------------------------------------------------------------------ version

    async def version(self) -> int:
        if self._version is None:
            info = await self.http.get_json(PROBE_PATH)
            try:
                self._version = choose_version(BuildInfo.model_validate(info))
            except ValidationError:
                raise RemoteError("api/buildinfo: not a WEBKNOSSOS server answer") from None
        return self._version

    async def api(self, path: str) -> str:
        return f"api/v{await self.version()}/{path}"

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.http.get_json(await self.api(path), params)

    async def send(self, method: str, path: str, body: Any) -> Any:
        return await self.http.send_json(method, await self.api(path), body)

    async def me(self) -> User:
        """``api/v<N>/user``: who the token belongs to (AccessDenied when it is refused).
        Always asked of the server, never answered from the answers kept on disk."""
        data = await self.http.get_json(await self.api("user"), keep=False, offline=False)
        return validated(User, data, "user")

    # ------------------------------------------------------------------ datasets

    async def datasets(self) -> list[Dataset]:
        """The datasets the mount shows."""
        return await self.datasets_indexed(as_fetched)

    async def datasets_indexed(self, index: Callable[[list[Dataset]], D]) -> D:
        """The datasets the mount shows, as ``index`` arranges them (once per fetch)."""
        config = self._config

        async def fetch() -> list[Dataset]:
            if config.datasets:  # exactly these (a sharing token may open only them)
                return [await self.dataset(i) for i in config.datasets]
            params: dict[str, Any] = {"isActive": "true"}
            if config.organization:
                params["organizationId"] = config.organization
            if config.search:
                params["searchQuery"] = config.search
            if config.folder is not None:
                params["folderId"] = await self.folder_id(config.folder)
            data = await self.get("datasets", params)
            result: list[Dataset] = adapted(_DATASETS, data, "datasets")
            wanted = set(config.tags)
            return [d for d in result if wanted <= set(d.tags)]

        return await self.memo.view(("datasets",), fetch, index)

    async def dataset(self, dataset_id: str, *, fresh: bool = False) -> Dataset:
        params = {"sharingToken": self._sharing} if self._sharing else None

        async def fetch() -> Dataset:
            try:
                return Dataset.model_validate(await self.get(f"datasets/{dataset_id}", params))
            except ValidationError:
                raise RemoteError(f"dataset {dataset_id}: unexpected answer") from None

        return await self.memo.get(("dataset", dataset_id), fetch, fresh=fresh)

    async def data_source_json(self, dataset_id: str) -> dict[str, Any]:
        """The dataset's ``dataSource`` exactly as the server sends it now (never a held
        answer): what a change of its properties sends back, changed, as the official client
        does. Checked against ``Dataset`` first."""
        params = {"sharingToken": self._sharing} if self._sharing else None
        data = await self.http.get_json(
            await self.api(f"datasets/{dataset_id}"), params, keep=False, offline=False
        )
        validated(Dataset, data, f"dataset {dataset_id}")
        source = data.get("dataSource")
        if not isinstance(source, dict):
            raise RemoteError(f"dataset {dataset_id}: no data source in the answer")
        return source

    async def explore_and_add_remote(self, body: ExploreAndAddRemote) -> str:
        """``POST /datasets/exploreAndAddRemote`` (scalableminds/webknossos,
        ``DatasetController.exploreAndAddRemoteDataset``; the official client's
        ``Dataset.explore_and_add_remote``): the server explores the URI and adds what it found
        as a dataset of the caller's organization; its answer is the new dataset's id. An
        exploration that found nothing is a 400 "Could not explore remote dataset." (the
        report stays on the server). The listing is forgotten either way: a lost answer may
        still have added it."""
        try:
            sent = body.model_dump(by_alias=True)
            answer = await self.send("POST", "datasets/exploreAndAddRemote", sent)
        finally:
            self.memo.forget(("datasets",))
        new_id: str = adapted(_DATASET_ID, answer, "datasets/exploreAndAddRemote")
        return new_id

    def forget_dataset(self, dataset_id: str) -> None:
        """Drop what was held of a dataset after it changed (and the listing showing it)."""
        self.memo.forget(("datasets",), ("dataset", dataset_id))

    async def reload_in_datastore(self, dataset: Dataset) -> None:
        """Have the dataset's datastore drop its caches of the dataset and read it again from
        its storage: ``POST /data/v<N>/triggers/reload/<organization>/<dataset id>`` (the
        official client's ``trigger_reload_in_datastore``; scalableminds/webknossos,
        webknossos-datastore/conf/datastore.latest.routes, ``DataSourceController.reload``).
        The datastore lets an admin or team manager of the organization, or a dataset manager,
        do it (AccessDenied otherwise). Then what is held of the dataset is forgotten."""
        store = self.datastore(dataset.data_store.url)
        organization = quote(dataset.owning_organization, safe="")
        path = f"data/v{await self.version()}/triggers/reload/{organization}/{dataset.id}"
        try:
            # Its answer is the data source the datastore read; the mount reads the dataset
            # from the main server, as everywhere else, so the answer is not kept. A second
            # reload does no harm: retried like an idempotent write.
            await store.send_json("POST", store.url(path), idempotent=True)
        finally:
            self.forget_dataset(dataset.id)

    async def teams(self) -> list[Team]:
        async def fetch() -> list[Team]:
            result: list[Team] = adapted(_TEAMS, await self.get("teams"), "teams")
            return result

        return await self.memo.get(("teams",), fetch)

    async def folders(self) -> list[Folder]:
        """Every folder the user may see, flat, with parent ids."""
        return await self.folders_indexed(as_fetched)

    async def folders_indexed(self, index: Callable[[list[Folder]], D]) -> D:
        """Every folder the user may see, flat, with parent ids, as ``index`` arranges them
        (once per fetch)."""

        async def fetch() -> list[Folder]:
            result: list[Folder] = adapted(_FOLDERS, await self.get("folders/tree"), "folders")
            return result

        return await self.memo.view(("folders",), fetch, index)

    async def folder_id(self, path: str) -> str:
        by_path = {p: i for i, p in (await self.folders_indexed(folder_paths)).items()}
        wanted = path.strip("/")
        if wanted not in by_path:
            raise ConfigError(f"{self._config.name}: no folder '{wanted}'")
        return by_path[wanted]

    async def sharing_token(self, dataset_id: str) -> str:
        # A credential: never kept on disk with the other answers, and masked in every log.
        data = await self.http.get_json(
            await self.api(f"datasets/{dataset_id}/sharingToken"), keep=False
        )
        if not isinstance(data, dict) or not isinstance(data.get("sharingToken"), str):
            raise RemoteError("sharingToken: unexpected answer")
        token = str(data["sharingToken"])
        secrets.register(token)
        return token

    # ------------------------------------------------------------------ tasks, projects

    async def tasks_indexed(self, index: Callable[[list[Record]], D]) -> D:
        """The tasks the user may administer (as records with an id), as ``index`` arranges
        them (once per fetch)."""

        async def fetch() -> list[Record]:
            return _records(await self.send("POST", "tasks/list", {}), "tasks/list", "id")

        return await self.memo.view(("tasks",), fetch, index)

    async def task(self, task_id: str, *, fresh: bool = False) -> Record:
        """A task as the server wrote it (checked against ``Task``)."""

        async def fetch() -> Record:
            data = await self.get(f"tasks/{task_id}")
            validated(Task, data, f"task {task_id}")
            result: Record = data
            return result

        return await self.memo.get(("task", task_id), fetch, fresh=fresh)

    async def send_form(self, path: str, form: Form) -> Any:
        """A multipart POST to the API (``tasks/createFromFiles``)."""
        return await self.http.send_form(await self.api(path), form)

    def forget_tasks(self, *task_ids: str) -> None:
        """Drop the task listing, and the tasks named, after they changed."""
        self.memo.forget(("tasks",), *(("task", i) for i in task_ids))

    async def task_types_indexed(self, index: Callable[[list[Record]], D]) -> D:
        """The task types (as records with an id), as ``index`` arranges them (once)."""

        async def fetch() -> list[Record]:
            return _records(await self.get("taskTypes"), "taskTypes", "id")

        return await self.memo.view(("taskTypes",), fetch, index)

    def forget_task_types(self) -> None:
        self.memo.forget(("taskTypes",))

    async def projects(self, *, fresh: bool = False) -> list[Record]:
        """The projects (as records with a name)."""
        return await self.projects_indexed(as_fetched, fresh=fresh)

    async def projects_indexed(
        self, index: Callable[[list[Record]], D], *, fresh: bool = False
    ) -> D:
        """The projects (as records with a name), as ``index`` arranges them (once)."""

        async def fetch() -> list[Record]:
            return _records(await self.get("projects"), "projects", "name")

        return await self.memo.view(("projects",), fetch, index, fresh=fresh)

    def forget_projects(self) -> None:
        self.memo.forget(("projects",))

    # ------------------------------------------------------------------ voxels

    async def chunk(
        self, dataset: Dataset, layer: str, mag: str, key: str, size: int, *, identity: str
    ) -> bytes | None:
        """One served chunk (``c.x.y.z``) of exactly ``size`` bytes; None when the datastore
        has no such chunk in a mag it serves (readers see the fill value). ``identity`` is the
        chunk's content identity (the block cache's): its name in the shared tier when the
        dataset is public."""
        store = self.datastore(dataset.data_store.url)
        mag_path = f"data/v{await self.version()}/zarr/{dataset.id}/{layer}/{mag}"
        shared = store.shareable(identity, private=not dataset.is_public)
        try:
            return await store.get_bytes(store.url(f"{mag_path}/{key}"), size, shared=shared)
        except NotFound as missing:
            await self._check_mag_served(store, mag_path, missing)
            return None

    async def cuboid(
        self,
        dataset: Dataset,
        layer: str,
        mag: tuple[int, int, int],
        start: tuple[int, int, int],
        size: tuple[int, int, int],
        nbytes: int,
        *,
        identity: str,
    ) -> bytes:
        """The voxels of one box as the datastore's raw route sends them (F order over c, x,
        y, z; zeros where it has no data): ``start`` in voxels of ``mag``, ``size`` voxels
        of ``mag`` per axis, exactly ``nbytes`` long. The route takes the corner in mag-1
        voxels (scalableminds/webknossos, webknossos-datastore/app/com/scalableminds/
        webknossos/datastore/controllers/BinaryDataController.scala, ``requestRawCuboid``)
        and at most 512 voxels a side (``volume.BOX_MAX_SIDE``, planned by
        ``volume.raw_plan``): it answers a larger box with no bytes, a short body here.
        ``identity``: the box's content identity, as for ``chunk``."""
        store = self.datastore(dataset.data_store.url)
        query = urlencode(
            {
                "mag": "-".join(map(str, mag)) if len(set(mag)) > 1 else str(mag[0]),
                "x": start[0] * mag[0],
                "y": start[1] * mag[1],
                "z": start[2] * mag[2],
                "width": size[0],
                "height": size[1],
                "depth": size[2],
            }
        )
        path = f"data/v{await self.version()}/datasets/{dataset.id}/layers/{layer}/data?{query}"
        shared = store.shareable(identity, private=not dataset.is_public)
        try:
            return await store.get_bytes(store.url(path), nbytes, shared=shared)
        except NotFound as missing:
            # The file exists in the mount: a 404 here means the datastore lost the layer.
            raise RemoteError(f"the datastore does not serve this box: {missing}") from None

    async def full_mesh(
        self,
        dataset: Dataset,
        layer: str,
        segment_id: int,
        mag: tuple[int, int, int],
        *,
        revision: str,
    ) -> bytes:
        """A segment's whole mesh as the datastore makes it, binary STL: ``POST
        /data/v<N>/datasets/<id>/layers/<layer>/meshes/fullMesh.stl`` with an ad-hoc request
        at ``mag`` (the official client's ``download_mesh``; scalableminds/webknossos,
        DSMeshController.loadFullMeshStl). The datastore answers a segment its layer does not
        have with a mesh of no triangles: NotFound. Held in the memo under the layer's
        ``revision`` (a stat and the open that follows make one request)."""
        store = self.datastore(dataset.data_store.url)
        path = (
            f"data/v{await self.version()}/datasets/{dataset.id}/layers/"
            f"{quote(layer, safe='')}/meshes/fullMesh.stl"
        )
        body = FullMeshRequest(segmentId=segment_id, mag=mag).model_dump(by_alias=True)

        async def fetch() -> bytes:
            return await store.query_content(store.url(path), body)

        data = await self.memo.get(("mesh", dataset.id, revision, layer, segment_id), fetch)
        triangles = stl_triangles(data)
        if triangles is None:
            raise RemoteError(f"{layer} segment {segment_id}: the mesh is not binary STL")
        if triangles == 0:
            raise NotFound(f"{layer}: no segment {segment_id}")
        return data

    async def _check_mag_served(self, store: HttpClient, mag_path: str, missing: NotFound) -> None:
        """The datastore answers 404 alike for a chunk it has no data for and for a dataset,
        layer or mag it does not know: every failure of its zarr streaming is NOT_FOUND
        (scalableminds/webknossos, webknossos-datastore/app/com/scalableminds/webknossos/
        datastore/controllers/ZarrStreamingController.scala). The mag's ``.zarray`` tells
        them apart, asked once per mag while remembered: a wrong route must not read as
        zeros. RemoteError (EIO, logged) when the mag is not served."""

        async def served() -> str | None:
            try:
                await store.get_json(f"{mag_path}/.zarray", keep=False)
            except NotFound as exc:
                return str(exc)
            return None

        refused = await self.memo.get(("mag served", store.url(mag_path)), served)
        if refused is not None:
            raise RemoteError(
                f"{missing}; the datastore does not serve this dataset, layer or mag: {refused}"
            )
