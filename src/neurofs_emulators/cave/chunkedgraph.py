"""The emulated ChunkedGraph (PyChunkedGraph's segmentation API v1) on the local server.

The routes caveclient's ``ChunkedGraphClient`` calls for roots, leaves and lineage
(``caveclient/endpoints.py``, ``chunkedgraph_endpoints_v1``), answered as PyChunkedGraph's
``app/segmentation/v1/routes.py`` and ``common.py`` answer them:

- every route needs ``view`` on the graph's table (middle_auth's ``auth_requires_permission``,
  the table as its resource);
- answers are ``flask.jsonify`` (compact, sorted keys): ``{"root_id": n}``, ``{"leaf_ids":
  [...]}``, a bare list of roots, ``{"is_latest": [...]}``, ``{"timestamp": [...]}`` (seconds
  since the epoch) and the lineage graph as networkx's ``node_link_data`` (``directed``,
  ``graph``, ``links``, ``multigraph``, ``nodes``: each node with ``id`` and ``timestamp``,
  and ``operation_id`` (the edit that replaced it) for a replaced root);
- a ``ChunkedGraphAPIError`` is its ``status_code`` with ``{"code", "duration", "message",
  "timestamp", "traceback"}``; any other exception (a node id that is no number) the same
  body with 500. ``is_latest_roots``, ``root_timestamps`` and ``lineage_graph_multiple``
  refuse ids that are not roots (400, "Some ids are not root ids."); ``roots`` answers 0
  for a supervoxel it cannot find (its ``fail_to_zero``). The real server derives a node's
  layer from its id's bits and answers what its tables hold for any id; here an id the
  sample does not have is a 400 ("... not found") on the single-node routes, and "not root
  ids" on the others.

The sample is small and fixed: an outdated root split in two, one half merged later with
another root, one current root of ``BIG_LEAVES`` supervoxels and one of ``HUGE_LEAVES`` (an
answer of about 72 MB, larger than a client should hold whole) whose ids are computed per
request, never stored. Such a root's ``leaves`` answer is flask's bytes sent in pieces as they
are made (chunked, where flask sends one body with its length): the same JSON, never held.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from neurofs_emulators.cave.auth import Authenticator
from neurofs_emulators.cave.http import JSON_TYPE, flask_json
from neurofs_emulators.cave.sample import SEGMENTATION_CREATED
from neurofs_emulators.routing import Router

PREFIX = "/segmentation/api/v1/table/{table}"
# PyChunkedGraph's ``__api_versions__``.
API_VERSIONS = [0, 1]

# Root ids carry the root layer in their top bits, as real ones do (layer 10 here).
_ROOT = 10 << 56
_SV = 1 << 56


CREATED = SEGMENTATION_CREATED.replace(tzinfo=dt.UTC).timestamp()
SPLIT_TIME = dt.datetime(2024, 5, 10, 9, 30, 0, tzinfo=dt.UTC).timestamp()
MERGE_TIME = dt.datetime(2024, 5, 20, 16, 45, 0, tzinfo=dt.UTC).timestamp()
SPLIT_OPERATION = 101
MERGE_OPERATION = 102

BIG_LEAVES = 120_000
BIG_FIRST_LEAF = _SV + 5_000_000
HUGE_LEAVES = 4_000_000
HUGE_FIRST_LEAF = _SV + 10_000_000
# Ids per piece of a streamed ``leaves`` answer.
_LEAVES_PIECE = 16_384


@dataclass(frozen=True)
class SampleRoot:
    """A root: its supervoxels (``leaf_count`` computed from ``first_leaf`` when ``leaves`` is
    empty), when it was made, and what replaced it, when and by which edit."""

    id: int
    created: float
    leaves: tuple[int, ...] = ()
    first_leaf: int = 0
    leaf_count: int = 0
    # The roots made from it, and when (None: it is current).
    successors: tuple[int, ...] = ()
    replaced: float | None = None
    replaced_by: int | None = None

    def leaf_ids(self) -> Iterator[int]:
        if self.leaves:
            yield from self.leaves
        else:
            yield from range(self.first_leaf, self.first_leaf + self.leaf_count)

    def has_leaf(self, supervoxel: int) -> bool:
        if self.leaves:
            return supervoxel in self.leaves
        return self.first_leaf <= supervoxel < self.first_leaf + self.leaf_count

    def valid_at(self, when: float) -> bool:
        return self.created <= when and (self.replaced is None or when < self.replaced)


_LEFT = tuple(_SV + i for i in (11, 12, 13, 14, 15))
_RIGHT = tuple(_SV + i for i in (21, 22, 23, 24))
_OTHER = tuple(_SV + i for i in (31, 32, 33))

# A, the first root, split into B (current) and C; C merged with D into E (current).
ROOT_A = _ROOT + 1001
ROOT_B = _ROOT + 1002
ROOT_C = _ROOT + 1003
ROOT_D = _ROOT + 1004
ROOT_E = _ROOT + 1005
ROOT_BIG = _ROOT + 2001
ROOT_HUGE = _ROOT + 2002

split: dict[str, Any] = {"replaced": SPLIT_TIME, "replaced_by": SPLIT_OPERATION}
merge: dict[str, Any] = {"replaced": MERGE_TIME, "replaced_by": MERGE_OPERATION}
ROOTS: dict[int, SampleRoot] = {
    r.id: r
    for r in (
        SampleRoot(ROOT_A, CREATED, _LEFT + _RIGHT, successors=(ROOT_B, ROOT_C), **split),
        SampleRoot(ROOT_B, SPLIT_TIME, _LEFT),
        SampleRoot(ROOT_C, SPLIT_TIME, _RIGHT, successors=(ROOT_E,), **merge),
        SampleRoot(ROOT_D, CREATED, _OTHER, successors=(ROOT_E,), **merge),
        SampleRoot(ROOT_E, MERGE_TIME, _RIGHT + _OTHER),
        SampleRoot(ROOT_BIG, CREATED, first_leaf=BIG_FIRST_LEAF, leaf_count=BIG_LEAVES),
        SampleRoot(ROOT_HUGE, CREATED, first_leaf=HUGE_FIRST_LEAF, leaf_count=HUGE_LEAVES),
    )
}


def root_at(supervoxel: int, when: float) -> int | None:
    """The root holding ``supervoxel`` at ``when`` (None: no such supervoxel then)."""
    for root in ROOTS.values():
        if root.valid_at(when) and root.has_leaf(supervoxel):
            return root.id
    return None


def lineage(root_ids: list[int], past: float, future: float) -> dict[str, object]:
    """``lineage_graph(cg, root_ids, timestamp_past, timestamp_future)`` as ``node_link_data``:
    from ``root_ids``, one walk backwards through the roots each was made from, stopping at
    a root made before ``past``, and one forwards through the roots each became, stopping
    at a root made after ``future`` (both keep the root they stop at, and the link to it).
    A node's ``operation_id`` is the edit that replaced it, shown only for replaced roots."""
    predecessors: dict[int, list[int]] = {}
    for root in ROOTS.values():
        for successor in root.successors:
            predecessors.setdefault(successor, []).append(root.id)
    nodes: set[int] = set(root_ids)
    links: set[tuple[int, int]] = set()
    backwards, forwards = list(root_ids), list(root_ids)
    while backwards:
        node = ROOTS[backwards.pop()]
        if node.created < past:
            continue
        for former in predecessors.get(node.id, []):
            links.add((former, node.id))
            if former not in nodes:
                nodes.add(former)
                backwards.append(former)
    while forwards:
        node = ROOTS[forwards.pop()]
        if node.created > future:
            continue
        for new in node.successors:
            links.add((node.id, new))
            if new not in nodes:
                nodes.add(new)
                forwards.append(new)
    return {
        "directed": True,
        "graph": {},
        "links": [{"source": s, "target": t} for s, t in sorted(links)],
        "multigraph": False,
        "nodes": [_lineage_node(ROOTS[n]) for n in sorted(nodes)],
    }


