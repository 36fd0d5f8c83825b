"""Sidecars: text files that show server state and turn edits into API calls.

A source declares, per sidecar, how to load the server's state, how to validate a document
and how to send a change (``SidecarSpec``). Everything else is shared: rendering (JSON or
YAML), parsing with clear messages, the three-way merge against the text the user read, the
rule that an unchanged save sends nothing, and keys that are shown but computed by the server.
Buffering, commit on close and error reporting are the fs layer's (``neurofs.fs.editing``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from neurofs.errors import AccessDenied, InvalidContent, ReadOnly
from neurofs.tree.merge import FieldPath, apply, diff
from neurofs.tree.nodes import Attrs, BytesHandle, EditableFile, FileHandle, Kind, NodePath
from neurofs.tree.render import json_text

Document = dict[str, Any]


class TextFormat(enum.Enum):
    JSON = "json"
    YAML = "yaml"


def render(doc: Document, fmt: TextFormat) -> bytes:
    if fmt is TextFormat.JSON:
        return json_text(doc)
    return yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, default_flow_style=False
    ).encode()


def parse(data: bytes, fmt: TextFormat) -> Document:
    """A mapping from the user's bytes, or InvalidContent saying what is wrong and where."""
    if not data.strip():
        raise InvalidContent("the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidContent(f"not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text) if fmt is TextFormat.JSON else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidContent(f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidContent(f"invalid YAML: {problem}{where}") from None
    except RecursionError:
        raise InvalidContent("nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # YAML values the constructors refuse (a date like 2001-13-01), JSON numbers too long.
        raise InvalidContent(f"invalid {fmt.value.upper()} value: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidContent(f"expected a mapping at the top level, got {type(doc).__name__}")
    _check_expanded_size(doc)
    return doc


# A document may hold at most this many values once YAML aliases are expanded, nested at most
# this deep: a few lines of aliases can otherwise stand for billions of values, and the merge
# walks every one.
MAX_VALUES = 1_000_000
MAX_DEPTH = 100


def _check_expanded_size(doc: Any) -> None:
    count = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise InvalidContent(f"more than {MAX_VALUES} values (YAML aliases expanded)")
        if depth > MAX_DEPTH:
            raise InvalidContent(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            count += len(value)  # the keys
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "document"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{where}'")
        elif err["type"] == "missing":
            parts.append(f"'{where}' is required")
        else:
            parts.append(f"'{where}': {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


@dataclass
class SidecarSpec:
    """What a source supplies for one sidecar."""

    # The server's state as a document; ``fresh`` bypasses in-memory caches.
    load: Callable[[bool], Awaitable[Document]]
    # Raise InvalidContent for a document the server must not receive.
    validate: Callable[[Document], None]
    # Send the change: the changed fields, the merged document and the state it was merged on.
    send: Callable[[dict[FieldPath, Any], Document, Document], Awaitable[None]]
    fmt: TextFormat = TextFormat.YAML
    # Top-level keys the server computes: shown, never sent; an edit of only these is refused.
    computed_keys: frozenset[str] = field(default_factory=frozenset)
    # When set, the sidecar is read-only and opening it for write says this (EROFS).
    read_only_reason: str | None = None
    # When set, this mount may not change it (no token, say): shown read-only, and opening
    # it for write answers EACCES with this reason before anything is sent.
    denied_reason: str | None = None
    # Loading costs a request of its own (one per file of a directory of thousands): a
    # listing then shows provisional attributes and loads nothing; the file's stat loads it.
    costly: bool = False


class Sidecar(EditableFile):
    def __init__(self, key: NodePath, spec: SidecarSpec, mtime: float = 0.0) -> None:
        super().__init__(key)
        self.spec = spec
        self._mtime = mtime

    @property
    def writable(self) -> bool:
        return self.spec.read_only_reason is None and self.spec.denied_reason is None

    async def render(self) -> bytes:
        return render(await self.spec.load(False), self.spec.fmt)

    async def stat(self) -> Attrs:
        return Attrs(Kind.FILE, len(await self.render()), self._mtime, writable=self.writable)

    async def listed(self) -> Attrs:
        if self.spec.costly:
            return Attrs(Kind.FILE, 0, self._mtime, writable=self.writable, provisional=True)
        return await self.stat()

    async def open(self) -> FileHandle:
        return BytesHandle(await self.render())

    def check_writable(self) -> None:
        if self.spec.read_only_reason is not None:
            raise ReadOnly(self.spec.read_only_reason)
        if self.spec.denied_reason is not None:
            raise AccessDenied(self.spec.denied_reason)

    async def commit(self, edited: bytes, base: bytes | None) -> bool:
        """Send the user's edit. False when nothing changed (nothing is sent).

        ``base`` is the text the user last read (None: they did not read it first).
        """
        self.check_writable()
        spec = self.spec
        mine = parse(edited, spec.fmt)
        spec.validate(mine)
        current = await spec.load(True)
        base_doc = current
        if base is not None:
            try:
                base_doc = parse(base, spec.fmt)
            except InvalidContent:
                base_doc = current
        changes = diff(base_doc, mine)
        computed = sorted({p[0] for p in changes if p and p[0] in spec.computed_keys})
        wanted = {p: v for p, v in changes.items() if not (p and p[0] in spec.computed_keys)}
        if not wanted:
            if computed:
                raise InvalidContent(
                    f"only server-computed keys were changed ({', '.join(computed)}); "
                    "the server sets them and they cannot be edited"
                )
            return False
        merged = apply(current, wanted, base_doc)
        spec.validate(merged)
        await spec.send(wanted, merged, current)
        return True
