"""The DANDI tree through a real kernel mount, checked against what the emulator serves."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.emulators import round_trips_in_a_row

from .conftest import OTHER_TOKEN, Emulator, Mount

pytestmark = pytest.mark.mount

GIB = 1024**3


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def by_size(assets: list[dict], lo: int, hi: int) -> dict:
    return next(a for a in assets if a["blob"] and lo <= a["size"] <= hi)


def mtime(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def mount(make_mount, dandi_emulator) -> Mount:
    return make_mount(dandi_emulator)


# ---------------------------------------------------------------- listing and attributes


def test_top_level_layout(mount: Mount):
    assert sorted(os.listdir(mount.path)) == [".neurofs", "dandi"]
    ids = os.listdir(mount / "dandi")
    assert {"000001", "000002", "000003", "000004"} <= set(ids)
    assert sorted(os.listdir(mount / "dandi/000001")) == [
        "draft",
        "draft.meta",
        "latest",
        "releases",
    ]
    assert "latest" not in os.listdir(mount / "dandi/000003")  # never published
    release = os.listdir(mount / "dandi/000001/releases")
    assert release == [os.readlink(mount / "dandi/000001/latest").split("/")[-1]]
    assert (mount / "dandi/000001/latest/dandiset.yaml").is_file()


def test_ls_sizes_and_mtimes_equal_the_api(mount: Mount, dandi_emulator: Emulator):
    for version in ("draft", os.listdir(mount / "dandi/000001/releases")[0]):
        root = mount / "dandi/000001" / ("draft" if version == "draft" else f"releases/{version}")
        for asset in dandi_emulator.all_assets("000001", version):
            st = os.stat(root / asset["path"])
            assert st.st_size == asset["size"], asset["path"]
            assert st.st_mtime == pytest.approx(mtime(asset["modified"]), abs=1e-3)
            assert st.st_mode & 0o777 == 0o444
            # du counts st_blocks: they must cover the size.
            assert st.st_blocks == (asset["size"] + 511) // 512
    # Draft folders take editors' scratch files; published ones are read-only.
    assert os.stat(mount / "dandi/000001/draft").st_mode & 0o777 == 0o755
    assert os.stat(mount / "dandi/000001/latest/").st_mode & 0o777 == 0o555


def test_dandiset_yaml_is_the_version_metadata(mount: Mount, dandi_emulator: Emulator):
    import yaml

    with dandi_emulator.api() as c:
        info = c.get("dandisets/000001/versions/draft/info/").json()
    text = (mount / "dandi/000001/draft/dandiset.yaml").read_text()
    assert yaml.safe_load(text) == info["metadata"]
    assert os.stat(mount / "dandi/000001/draft/dandiset.yaml").st_size == len(text.encode())


def test_find_walks_every_asset_of_a_large_dandiset(mount: Mount, dandi_emulator: Emulator):
    assets = dandi_emulator.all_assets("000003", "draft")
    assert len(assets) > 2000
    out = subprocess.run(
        ["find", ".", "-type", "f", "-not", "-path", "*.zarr/*"],
        cwd=mount / "dandi/000003/draft",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = {p.removeprefix("./") for p in out} - {"dandiset.yaml"}
    assert found == {a["path"] for a in assets if a["blob"]}
    zarrs = [a["path"] for a in assets if a["zarr"]]
    assert all((mount / "dandi/000003/draft" / z).is_dir() for z in zarrs)


def test_listing_a_version_waits_for_two_round_trips(make_mount, slow_dandi_emulator: Emulator):
    """The root of a version of 2,005 assets (three pages) listed on a fresh mount, 300 ms a
    request: the first page and the version's metadata (dandiset.yaml's size) go out
    together, then the other two pages at once. Two round trips in a row, where one page,
    then the rest, then the metadata made three."""
    emulator = slow_dandi_emulator
    m = make_mount(emulator)
    (m / "dandi/000003").stat()
    emulator.clear_requests()
    names = os.listdir(m / "dandi/000003/draft")
    size = os.stat(m / "dandi/000003/draft/dandiset.yaml").st_size
    assert "dandiset.yaml" in names and size > 0
    records = emulator.requests()
    routes = sorted((r["path"].removeprefix("/api"), r["query"]) for r in records)
    pages = [f"order=path&page_size=1000&page={n}" for n in (1, 2, 3)]
    assert routes == sorted(
        [("/dandisets/000003/versions/draft/info/", "")]
        + [("/dandisets/000003/versions/draft/assets/", q) for q in pages]
    ), routes
    assert round_trips_in_a_row(records) == 2


def test_paths_view_lists_the_same_tree(make_mount, dandi_emulator: Emulator):
    flat = make_mount(dandi_emulator)
    paths = make_mount(dandi_emulator, flat_listing_max_assets=0)

    def walk(root: Path) -> set[tuple[str, int]]:
        out = set()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.endswith(".zarr")]
            for f in filenames:
                p = Path(dirpath) / f
                out.add((str(p.relative_to(root)), p.stat().st_size))
        return out

    assert walk(paths / "dandi/000003/draft") == walk(flat / "dandi/000003/draft")
    assert any("paths" in r["path"] for r in dandi_emulator.requests())


def test_du_counts_remote_sizes(mount: Mount, dandi_emulator: Emulator):
    everything = dandi_emulator.all_assets("000003", "draft")
    with_zarr = {a["path"].split("/")[0] for a in everything if a["zarr"]}
    assets = [a for a in everything if a["blob"]]
    sub = next(
        a["path"].split("/")[0]
        for a in assets
        if "/" in a["path"] and a["path"].split("/")[0] not in with_zarr
    )
    expected = sum(
        (a["size"] + 511) // 512 * 512 for a in assets if a["path"].startswith(sub + "/")
    )
    out = subprocess.run(
        ["du", "-s", "-B1", "--apparent-size", str(mount / "dandi/000003/draft" / sub)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    apparent = int(out.split()[0])
    out = subprocess.run(
        ["du", "-s", "-B1", str(mount / "dandi/000003/draft" / sub)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert int(out.split()[0]) == expected
    assert apparent >= sum(a["size"] for a in assets if a["path"].startswith(sub + "/"))


# ---------------------------------------------------------------- bytes


def test_cp_is_byte_identical(mount: Mount, dandi_emulator: Emulator, tmp_path: Path):
    assets = dandi_emulator.all_assets("000001", "draft")
    nwb = by_size(assets, 32 * 1024**2, GIB - 1)
    small = [a for a in dandi_emulator.all_assets("000003", "draft") if a["blob"]][:20]
    for asset, root in [(nwb, "000001/draft"), *((a, "000003/draft") for a in small)]:
        dest = tmp_path / "copy"
        subprocess.run(["cp", str(mount / "dandi" / root / asset["path"]), str(dest)], check=True)
        assert sha256_file(dest) == asset["metadata"]["digest"]["dandi:sha2-256"], asset["path"]


def test_one_gib_blob_cp_and_random_reads(mount: Mount, dandi_emulator: Emulator, tmp_path: Path):
    asset = by_size(dandi_emulator.all_assets("000001", "draft"), GIB, GIB)
    path = mount / "dandi/000001/draft" / asset["path"]
    rng = random.Random(7)
    direct = dandi_emulator
    with open(path, "rb") as f:
        for _ in range(30):
            off = rng.randrange(0, GIB - 1)
            size = rng.randrange(1, 300_000)
            f.seek(off)
            got = f.read(size)
            assert got == _direct_range(direct, asset["asset_id"], off, min(GIB, off + size))
    dest = tmp_path / "big"
    subprocess.run(["cp", str(path), str(dest)], check=True)
    assert sha256_file(dest) == asset["metadata"]["digest"]["dandi:sha2-256"]


def _direct_range(emulator: Emulator, asset_id: str, start: int, end: int) -> bytes:
    import httpx

    with emulator.api() as c:
        location = c.get(f"assets/{asset_id}/download/").headers["Location"]
    r = httpx.get(location, headers={"Range": f"bytes={start}-{end - 1}"})
    assert r.status_code == 206
    return r.content


def test_h5py_reads_the_nwb_file(mount: Mount, dandi_emulator: Emulator, tmp_path: Path):
    import h5py
    import numpy as np

    asset = by_size(dandi_emulator.all_assets("000001", "draft"), 32 * 1024**2, GIB - 1)
    local = tmp_path / "local.nwb"
    local.write_bytes(dandi_emulator.download(asset["asset_id"]))
    with (
        h5py.File(mount / "dandi/000001/draft" / asset["path"], "r") as remote,
        h5py.File(local, "r") as expected,
    ):
        names: list[str] = []
        expected.visit(names.append)
        assert len(names) > 50
        seen: list[str] = []
        remote.visit(seen.append)
        assert seen == names
        big = max(
            (n for n in names if isinstance(expected[n], h5py.Dataset)),
            key=lambda n: expected[n].size * expected[n].dtype.itemsize,
        )
        assert expected[big].size * expected[big].dtype.itemsize >= 32 * 1024**2
        np.testing.assert_array_equal(remote[big][:1000], expected[big][:1000])
        np.testing.assert_array_equal(remote[big][-500:], expected[big][-500:])
        for n in names[:40]:
            assert dict(remote[n].attrs).keys() == dict(expected[n].attrs).keys()


def test_zarr_opens_through_the_mount(mount: Mount, dandi_emulator: Emulator, tmp_path: Path):
    import numpy as np
    import zarr

    asset = next(a for a in dandi_emulator.all_assets("000003", "draft") if a["zarr"])
    root = mount / "dandi/000003/draft" / asset["path"]
    # A local copy of the same store, fetched directly from the emulator.
    local = tmp_path / "local.zarr"
    with dandi_emulator.api() as c:
        files = c.get(f"zarr/{asset['zarr']}/files/", params={"limit": 1000}).json()["results"]
        for f in files:
            target = local / f["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            r = c.get(
                f"zarr/{asset['zarr']}/files/", params={"prefix": f["Key"], "download": "true"}
            )
            assert r.status_code == 302
            import httpx

            target.write_bytes(httpx.get(r.headers["Location"]).content)
            assert os.stat(root / f["Key"]).st_size == f["Size"]
    remote_group = zarr.open_group(str(root), mode="r")
    local_group = zarr.open_group(str(local), mode="r")
    arrays = [name for name, _ in local_group.arrays()]
    assert arrays
    for name in arrays:
        np.testing.assert_array_equal(remote_group[name][:], local_group[name][:])


def test_remount_second_read_makes_no_data_request(make_mount, dandi_emulator: Emulator):
    mount = make_mount(dandi_emulator)
    asset = by_size(dandi_emulator.all_assets("000001", "draft"), 32 * 1024**2, GIB - 1)
    path = mount / "dandi/000001/draft" / asset["path"]
    first = path.read_bytes()
    mount.remount()
    dandi_emulator.reset()
    assert path.read_bytes() == first
    assert dandi_emulator.data_requests() == []
    stats = mount.stats()
    assert stats["cache"]["hits"] > 0 and stats["cache"]["misses"] == 0


def test_concurrent_cold_readers_share_one_request(make_mount, slow_dandi_emulator: Emulator):
    mount = make_mount(slow_dandi_emulator)
    asset = by_size(slow_dandi_emulator.all_assets("000001", "draft"), GIB, GIB)
    path = mount / "dandi/000001/draft" / asset["path"]
    os.stat(path)
    slow_dandi_emulator.reset()
    offset = 512 * 1024**2 + 4096
    script = (
        "import sys,os; f=os.open(sys.argv[1],os.O_RDONLY); "
        f"sys.stdout.buffer.write(os.pread(f,4096,{offset}))"
    )
    procs = [
        subprocess.Popen(["python3", "-c", script, str(path)], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert outs[0] == outs[1] and len(outs[0]) == 4096
    blob_gets = [
        r for r in slow_dandi_emulator.requests() if r["path"].startswith("/dandiarchive/")
    ]
    assert len(blob_gets) == 1, blob_gets


# ---------------------------------------------------------------- errors


def test_embargoed_is_eacces(make_mount, dandi_emulator: Emulator):
    for token in (None, OTHER_TOKEN):
        mount = make_mount(dandi_emulator, token=token)
        # Only owners see an embargoed dandiset listed; asking for it by name is EACCES.
        assert "000002" not in os.listdir(mount / "dandi")
        for path in ("dandi/000002", "dandi/000002/draft", "dandi/000002/draft/dandiset.yaml"):
            with pytest.raises(PermissionError):
                os.stat(mount / path)


def test_failed_reads_are_logged_in_errors_log(make_mount, dandi_emulator: Emulator):
    mount = make_mount(dandi_emulator, token=OTHER_TOKEN)
    with pytest.raises(PermissionError):
        os.listdir(mount / "dandi/000002/draft")
    with pytest.raises(FileNotFoundError):
        os.stat(mount / "dandi/000001/draft/nothing-here")
    lines = (mount / ".neurofs/errors.log").read_text().splitlines()
    assert lines, "a refused listing should be logged"
    assert any("EACCES" in line for line in lines)
    assert not any("nothing-here" in line for line in lines)
    assert OTHER_TOKEN not in "".join(lines)


def test_owner_reads_embargoed(mount: Mount, dandi_emulator: Emulator):
    assert "000002" in os.listdir(mount / "dandi")
    assert "dandiset.yaml" in os.listdir(mount / "dandi/000002/draft")
    asset = next(a for a in dandi_emulator.all_assets("000002", "draft") if a["blob"])
    data = (mount / "dandi/000002/draft" / asset["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == asset["metadata"]["digest"]["dandi:sha2-256"]


def test_missing_is_enoent(mount: Mount):
    for p in ("dandi/999999", "dandi/000001/draft/no-such-file", "dandi/not-an-id", "nope"):
        with pytest.raises(FileNotFoundError):
            os.stat(mount / p)


def test_open_for_write_is_erofs(mount: Mount, dandi_emulator: Emulator):
    asset = dandi_emulator.all_assets("000001", "draft")[0]
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC):
        with pytest.raises(OSError) as info:
            os.open(mount / "dandi/000001/draft" / asset["path"], flags)
        assert info.value.errno == errno.EROFS
    release = mount / "dandi/000001/latest/"
    for action in (
        lambda: (release / "new.txt").write_text("x"),
        lambda: os.mkdir(release / "newdir"),
        lambda: os.mkdir(mount / "dandi/000001/draft/newdir"),
        lambda: (mount / "dandi/new.txt").write_text("x"),
        lambda: os.rename(mount / "dandi/000001/draft" / asset["path"], release / "x"),
    ):
        with pytest.raises(OSError) as info:
            action()
        assert info.value.errno == errno.EROFS
    with pytest.raises(OSError) as info:
        os.unlink(mount / "dandi/000001/draft" / asset["path"])
    assert info.value.errno == errno.EPERM  # deleting needs -o allow_delete


# ---------------------------------------------------------------- control files and commands


def test_stats_and_status(mount: Mount, dandi_emulator: Emulator):
    asset = next(a for a in dandi_emulator.all_assets("000003", "draft") if a["blob"])
    (mount / "dandi/000003/draft" / asset["path"]).read_bytes()
    stats = mount.stats()
    assert stats["requests"] > 0 and stats["sources"]["dandi"]["requests_2xx"] > 0
    assert stats["cache"]["misses"] >= 1 and stats["bytes_served"] >= asset["size"]
    out = subprocess.run(
        [sys.executable, "-m", "neurofs", "status", str(mount.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "requests" in out and "cache" in out


def test_config_json_redacts_the_token(mount: Mount, dandi_emulator: Emulator):
    from neurofs_emulators.dandi.sample import OWNER_TOKEN

    text = (mount / ".neurofs/config.json").read_text()
    assert dandi_emulator.api_url in text
    assert OWNER_TOKEN not in text


def test_reads_by_threads_are_consistent(mount: Mount, dandi_emulator: Emulator):
    assets = [a for a in dandi_emulator.all_assets("000003", "draft") if a["blob"]][:64]
    errors: list[str] = []

    def reader(asset: dict) -> None:
        data = (mount / "dandi/000003/draft" / asset["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != asset["metadata"]["digest"]["dandi:sha2-256"]:
            errors.append(asset["path"])

    threads = [threading.Thread(target=reader, args=(a,)) for a in assets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ---------------------------------------------------------------- zarr keys from the object store


def zarr_asset(emulator: Emulator, dandiset: str) -> dict:
    return next(a for a in emulator.all_assets(dandiset, "draft") if a["zarr"])


def api_requests(log: list[dict]) -> list[dict]:
    return [r for r in log if r["path"].startswith("/api/")]


def store_requests(log: list[dict]) -> list[dict]:
    """Reads of objects (not listings of the bucket)."""
    return [
        r for r in log if r["path"].startswith("/dandiarchive/") and r["path"] != "/dandiarchive/"
    ]


def bucket_listings(log: list[dict]) -> list[dict]:
    return [
        r for r in log if r["path"].rstrip("/") == "/dandiarchive" and "list-type=2" in r["query"]
    ]


def signed(request: dict) -> bool:
    return "X-Amz-Signature" in (request.get("query") or "")


def zarr_bytes(emulator: Emulator, zarr_id: str, key: str) -> bytes:
    """A zarr key's bytes as the API's download redirect gives them."""
    import httpx

    with emulator.api() as c:
        r = c.get(f"zarr/{zarr_id}/files/", params={"prefix": key, "download": "true"})
        assert r.status_code == 302
    return httpx.get(r.headers["location"]).content


def test_open_zarr_chunks_cost_no_api_request_each(make_mount, dandi_emulator: Emulator):
    import numpy as np
    import zarr

    from neurofs_emulators.dandi.sample import SampleArchive

    mount = make_mount(dandi_emulator)
    asset = zarr_asset(dandi_emulator, "000003")
    root = mount / "dandi/000003/draft" / asset["path"]
    dandi_emulator.reset()
    keys = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    chunks = [k for k in keys if not k.rsplit("/", 1)[-1].startswith(".")]
    # Each directory of the zarr listed once, by the object store, one level each.
    levels = {"", *(k.rsplit("/", 1)[0] + "/" for k in keys if "/" in k)}
    listings = bucket_listings(dandi_emulator.requests())
    assert len(listings) == len(levels) == 3, listings
    assert all("delimiter=%2F" in r["query"] for r in listings)
    group = zarr.open_group(str(root), mode="r")
    for level in (0, 1):
        expected = SampleArchive.large_zarr_expected(level)
        np.testing.assert_array_equal(group[str(level)][:], expected)
    log = dandi_emulator.requests()
    store = store_requests(log)
    assert sorted(r["path"].split(f"/{asset['zarr']}/", 1)[1] for r in store) == keys
    assert len(chunks) == 72
    # One redirect (of the zarr's root, for the first listing) taught the mount where this
    # zarr's keys live; every key was then a plain GET of the public object, and the API was
    # asked nothing else about the zarr.
    redirects = [r for r in api_requests(log) if "download=true" in r["query"]]
    assert len(redirects) == 1, redirects
    assert [r for r in api_requests(log) if r["path"].startswith("/api/zarr/")] == redirects
    assert not any(signed(r) for r in store)
    assert all(r["status"] in (200, 206) for r in store)
    # The cache keys are the same whichever route brought the bytes.
    mount.remount()
    dandi_emulator.reset()
    np.testing.assert_array_equal(
        zarr.open_group(str(root), mode="r")["0"][:], SampleArchive.large_zarr_expected(0)
    )
    assert store_requests(dandi_emulator.requests()) == []


def test_embargoed_zarr_reads_through_the_api_route(make_mount, dandi_emulator: Emulator):
    import numpy as np
    import zarr

    from neurofs_emulators.dandi.sample import SampleArchive

    mount = make_mount(dandi_emulator)
    asset = zarr_asset(dandi_emulator, "000002")
    root = mount / "dandi/000002/draft" / asset["path"]
    dandi_emulator.reset()
    group = zarr.open_group(str(root), mode="r")
    np.testing.assert_array_equal(group["0"][:], SampleArchive.embargoed_zarr_expected(0))
    log = dandi_emulator.requests()
    store = store_requests(log)
    redirects = [r for r in api_requests(log) if "download=true" in r["query"]]
    # The private objects are never asked for unsigned: each key goes through the API's
    # presigned redirect.
    assert store and all(signed(r) and r["status"] in (200, 206) for r in store), store
    assert len(redirects) == len(store)


def test_zarr_refused_by_the_object_store_reads_through_the_api(
    make_mount, dandi_emulator: Emulator
):
    mount = make_mount(dandi_emulator)
    asset = zarr_asset(dandi_emulator, "000003")
    root = mount / "dandi/000003/draft" / asset["path"]
    with dandi_emulator.api() as c:
        files = c.get(f"zarr/{asset['zarr']}/files/", params={"prefix": "0/"}).json()["results"]
    first, refused, after = [f["Key"] for f in files if "/." not in f["Key"]][:3]
    expected = {k: zarr_bytes(dandi_emulator, asset["zarr"], k) for k in (first, refused, after)}
    assert (root / first).read_bytes() == expected[first]
    denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    dandi_emulator.refuse("GET", f"/dandiarchive/zarr/{asset['zarr']}/", 403, denied)
    dandi_emulator.reset()
    assert (root / refused).read_bytes() == expected[refused]
    assert (root / after).read_bytes() == expected[after]
    store = store_requests(dandi_emulator.requests())
    # The refused plain GET, then the presigned one; the zarr then stays on the API route.
    assert [(signed(r), r["status"]) for r in store] == [(False, 403), (True, 206), (True, 206)]


def test_vanished_zarr_key_is_enoent_and_keeps_the_direct_route(
    make_mount, dandi_emulator: Emulator
):
    mount = make_mount(dandi_emulator)
    asset = zarr_asset(dandi_emulator, "000003")
    root = mount / "dandi/000003/draft" / asset["path"]
    assert (root / "0/.zarray").read_bytes()
    expected = zarr_bytes(dandi_emulator, asset["zarr"], "0/0.0.1")
    gone = f"/dandiarchive/zarr/{asset['zarr']}/0/0.0.0"
    dandi_emulator.refuse("GET", gone, 404, "<Error><Code>NoSuchKey</Code></Error>", times=10)
    dandi_emulator.reset()
    try:
        with pytest.raises(FileNotFoundError):
            (root / "0/0.0.0").read_bytes()
    finally:
        dandi_emulator.clear_refusals()
    assert (root / "0/0.0.1").read_bytes() == expected
    log = dandi_emulator.requests()
    store = store_requests(log)
    assert {(r["path"] == gone, signed(r), r["status"]) for r in store} == {
        (True, False, 404),
        (False, False, 206),
    }
    assert api_requests(log) == []
