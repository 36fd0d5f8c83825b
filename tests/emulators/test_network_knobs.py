"""The emulators' network knobs for reliability tests: per-kind fault rates, outage, trickle
and stall. In-process for the fault shares, over real HTTP for the rest."""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import urlsplit

import httpx
import pytest

from neurofs_emulators.dandi.sample import NWB_PATH, SampleArchive
from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.network import NetworkKnobs, NetworkMiddleware


async def _no_app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not called")


def _shares(knobs: NetworkKnobs, n: int = 100_000) -> Counter[str | None]:
    middleware = NetworkMiddleware(_no_app, knobs)
    return Counter(middleware._draw_fault() for _ in range(n))


def test_per_kind_rates_give_exactly_those_shares() -> None:
    n = 100_000
    seen = _shares(NetworkKnobs(error_rate=0.10, cut_rate=0.05, throttle_rate=0.02, seed=5), n)
    five_xx = seen["500"] + seen["502"] + seen["503"]
    # Binomial standard deviations are below 0.1 %: 0.5 % is far outside chance.
    assert abs(five_xx / n - 0.10) < 0.005
    assert abs(seen["cut"] / n - 0.05) < 0.005
    assert abs(seen["429"] / n - 0.02) < 0.005
    assert min(seen["500"], seen["502"], seen["503"]) > n * 0.025  # all three statuses
    assert abs(seen[None] / n - 0.83) < 0.005


def test_fault_rate_keeps_its_sequence() -> None:
    """Adding the per-kind rates changed nothing for runs that use ``fault_rate`` alone."""
    import random

    from neurofs_emulators.network import FAULT_KINDS

    middleware = NetworkMiddleware(_no_app, NetworkKnobs(fault_rate=0.3, seed=11))
    reference = random.Random(11)
    for _ in range(1000):
        roll, kind = reference.random(), reference.choice(FAULT_KINDS)
        assert middleware._draw_fault() == (kind if roll < 0.3 else None)


def test_rates_over_one_are_refused(dandi: RunningEmulator) -> None:
    response = httpx.put(
        f"{dandi.origin}/__emulator__/knobs", json={"error_rate": 0.6, "cut_rate": 0.5}
    )
    assert response.status_code == 400


def test_startup_flags_and_retry_after() -> None:
    with start_emulator("dandi", ["--throttle-rate", "1", "--retry-after", "3"]) as emu:
        response = httpx.get(f"{emu.api_url}/info/", timeout=10)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        assert emu.requests()[-1]["fault"] == "429"


@pytest.fixture
def blob_url(dandi: RunningEmulator, sample: SampleArchive) -> tuple[str, str]:
    """(presigned URL of the NWB file, its blob id)."""
    truth = sample.asset_by_path("000001", NWB_PATH)
    assert truth.blob is not None
    with httpx.Client(base_url=dandi.api_url + "/", timeout=30) as api:
        response = api.get(f"assets/{truth.asset_id}/download/")
    assert response.status_code == 302
    return response.headers["location"], truth.blob.blob_id


def test_outage_hangs_requests_until_cleared(dandi: RunningEmulator) -> None:
    dandi.set_knobs(outage=True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{dandi.api_url}/info/", timeout=httpx.Timeout(5, read=1))
    # The control routes still answer, so a test can end the outage.
    assert dandi.set_knobs()["outage"] is False
    assert httpx.get(f"{dandi.api_url}/info/", timeout=10).status_code == 200


def test_trickle_paces_only_the_slow_paths(
    dandi: RunningEmulator, blob_url: tuple[str, str], sample: SampleArchive
) -> None:
    url, blob_id = blob_url
    path = urlsplit(url).path
    dandi.set_knobs(trickle_bps=200, slow_path_prefix=path)
    # Other paths are not slowed down.
    assert httpx.get(f"{dandi.api_url}/info/", timeout=10).status_code == 200
    started = time.monotonic()
    response = httpx.get(url, headers={"Range": "bytes=0-599"}, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 206
    assert response.content == sample.blob_read(blob_id, 0, 600)
    # 600 bytes at 200 bytes per second: pieces are sent when due, so at least ~2.5 s.
    assert elapsed >= 2.5


@pytest.mark.parametrize("after", [0, 1000])
def test_stall_holds_a_body_until_cleared(
    dandi: RunningEmulator, blob_url: tuple[str, str], sample: SampleArchive, after: int
) -> None:
    url, blob_id = blob_url
    dandi.set_knobs(stall_after_bytes=after, slow_path_prefix=urlsplit(url).path)
    received = bytearray()
    timeout = httpx.Timeout(10, read=1)
    with httpx.stream("GET", url, headers={"Range": "bytes=0-4095"}, timeout=timeout) as response:
        assert response.status_code == 206  # the headers come at once
        with pytest.raises(httpx.ReadTimeout):
            for chunk in response.iter_bytes():
                received += chunk
    assert len(received) == after
    assert bytes(received) == sample.blob_read(blob_id, 0, after)
    dandi.set_knobs()
    response = httpx.get(url, headers={"Range": "bytes=0-4095"}, timeout=10)
    assert response.content == sample.blob_read(blob_id, 0, 4096)
