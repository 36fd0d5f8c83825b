"""The emulators as the tests see them: a running emulator (``neurofs_emulators.launch``)
plus helpers to ask it what it serves and what it was asked, and to make it refuse.

The wrappers answer everything a :class:`RunningEmulator` does (``urls``, ``origin``,
``clear_requests``, ``set_knobs``, ``stop`` ...), so tests that only need those take them too.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_OWNER_TOKEN
from neurofs_emulators.dandi.sample import OWNER_TOKEN
from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.webknossos.sample import CURRENT_API_VERSION as WK_DEFAULT_API_VERSION
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_OWNER_TOKEN


@dataclass
class Emulator:
    """A running emulator plus helpers to ask it what it serves and what it was asked."""

    running: RunningEmulator

    def __getattr__(self, name: str) -> Any:
        # Only called for what the wrapper lacks: the RunningEmulator's own API.
        if name == "running":
            raise AttributeError(name)
        return getattr(self.running, name)

    @property
    def api_url(self) -> str:
        return self.running.api_url

    def _base(self) -> str:
        return self.running.urls[0].rsplit("/api", 1)[0]

    def requests(self) -> list[dict[str, Any]]:
        return self.running.requests()

    def reset(self) -> None:
        """Forget the requests seen so far."""
        self.running.clear_requests()

    def data_requests(self) -> list[dict[str, Any]]:
        """Requests for bytes: the blob store and the download redirects (not the bucket's
        listings, nor the redirect of a zarr's root, which says where its keys are listed)."""

        def for_bytes(r: dict[str, Any]) -> bool:
            query = r.get("query") or ""
            if r["path"].startswith("/dandiarchive/"):
                return "list-type=" not in query
            if "download=true" in query:
                return not query.startswith("prefix=&")
            return "download" in r["path"]

        return [r for r in self.requests() if for_bytes(r)]

    def writes(self) -> list[dict[str, Any]]:
        """Requests that change something (the log's ``body`` field holds what was sent)."""
        return [r for r in self.requests() if r["method"] not in ("GET", "HEAD")]

    def refuse(
        self,
        method: str,
        path_prefix: str,
        status: int,
        body: Any,
        times: int = 1,
        after: int = 0,
        cut: bool = False,
    ) -> None:
        """Make the next matching request(s) fail as the real server would (after letting
        ``after`` of them through); ``cut``: the connection dropped after a 200's headers."""
        httpx.post(
            f"{self._base()}/__emulator__/refusals",
            json={
                "method": method,
                "path_prefix": path_prefix,
                "status": status,
                "body": body,
                "times": times,
                "after": after,
                "cut": cut,
            },
        ).raise_for_status()

    def clear_refusals(self) -> None:
        httpx.delete(f"{self._base()}/__emulator__/refusals").raise_for_status()

    def draft_metadata(self, dandiset: str) -> dict[str, Any]:
        with self.api() as c:
            r = c.get(f"dandisets/{dandiset}/versions/draft/info/")
            r.raise_for_status()
            return r.json()["metadata"]

    def settled_draft_metadata(self, dandiset: str, timeout: float = 60.0) -> dict[str, Any]:
        """The draft's metadata once no validation is due: an earlier save leaves the draft
        Pending, and its validation then rewrites computed fields (``assetsSummary``)."""
        deadline = time.monotonic() + timeout
        with self.api() as c:
            while True:
                r = c.get(f"dandisets/{dandiset}/versions/draft/info/")
                r.raise_for_status()
                info = r.json()
                if info["status"] not in ("Pending", "Validating"):
                    return info["metadata"]
                assert time.monotonic() < deadline, f"draft of {dandiset} still {info['status']}"
                time.sleep(0.1)

    def api(self, token: str | None = OWNER_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=self.api_url + "/", headers=headers, timeout=60)

    def all_assets(self, dandiset: str, version: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with self.api() as c:
            url: str | None = f"dandisets/{dandiset}/versions/{version}/assets/"
            params: dict[str, Any] | None = {"page_size": 1000, "metadata": "true"}
            while url:
                page = c.get(url, params=params).json()
                out.extend(page["results"])
                url, params = page["next"], None
        return out

    def download(self, asset_id: str) -> bytes:
        with self.api() as c:
            r = c.get(f"assets/{asset_id}/download/", follow_redirects=False)
            assert r.status_code == 302
        return httpx.get(r.headers["Location"], timeout=300).content


@dataclass
class WkEmulator(Emulator):
    """The WEBKNOSSOS emulator: main server first, datastore second; ``api_version`` is the
    current API version it announces."""

    api_version: int = WK_DEFAULT_API_VERSION

    @property
    def api_url(self) -> str:
        return self.running.urls[0]

    def _base(self) -> str:
        return self.running.urls[0].rstrip("/")

    def wk(self, token: str | None = None) -> httpx.Client:
        token = token or WK_OWNER_TOKEN
        return httpx.Client(
            base_url=self._base() + "/api/v12/", headers={"X-Auth-Token": token}, timeout=60
        )

    def served_chunks(self, layer: str) -> list[tuple[int, int, int]]:
        """The mag-1 chunks (x, y, z) of ``layer`` the datastore sent, by its zarr chunk
        route or inside a box of its raw route (every box must be whole chunks of mag 1),
        one entry per time sent."""
        chunk = re.compile(rf"/zarr/[^/]+/{re.escape(layer)}/1/0\.(\d+)\.(\d+)\.(\d+)$")
        sent: list[tuple[int, int, int]] = []
        for r in self.requests():
            if found := chunk.search(r["path"]):
                x, y, z = map(int, found.groups())
                sent.append((x, y, z))
            elif r["path"].endswith(f"/layers/{layer}/data"):
                q = {k: int(v) for k, v in (p.split("=") for p in r["query"].split("&"))}
                assert q["mag"] == 1 and all(q[a] % 32 == 0 for a in "xyz"), r["query"]
                sent += [
                    (x // 32, y // 32, z // 32)
                    for x in range(q["x"], q["x"] + q["width"], 32)
                    for y in range(q["y"], q["y"] + q["height"], 32)
                    for z in range(q["z"], q["z"] + q["depth"], 32)
                ]
        return sent


@dataclass
class CaveEmulator(Emulator):
    """The CAVE emulator: global server first, local server second."""

    @property
    def api_url(self) -> str:
        return self.running.urls[0]

    def _base(self) -> str:
        return self.running.urls[0].rstrip("/")

    def local(self, token: str | None = None) -> httpx.Client:
        token = token or CAVE_OWNER_TOKEN
        return httpx.Client(
            base_url=self.running.urls[1].rstrip("/") + "/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )


def kind_of(emulator: Any) -> str:
    """The source kind an emulator serves (a bare RunningEmulator by its service name)."""
    if isinstance(emulator, WkEmulator):
        return "webknossos"
    if isinstance(emulator, CaveEmulator):
        return "cave"
    service = getattr(emulator, "service", None)
    return service if isinstance(service, str) else "dandi"


@contextlib.contextmanager
def started_dandi_emulator(args: Sequence[str] = ()) -> Iterator[Emulator]:
    """A DANDI emulator started with ``args`` (``--latency-ms`` ...), stopped on exit."""
    with start_emulator("dandi", args) as running:
        yield Emulator(running)


@contextlib.contextmanager
def started_wk_emulator(api_version: int = WK_DEFAULT_API_VERSION) -> Iterator[WkEmulator]:
    """A WEBKNOSSOS emulator announcing ``api_version``, stopped on exit."""
    with start_emulator("webknossos", ["--api-version", str(api_version)]) as running:
        yield WkEmulator(running, api_version)


@contextlib.contextmanager
def started_cave_emulator(args: Sequence[str] = ()) -> Iterator[CaveEmulator]:
    """A CAVE emulator started with ``args`` (``--sample large``, ``--row-cap`` ...),
    stopped on exit."""
    with start_emulator("cave", args) as running:
        yield CaveEmulator(running)


def round_trips_in_a_row(records: Sequence[Mapping[str, Any]]) -> int:
    """The longest chain of requests (an emulator's log, in order of arrival) each sent
    after the one before it was answered: the round trips a reader waited for one after
    another. Meaningful with a latency large against the client's own work."""
    depth: list[int] = []
    for r in records:
        before = [d for d, q in zip(depth, records, strict=False) if q["ended"] <= r["arrived"]]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)
