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

from neurofs.io.exchange import Transient, checked_range
from neurofs.io.stats import Stats

log = logging.getLogger(__name__)

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
            transport=transport,
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
        identity is ``key``, from the tier; None when the caller must ask the origin."""
        target = tier_url(self.url, origin_url)
        if target is None:
            return None
        if self.down:
            self._stats.add("tier_skipped")
            return None
        headers = {"Range": f"bytes={start}-{end - 1}", KEY_HEADER: key}
        try:
            response = await self._client.get(target, headers=headers)
        except httpx.HTTPError as exc:
            self._fell_back(f"cannot reach it ({type(exc).__name__})", down=True)
            return None
        if response.status_code in (502, 503, 504):
            self._fell_back(f"HTTP {response.status_code}", down=True)
            return None
        if response.status_code not in (200, 206):
            self._refused(origin_url, response.status_code)
            return None
        try:
            body = checked_range(response, start, end, total)
        except Transient as exc:
            self._stats.add("tier_rejected")
            self._stats.add("tier_fallbacks")
            log.warning(
                "shared tier: dropped a wrong answer for %s (%s); asking the origin", key, exc
            )
            return None
        hit = response.headers.get(CACHE_STATUS_HEADER, "").upper() == "HIT"
        self._stats.add("tier_hits" if hit else "tier_misses")
        self._stats.add("tier_bytes", len(body))
        return body

    def _fell_back(self, why: str, *, down: bool) -> None:
        self._stats.add("tier_fallbacks")
        if down:
            if not self.down:
                log.warning(
                    "shared tier %s: %s; reading from the origins for %.0f s",
                    self.url,
                    why,
                    RETRY_SECONDS,
                )
            self._down_until = time.monotonic() + RETRY_SECONDS

    def _refused(self, origin_url: str, status: int) -> None:
        """A final answer of the tier (403: an origin it does not serve; 404: the origin's
        own answer): the origin is asked, and says what the reader gets."""
        self._stats.add("tier_fallbacks")
        origin = httpx.URL(origin_url).netloc.decode("ascii")
        if status == 403 and origin not in self._refused_origins:
            self._refused_origins.add(origin)
            log.warning(
                "shared tier %s refuses %s (not among its origins?); reading it directly",
                self.url,
                origin,
            )
