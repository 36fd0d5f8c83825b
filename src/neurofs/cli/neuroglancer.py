"""The neuroglancer view of an OME-Zarr image: which layer, its scales and centre, and the
viewer state that shows it (used by ``neurofs ng-url``; the URL is built by
:mod:`neurofs.neuroglancer`)."""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# OME-Zarr 0.4 space units in meters (neuroglancer's states use SI base units).
_UNIT_METERS: dict[str, float] = {
    "angstrom": 1e-10,
    "attometer": 1e-18,
    "centimeter": 1e-2,
    "decimeter": 1e-1,
    "exameter": 1e18,
    "femtometer": 1e-15,
    "foot": 0.3048,
    "gigameter": 1e9,
    "hectometer": 1e2,
    "inch": 0.0254,
    "kilometer": 1e3,
    "megameter": 1e6,
    "meter": 1.0,
    "micrometer": 1e-6,
    "mile": 1609.344,
    "millimeter": 1e-3,
    "nanometer": 1e-9,
    "parsec": 3.0856775814913673e16,
    "petameter": 1e15,
    "picometer": 1e-12,
    "terameter": 1e12,
    "yard": 0.9144,
    "yoctometer": 1e-24,
    "yottameter": 1e24,
    "zeptometer": 1e-21,
    "zettameter": 1e21,
}


class NgUrlError(Exception):
    """PATH is not something neuroglancer can be pointed at; the message says why."""


# ---------------------------------------------------------------- the layer and its state


@dataclass(frozen=True)
class Layer:
    """An OME-Zarr image as neuroglancer will see it."""

    name: str
    segmentation: bool
    relpath: str  # the source's path under the served root, "/"-separated
    # Every axis of the array in storage order, as neuroglancer names them: spatial axes by
    # their name, others (channels) with a trailing "'", neuroglancer's mark of a local axis.
    axes: list[str]
    scale: dict[str, float]  # meters per voxel of the displayed array, by spatial axis
    position: dict[str, float]  # the centre to show, in voxels of the displayed array
    is_mag: bool  # the source is one mag's array rather than the multiscale group


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise NgUrlError(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise NgUrlError(f"{path} is not a JSON object")
    return doc


def _multiscale(group: Path) -> dict[str, Any] | None:
    multiscales = _read_json(group / ".zattrs").get("multiscales")
    if isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], dict):
        return multiscales[0]
    return None


def _meters(unit: object) -> float:
    if unit is None:
        return 1e-9  # WEBKNOSSOS's default unit; OME-Zarr leaves it open
    if not isinstance(unit, str) or unit not in _UNIT_METERS:
        raise NgUrlError(f"unsupported space unit {unit!r}")
    return _UNIT_METERS[unit]


def _scales(transforms: object) -> list[float] | None:
    for t in transforms if isinstance(transforms, list) else []:
        if isinstance(t, dict) and t.get("type") == "scale":
            return [float(v) for v in t["scale"]]
    return None


def _bounding_box_centre(props: dict[str, Any], layer_name: str) -> dict[str, float] | None:
    """The centre of the layer's bounding box in WEBKNOSSOS's mag-1 voxels, if it has one."""
    for layer in props.get("dataLayers") or []:
        if not isinstance(layer, dict) or layer.get("name") != layer_name:
            continue
        box = layer.get("boundingBox") or {}
        try:
            x, y, z = (float(v) for v in box["topLeft"])
            size = (float(box["width"]), float(box["height"]), float(box["depth"]))
        except (KeyError, TypeError, ValueError):
            return None
        return {"x": x + size[0] / 2, "y": y + size[1] / 2, "z": z + size[2] / 2}
    return None


def _category(props: dict[str, Any], layer_name: str) -> str | None:
    for layer in props.get("dataLayers") or []:
        if isinstance(layer, dict) and layer.get("name") == layer_name:
            category = layer.get("category")
            return category if isinstance(category, str) else None
    return None


