"""The everyday commands against real mounts: prefetch, cache, refresh, ls-sources,
completion, and the ``.neurofs/control`` channel they use. The CLI runs as users run it."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from neurofs_emulators.cave.sample import ALIGNED_VOLUME, TOS_TOKEN
from neurofs_emulators.cave.sample import DATASTACK as CAVE_DATASTACK
from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_OWNER_TOKEN
from neurofs_emulators.webknossos.sample import DATASET_L4, DATASET_RETINA, ORGANIZATION
from neurofs_emulators.webknossos.sample import OTHER_TOKEN as WK_OTHER_TOKEN
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_OWNER_TOKEN
from tests.support.memory import cached_bytes

from .conftest import OWNER_TOKEN, CaveEmulator, Emulator, Mount, WkEmulator

pytestmark = pytest.mark.mount

NEUROFS = str(Path(sys.executable).with_name("neurofs"))
MiB = 1024 * 1024


def neurofs(*args: str | Path, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [NEUROFS, *map(str, args)], capture_output=True, text=True, timeout=600, **kw
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def read_tree(top: Path) -> dict[str, bytes]:
    """Every file below ``top`` (symlinks not followed), as a reader would see it."""
    out: dict[str, bytes] = {}
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != ".neurofs"]
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                out[str(path.relative_to(top))] = path.read_bytes()
    return out


def stored_blocks(m: Mount) -> int:
    """Blocks in the mount's cache, once the writes of the reads so far have landed (blocks
    are stored in the background after a read is answered)."""
    deadline = time.monotonic() + 30
    blocks = m.stats()["cache"]["stored_blocks"]
    while blocks == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        blocks = m.stats()["cache"]["stored_blocks"]
    return int(blocks)


def control(mount: Mount, data: bytes) -> None:
    fd = os.open(mount / ".neurofs/control", os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- prefetch


def test_prefetch_of_a_dandiset_then_every_read_is_served_from_the_cache(
    make_mount, dandi_emulator: Emulator
):
    m = make_mount(dandi_emulator)
    dandiset = m / "dandi/000004"
    zarr_store = next((m / "dandi/000003/draft").rglob("*.zarr"))
    dandi_emulator.reset()
    result = neurofs("prefetch", dandiset, zarr_store, "--jobs", "3")
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("prefetched: "), result.stderr
    assert dandi_emulator.data_requests(), "prefetch read nothing from the server"
    # Remounted: the kernel's page cache is gone, only the block cache can serve the bytes.
    m.remount()
    dandi_emulator.reset()
    files = {**read_tree(dandiset), **read_tree(zarr_store)}
    assert len(files) > 10
    assert dandi_emulator.data_requests() == []
    # And the bytes are the server's.
    for asset in dandi_emulator.all_assets("000004", "draft"):
        local = (dandiset / "draft" / asset["path"]).read_bytes()
        assert local == dandi_emulator.download(asset["asset_id"])


def test_prefetch_leaves_the_page_cache_alone(make_mount, dandi_emulator: Emulator):
    m = make_mount(dandi_emulator)
    nwb = next((m / "dandi/000001/draft").rglob("*.nwb"))
    assert nwb.stat().st_size > 16 * MiB
    neurofs("prefetch", nwb)
    assert cached_bytes(nwb) == 0
    # The same file read by a plain reader stays in the page cache: the check can tell.
    subprocess.run(["cat", str(nwb)], stdout=subprocess.DEVNULL, check=True)
    assert cached_bytes(nwb) > 16 * MiB


def test_prefetch_reports_failed_files_and_goes_on(make_mount, dandi_emulator: Emulator):
    m = make_mount(dandi_emulator)
    missing = m / "dandi/000004/draft/not-there"
    result = neurofs("prefetch", m / "dandi/000004/draft", missing, check=False)
    assert result.returncode == 1
    assert f"{missing}: No such file or directory" in result.stderr
    assert "prefetched, 1 failed" in result.stderr
    outside = neurofs("prefetch", "/tmp", check=False)
    assert outside.returncode == 2 and "not inside a neurofs mount" in outside.stderr


def _chunk_requests(emulator: WkEmulator, layer: str, mag: str) -> set[str]:
    pattern = re.compile(rf"/{layer}/{mag}/0\.(\d+)\.(\d+)\.(\d+)$")
    found = set()
    for r in emulator.requests():
        match = pattern.search(r["path"])
        if match:
            x, y, z = match.groups()
            found.add(f"{z}/{y}/{x}")
    return found


def test_prefetch_with_a_bbox_fetches_exactly_the_chunks_inside(
    make_mount, wk_emulator: WkEmulator
):
    m = make_mount(wk_emulator)
    mag = m / f"webknossos/datasets/{ORGANIZATION}/l4_demo/color.ome.zarr/1"
    # Chunks of 64³: x 64..130 → chunks 1, 2; y 64..100 → 1; z 10..40 → 0.
    expected = {f"0/1/{x}" for x in (1, 2)}
    assert all((mag / key).is_file() for key in expected)
    wk_emulator.reset()
    neurofs("prefetch", mag, "--bbox", "64,64,10:130,100,40", "--jobs", "4")
    # Each served chunk those hold (x 2..5, y 2..3, z 0..1), once.
    served = {(x, y, z) for x in range(2, 6) for y in (2, 3) for z in (0, 1)}
    assert sorted(wk_emulator.served_chunks("color")) == sorted(served)
    m.remount()
    wk_emulator.reset()
    for key in sorted(expected):
        assert len((mag / key).read_bytes()) == 64**3
    assert wk_emulator.served_chunks("color") == []  # from the cache


def test_prefetch_with_a_bbox_on_the_native_layout(make_mount, wk_emulator: WkEmulator):
    m = make_mount(wk_emulator)
    mag = m / f"webknossos/datasets/{ORGANIZATION}/l4_demo/color/2-2-1"
    wk_emulator.reset()
    neurofs("prefetch", mag, "--bbox", "32,32,32:64,64,64")
    asked = _chunk_requests(wk_emulator, "color", "2-2-1")
    assert asked == ({"1/1/1"} if (mag / "0.1.1.1").is_file() else set())
    bad = neurofs("prefetch", mag.parent, "--bbox", "0,0,0:1,1,1", check=False)
    assert bad.returncode == 2 and "zarr volume mag" in bad.stderr


def test_ctrl_c_stops_a_prefetch_and_keeps_what_was_fetched(
    make_mount, slow_dandi_emulator: Emulator
):
    emulator = slow_dandi_emulator
    m = make_mount(emulator)
    draft = m / "dandi/000001/draft"
    big = max((p for p in draft.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    assert big.stat().st_size >= 512 * MiB
    proc = subprocess.Popen(
        [NEUROFS, "prefetch", str(big), "--jobs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while m.stats()["bytes_fetched"] < 8 * MiB and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "the prefetch ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    summary = err.strip().splitlines()[-1]
    match = re.fullmatch(r"interrupted: ([\d.]+) MiB of 1\.0 GiB in 0/1 files, .*", summary)
    assert match, summary
    done = int((float(match[1]) - 0.05) * MiB)  # the summary rounds to 0.1 MiB
    assert done >= 4 * MiB
    m.remount()
    emulator.reset()
    with big.open("rb") as f:
        assert len(f.read(done)) == done
    # No byte below what was fetched is asked for again. (A sequential reader makes the
    # mount read ahead beyond it: those requests start at or after the last cached block.)
    starts = [
        int(r["range"].removeprefix("bytes=").split("-")[0])
        for r in emulator.data_requests()
        if r["path"].startswith("/dandiarchive/")
    ]
    assert all(start >= done // MiB * MiB for start in starts), (done, starts)


# ---------------------------------------------------------------- refresh


def test_refresh_shows_new_dandi_metadata_and_moves_at_once(
    make_mount, private_dandi_emulator: Emulator
):
    emulator = private_dandi_emulator
    m = make_mount(emulator)
    draft = m / "dandi/000004/draft"
    sidecar = draft / "dandiset.yaml"
    old = yaml.safe_load(sidecar.read_text())
    before_listing = sorted(os.listdir(draft))
    # Changed on the server, not through the mount.
    with emulator.api() as c:
        info = c.get("dandisets/000004/versions/draft/info/").json()
        metadata = {**info["metadata"], "description": "changed on the server"}
        c.put(
            "dandisets/000004/versions/draft/", json={"metadata": metadata, "name": info["name"]}
        ).raise_for_status()
        asset = next(a for a in emulator.all_assets("000004", "draft") if "/" not in a["path"])
        moved = {**asset["metadata"], "path": "moved-" + asset["path"]}
        c.put(
            f"dandisets/000004/versions/draft/assets/{asset['asset_id']}/",
            json={"metadata": moved, "blob_id": asset["blob"]},
        ).raise_for_status()
    # Still the cached state.
    assert yaml.safe_load(sidecar.read_text())["description"] == old["description"]
    assert sorted(os.listdir(draft)) == before_listing
    neurofs("refresh", m / "dandi/000004")
    assert yaml.safe_load(sidecar.read_text())["description"] == "changed on the server"
    listing = os.listdir(draft)
    assert "moved-" + asset["path"] in listing and asset["path"] not in listing
    # The moved file reads the same bytes (content-addressed: no new download needed).
    emulator.reset()
    assert (draft / ("moved-" + asset["path"])).read_bytes() == emulator.download(asset["asset_id"])


def test_refresh_shows_a_new_cave_row(make_mount, cave_emulator: CaveEmulator):
    m = make_mount(cave_emulator)
    csv = m / f"cave/{CAVE_DATASTACK}/tables/bound_tag/annotations.csv"
    before = csv.read_text()
    with cave_emulator.local() as c:
        r = c.post(
            f"annotation/api/v2/aligned_volume/{ALIGNED_VOLUME}/table/bound_tag/annotations",
            json={"annotations": [{"pt": {"position": [123, 456, 789]}, "tag": "refreshed"}]},
        )
        r.raise_for_status()
        (new_id,) = r.json()
    assert csv.read_text() == before
    neurofs("refresh", csv.parent)
    after = csv.read_text()
    assert f"{new_id},123,456,789," in after and ",refreshed," in after
    assert after.count("\n") == before.count("\n") + 1


def test_refresh_refuses_what_is_not_there(make_mount, dandi_emulator: Emulator):
    m = make_mount(dandi_emulator)
    result = neurofs("refresh", m / "dandi/999999", check=False)
    assert result.returncode == 1 and "no such file or directory" in result.stderr
    outside = neurofs("refresh", "/tmp", check=False)
    assert outside.returncode == 1 and "not inside a neurofs mount" in outside.stderr
    neurofs("refresh", m.path)  # the whole mount


def _reloads(emulator: WkEmulator) -> list[tuple[str, str, int | None]]:
    """The datastore reloads the emulator was asked for: method, path, status."""
    return [
        (r["method"], r["path"], r["status"])
        for r in emulator.requests()
        if "/triggers/reload/" in r["path"]
    ]


def test_refresh_reload_datastore_reloads_then_shows_the_server_state(
    make_mount, wk_emulator: WkEmulator
):
    m = make_mount(wk_emulator)
    sidecar = m / f"webknossos/datasets/{ORGANIZATION}/retina_rgb/dataset.json"
    old = json.loads(sidecar.read_text())["description"]
    with wk_emulator.wk() as c:  # changed on the server, not through the mount
        route = f"datasets/{DATASET_RETINA}/updatePartial"
        c.patch(route, json={"description": "changed on the server"}).raise_for_status()
    try:
        assert json.loads(sidecar.read_text())["description"] == old
        # Through a folder's link to the dataset: the dataset it leads to is reloaded.
        link = next((m / "webknossos/folders").rglob("retina_rgb"))
        wk_emulator.reset()
        neurofs("refresh", "--reload-datastore", link)
        path = f"/data/v{wk_emulator.api_version}/triggers/reload/{ORGANIZATION}/{DATASET_RETINA}"
        assert _reloads(wk_emulator) == [("POST", path, 200)]
        assert json.loads(sidecar.read_text())["description"] == "changed on the server"
    finally:
        with wk_emulator.wk() as c:
            c.patch(route, json={"description": old}).raise_for_status()


@pytest.mark.expect_log(r"triggers/reload/.*giving up")
def test_refresh_reload_datastore_failures(make_mount, wk_emulator: WkEmulator):
    m = make_mount(wk_emulator, retry_seconds=2)
    datasets = m / f"webknossos/datasets/{ORGANIZATION}"
    l4 = datasets / "l4_demo"
    os.listdir(l4)
    wk_emulator.reset()
    # Not a dataset directory: exit 2, nothing sent.
    for path, said in [
        (datasets, "not a WEBKNOSSOS dataset directory"),
        (l4 / "dataset.json", "not a WEBKNOSSOS dataset directory"),
        (m / "webknossos/tasks", "not a WEBKNOSSOS dataset directory"),
        (datasets / "no_such_dataset", "no such file or directory"),
        (Path("/tmp"), "not inside a neurofs mount"),
    ]:
        result = neurofs("refresh", "--reload-datastore", path, check=False)
        assert result.returncode == 2 and said in result.stderr, (path, result.stderr)
    assert _reloads(wk_emulator) == []
    # Refused by the server (Oscar is neither admin, team manager nor dataset manager): exit 1
    # with the server's words.
    other = make_mount(wk_emulator, token=WK_OTHER_TOKEN)
    refused = neurofs(
        "refresh",
        "--reload-datastore",
        other / f"webknossos/datasets/{ORGANIZATION}/l4_demo",
        check=False,
    )
    assert refused.returncode == 1, refused.stderr
    assert "the server refused the reload" in refused.stderr
    assert "Token authentication failed" in refused.stderr
    path = f"/data/v{wk_emulator.api_version}/triggers/reload/{ORGANIZATION}/{DATASET_L4}"
    assert _reloads(wk_emulator) == [("POST", path, 403)]
    # The server cannot be reached: exit 3.
    wk_emulator.set_knobs(outage=True)
    try:
        down = neurofs("refresh", "--reload-datastore", l4, check=False)
    finally:
        wk_emulator.set_knobs()
    assert down.returncode == 3 and "could not be reached" in down.stderr, down.stderr


# ---------------------------------------------------------------- the control channel


@pytest.mark.parametrize(
    ("data", "code", "logged"),
    [
        (b"frobnicate\n", errno.EINVAL, "unknown command"),
        (b"cache prune older-than=seven\n", errno.EINVAL, "whole number"),
        (b"cache prune to=-5\n", errno.EINVAL, "whole number"),
        (b"refresh ../../etc\n", errno.EINVAL, "'..'"),
        (b"\x00\xff\xfe binary junk \x80\n", errno.EINVAL, "UTF-8"),
        (b"refresh a\nrefresh b\n", errno.EINVAL, "one command per write"),
        (b"refresh " + b"x" * 200_000, errno.EINVAL, "at most 4096 bytes"),
        (b"refresh dandi/999999\n", errno.ENOENT, "no such path dandi/999999"),
        (b"reload-datastore\n", errno.EINVAL, "takes the path of a WEBKNOSSOS dataset"),
        (b"reload-datastore dandi/000004\n", errno.EINVAL, "not a WEBKNOSSOS dataset"),
        (b"reload-datastore dandi/999999\n", errno.ENOENT, "no such path dandi/999999"),
    ],
)
def test_bad_control_commands_are_refused_and_disturb_nothing(
    make_mount, dandi_emulator: Emulator, data: bytes, code: int, logged: str
):
    m = make_mount(dandi_emulator)
    readme = m / "dandi/000004/draft/README.txt"
    text = readme.read_bytes()
    blocks = stored_blocks(m)
    assert blocks > 0
    with pytest.raises(OSError) as info:
        control(m, data)
    assert info.value.errno == code
    last = (m / ".neurofs/errors.log").read_text().splitlines()[-1]
    assert ".neurofs/control" in last and logged in last
    assert errno.errorcode[code] in last
    # Nothing else moved: the cache, the files, and the channel itself still work.
    assert m.stats()["cache"]["stored_blocks"] == blocks
    assert readme.read_bytes() == text
    control(m, b"refresh dandi/000004\n")


def test_the_control_file_is_write_only_and_private(make_mount, dandi_emulator: Emulator):
    m = make_mount(dandi_emulator)
    path = m / ".neurofs/control"
    assert stat.S_IMODE(path.stat().st_mode) == 0o200
    assert "control" in os.listdir(m / ".neurofs")
    with pytest.raises(PermissionError):
        path.read_bytes()
    # `echo … > control` (O_TRUNC) and a shell's printf work.
    subprocess.run(["bash", "-c", f"echo 'refresh dandi' > '{path}'"], check=True)
    bad = subprocess.run(["bash", "-c", f"echo nonsense > '{path}'"], capture_output=True)
    assert bad.returncode != 0 and b"Invalid argument" in bad.stderr


# ---------------------------------------------------------------- cache


def _stats(m: Mount) -> dict[str, Any]:
    out = neurofs("cache", "stats", "--json", "--config", m.config, "--cache-dir", m.cache_dir)
    return json.loads(out.stdout)


def test_cache_commands_on_a_live_mount_go_through_the_mount(make_mount, dandi_emulator: Emulator):
    m = make_mount(dandi_emulator)
    neurofs("prefetch", m / "dandi/000004")
    live = _stats(m)
    assert live["in_use_by"] == str(m.path)
    assert live["stored_blocks"] > 0 and live["by_kind"]["dandi-blob"]["blocks"] > 0
    assert live["oldest_use"] <= live["newest_use"] <= time.time() + 1
    text = neurofs("cache", "stats", "--config", m.config, "--cache-dir", m.cache_dir).stdout
    assert f"in use by        {m.path}" in text and "dandi-blob" in text
    # --mount finds the same cache from any path inside the mount, with no config at hand.
    by_mount = json.loads(neurofs("cache", "stats", "--json", "--mount", m / "dandi").stdout)
    assert by_mount["directory"] == live["directory"]
    assert by_mount["stored_blocks"] == live["stored_blocks"]
    assert by_mount["in_use_by"] == str(m.path)
    mixed = neurofs("cache", "stats", "--mount", m.path, "--cache-dir", m.cache_dir, check=False)
    assert mixed.returncode == 2 and "--mount takes no --config or --cache-dir" in mixed.stderr
    outside = neurofs("cache", "stats", "--mount", "/tmp", check=False)
    assert outside.returncode == 1 and "not inside a neurofs mount" in outside.stderr
    # Nothing unused for a day: nothing dropped.
    out = neurofs(
        "cache", "prune", "--older-than", "1d", "--config", m.config, "--cache-dir", m.cache_dir
    ).stdout
    assert out.startswith("dropped 0 blocks") and f"by the mount at {m.path}" in out
    assert _stats(m)["stored_blocks"] == live["stored_blocks"]
    out = neurofs(
        "cache", "clear", "--yes", "--config", m.config, "--cache-dir", m.cache_dir
    ).stdout
    assert out.startswith(f"dropped {live['stored_blocks']} blocks")
    assert _stats(m)["stored_blocks"] == 0
    assert m.stats()["cache"]["stored_blocks"] == 0  # the mount itself agrees
    # Reads still work, fetched again.
    m.remount()
    dandi_emulator.reset()
    for asset in dandi_emulator.all_assets("000004", "draft"):
        local = (m / "dandi/000004/draft" / asset["path"]).read_bytes()
        assert local == dandi_emulator.download(asset["asset_id"])
    assert _stats(m)["stored_blocks"] > 0


def test_cache_commands_without_a_mount_open_the_cache(make_mount, dandi_emulator: Emulator):
    m = make_mount(dandi_emulator)
    neurofs("prefetch", m / "dandi/000004")
    m.stop()
    stored = _stats(m)
    assert stored["in_use_by"] is None and stored["stored_blocks"] > 0
    size = stored["stored_bytes"]
    out = neurofs(
        "cache", "prune", "--older-than", "1d", "--config", m.config, "--cache-dir", m.cache_dir
    ).stdout
    assert out.startswith("dropped 0 blocks")
    neurofs(
        "cache", "prune", "--to", str(size - 1), "--config", m.config, "--cache-dir", m.cache_dir
    )
    shrunk = _stats(m)
    assert 0 < shrunk["stored_blocks"] < stored["stored_blocks"]
    assert shrunk["stored_bytes"] <= size - 1
    bad = neurofs("cache", "prune", "--older-than", "soon", "--cache-dir", m.cache_dir, check=False)
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    none = neurofs("cache", "prune", "--cache-dir", m.cache_dir, check=False)
    assert none.returncode == 2
    neurofs("cache", "clear", "--yes", "--config", m.config, "--cache-dir", m.cache_dir)
    assert _stats(m)["stored_blocks"] == 0
    # The mount starts on the emptied cache and reads fetch again.
    m.start()
    dandi_emulator.reset()
    (m / "dandi/000004/draft/README.txt").read_bytes()
    assert dandi_emulator.data_requests()


# ---------------------------------------------------------------- ls-sources


def _config(tmp_path: Path, sources: list[dict[str, Any]]) -> Path:
    lines = []
    for s in sources:
        lines.append("[[source]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in s.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def test_ls_sources_reports_reachability_and_who_we_are(
    tmp_path: Path,
    dandi_emulator: Emulator,
    wk_emulator: WkEmulator,
    cave_emulator: CaveEmulator,
):
    good = _config(
        tmp_path,
        [
            {"kind": "dandi", "name": "d", "url": dandi_emulator.api_url, "token": OWNER_TOKEN},
            {
                "kind": "webknossos",
                "name": "w",
                "url": wk_emulator.api_url,
                "token": WK_OWNER_TOKEN,
            },
            {
                "kind": "cave",
                "name": "c",
                "url": cave_emulator.api_url,
                "token": CAVE_OWNER_TOKEN,
                "datastacks": [CAVE_DATASTACK],
            },
            {"kind": "dandi", "name": "anon", "url": dandi_emulator.api_url, "token_env": "NONE_"},
        ],
    )
    env = {k: v for k, v in os.environ.items() if k != "NONE_"}
    result = neurofs("ls-sources", "--config", good, "--json", env=env)
    by_name = {s["name"]: s for s in json.loads(result.stdout)}
    assert by_name["d"]["auth"] == "signed in" and "neurofs-owner" in by_name["d"]["user"]
    assert by_name["w"]["auth"] == "signed in" and by_name["w"]["user"]
    assert by_name["c"]["auth"] == "signed in" and "Olivia Owner" in by_name["c"]["user"]
    assert by_name["anon"]["auth"] == "anonymous"
    assert all(s["reachable"] and s["ok"] for s in by_name.values())
    assert OWNER_TOKEN not in result.stdout + result.stderr

    bad = _config(
        tmp_path,
        [
            {"kind": "dandi", "name": "d", "url": dandi_emulator.api_url, "token": "wrong"},
            {"kind": "webknossos", "name": "w", "url": wk_emulator.api_url, "token": "wrong"},
            {
                "kind": "cave",
                "name": "tos",
                "url": cave_emulator.api_url,
                "token": TOS_TOKEN,
                "datastacks": [CAVE_DATASTACK],
            },
            {
                "kind": "dandi",
                "name": "gone",
                "url": "http://127.0.0.1:9/api",
                "token_env": "NONE_",
            },
        ],
    )
    result = neurofs("ls-sources", "--config", bad, "--json", env=env, check=False)
    assert result.returncode == 1
    by_name = {s["name"]: s for s in json.loads(result.stdout)}
    assert by_name["d"]["auth"] == by_name["w"]["auth"] == "token refused"
    assert by_name["tos"]["auth"] == "signed in"
    assert by_name["tos"]["note"] == "terms of service not accepted"
    assert not by_name["gone"]["reachable"] and by_name["gone"]["error"]
    text = neurofs("ls-sources", "--config", bad, env=env, check=False).stdout
    assert "token refused" in text and "UNREACHABLE" in text
    # A configuration without sources is refused, as `neurofs mount` refuses it.
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    none = neurofs("ls-sources", "--config", empty, check=False)
    assert none.returncode == 1 and "names no source" in none.stderr


# ---------------------------------------------------------------- completion


def test_completion_prints_a_working_bash_script():
    script = neurofs("completion", "bash").stdout
    assert "_NEUROFS_COMPLETE=bash_complete" in script
    assert "complete -o nosort -F _neurofs_completion neurofs" in script
    # The protocol the script speaks answers with our commands.
    env = {
        **os.environ,
        "_NEUROFS_COMPLETE": "bash_complete",
        "COMP_WORDS": "neurofs pre",
        "COMP_CWORD": "1",
    }
    answer = subprocess.run([NEUROFS], capture_output=True, text=True, env=env, check=False)
    assert "plain,prefetch" in answer.stdout.splitlines()
    for shell in ("zsh", "fish"):
        assert "neurofs" in neurofs("completion", shell).stdout
    assert neurofs("completion", "tcsh", check=False).returncode == 2
