"""One table names the package of each kind of source; every kind the configuration accepts
has one, and each package gives what the daemon and ``neurofs ls-sources`` call."""

from __future__ import annotations

import inspect
import typing

import pytest

from neurofs.config import SourceConfig
from neurofs.sources import KINDS, package


def test_every_configurable_kind_has_a_package() -> None:
    kinds = typing.get_args(SourceConfig.model_fields["kind"].annotation)
    assert sorted(KINDS) == sorted(kinds)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_package_builds_and_connects(kind: str) -> None:
    found = package(kind)
    assert isinstance(found.PROBE_PATH, str) and found.PROBE_PATH
    build = inspect.signature(found.build).parameters
    assert list(build)[:4] == ["config", "stats", "fetcher", "responses"]
    assert build["allow_delete"].kind is inspect.Parameter.KEYWORD_ONLY
    connect = inspect.signature(found.connect).parameters
    assert list(connect) == ["config", "stats", "responses", "tier"]
    assert connect["tier"].kind is inspect.Parameter.KEYWORD_ONLY


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown source kind"):
        package("ftp")
