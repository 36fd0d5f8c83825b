"""The shared cache tier: real nginx (``neurofs tier run``) between real mounts and the
emulators. What is proven here is what reaches the origin (its request log), the bytes every
reader gets (against the emulator's generator), and what the tier keeps and logs."""

from __future__ import annotations

import contextlib
import http.server
import os
import random
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from neurofs_emulators.dandi.archive import GeneratedSource
from neurofs_emulators.dandi.sample import (
    BIG_BLOB_KEY,
    BIG_BLOB_PATH,
    BIG_BLOB_SIZE,
    EMBARGOED_BLOB_PATH,
    EMBARGOED_DANDISET,
    PUBLISHED_DANDISET,
)
from tests.support.tier import RunningTier, free_port, started_tier

from .conftest import NEUROFS, Emulator, Mount, WkEmulator

pytestmark = pytest.mark.mount

BLOB = f"dandi/{PUBLISHED_DANDISET}/draft/{BIG_BLOB_PATH}"
MIB = 1 << 20
TRUTH = GeneratedSource(BIG_BLOB_KEY, BIG_BLOB_SIZE)


def _origins(*emulators: Any) -> list[str]:
    """Every origin of the emulators (an API and its object store are two)."""
    return [f"http://{urlsplit(u).netloc}" for e in emulators for u in e.running.urls]


@pytest.fixture
def tier(dandi_emulator: Emulator, tmp_path: Path) -> Iterator[RunningTier]:
    with started_tier(_origins(dandi_emulator), tmp_path / "tier") as running:
        yield running


def _tiered(make_mount: Any, emulator: Any, url: str) -> Mount:
    m: Mount = make_mount(emulator, start=False)
    m.env["NEUROFS_TIER"] = url
    m.start()
    return m


