"""Hostile servers: what a broken or malicious server sends never escapes the tree, hangs,
exhausts memory, corrupts a read or leaks the token.

The server is ``hostile_server.HostileServer`` on loopback (DANDI-, WEBKNOSSOS- and
CAVE-shaped answers); a second instance is "another host" (the blob store download
redirects point to). Real kernel mounts where the behaviour is visible to users; the HTTP
client directly for the protocol-level cases.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from neurofs.errors import RemoteError
from neurofs.io import exchange
from neurofs.io.http import HttpClient, RetryPolicy
from neurofs.io.stats import Stats
from neurofs.tree.names import is_valid_name, unique_names
from tests.mount.conftest import Mount, require_fuse
from tests.reliability.conftest import Figures
from tests.reliability.hostile_server import (
    CAVE_TABLES,
    HOSTILE_PATHS,
    LYING_BLOBS,
    SIZE,
    TOKEN,
    HostileServer,
    Recorded,
    blob_bytes,
)
from tests.support.memory import high_water_mark

RETRY_SECONDS = 2.0
# A read that fails must fail within its retry budget; this is a generous "does not hang".
HANG_LIMIT = 20 * RETRY_SECONDS + 30
TOKEN_FORMS = {TOKEN, quote(TOKEN, safe=""), quote_plus(TOKEN)}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[HostileServer, HostileServer]]:
    with HostileServer() as blobs, HostileServer(blob_host=blobs) as api:
        yield api, blobs


def _mount(tmp: Path, kind: str, url: str, **options: Any) -> Mount:
    require_fuse()
    (tmp / "mnt").mkdir()
    lines = ["[[source]]", f'kind = "{kind}"', f'name = "{kind}"', f'url = "{url}"']
    lines += [f'token = "{TOKEN}"', f"retry_seconds = {RETRY_SECONDS}"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in options.items()]
    config = tmp / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)
    mount = Mount(tmp / "mnt", config, tmp / "cache")
    mount.start()
    return mount


@pytest.fixture(scope="module")
def dandi(
    servers: tuple[HostileServer, HostileServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mount]:
    mount = _mount(tmp_path_factory.mktemp("hostile-dandi"), "dandi", servers[0].url + "/api")
    yield mount
    mount.stop()


def _read(path: Path) -> tuple[bytes | None, int | None, float]:
    """Read a whole file in a child process (a hung read fails the test instead of hanging
    it): (bytes, None) or (None, errno), and the seconds it took."""
    code = (
        "import os, sys\n"
        "try:\n"
        f"    data = open({str(path)!r}, 'rb').read()\n"
        "except OSError as e:\n"
        "    sys.stdout.write(f'E{e.errno}'); sys.exit(0)\n"
        "sys.stdout.buffer.write(b'D' + data)\n"
    )
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=HANG_LIMIT, check=True
    ).stdout
    took = time.monotonic() - t0
    if out.startswith(b"E"):
        return None, int(out[1:]), took
    return out[1:], None, took


def _listdir(path: Path) -> tuple[list[str] | None, int | None]:
    code = (
        "import os, sys, json\n"
        "try:\n"
        f"    print(json.dumps(os.listdir({str(path)!r})))\n"
        "except OSError as e:\n"
        "    print(json.dumps(e.errno))\n"
    )
    import json

    out = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=HANG_LIMIT, check=True
        ).stdout
    )
    return (out, None) if isinstance(out, list) else (None, out)


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _mapped_path(server_path: str) -> str:
    """Where the mount shows an asset of HOSTILE_PATHS: each component mapped with
    ``unique_names`` among its siblings (the documented mapping)."""
    parts = _components(server_path)
    out: list[str] = []
    for depth, part in enumerate(parts):
        siblings = {
            _components(p)[depth]
            for p in HOSTILE_PATHS
            if len(_components(p)) > depth and _components(p)[:depth] == parts[:depth]
        }
        out.append(unique_names(siblings)[part])
    return "/".join(out)


def _no_token_in(records: list[Recorded]) -> int:
    """How many of ``records`` carried the token (a header or the query, any encoding)."""
    leaks = 0
    for r in records:
        text = r.query + " " + " ".join(f"{k}: {v}" for k, v in r.headers.items())
        if any(form in text for form in TOKEN_FORMS):
            leaks += 1
    return leaks


# ---------------------------------------------------------------- DANDI through a mount


def test_hostile_names_stay_inside_the_tree(dandi: Mount, report: Figures) -> None:
    """Every server path shows up under one safe name per component, distinct server
    names stay distinct, nothing leaves the mount, and each file reads its own bytes."""
    root = dandi / "dandi/000001/draft"
    listed = os.listdir(root)
    assert len(listed) == len(set(listed))
    top = {_components(path)[0] for path in HOSTILE_PATHS}
    assert len(listed) == len(top) + 1  # + dandiset.yaml
    assert all(is_valid_name(n) for n in listed)
    for where, dirs, files in os.walk(root):
        for name in dirs + files:
            real = os.path.realpath(os.path.join(where, name))
            assert real.startswith(str(dandi.path) + "/"), real
            report.operations += 1
    # Each asset at the path its components map to, with its own bytes.
    checked = 0
    for i, server_path in enumerate(HOSTILE_PATHS):
        here = root / _mapped_path(server_path)
        assert here.is_file(), server_path
        data = here.read_bytes()
        assert data == blob_bytes(f"blob-n{i}"), server_path
        checked += len(data)
    assert (root / "Case.txt").read_bytes() != (root / "case.txt").read_bytes()
    ctl = [n for n in listed if n.startswith("ctl")]
    assert len(ctl) == 3  # ctl\x01, ctl\x02 and the literal ctl\ufffd: three files
    passwd = root / "\uff0e\uff0e/\uff0e\uff0e/\uff0e\uff0e/\uff0e\uff0e/etc/passwd"
    assert passwd.read_bytes() != Path("/etc/passwd").read_bytes()
    report.bytes_verified = checked
    report.note = f"{len(HOSTILE_PATHS)} hostile asset paths, {len(listed)} names at the root"


@pytest.mark.expect_log(r"GET .*/blobs/s-[a-z0-9-]+\.bin.*: giving up after \d+ tries")
def test_sizes_that_lie_give_eio_never_wrong_bytes(dandi: Mount, report: Figures) -> None:
    """The metadata says 1000 bytes; the blob host says or sends something else. A read
    returns the true bytes or fails with EIO within the retry budget: never short, padded
    or shifted data."""
    root = dandi / "dandi/000002/draft"
    outcomes: dict[str, str] = {}
    for name in LYING_BLOBS:
        assert (root / name).stat().st_size == SIZE
        data, err, took = _read(root / name)
        report.operations += 1
        truth = blob_bytes(f"blob-s-{name}")
        if data is not None:
            assert data == truth, f"{name}: {len(data)} bytes, not the true ones"
            report.bytes_verified += len(data)
            outcomes[name] = "exact"
        else:
            assert err == errno.EIO, (name, err)
            outcomes[name] = f"EIO in {took:.1f}s"
    assert outcomes["honest.bin"] == "exact"
    assert all(v != "exact" for k, v in outcomes.items() if k != "honest.bin"), outcomes
    report.note = "; ".join(f"{k}: {v}" for k, v in outcomes.items())


@pytest.mark.parametrize(
    ("dandiset", "what"),
    [
        ("000003", "next link pointing to itself"),
        ("000004", "an endless JSON body"),
        ("000008", "empty pages that never end"),
    ],
)
def test_listings_that_never_end_fail_in_bounded_time_and_memory(
    dandi: Mount, dandiset: str, what: str, report: Figures
) -> None:
    entries, err = _listdir(dandi / f"dandi/{dandiset}/draft")
    report.operations = 1
    assert entries is None and err == errno.EIO, (what, entries, err)
    peak = _daemon_peak_rss(dandi)
    # The endless body is cut at MAX_JSON_BYTES (64 MiB); the daemon stays well below 1 GiB.
    assert peak < 1024 * 1024 * 1024, f"daemon peak RSS {peak >> 20} MiB"
    assert "dandi" in os.listdir(dandi.path)  # still serving
    report.note = f"{what}: EIO; daemon peak RSS {peak >> 20} MiB"


@pytest.mark.expect_log(r"giving up after \d+ tries: unexpected HTTP 302")
def test_redirect_loops_and_redirects_off_the_api(
    dandi: Mount, servers: tuple[HostileServer, HostileServer], report: Figures
) -> None:
    blobs = servers[1]
    # The API redirects to itself forever: the lookup fails, it does not hang.
    with pytest.raises(OSError) as info:
        (dandi / "dandi/000006").stat()
    assert info.value.errno == errno.EIO
    # The API redirects to another host: refused without sending anything there.
    with pytest.raises(OSError) as info:
        (dandi / "dandi/000007").stat()
    assert info.value.errno == errno.EIO
    assert not [r for r in blobs.requests() if r.path.startswith("/api/")]
    # The download redirect on the blob host loops: the read fails with EIO in bounded time.
    data, err, took = _read(dandi / "dandi/000005/draft/loop.bin")
    assert data is None and err == errno.EIO
    report.operations = 3
    report.note = f"redirect loop on a download: EIO in {took:.1f}s"


@pytest.mark.expect_log(r"write refused \(EIO\): PUT .*: answered with a redirect")
def test_writes_answered_with_a_redirect_fail_and_keep_the_bytes(
    dandi: Mount, report: Figures
) -> None:
    """The server answers every PUT with a redirect (an auth proxy's login page): that is
    never a success. The save fails and the user's text is kept."""
    path = dandi / "dandi/000001/draft/dandiset.yaml"
    text = path.read_bytes().replace(b"name: x", b"name: edited by a hostile test")
    assert text != path.read_bytes()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, text)
    with pytest.raises(OSError) as info:
        os.close(fd)
    assert info.value.errno == errno.EIO
    rejected = dandi / ".neurofs/rejected/dandi/000001/draft"
    kept = [p for p in rejected.iterdir() if p.name.startswith("dandiset.yaml.")]
    assert any(p.read_bytes() == text for p in kept)
    report.operations = 1
    report.edits_lost = 0 if any(p.read_bytes() == text for p in kept) else 1
    report.note = "PUT answered 302: EIO at close, the text kept in rejected/"


