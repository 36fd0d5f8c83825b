"""Checking a service's answer against its pydantic model: a malformed answer is a
RemoteError (EIO, with the route named), never an AttributeError deep in the tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from neurofs.errors import RemoteError

M = TypeVar("M", bound=BaseModel)


def _unexpected(what: str, exc: ValidationError) -> RemoteError:
    return RemoteError(f"{what}: unexpected answer: {exc.error_count()} invalid fields")


def validated(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _unexpected(what, exc) from None


def adapted(adapter: TypeAdapter[Any], data: Any, what: str) -> Any:
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise _unexpected(what, exc) from None


@dataclass(frozen=True)
class Shown(Generic[M]):
    """An answer a file shows as the server wrote it (``document``: every key, in the
    server's order) with what neurofs reads from it, validated (``model``)."""

    document: dict[str, Any]
    model: M


def shown(model: type[M], data: Any, what: str) -> Shown[M]:
    checked = validated(model, data, what)
    return Shown(dict(data), checked)  # validated: an object
