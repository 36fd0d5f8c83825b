"""The emulated annotation engine: ``/annotation/api/v2/aligned_volume/{av}/...``.

Follows AnnotationEngine 4.35.0 (``annotationengine/api.py``) on DynamicAnnotationDB 5.8.1,
flask-restx 0.5.1, flask-accepts 0.18.4 and marshmallow 3.5.1. What clients see of it:

- Every route first runs middle_auth (``view`` for reads, ``edit`` for writes, on the aligned
  volume), then flask-accepts' body schema, then the handler.
- The namespace's catch-all error handler answers every exception (``abort(4xx)`` included)
  with HTTP 500 ``{"code": 500, "message": "<code> <reason>: <description>", "traceback": [...]}``
  (see :mod:`.http`). So a 422 validation error, the 413 insert cap, the 409 of updating a
  superseded row and the 401 of a non-owner's write all arrive as 500 with the real status in
  ``message``; marshmallow's messages appear as a Python ``repr``.
- Routes that *return* a status keep it: table metadata is **201** (with
  ``Warning: Table Owner Notice: ...`` when the table has a notice), deleting ids of which none
  exist is 404 with a JSON string.
- A table name that does not exist is not checked for: the handlers crash on the missing
  metadata (``'NoneType' object is not subscriptable``), which the same handler turns into a 500.
- ``GET .../annotations`` with ids that do not exist answers ``[]``.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.cave.auth import Authenticator
from neurofs_emulators.cave.http import (
    BROWSER_400,
    EngineError,
    flask_json,
    none_attribute_error,
    none_subscript_error,
    parse_json_body,
    restx_json,
    schema_errors,
)
from neurofs_emulators.cave.models import (
    ANNOTATIONS_FIELDS,
    CREATE_TABLE_FIELDS,
    DELETE_FIELDS,
    UPDATE_METADATA_FIELDS,
    AnnotationsRequest,
    CreateTableRequest,
    DeleteAnnotationsRequest,
    UpdateMetadataRequest,
    load_body,
)
from neurofs_emulators.cave.sample import ALIGNED_VOLUME, User
from neurofs_emulators.cave.schemas import (
    SCHEMAS,
    AfterLoadError,
    SchemaValidationError,
    load_annotation,
    unknown_schema_message,
)
from neurofs_emulators.cave.state import (
    AnnotationTable,
    CaveState,
    Row,
    TableMeta,
    annotation_row,
    segment_ids,
    utcnow,
)
from neurofs_emulators.routing import Router

PREFIX = "/annotation/api/v2/aligned_volume/{aligned_volume}"
INSERT_LIMIT = 10_000
TABLE_NAME = re.compile(r"^[a-z_]+[a-z0-9_]*$")
TABLE_NAME_ERROR = (
    "Invalid table name. Table name must include at least one letter, and can only contain "
    "lowercase letters, numbers, and underscores (_)."
)


def _owner_notice(meta: TableMeta) -> dict[str, str] | None:
    if meta.notice_text is None:
        return None
    return {"Warning": f"Table Owner Notice: {meta.notice_text}"}


def _reqparse_int_list(raw: str | None) -> list[int] | None:
    """reqparse ``type=int, action="split"``; a bad item is a 400 with ``data``."""
    if raw is None:
        return None
    ids = []
    for item in raw.split(","):
        try:
            ids.append(int(item))
        except ValueError as exc:
            raise EngineError(
                f"400 Bad Request: {BROWSER_400}",
                exc_type="werkzeug.exceptions.BadRequest",
                data={
                    "errors": {"annotation_ids": f"list of annotation ids {exc}"},
                    "message": "Input payload validation failed",
                },
            ) from None
    return ids


M = TypeVar("M", bound=BaseModel)


def _load(request_body: bytes, fields: Any, model: type[M]) -> M:
    data = parse_json_body(request_body)
    try:
        cleaned = load_body(fields, data)
    except SchemaValidationError as exc:
        raise schema_errors(exc.messages) from None
    return model.model_validate(cleaned)


class AnnotationEngine:
    """Handlers of the annotation engine; state lives in the shared :class:`CaveState`."""

    def __init__(self, state: CaveState, auth: Authenticator) -> None:
        self.state = state
        self.auth = auth

    def router(self) -> Router:
        router = Router()
        router.add("GET", "/annotation/api/versions", self.api_versions)
        router.add("GET", PREFIX + "/table", self.list_tables)
        router.add("POST", PREFIX + "/table", self.create_table)
        router.add("PUT", PREFIX + "/table", self.update_metadata)
        router.add("GET", PREFIX + "/table/{table}", self.table_metadata)
        router.add("DELETE", PREFIX + "/table/{table}", self.delete_table)
        router.add("GET", PREFIX + "/table/{table}/count", self.count)
        router.add("GET", PREFIX + "/table/{table}/annotations", self.get_annotations)
        router.add("POST", PREFIX + "/table/{table}/annotations", self.post_annotations)
        router.add("PUT", PREFIX + "/table/{table}/annotations", self.update_annotations)
        router.add("DELETE", PREFIX + "/table/{table}/annotations", self.delete_annotations)
        return router

    # ------------------------------------------------------------------ helpers

    def _user(self, request: Request, permission: str) -> User:
        av = request.path_params["aligned_volume"]
        return self.auth.require(request, permission, av, namespace="aligned_volume")

    def _meta(self, name: str) -> TableMeta | None:
        table = self.state.tables.get(name)
        return table.meta if table is not None else None

    def _table(self, request: Request) -> AnnotationTable | None:
        return self.state.tables.get(request.path_params["table"])

    @staticmethod
    def _check_aligned_volume(request: Request) -> None:
        av = request.path_params["aligned_volume"]
        if av != ALIGNED_VOLUME:
            raise EngineError.abort(400, f"aligned volume: {av} not valid")

    @staticmethod
    def _check_write(meta: TableMeta | None, user: User) -> TableMeta:
        if meta is None:
            raise none_subscript_error()
        if meta.user_id != str(user.id):
            if meta.write_permission == "GROUP":
                raise EngineError.abort(
                    401,
                    "Unauthorized: You cannot write because you do not share a common group "
                    "with the creator of this table.",
                )
            if meta.write_permission != "PUBLIC":
                raise EngineError.abort(
                    401, "Unauthorized: The table can only be written to by owner"
                )
        return meta

    @staticmethod
    def _check_read(meta: TableMeta | None, user: User) -> TableMeta:
        if meta is None:
            raise none_subscript_error()
        if meta.read_permission == "GROUP" and meta.user_id != str(user.id):
            raise EngineError.abort(
                401,
                "Unauthorized: You cannot read this table because you do not share a common "
                "group with the creator of this table.",
            )
        if meta.read_permission == "PRIVATE" and meta.user_id != str(user.id):
            raise EngineError.abort(401, "Unauthorized: The table can only be read by its owner")
        return meta

    @staticmethod
    def _check_ownership(meta: TableMeta | None, user: User) -> TableMeta:
        if meta is None:
            raise none_subscript_error()
        if meta.user_id != str(user.id):
            raise EngineError.abort(
                401, "You cannot do this because you are not the owner of this table"
            )
        return meta

    # ------------------------------------------------------------------ routes

    async def api_versions(self, request: Request) -> Response:
        return flask_json([2])

    async def list_tables(self, request: Request) -> Response:
        self._user(request, "view")
        self._check_aligned_volume(request)
        raw = request.query_params.get("filter_valid", "true").lower()
        filter_valid = raw not in ("false", "0", "no", "off", "f", "n")
        # DynamicAnnotationDB lists by the metadata's ``valid``; deleting a table only sets
        # ``deleted``, so deleted tables stay listed.
        names = [n for n, t in self.state.tables.items() if t.meta.valid or not filter_valid]
        return restx_json(names)

    async def create_table(self, request: Request) -> Response:
        user = self._user(request, "edit")
        body = _load(await request.body(), CREATE_TABLE_FIELDS, CreateTableRequest)
        self._check_aligned_volume(request)
        md = body.metadata
        user_id = md.user_id if md.user_id is not None else str(user.id)
        name = body.table_name
        if not name:
            raise EngineError.abort(400, "Table name error: Table name cannot be empty.")
        if not TABLE_NAME.match(name):
            raise EngineError.abort(400, f"Table name error: {TABLE_NAME_ERROR}")
        if name in self.state.tables:
            raise EngineError.abort(400, f"Table {name} already exists")
        spec = SCHEMAS.get(body.schema_type)
        if spec is None:
            raise EngineError.abort(400, unknown_schema_message(body.schema_type))
        reference = md.table_metadata.reference_table if md.table_metadata else None
        if reference is not None:
            if not spec.reference:
                raise EngineError.abort(
                    400, "Reference table must be a ReferenceAnnotation schema type"
                )
            if reference not in self.state.tables:
                raise EngineError.abort(400, f"No table named '{reference}' exists.")
        elif spec.reference:
            # Without a target the reference model cannot be built (no foreign key target).
            raise EngineError.abort(400, f"Reference table required for {body.schema_type}")
        for permission in (md.read_permission, md.write_permission):
            if permission is not None and permission not in ("PRIVATE", "GROUP", "PUBLIC"):
                raise EngineError.abort(
                    400,
                    "(psycopg2.errors.InvalidTextRepresentation) invalid input value for enum "
                    f'readwrite: "{permission}"',
                )
        now = utcnow()
        description = md.description
        if reference and md.table_metadata and md.table_metadata.track_target_id_updates:
            description += (
                f" [Note: This table '{name}' will update the 'target_id' foreign_key when "
                f"updates are made to the '{reference}' table] "
            )
        meta = TableMeta(
            id=self.state.next_table_id,
            schema_type=body.schema_type,
            table_name=name,
            created=now,
            user_id=user_id,
            description=description,
            voxel_resolution_x=md.voxel_resolution_x,
            voxel_resolution_y=md.voxel_resolution_y,
            voxel_resolution_z=md.voxel_resolution_z,
            last_modified=now,
            notice_text=md.notice_text,
            reference_table=reference,
            flat_segmentation_source=md.flat_segmentation_source,
            read_permission=md.read_permission or "PUBLIC",
            write_permission=md.write_permission or "PRIVATE",
        )
        self.state.next_table_id += 1
        self.state.tables[name] = AnnotationTable(meta, spec)
        # ``Response(table_name)``: plain text with Flask's default mimetype.
        return Response(name, media_type="text/html; charset=utf-8")

    async def update_metadata(self, request: Request) -> Response:
        user = self._user(request, "edit")
        body = _load(await request.body(), UPDATE_METADATA_FIELDS, UpdateMetadataRequest)
        changes = body.metadata
        meta = self._check_ownership(self._meta(body.table_name), user)
        if changes.user_id is None:
            changes.user_id = str(user.id)
        for name in (
            "description",
            "user_id",
            "flat_segmentation_source",
            "read_permission",
            "write_permission",
        ):
            value = getattr(changes, name)
            if value is not None:
                setattr(meta, name, value)
        if changes.notice_text is not None:
            # An empty string clears the notice.
            meta.notice_text = changes.notice_text or None
        return restx_json(meta.joined())

    async def table_metadata(self, request: Request) -> Response:
        self._user(request, "view")
        self._check_aligned_volume(request)
        meta = self._meta(request.path_params["table"])
        if meta is None:
            raise none_attribute_error("get")
        return restx_json(meta.joined(), 201, _owner_notice(meta))

    async def delete_table(self, request: Request) -> Response:
        user = self._user(request, "edit")
        self._check_aligned_volume(request)
        meta = self._check_ownership(self._meta(request.path_params["table"]), user)
        meta.deleted = utcnow()
        return restx_json(True)

    async def count(self, request: Request) -> Response:
        user = self._user(request, "view")
        self._check_aligned_volume(request)
        table = self._table(request)
        self._check_read(table.meta if table else None, user)
        assert table is not None
        return restx_json(table.row_count())

    async def get_annotations(self, request: Request) -> Response:
        user = self._user(request, "view")
        self._check_aligned_volume(request)
        table = self._table(request)
        self._check_read(table.meta if table else None, user)
        assert table is not None
        ids = _reqparse_int_list(request.query_params.get("annotation_ids"))
        if ids is None:
            raise EngineError("'NoneType' object is not iterable", exc_type="TypeError")
        wanted = set(ids)
        # ``WHERE id IN (...)``: table order (by id here), each row once.
        found = (table.find(i) for i in sorted(wanted))
        rows = [annotation_row(table, r) for r in found if r is not None]
        return restx_json(rows, 200, _owner_notice(table.meta))

    async def post_annotations(self, request: Request) -> Response:
        user = self._user(request, "edit")
        body = _load(await request.body(), ANNOTATIONS_FIELDS, AnnotationsRequest)
        self._check_aligned_volume(request)
        table = self._table(request)
        self._check_write(table.meta if table else None, user)
        assert table is not None
        annotations = body.annotations
        if len(annotations) > INSERT_LIMIT:
            raise EngineError.abort(
                413,
                f"{INSERT_LIMIT} -> The insertion limit is {INSERT_LIMIT}, "
                f"{len(annotations)} were attempted to be inserted",
            )
        loaded = []
        for annotation in annotations:
            try:
                values = load_annotation(table.spec, annotation).values
            except SchemaValidationError as exc:
                raise EngineError.abort(422, exc.messages) from None
            except AfterLoadError as exc:
                raise EngineError.abort(404, str(exc)) from None
            loaded.append((annotation.get("id"), values))
        now = utcnow()
        taken: set[int] = set()  # ids given to this request's rows
        next_id = table.next_id()
        new_rows = []
        for given, values in loaded:
            if given:
                row_id = self._explicit_id(table, given, taken)
            else:
                while next_id in taken:
                    next_id += 1
                row_id = next_id
            taken.add(row_id)
            new_rows.append(Row(row_id, now, self._with_segments(table, values)))
        for row in new_rows:
            table.add(row)
        table.touch(now)
        return restx_json([r.id for r in new_rows])

    @staticmethod
    def _explicit_id(table: AnnotationTable, given: Any, taken: set[int]) -> int:
        """A client-chosen id, with the database's errors for bad or duplicate ids."""
        name = table.meta.table_name
        if isinstance(given, bool) or not isinstance(given, int | str):
            raise EngineError.abort(
                404, f"(psycopg2.ProgrammingError) can't adapt type '{type(given).__name__}'"
            )
        try:
            row_id = int(given)
        except ValueError:
            raise EngineError.abort(
                404,
                "(psycopg2.errors.InvalidTextRepresentation) invalid input syntax for type "
                f'bigint: "{given}"',
            ) from None
        if row_id in taken or table.find(row_id) is not None:
            raise EngineError.abort(
                404,
                "(psycopg2.errors.UniqueViolation) duplicate key value violates unique "
                f'constraint "{name}_pkey"\nDETAIL:  Key (id)=({row_id}) already exists.\n',
            )
        return row_id

    @staticmethod
    def _with_segments(table: AnnotationTable, values: dict[str, Any]) -> dict[str, Any]:
        """Fill supervoxel and root ids the way the triggered lookup would (instantly)."""
        out = dict(values)
        for f in table.spec.bound_point_fields:
            coords = out.get(f"{f.name}_position")
            if coords is None:
                continue
            supervoxel, root = segment_ids(*(int(c) for c in coords))
            if out.get(f"{f.name}_supervoxel_id") is None:
                out[f"{f.name}_supervoxel_id"] = supervoxel
            if out.get(f"{f.name}_root_id") is None:
                out[f"{f.name}_root_id"] = root
        return out

    async def update_annotations(self, request: Request) -> Response:
        user = self._user(request, "edit")
        body = _load(await request.body(), ANNOTATIONS_FIELDS, AnnotationsRequest)
        self._check_aligned_volume(request)
        table = self._table(request)
        self._check_write(table.meta if table else None, user)
        assert table is not None
        mapping: dict[str, int] = {}
        # Each annotation is committed on its own: an error in the third leaves the first two
        # updated, as in the real engine.
        for annotation in body.annotations:
            old_key = annotation.get("id")
            if not old_key:
                raise EngineError.abort(400, "'str' object has no attribute 'items'")
            try:
                values = load_annotation(table.spec, annotation).values
            except SchemaValidationError as exc:
                raise EngineError.abort(422, exc.messages) from None
            except AfterLoadError as exc:
                raise EngineError.abort(400, str(exc)) from None
            old = self._find(table, old_key)
            if old is None:
                raise EngineError.abort(400, "No row was found for one()")
            if old.superceded_id:
                raise EngineError.abort(
                    409,
                    f"Error update ID {old_key} -> Annotation with ID {old_key} has already "
                    f"been superseded by annotation ID {old.superceded_id}, update annotation "
                    f"ID {old.superceded_id} instead",
                )
            now = utcnow()
            new = Row(table.next_id(), now, self._with_segments(table, values))
            table.add(new)
            old.deleted = now
            old.superceded_id = new.id
            old.valid = False
            table.touch(now)
            mapping[str(old_key)] = new.id
        return restx_json(mapping)

    @staticmethod
    def _find(table: AnnotationTable, key: Any) -> Row | None:
        try:
            return table.find(int(key))
        except (TypeError, ValueError):
            return None

    async def delete_annotations(self, request: Request) -> Response:
        user = self._user(request, "edit")
        body = _load(await request.body(), DELETE_FIELDS, DeleteAnnotationsRequest)
        self._check_aligned_volume(request)
        table = self._table(request)
        self._check_write(table.meta if table else None, user)
        assert table is not None
        wanted = set(body.annotation_ids)
        rows = [r for r in (table.find(i) for i in sorted(wanted)) if r is not None]
        if not rows:
            name = table.meta.table_name
            return restx_json(f"annotation_id {body.annotation_ids} not in table {name}", 404)
        now = utcnow()
        for row in rows:
            row.deleted = now
            row.valid = False
        table.touch(now)
        return restx_json([r.id for r in rows])


__all__ = ["AnnotationEngine"]