def test_the_token_never_reaches_another_host(
    dandi: Mount, servers: tuple[HostileServer, HostileServer], report: Figures
) -> None:
    """After everything above (downloads redirected to the blob host, redirects off the
    API, loops): the blob host never saw the token; the API host did (in the header)."""
    api, blobs = servers
    (dandi / "dandi/000001/draft/plain.txt").read_bytes()
    assert blobs.requests(), "the blob host was never asked: the test proves nothing"
    assert any(r.headers.get("Authorization") == f"token {TOKEN}" for r in api.requests())
    leaked = _no_token_in(blobs.requests())
    report.operations = len(blobs.requests())
    report.tokens_leaked = leaked
    report.note = f"{len(blobs.requests())} requests to the other host, none with the token"
    assert leaked == 0


def _daemon_peak_rss(mount: Mount) -> int:
    pid = int(mount.last_output.split("daemon pid ", 1)[1].split(",", 1)[0])
    return high_water_mark(pid)


# ---------------------------------------------------------------- WEBKNOSSOS and CAVE


@pytest.mark.expect_log(r"neurofs\.fs\.operations: .*: left out an entry named")
def test_webknossos_hostile_names_and_geometry(
    servers: tuple[HostileServer, HostileServer],
    tmp_path_factory: pytest.TempPathFactory,
    report: Figures,
) -> None:
    mount = _mount(tmp_path_factory.mktemp("hostile-wk"), "webknossos", servers[0].url)
    try:
        datasets = mount / "webknossos/datasets"
        orgs = os.listdir(datasets)
        # "org/with/slashes", "..", "", org\x01, org\x02, lab
        assert len(orgs) == len(set(orgs)) == 6
        seen, bounded = 0, 0

        def fail(exc: OSError) -> None:
            raise exc

        for where, dirs, files in os.walk(datasets, onerror=fail):
            for name in dirs + files:
                assert is_valid_name(name)
                real = os.path.realpath(os.path.join(where, name))
                assert real.startswith(str(mount.path) + "/")
                seen += 1
            # The huge layer's chunk levels are not listed (67 million entries each).
            if where.endswith(("huge/color.ome.zarr/1", "huge/color/1")):
                assert files == [".zarray"] and dirs == []
                bounded += 1
            if where.endswith((".ome.zarr/1", "/1")):
                dirs[:] = []  # the small layers' chunks: listed, not walked further
        assert bounded == 2
        huge = datasets / "\uff0e\uff0e" / "huge"
        chunk = huge / "color.ome.zarr/1/0/0/0"
        assert chunk.stat().st_size == 64**3  # readable by name, as zarr readers open them
        assert not (huge / "color/1.raw").exists()  # far beyond raw_max_bytes
        same = os.listdir(datasets / "org\u2215with\u2215slashes")
        assert len(same) == 2  # two datasets named "../escape": both shown
        # A dataset whose own route answers 404 still lists what is known of it.
        vanishing = set(os.listdir(datasets / "lab/vanishing"))
        assert {"datasource-properties.json", "color.ome.zarr"} <= vanishing
        assert "dataset.json" not in vanishing
        folders = os.listdir(mount / "webknossos/folders")
        assert {"same", "\uff0e\uff0e", "a\u2215b"} <= set(folders)
        assert len([f for f in folders if f.startswith("same")]) == 2
        report.operations = seen
        report.note = f"{seen} entries walked; a 2^31-voxel layer lists only .zarray"
    finally:
        mount.stop()