def _lineage_node(root: SampleRoot) -> dict[str, object]:
    node: dict[str, object] = {"id": root.id, "timestamp": root.created}
    if root.replaced_by is not None:
        node["operation_id"] = root.replaced_by
    return node


class GraphError(Exception):
    """A ``ChunkedGraphAPIError`` (``status``) or, with 500, any other exception."""

    def __init__(self, status: int, message: str, exc_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.exc_type = exc_type

    def response(self, started: float) -> Response:
        body = {
            "code": self.status,
            "duration": (time.time() - started) * 1000,
            "message": self.message,
            "timestamp": dt.datetime.fromtimestamp(started, dt.UTC).strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            ),
            "traceback": [
                "Traceback (most recent call last):\n",
                '  File "/app/pychunkedgraph/app/segmentation/common.py", line 1, in handler\n',
                f"{self.exc_type}: {self.message}\n",
            ],
        }
        return flask_json(body, self.status)


def _bad_request(message: str) -> GraphError:
    return GraphError(400, message, "pychunkedgraph.graph.exceptions.BadRequest")


def _node_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        # ``np.uint64(node_id)`` on a name: an unhandled exception.
        raise GraphError(
            500, f"invalid literal for int() with base 10: '{text}'", "ValueError"
        ) from None


def _timestamp(request: Request, name: str, default: float) -> float:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise _bad_request(f"Timestamp parameter {name} is not a valid unix timestamp") from None


