"""Every JSON file of the mount is written one way (``tree.render.json_text``)."""

from __future__ import annotations

import json

from neurofs.sources.webknossos import volume
from neurofs.tree.render import json_text
from neurofs.tree.sidecar import TextFormat, render


def test_json_text_is_indented_utf8_in_the_given_order_with_a_final_newline() -> None:
    doc = {"z": 1, "name": "Zoë", "a": [1, {"b": None}]}
    text = json_text(doc)
    assert text == json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"
    assert "Zoë".encode() in text and list(json.loads(text)) == ["z", "name", "a"]


def test_sidecars_and_generated_files_read_alike() -> None:
    doc = {"zarr_format": 2, "description": "µm"}
    assert render(doc, TextFormat.JSON) == json_text(doc) == volume.dumps(doc)
