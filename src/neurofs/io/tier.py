"""The lab's shared cache tier: an nginx (``neurofs tier``) asked before the origin.

A mount whose configuration names a tier (``[cache] tier``, ``NEUROFS_TIER``) sends each range
request for bytes that are public and never change (a DANDI blob, a zarr key at its ETag, a
WEBKNOSSOS chunk at its revision) to the tier first, as

    GET <tier>/o/<scheme>/<host[:port]><path>?<query>
    Range: bytes=<first>-<last>
    X-Neurofs-Key: <content identity>

The tier keys its cache by that identity, the origin's path and the 1 MiB slice (never by the
query, which may hold a signature), fetches each slice from the origin once however many nodes
miss it at the same time, and answers the range. See ``cli/tier.py`` for its configuration.

Nothing a reader sees depends on the tier: its answer is checked exactly as the origin's is
(``exchange.checked_range``), and a tier that is down, refuses, errs or sends wrong bytes only
sends the request on to the origin (counted in ``stats.json``). After a failure to reach it,
the tier is left alone for ``RETRY_SECONDS`` and then tried again.
"""

from __future__ import annotations

import logging
import time

import httpx
import trio

from neurofs.io.cache import BLOCK_SIZE
from neurofs.io.exchange import Transient, checked_range
from neurofs.io.stats import Stats
from neurofs.io.wire import transport_for

log = logging.getLogger(__name__)

# The tier's slices (``cli/tier.py`` configures nginx's slice module with the same size).
SLICE = BLOCK_SIZE
# How long the origins are read directly after the tier could not be reached.
RETRY_SECONDS = 30.0
# The header naming the bytes' identity, and the tier's answer saying whether it had them.
KEY_HEADER = "X-Neurofs-Key"
CACHE_STATUS_HEADER = "X-Neurofs-Tier"
# A miss may wait for another node's fetch of the same slice (nginx's cache lock) and then
# for its own: generous, as for an origin, but a dead tier is noticed at connect.
TIMEOUT = httpx.Timeout(connect=2.0, read=60.0, write=10.0, pool=10.0)


def tier_url(tier: str, origin_url: str) -> str | None:
    """Where the tier serves ``origin_url``; None for a URL that must not go there (one with
    credentials in it, or not http(s))."""
    url = httpx.URL(origin_url)
    if url.scheme not in ("http", "https") or url.userinfo or not url.host:
        return None
    netloc = url.netloc.decode("ascii")
    target = url.raw_path.decode("ascii")  # path and query, as they were encoded
    return f"{tier.rstrip('/')}/o/{url.scheme}/{netloc}{target}"


class Tier:
    """The tier of one mount: its own connection pool and when it may next be tried."""

    def __init__(
        self,
        url: str,
        stats: Stats,
        *,
        trusted: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # Private bytes reachable by a signed link may go through it too (``tier_trusted``).
        self.trusted = trusted
        self._stats = stats
        self._client = httpx.AsyncClient(
            timeout=TIMEOUT,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            follow_redirects=False,
            headers={"User-Agent": "neurofs/0.1"},
            transport=transport or transport_for(32),
        )
        self._down_until = 0.0
        self._refused_origins: set[str] = set()

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    async def get_range(
        self, origin_url: str, key: str, start: int, end: int, total: int
    ) -> bytes | None:
        """Bytes [start, end) of the object (``total`` bytes) at ``origin_url`` whose content
        identity is ``key``, from the tier; None when the caller must ask the origin (one
        fallback counted per call).

        A range over several of the tier's slices is asked slice by slice, all at once: nginx
        fetches the slices of one request from the origin one after another."""
        target = tier_url(self.url, origin_url)
        if target is None:
            return None
        if self.down:
            self._stats.add("tier_skipped")
            return None
        pieces = [
            (a, min(end, (a // SLICE + 1) * SLICE))
            for a in [start, *range((start // SLICE + 1) * SLICE, end, SLICE)]
        ]
        parts: list[bytes | None] = [None] * len(pieces)

        async def one(i: int, a: int, b: int) -> None:
            parts[i] = await self._get(target, key, a, b, total)

        if len(pieces) == 1:
            await one(0, start, end)
        else:
            async with trio.open_nursery() as nursery:
                for i, (a, b) in enumerate(pieces):
                    nursery.start_soon(one, i, a, b)
        if any(part is None for part in parts):
            self._stats.add("tier_fallbacks")
            return None
        self._stats.add("tier_bytes", end - start)
        return b"".join(part for part in parts if part is not None)

    async def _get(self, target: str, key: str, start: int, end: int, total: int) -> bytes | None:
        """One slice's part, checked; None on any failure (noted, and counted by kind)."""
        if self.down:  # another piece found it down meanwhile
            return None
        headers = {"Range": f"bytes={start}-{end - 1}", KEY_HEADER: key}
        try:
            response = await self._client.get(target, headers=headers)
        except httpx.HTTPError as exc:
            self._down(f"cannot reach it ({type(exc).__name__})")
            return None
        if response.status_code in (502, 503, 504):
            self._down(f"HTTP {response.status_code}")
            return None
        if response.status_code not in (200, 206):
            self._refused(target, response.status_code)
            return None
        try:
            body = checked_range(response, start, end, total)
        except Transient as exc:
            self._stats.add("tier_rejected")
            log.warning(
                "shared tier: dropped a wrong answer for %s (%s); asking the origin", key, exc
            )
            return None
        hit = response.headers.get(CACHE_STATUS_HEADER, "").upper() == "HIT"
        self._stats.add("tier_hits" if hit else "tier_misses")
        return body

    def _down(self, why: str) -> None:
        if not self.down:
            log.warning(
                "shared tier %s: %s; reading from the origins for %.0f s",
                self.url,
                why,
                RETRY_SECONDS,
            )
        self._down_until = time.monotonic() + RETRY_SECONDS

    def _refused(self, target: str, status: int) -> None:
        """A final answer of the tier (403: an origin it does not serve; 404: the origin's
        own answer): the origin is asked, and says what the reader gets."""
        origin = target.removeprefix(f"{self.url}/o/").split("/")[1]
        if status == 403 and origin not in self._refused_origins:
            self._refused_origins.add(origin)
            log.warning(
                "shared tier %s refuses %s (not among its origins?); reading it directly",
                self.url,
                origin,
            )