def _node_ids(raw: bytes, key: str) -> list[int]:
    try:
        return [int(i) for i in json.loads(raw)[key]]
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphError(500, str(exc), type(exc).__name__) from None


def _leaf_ids_json(root: SampleRoot) -> Iterator[bytes]:
    """``flask_json({"leaf_ids": [...]})`` of a computed root, piece by piece."""
    first, end = root.first_leaf, root.first_leaf + root.leaf_count
    yield b'{"leaf_ids":['
    for lo in range(first, end, _LEAVES_PIECE):
        piece = ",".join(map(str, range(lo, min(lo + _LEAVES_PIECE, end))))
        yield (b"," if lo > first else b"") + piece.encode()
    yield b"]}\n"


def _roots(ids: list[int]) -> list[SampleRoot]:
    if not all(i in ROOTS for i in ids):
        raise _bad_request("Some ids are not root ids.")
    return [ROOTS[i] for i in ids]


class ChunkedGraph:
    """The segmentation API's routes for roots, leaves and lineage."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def router(self) -> Router:
        router = Router()
        router.add("GET", "/segmentation/api/versions", self.api_versions)
        routes = (
            ("GET", "/node/{node_id}/root", self.root),
            ("POST", "/roots", self.roots),
            ("GET", "/node/{node_id}/leaves", self.leaves),
            ("POST", "/is_latest_roots", self.is_latest_roots),
            ("POST", "/root_timestamps", self.root_timestamps),
            ("POST", "/lineage_graph_multiple", self.lineage_graph),
        )
        for method, path, handler in routes:
            router.add(method, PREFIX + path, self._guarded(handler))
        return router

    async def api_versions(self, request: Request) -> Response:
        return flask_json(API_VERSIONS)

    def _guarded(
        self, handler: Callable[[Request], Awaitable[object]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            self.auth.require(request, "view", request.path_params["table"], "table")
            started = time.time()
            try:
                answer = await handler(request)
                return answer if isinstance(answer, Response) else flask_json(answer)
            except GraphError as exc:
                return exc.response(started)

        return guarded

    async def root(self, request: Request) -> object:
        supervoxel = _node_id(request.path_params["node_id"])
        root = root_at(supervoxel, _timestamp(request, "timestamp", time.time()))
        if root is None:
            raise _bad_request(f"Parent of {supervoxel} not found")
        return {"root_id": root}

    async def roots(self, request: Request) -> object:
        when = _timestamp(request, "timestamp", time.time())
        # fail_to_zero: a supervoxel without a root is 0.
        return [root_at(i, when) or 0 for i in _node_ids(await request.body(), "node_ids")]

    async def leaves(self, request: Request) -> object:
        node = _node_id(request.path_params["node_id"])
        root = ROOTS.get(node)
        if root is None:
            raise _bad_request(f"{node} not found")
        if root.leaves:
            return {"leaf_ids": list(root.leaves)}
        return StreamingResponse(_leaf_ids_json(root), media_type=JSON_TYPE)

    async def is_latest_roots(self, request: Request) -> object:
        when = _timestamp(request, "timestamp", time.time())
        roots = _roots(_node_ids(await request.body(), "node_ids"))
        return {"is_latest": [r.valid_at(when) for r in roots]}

    async def root_timestamps(self, request: Request) -> object:
        roots = _roots(_node_ids(await request.body(), "node_ids"))
        return {"timestamp": [r.created for r in roots]}

    async def lineage_graph(self, request: Request) -> object:
        past = _timestamp(request, "timestamp_past", 0.0)
        future = _timestamp(request, "timestamp_future", time.time())
        ids = _node_ids(await request.body(), "root_ids")
        _roots(ids)
        return lineage(ids, past, future)
