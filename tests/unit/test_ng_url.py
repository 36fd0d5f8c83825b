"""``neurofs ng-url``'s parts on plain directories: the neuroglancer state built from an
OME-Zarr image's metadata, and the file server's path, range and header rules."""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neurofs.cli.file_server import FileServer, parse_range, resolve
from neurofs.cli.neuroglancer import NgUrlError, find_layer, viewer_state
from neurofs.neuroglancer import neuroglancer_url
from neurofs.sources.webknossos.models import DataLayer, Scale
from neurofs.sources.webknossos.volume import ome_zattrs

BASE = "http://127.0.0.1:8000/"


def _layer_model(name: str, category: str, element_class: str) -> DataLayer:
    return DataLayer.model_validate(
        {
            "name": name,
            "category": category,
            "elementClass": element_class,
            "boundingBox": {"topLeft": [64, 32, 16], "width": 320, "height": 256, "depth": 96},
            "mags": [{"mag": [1, 1, 1]}, {"mag": [2, 2, 1]}, {"mag": [4, 4, 2]}],
        }
    )


def write_ome(
    root: Path,
    name: str,
    *,
    category: str = "color",
    element_class: str = "uint8",
    props: bool = True,
    scale: Scale | None = None,
) -> Path:
    """A dataset directory as the mount shows it: ``<name>.ome.zarr`` with the mount's own
    ``.zattrs`` and ``.zarray`` files, and (optionally) ``datasource-properties.json``."""
    layer = _layer_model(name, category, element_class)
    mags = [m.mag for m in layer.mags]
    scale = scale or Scale(factor=(11.24, 11.24, 28.0), unit="nanometer")
    group = root / f"{name}.ome.zarr"
    group.mkdir(parents=True)
    (group / ".zgroup").write_text('{"zarr_format": 2}')
    (group / ".zattrs").write_text(json.dumps(ome_zattrs(layer, mags, scale, name)))
    for mag, shape in (("1", [112, 288, 384]), ("2-2-1", [112, 144, 192]), ("4-4-2", [56, 72, 96])):
        (group / mag).mkdir()
        (group / mag / ".zarray").write_text(json.dumps({"shape": shape}))
    if props:
        (root / "datasource-properties.json").write_text(
            json.dumps({"dataLayers": [layer.model_dump(by_alias=True)]})
        )
    return group


def test_state_shape_scales_and_position(tmp_path: Path):
    group = write_ome(tmp_path / "ds", "color")
    state = viewer_state(find_layer(group, tmp_path), BASE)
    assert state["dimensions"] == {
        "x": [pytest.approx(11.24e-9), "m"],
        "y": [pytest.approx(11.24e-9), "m"],
        "z": [pytest.approx(28e-9), "m"],
    }
    assert state["displayDimensions"] == ["x", "y", "z"]
    assert state["position"] == [64 + 160, 32 + 128, 16 + 48]  # the bounding box's centre
    assert state["layout"] == "4panel"
    assert state["layers"] == [
        {"type": "image", "source": {"url": f"zarr://{BASE}ds/color.ome.zarr"}, "name": "color"}
    ]
    assert state["selectedLayer"] == {"layer": "color"}


def test_units_other_than_nanometers_are_converted_to_meters(tmp_path: Path):
    group = write_ome(tmp_path, "color", scale=Scale(factor=(0.5, 0.5, 2.0), unit="micrometer"))
    state = viewer_state(find_layer(group, tmp_path), BASE)
    assert state["dimensions"]["x"] == [pytest.approx(0.5e-6), "m"]
    assert state["dimensions"]["z"] == [pytest.approx(2e-6), "m"]


def test_unknown_unit_is_refused(tmp_path: Path):
    group = write_ome(tmp_path, "color", scale=Scale(factor=(1, 1, 1), unit="furlong"))
    with pytest.raises(NgUrlError, match="unsupported space unit 'furlong'"):
        find_layer(group, tmp_path)


def test_label_image_is_a_segmentation_layer(tmp_path: Path):
    group = write_ome(tmp_path, "cells", category="segmentation", props=False)
    assert "image-label" in json.loads((group / ".zattrs").read_text())
    state = viewer_state(find_layer(group, tmp_path), BASE, layout="xy")
    assert state["layers"][0]["type"] == "segmentation"
    assert state["layout"] == "xy"


def test_without_datasource_properties_the_array_centre_is_shown(tmp_path: Path):
    group = write_ome(tmp_path, "color", props=False)
    state = viewer_state(find_layer(group, tmp_path), BASE)
    assert state["position"] == [384 / 2, 288 / 2, 112 / 2]


def test_a_mag_is_its_own_array_with_named_scaled_dimensions(tmp_path: Path):
    group = write_ome(tmp_path, "color")
    state = viewer_state(find_layer(group / "4-4-2", tmp_path), BASE)
    [layer] = state["layers"]
    assert layer["source"]["url"] == f"zarr://{BASE}color.ome.zarr/4-4-2"
    out = layer["source"]["transform"]["outputDimensions"]
    assert list(out) == ["z", "y", "x"]  # the array's own axis order
    assert list(layer["source"]["transform"]["inputDimensions"].values()) == list(out.values())
    assert out["x"] == [pytest.approx(4 * 11.24e-9), "m"]
    assert out["z"] == [pytest.approx(2 * 28e-9), "m"]
    assert state["dimensions"]["x"] == [pytest.approx(4 * 11.24e-9), "m"]
    assert state["position"] == [224 / 4, 160 / 4, 64 / 2]  # in this mag's voxels


