"""The emulated WEBKNOSSOS main server: ``/api/v{N}/...``.

Behaviour follows the real controllers (``app/controllers/DatasetController.scala``,
``FolderController``, ``TaskController``, ``TaskTypeController``, ``ProjectController``) and the
traffic recorded in webknossos-libs' test cassettes:

- Authentication: ``X-Auth-Token`` header (or ``?token=``). Routes that need a user
  ("secured" in Play) answer 401 without a valid token; "user-aware" routes (dataset list and
  read, build info, datastores) also work anonymously and then see public datasets only.
- A dataset the caller may not read is a 404 ("does not exist or could not be accessed",
  plus "You may need to log in." for anonymous callers), never a 403; a readable dataset the
  caller may not edit is a 403 on writes.
- ``PATCH /datasets/{id}/updatePartial`` changes only the keys present; ``description: null``
  clears the description. It answers with the updated dataset.
- ``PATCH /datasets/{id}/teams`` takes a list of team ids; ids of teams the caller cannot
  assign are ignored (as in the real server); it answers with the new list of team ids.
- ``POST /datasets/exploreAndAddRemote`` (``DatasetController.exploreAndAddRemoteDataset``)
  explores ``remoteUri`` and adds what it finds as a new dataset of the caller's organization,
  answering its id as a JSON string. The emulator can reach only its own datastore's zarr
  streaming routes (``<datastore>/data[/v{N}]/zarr/{id}`` for every layer of a dataset, or
  ``…/{id}/{layer}`` for one), read as an anonymous reader would (a public dataset, or a
  ``?token=`` in the URI); the new dataset serves the same voxels. Anything else is the real
  server's 400 "Could not explore remote dataset." (its exploration report stays on the
  server). ``folderId`` wins over ``folderPath`` (``/<root>/<sub>/…``, missing folders are
  created, as ``FolderService.getOrCreateFromPathLiteral`` does); without either the dataset
  goes to the organization's root folder. Then the name is checked
  (``DatasetService.assertValidDatasetName``), then the caller's write access on the folder.
  The refusals' texts are the server's ``Msg`` entries (util/.../Msg.scala), chained like
  its ``?~>`` (see ``http.WkError``).
- ``POST /projects`` and ``PUT /projects/{id}`` take ``ProjectParameters`` (``owner`` and
  ``isBlacklistedFromReport`` required; a refused body is Play's 400 with per-field errors);
  the update keeps the name and paused state, which ``PATCH /projects/{id}/pause`` and
  ``/resume`` set.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.multipart import parse_multipart
from neurofs_emulators.routing import Router
from neurofs_emulators.webknossos import models, nml, render
from neurofs_emulators.webknossos.http import (
    WkError,
    invalid_json,
    json_body,
    json_response,
    require_object_id,
    success_message,
    validation_message,
)
from neurofs_emulators.webknossos.sample import (
    OLDEST_SUPPORTED_API_VERSION,
    SCHEMA_VERSION,
    TASK_TYPE_SETTING_KEYS,
)
from neurofs_emulators.webknossos.state import (
    BoundingBox,
    Dataset,
    Folder,
    Project,
    Task,
    TaskType,
    User,
    World,
    now_ms,
)

NOT_AUTHORIZED = "You are not authorized to view this resource. Please log in."
NOT_ALLOWED = "You are not authorized to view or edit this resource"
PROJECT_NOT_FOUND = "Project could not be found"
TASK_NOT_FOUND = "Task could not be found"
TASK_TYPE_NOT_FOUND = "Task type could not be found"
FOLDER_NOT_FOUND = "Folder could not be found"
TEAM_NOT_FOUND = "Team could not be found."
# TaskCreationService.assertBatchLimit: at most 1000 tasks in one request, 100 when the task
# type has a volume (Msg.Task.Create.batchLimitExceeded).
MAX_TASKS = 1000
MAX_VOLUME_TASKS = 100
# The refusals of TaskController.createFromFiles: Msg.Task.Create.multipartPayloadInvalid,
# Msg.Nml.fileNotFound, Msg.Task.Create.formJsonMissing and Msg.Task.Create.failed
# (util/.../Msg.scala), the entries that replaced the conf/messages keys the last readable
# TaskController used ("binary.payload.invalid", "nml.file.notFound", "format.json.missing",
# "task.create.failed"); its Msg version itself was not readable.
TASKS_MULTIPART_INVALID = "Could not parse task creation multipart request."
TASKS_NML_NOT_FOUND = "Could not extract NML file."
TASKS_FORM_JSON_MISSING = "Could not parse task creation multipart request: no form data."
TASKS_CREATE_FAILED = "Could not create task."
# The refusals of DatasetController.exploreAndAddRemoteDataset: the Msg entries it and the
# services it calls put on their steps (scalableminds/webknossos,
# util/src/main/scala/com/scalableminds/util/Msg.scala).
# Msg.Dataset.Explore.failed: the exploration found no data source.
EXPLORE_FAILED = "Could not explore remote dataset."
# Msg.Dataset.Explore.autoAddGetFolderFailed: folderPath could not be resolved.
EXPLORE_FOLDER_FAILED = "Could not get or create folder during dataset exploration."
# Msg.Dataset.Explore.autoAddFailed: DatasetService.createAndSetUpDataset failed.
EXPLORE_ADD_FAILED = "Could not automatically import the explored dataset."
# Msg.Folder.pathMustStartWithSlash and .pathMustStartAtOrganizationRootFolder
# (FolderService.getOrCreateFromPathLiteral).
FOLDER_PATH_NO_SLASH = "Folder path must start with a slash."
FOLDER_PATH_NOT_AT_ROOT = "Folder path must start at the organization’s root folder."
# Msg.Folder.noWriteAccess, on SQLDAO.assertUpdateAccess's own "No update access."
# (createAndSetUpDataset, and FolderDAO.insertAsChild for a new folder's parent).
FOLDER_NO_WRITE_ACCESS = "No write access in this folder."
NO_UPDATE_ACCESS = "No update access."
# DatasetService.assertValidDatasetName, in its order: Msg.Dataset.Name.invalidCharacters,
# .invalidStartsWithDot, .invalidLessThanThreeCharacters.
DATASET_NAME_CHARACTERS = re.compile(r"[A-Za-z0-9_\-.]*")
DATASET_NAME_INVALID_CHARACTERS = (
    "Dataset name is invalid. Please use only letters, digits, dots, underscores, hyphens."
)
DATASET_NAME_STARTS_WITH_DOT = (
    "Dataset name is invalid. Please use a name that does not start with a dot."
)
DATASET_NAME_TOO_SHORT = "Dataset name is invalid. Please use at least three characters."
# The emulator's own datastore's zarr streaming routes: a dataset, or one layer of it.
ZARR_URI = re.compile(r"^/data(?:/v\d+)?/zarr/(?P<id>[0-9a-f]{24})(?:/(?P<layer>[^/]+))?/?$")
# The texts of ProjectParameters' name checks (scalableminds/webknossos, conf/messages, and
# Play's "error.minLength").
PROJECT_FIELD_MESSAGES = {
    "string_too_short": "Minimum length is {min_length}",
    "string_pattern_mismatch": "Name contains invalid characters",
}


def batch_limit_exceeded(limit: int) -> WkError:
    """Msg.Task.Create.batchLimitExceeded (TaskCreationService.assertBatchLimit)."""
    return WkError(400, f"Cannot create more than {limit} tasks in one request.")


def check_dataset_name(name: str) -> None:
    """``DatasetService.assertValidDatasetName``: a 400 for the first rule ``name`` breaks."""
    if not DATASET_NAME_CHARACTERS.fullmatch(name):
        raise WkError(400, DATASET_NAME_INVALID_CHARACTERS)
    if name.startswith("."):
        raise WkError(400, DATASET_NAME_STARTS_WITH_DOT)
    if len(name) < 3:
        raise WkError(400, DATASET_NAME_TOO_SHORT)


def _java_split(text: str, separator: str) -> list[str]:
    """Java's ``String.split``: trailing empty parts dropped, ``""`` is ``[""]``."""
    if not text:
        return [""]
    parts = text.split(separator)
    while parts and not parts[-1]:
        parts.pop()
    return parts


