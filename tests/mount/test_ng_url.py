"""``neurofs ng-url`` against a real mount: the printed neuroglancer URL points at a server
that hands out the mount's bytes (ranges, missing chunks, CORS) and nothing outside it."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from neurofs.cli.ngurl import DEFAULT_CLIENT
from neurofs_emulators.webknossos.sample import ORGANIZATION, SampleWorld

from .conftest import NEUROFS, Mount, WkEmulator

pytestmark = pytest.mark.mount

WORLD = SampleWorld()
DATASET = "l4_demo"
OME_CHUNK = 64  # the OME-Zarr view's chunk side


@dataclass
class Served:
    """A running ``neurofs ng-url``: its process, printed state and server address."""

    process: subprocess.Popen[str]
    url: str
    state: dict[str, Any]
    base: str  # http://host:port/

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=headers, timeout=60)

    def raw(self, method: str, target: str) -> http.client.HTTPResponse:
        """A request whose target is sent exactly as given (no client-side normalisation)."""
        parsed = urllib.parse.urlsplit(self.base)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        conn.request(method, target)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response


@contextmanager
def ng_url(path: Path, *args: str) -> Iterator[Served]:
    process = subprocess.Popen(
        [*NEUROFS, "ng-url", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "#!" in line:
                break
        else:
            raise AssertionError(f"no URL printed: {lines} {process.stderr.read()}")
        url = line.strip()
        state = json.loads(urllib.parse.unquote(url.split("#!", 1)[1]))
        source = state["layers"][0]["source"]["url"]
        base = source.removeprefix("zarr://").split("/webknossos/")[0] + "/"
        yield Served(process, url, state, base)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


@pytest.fixture
def mount(make_mount, wk_emulator: WkEmulator) -> Mount:
    return make_mount(wk_emulator)


def layer_dir(mount: Mount, layer: str) -> Path:
    return mount / f"webknossos/datasets/{ORGANIZATION}/{DATASET}/{layer}.ome.zarr"


def box_centre(layer: str, mag: tuple[int, int, int] = (1, 1, 1)) -> list[float]:
    spec = WORLD.layer(DATASET, layer)
    return [(t + s / 2) / m for t, s, m in zip(spec.top_left, spec.size, mag, strict=True)]


def test_the_url_shows_the_layer_at_the_centre_of_its_bounding_box(mount: Mount):
    with ng_url(layer_dir(mount, "color")) as served:
        assert served.url.startswith(DEFAULT_CLIENT + "#!")
        state = served.state
        vx, vy, vz = WORLD.dataset(DATASET).voxel_size
        assert state["dimensions"] == {
            "x": [pytest.approx(vx * 1e-9), "m"],
            "y": [pytest.approx(vy * 1e-9), "m"],
            "z": [pytest.approx(vz * 1e-9), "m"],
        }
        assert state["displayDimensions"] == ["x", "y", "z"]
        assert state["position"] == box_centre("color")
        assert state["layout"] == "4panel"
        [layer] = state["layers"]
        assert layer["type"] == "image" and layer["name"] == "color"
        assert layer["source"]["url"] == (
            f"zarr://{served.base}webknossos/datasets/{ORGANIZATION}/{DATASET}/color.ome.zarr"
        )
    assert served.process.returncode == 0
    rest = served.process.stdout.read()
    assert "stopped" in rest


def test_a_label_image_is_a_segmentation_layer_and_a_mag_is_scaled(mount: Mount):
    with ng_url(layer_dir(mount, "segmentation"), "--layout", "xy") as served:
        assert served.state["layers"][0]["type"] == "segmentation"
        assert served.state["layout"] == "xy"
    with ng_url(layer_dir(mount, "color") / "2-2-1") as served:
        [layer] = served.state["layers"]
        assert layer["source"]["url"].endswith("/color.ome.zarr/2-2-1")
        vx, _, vz = WORLD.dataset(DATASET).voxel_size
        out = layer["source"]["transform"]["outputDimensions"]
        assert list(out) == ["z", "y", "x"]
        assert out["x"] == [pytest.approx(2 * vx * 1e-9), "m"]
        assert out["z"] == [pytest.approx(vz * 1e-9), "m"]
        assert served.state["position"] == box_centre("color", (2, 2, 1))


def test_the_server_hands_out_the_mounts_bytes(mount: Mount, wk_emulator: WkEmulator):
    rel = f"webknossos/datasets/{ORGANIZATION}/{DATASET}/color.ome.zarr"
    with ng_url(layer_dir(mount, "color")) as served:
        zattrs = served.get(f"{rel}/.zattrs")
        assert zattrs.status_code == 200
        assert zattrs.content == (layer_dir(mount, "color") / ".zattrs").read_bytes()
        assert zattrs.headers["content-type"] == "application/json"
        assert zattrs.headers["access-control-allow-origin"] == "*"

        # A chunk inside the bounding box, asked for in part: the bytes are the ground truth.
        spec = WORLD.layer(DATASET, "color")
        cx, cy, cz = (t // OME_CHUNK + 1 for t in spec.top_left)
        x, y, z = (c * OME_CHUNK for c in (cx, cy, cz))
        side = OME_CHUNK
        box = WORLD.voxels(DATASET, "color", (1, 1, 1), x, y, z, x + side, y + side, z + side)
        truth = box[0].transpose(2, 1, 0)
        truth_bytes = np.ascontiguousarray(truth).tobytes()
        wk_emulator.reset()
        part = served.get(f"{rel}/1/{cz}/{cy}/{cx}", Range="bytes=1000-4999")
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 1000-4999/{len(truth_bytes)}"
        assert part.content == truth_bytes[1000:5000]
        assert "content-range" in part.headers["access-control-expose-headers"].lower()
        assert any("/data" in r["path"] for r in wk_emulator.requests())  # really fetched
        whole = served.get(f"{rel}/1/{cz}/{cy}/{cx}")
        assert whole.status_code == 200 and whole.content == truth_bytes
        head = served.raw("HEAD", f"/{rel}/1/{cz}/{cy}/{cx}")
        assert head.status == 200 and head.getheader("Content-Length") == str(len(truth_bytes))

        # A key past the array's end: 404, which neuroglancer reads as the fill value.
        assert served.get(f"{rel}/1/90/90/90").status_code == 404
        assert served.get(f"{rel}/no-such-key").status_code == 404
        assert served.get(f"{rel}/1/{cz}/{cy}/{cx}", Range="bytes=99999999-").status_code == 416

        # Nothing outside the mount, however the path is spelt.
        for target in (
            "/../../../etc/passwd",
            f"/{rel}/../../../../../../../etc/passwd",
            "/webknossos/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        ):
            answer = served.raw("GET", target)
            assert answer.status == 403, target
        assert served.raw("PUT", f"/{rel}/.zattrs").status == 405

        preflight = httpx.options(served.base + f"{rel}/.zattrs", timeout=60)
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "range" in preflight.headers["access-control-allow-headers"].lower()

        # A symlink that stays inside the mount is followed.
        folders = mount / "webknossos/folders"
        [link] = [p for p in folders.rglob(DATASET) if p.is_symlink()][:1]
        via_link = served.get(f"{link.relative_to(mount.path).as_posix()}/color.ome.zarr/.zattrs")
        assert via_link.status_code == 200 and via_link.content == zattrs.content


def test_debug_logs_each_request_and_ctrl_c_stops(mount: Mount):
    with ng_url(layer_dir(mount, "color"), "--log-level", "debug") as served:
        assert served.get("webknossos/datasets").status_code == 404  # a directory
    err = served.process.stderr.read()
    assert '"GET /webknossos/datasets HTTP/1.1" 404' in err
    assert served.process.returncode == 0


def test_bad_paths_are_refused_clearly(mount: Mount, tmp_path: Path):
    def run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*NEUROFS, "ng-url", str(path), *args], capture_output=True, text=True, timeout=60
        )

    dataset = mount / f"webknossos/datasets/{ORGANIZATION}/{DATASET}"
    not_ome = run(dataset)
    assert not_ome.returncode != 0 and "is not an OME-Zarr image" in not_ome.stderr
    a_file = run(dataset / "color/1.raw")
    assert a_file.returncode != 0 and "is a file" in a_file.stderr
    outside = run(tmp_path)
    assert outside.returncode != 0 and "is not inside a neurofs mount" in outside.stderr
    no_port = run(layer_dir(mount, "color"), "--no-serve")
    assert no_port.returncode != 0 and "--no-serve needs --port" in no_port.stderr
    printed = run(layer_dir(mount, "color"), "--no-serve", "--port", "8123")
    assert printed.returncode == 0
    assert "http%3A%2F%2F127.0.0.1%3A8123%2Fwebknossos" in printed.stdout
