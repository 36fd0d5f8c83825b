"""Checking a service's answer against its pydantic model: a malformed answer is a
RemoteError (EIO, with the route named), never an AttributeError deep in the tree."""

from __future__ import annotations

from typing import Any, TypeVar

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