def find_layer(path: Path, root: Path) -> Layer:
    """The OME-Zarr image at ``path`` (its group, or one of its mags), served from ``root``."""
    path = Path(os.path.abspath(path))
    group, mag = path, None
    if _multiscale(group) is None and (path / ".zarray").exists():
        group, mag = path.parent, path.name
    multiscale = _multiscale(group)
    if multiscale is None:
        raise NgUrlError(
            f"{path} is not an OME-Zarr image (no multiscales in .zattrs) nor one of its mags"
        )
    axes = multiscale.get("axes") or []
    space = [
        (i, a["name"], a.get("unit"))
        for i, a in enumerate(axes)
        if isinstance(a, dict) and a.get("type", "space") == "space"
    ]
    names = {i: name for i, name, _ in space}
    if sorted(names.values()) != ["x", "y", "z"]:
        raise NgUrlError(f"{group}: expected spatial axes x, y and z, found {axes}")
    datasets = multiscale.get("datasets") or []
    if not datasets:
        raise NgUrlError(f"{group}: the multiscale lists no datasets")
    shown = datasets[0]
    if mag is not None:
        shown = next((d for d in datasets if d.get("path") == mag), None)
        if shown is None:
            raise NgUrlError(f"{path} is not one of the datasets of {group}")
    finest = _scales(datasets[0].get("coordinateTransformations")) or [1.0] * len(axes)
    here = _scales(shown.get("coordinateTransformations")) or [1.0] * len(axes)
    outer = _scales(multiscale.get("coordinateTransformations")) or [1.0] * len(axes)
    scale = {name: here[i] * outer[i] * _meters(unit) for i, name, unit in space}
    # How many finest voxels one voxel of the shown array spans, by axis.
    factor = {name: here[i] / finest[i] for i, name, _ in space}

    layer_name = group.name.removesuffix(".ome.zarr")
    props = _read_json(group.parent / "datasource-properties.json")
    centre = _bounding_box_centre(props, layer_name)
    if centre is not None:
        position = {k: centre[k] / factor[k] for k in ("x", "y", "z")}
    else:
        shape = _read_json(group / str(shown.get("path")) / ".zarray").get("shape")
        if not isinstance(shape, list) or len(shape) != len(axes):
            raise NgUrlError(f"{group}: cannot read the shape of dataset {shown.get('path')!r}")
        position = {name: shape[i] / 2 for i, name, _ in space}

    attrs = _read_json(group / ".zattrs")
    segmentation = (
        "image-label" in attrs
        or _category(props, layer_name) == "segmentation"
        or re.search(r"segmentation|label", layer_name, re.IGNORECASE) is not None
    )
    try:
        rel = path.relative_to(root)
    except ValueError:
        raise NgUrlError(f"{path} is not inside {root}") from None
    return Layer(
        name=layer_name,
        segmentation=segmentation,
        relpath=rel.as_posix(),
        axes=[
            names.get(i) or f"{a.get('name') if isinstance(a, dict) else i}'"
            for i, a in enumerate(axes)
        ],
        scale=scale,
        position=position,
        is_mag=mag is not None,
    )


def source_url(base: str, relpath: str) -> str:
    return "zarr://" + base.rstrip("/") + "/" + urllib.parse.quote(relpath)


def viewer_state(layer: Layer, base: str, layout: str = "4panel") -> dict[str, Any]:
    """A neuroglancer state showing ``layer``, read from the HTTP server at ``base``."""
    dims = {k: [layer.scale[k], "m"] for k in ("x", "y", "z")}
    source: dict[str, Any] = {"url": source_url(base, layer.relpath)}
    if layer.is_mag:
        # neuroglancer names a bare zarr array's dimensions d0, d1, ... without units: give
        # them their scales (input) and their names (output).
        dims_of = [[layer.scale[a], "m"] if a in layer.scale else [1, ""] for a in layer.axes]
        source["transform"] = {
            "inputDimensions": {f"d{i}": d for i, d in enumerate(dims_of)},
            "outputDimensions": dict(zip(layer.axes, dims_of, strict=True)),
        }
    return {
        "dimensions": dims,
        "displayDimensions": ["x", "y", "z"],
        "position": [layer.position[k] for k in ("x", "y", "z")],
        "crossSectionScale": 1,
        "projectionScale": 256,
        "layers": [
            {
                "type": "segmentation" if layer.segmentation else "image",
                "source": source,
                "name": layer.name,
            }
        ],
        "selectedLayer": {"layer": layer.name},
        "layout": layout,
    }
