"""The request log's ``sent`` (the body bytes each response handed to its connection), and
when each request arrived and its answer ended.

A whole answer counts its length; an answer its client gives up on stops there (the object
store stops streaming when the client disconnects), so a benchmark can tell bytes a tool
used from read-ahead it abandoned.
"""

from __future__ import annotations

import time

import httpx

from neurofs_emulators.dandi.sample import BIG_BLOB_PATH, SampleArchive
from tests.support.emulators import Emulator

MiB = 1 << 20


def _blob_url(dandi: Emulator, sample: SampleArchive) -> str:
    truth = sample.asset_by_path("000001", BIG_BLOB_PATH)
    assert truth.blob is not None
    return f"{dandi.urls[1]}/dandiarchive/{truth.blob.s3_key}"


def _sent(dandi: Emulator, url_path: str) -> list[int]:
    return [int(r["sent"]) for r in dandi.requests() if r["path"] == url_path]


def test_a_whole_answer_counts_its_length(dandi: Emulator, sample: SampleArchive) -> None:
    url = _blob_url(dandi, sample)
    assert len(httpx.get(url, headers={"Range": "bytes=100-300099"}).content) == 300000
    assert _sent(dandi, httpx.URL(url).path) == [300000]


def test_an_abandoned_answer_stops_where_the_client_left(
    dandi: Emulator, sample: SampleArchive
) -> None:
    url = _blob_url(dandi, sample)
    dandi.set_knobs(bandwidth_mbps=8)  # 1 MB/s: the 64 MiB asked for would take a minute
    with httpx.stream("GET", url, headers={"Range": f"bytes=0-{64 * MiB - 1}"}) as response:
        assert response.status_code == 206
        next(response.iter_raw(65536))
    # The server notices the closed connection and stops: the count settles far below 64 MiB.
    path = httpx.URL(url).path
    settled: list[int] = []
    for _ in range(50):
        time.sleep(0.2)
        settled.append(_sent(dandi, path)[0])
        if len(settled) >= 3 and settled[-1] == settled[-3]:
            break
    assert settled[-1] == settled[-3], settled
    assert 65536 <= settled[-1] < 8 * MiB


def test_each_request_says_when_it_arrived_and_when_its_answer_ended(
    dandi: Emulator, sample: SampleArchive
) -> None:
    """``arrived`` and ``ended`` (wall-clock seconds) give a reader's timeline of requests:
    the answer ends after the emulator's latency, and the next request arrives after it
    (``ended`` is noted once the server is done with the answer, which may be a moment after
    its client has it)."""
    url = _blob_url(dandi, sample)
    dandi.set_knobs(latency_ms=50)
    before = time.time()
    for _ in range(2):
        httpx.get(url, headers={"Range": "bytes=0-99"})
    after = time.time()
    first, second = [r for r in dandi.requests() if r["path"] == httpx.URL(url).path]
    assert before <= first["arrived"] < second["arrived"] <= after
    assert first["ended"] - first["arrived"] >= 0.05
    assert second["arrived"] - first["arrived"] >= 0.05
