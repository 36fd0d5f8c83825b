"""The CAVE services as neurofs uses them (CAVEconnectome's AnnotationEngine,
MaterializationEngine and CAVEclient ``caveclient/endpoints.py``).

The global server (info, schema, neuroglancer states) is the source's URL; annotation and
materialization live on each datastack's ``local_server``. Every request carries
``Authorization: Bearer <token>`` to those servers only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, TypeAdapter

from neurofs import secrets
from neurofs.config import SourceConfig
from neurofs.errors import (
    InvalidContent,
    NotFound,
    RemoteError,
)
from neurofs.io.http import BodySink, HttpClient
from neurofs.io.memo import as_fetched
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats
from neurofs.neuroglancer import ViewerKind, kind_of, linked_state_url, version_url
from neurofs.sources.cave.models import (
    AnnotationRow,
    Count,
    DatastackInfo,
    IsLatest,
    LineageGraph,
    NodeId,
    QueryCount,
    StateId,
    TableMetadata,
    TableSchema,
    User,
    Version,
    ViewerVersion,
)
from neurofs.sources.clients import ApiClient, ClientMaker
from neurofs.sources.payloads import Shown, adapted, shown, validated

# What a listing's ``index`` function makes of it (see ``Memo.view``).
D = TypeVar("D")

# A cheap route that answers when the global server is up.
PROBE_PATH = "schema/api/v2/type"
# middle_auth's "who am I" on the global server.
USER_PATH = "auth/api/v1/user/cache"
# The viewer caveclient links a datastack's states to when its info names none
# (``caveclient/endpoints.py``, ``fallback_ngl_endpoint``).
FALLBACK_VIEWER = "https://neuroglancer.neuvue.io/"
# Rows asked per query: the materialization engine's default cap. A deployment may cap lower
# (its QUERY_LIMIT_SIZE); paging goes on until the query's count is read (``_all_rows``).
QUERY_LIMIT = 200_000
# The annotation engine takes at most this many rows per request.
POST_LIMIT = 10_000
# Tables are read whole into memory: a longer one is refused (EIO) instead. Tables this
# long are shown as pages (``sources/cave/pages.py``), each read on its own.
MAX_ROWS = 2_000_000

_EMBEDDED_STATUS = re.compile(r"^\s*(\d{3})\b")
_NAMES = TypeAdapter(list[str])
_VERSIONS = TypeAdapter(list[Version])
_COUNT = TypeAdapter(Count)
_STATE_ID: TypeAdapter[str] = TypeAdapter(StateId)
_VIEWER_VERSION: TypeAdapter[ViewerVersion] = TypeAdapter(ViewerVersion)
_ROWS = TypeAdapter(list[AnnotationRow])
_ROOTS: TypeAdapter[list[int]] = TypeAdapter(
    Annotated[list[NodeId], Field(min_length=1, max_length=1)]
)
_QUERY_COUNT: TypeAdapter[list[QueryCount]] = TypeAdapter(
    Annotated[list[QueryCount], Field(min_length=1, max_length=1)]
)
# Ids ``lo <= id < hi`` (no ``hi``: every id from ``lo`` on).
IdRange = tuple[int, int | None]


def _range_text(ids: IdRange | None) -> str:
    if ids is None:
        return ""
    lo, hi = ids
    return f" (ids {lo}–{hi - 1})" if hi is not None else f" (ids from {lo})"


def _names(data: Any, what: str) -> list[str]:
    """The table names of a listing, sorted, each once (or RemoteError)."""
    names: list[str] = adapted(_NAMES, data, what)
    return sorted(set(names))


def graph_table(segmentation_source: str | None) -> str | None:
    """The ChunkedGraph table of a datastack's ``segmentation_source``
    (``graphene://https://host/segmentation/table/<table>``): its last path segment, as
    caveclient's ``chunkedgraph`` takes it. None when the segmentation is no graphene one."""
    if not segmentation_source or not segmentation_source.startswith("graphene://"):
        return None
    return segmentation_source.split("/")[-1] or None


def token_from_file(url: str) -> str | None:
    """The official client's token file: ``{netloc}-cave-secret.json`` wins over
    ``cave-secret.json`` in ``~/.cloudvolume/secrets``."""
    secrets_dir = Path.home() / ".cloudvolume" / "secrets"
    for name in (f"{urlsplit(url).netloc}-cave-secret.json", "cave-secret.json"):
        try:
            data = json.loads((secrets_dir / name).read_text())
        except (OSError, ValueError):
            continue
        token = data.get("token") if isinstance(data, dict) else None
        if isinstance(token, str) and token:
            return token
    return None


def real_status(status: int, message: str) -> tuple[int, str] | None:
    """The status CAVE meant, where the answer's own misleads (for ``io/status.TABLE``).

    The annotation and materialization engines turn most refusals into HTTP 500 whose
    message starts with the real status ("422 Unprocessable Entity: ..."), or whose body is
    the engine's schema errors for the request; terms of service not accepted is an error
    that says so, whatever its status.
    """
    if "missing_tos" in message:
        return 403, f"terms of service not accepted: {message}"
    if status != 500:
        return None
    if "schema_errors" in message or "Input payload validation failed" in message:
        # The request body failed the engine's own schema: a refusal, not a server fault.
        return 422, message
    m = _EMBEDDED_STATUS.match(message.split(":", 1)[-1] if message.startswith("{") else message)
    real = int(m.group(1)) if m else None
    # Only a client error is a refusal; "500 ..." or a number that is no error status leaves
    # the answer a server failure.
    return (real, message) if real is not None and 400 <= real < 500 else None


class CaveApi(ApiClient):
    def __init__(
        self,
        config: SourceConfig,
        stats: Stats,
        responses: ResponseStore | None,
        *,
        ttl: float = 30.0,
    ) -> None:
        self._token = config.resolved_token() or token_from_file(config.url)
        secrets.register(self._token)
        self._make = ClientMaker(config, stats, responses, "Authorization", "Bearer", real_status)
        super().__init__(self._client(config.url), ttl=ttl)

    @property
    def authenticated(self) -> bool:
        return self._token is not None

    def _client(self, url: str) -> HttpClient:
        return self._make(url, self._token)

    # ------------------------------------------------------------------ global server

    async def me(self) -> User:
        """middle_auth's user cache: who the token belongs to (AccessDenied when it is
        refused). A token whose terms of service are not accepted is answered, with them in
        ``missing_tos``. Always asked of the server, never answered from disk."""
        data = await self.http.get_json(USER_PATH, keep=False, offline=False)
        return validated(User, data, "user")

    async def info(self, datastack: str) -> Shown[DatastackInfo]:
        async def fetch() -> Shown[DatastackInfo]:
            data = await self.http.get_json(f"info/api/v2/datastack/full/{datastack}")
            return shown(DatastackInfo, data, f"datastack {datastack}")

        return await self.memo.get(("info", datastack), fetch)

    async def schema(self, schema_type: str) -> Shown[TableSchema]:
        async def fetch() -> Shown[TableSchema]:
            data = await self.http.get_json(f"schema/api/v2/type/{schema_type}")
            return shown(TableSchema, data, f"schema {schema_type}")

        return await self.memo.get(("schema", schema_type), fetch, immutable=True)

    async def state(self, state_id: str) -> Any:
        """A neuroglancer state: the viewer's JSON, shown as it is (neurofs reads nothing in
        it)."""
        return await self.memo.get(
            ("state", state_id),
            lambda: self.http.get_json(f"nglstate/api/v1/{state_id}"),
            immutable=True,  # a state id never changes meaning
        )

    async def post_state(self, state: Any) -> str:
        """Store a new state; its id."""
        answer = await self.http.send_json("POST", "nglstate/api/v1/post", state)
        state_id: str = adapted(_STATE_ID, answer, "nglstate post")
        return state_id

    def state_url(self, state_id: str) -> str:
        """Where the state server keeps a state (the URL a viewer loads it from)."""
        return self.http.url(f"nglstate/api/v1/{state_id}")

    async def viewer_kind(self, viewer: str) -> ViewerKind:
        """Which form of link the neuroglancer deployment at ``viewer`` reads, from its
        ``version.json`` as caveclient decides it (none, a 404: the seung-lab fork). The
        deployment is another origin: asked without the token."""

        async def fetch() -> ViewerKind:
            client = self.client_at(viewer, lambda url: self._make(url, None))
            try:
                data = await client.get_json(version_url(viewer))
            except NotFound:
                return kind_of(None)
            return kind_of(adapted(_VIEWER_VERSION, data, f"{viewer} version.json"))

        return await self.memo.get(("viewer", viewer), fetch)

    async def state_link(self, datastack: str, state_id: str) -> str:
        """The neuroglancer link of a state: what caveclient's
        ``state.build_neuroglancer_url(state_id)`` gives for the datastack's client (its
        viewer is the info's ``viewer_site``)."""
        site = (await self.info(datastack)).model.viewer_site
        viewer = FALLBACK_VIEWER if site is None else site
        if not viewer:
            raise RemoteError(f"datastack {datastack}: its viewer_site is empty")
        return linked_state_url(viewer, self.state_url(state_id), await self.viewer_kind(viewer))

    # ------------------------------------------------------------------ local servers

    async def local(self, datastack: str) -> tuple[HttpClient, str]:
        """The datastack's local server client and its aligned volume name."""
        info = (await self.info(datastack)).model
        client = self.client_at(info.local_server, self._client)
        volume = info.aligned_volume.name if info.aligned_volume is not None else None
        if not volume:  # info.json still shows what the datastack is
            raise RemoteError(f"datastack {datastack}: no aligned volume")
        return client, volume

    async def _av(self, datastack: str, path: str) -> tuple[HttpClient, str]:
        client, volume = await self.local(datastack)
        return client, f"annotation/api/v2/aligned_volume/{volume}/{path}"

    async def tables(self, datastack: str) -> list[str]:
        """The datastack's tables."""
        return await self.tables_indexed(datastack, as_fetched)

    async def tables_indexed(self, datastack: str, index: Callable[[list[str]], D]) -> D:
        """The datastack's tables, as ``index`` arranges them (once per fetch)."""

        async def fetch() -> list[str]:
            client, path = await self._av(datastack, "table")
            return _names(await client.get_json(path), "tables")

        return await self.memo.view(("tables", datastack), fetch, index)

    async def table_metadata(
        self, datastack: str, table: str, fresh: bool = False
    ) -> Shown[TableMetadata]:
        async def fetch() -> Shown[TableMetadata]:
            client, path = await self._av(datastack, f"table/{table}")
            return shown(TableMetadata, await client.get_json(path), f"table {table}")

        return await self.memo.get(("metadata", datastack, table), fetch, fresh=fresh)

    async def table_schema(self, datastack: str, table: str) -> Shown[TableSchema]:
        """The schema of a table's annotations (named by its metadata)."""
        meta = await self.table_metadata(datastack, table)
        return await self.schema(meta.model.schema_type)

    async def count(self, datastack: str, table: str) -> int:
        async def fetch() -> int:
            client, path = await self._av(datastack, f"table/{table}/count")
            count: int = adapted(_COUNT, await client.get_json(path), f"count of {table}")
            return count

        return await self.memo.get(("count", datastack, table), fetch)

    async def rows(
        self,
        datastack: str,
        table: str,
        at: datetime | None = None,
        ids: IdRange | None = None,
    ) -> list[dict[str, Any]]:
        """Every row valid at ``at`` (default: now), as flat records, in pages of the server's
        row cap; with ``ids``, only those with ``lo <= id < hi``. Root ids are those of that
        instant."""
        client, _ = await self.local(datastack)
        path = f"materialize/api/v3/datastack/{datastack}/query"
        # The service takes the time as ISO text; one instant for all pages keeps them consistent.
        when = (at or datetime.now(UTC)).isoformat()
        query = {"table": table, "timestamp": when, **_id_filters(table, ids)}
        return await _all_rows(client, path, query, f"rows of {table}{_range_text(ids)}")

    async def versions(self, datastack: str) -> list[int]:
        """The materialized versions."""
        return await self.versions_indexed(datastack, as_fetched)

    async def versions_indexed(self, datastack: str, index: Callable[[list[int]], D]) -> D:
        """The materialized versions, as ``index`` arranges them (once per fetch)."""

        async def fetch() -> list[int]:
            client, _ = await self.local(datastack)
            data = await client.get_json(f"materialize/api/v3/datastack/{datastack}/versions")
            versions: list[int] = adapted(_VERSIONS, data, "versions")
            return sorted(versions)

        return await self.memo.view(("versions", datastack), fetch, index)

    async def version_tables(self, datastack: str, version: int) -> list[str]:
        """The tables of a materialized version."""
        return await self.version_tables_indexed(datastack, version, as_fetched)

    async def version_tables_indexed(
        self, datastack: str, version: int, index: Callable[[list[str]], D]
    ) -> D:
        """The tables of a materialized version, as ``index`` arranges them (once)."""

        async def fetch() -> list[str]:
            client, _ = await self.local(datastack)
            data = await client.get_json(
                f"materialize/api/v2/datastack/{datastack}/version/{version}/tables"
            )
            return _names(data, "version tables")

        # A materialized version never changes.
        return await self.memo.view(("vtables", datastack, version), fetch, index, immutable=True)

    async def version_rows(
        self, datastack: str, version: int, table: str, ids: IdRange | None = None
    ) -> list[dict[str, Any]]:
        """The rows of ``table`` frozen in ``version`` (with ``ids``: ``lo <= id < hi``)."""
        client, _ = await self.local(datastack)
        path = f"materialize/api/v3/datastack/{datastack}/version/{version}/table/{table}/query"
        what = f"rows of {table}{_range_text(ids)} in version {version}"
        return await _all_rows(client, path, _id_filters(table, ids), what)

    async def version_count(self, datastack: str, version: int, table: str) -> int:
        """The rows of a table frozen in a materialized version (held for the mount: a version
        never changes)."""

        async def fetch() -> int:
            client, _ = await self.local(datastack)
            path = f"materialize/api/v2/datastack/{datastack}/version/{version}/table/{table}/count"
            what = f"count of {table} in version {version}"
            count: int = adapted(_COUNT, await client.get_json(path), what)
            return count

        return await self.memo.get(("vcount", datastack, version, table), fetch, immutable=True)

    async def version_query_count(
        self, datastack: str, version: int, table: str, ids: IdRange
    ) -> int:
        """The rows of a frozen table with ids in ``ids`` (the query's own count)."""
        client, _ = await self.local(datastack)
        path = f"materialize/api/v3/datastack/{datastack}/version/{version}/table/{table}/query"
        what = f"rows of {table}{_range_text(ids)} in version {version}"
        return await _query_count(client, path, _id_filters(table, ids), what)

    async def version_arrow_page(
        self,
        datastack: str,
        version: int,
        table: str,
        offset: int,
        limit: int,
        ids: IdRange | None = None,
    ) -> bytes:
        """Rows ``offset`` to ``offset + limit`` of a frozen table (with ``ids``: of those
        with ``lo <= id < hi``) as the engine's Arrow IPC stream (what the official client
        reads), positions split into x/y/z columns."""
        client, _ = await self.local(datastack)
        path = f"materialize/api/v3/datastack/{datastack}/version/{version}/table/{table}/query"
        return await client.query_content(
            path,
            {**_id_filters(table, ids), "offset": offset, "limit": limit},
            params={"return_pyarrow": "true", "arrow_format": "true", "split_positions": "true"},
        )

    async def table_text(
        self,
        datastack: str,
        table: str,
        how: Hashable,
        render: Callable[[], Awaitable[bytes]],
    ) -> bytes:
        """``render()``, a text of the table's rows rendered ``how``, held with the table's
        answers until ``forget_table``."""
        return await self.memo.get(("text", datastack, table, how), render)

    def forget_table(self, datastack: str, table: str) -> None:
        """Drop what was held of a table after it changed (and the listing showing it)."""
        self.memo.invalidate(
            lambda k: (
                (isinstance(k, tuple) and len(k) >= 3 and k[1:3] == (datastack, table))
                or k == ("tables", datastack)
            )
        )

    async def version_text(
        self, datastack: str, version: int, table: str, render: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """``render()``, the text of a table in a materialized version, held for the mount:
        a version never changes."""
        return await self.memo.get(
            ("version-text", datastack, version, table), render, immutable=True
        )

    # ------------------------------------------------------------------ ChunkedGraph

    async def _graph(self, datastack: str) -> tuple[HttpClient, str]:
        """The client of the datastack's ChunkedGraph and its routes' prefix. caveclient asks
        the graph on the datastack's local server, whatever host ``segmentation_source``
        names, and takes only the table from it."""
        info = (await self.info(datastack)).model
        table = graph_table(info.segmentation_source)
        if table is None:
            raise NotFound(f"datastack {datastack}: no ChunkedGraph segmentation")
        client = self.client_at(info.local_server, self._client)
        return client, f"segmentation/api/v1/table/{table}"

    async def graph_identity(self, datastack: str) -> str:
        """The datastack's graph: its server and table (root ids name supervoxels within
        one graph, and a datastack may be pointed at another)."""
        client, prefix = await self._graph(datastack)
        return f"{client.base_url}{prefix}"

    async def root_of(self, datastack: str, supervoxel: int) -> int | None:
        """A supervoxel's current root (None: the graph has no such supervoxel). Asked through
        the JSON ``roots`` route, whose 0 for an unknown supervoxel tells it from a failure."""

        async def fetch() -> int | None:
            client, prefix = await self._graph(datastack)
            answer = await client.send_json(
                "POST", f"{prefix}/roots", {"node_ids": [supervoxel]}, idempotent=True
            )
            root: int = adapted(_ROOTS, answer, f"root of {supervoxel}")[0]
            return root or None

        return await self.memo.get(("root", datastack, supervoxel), fetch)

    async def is_root(self, datastack: str, node: int) -> bool:
        """Whether ``node`` is a root of the graph, current or outdated (the graph refuses
        ``is_latest_roots`` of ids that are no roots: a 400)."""

        async def fetch() -> bool:
            client, prefix = await self._graph(datastack)
            try:
                answer = await client.send_json(
                    "POST", f"{prefix}/is_latest_roots", {"node_ids": [node]}, idempotent=True
                )
            except InvalidContent:
                return False
            latest = validated(IsLatest, answer, f"is_latest_roots of {node}").is_latest
            if len(latest) != 1:
                raise RemoteError(f"is_latest_roots of {node}: {len(latest)} answers for one id")
            return True

        # A root id never stops being one.
        return await self.memo.get(("is-root", datastack, node), fetch, immutable=True)

    async def stream_leaves(self, datastack: str, root: int, sink: BodySink) -> None:
        """A root's supervoxels, in the graph's order: the route's answer (``{"leaf_ids":
        [...]}``, whole, however many) handed to ``sink`` as it arrives."""
        client, prefix = await self._graph(datastack)
        await client.get_streamed(f"{prefix}/node/{root}/leaves", sink)

    async def lineage(self, datastack: str, root: int) -> Shown[LineageGraph]:
        """The lineage graph of ``root`` as caveclient's ``get_lineage_graph(root)`` asks it
        (no time bounds: the server's from the beginning until now)."""

        async def fetch() -> Shown[LineageGraph]:
            client, prefix = await self._graph(datastack)
            answer = await client.send_json(
                "POST", f"{prefix}/lineage_graph_multiple", {"root_ids": [root]}, idempotent=True
            )
            return shown(LineageGraph, answer, f"lineage of {root}")

        # Changeable: a current root gains successors when it is edited.
        return await self.memo.get(("lineage", datastack, root), fetch)

    async def send(self, datastack: str, method: str, path: str, body: Any) -> Any:
        client, full = await self._av(datastack, path)
        return await client.send_json(method, full, body)


def _id_filters(table: str, ids: IdRange | None) -> dict[str, Any]:
    """The query filters of ``lo <= id < hi`` (the primary key: the engine's index)."""
    if ids is None:
        return {}
    lo, hi = ids
    filters: dict[str, Any] = {"filter_greater_equal_dict": {table: {"id": lo}}}
    if hi is not None:
        filters["filter_less_dict"] = {table: {"id": hi}}
    return filters


# Positions come split (<pt>_position_x/_y/_z) whatever is asked: the engine's QueryManager
# selects ST_X/ST_Y/ST_Z; only the official client joins them.
_QUERY_PARAMS = {"return_pyarrow": "false", "split_positions": "true"}


async def _query_count(client: HttpClient, path: str, query: dict[str, Any], what: str) -> int:
    """How many rows a materialization query holds (the same query with ``count=true``)."""
    counted = await client.send_json(
        "POST", path, query, params={**_QUERY_PARAMS, "count": "true"}, idempotent=True
    )
    count: int = adapted(_QUERY_COUNT, counted, f"{what} (count)")[0].count
    return count


async def _all_rows(
    client: HttpClient, path: str, query: dict[str, Any], what: str, *, most: int = MAX_ROWS
) -> list[dict[str, Any]]:
    """Every row of a materialization query, page by page.

    The engine caps every answer at its deployment's ``QUERY_LIMIT_SIZE`` whatever ``limit``
    asks, and says so only in a ``Warning`` header some deployments omit; a short page is
    therefore no sign of the end. The query's own count (``count=true``, same filters) is:
    pages are asked from where the last one ended until that many rows are in. A server
    that stops short of its count, repeats a row or gives more rows than it counted is
    refused (RemoteError: EIO and an errors.log line), never shown as a complete table; so is
    a query of more than ``most`` rows, which would not fit in memory."""
    expected = await _query_count(client, path, query, what)
    if expected > most:
        raise RemoteError(f"{what}: {expected} rows, more than {most} can be read at once")
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    while len(rows) < expected:
        page = await client.send_json(
            "POST",
            path,
            {**query, "offset": len(rows), "limit": min(QUERY_LIMIT, expected - len(rows))},
            params=_QUERY_PARAMS,
            idempotent=True,
        )
        # Checked as AnnotationRow, kept as the plain dictionaries they are.
        valid: list[dict[str, Any]] = adapted(_ROWS, page, what)
        if not valid:
            raise RemoteError(f"{what}: the server gave {len(rows)} of its {expected} rows")
        for row in valid:
            row_id = row["id"]
            if row_id in seen:
                raise RemoteError(f"{what}: the server repeats row {row_id}")
            seen.add(row_id)
            rows.append(row)
    if len(rows) > expected:
        raise RemoteError(f"{what}: the server gave {len(rows)} rows but counts {expected}")
    return rows
