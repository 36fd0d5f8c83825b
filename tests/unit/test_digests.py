"""The dandi-etag hasher and the zarr checksum (``neurofs.io.digests``), one layer alone."""

from __future__ import annotations

import hashlib

import pytest

from neurofs.io.digests import (
    MAX_PARTS,
    DandiEtagHasher,
    ZarrEntryDigest,
    dandi_etag,
    etag_part_size,
    zarr_checksum,
)

MiB = 1 << 20


def test_etag_of_empty_and_single_part() -> None:
    assert dandi_etag(b"") == hashlib.md5(b"").hexdigest() + "-0"
    one = hashlib.md5(hashlib.md5(b"abc").digest()).hexdigest()
    assert dandi_etag(b"abc") == f"{one}-1"


@pytest.mark.parametrize("piece", [1, 4093, MiB, 70 * MiB])
def test_hasher_is_independent_of_how_the_bytes_arrive(piece: int) -> None:
    data = bytes(range(256)) * (65 * MiB // 256) + b"tail"
    whole = hashlib.md5(
        hashlib.md5(data[: 64 * MiB]).digest() + hashlib.md5(data[64 * MiB :]).digest()
    ).hexdigest()
    hasher = DandiEtagHasher(len(data))
    view = memoryview(data)
    for off in range(0, len(data), piece) if piece > 1 else [0]:
        hasher.update(view[off : off + piece] if piece > 1 else view)
    assert hasher.hexdigest() == f"{whole}-2"


def test_hasher_refuses_a_wrong_length() -> None:
    short = DandiEtagHasher(10)
    short.update(b"123")
    with pytest.raises(ValueError):
        short.hexdigest()
    with pytest.raises(ValueError):
        DandiEtagHasher(2).update(b"123")


def test_part_size_grows_beyond_ten_thousand_parts() -> None:
    assert etag_part_size((MAX_PARTS - 1) * 64 * MiB) == 64 * MiB
    size = MAX_PARTS * 64 * MiB
    assert etag_part_size(size) == -(-size // MAX_PARTS)


def test_zarr_checksum_of_an_empty_store_and_a_nested_one() -> None:
    empty = hashlib.md5(b'{"directories":[],"files":[]}').hexdigest()
    assert zarr_checksum([]) == f"{empty}-0--0"
    leaf = ZarrEntryDigest("a/b/c", "0" * 32, 5)
    b = hashlib.md5(
        b'{"directories":[],"files":[{"digest":"' + b"0" * 32 + b'","name":"c","size":5}]}'
    ).hexdigest()
    a = hashlib.md5(
        b'{"directories":[{"digest":"' + f"{b}-1--5".encode() + b'","name":"b","size":5}],'
        b'"files":[]}'
    ).hexdigest()
    root = hashlib.md5(
        b'{"directories":[{"digest":"' + f"{a}-1--5".encode() + b'","name":"a","size":5}],'
        b'"files":[]}'
    ).hexdigest()
    assert zarr_checksum([leaf]) == f"{root}-1--5"
