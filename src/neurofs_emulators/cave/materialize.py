"""The emulated materialization engine: ``/materialize/api/v2|v3/datastack/{ds}/...``.

Follows MaterializationEngine 5.26.4 (``blueprints/client/api2.py``, ``common.py``,
``utils.py``). What clients see of it:

- Versions and their metadata (``AnalysisVersionSchema``), the tables frozen in a version, a
  frozen table's metadata (its ``analysistables`` row updated with the annotation metadata).
- ``POST .../version/{v}/table/{t}/query``: filters keyed by table name, ``select_columns``,
  ``offset`` / ``limit`` (capped at the deployment's ``QUERY_LIMIT_SIZE``, 200,000 by
  default, the emulator's ``--row-cap``, whatever ``limit`` asks; when the result has
  exactly ``limit`` rows a ``Warning: 201 - "Limited query to N rows`` header says so),
  ``split_positions``. The answer is an Arrow IPC stream with ``Content-Type: data.arrow``
  (compressed inside with ZSTD or LZ4 when ``Accept-Encoding`` names them) or, with
  ``return_pyarrow=false``, ``DataFrame.to_json(orient="records")``. Either is gzipped when
  ``Accept-Encoding`` has gzip. Headers ``dataframe_resolution`` (one header per axis) and
  ``column_names`` (a Python ``repr``) come along, as in the real server.
- Known server quirk kept: the simple query reads ``filter_out_dict`` from the body while its
  schema (and the client) call it ``filter_notin_dict``, so a not-in filter is accepted and
  ignored on frozen tables. The live query applies it.
- ``POST .../datastack/{ds}/query`` (live): the rows valid at ``timestamp``, starting from the
  closest version (``get_closest_versions``: the newest at or before it, else the oldest after).
  Columns as the frozen query's, with the ``<pt>_supervoxel_id`` / ``<pt>_root_id`` of every
  bound point. A table not frozen in that version (made since) is read from the production
  tables alone (``execute_production_query`` then ``combine_queries``): its answer keeps their
  ``created`` column (a ``timestamp[ns, UTC]`` in Arrow, epoch milliseconds in JSON), has no
  ``valid``, and orders its columns as ``SchemaSpec.production_columns`` says; an empty page
  has no ``created``. A frozen table changed since that version is both: the frozen rows and
  the production rows concatenated, so the production columns come first (without
  ``created``, which the frozen table lacks), ``valid`` last, and ``valid`` is null on the rows
  that only the production tables hold (those valid at ``timestamp`` but not at the
  version's time). The emulator has no chunkedgraph, so root ids are those computed from
  each row's positions when it was stored (they never change, so they are the same at every
  timestamp).
- Rows come back in id order (the real server gives no order; id order makes paging with
  offset + limit stable). A query reads its table lazily: filters on ``id`` bound the scan
  (the primary key's index), ``offset`` skips rows one by one (as Postgres does), and
  ``count=true`` answers the query's row count, by arithmetic where only ``id`` is filtered.
- Errors: ``abort(400)`` is a werkzeug HTML page (the namespace re-raises BadRequest); any other
  exception becomes HTTP 500 ``{"code": 500, "message": ..., "traceback": [...]}``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pyarrow as pa
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.cave.auth import Authenticator
from neurofs_emulators.cave.http import (
    BROWSER_400,
    EngineError,
    flask_json,
    restx_json,
    werkzeug_html,
)
from neurofs_emulators.cave.models import (
    LIVE_QUERY_FIELDS,
    SIMPLE_QUERY_FIELDS,
    AnalysisTablePayload,
    QueryRequest,
    VersionMetadata,
    load_body,
)
from neurofs_emulators.cave.sample import DATASTACK, User
from neurofs_emulators.cave.schemas import SchemaValidationError
from neurofs_emulators.cave.state import (
    AnnotationTable,
    CaveState,
    MatVersion,
    Row,
    TableMeta,
    mat_record,
)
from neurofs_emulators.routing import Router

SERVER_VERSION = "5.26.4"
QUERY_LIMIT_SIZE = 200_000
# Lets tests exercise the row cap without a 200,000-row table.
QUERY_LIMIT_ENV = "NEUROFS_EMULATOR_CAVE_QUERY_LIMIT"
ARROW_TYPE = "data.arrow"
PANDAS_VERSION = "2.2.3"

M2 = "/materialize/api/v2/datastack/{datastack}"
M3 = "/materialize/api/v3/datastack/{datastack}"


def query_limit() -> int:
    """The default row cap: the environment's, else the engine's default."""
    raw = os.environ.get(QUERY_LIMIT_ENV)
    return int(raw) if raw else QUERY_LIMIT_SIZE


class BadRequest(Exception):
    """``abort(400, ...)`` in the materialization engine: answered as werkzeug's HTML page."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _mat_error(exc: EngineError) -> EngineError:
    exc.where = "materializationengine/blueprints/client/common.py"
    return exc


