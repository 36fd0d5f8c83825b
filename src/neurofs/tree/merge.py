"""Three-way merge of edited documents (JSON/YAML mappings).

``base`` is the text the user read, ``mine`` what they saved, ``theirs`` the server's state
just before sending. Only the fields the user changed (``diff(base, mine)``) are applied to
``theirs``, so a field someone else changed meanwhile is never overwritten with a stale value.
Mappings are compared key by key, recursively; any other value (lists included) is one field.
"""

from __future__ import annotations

import copy
from typing import Any

from neurofs.errors import Conflict

# Where a field is in a document: the mapping keys leading to it, outermost first.
FieldPath = tuple[str, ...]


class _Deleted:
    def __repr__(self) -> str:
        return "<deleted>"


DELETED: Any = _Deleted()
_MISSING: Any = object()


def diff(base: Any, mine: Any, path: FieldPath = ()) -> dict[FieldPath, Any]:
    """{field path: new value or DELETED} for every field that differs."""
    if isinstance(base, dict) and isinstance(mine, dict):
        changes: dict[FieldPath, Any] = {}
        for key in base.keys() | mine.keys():
            old, new = base.get(key, _MISSING), mine.get(key, _MISSING)
            if new is _MISSING:
                changes[(*path, key)] = DELETED
            elif old is _MISSING:
                changes[(*path, key)] = new
            else:
                changes.update(diff(old, new, (*path, key)))
        return changes
    return {} if base == mine else {path: mine}


def get(doc: Any, path: FieldPath) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return _MISSING
        doc = doc[key]
    return doc


def apply(theirs: dict[str, Any], changes: dict[FieldPath, Any], base: Any) -> dict[str, Any]:
    """``theirs`` with ``changes`` applied; Conflict when the server changed the same field
    to something else than the user did."""
    merged = copy.deepcopy(theirs)
    for path, value in sorted(changes.items(), key=lambda item: len(item[0])):
        server, original = get(theirs, path), get(base, path)
        wanted = _MISSING if value is DELETED else value
        if server != original and server != wanted:
            raise Conflict(
                f"'{'.'.join(path)}' was changed on the server since you read it; "
                "read the file again and redo the edit"
            )
        _set(merged, path, value)
    return merged


def _set(doc: dict[str, Any], path: FieldPath, value: Any) -> None:
    for key in path[:-1]:
        child = doc.get(key)
        if not isinstance(child, dict):
            child = doc[key] = {}
        doc = child
    if value is DELETED:
        doc.pop(path[-1], None)
    else:
        doc[path[-1]] = copy.deepcopy(value)
