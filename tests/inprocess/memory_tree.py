"""A small tree of real node classes over an in-memory service that records every request.

```
records/            accepts scratch files (editors' temporaries)
  <name>.yaml       one sidecar per record (YAML; "id" is computed by the server)
  summary.json      generated: the record names
  new-<name>.yaml   written here: a request to create a record (the file becomes a receipt)
```
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from neurofs.errors import InvalidContent, NeurofsError
from neurofs.tree.merge import DELETED, FieldPath
from neurofs.tree.nodes import Attrs, Directory, GeneratedFile, Kind, Node
from neurofs.tree.sidecar import Document, Sidecar, SidecarSpec, TextFormat, parse

NEW_PREFIX = "new-"


@dataclass
class Request:
    method: str
    name: str
    body: Any


@dataclass
class Service:
    records: dict[str, Document] = field(
        default_factory=lambda: {
            "alpha": {"id": 1, "name": "alpha", "description": "the first"},
            "beta": {"id": 2, "name": "beta", "description": "the second"},
        }
    )
    requests: list[Request] = field(default_factory=list)
    # How many times a directory listed its records (a lookup by name lists too).
    listings: int = 0
    # When set, every change is refused with it.
    refusal: NeurofsError | None = None

    def changes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]


def _validate(doc: Document) -> None:
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidContent("'name' must be a non-empty string")


def _body(changes: dict[FieldPath, Any]) -> dict[str, Any]:
    return {".".join(p): (None if v is DELETED else v) for p, v in changes.items()}


class RecordsDir(Directory):
    accepts_scratch = True

    def __init__(self, service: Service) -> None:
        super().__init__(("records",))
        self._service = service

    async def stat(self) -> Attrs:
        return Attrs(Kind.DIRECTORY, 0, 1.0)

    async def children(self) -> Sequence[Node]:
        self._service.listings += 1
        names = list(self._service.records)
        return [
            *(self._sidecar(name) for name in names),
            GeneratedFile((*self.key, "summary.json"), self._summary, mtime=1.0),
        ]

    async def _summary(self) -> bytes:
        return json.dumps(sorted(self._service.records)).encode() + b"\n"

    def creates_from(self, name: str) -> bool:
        return name.startswith(NEW_PREFIX) and name.endswith(".yaml")

    async def create_from_file(self, name: str, data: bytes) -> bytes:
        doc = parse(data, TextFormat.YAML)
        _validate(doc)
        service = self._service
        service.requests.append(Request("POST", name, doc))
        if service.refusal is not None:
            raise service.refusal
        record = name.removeprefix(NEW_PREFIX).removesuffix(".yaml")
        service.records[record] = {"id": len(service.records) + 1, **doc}
        return f"created: {record}\n".encode()

    def _sidecar(self, name: str) -> Sidecar:
        service = self._service

        async def load(fresh: bool) -> Document:
            if fresh:
                service.requests.append(Request("GET", name, None))
            return copy.deepcopy(service.records[name])

        async def send(changes: dict[FieldPath, Any], merged: Document, current: Document) -> None:
            service.requests.append(Request("PATCH", name, _body(changes)))
            if service.refusal is not None:
                raise service.refusal
            service.records[name] = merged

        spec = SidecarSpec(
            load=load, validate=_validate, send=send, computed_keys=frozenset({"id"})
        )
        return Sidecar((*self.key, f"{name}.yaml"), spec, mtime=1.0)