_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def _bool_arg(request: Request, name: str, default: bool) -> bool:
    """flask-restx ``inputs.boolean``; anything else is reqparse's 400."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise BadRequest(BROWSER_400)


def _parse_timestamp(value: str) -> dt.datetime:
    """marshmallow ``AwareDateTime(default_timezone=utc)``, then naive UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            "Error parsing request body: {'timestamp': ['Not a valid datetime.']}"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


# ------------------------------------------------------------------ query execution


# Where a live query's rows come from: the frozen table alone, the production tables alone
# (the table is not frozen in the starting version), or both (changed since that version).
LiveSource = Literal["frozen", "production", "combined"]


class Query:
    """One table query: filters, column selection, paging; the QueryManager's job.

    ``source`` says where a live query's rows come from, which decides its columns."""

    def __init__(
        self,
        table: AnnotationTable,
        body: QueryRequest,
        *,
        apply_notin: bool,
        source: LiveSource = "frozen",
    ) -> None:
        self.table = table
        self.body = body
        self.apply_notin = apply_notin
        self.source = source
        self.name = table.meta.table_name

    def _filters(self, attr: str) -> dict[str, Any]:
        by_table = getattr(self.body, attr) or {}
        found = by_table.get(self.name) or {}
        return found if isinstance(found, dict) else {}

    def _getter(self, column: str) -> Callable[[Row], Any]:
        """Value of a model column of a row (``id``, ``valid``, flat values, positions)."""
        spec = self.table.spec
        known = {"id", "valid"}
        for f in spec.bound_point_fields:
            known |= {f"{f.name}_supervoxel_id", f"{f.name}_root_id"}
        known |= {f.name for f in spec.scalar_fields}
        known |= {f"{f.name}_position" for f in spec.point_fields}
        if column not in known:
            raise _mat_error(
                EngineError(
                    f"type object '{self.name}' has no attribute '{column}'",
                    exc_type="AttributeError",
                )
            )
        if column == "id":
            return lambda r: r.id
        if column == "valid":
            return lambda r: True
        return lambda r: r.values.get(column)

    def predicates(self) -> list[Callable[[Row], bool]]:
        preds: list[Callable[[Row], bool]] = []

        def add(
            attr: str, make: Callable[[Callable[[Row], Any], Any], Callable[[Row], bool]]
        ) -> None:
            for column, value in self._filters(attr).items():
                preds.append(make(self._getter(column), value))

        def isin(get: Callable[[Row], Any], values: Any) -> Callable[[Row], bool]:
            allowed = set(values) if isinstance(values, list) else {values}
            return lambda r: get(r) in allowed

        def notin(get: Callable[[Row], Any], values: Any) -> Callable[[Row], bool]:
            banned = set(values) if isinstance(values, list) else {values}
            return lambda r: get(r) not in banned

        def compare(op: Callable[[Any, Any], bool]) -> Callable[..., Callable[[Row], bool]]:
            def make(get: Callable[[Row], Any], value: Any) -> Callable[[Row], bool]:
                return lambda r: (v := get(r)) is not None and op(v, value)

            return make

        def spatial(get: Callable[[Row], Any], box: Any) -> Callable[[Row], bool]:
            lo, hi = box[0], box[1]

            def inside(r: Row) -> bool:
                p = get(r)
                return p is not None and all(lo[i] <= p[i] <= hi[i] for i in range(3))

            return inside

        def regex(get: Callable[[Row], Any], pattern: Any) -> Callable[[Row], bool]:
            compiled = re.compile(str(pattern))
            return lambda r: isinstance(v := get(r), str) and compiled.search(v) is not None

        add("filter_in_dict", isin)
        if self.apply_notin:
            add("filter_notin_dict", notin)
        add("filter_equal_dict", lambda get, v: lambda r: get(r) == v)
        add("filter_greater_dict", compare(lambda a, b: a > b))
        add("filter_less_dict", compare(lambda a, b: a < b))
        add("filter_greater_equal_dict", compare(lambda a, b: a >= b))
        add("filter_less_equal_dict", compare(lambda a, b: a <= b))
        add("filter_spatial_dict", spatial)
        add("filter_regex_dict", regex)
        return preds

    def _id_range(self) -> tuple[int, int | None, bool]:
        """``lo <= id < hi`` implied by the filters on ``id`` (the primary key's index), and
        whether those bounds are the whole of the filters (so counting needs no scan)."""
        lo, hi, exact = 0, None, True
        ranges = {
            "filter_greater_dict": lambda v: (v + 1, None),
            "filter_greater_equal_dict": lambda v: (v, None),
            "filter_less_dict": lambda v: (0, v),
            "filter_less_equal_dict": lambda v: (0, v + 1),
            "filter_equal_dict": lambda v: (v, v + 1),
        }
        for attr in (
            *ranges,
            "filter_in_dict",
            "filter_notin_dict",
            "filter_spatial_dict",
            "filter_regex_dict",
        ):
            for column, value in self._filters(attr).items():
                if column != "id" or attr not in ranges or not _is_int(value):
                    exact = False
                    continue
                low, high = ranges[attr](value)
                lo = max(lo, low)
                hi = high if hi is None else hi if high is None else min(hi, high)
        return lo, hi, exact

    def rows(self, when: dt.datetime) -> Iterator[Row]:
        """The rows valid at ``when`` that pass the filters, in id order, computed lazily: a
        page costs the rows it skips and takes, not the table."""
        preds = self.predicates()
        lo, hi, _ = self._id_range()
        for row in self.table.scan(lo, hi):
            if row.valid_at(when) and all(p(row) for p in preds):
                yield row

    def count(self, when: dt.datetime) -> int:
        """How many rows :meth:`rows` gives."""
        lo, hi, exact = self._id_range()
        if exact:
            self.predicates()  # unknown columns are refused all the same
            return self.table.count_valid(when, lo, hi)
        return sum(1 for _ in self.rows(when))

    def columns(self, split_positions: bool) -> list[str]:
        """Output columns: all, or the selected ones (non-position first, as the engine
        appends position columns after the others)."""
        spec = self.table.spec
        selected = self.body.select_columns
        if isinstance(selected, dict):
            selected = selected.get(self.name)
        if not selected:
            if self.source == "frozen":
                return spec.mat_columns(split_positions)
            production = spec.production_columns(split_positions)
            if self.source == "production":
                return production
            return [*(c for c in production if c != "created"), "valid"]
        for column in selected:
            self._getter(column)
        points = {f"{f.name}_position" for f in spec.point_fields}
        out = [c for c in selected if c not in points]
        for column in selected:
            if column in points:
                if split_positions:
                    out += [f"{column}_{axis}" for axis in "xyz"]
                else:
                    out.append(column)
        return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _arrow_type(table: AnnotationTable, column: str, scaled: bool) -> pa.DataType:
    spec = table.spec
    kinds = {f.name: f.kind for f in spec.scalar_fields}
    if column == "valid":
        return pa.bool_()
    if column == "created":  # pd.to_datetime(..., utc=True) in fix_columns_with_query
        return pa.timestamp("ns", tz="UTC")
    if column.endswith(("_position_x", "_position_y", "_position_z")):
        return pa.float64() if scaled else pa.int64()
    if column.endswith("_position"):
        return pa.list_(pa.float64() if scaled else pa.int64())
    kind = kinds.get(column)
    if kind == "float":
        return pa.float64()
    if kind == "str":
        return pa.string()
    if kind == "bool":
        return pa.bool_()
    return pa.int64()


