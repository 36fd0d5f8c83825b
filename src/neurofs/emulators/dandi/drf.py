"""Small re-creations of Django REST Framework behaviours the archive's API exposes.

The real server is a DRF application; clients see DRF's quirks (query parameter parsing,
pagination links, error envelopes), so the emulator reproduces them here, in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from starlette.requests import Request

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_TRUE = {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1"}
_FALSE = {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0"}

# Django's default 404 page (DEBUG off), answered for URLs that match no route.
DJANGO_NOT_FOUND_HTML = (
    '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n'
    "<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    "</body>\n</html>\n"
)

WWW_AUTHENTICATE = 'Bearer realm="api"'  # from the first authenticator (OAuth2) of the server


class APIError(Exception):
    """An error response: ``body`` is a bare JSON string or a DRF-shaped dict."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def not_found(detail: str = "Not found.") -> APIError:
    return APIError(404, {"detail": detail})


def not_authenticated() -> APIError:
    return APIError(
        401,
        {"detail": "Authentication credentials were not provided."},
        {"WWW-Authenticate": WWW_AUTHENTICATE},
    )


def authentication_failed(detail: str) -> APIError:
    return APIError(401, {"detail": detail}, {"WWW-Authenticate": WWW_AUTHENTICATE})


def permission_denied() -> APIError:
    return APIError(403, {"detail": "You do not have permission to perform this action."})


def method_not_allowed(method: str) -> APIError:
    return APIError(405, {"detail": f'Method "{method}" not allowed.'})


def field_error(field: str, message: str) -> APIError:
    return APIError(400, {field: [message]})


class QueryParams:
    """DRF serializer-style reading of query parameters; errors collected per field."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.errors: dict[str, list[str]] = {}

    def _present(self, name: str) -> str | None:
        return self.params.get(name) if name in self.params else None

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._present(name)
        if raw is None:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        self.errors[name] = ["Must be a valid boolean."]
        return default

    def char(self, name: str, default: str | None = None) -> str | None:
        """A CharField: present-but-blank is an error (``allow_blank=False``)."""
        raw = self._present(name)
        if raw is None:
            return default
        if raw.strip() == "":
            self.errors[name] = ["This field may not be blank."]
            return default
        return raw.strip()

    def choice(self, name: str, choices: Sequence[str], default: str | None = None) -> str | None:
        raw = self._present(name)
        if raw is None:
            return default
        if raw not in choices:
            self.errors[name] = [f'"{raw}" is not a valid choice.']
            return default
        return raw

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self._present(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            self.errors[name] = ["A valid integer is required."]
            return default
        if value < minimum:
            self.errors[name] = [f"Ensure this value is greater than or equal to {minimum}."]
        elif value > maximum:
            self.errors[name] = [f"Ensure this value is less than or equal to {maximum}."]
        return value

    def ordering_choice(self, name: str, fields: Sequence[str]) -> list[str] | None:
        """django-filter's OrderingFilter: comma-separated ``[-]field``; unknown → 400."""
        raw = self._present(name)
        if raw is None or raw == "":
            return None
        values = [v.strip() for v in raw.split(",") if v.strip()]
        allowed = {*fields, *(f"-{f}" for f in fields)}
        for value in values:
            if value not in allowed:
                self.errors[name] = [
                    f"Select a valid choice. {value} is not one of the available choices."
                ]
                return None
        return values

    def raise_errors(self) -> None:
        if self.errors:
            raise APIError(400, self.errors)


def absolute_uri(request: Request) -> str:
    """Django's ``build_absolute_uri()``: scheme and Host header of the request."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    query = request.scope.get("query_string", b"").decode("latin-1")
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    path = path.split("?", 1)[0]
    return f"{request.url.scheme}://{host}{path}" + (f"?{query}" if query else "")


def replace_query_param(url: str, key: str, value: Any) -> str:
    """DRF's helper: set one parameter, re-encode the query with keys sorted."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    params[key] = [str(value)]
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def remove_query_param(url: str, key: str) -> str:
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    params.pop(key, None)
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def page_size(request: Request) -> int:
    """DRF: a positive integer capped at 1000; anything else means the default (100)."""
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        return DEFAULT_PAGE_SIZE
    if value <= 0:
        return DEFAULT_PAGE_SIZE
    return min(value, MAX_PAGE_SIZE)


def _page_number(raw: str | None, last: int | None) -> int:
    if raw is None:
        return 1
    if last is not None and raw == "last":
        return last
    try:
        number = float(raw) if "." in raw else int(raw)
    except ValueError as exc:
        raise not_found("Invalid page.") from exc
    if isinstance(number, float):
        if not number.is_integer():
            raise not_found("Invalid page.")
        number = int(number)
    if number < 1:
        raise not_found("Invalid page.")
    return number


def paginate(request: Request, items: Sequence[T]) -> tuple[list[T], dict[str, Any]]:
    """DRF's PageNumberPagination (the archive's ``DandiPagination``): count on every page."""
    size = page_size(request)
    pages = max(1, math.ceil(len(items) / size))
    number = _page_number(request.query_params.get("page"), pages)
    if number > pages:
        raise not_found("Invalid page.")
    page = list(items[(number - 1) * size : number * size])
    return page, _links(request, len(items), number, number < pages)


def paginate_lazy(request: Request, items: Sequence[T]) -> tuple[list[T], dict[str, Any]]:
    """The archive's ``LazyPagination`` (asset lists): count on page 1 only, no upper bound."""
    size = page_size(request)
    number = _page_number(request.query_params.get("page"), None)
    start = (number - 1) * size
    window = list(items[start : start + size + 1])
    has_next = len(window) > size
    return window[:size], _links(request, len(items) if number == 1 else None, number, has_next)


def _links(request: Request, count: int | None, number: int, has_next: bool) -> dict[str, Any]:
    url = absolute_uri(request)
    nxt = replace_query_param(url, "page", number + 1) if has_next else None
    if number <= 1:
        prev = None
    elif number == 2:
        prev = remove_query_param(url, "page")
    else:
        prev = replace_query_param(url, "page", number - 1)
    return {"count": count, "next": nxt, "previous": prev}
