"""The emulators' one router (``neurofs_emulators.routing``), without a server."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from neurofs_emulators.routing import ANY, Converter, Router


async def _handler(request: Request) -> Response:
    return Response()


async def _other(request: Request) -> Response:
    return Response()


def test_templates_match_whole_paths_with_typed_parameters() -> None:
    router = Router()
    router.add("GET", "/tables/{table}", _handler)
    router.add("GET", "/version/{version:int}/files/{rest:path}", _other)

    found = router.match("GET", "/tables/synapses")
    assert found is not None and found.handler is _handler
    assert found.params == {"table": "synapses"}
    assert router.match("GET", "/tables/a/b") is None  # one segment
    assert router.match("GET", "/tables/") is None  # not empty
    assert router.match("GET", "/tables/synapses/") is None  # no trailing-slash folding

    found = router.match("GET", "/version/-7/files/a/b.json")
    assert found is not None and found.handler is _other
    assert found.params == {"version": -7, "rest": "a/b.json"}
    assert router.match("GET", "/version/x/files/a") is None
    assert router.match("GET", "/version/1/files/") is None


def test_head_is_answered_by_get_and_a_wrong_method_names_the_routed_ones() -> None:
    router = Router()
    router.add("POST", "/things", _other)
    router.add("GET", "/things", _handler)
    head = router.match("HEAD", "/things")
    assert head is not None and head.handler is _handler
    assert router.match("DELETE", "/things") is None
    assert router.methods("/things") == ["POST", "GET"]
    assert router.methods("/nothing") == []


def test_routes_match_in_order_and_included_routers_come_after() -> None:
    first, second = Router(), Router()
    first.add("GET", "/{name}", _handler)
    second.add("GET", "/fixed", _other)
    second.add("PUT", "/fixed", _other)
    first.include(second)
    found = first.match("GET", "/fixed")
    assert found is not None and found.handler is _handler
    put = first.match("PUT", "/fixed")
    assert put is not None and put.handler is _other


def test_any_takes_every_method_and_converters_can_be_added() -> None:
    router = Router({"id6": Converter(r"\d{6}")})
    router.add(ANY, "/dandisets/{dandiset_id:id6}/", _handler)
    for method in ("GET", "HEAD", "TRACE"):
        found = router.match(method, "/dandisets/000001/")
        assert found is not None and found.params == {"dandiset_id": "000001"}
    assert router.match("GET", "/dandisets/1/") is None
    assert router.methods("/dandisets/000001/") == [ANY]


async def test_a_match_hands_its_parameters_to_the_handler() -> None:
    seen: dict[str, object] = {}

    async def handler(request: Request) -> Response:
        seen.update(request.path_params)
        return Response(b"ok")

    router = Router()
    router.add("GET", "/v/{n:int}", handler)
    found = router.match("GET", "/v/12")
    assert found is not None
    scope = {"type": "http", "method": "GET", "path": "/v/12", "headers": [], "query_string": b""}
    response = await found(Request(scope))
    assert response.body == b"ok" and seen == {"n": 12}
