"""The one router of the emulators: method + path template → handler.

A template is a path with typed parameters: ``{name}`` matches one segment, ``{name:int}`` a
signed integer (werkzeug's ``int(signed=True)``; the handler gets an ``int``),
``{name:path}`` the rest of the path (one character at least); a router can be given more
converters (the DANDI archive's ids). Routes match in the order they were added, against the
whole path: no trailing-slash redirect, no case folding. HEAD is answered by the GET route
(the server drops the body and keeps Content-Length), as all three services do. A route of
method :data:`ANY` takes every method, for a handler that tells them apart itself (Django's
views do: the DANDI emulator).

What a miss answers is the service's own: :meth:`Router.match` gives None, and
:meth:`Router.methods` the methods the path has, for the services that answer a wrong
method with a 405 instead of a 404. The handler finds its parameters in
``request.path_params``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Awaitable[Response]]

ANY = "*"


@dataclass(frozen=True)
class Converter:
    """What a parameter matches (a regular expression) and the value the handler gets."""

    regex: str
    convert: Callable[[str], Any] = str


CONVERTERS: Mapping[str, Converter] = {
    "str": Converter(r"[^/]+"),
    "int": Converter(r"-?[0-9]+", int),
    "path": Converter(r".+"),
}

_PARAMETER = re.compile(r"(\{[^}]+\})")


@dataclass(frozen=True)
class Match:
    """A routed request: its handler and the converted path parameters."""

    handler: Handler
    params: dict[str, Any]

    async def __call__(self, request: Request) -> Response:
        request.scope["path_params"] = self.params
        return await self.handler(request)


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    converters: tuple[tuple[str, Converter], ...]
    handler: Handler

    def params(self, found: re.Match[str]) -> dict[str, Any]:
        return {name: converter.convert(found[name]) for name, converter in self.converters}


class Router:
    """Routes of one server (or of several, :meth:`include`-d in order)."""

    def __init__(self, converters: Mapping[str, Converter] | None = None) -> None:
        self._converters = {**CONVERTERS, **(converters or {})}
        self._routes: list[_Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        regex = "^"
        converters: list[tuple[str, Converter]] = []
        for part in _PARAMETER.split(template):
            if part.startswith("{") and part.endswith("}"):
                name, _, kind = part[1:-1].partition(":")
                converter = self._converters[kind or "str"]
                regex += f"(?P<{name}>{converter.regex})"
                converters.append((name, converter))
            else:
                regex += re.escape(part)
        self._routes.append(_Route(method, re.compile(regex + "$"), tuple(converters), handler))

    def include(self, other: Router) -> None:
        """Add ``other``'s routes after these (they match only where none of these does)."""
        self._routes.extend(other._routes)

    def match(self, method: str, path: str) -> Match | None:
        """The first route of ``method`` (GET's for HEAD) whose template matches ``path``."""
        wanted = "GET" if method == "HEAD" else method
        for route in self._routes:
            if route.method not in (wanted, ANY):
                continue
            found = route.pattern.match(path)
            if found:
                return Match(route.handler, route.params(found))
        return None

    def methods(self, path: str) -> list[str]:
        """The methods with a route at ``path``, in the order added (empty: no such path)."""
        found = [route.method for route in self._routes if route.pattern.match(path)]
        return list(dict.fromkeys(found))
