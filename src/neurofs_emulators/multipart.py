"""Multipart form bodies (``multipart/form-data``), as upload routes read them."""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any


@dataclass(frozen=True)
class Upload:
    field: str
    name: str
    data: bytes


@dataclass(frozen=True)
class MultipartForm:
    fields: dict[str, list[str]]
    files: list[Upload]


def parse_multipart(content_type: str, body: bytes) -> MultipartForm | None:
    """The text fields and files of a ``multipart/form-data`` body; None if it is not one."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return None
    fields: dict[str, list[str]] = {}
    files: list[Upload] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if filename is not None:
            files.append(Upload(str(name or ""), str(filename), data))
        elif isinstance(name, str):
            fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
    return MultipartForm(fields, files)


def describe(form: MultipartForm) -> dict[str, Any]:
    """What the request log shows of a form: its text fields, and of each file its field
    name, file name and size."""
    return {
        "form": {k: v[0] if len(v) == 1 else v for k, v in form.fields.items()},
        "files": [{"field": f.field, "filename": f.name, "size": len(f.data)} for f in form.files],
    }