def dataset_not_found(key: str, user: User | None) -> WkError:
    message = f"Dataset {key} does not exist or could not be accessed"
    if user is None:
        message += ". You may need to log in."
    return WkError(404, message)


def _bool_param(request: Request, name: str) -> bool | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise WkError(400, f"Cannot parse parameter {name} as Boolean: {value}")


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise WkError(400, f"Cannot parse parameter {name} as Int: {value}") from None


class MainApi:
    """Handlers of the main server; all state lives in the :class:`World`."""

    def __init__(self, world: World, datastore_url: Any, api_version: int) -> None:
        self.world = world
        # Callable[[Request], str]: the datastore's public URL as seen by this request.
        self.datastore_url = datastore_url
        # The current API version /buildinfo announces.
        self.api_version = api_version

    # ------------------------------------------------------------------ auth helpers

    def current_user(self, request: Request) -> User | None:
        token = request.headers.get("x-auth-token") or request.query_params.get("token")
        return self.world.user_for_token(token)

    def require_user(self, request: Request) -> User:
        user = self.current_user(request)
        if user is None:
            raise WkError(401, NOT_AUTHORIZED)
        return user

    def readable_dataset(
        self, request: Request, dataset_id: str, user: User | None, sharing_token: str | None = None
    ) -> Dataset:
        require_object_id(dataset_id)
        dataset = self.world.datasets.get(dataset_id)
        if dataset is None or not self.world.can_read_dataset(dataset, user, sharing_token):
            raise dataset_not_found(dataset_id, user)
        return dataset

    def editable_dataset(self, request: Request, dataset_id: str, user: User) -> Dataset:
        dataset = self.readable_dataset(request, dataset_id, user)
        if not self.world.can_edit_dataset(dataset, user):
            raise WkError(403, NOT_ALLOWED)
        return dataset

    def render_dataset(
        self, request: Request, dataset: Dataset, user: User | None
    ) -> dict[str, Any]:
        return render.dataset(self.world, dataset, user, self.datastore_url(request))

    # ------------------------------------------------------------------ misc

    async def buildinfo(self, request: Request) -> Response:
        info = models.BuildInfo(
            webknossos=models.BuildInfoWebknossos(),
            schema_version=SCHEMA_VERSION,
            http_api_versioning=models.HttpApiVersioning(
                current_api_version=self.api_version,
                oldest_supported_api_version=OLDEST_SUPPORTED_API_VERSION,
            ),
        )
        return json_response(info.dump())

    async def health(self, request: Request) -> Response:
        return Response("Ok", media_type="text/plain; charset=UTF-8")

    async def user(self, request: Request) -> Response:
        return json_response(render.user(self.world, self.require_user(request)).dump())

    async def users(self, request: Request) -> Response:
        me = self.require_user(request)
        visible = [
            u
            for u in self.world.users.values()
            if me.is_admin or u.id == me.id or any(t in me.teams for t in u.teams)
        ]
        return json_response([render.user(self.world, u).dump() for u in visible])

    async def user_by_id(self, request: Request) -> Response:
        me = self.require_user(request)
        uid = require_object_id(request.path_params["id"])
        target = self.world.users.get(uid)
        if target is None or not (
            me.is_admin or target.id == me.id or any(t in me.teams for t in target.teams)
        ):
            raise WkError(404, "User not found")
        return json_response(render.user(self.world, target).dump())

    async def teams(self, request: Request) -> Response:
        me = self.require_user(request)
        return json_response(
            [render.team(self.world, t).dump() for t in self.world.visible_teams(me)]
        )

    async def datastores(self, request: Request) -> Response:
        return json_response([render.datastore(self.datastore_url(request)).dump()])

    # ------------------------------------------------------------------ datasets

    async def dataset_list(self, request: Request) -> Response:
        user = self.current_user(request)
        is_active = _bool_param(request, "isActive")
        is_unreported = _bool_param(request, "isUnreported")
        compact = _bool_param(request, "compact") or False
        only_mine = _bool_param(request, "onlyMyOrganization") or False
        recursive = bool(
            _bool_param(request, "recursive") or _bool_param(request, "includeSubfolders")
        )
        limit = _int_param(request, "limit")
        organization = request.query_params.get("organizationId")
        if only_mine and user is not None:
            organization = self.world.organization
        folder_id = request.query_params.get("folderId")
        search = request.query_params.get("searchQuery")

        datasets = [
            d for d in self.world.datasets.values() if self.world.can_read_dataset(d, user, None)
        ]
        if is_active is False or is_unreported is True:
            datasets = []  # every sample dataset is active and reported
        if organization is not None and organization != self.world.organization:
            datasets = []
        if folder_id is not None:
            require_object_id(folder_id)
            folders = self.world.folder_descendants(folder_id) if recursive else {folder_id}
            datasets = [d for d in datasets if d.folder_id in folders]
        if search:
            needle = search.casefold()
            datasets = [d for d in datasets if needle in d.name.casefold()]
        # The real server lists newest first.
        datasets.sort(key=lambda d: (-d.created, d.id))
        if limit is not None:
            datasets = datasets[: max(0, limit)]
        if compact:
            return json_response([render.dataset_compact(self.world, d, user) for d in datasets])
        return json_response([self.render_dataset(request, d, user) for d in datasets])

    async def dataset_read(self, request: Request) -> Response:
        user = self.current_user(request)
        token = request.query_params.get("sharingToken")
        dataset = self.readable_dataset(request, request.path_params["id"], user, token)
        return json_response(self.render_dataset(request, dataset, user))

    async def dataset_disambiguate(self, request: Request) -> Response:
        user = self.current_user(request)
        org = request.path_params["org"]
        name = request.path_params["name"]
        token = request.query_params.get("sharingToken")
        for dataset in self.world.datasets.values():
            if (
                org == self.world.organization
                and dataset.directory_name == name
                and self.world.can_read_dataset(dataset, user, token)
            ):
                return json_response(
                    models.DatasetIdOut(
                        id=dataset.id,
                        name=dataset.name,
                        organization=self.world.organization,
                        directory_name=dataset.directory_name,
                    ).dump()
                )
        raise dataset_not_found(name, user)

    async def dataset_update_partial(self, request: Request) -> Response:
        user = self.require_user(request)
        raw = await json_body(request)
        if not isinstance(raw, dict):
            raise WkError(400, "Invalid Json format: expected a JSON object")
        try:
            body = models.UpdatePartialBody.model_validate(raw)
        except ValidationError as exc:
            raise WkError(400, validation_message(exc)) from None
        dataset = self.editable_dataset(request, request.path_params["id"], user)
        given = body.model_fields_set
        if "name" in given and body.name is None:
            raise WkError(400, "Invalid Json format: name must not be null")
        if body.metadata is not None:
            keys = [entry.key for entry in body.metadata]
            if len(keys) != len(set(keys)):
                raise WkError(400, "Metadata keys must be unique")
            for entry in body.metadata:
                _check_metadata_value(entry)
        if "folder_id" in given:
            if body.folder_id is None or body.folder_id not in self.world.folders:
                raise WkError(400, FOLDER_NOT_FOUND)
            if not self.world.can_edit_folder(self.world.folders[body.folder_id], user):
                raise WkError(403, NOT_ALLOWED)
        # Only the keys present in the body change.
        if "name" in given and body.name is not None:
            dataset.name = body.name
        if "description" in given:
            dataset.description = body.description
        if "tags" in given and body.tags is not None:
            dataset.tags = list(body.tags)
        if "is_public" in given and body.is_public is not None:
            dataset.is_public = body.is_public
        if "folder_id" in given and body.folder_id is not None:
            dataset.folder_id = body.folder_id
        if "metadata" in given and body.metadata is not None:
            dataset.metadata = [e.model_dump(mode="json") for e in body.metadata]
        if body.data_source is not None:
            _apply_data_source(dataset, body)
        return json_response(self.render_dataset(request, dataset, user))

    async def dataset_explore_and_add_remote(self, request: Request) -> Response:
        user = self.require_user(request)
        raw = await json_body(request)
        if not isinstance(raw, dict):
            raise WkError(400, "Invalid Json format: expected a JSON object")
        try:
            body = models.ExploreAndAddRemoteBody.model_validate(raw)
        except ValidationError as exc:
            raise invalid_json(exc) from None
        source, layer_name = self._explore(request, body.remote_uri)
        layers = [
            layer for layer in source.layers if layer_name is None or layer.name == layer_name
        ]
        # The server's order: the folder path is resolved (and created) before the name is
        # checked; write access on the folder is checked last, while the dataset is made.
        folder_id = body.folder_id
        if folder_id is None and body.folder_path is not None:
            folder_id = self._folder_by_path(body.folder_path, user)
        check_dataset_name(body.dataset_name)
        folder = self.world.folders.get(folder_id or self.world.root_folder_id)
        if folder is None or not self.world.can_edit_folder(folder, user):
            raise WkError(
                400, EXPLORE_ADD_FAILED, causes=[FOLDER_NO_WRITE_ACCESS, NO_UPDATE_ACCESS]
            )
        dataset_id = self.world.new_id()
        self.world.datasets[dataset_id] = Dataset(
            id=dataset_id,
            name=body.dataset_name,
            directory_name=f"{body.dataset_name}-{dataset_id}",
            layers=layers,
            voxel_size=source.voxel_size,
            unit=source.unit,
            is_public=False,
            allowed_team_ids=[],
            folder_id=folder.id,
            description=None,
            tags=[],
            metadata=[],
            created=now_ms(),
            sharing_token=f"{dataset_id}{dataset_id[-8:]}",
        )
        return json_response(dataset_id)

    def _folder_by_path(self, path: str, user: User) -> str:
        """``FolderService.getOrCreateFromPathLiteral``: ``/<root>/<sub>/…`` from the
        organization's root folder, down the folders the caller may read; the names below the
        deepest existing folder are created there. A refusal is the explore route's 400 with
        the cause chained."""

        def refused(*causes: str) -> WkError:
            return WkError(400, EXPLORE_FOLDER_FAILED, causes=list(causes))

        root = self.world.folders[self.world.root_folder_id]
        if not path.startswith("/"):
            raise refused(FOLDER_PATH_NO_SLASH)
        names = _java_split(path[1:], "/")
        if not names:
            # No root name at all ("//"): an empty result, which starts no chain.
            raise refused()
        if names[0] != root.name:
            raise refused(FOLDER_PATH_NOT_AT_ROOT)
        current = root
        remaining = names[1:]
        while remaining:
            child = next(
                (
                    f
                    for f in self.world.folders.values()
                    if f.parent_id == current.id
                    and f.name == remaining[0]
                    and self.world.can_read_folder(f, user)
                ),
                None,
            )
            if child is None:
                break
            current, remaining = child, remaining[1:]
        for name in remaining:
            # FolderDAO.insertAsChild checks write access on the parent first.
            if not self.world.can_edit_folder(current, user):
                raise refused(NO_UPDATE_ACCESS)
            current = Folder(self.world.new_id(), name, current.id)
            self.world.folders[current.id] = current
        return current.id

    def _explore(self, request: Request, uri: str) -> tuple[Dataset, str | None]:
        """What the datastore finds at ``uri``: the dataset whose zarr it is and the one layer
        the URI names (None: all). A URI without a scheme is refused before exploring
        (``WKExploreRemoteLayerService.storeCredentials``); anything the emulator cannot read
        is an exploration that found no data source: the real server answers only
        "Could not explore remote dataset." (``exploreResponse.dataSource.toFox ?~>``, an
        empty result, so no chain) and keeps the datastore's report to itself."""
        parts = urlsplit(uri)
        if not parts.scheme:
            raise WkError(400, f"Received invalid URI: {uri}")
        own = {urlsplit(str(self.datastore_url(request))).netloc, request.url.netloc}
        found = ZARR_URI.match(parts.path)
        if parts.scheme not in ("http", "https") or parts.netloc not in own or found is None:
            raise WkError(400, EXPLORE_FAILED)
        dataset = self.world.datasets.get(found["id"])
        tokens = parse_qs(parts.query).get("token")
        token = tokens[0] if tokens else None
        reader = self.world.user_for_token(token)
        if dataset is None or not self.world.can_read_dataset(dataset, reader, token):
            raise WkError(400, EXPLORE_FAILED)
        layer = found["layer"]
        if layer is not None and dataset.layer(layer) is None:
            raise WkError(400, EXPLORE_FAILED)
        return dataset, layer

    async def dataset_update_teams(self, request: Request) -> Response:
        user = self.require_user(request)
        raw = await json_body(request)
        if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
            raise WkError(400, "Invalid Json format: expected a JSON array of team ids")
        for team_id in raw:
            require_object_id(team_id)
        dataset = self.editable_dataset(request, request.path_params["id"], user)
        # Dataset managers may assign every team, others only the teams they manage; teams
        # outside that set keep their current state (the real server's updateTeams).
        assignable = {
            t.id
            for t in self.world.teams.values()
            if user.is_dataset_manager or user.is_manager_of(t.id)
        }
        kept = [t for t in dataset.allowed_team_ids if t not in assignable]
        updated = [t for t in raw if t in assignable]
        new_teams: list[str] = []
        for team_id in updated + kept:
            if team_id not in new_teams:
                new_teams.append(team_id)
        dataset.allowed_team_ids = new_teams
        return json_response(new_teams)

    async def dataset_sharing_token(self, request: Request) -> Response:
        user = self.require_user(request)
        dataset = self.readable_dataset(request, request.path_params["id"], user)
        return json_response(models.SharingTokenOut(sharing_token=dataset.sharing_token).dump())

    # ------------------------------------------------------------------ folders

    def _folder(self, folder_id: str, user: User) -> Folder:
        require_object_id(folder_id)
        folder = self.world.folders.get(folder_id)
        if folder is None or not self.world.can_read_folder(folder, user):
            raise WkError(404, FOLDER_NOT_FOUND)
        return folder

    async def folder_root(self, request: Request) -> Response:
        user = self.require_user(request)
        root = self.world.folders[self.world.root_folder_id]
        return json_response(render.folder(self.world, root, user))

    async def folder_tree(self, request: Request) -> Response:
        user = self.require_user(request)
        # The real server lists the root last, subfolders by name.
        folders = sorted(
            (f for f in self.world.folders.values() if self.world.can_read_folder(f, user)),
            key=lambda f: (f.parent_id is None, f.name, f.id),
        )
        return json_response([render.folder_tree_entry(self.world, f, user) for f in folders])

    async def folder_get(self, request: Request) -> Response:
        user = self.require_user(request)
        folder = self._folder(request.path_params["id"], user)
        return json_response(render.folder(self.world, folder, user))

    async def folder_update(self, request: Request) -> Response:
        user = self.require_user(request)
        raw = await json_body(request)
        try:
            body = models.FolderUpdateBody.model_validate(raw)
        except ValidationError as exc:
            raise WkError(400, validation_message(exc)) from None
        folder = self._folder(request.path_params["id"], user)
        if not self.world.can_edit_folder(folder, user):
            raise WkError(403, NOT_ALLOWED)
        _check_folder_name(body.name)
        for team_id in body.allowed_teams:
            if team_id not in self.world.teams:
                raise WkError(400, TEAM_NOT_FOUND)
        if body.metadata is not None:
            keys = [e.key for e in body.metadata]
            if len(keys) != len(set(keys)):
                raise WkError(400, "Metadata keys must be unique")
            for entry in body.metadata:
                _check_metadata_value(entry)
            folder.metadata = [e.model_dump(mode="json") for e in body.metadata]
        folder.name = body.name
        folder.allowed_team_ids = list(dict.fromkeys(body.allowed_teams))
        return json_response(render.folder(self.world, folder, user))

    async def folder_create(self, request: Request) -> Response:
        user = self.require_user(request)
        parent_id = request.query_params.get("parentId")
        name = request.query_params.get("name")
        if parent_id is None or name is None:
            raise WkError(
                400, "Missing parameter: " + ("parentId" if parent_id is None else "name")
            )
        parent = self._folder(parent_id, user)
        if not self.world.can_edit_folder(parent, user):
            raise WkError(403, NOT_ALLOWED)
        _check_folder_name(name)
        folder = Folder(self.world.new_id(), name, parent.id)
        self.world.folders[folder.id] = folder
        return json_response(render.folder(self.world, folder, user))

    async def folder_move(self, request: Request) -> Response:
        user = self.require_user(request)
        new_parent_id = request.query_params.get("newParentId")
        if new_parent_id is None:
            raise WkError(400, "Missing parameter: newParentId")
        folder = self._folder(request.path_params["id"], user)
        new_parent = self._folder(new_parent_id, user)
        if not (
            self.world.can_edit_folder(folder, user)
            and self.world.can_edit_folder(new_parent, user)
        ):
            raise WkError(403, NOT_ALLOWED)
        if folder.id == self.world.root_folder_id:
            raise WkError(400, "The root folder cannot be moved")
        if new_parent.id in self.world.folder_descendants(folder.id):
            raise WkError(400, "A folder cannot be moved into itself or one of its subfolders")
        folder.parent_id = new_parent.id
        return json_response(render.folder(self.world, folder, user))

    async def folder_delete(self, request: Request) -> Response:
        user = self.require_user(request)
        folder = self._folder(request.path_params["id"], user)
        if not self.world.can_edit_folder(folder, user):
            raise WkError(403, NOT_ALLOWED)
        if folder.id == self.world.root_folder_id:
            raise WkError(400, "The root folder cannot be deleted")
        if any(f.parent_id == folder.id for f in self.world.folders.values()) or any(
            d.folder_id == folder.id for d in self.world.datasets.values()
        ):
            raise WkError(400, "Folder is not empty: it still contains folders or datasets")
        del self.world.folders[folder.id]
        # The real server answers a bare 200 without a body.
        return Response(b"", status_code=200)

    # ------------------------------------------------------------------ task types

    def _task_type(self, task_type_id: str, user: User) -> TaskType:
        require_object_id(task_type_id)
        task_type = self.world.task_types.get(task_type_id)
        if task_type is None or not self.world.can_read_task_type(task_type, user):
            raise WkError(404, TASK_TYPE_NOT_FOUND)
        return task_type

    async def task_type_list(self, request: Request) -> Response:
        user = self.require_user(request)
        return json_response(
            [
                render.task_type(self.world, t).dump()
                for t in self.world.task_types.values()
                if self.world.can_read_task_type(t, user)
            ]
        )

    async def task_type_get(self, request: Request) -> Response:
        user = self.require_user(request)
        return json_response(
            render.task_type(self.world, self._task_type(request.path_params["id"], user)).dump()
        )

    async def task_type_create(self, request: Request) -> Response:
        user = self.require_user(request)
        raw = await json_body(request)
        try:
            body = models.TaskTypeCreateBody.model_validate(raw)
        except ValidationError as exc:
            raise WkError(400, validation_message(exc)) from None
        if body.team_id not in self.world.teams:
            raise WkError(400, TEAM_NOT_FOUND)
        if not user.is_manager_of(body.team_id):
            raise WkError(403, NOT_ALLOWED)
        if any(t.summary == body.summary for t in self.world.task_types.values()):
            raise WkError(400, f"A task type with the summary “{body.summary}” already exists")
        defaults: dict[str, Any] = {
            "allowedModes": [],
            "branchPointsAllowed": True,
            "somaClickingAllowed": True,
            "volumeInterpolationAllowed": False,
            "mergerMode": False,
            "magRestrictions": {},
        }
        # The server keeps the annotation settings only; view settings are dropped.
        settings = {k: body.settings.get(k, defaults[k]) for k in TASK_TYPE_SETTING_KEYS}
        task_type = TaskType(
            self.world.new_id(),
            body.summary,
            body.description,
            body.team_id,
            settings,
            body.tracing_type,
            body.recommended_configuration,
        )
        self.world.task_types[task_type.id] = task_type
        return json_response(render.task_type(self.world, task_type).dump())

    async def task_type_delete(self, request: Request) -> Response:
        user = self.require_user(request)
        task_type = self._task_type(request.path_params["id"], user)
        if not user.is_manager_of(task_type.team_id):
            raise WkError(403, NOT_ALLOWED)
        del self.world.task_types[task_type.id]
        # Deleting a task type deletes its tasks (and their annotations) too.
        for task in [t for t in self.world.tasks.values() if t.task_type_id == task_type.id]:
            self._delete_task(task)
        return json_response(
            success_message(f"Task type “{task_type.summary}” successfully deleted")
        )

    # ------------------------------------------------------------------ projects

    def _project(self, project_id: str, user: User) -> Project:
        require_object_id(project_id)
        project = self.world.projects.get(project_id)
        if project is None or not self.world.can_read_project(project, user):
            raise WkError(404, PROJECT_NOT_FOUND)
        return project

    async def project_list(self, request: Request) -> Response:
        user = self.require_user(request)
        return json_response(
            [
                render.project(self.world, p)
                for p in self.world.projects.values()
                if self.world.can_read_project(p, user)
            ]
        )

    async def project_get(self, request: Request) -> Response:
        user = self.require_user(request)
        return json_response(
            render.project(self.world, self._project(request.path_params["id"], user))
        )

    async def project_by_name(self, request: Request) -> Response:
        user = self.require_user(request)
        project = self.world.project_by_name(request.path_params["name"])
        if project is None or not self.world.can_read_project(project, user):
            raise WkError(404, PROJECT_NOT_FOUND)
        return json_response(render.project(self.world, project))

    async def _project_parameters(self, request: Request) -> models.ProjectParameters:
        try:
            return models.ProjectParameters.model_validate(await json_body(request))
        except ValidationError as exc:
            raise invalid_json(exc, PROJECT_FIELD_MESSAGES) from None

    def _check_project_refs(self, body: models.ProjectParameters) -> None:
        if body.team not in self.world.teams:
            raise WkError(400, TEAM_NOT_FOUND)
        if body.owner not in self.world.users:
            raise WkError(400, "User not found")

    async def project_create(self, request: Request) -> Response:
        user = self.require_user(request)
        body = await self._project_parameters(request)
        self._check_project_refs(body)
        if not user.is_manager_of(body.team):
            raise WkError(403, "You are not part of this team. Project can’t be created.")
        if self.world.project_by_name(body.name) is not None:
            raise WkError(400, f"The project name “{body.name}” is already in use.")
        project = Project(
            self.world.new_id(),
            body.name,
            body.team,
            body.owner,
            body.priority,
            bool(body.paused),
            body.expected_time,
            body.is_blacklisted_from_report,
            now_ms(),
        )
        self.world.projects[project.id] = project
        return json_response(render.project(self.world, project))

    async def project_update(self, request: Request) -> Response:
        user = self.require_user(request)
        body = await self._project_parameters(request)
        project = self._project(request.path_params["id"], user)
        if not user.is_manager_of(project.team_id):
            raise WkError(403, NOT_ALLOWED)
        self._check_project_refs(body)
        # The real update keeps the project's name and paused state whatever the body says:
        # pausing has routes of its own (project_pause, project_resume).
        project.team_id = body.team
        project.owner_id = body.owner
        project.priority = body.priority
        project.expected_time = body.expected_time
        project.is_blacklisted_from_report = body.is_blacklisted_from_report
        return json_response(render.project(self.world, project))

    async def _set_paused(self, request: Request, paused: bool) -> Response:
        user = self.require_user(request)
        project = self._project(request.path_params["id"], user)
        if not user.is_manager_of(project.team_id):
            raise WkError(403, NOT_ALLOWED)
        project.paused = paused
        return json_response(render.project(self.world, project))

    async def project_pause(self, request: Request) -> Response:
        return await self._set_paused(request, True)

    async def project_resume(self, request: Request) -> Response:
        return await self._set_paused(request, False)

    async def project_delete(self, request: Request) -> Response:
        user = self.require_user(request)
        project = self._project(request.path_params["id"], user)
        if not user.is_manager_of(project.team_id):
            raise WkError(403, "You are not authorized to remove this project. Talk to the owner.")
        del self.world.projects[project.id]
        for task in [t for t in self.world.tasks.values() if t.project_id == project.id]:
            self._delete_task(task)
        return json_response(success_message("Project was removed successfully"))

    async def project_tasks(self, request: Request) -> Response:
        user = self.require_user(request)
        project = self._project(request.path_params["id"], user)
        limit = _int_param(request, "limit")
        page = _int_param(request, "pageNumber") or 0
        include_total = _bool_param(request, "includeTotalCount") or False
        tasks = [t for t in self.world.tasks.values() if t.project_id == project.id]
        total = len(tasks)
        if limit is not None:
            limit = max(0, min(limit, MAX_TASKS))
            tasks = tasks[page * limit : (page + 1) * limit]
        headers = {"X-Total-Count": str(total)} if include_total else None
        return json_response([render.task(self.world, t) for t in tasks], headers=headers)

    # ------------------------------------------------------------------ tasks

    def _task(self, task_id: str, user: User) -> Task:
        require_object_id(task_id)
        task = self.world.tasks.get(task_id)
        if task is None or not self.world.can_read_task(task, user):
            raise WkError(404, TASK_NOT_FOUND)
        return task

    def _delete_task(self, task: Task) -> None:
        self.world.tasks.pop(task.id, None)
        for annotation in self.world.task_annotations(task.id):
            del self.world.annotations[annotation.id]

    def _resolve_task_item(
        self, item: Any, user: User
    ) -> tuple[models.TaskParametersBody, Project, TaskType, Dataset]:
        """Validate one task-parameters object; raises WkError for a per-item failure."""
        try:
            params = models.TaskParametersBody.model_validate(item)
        except ValidationError as exc:
            raise WkError(400, validation_message(exc)) from None
        task_type = self.world.task_types.get(params.task_type_id)
        if task_type is None or not self.world.can_read_task_type(task_type, user):
            raise WkError(400, TASK_TYPE_NOT_FOUND)
        project = self.world.project_by_name(params.project_name)
        if project is None or not self.world.can_read_project(project, user):
            raise WkError(400, PROJECT_NOT_FOUND)
        if not user.is_manager_of(project.team_id):
            raise WkError(403, NOT_ALLOWED)
        dataset: Dataset | None = None
        if params.dataset_id is not None:
            dataset = self.world.datasets.get(params.dataset_id)
        else:
            legacy = params.data_set or params.dataset_name
            dataset = next(
                (d for d in self.world.datasets.values() if d.directory_name == legacy), None
            )
        key = params.dataset_id or params.data_set or params.dataset_name or ""
        if dataset is None or not self.world.can_read_dataset(dataset, user, None):
            raise dataset_not_found(key, user)
        if params.pending_instances < 1:
            raise WkError(400, "The number of task instances must be at least 1")
        return params, project, task_type, dataset

    async def task_create(self, request: Request) -> Response:
        user = self.require_user(request)
        raw = await json_body(request)
        if not isinstance(raw, list):
            raise WkError(400, "Invalid Json format: expected a JSON array of task parameters")
        if len(raw) > MAX_TASKS:
            raise batch_limit_exceeded(MAX_TASKS)
        dataset_keys = {
            item.get("datasetId") or item.get("dataSet") or item.get("datasetName")
            for item in raw
            if isinstance(item, dict)
        }
        if len(dataset_keys) > 1:
            raise WkError(400, "Cannot create tasks on multiple datasets in one go.")
        results: list[dict[str, Any]] = []
        for item in raw:
            try:
                params, project, task_type, dataset = self._resolve_task_item(item, user)
            except WkError as err:
                results.append({"status": err.status, "error": err.message})
                continue
            bbox = params.bounding_box
            task = Task(
                self.world.new_id(),
                project.id,
                task_type.id,
                dataset.id,
                params.needed_experience.domain,
                params.needed_experience.value,
                params.pending_instances,
                BoundingBox(bbox.top_left, bbox.width, bbox.height, bbox.depth) if bbox else None,
                params.edit_position,
                params.edit_rotation,
                now_ms(),
                params.script_id,
            )
            self.world.tasks[task.id] = task
            results.append({"status": 200, "success": render.task(self.world, task)})
        return json_response({"tasks": results, "warnings": []})

    async def task_create_from_files(self, request: Request) -> Response:
        """``POST /tasks/createFromFiles``: one task per NML (an NML file, or each NML of a
        zip), with the parameters of ``formJSON`` and the dataset, position, rotation and
        bounding box of the NML (the form's bounding box wins). As the real server
        (``TaskController.createFromFiles``, ``TaskCreationService``), in its order: no
        multipart body, no NML or zip file, no ``formJSON``, unreadable parameters, an unknown
        task type (404), more files than the task type's batch limit, an unknown project (404),
        or tasks on more than one dataset refuse the request; an NML that does not parse, or
        whose dataset is not found, is a refused item, and the others are made."""
        user = self.require_user(request)
        form = parse_multipart(request.headers.get("content-type", ""), await request.body())
        if form is None:
            raise WkError(400, TASKS_MULTIPART_INVALID)
        uploads = [f for f in form.files if f.name.lower().endswith((".nml", ".zip"))]
        if not uploads:
            raise WkError(400, TASKS_NML_NOT_FOUND)
        raw = form.fields.get("formJSON")
        if not raw:
            raise WkError(400, TASKS_FORM_JSON_MISSING)
        try:
            params = models.NmlTaskParametersBody.model_validate_json(raw[0])
        except ValidationError:
            # The real answer chains Play's JSON error below this; not reproduced.
            raise WkError(400, TASKS_CREATE_FAILED) from None
        task_type = self.world.task_types.get(params.task_type_id)
        if task_type is None or not self.world.can_read_task_type(task_type, user):
            # Msg.TaskType.notFound(id) ~> NOT_FOUND.
            raise WkError(404, f"Task type “{params.task_type_id}” could not be found or accessed.")
        limit = MAX_TASKS if task_type.tracing_type == "skeleton" else MAX_VOLUME_TASKS
        if len(uploads) > limit:
            raise batch_limit_exceeded(limit)
        project = self.world.project_by_name(params.project_name)
        if project is None or not self.world.can_read_project(project, user):
            # Msg.Project.notFound(name) ~> NOT_FOUND.
            raise WkError(
                404, f"Project with name “{params.project_name}” could not be found or accessed."
            )
        if not user.is_manager_of(project.team_id):
            raise WkError(403, NOT_ALLOWED)
        items: list[tuple[nml.ParsedNml, Dataset] | WkError] = []
        for upload in uploads:
            for parsed in nml.annotations_of(upload):
                if isinstance(parsed, nml.NmlError):
                    items.append(WkError(400, str(parsed)))
                    continue
                dataset = self._nml_dataset(parsed, user)
                if dataset is None:
                    items.append(WkError(400, "Could not find dataset for task creation."))
                    continue
                items.append((parsed, dataset))
        made = [item for item in items if not isinstance(item, WkError)]
        if len({dataset.id for _, dataset in made}) > 1:
            raise WkError(400, "Cannot create tasks on multiple datasets in one go.")
        if params.pending_instances < 1 and made:
            raise WkError(400, "The number of task instances must be at least 1")
        results: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, WkError):
                results.append({"status": item.status, "error": item.message})
                continue
            parsed, dataset = item
            box = params.bounding_box
            task = Task(
                self.world.new_id(),
                project.id,
                task_type.id,
                dataset.id,
                params.needed_experience.domain,
                params.needed_experience.value,
                params.pending_instances,
                (
                    BoundingBox(box.top_left, box.width, box.height, box.depth)
                    if box is not None
                    else BoundingBox(*parsed.bounding_box)
                    if parsed.bounding_box is not None
                    else None
                ),
                parsed.edit_position,
                parsed.edit_rotation,
                now_ms(),
                params.script_id,
                creation_info=parsed.file_name,
                base_trees=parsed.skeleton.trees,
                base_nodes=parsed.skeleton.nodes,
            )
            self.world.tasks[task.id] = task
            results.append({"status": 200, "success": render.task(self.world, task)})
        return json_response({"tasks": results, "warnings": []})

    def _nml_dataset(self, parsed: nml.ParsedNml, user: User) -> Dataset | None:
        """The dataset an NML names: by ``datasetId``, else by name in the organization."""
        if parsed.dataset_id is not None:
            dataset = self.world.datasets.get(parsed.dataset_id)
        else:
            dataset = next(
                (
                    d
                    for d in self.world.datasets.values()
                    if parsed.dataset_name in (d.name, d.directory_name)
                ),
                None,
            )
        if dataset is None or not self.world.can_read_dataset(dataset, user, None):
            return None
        return dataset

    async def task_list(self, request: Request) -> Response:
        user = self.require_user(request)
        raw = await json_body(request)
        try:
            filters = models.TaskListBody.model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            raise WkError(400, validation_message(exc)) from None
        tasks = [t for t in self.world.tasks.values() if self.world.can_read_task(t, user)]
        if filters.project is not None:
            tasks = [t for t in tasks if t.project_id == filters.project]
        if filters.task_type is not None:
            tasks = [t for t in tasks if t.task_type_id == filters.task_type]
        if filters.ids is not None:
            wanted = set(filters.ids)
            tasks = [t for t in tasks if t.id in wanted]
        if filters.user is not None:
            mine = {
                a.task_id for a in self.world.annotations.values() if a.owner_id == filters.user
            }
            tasks = [t for t in tasks if t.id in mine]
        return json_response([render.task(self.world, t) for t in tasks[:MAX_TASKS]])

    async def task_get(self, request: Request) -> Response:
        user = self.require_user(request)
        return json_response(render.task(self.world, self._task(request.path_params["id"], user)))

    async def task_update(self, request: Request) -> Response:
        user = self.require_user(request)
        task = self._task(request.path_params["id"], user)
        raw = await json_body(request)
        if not isinstance(raw, dict):
            raise WkError(400, "Invalid Json format: expected one task-parameters object")
        params, project, task_type, dataset = self._resolve_task_item(raw, user)
        if project.id != task.project_id or dataset.id != task.dataset_id:
            raise WkError(400, "The project and dataset of a task cannot be changed")
        task.task_type_id = task_type.id
        task.experience_domain = params.needed_experience.domain
        task.experience_value = params.needed_experience.value
        task.pending = params.pending_instances
        bbox = params.bounding_box
        task.bounding_box = (
            BoundingBox(bbox.top_left, bbox.width, bbox.height, bbox.depth) if bbox else None
        )
        task.edit_position = params.edit_position
        task.edit_rotation = params.edit_rotation
        out = render.task(self.world, task)
        out.update(success_message("Task successfully edited"))
        return json_response(out)

    async def task_delete(self, request: Request) -> Response:
        user = self.require_user(request)
        task = self._task(request.path_params["id"], user)
        if not user.is_manager_of(self.world.projects[task.project_id].team_id):
            raise WkError(403, NOT_ALLOWED)
        self._delete_task(task)
        return json_response(success_message("Task was removed"))

    async def task_annotations(self, request: Request) -> Response:
        user = self.require_user(request)
        task = self._task(request.path_params["id"], user)
        url = self.datastore_url(request)
        return json_response(
            [
                render.annotation(self.world, a, url, url)
                for a in self.world.task_annotations(task.id)
            ]
        )

    # ------------------------------------------------------------------ routing

    def router(self) -> Router:
        r = Router()
        r.add("GET", "/buildinfo", self.buildinfo)
        r.add("GET", "/health", self.health)
        r.add("GET", "/user", self.user)
        r.add("GET", "/users", self.users)
        r.add("GET", "/users/{id}", self.user_by_id)
        r.add("GET", "/teams", self.teams)
        r.add("GET", "/datastores", self.datastores)
        r.add("GET", "/datasets", self.dataset_list)
        r.add("GET", "/datasets/disambiguate/{org}/{name}/toId", self.dataset_disambiguate)
        r.add("POST", "/datasets/exploreAndAddRemote", self.dataset_explore_and_add_remote)
        r.add("PATCH", "/datasets/{id}/updatePartial", self.dataset_update_partial)
        r.add("PATCH", "/datasets/{id}/teams", self.dataset_update_teams)
        r.add("GET", "/datasets/{id}/sharingToken", self.dataset_sharing_token)
        r.add("GET", "/datasets/{id}", self.dataset_read)
        r.add("GET", "/folders/root", self.folder_root)
        r.add("GET", "/folders/tree", self.folder_tree)
        r.add("POST", "/folders/create", self.folder_create)
        r.add("GET", "/folders/{id}", self.folder_get)
        r.add("PUT", "/folders/{id}", self.folder_update)
        r.add("PUT", "/folders/{id}/move", self.folder_move)
        r.add("DELETE", "/folders/{id}", self.folder_delete)
        r.add("POST", "/tasks", self.task_create)
        r.add("POST", "/tasks/list", self.task_list)
        r.add("POST", "/tasks/createFromFiles", self.task_create_from_files)
        r.add("GET", "/tasks/{id}", self.task_get)
        r.add("PUT", "/tasks/{id}", self.task_update)
        r.add("DELETE", "/tasks/{id}", self.task_delete)
        r.add("GET", "/tasks/{id}/annotations", self.task_annotations)
        r.add("GET", "/taskTypes", self.task_type_list)
        r.add("POST", "/taskTypes", self.task_type_create)
        r.add("GET", "/taskTypes/{id}", self.task_type_get)
        r.add("DELETE", "/taskTypes/{id}", self.task_type_delete)
        r.add("GET", "/projects", self.project_list)
        r.add("POST", "/projects", self.project_create)
        r.add("GET", "/projects/byName/{name}", self.project_by_name)
        r.add("GET", "/projects/{id}", self.project_get)
        r.add("PUT", "/projects/{id}", self.project_update)
        r.add("DELETE", "/projects/{id}", self.project_delete)
        r.add("GET", "/projects/{id}/tasks", self.project_tasks)
        r.add("PATCH", "/projects/{id}/pause", self.project_pause)
        r.add("PATCH", "/projects/{id}/resume", self.project_resume)
        return r


