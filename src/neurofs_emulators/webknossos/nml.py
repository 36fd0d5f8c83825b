"""What ``POST /tasks/createFromFiles`` reads: a multipart form, and NML files (alone or in
zips) as base annotations.

The real server (scalableminds/webknossos, ``TaskController.createFromFiles`` and
``NmlService.extractFromFiles``) keeps the uploaded files whose name ends in ``.nml`` or
``.zip``, takes every NML of a zip as one annotation, and parses each NML on its own: one that
does not parse becomes a refused item of the answer, the others become tasks. Of an NML it
uses the dataset (``<experiment datasetId=… name=… organization=…>``), the edit position and
rotation, the task bounding box and the skeleton.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

from neurofs_emulators.multipart import Upload

Vec3 = tuple[int, int, int]


@dataclass(frozen=True)
class Skeleton:
    trees: int
    nodes: int


@dataclass(frozen=True)
class ParsedNml:
    file_name: str
    dataset_id: str | None
    dataset_name: str | None
    organization: str | None
    edit_position: Vec3
    edit_rotation: tuple[float, float, float]
    bounding_box: tuple[Vec3, int, int, int] | None
    skeleton: Skeleton
    description: str | None


class NmlError(Exception):
    """An annotation file the server cannot use: its message is the item's error."""


def annotations_of(upload: Upload) -> list[ParsedNml | NmlError]:
    """The annotations of one uploaded file: one NML, or each NML of a zip."""
    if upload.name.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(io.BytesIO(upload.data)) as archive:
                nmls = [
                    (n, archive.read(n)) for n in archive.namelist() if n.lower().endswith(".nml")
                ]
        except (zipfile.BadZipFile, OSError, ValueError):
            return [NmlError(f"Could not extract zip file {upload.name}")]
        if not nmls:
            return [NmlError(f"Zip file {upload.name} does not contain any NML file")]
        return [_parsed(name, data) for name, data in nmls]
    return [_parsed(upload.name, upload.data)]


def _int(element: ElementTree.Element | None, key: str) -> int:
    if element is None:
        raise NmlError("missing element")
    return int(float(element.attrib[key]))


def _parsed(name: str, data: bytes) -> ParsedNml | NmlError:
    try:
        return _parse(name, data)
    except NmlError as exc:
        return NmlError(f"Error parsing NML file {name}: {exc}")
    except (ElementTree.ParseError, KeyError, ValueError) as exc:
        return NmlError(f"Error parsing NML file {name}: {type(exc).__name__}: {exc}")


def _parse(name: str, data: bytes) -> ParsedNml:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise NmlError("document type declarations are not allowed")
    root = ElementTree.fromstring(data)
    if root.tag != "things":
        raise NmlError("the root element is not <things>")
    params = root.find("parameters")
    if params is None:
        raise NmlError("no <parameters>")
    experiment = params.find("experiment")
    if experiment is None:
        raise NmlError("no <experiment> in the parameters")
    position = params.find("editPosition")
    rotation = params.find("editRotation")
    box = params.find("taskBoundingBox")
    if box is None:
        box = params.find("userBoundingBox")
    trees = root.findall("thing")
    return ParsedNml(
        file_name=name,
        dataset_id=experiment.get("datasetId"),
        dataset_name=experiment.get("name"),
        organization=experiment.get("organization"),
        edit_position=(
            (_int(position, "x"), _int(position, "y"), _int(position, "z"))
            if position is not None
            else (0, 0, 0)
        ),
        edit_rotation=(
            (
                float(rotation.attrib["xRot"]),
                float(rotation.attrib["yRot"]),
                float(rotation.attrib["zRot"]),
            )
            if rotation is not None
            else (0.0, 0.0, 0.0)
        ),
        bounding_box=(
            (
                (_int(box, "topLeftX"), _int(box, "topLeftY"), _int(box, "topLeftZ")),
                _int(box, "width"),
                _int(box, "height"),
                _int(box, "depth"),
            )
            if box is not None
            else None
        ),
        skeleton=Skeleton(trees=len(trees), nodes=sum(len(t.findall("nodes/node")) for t in trees)),
        description=experiment.get("description"),
    )
