"""The CAVE services as neurofs uses them (shared api/cave.md).

The global server (info, schema, neuroglancer states) is the source's URL; annotation and
materialization live on each datastack's ``local_server``. Every request carries
``Authorization: Bearer <token>`` to those servers only.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from neurofs import secrets
from neurofs.config import SourceConfig
from neurofs.errors import (
    AccessDenied,
    Conflict,
    InvalidContent,
    NotFound,
    RemoteError,
)
from neurofs.io.http import HttpClient, RetryPolicy
from neurofs.io.memo import Memo
from neurofs.io.responses import ResponseStore
from neurofs.io.stats import Stats

# The materialization service returns at most this many rows per query.
QUERY_LIMIT = 200_000
# The annotation engine takes at most this many rows per request.
POST_LIMIT = 10_000

_EMBEDDED_STATUS = re.compile(r"^\s*(\d{3})\b")


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


def refusal(status: int, message: str) -> Exception | None:
    """CAVE's answers that the status alone misreads.

    The annotation engine turns most refusals into HTTP 500 whose message starts with the
    real status ("422 Unprocessable Entity: ..."); terms of service not accepted is a 403
    whose error says so.
    """
    if "missing_tos" in message:
        return AccessDenied(f"terms of service not accepted: {message}")
    if status != 500:
        return None
    if "schema_errors" in message or "Input payload validation failed" in message:
        # The request body failed the engine's own schema: a refusal, not a server fault.
        return InvalidContent(message)
    m = _EMBEDDED_STATUS.match(message.split(":", 1)[-1] if message.startswith("{") else message)
    real = int(m.group(1)) if m else None
    if real is None or real >= 500:
        return None
    if real in (400, 413, 422):
        return InvalidContent(message)
    if real in (401, 403):
        return AccessDenied(message)
    if real == 404:
        return NotFound(message)
    if real == 409:
        return Conflict(message)
    return RemoteError(message)


class CaveApi:
    def __init__(
        self,
        config: SourceConfig,
        stats: Stats,
        responses: ResponseStore | None,
        *,
        ttl: float = 30.0,
    ) -> None:
        self._config = config
        self._stats = stats
        self._responses = responses
        self._token = config.resolved_token() or token_from_file(config.url)
        secrets.register(self._token)
        self.http = self._client(config.url)
        self._locals: dict[str, HttpClient] = {}
        self.memo = Memo(ttl=ttl)

    def _client(self, url: str) -> HttpClient:
        return HttpClient(
            self._config.name,
            url,
            self._stats,
            auth_headers={"Authorization": f"Bearer {self._token}"} if self._token else None,
            responses=self._responses,
            retry=RetryPolicy(total_seconds=self._config.retry_seconds),
            refusal=refusal,
        )

    async def aclose(self) -> None:
        for client in self._locals.values():
            await client.aclose()

    # ------------------------------------------------------------------ global server

    async def info(self, datastack: str) -> dict[str, Any]:
        async def fetch() -> dict[str, Any]:
            data = await self.http.get_json(f"info/api/v2/datastack/full/{datastack}")
            if not isinstance(data, dict) or not isinstance(data.get("local_server"), str):
                raise RemoteError(f"datastack {datastack}: unexpected answer")
            return data

        return await self.memo.get(("info", datastack), fetch)

    async def schema(self, schema_type: str) -> dict[str, Any]:
        async def fetch() -> dict[str, Any]:
            data = await self.http.get_json(f"schema/api/v2/type/{schema_type}")
            if not isinstance(data, dict):
                raise RemoteError(f"schema {schema_type}: unexpected answer")
            return data

        return await self.memo.get(("schema", schema_type), fetch, immutable=True)

    async def state(self, state_id: str) -> Any:
        return await self.memo.get(
            ("state", state_id),
            lambda: self.http.get_json(f"nglstate/api/v1/{state_id}"),
            immutable=True,  # a state id never changes meaning
        )

    async def post_state(self, state: Any) -> str:
        answer = await self.http.send_json("POST", "nglstate/api/v1/post", state)
        text = str(answer).strip().strip('"')
        state_id = text.rstrip("/").rsplit("/", 1)[-1]
        if not state_id.isdigit():
            raise RemoteError(f"nglstate post: unexpected answer {text[:100]!r}")
        return state_id

    # ------------------------------------------------------------------ local servers

    async def local(self, datastack: str) -> tuple[HttpClient, str]:
        """The datastack's local server client and its aligned volume name."""
        info = await self.info(datastack)
        url = str(info["local_server"])
        client = self._locals.get(url)
        if client is None:
            client = self._locals[url] = self._client(url)
        volume = (info.get("aligned_volume") or {}).get("name")
        if not isinstance(volume, str):
            raise RemoteError(f"datastack {datastack}: no aligned volume")
        return client, volume

    async def _av(self, datastack: str, path: str) -> tuple[HttpClient, str]:
        client, volume = await self.local(datastack)
        return client, f"annotation/api/v2/aligned_volume/{volume}/{path}"

    async def tables(self, datastack: str) -> list[str]:
        async def fetch() -> list[str]:
            client, path = await self._av(datastack, "table")
            data = await client.get_json(path)
            if not isinstance(data, list):
                raise RemoteError("tables: unexpected answer")
            return sorted(str(t) for t in data)

        return await self.memo.get(("tables", datastack), fetch)

    async def table_metadata(
        self, datastack: str, table: str, fresh: bool = False
    ) -> dict[str, Any]:
        if fresh:
            self.forget_table(datastack, table)

        async def fetch() -> dict[str, Any]:
            client, path = await self._av(datastack, f"table/{table}")
            data = await client.get_json(path)
            if not isinstance(data, dict):
                raise RemoteError(f"table {table}: unexpected answer")
            return data

        return await self.memo.get(("metadata", datastack, table), fetch)

    async def count(self, datastack: str, table: str) -> int:
        async def fetch() -> int:
            client, path = await self._av(datastack, f"table/{table}/count")
            data = await client.get_json(path)
            if not isinstance(data, int):
                raise RemoteError(f"count of {table}: unexpected answer")
            return data

        return await self.memo.get(("count", datastack, table), fetch)

    async def rows(self, datastack: str, table: str) -> list[dict[str, Any]]:
        """Every valid row now, as flat records, in pages of the server's row cap."""
        client, _ = await self.local(datastack)
        path = f"materialize/api/v3/datastack/{datastack}/query"
        # The service takes the time as ISO text; one instant for all pages keeps them consistent.
        now = datetime.now(UTC).isoformat()
        rows: list[dict[str, Any]] = []
        while True:
            page = await client.send_json(
                "POST",
                path,
                {"table": table, "timestamp": now, "offset": len(rows), "limit": QUERY_LIMIT},
                params={"return_pyarrow": "false", "split_positions": "false"},
                idempotent=True,
            )
            if not isinstance(page, list):
                raise RemoteError(f"rows of {table}: unexpected answer")
            rows.extend(r for r in page if isinstance(r, dict))
            if len(page) < QUERY_LIMIT:
                return rows

    async def versions(self, datastack: str) -> list[int]:
        async def fetch() -> list[int]:
            client, _ = await self.local(datastack)
            data = await client.get_json(f"materialize/api/v3/datastack/{datastack}/versions")
            if not isinstance(data, list):
                raise RemoteError("versions: unexpected answer")
            return sorted(int(v) for v in data)

        return await self.memo.get(("versions", datastack), fetch)

    async def version_tables(self, datastack: str, version: int) -> list[str]:
        async def fetch() -> list[str]:
            client, _ = await self.local(datastack)
            data = await client.get_json(
                f"materialize/api/v2/datastack/{datastack}/version/{version}/tables"
            )
            if not isinstance(data, list):
                raise RemoteError("version tables: unexpected answer")
            return sorted(str(t) for t in data)

        # A materialized version never changes.
        return await self.memo.get(("vtables", datastack, version), fetch, immutable=True)

    async def version_rows(self, datastack: str, version: int, table: str) -> list[dict[str, Any]]:
        client, _ = await self.local(datastack)
        path = f"materialize/api/v3/datastack/{datastack}/version/{version}/table/{table}/query"
        rows: list[dict[str, Any]] = []
        while True:
            page = await client.send_json(
                "POST",
                path,
                {"offset": len(rows), "limit": QUERY_LIMIT},
                params={"return_pyarrow": "false", "split_positions": "false"},
                idempotent=True,
            )
            if not isinstance(page, list):
                raise RemoteError(f"rows of {table} in version {version}: unexpected answer")
            rows.extend(r for r in page if isinstance(r, dict))
            if len(page) < QUERY_LIMIT:
                return rows

    def forget_table(self, datastack: str, table: str) -> None:
        self.memo.invalidate(
            lambda k: (
                (isinstance(k, tuple) and len(k) >= 3 and k[1:3] == (datastack, table))
                or k == ("tables", datastack)
            )
        )

    async def send(self, datastack: str, method: str, path: str, body: Any) -> Any:
        client, full = await self._av(datastack, path)
        return await client.send_json(method, full, body)