def _check_metadata_value(entry: models.MetadataEntry) -> None:
    ok = {
        "string": isinstance(entry.value, str),
        "number": isinstance(entry.value, int | float) and not isinstance(entry.value, bool),
        "string[]": isinstance(entry.value, list) and all(isinstance(v, str) for v in entry.value),
    }[entry.type]
    if not ok:
        raise WkError(
            400, f"Metadata entry “{entry.key}” has a value that is not of type {entry.type}"
        )


def _check_folder_name(name: str) -> None:
    if not name.strip():
        raise WkError(400, "Folder name must not be empty")
    if "/" in name:
        raise WkError(400, "Folder name must not contain “/”")


def _apply_data_source(dataset: Dataset, body: models.UpdatePartialBody) -> None:
    """updatePartial's ``dataSource`` as the real server applies it (scalableminds/webknossos,
    app/models/dataset/DatasetService.scala, ``updateDataSourceFromUserChanges``): each
    existing layer takes the named layer's ``defaultViewConfiguration``; a layer the update
    leaves out is removed; the data source's own ``defaultViewConfiguration`` is dropped. The
    emulator does not rename or add layers, nor take bounding boxes or categories: such an
    update is refused before anything changes."""
    update = body.data_source
    assert update is not None
    if body.layer_renamings or body.attachment_renamings:
        raise WkError(400, "The emulator does not rename layers or attachments")
    existing = {layer.name for layer in dataset.layers}
    by_name = {layer.name: layer for layer in update.data_layers}
    added = [name for name in by_name if name not in existing]
    if any(by_name[name].mags for name in added):
        raise WkError(
            400, "New layers may not have mags. Add empty layers instead and then add mags."
        )
    if added:
        raise WkError(400, "The emulator does not add layers")
    for layer in dataset.layers:
        new = by_name.get(layer.name)
        if new is not None and new.category != layer.category:
            raise WkError(400, "The emulator does not change a layer's category")
    dataset.layers = [layer for layer in dataset.layers if layer.name in by_name]
    for name, sent in by_name.items():
        dataset.layer_views[name] = sent.default_view_configuration
