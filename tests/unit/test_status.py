"""The status table (io/status.py): every status it names, on a read and on a write, through
the HTTP client against scripted answers (httpx.MockTransport); and CAVE's reading of the
statuses its engines hide in a 500."""

from __future__ import annotations

import httpx
import pytest

from neurofs.errors import (
    AccessDenied,
    Conflict,
    InvalidContent,
    NeurofsError,
    NotFound,
    ReadOnly,
    RemoteError,
    TooLarge,
)
from neurofs.io.http import HttpClient, LinkExpired, RetryPolicy, Unreachable
from neurofs.io.stats import Stats
from neurofs.io.status import TABLE, StatusReader, error_for, transient
from neurofs.sources.cave.api import real_status

API = "http://api.test/api"

# What the table must say (status: read, write); written out again so that a change to the
# table is a change to this test too.
EXPECTED: dict[int, tuple[type[NeurofsError], type[NeurofsError]]] = {
    400: (RemoteError, InvalidContent),
    401: (AccessDenied, AccessDenied),
    403: (AccessDenied, AccessDenied),
    404: (NotFound, NotFound),
    405: (RemoteError, ReadOnly),
    409: (Conflict, Conflict),
    410: (NotFound, NotFound),
    413: (RemoteError, TooLarge),
    422: (RemoteError, InvalidContent),
}
UNNAMED = [402, 408, 418, 423, 451]
TRANSIENT = [429, 500, 502, 503, 504]


def client(handler: object, *, reader: StatusReader | None = None) -> HttpClient:
    return HttpClient(
        "t",
        API,
        Stats(),
        retry=RetryPolicy(
            total_seconds=0.2, first_backoff=0.01, max_backoff=0.02, max_retry_after=0.02
        ),
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        status_reader=reader,
    )


def answering(status: int, body: object, calls: list[str]) -> object:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(status, json=body)

    return handler


def test_the_table_is_as_documented() -> None:
    assert dict(TABLE) == EXPECTED


@pytest.mark.parametrize("status", sorted(EXPECTED))
def test_error_for_every_named_status(status: int) -> None:
    on_read, on_write = EXPECTED[status]
    assert type(error_for(status, "m", write=False)) is on_read
    assert type(error_for(status, "m", write=True)) is on_write


@pytest.mark.parametrize("status", UNNAMED + TRANSIENT)
def test_statuses_the_table_does_not_name_are_remote_errors(status: int) -> None:
    for write in (False, True):
        assert type(error_for(status, "m", write=write)) is RemoteError


def test_only_429_and_5xx_are_transient() -> None:
    assert all(transient(s) for s in TRANSIENT)
    assert not any(transient(s) for s in [*EXPECTED, *UNNAMED])


@pytest.mark.parametrize("status", sorted(EXPECTED) + UNNAMED)
async def test_a_read_gets_the_read_column_at_once(status: int) -> None:
    calls: list[str] = []
    c = client(answering(status, {"detail": "nope"}, calls))
    with pytest.raises(NeurofsError, match=f"GET .*: HTTP {status}: nope") as info:
        await c.get_json("x/")
    assert type(info.value) is EXPECTED.get(status, (RemoteError,))[0]
    assert calls == ["GET"]  # final: never retried


@pytest.mark.parametrize("status", sorted(EXPECTED) + UNNAMED)
@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_a_write_gets_the_write_column_at_once(status: int, method: str) -> None:
    calls: list[str] = []
    c = client(answering(status, {"detail": "nope"}, calls))
    with pytest.raises(NeurofsError, match=f"{method} .*: HTTP {status}: nope") as info:
        await c.send_json(method, "x/", {"a": 1})
    assert type(info.value) is EXPECTED.get(status, (RemoteError, RemoteError))[1]
    assert calls == [method]


@pytest.mark.expect_log(r"giving up after \d+ tries")
@pytest.mark.parametrize("status", TRANSIENT)
async def test_transient_statuses_are_retried_where_a_request_may_be_sent_again(
    status: int,
) -> None:
    for call, resend in [
        (lambda c: c.get_json("x/"), True),
        (lambda c: c.send_json("PUT", "x/", {}), True),
        (lambda c: c.send_json("POST", "q/", {}, idempotent=True), True),
        (lambda c: c.send_json("POST", "x/", {}), False),
    ]:
        calls: list[str] = []
        c = client(answering(status, {"detail": "busy"}, calls))
        with pytest.raises(RemoteError) as info:
            await call(c)
        if resend:
            assert type(info.value) is Unreachable and len(calls) > 1
        else:  # a POST that is answered is never sent again: the answer is final
            assert type(info.value) is RemoteError and calls == ["POST"]
            assert f"HTTP {status}: busy" in str(info.value)


