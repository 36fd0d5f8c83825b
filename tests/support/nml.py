"""Small NML files (WEBKNOSSOS skeleton annotations), as the official client writes them."""

from __future__ import annotations

import io
import zipfile


def nml(
    dataset_id: str,
    *,
    name: str = "l4_demo",
    position: tuple[int, int, int] = (120, 110, 30),
    trees: int = 1,
    box: tuple[tuple[int, int, int], int, int, int] | None = None,
) -> bytes:
    """An NML on the dataset ``dataset_id`` with ``trees`` trees of two nodes each."""
    things = "".join(
        f'<thing id="{t + 1}" name="tree{t + 1}">'
        f'<nodes><node id="{2 * t + 1}" x="{position[0]}" y="{position[1]}" z="{position[2]}"'
        f' radius="1"/><node id="{2 * t + 2}" x="{position[0] + 5}" y="{position[1]}"'
        f' z="{position[2]}" radius="1"/></nodes>'
        f'<edges><edge source="{2 * t + 1}" target="{2 * t + 2}"/></edges></thing>'
        for t in range(trees)
    )
    bbox = (
        f'<taskBoundingBox topLeftX="{box[0][0]}" topLeftY="{box[0][1]}" topLeftZ="{box[0][2]}"'
        f' width="{box[1]}" height="{box[2]}" depth="{box[3]}"/>'
        if box
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<things><parameters>'
        f'<experiment name="{name}" datasetId="{dataset_id}"/>'
        '<scale x="11.24" y="11.24" z="28.0"/>'
        f'<editPosition x="{position[0]}" y="{position[1]}" z="{position[2]}"/>'
        '<editRotation xRot="0.0" yRot="0.0" zRot="0.0"/>'
        f"{bbox}</parameters>{things}<branchpoints/><comments/></things>"
    ).encode()


def zipped(**files: bytes) -> bytes:
    """A zip holding ``files`` (name → bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