_PANDAS_TYPES = {
    pa.int64(): ("int64", "int64"),
    pa.float64(): ("float64", "float64"),
    pa.bool_(): ("bool", "bool"),
    pa.string(): ("unicode", "object"),
}


def _pandas_metadata(schema: pa.Schema, rows: int) -> bytes:
    """The ``pandas`` schema metadata ``RecordBatch.from_pandas`` writes (RangeIndex)."""
    columns = []
    for field in schema:
        metadata: dict[str, str] | None = None
        if field.type in _PANDAS_TYPES:
            pandas_type, numpy_type = _PANDAS_TYPES[field.type]
        elif pa.types.is_timestamp(field.type):
            pandas_type, numpy_type = "datetimetz", "datetime64[ns]"
            metadata = {"timezone": str(field.type.tz)}
        else:  # a list column (positions not split)
            pandas_type, numpy_type = f"list[{field.type.value_type}]", "object"
        columns.append(
            {
                "name": field.name,
                "field_name": field.name,
                "pandas_type": pandas_type,
                "numpy_type": numpy_type,
                "metadata": metadata,
            }
        )
    meta = {
        "index_columns": [{"kind": "range", "name": None, "start": 0, "stop": rows, "step": 1}],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": columns,
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": PANDAS_VERSION,
    }
    return json.dumps(meta).encode()


