"""Small re-creations of Django REST Framework behaviours the archive's API exposes.

The real server is a DRF application; clients see DRF's quirks (query parameter parsing,
pagination links, error envelopes), so the emulator reproduces them here, in one place.
"""

from __future__ import annotations

import json
import math
import uuid
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

# Django's default 500 page (no 500.html template): what an unhandled exception in a view
# (e.g. a ``KeyError`` on a malformed body the serializer let through) answers.
DJANGO_SERVER_ERROR_HTML = (
    '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n'
    "</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)

WWW_AUTHENTICATE = 'Bearer realm="api"'  # from the first authenticator (OAuth2) of the server


class APIError(Exception):
    """An error response: ``body`` is a bare JSON string or a DRF-shaped dict."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class RawError(Exception):
    """A non-JSON error answer (Django's own pages, django-guardian's bare 403)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def guardian_forbidden() -> RawError:
    """django-guardian's ``permission_required(return_403=True)`` without a 403 template:
    ``HttpResponseForbidden()``, an empty ``text/html`` body."""
    return RawError(403, "")


def server_error() -> RawError:
    return RawError(500, DJANGO_SERVER_ERROR_HTML)


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


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, {"detail": f'Unsupported media type "{content_type}" in request.'})


async def request_data(request: Request) -> Any:
    """``request.data`` with the JSON parser only: an empty body is ``{}``, a body of another
    media type is a 415, malformed JSON a 400 ``JSON parse error - ...``."""
    raw = await request.body()
    if not raw:
        return {}
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise unsupported_media_type(content_type)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise APIError(400, {"detail": f"JSON parse error - {exc}"}) from exc


def not_a_dict(data: Any) -> APIError:
    """A serializer given something else than a JSON object (``null``: "No data provided")."""
    if data is None:
        return APIError(400, {"non_field_errors": ["No data provided"]})
    kind = type(data).__name__
    return APIError(
        400, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
    )


_MISSING = object()


def char_field(
    data: dict[str, Any], name: str, max_length: int | None = None
) -> tuple[str, list[str]]:
    """A required, non-null, non-blank DRF ``CharField`` (``trim_whitespace``): the value
    and the field's error messages (empty when valid)."""
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return "", ["This field is required."]
    if value is None:
        return "", ["This field may not be null."]
    if value == "" or str(value).strip() == "":
        return "", ["This field may not be blank."]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return "", ["Not a valid string."]
    text = str(value).strip()
    errors = []
    if max_length is not None and len(text) > max_length:
        errors.append(f"Ensure this field has no more than {max_length} characters.")
    if "\x00" in text:
        errors.append("Null characters are not allowed.")
    surrogate = next((c for c in text if 0xD800 <= ord(c) <= 0xDFFF), None)
    if surrogate is not None:
        errors.append(f"Surrogate characters are not allowed: U+{ord(surrogate):X}.")
    return text, errors


def json_field(data: dict[str, Any], name: str, required: bool = True) -> tuple[Any, list[str]]:
    """A DRF ``JSONField`` (not null): any JSON value."""
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return _MISSING, ["This field is required."] if required else []
    if value is None:
        return _MISSING, ["This field may not be null."]
    return value, []


def uuid_field(data: dict[str, Any], name: str) -> tuple[str | None, list[str]]:
    """An optional DRF ``UUIDField``: the canonical form of what was given."""
    value = data.get(name, _MISSING)
    if value is _MISSING:
        return None, []
    if value is None:
        return None, ["This field may not be null."]
    try:
        if isinstance(value, int):
            return str(uuid.UUID(int=value)), []
        if isinstance(value, str):
            return str(uuid.UUID(hex=value)), []
    except ValueError:
        pass
    return None, ["Must be a valid UUID."]


def is_missing(value: Any) -> bool:
    return value is _MISSING


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
        """An optional CharField (``allow_blank=False``). As DRF reads query parameters
        (``Field.get_value`` on a QueryDict), an empty value of a field that is not required
        counts as absent; one of only spaces is "blank" (400)."""
        raw = self._present(name)
        if raw is None or raw == "":
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