async def test_a_403_from_a_data_host_is_an_expired_link_and_from_the_api_a_refusal() -> None:
    c = client(lambda r: httpx.Response(403, text="<Error>denied</Error>"))
    with pytest.raises(LinkExpired):
        await c.get_range("http://s3.test/blob", 0, 10, 100)
    with pytest.raises(AccessDenied) as info:
        await c.get_range(f"{API}/blob", 0, 10, 100)
    assert type(info.value) is AccessDenied


# ------------------------------------------------------------------ CAVE's engines


def engine(message: str) -> dict[str, object]:
    """The annotation engine's catch-all answer (always HTTP 500)."""
    return {"code": 500, "message": message, "traceback": []}


@pytest.mark.parametrize(
    ("status", "message", "real"),
    [
        (500, "422 Unprocessable Entity: {'tag': ['bad']}", 422),
        (500, "409 Conflict: row superseded", 409),
        (500, "413 Request Entity Too Large: The insertion limit is 10000", 413),
        (500, "404 Not Found: no such table", 404),
        (500, "schema_errors: {'annotations': ['Missing data']}", 422),
        (403, "missing_tos: accept them", 403),
        (500, "missing_tos: accept them", 403),
        (500, "500 Internal Server Error: boom", None),
        (500, "Internal Server Error", None),
        (500, "200 rows were not written", None),
        (404, "404 Not Found: a real 404", None),
        (400, "422 is not read from a status other than 500", None),
    ],
)
def test_cave_real_status(status: int, message: str, real: int | None) -> None:
    found = real_status(status, message)
    assert (found[0] if found else None) == real


@pytest.mark.parametrize(
    ("message", "on_read", "on_write"),
    [
        ("409 Conflict: row superseded", Conflict, Conflict),
        ("422 Unprocessable Entity: bad tag", RemoteError, InvalidContent),
        ("400 Bad Request: unknown schema", RemoteError, InvalidContent),
        ("413 Request Entity Too Large: 10000 rows at most", RemoteError, TooLarge),
        ("403 Forbidden: not the owner", AccessDenied, AccessDenied),
        ("404 Not Found: table gone", NotFound, NotFound),
        ("405 Method Not Allowed: no", RemoteError, ReadOnly),
        ("410 Gone: table gone", NotFound, NotFound),
    ],
)
async def test_cave_statuses_inside_a_500_go_through_the_table(
    message: str, on_read: type[NeurofsError], on_write: type[NeurofsError]
) -> None:
    calls: list[str] = []
    c = client(answering(500, engine(message), calls), reader=real_status)
    with pytest.raises(NeurofsError) as read:
        await c.get_json("x/")
    with pytest.raises(NeurofsError) as write:
        await c.send_json("PUT", "x/", {"a": 1})
    assert (type(read.value), type(write.value)) == (on_read, on_write)
    assert calls == ["GET", "PUT"]  # refusals: never retried as server errors
    assert "HTTP 500: " + message in str(write.value)


async def test_cave_terms_of_service_is_access_denied_with_the_url_to_accept_them() -> None:
    body = {
        "error": "missing_tos",
        "message": "Need to accept Terms of Service to access resource.",
        "data": {"tos_form_url": "https://global.test/sticky_auth/api/v1/tos/2/accept"},
    }
    c = client(answering(403, body, []), reader=real_status)
    with pytest.raises(AccessDenied, match=r"terms of service not accepted.*accept the terms at"):
        await c.get_json("x/")


@pytest.mark.expect_log(r"giving up after \d+ tries")
async def test_a_plain_cave_500_is_a_server_failure() -> None:
    calls: list[str] = []
    c = client(answering(500, engine("Internal Server Error"), calls), reader=real_status)
    with pytest.raises(Unreachable):
        await c.get_json("x/")
    assert len(calls) > 1