def test_cave_hostile_table_names(
    servers: tuple[HostileServer, HostileServer],
    tmp_path_factory: pytest.TempPathFactory,
    report: Figures,
) -> None:
    mount = _mount(
        tmp_path_factory.mktemp("hostile-cave"), "cave", servers[0].url, datastacks=["stack"]
    )
    try:
        tables = os.listdir(mount / "cave/stack/tables")
        assert len(tables) == len(set(tables)) == len(set(CAVE_TABLES))
        assert all(is_valid_name(t) for t in tables)
        assert "syn\u2215apse" in tables and "synapse" in tables
        report.operations = len(tables)
        report.note = f"{len(CAVE_TABLES)} hostile table names, {len(tables)} distinct entries"
    finally:
        mount.stop()


# ---------------------------------------------------------------- the HTTP client itself


def _client(api: HostileServer, **retry: float) -> HttpClient:
    return HttpClient(
        "dandi",
        api.url + "/api",
        Stats(),
        auth_headers={"Authorization": f"token {TOKEN}"},
        retry=RetryPolicy(total_seconds=retry.get("total", 1.0), first_backoff=0.05),
    )


async def test_download_redirect_to_another_host_carries_no_token(
    servers: tuple[HostileServer, HostileServer],
) -> None:
    api, blobs = servers
    client = _client(api)
    try:
        before = len(blobs.requests())
        url = await client.resolve_redirect("assets/n0/download/")
        assert url.startswith(blobs.url)
        data = await client.get_range(url, 0, SIZE, SIZE)
        assert data == blob_bytes("blob-n0")
        sent = blobs.requests()[before:]
        assert sent and _no_token_in(sent) == 0
        assert all("authorization" not in (k.lower() for k in r.headers) for r in sent)
        # A redirect of an API call to another host is refused before anything is sent.
        with pytest.raises(RemoteError, match="another host"):
            await client.get_json("dandisets/000007/")
        assert len(blobs.requests()) == before + len(sent)
        with pytest.raises(RemoteError, match="too many redirects"):
            await client.get_json("dandisets/000006/")
    finally:
        await client.aclose()


async def test_endless_json_is_cut_at_the_bound(
    servers: tuple[HostileServer, HostileServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange, "MAX_JSON_BYTES", 4 * 1024 * 1024)
    client = _client(servers[0])
    try:
        with pytest.raises(RemoteError, match="larger than"):
            await client.get_json("dandisets/000004/versions/draft/assets/")
    finally:
        await client.aclose()


async def test_a_write_answered_with_a_redirect_is_an_error(
    servers: tuple[HostileServer, HostileServer],
) -> None:
    client = _client(servers[0])
    try:
        for method in ("PUT", "POST", "PATCH"):
            with pytest.raises(RemoteError, match="redirect"):
                await client.send_json(method, "dandisets/000001/versions/draft/", {"a": 1})
    finally:
        await client.aclose()