def test_a_multichannel_mag_names_its_channel_axis_as_local(tmp_path: Path):
    group = write_ome(tmp_path, "rgb", element_class="uint24")
    assert [
        a["name"] for a in json.loads((group / ".zattrs").read_text())["multiscales"][0]["axes"]
    ] == ["c", "z", "y", "x"]
    state = viewer_state(find_layer(group / "1", tmp_path), BASE)
    out = state["layers"][0]["source"]["transform"]["outputDimensions"]
    assert list(out) == ["c'", "z", "y", "x"]
    assert out["c'"] == [1, ""]
    assert state["dimensions"]["y"] == [pytest.approx(11.24e-9), "m"]


def test_not_an_ome_zarr_image_is_refused(tmp_path: Path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(NgUrlError, match="is not an OME-Zarr image"):
        find_layer(tmp_path / "plain", tmp_path)
    group = write_ome(tmp_path, "color")
    with pytest.raises(NgUrlError, match="is not inside"):
        find_layer(group, tmp_path / "plain")


def test_url_round_trips_the_state(tmp_path: Path):
    state = viewer_state(find_layer(write_ome(tmp_path / "a b", "color"), tmp_path), BASE)
    url = neuroglancer_url("https://neuroglancer-demo.appspot.com/", state)
    prefix, fragment = url.split("#!")
    assert prefix == "https://neuroglancer-demo.appspot.com/"
    assert not set(fragment) & set(' "{}#')  # nothing a browser would mangle
    decoded = json.loads(urllib.parse.unquote(fragment))
    assert decoded == json.loads(json.dumps(state))
    assert decoded["layers"][0]["source"]["url"].endswith("/a%20b/color.ome.zarr")


# ---------------------------------------------------------------- the server's path checks


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "secret").write_text("outside")
    os.symlink("../secret", root / "escape")
    os.symlink("/etc", root / "etc")
    os.symlink("dir/file", root / "inside")
    return root


@pytest.mark.parametrize(
    "target",
    [
        "/../secret",
        "/dir/../../secret",
        "/%2e%2e/secret",
        "/dir/%2E%2E/%2E%2E/secret",
        "/..%2Fsecret",
        "/escape",
        "/etc/passwd",
        "/dir/./file",
        "/dir/file%00",
    ],
)
def test_paths_leaving_the_root_are_refused(tree: Path, target: str):
    assert resolve(tree, target) is None


def test_paths_inside_the_root_resolve(tree: Path):
    assert resolve(tree, "/dir/file") == tree / "dir" / "file"
    assert resolve(tree, "/dir//file?x=1") == tree / "dir" / "file"
    assert resolve(tree, "/inside") == tree / "inside"  # a symlink that stays inside
    assert resolve(tree, "/") == tree


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 100)),
        ("bytes=1000-", (1000, 1024)),
        ("bytes=-24", (1000, 1024)),
        ("bytes=-5000", (0, 1024)),
        ("bytes=1000-999999", (1000, 1024)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file is a valid answer
        ("bytes=1024-", "unsatisfiable"),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=9-3", "unsatisfiable"),
    ],
)
def test_range_header(header: str | None, expected: Any):
    assert parse_range(header, 1024) == expected


@pytest.fixture
def server(tree: Path) -> Iterator[FileServer]:
    s = FileServer(("127.0.0.1", 0), tree)
    thread = threading.Thread(target=s.serve_forever, daemon=True)
    thread.start()
    yield s
    s.shutdown()
    s.server_close()


def request(
    server: FileServer, method: str, target: str, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    conn.request(method, target, headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def test_server_answers(server: FileServer, tree: Path):
    data = (tree / "dir" / "file").read_bytes()
    status, headers, body = request(server, "GET", "/dir/file", Range="bytes=10-19")
    assert (status, body) == (206, data[10:20])
    assert headers["content-range"] == "bytes 10-19/1024"
    assert headers["access-control-allow-origin"] == "*"
    status, headers, body = request(server, "HEAD", "/dir/file")
    assert (status, body, headers["content-length"]) == (200, b"", "1024")
    assert headers["accept-ranges"] == "bytes"
    assert request(server, "GET", "/dir/missing")[0] == 404
    assert request(server, "GET", "/dir")[0] == 404  # no listings
    assert request(server, "GET", "/escape")[0] == 403
    assert request(server, "GET", "/../secret")[0] == 403
    assert request(server, "DELETE", "/dir/file")[0] == 405
    assert request(server, "GET", "/dir/file", Range="bytes=2000-")[0] == 416
    status, headers, _ = request(server, "OPTIONS", "/dir/file")
    assert status == 204 and "Range" in headers["access-control-allow-headers"]


def test_client_directory_is_served_under_its_token_path(tree: Path, tmp_path: Path):
    client = tmp_path / "client"
    client.mkdir()
    (client / "index.html").write_text("<html>neuroglancer</html>")
    (client / "main.js").write_text("// js")
    s = FileServer(("127.0.0.1", 0), tree, client)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        status, headers, body = request(s, "GET", "/v/neurofs/")
        assert (status, body) == (200, b"<html>neuroglancer</html>")
        assert headers["content-type"] == "text/html"
        status, headers, _ = request(s, "GET", "/v/neurofs/main.js")
        assert (status, headers["content-type"]) == (200, "text/javascript")
        assert request(s, "GET", "/main.js")[0] == 404  # the mount has no such file
        assert request(s, "GET", "/v/neurofs/..%2F..%2Fsecret")[0] == 403
        assert request(s, "GET", "/v/neurofs/index.html%00")[0] == 403
        assert request(s, "GET", "/dir/file")[0] == 200  # the mount, as before
    finally:
        s.shutdown()
        s.server_close()