def arrow_stream(
    table: AnnotationTable,
    records: list[dict[str, Any]],
    columns: list[str],
    *,
    scaled: bool,
    compression: str | None,
) -> bytes:
    """One record batch in an Arrow IPC stream, like ``create_query_response``."""
    fields = [pa.field(c, _arrow_type(table, c, scaled)) for c in columns]
    schema = pa.schema(fields)
    arrays = [
        pa.array([r.get(c) for r in records], type=f.type)
        for c, f in zip(columns, fields, strict=True)
    ]
    schema = schema.with_metadata({b"pandas": _pandas_metadata(schema, len(records))})
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, schema, options=options) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def _epoch_ms(value: Any) -> Any:
    """``to_json``'s default ``date_format="epoch"``: datetimes as integer milliseconds."""
    if isinstance(value, dt.datetime):
        return (value - _EPOCH) // dt.timedelta(milliseconds=1)
    return value


_EPOCH = dt.datetime(1970, 1, 1)


def records_json(records: list[dict[str, Any]], columns: list[str]) -> bytes:
    """``DataFrame.to_json(orient="records")``: compact, ASCII, forward slashes escaped."""
    # Only ``created`` holds times; the other cells go through as they are.
    rows = [{c: r.get(c) for c in columns} for r in records]
    if "created" in columns:
        for row in rows:
            row["created"] = _epoch_ms(row["created"])
    text = json.dumps(rows, separators=(",", ":"))
    return text.replace("/", "\\/").encode()


