"""The one way the mount writes JSON text: generated files (info, schema, states, receipts,
zarr metadata, ``.neurofs/stats.json``) and JSON sidecars read alike."""

from __future__ import annotations

import json
from typing import Any


def json_text(doc: Any) -> bytes:
    """``doc`` as UTF-8 JSON indented by two spaces, ending in a newline. Keys stay in the
    order given (a server's answer in its own order), and characters beyond ASCII are
    written as themselves: a file reads like the text a user edits, never ``\\u`` escapes."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()