def _read(path: Path, reads: list[tuple[int, int]]) -> list[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return [os.pread(fd, size, offset) for offset, size in reads]
    finally:
        os.close(fd)


def _slices(emulator: Emulator) -> list[str]:
    """The byte ranges the object store was asked for (the tier asks in 1 MiB slices)."""
    return [r["range"] for r in emulator.data_requests() if r["range"] is not None]


def _reads() -> list[tuple[int, int]]:
    rng = random.Random(17)
    reads = [(rng.randrange(0, BIG_BLOB_SIZE - 4096), 4096) for _ in range(40)]
    return [*reads, (300 * MIB + 1000, 6 * MIB), (BIG_BLOB_SIZE - 5000, 5000)]


def test_three_nodes_fetch_each_slice_from_the_origin_once(
    make_mount: Any, dandi_emulator: Emulator, tier: RunningTier
) -> None:
    """Three mounts, each with its own cache (three nodes), read the same ranges of the
    1 GiB blob one after another: the bytes are right everywhere, the origin sees each 1 MiB
    slice at most once (aligned, whoever asked), and the later nodes are served by the tier."""
    reads = _reads()
    truth = [TRUTH.read(o, o + n) for o, n in reads]
    dandi_emulator.reset()
    seen: list[str] = []
    for node in range(3):
        m = _tiered(make_mount, dandi_emulator, tier.url)
        assert _read(m / BLOB, reads) == truth
        stats = m.stats()
        assert stats["tier"] == tier.url
        assert stats.get("tier_fallbacks", 0) == 0
        if node:
            assert stats.get("tier_hits", 0) > 0
        assert stats["tier_bytes"] > 0
        status = subprocess.run(
            [*NEUROFS, "status", str(m.path)], capture_output=True, text=True, check=True
        ).stdout
        # (read-ahead may still be adding to the counts)
        assert re.search(rf"shared tier +{tier.url}: \d+ hits, \d+ misses, .*; 0 fallbacks", status)
        m.stop()
    seen = _slices(dandi_emulator)
    assert seen, "the origin was never asked"
    assert len(seen) == len(set(seen)), "a slice came from the origin twice"
    for rng in seen:
        first, last = (int(v) for v in rng.removeprefix("bytes=").split("-"))
        assert (first % MIB == 0 and (last + 1) % MIB == 0) or last == BIG_BLOB_SIZE - 1


def test_concurrent_misses_from_many_nodes_make_one_origin_request(
    make_mount: Any, slow_dandi_emulator: Emulator, tmp_path: Path
) -> None:
    """Three mounts read the same 3 MiB at the same time through a tier in front of an origin
    that answers in 300 ms: nginx's cache lock makes it one origin request per slice."""
    with started_tier(_origins(slow_dandi_emulator), tmp_path / "tier") as running:
        mounts = [_tiered(make_mount, slow_dandi_emulator, running.url) for _ in range(3)]
        slow_dandi_emulator.reset()
        at = 600 * MIB
        results: list[bytes] = [b""] * 3

        def read(i: int) -> None:
            results[i] = _read(mounts[i] / BLOB, [(at, 3 * MIB)])[0]

        threads = [threading.Thread(target=read, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [TRUTH.read(at, at + 3 * MIB)] * 3
        seen = _slices(slow_dandi_emulator)
        assert len(seen) == len(set(seen)), f"slices fetched twice: {sorted(seen)}"
        for m in mounts:  # before the tier stops: their read-ahead may still be asking it
            m.stop()


def test_the_tier_serves_only_its_origins_and_only_named_bytes(
    tier: RunningTier, dandi_emulator: Emulator
) -> None:
    """Not an open proxy: an origin not on its list is refused (403), a request without a
    content identity too (400), and anything but GET."""
    with httpx.Client() as client:
        other = client.get(
            f"{tier.url}/o/http/127.0.0.1:{free_port()}/x", headers={"X-Neurofs-Key": "k"}
        )
        assert other.status_code == 403
        elsewhere = client.get(f"{tier.url}/o/https/example.org/x", headers={"X-Neurofs-Key": "k"})
        assert elsewhere.status_code == 403
        origin = _origins(dandi_emulator)[0].removeprefix("http://")
        unnamed = client.get(f"{tier.url}/o/http/{origin}/x")
        assert unnamed.status_code == 400
        posted = client.post(f"{tier.url}/o/http/{origin}/x", headers={"X-Neurofs-Key": "k"})
        assert posted.status_code == 403
        assert client.get(f"{tier.url}/anything").status_code == 404


def _logged(tier: RunningTier, text: str) -> str:
    """The tier's access log once it holds ``text``: nginx writes a request's line after
    the answer is sent, so a reader may get its bytes a moment before the line is written."""
    deadline = time.monotonic() + 10
    while text not in (log := tier.access_log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


def _kept(tier: RunningTier) -> list[bytes]:
    return [p.read_bytes() for p in (tier.cache_dir / "slices").rglob("*") if p.is_file()]


def test_signatures_reach_neither_the_tiers_keys_nor_its_logs(
    make_mount: Any, dandi_emulator: Emulator, tier: RunningTier
) -> None:
    """The object store's links are presigned (X-Amz-Signature in the query): forwarded to the
    origin, but the tier's cache keys and access log hold the content identity and path only."""
    m = _tiered(make_mount, dandi_emulator, tier.url)
    assert _read(m / BLOB, [(0, 4096)]) == [TRUTH.read(0, 4096)]
    log = _logged(tier, "dandi-blob:")
    assert "/dandiarchive/blobs/" in log
    assert "X-Amz" not in log and "Signature" not in log
    deadline = time.monotonic() + 10  # the slice's file is complete once its line is logged
    while not (kept := _kept(tier)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kept, "the tier kept nothing"
    for data in kept:
        key = next(line for line in data.split(b"\n") if line.startswith(b"KEY: "))
        assert b"dandi-blob:" in key and b"X-Amz" not in key and b"?" not in key


def test_private_bytes_go_around_the_tier(
    make_mount: Any, dandi_emulator: Emulator, tier: RunningTier
) -> None:
    """An embargoed dandiset's blob is read from the origin, never through the tier (unless
    the tier is marked as trusted)."""
    m = _tiered(make_mount, dandi_emulator, tier.url)
    before = tier.access_log.read_text()
    data = (m / f"dandi/{EMBARGOED_DANDISET}/draft/{EMBARGOED_BLOB_PATH}").read_bytes()
    assert data
    assert tier.access_log.read_text() == before
    assert m.stats().get("tier_bytes", 0) == 0


def test_a_trusted_tier_also_keeps_embargoed_bytes(
    make_mount: Any, dandi_emulator: Emulator, tier: RunningTier
) -> None:
    """``[cache] tier_trusted = true``: private bytes reached by a presigned link (an embargoed
    dandiset's blob) go through the tier too, under their content identity."""
    m: Mount = make_mount(dandi_emulator, start=False)
    m.config.write_text("[cache]\ntier_trusted = true\n" + m.config.read_text())
    m.env["NEUROFS_TIER"] = tier.url
    m.start()
    data = (m / f"dandi/{EMBARGOED_DANDISET}/draft/{EMBARGOED_BLOB_PATH}").read_bytes()
    assert data
    assert m.stats()["tier_bytes"] == len(data)
    assert "dandi-blob:" in _logged(tier, "dandi-blob:")


@pytest.mark.expect_log("shared tier .*: cannot reach it")
def test_a_tier_that_is_down_costs_readers_nothing(
    make_mount: Any, dandi_emulator: Emulator
) -> None:
    """A tier nobody answers at: every byte comes right from the origin, the fallback is
    counted, and the tier is left alone for a while instead of being tried per request."""
    m = _tiered(make_mount, dandi_emulator, f"http://127.0.0.1:{free_port()}")
    reads = _reads()
    assert _read(m / BLOB, reads) == [TRUTH.read(o, o + n) for o, n in reads]
    stats = m.stats()
    assert stats["tier_fallbacks"] == 1
    assert stats["tier_skipped"] > 0
    assert "tier_bytes" not in stats


@pytest.mark.expect_log("shared tier .*: cannot reach it")
def test_a_tier_killed_mid_run_loses_no_byte(
    make_mount: Any, dandi_emulator: Emulator, tmp_path: Path
) -> None:
    with started_tier(_origins(dandi_emulator), tmp_path / "tier") as running:
        m = _tiered(make_mount, dandi_emulator, running.url)
        first = _reads()[:20]
        assert _read(m / BLOB, first) == [TRUTH.read(o, o + n) for o, n in first]
        running.stop()
        rest = _reads()[20:]
        assert _read(m / BLOB, rest) == [TRUTH.read(o, o + n) for o, n in rest]
        assert m.stats()["tier_fallbacks"] >= 1


class _LyingTier(http.server.BaseHTTPRequestHandler):
    """Answers every range with the right status and headers but the wrong bytes' range or
    length, in turn: each must be dropped."""

    answers = 0

    def do_GET(self) -> None:
        first, last = (int(v) for v in self.headers["Range"].removeprefix("bytes=").split("-"))
        kind = _LyingTier.answers % 3
        _LyingTier.answers += 1
        n = last - first + 1
        if kind == 0:  # shifted by one
            self._send(206, b"x" * n, f"bytes {first + 1}-{last + 1}/{BIG_BLOB_SIZE}")
        elif kind == 1:  # short
            self._send(206, b"x" * (n - 1), f"bytes {first}-{last}/{BIG_BLOB_SIZE}")
        else:  # the whole object claimed, a few bytes sent
            self._send(200, b"x" * 10, None)

    def _send(self, status: int, body: bytes, content_range: str | None) -> None:
        self.send_response(status)
        if content_range:
            self.send_header("Content-Range", content_range)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _lying_tier() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LyingTier)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wrong_bytes_from_the_tier_are_dropped_and_read_from_the_origin(
    make_mount: Any, dandi_emulator: Emulator, expected_logs: Any
) -> None:
    expected_logs.expect("shared tier: dropped a wrong answer")
    with _lying_tier() as url:
        m = _tiered(make_mount, dandi_emulator, url)
        reads = _reads()[:12]
        assert _read(m / BLOB, reads) == [TRUTH.read(o, o + n) for o, n in reads]
        stats = m.stats()
        assert stats["tier_rejected"] >= 3
        assert stats["tier_rejected"] == stats["tier_fallbacks"]
        assert "tier_bytes" not in stats


def test_webknossos_chunks_of_a_public_dataset_are_shared(
    make_mount: Any, wk_emulator: WkEmulator, tmp_path: Path
) -> None:
    """Two mounts read the same chunks of the public dataset: the datastore sends each once."""
    with started_tier(_origins(wk_emulator), tmp_path / "tier") as running:
        keys = ["0/1/1", "0/1/2", "1/2/3"]  # z/y/x of 64³ chunks holding served voxels
        seen: list[list[bytes]] = []
        wk_emulator.reset()
        for _ in range(2):
            m = _tiered(make_mount, wk_emulator, running.url)
            mag = m / "webknossos/datasets/neurofs_lab/l4_demo/color.ome.zarr/1"
            seen.append([(mag / k).read_bytes() for k in keys])
            m.stop()
        assert seen[0] == seen[1]
        assert all(any(chunk) for chunk in seen[0])  # voxels, not the fill value
        chunks = [(r["path"], r["query"]) for r in wk_emulator.requests() if "/data/" in r["path"]]
        assert chunks and len(chunks) == len(set(chunks))