class MaterializationEngine:
    """Handlers of the materialization engine over the shared :class:`CaveState`."""

    def __init__(self, state: CaveState, auth: Authenticator, row_cap: int | None = None) -> None:
        self.state = state
        self.auth = auth
        # The deployment's ``QUERY_LIMIT_SIZE``: rows per query, whatever ``limit`` asks.
        self.row_cap = row_cap if row_cap is not None else query_limit()

    def router(self) -> Router:
        router = Router()
        router.add("GET", "/materialize/api/versions", self.api_versions)
        router.add("GET", "/materialize/version", self.server_version)
        for prefix in (M2, M3):
            router.add("GET", prefix + "/versions", self.versions)
            router.add("GET", prefix + "/version/{version:int}", self.version_metadata)
            router.add("GET", prefix + "/metadata", self.versions_metadata)
            router.add("GET", prefix + "/version/{version:int}/tables", self.tables)
            router.add("GET", prefix + "/version/{version:int}/table/{table}/count", self.count)
            router.add(
                "GET", prefix + "/version/{version:int}/table/{table}/metadata", self.table_meta
            )
            router.add("POST", prefix + "/version/{version:int}/table/{table}/query", self.query)
        router.add("GET", M3 + "/version/{version:int}/tables/metadata", self.tables_metadata)
        router.add("POST", M3 + "/query", self.live_query)
        return router

    async def dispatch(self, handler: Callable[[Request], Any], request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except BadRequest as exc:
            return werkzeug_html(400, exc.description)
        except EngineError as exc:
            return _mat_error(exc).response()
        return response

    # ------------------------------------------------------------------ helpers

    def _user(self, request: Request) -> User:
        return self.auth.require(request, "view", request.path_params["datastack"])

    def _version(self, request: Request) -> MatVersion | None:
        return self.state.version(request.path_params["version"])

    def _frozen(self, request: Request) -> tuple[MatVersion, AnnotationTable]:
        """``validate_table_args``: the version and the table frozen in it, or a 404 abort."""
        number: int = request.path_params["version"]
        name = request.path_params["table"]
        version = self.state.version(number)
        if version is None:
            raise EngineError.abort(
                404, f"Analysis version {number} not found for datastack {DATASTACK}"
            )
        if version.table(name) is None or name not in self.state.tables:
            raise EngineError.abort(
                404,
                f"Analysis table '{name}' not found for version {number} in datastack {DATASTACK}",
            )
        return version, self.state.tables[name]

    @staticmethod
    def _check_read(meta: TableMeta, user: User) -> None:
        if meta.read_permission == "PRIVATE" and meta.user_id != str(user.id):
            raise EngineError.abort(401, "Unauthorized: The table can only be read by its owner")

    @staticmethod
    def _version_payload(version: MatVersion) -> dict[str, Any]:
        return VersionMetadata(
            id=version.id,
            datastack=version.datastack,
            version=version.version,
            time_stamp=version.time_stamp,
            valid=version.valid,
            expires_on=version.expires_on,
            status=version.status,
            is_merged=version.is_merged,
        ).dump()

    def _table_payload(self, version: MatVersion, name: str) -> dict[str, Any] | None:
        record = version.table(name)
        table = self.state.tables.get(name)
        if record is None or table is None:
            return None
        out = AnalysisTablePayload(
            id=record.id,
            aligned_volume=record.aligned_volume,
            schema_=record.schema,
            table_name=record.table_name,
            valid=record.valid,
            created=record.created,
        ).dump()
        md = table.meta.joined()
        annotation_table = md.pop("annotation_table", None)
        if annotation_table:
            md["table_name"] = annotation_table
        md.pop("id")
        md.pop("deleted")
        out.update(md)
        return out

    # ------------------------------------------------------------------ routes

    async def api_versions(self, request: Request) -> Response:
        return flask_json([2, 3])

    async def server_version(self, request: Request) -> Response:
        return flask_json(SERVER_VERSION)

    async def versions(self, request: Request) -> Response:
        self._user(request)
        expired = _bool_arg(request, "expired", False)
        out = [v.version for v in self.state.versions if expired or v.valid]
        return restx_json(out)

    async def version_metadata(self, request: Request) -> Response:
        self._user(request)
        version = self._version(request)
        if version is None:
            return restx_json("No version found", 404)
        return restx_json(self._version_payload(version))

    async def versions_metadata(self, request: Request) -> Response:
        self._user(request)
        expired = _bool_arg(request, "expired", False)
        found = [self._version_payload(v) for v in self.state.versions if expired or v.valid]
        if not found:
            return restx_json("No valid versions found", 404)
        return restx_json(found)

    async def tables(self, request: Request) -> Response:
        self._user(request)
        version = self._version(request)
        if version is None:
            return restx_json(None, 404)
        names = [t.table_name for t in version.tables if t.valid]
        if not names:
            return restx_json(None, 404)
        return restx_json(names)

    async def tables_metadata(self, request: Request) -> Response:
        self._user(request)
        version = self._version(request)
        if version is None:
            raise EngineError("'NoneType' object is not subscriptable", exc_type="TypeError")
        out = [self._table_payload(version, t.table_name) for t in version.tables]
        found = [t for t in out if t is not None]
        if not found:
            return restx_json([], 404)
        return restx_json(found)

    async def table_meta(self, request: Request) -> Response:
        self._user(request)
        number: int = request.path_params["version"]
        name = request.path_params["table"]
        version = self.state.version(number)
        payload = self._table_payload(version, name) if version is not None else None
        if payload is None:
            return restx_json(
                f"No table named '{name}' found for version '{number}' in datastack '{DATASTACK}'",
                404,
            )
        return restx_json(payload)

    async def count(self, request: Request) -> Response:
        self._user(request)
        version, table = self._frozen(request)
        return restx_json(table.count_valid(version.time_stamp))

    def _body(self, raw: bytes, fields: Any) -> QueryRequest:
        if not raw:
            raise BadRequest(
                "Failed to decode JSON object: Expecting value: line 1 column 1 (char 0)"
            )
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"Failed to decode JSON object: {exc}") from None
        try:
            cleaned = load_body(fields, data)
        except SchemaValidationError as exc:
            raise BadRequest(f"Error parsing request body: {exc.messages}") from None
        if "timestamp" in cleaned:
            cleaned["timestamp"] = _parse_timestamp(cleaned["timestamp"])
        try:
            return QueryRequest.model_validate(cleaned)
        except ValidationError as exc:
            raise BadRequest(f"Error parsing request body: {exc.errors()}") from None

    async def query(self, request: Request) -> Response:
        user = self._user(request)
        body = self._body(await request.body(), SIMPLE_QUERY_FIELDS)
        version, table = self._frozen(request)
        self._check_read(table.meta, user)
        return self._answer(request, table, version.time_stamp, body, apply_notin=False)

    async def live_query(self, request: Request) -> Response:
        user = self.auth.require(request, "view", request.path_params["datastack"])
        body = self._body(await request.body(), LIVE_QUERY_FIELDS)
        assert body.table is not None and body.timestamp is not None
        table = self.state.tables.get(body.table)
        if table is None:
            raise EngineError("'NoneType' object is not subscriptable", exc_type="TypeError")
        self._check_read(table.meta, user)
        when = body.timestamp
        start = self._closest_version(when)
        source: LiveSource = "frozen"
        if start.table(body.table) is None:
            source = "production"
        elif table.meta.last_modified > min(start.time_stamp, when):
            source = "combined"
        return self._answer(
            request, table, when, body, apply_notin=True, source=source, start=start.time_stamp
        )

    def _closest_version(self, when: dt.datetime) -> MatVersion:
        """``get_closest_versions``: the newest valid version at or before ``when``, else the
        oldest one after it."""
        valid = [v for v in self.state.versions if v.valid]
        past = [v for v in valid if v.time_stamp <= when]
        if past:
            return max(past, key=lambda v: v.time_stamp)
        future = [v for v in valid if v.time_stamp >= when]
        if not future:
            raise BadRequest(
                "there is no future or past version for this timestamp, is materialization broken?"
            )
        return min(future, key=lambda v: v.time_stamp)

    def _answer(
        self,
        request: Request,
        table: AnnotationTable,
        when: dt.datetime,
        body: QueryRequest,
        *,
        apply_notin: bool,
        source: LiveSource = "frozen",
        start: dt.datetime | None = None,
    ) -> Response:
        return_pyarrow = _bool_arg(request, "return_pyarrow", True)
        split_positions = _bool_arg(request, "split_positions", False)
        ipc_compress = _bool_arg(request, "ipc_compress", True)
        arrow_format = _bool_arg(request, "arrow_format", False)
        get_count = _bool_arg(request, "count", False)
        direct_sql_pandas = _bool_arg(request, "direct_sql_pandas", False)
        meta = table.meta
        max_limit = self.row_cap
        limit = body.limit if body.limit is not None else max_limit
        limit = min(limit, max_limit)
        offset = body.offset or 0
        query = Query(table, body, apply_notin=apply_notin, source=source)
        resolution = body.desired_resolution or list(meta.voxel_resolution)
        vx, vy, vz = meta.voxel_resolution
        scale = (vx / resolution[0], vy / resolution[1], vz / resolution[2])
        scaled = any(s != 1 for s in scale)
        if get_count:
            columns = ["count"]
            records: list[dict[str, Any]] = [{"count": max(query.count(when) - offset, 0)}]
            limited = False
        else:
            page = list(itertools.islice(query.rows(when), offset, offset + limit))
            columns = query.columns(split_positions)
            if source == "production" and not page:
                # combine_queries drops ``created`` when the production rows are none.
                columns = [c for c in columns if c != "created"]
            records = [
                {
                    **mat_record(table, r, split_positions, scale if scaled else None),
                    "created": r.created,
                    # Rows only the production tables hold have no frozen ``valid``.
                    "valid": True if start is None or r.valid_at(start) else None,
                }
                for r in page
            ]
            limited = len(page) == limit
        warnings: list[str] = []
        if limited:
            warnings.append(f'201 - "Limited query to {limit} rows')
        if meta.notice_text is not None:
            warnings.append(f"Table Owner Notice on {meta.table_name}: {meta.notice_text}")
        if not direct_sql_pandas:
            warnings.append(
                "Query was executed using streaming via CSV, which can mangle types. Please "
                "upgrade to caveclient > 8.0.0 to avoid type mangling. Because you may have "
                "been affected by mangled types, this change is breaking, but it should "
                "provide an improved experience."
            )
        column_names = {meta.table_name: {c: c for c in self._model_columns(query, columns)}}
        accept = request.headers.get("accept-encoding", "")
        if return_pyarrow:
            if not arrow_format:
                warnings.append(
                    "Response is in pyarrow IPC format. If you encounter a parsing error, please "
                    "upgrade CAVEClient to >=5.9.0 with: pip install --upgrade caveclient. To "
                    "suppress this warning, pass arrow_format=True in your query parameters."
                )
            compression = None
            if ipc_compress:
                if "lz4" in accept:
                    compression = "lz4"
                elif "zstd" in accept:
                    compression = "zstd"
            if get_count:
                body_bytes = _count_stream(records[0]["count"])
            else:
                body_bytes = arrow_stream(
                    table, records, columns, scaled=scaled, compression=compression
                )
            media_type = ARROW_TYPE
        else:
            body_bytes = records_json(records, columns)
            media_type = "application/json"
        response = Response(body_bytes, media_type=media_type)
        for warning in warnings:
            response.headers.append("Warning", warning.replace("\n", " "))
        for value in resolution:
            response.headers.append("dataframe_resolution", str(float(value)))
        response.headers.append("column_names", repr(column_names))
        return _gzip_if_accepted(response, accept)

    @staticmethod
    def _model_columns(query: Query, columns: list[str]) -> list[str]:
        out: list[str] = []
        for c in columns:
            base = c[:-2] if c.endswith(("_position_x", "_position_y", "_position_z")) else c
            if base not in out:
                out.append(base)
        return out


def _count_stream(count: int) -> bytes:
    schema = pa.schema([pa.field("count", pa.int64())])
    schema = schema.with_metadata({b"pandas": _pandas_metadata(schema, 1)})
    batch = pa.RecordBatch.from_arrays([pa.array([count], type=pa.int64())], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def _gzip_if_accepted(response: Response, accept_encoding: str) -> Response:
    """``after_request``: gzip 2xx bodies when the client accepts gzip."""
    if "gzip" not in accept_encoding.lower() or not 200 <= response.status_code < 300:
        return response
    # Level 1, not Flask's 9: clients see the same bytes once inflated, and a large query
    # answer compresses ten times faster.
    compressed = gzip.compress(bytes(response.body), compresslevel=1, mtime=0)
    response.body = compressed
    response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Content-Length"] = str(len(compressed))
    return response
