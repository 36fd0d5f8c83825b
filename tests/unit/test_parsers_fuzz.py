"""Property tests of everything that turns untrusted input into the tree.

- The name mapping: any server name becomes one valid path component; within a directory
  distinct server names stay distinct; the result is deterministic and order-independent.
- The API parsers of each source, fed arbitrary JSON (and JSON shaped like the real answers
  with hostile values): they return or raise the documented error (``RemoteError``), never
  anything else, and never page forever.
- The user-facing parsers (sidecar text, CAVE CSV / JSON Lines): only ``InvalidContent``.

Example counts are modest in CI; ``NEUROFS_RELIABILITY_FULL=1`` runs many more.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurofs.config import SourceConfig
from neurofs.errors import InvalidContent, NeurofsError, NotFound, RemoteError
from neurofs.io.stats import Stats
from neurofs.sources.cave import api as cave_api
from neurofs.sources.cave.table_format import (
    format_from_schema,
    parse_csv,
    parse_jsonl,
    render_csv,
    render_jsonl,
)
from neurofs.sources.dandi import api as dandi_api
from neurofs.sources.dandi.models import Asset
from neurofs.sources.dandi.tree import build_index
from neurofs.sources.webknossos import api as wk_api
from neurofs.sources.webknossos.models import Dataset, Folder
from neurofs.sources.webknossos.tree import MAX_LISTED_CHUNKS, _folder_nodes, dataset_names
from neurofs.sources.webknossos.volume import MagGeometry
from neurofs.tree.names import NAME_MAX, is_valid_name, safe_name, unique_names
from neurofs.tree.rejected import RejectedStore
from neurofs.tree.sidecar import TextFormat, parse

FULL = os.environ.get("NEUROFS_RELIABILITY_FULL") == "1"
EXAMPLES = 2000 if FULL else 100
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------- strategies

# Names as hostile servers send them: any code point (controls, NUL, surrogates, '/'),
# the special names, long names, names that differ only by case, and the characters the
# mapping itself produces.
_SPECIAL = st.sampled_from(
    ["", ".", "..", "/", "a/b", "a\u2215b", "\ufffd", "\uff0e", "\uff0e\uff0e", "x\0y", "X", "x"]
)
names_strategy = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("aA/.\0\x01\x7f\u2215\ufffd\uff0e~é"), max_size=12),
    st.text(min_size=200, max_size=400),
    _SPECIAL,
)
SUFFIXES = st.sampled_from(["", ".json", ".annotations.json", ".ome.zarr", ".csv"])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
any_json = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


def shaped(required: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the expected keys, each holding a plausible or a hostile value."""
    return st.fixed_dictionaries(
        {k: st.one_of(v, any_json) for k, v in required.items()},
        optional={"extra": any_json},
    )


timestamps = st.sampled_from(["2024-01-01T00:00:00Z", "2024-13-45", "", "yesterday"])
asset_like = shaped(
    {
        "asset_id": st.text(max_size=8),
        "blob": st.one_of(st.none(), st.text(max_size=8)),
        "zarr": st.none(),
        "path": names_strategy,
        "size": st.integers(min_value=-5, max_value=2**64),
        "created": timestamps,
        "modified": timestamps,
    }
)
page_like = shaped(
    {
        "count": st.one_of(st.none(), st.integers(min_value=-5, max_value=10**12)),
        "next": st.one_of(st.none(), st.sampled_from(["page2", "http://elsewhere.invalid/p"])),
        "results": st.lists(st.one_of(asset_like, any_json), max_size=4),
    }
)


# ---------------------------------------------------------------- names


@fuzz
@given(names_strategy, SUFFIXES)
def test_safe_name_is_one_valid_component(name: str, suffix: str) -> None:
    out = safe_name(name, suffix)
    assert is_valid_name(out), out
    assert out.endswith(suffix)
    assert len(out.encode("utf-8")) <= NAME_MAX
    assert safe_name(name, suffix) == out


@fuzz
@given(st.lists(names_strategy, max_size=12), SUFFIXES, st.randoms())
def test_unique_names_are_valid_distinct_and_order_independent(
    names: list[str], suffix: str, rnd: Any
) -> None:
    mapping = unique_names(names, suffix)
    assert set(mapping) == set(names)
    out = list(mapping.values())
    assert len(set(out)) == len(out), mapping  # injective within the directory
    for server, mapped in mapping.items():
        assert is_valid_name(mapped) and mapped.endswith(suffix)
        if safe_name(server, suffix) == server + suffix:
            assert mapped == server + suffix  # names that are safe already are kept
    shuffled = list(names)
    rnd.shuffle(shuffled)
    assert unique_names(shuffled, suffix) == mapping  # depends only on the set


@fuzz
@given(st.lists(names_strategy, min_size=1, max_size=6))
def test_unique_names_survive_names_forged_after_other_names(names: list[str]) -> None:
    """A server may name entries after what other entries map to (hashes included)."""
    first = unique_names(names)
    forged = [*names, *first.values(), *(v + "~0" for v in first.values())]
    mapping = unique_names(forged)
    assert len(set(mapping.values())) == len(mapping)
    assert all(is_valid_name(v) for v in mapping.values())


def test_examples_of_the_mapping() -> None:
    clash = unique_names(["a/b", "a\u2215b"])
    assert clash["a\u2215b"] == "a\u2215b"  # safe already: kept
    assert clash["a/b"].startswith("a\u2215b~") and len(clash["a/b"]) == 3 + 1 + 16
    both = unique_names(["x\x01", "x\x02"])
    assert len(set(both.values())) == 2 and all(v.startswith("x\ufffd~") for v in both.values())
    assert unique_names(["x\x01"]) == {"x\x01": "x\ufffd"}  # no clash: the plain mapping
    assert unique_names([".", ".."]) == {".": "\uff0e", "..": "\uff0e\uff0e"}
    assert unique_names(["Data", "data"]) == {"Data": "Data", "data": "data"}
    assert len(safe_name("n" * 300, ".json").encode()) == NAME_MAX


@fuzz
@given(names_strategy)
def test_a_rejected_copy_can_always_be_kept(name: str) -> None:
    """The kept copy's name adds a timestamp: it must still fit (a save is never lost)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = RejectedStore(Path(tmp) / "rejected")
        key = ("webknossos", "tasks", safe_name(name, ".json"))
        kept = store.keep(key, b"the user's bytes")
        kept_again = store.keep(key, b"a second save in the same second")
        assert kept != kept_again
        assert (store.directory / kept).read_bytes() == b"the user's bytes"
        assert all(is_valid_name(part) for part in kept.split("/"))


@fuzz
@given(st.lists(asset_like, max_size=8))
def test_dandi_folders_have_valid_distinct_names(raw_assets: list[dict[str, Any]]) -> None:
    assets = []
    for raw in raw_assets:
        try:
            assets.append(Asset.model_validate(raw))
        except ValueError:
            continue
    index = build_index(assets)
    for folder, entries in index.items():
        assert ".." not in folder.split("/")
        for name, entry in entries.items():
            assert name == entry.name and is_valid_name(name)


@fuzz
@given(st.lists(st.tuples(names_strategy, st.text(max_size=4)), max_size=8))
def test_wk_dataset_and_folder_names(pairs: list[tuple[str, str]]) -> None:
    datasets = [
        Dataset.model_validate(
            {
                "id": f"{i}-{ident}",
                "name": name,
                "owningOrganization": name,
                "dataStore": {"url": "http://ds"},
            }
        )
        for i, (name, ident) in enumerate(pairs)
    ]
    names = dataset_names(datasets)
    assert len(names) == len(datasets)
    assert all(is_valid_name(n) for n in names)
    folders = [Folder(id=str(i), name=n) for i, (n, _) in enumerate(pairs)]
    nodes = _folder_nodes(("wk", "folders"), None, folders)  # type: ignore[arg-type]
    assert len(nodes) == len(folders)
    assert len({n.name for n in nodes}) == len(nodes)
    assert all(is_valid_name(n.name) for n in nodes)


# ---------------------------------------------------------------- sidecar text (user input)


@fuzz
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode), st.sampled_from(TextFormat))
def test_sidecar_parse_raises_only_invalid_content(data: bytes, fmt: TextFormat) -> None:
    try:
        doc = parse(data, fmt)
    except InvalidContent:
        return
    assert isinstance(doc, dict)


@pytest.mark.parametrize(
    "text",
    [
        "a: 2001-13-01\n",  # a date YAML's constructor refuses (was ValueError → EIO)
        "a: " + "[" * 5000 + "\n",  # nested beyond the recursion limit
        "a: " + "1" * 5000 + "\n",
        # a "billion laughs" document: nine lines standing for 10^9 values
        "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
            for i in range(8)
        ),
    ],
)
def test_sidecar_parse_of_hostile_yaml_is_einval(text: str) -> None:
    with pytest.raises(InvalidContent):
        parse(text.encode(), TextFormat.YAML)


def test_sidecar_parse_of_hostile_json_is_einval() -> None:
    for text in ("[" * 100_000, '{"a": ' + "1" * 5000 + "}", '{"a":' * 150 + "1" + "}" * 150):
        with pytest.raises(InvalidContent):
            parse(text.encode(), TextFormat.JSON)


# ---------------------------------------------------------------- CAVE tables


SCHEMA = {
    "$ref": "#/definitions/BoundTagAnnotation",
    "definitions": {
        "BoundTagAnnotation": {
            "properties": {
                "pt": {"$ref": "#/definitions/BoundSpatialPoint", "order": 0},
                "tag": {"type": "string"},
            },
            "required": ["pt", "tag"],
        }
    },
}


@fuzz
@given(any_json | shaped({"$ref": st.text(max_size=10), "definitions": any_json}))
def test_cave_schema_parser_raises_only_remote_error(schema: Any) -> None:
    try:
        fmt = format_from_schema(schema)
    except RemoteError:
        return
    assert fmt.columns[0] == "id"


flat_rows = st.lists(
    shaped(
        {
            "id": st.integers(min_value=0, max_value=10**6),
            "pt_position": st.lists(json_scalars, max_size=4),
            "tag": json_scalars,
            "valid": st.booleans(),
        }
    ),
    max_size=5,
)


@fuzz
@given(flat_rows)
def test_cave_rendering_never_fails_on_server_rows(rows: list[dict[str, Any]]) -> None:
    fmt = format_from_schema(SCHEMA)
    csv_text = render_csv(fmt, rows)
    jsonl = render_jsonl(fmt, rows)
    assert csv_text.count(b"\n") >= 1
    assert len(jsonl.splitlines()) == len(rows)


@fuzz
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_cave_table_parsers_raise_only_invalid_content(data: bytes) -> None:
    fmt = format_from_schema(SCHEMA)
    header = ",".join(fmt.columns).encode() + b"\n"
    for parser, text in ((parse_csv, header + data), (parse_csv, data), (parse_jsonl, data)):
        with contextlib.suppress(InvalidContent):
            parser(fmt, text)


# ---------------------------------------------------------------- API parsers


class StubHttp:
    """The HttpClient surface the API classes use, answering every request with ``answer``."""

    base_url = "http://server.invalid/api/"

    def __init__(self, answer: Callable[[str], Any]) -> None:
        self._answer = answer
        self.requests = 0

    def url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path.lstrip("/")

    async def get_json(self, path: str, params: Any = None, **_: Any) -> Any:
        self.requests += 1
        assert self.requests < 10_000, "a listing that never ends"
        return self._answer(path)

    async def send_json(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.requests += 1
        assert self.requests < 10_000, "a query that never ends"
        return self._answer(path)

    async def resolve_redirect(self, path: str, params: Any = None) -> str:
        return "http://s3.invalid/blob"

    async def aclose(self) -> None:
        return None


def _only_remote_errors(call: Callable[[], Awaitable[Any]]) -> None:
    async def run() -> None:
        with contextlib.suppress(RemoteError, NotFound):
            await call()

    trio.run(run)


DANDI_CALLS: dict[str, Callable[[dandi_api.DandiApi], Awaitable[Any]]] = {
    "dandisets": lambda a: a.dandisets(),
    "dandiset": lambda a: a.dandiset("000001"),
    "releases": lambda a: a.releases("000001"),
    "version_info": lambda a: a.version_info("000001", "draft"),
    "assets": lambda a: a.assets("000001", "draft"),
    "paths": lambda a: a.paths("000001", "draft", ""),
    "asset_info": lambda a: a.asset_info("x"),
    "zarr_files_page": lambda a: a.zarr_files_page("z", "0/"),
    "asset_at": lambda a: a.asset_at("000001", "draft", "a/b"),
}


@fuzz
@given(st.sampled_from(sorted(DANDI_CALLS)), any_json | page_like)
def test_dandi_parsers_raise_only_remote_error(call: str, answer: Any) -> None:
    http = StubHttp(lambda path: answer)
    api = dandi_api.DandiApi(http, authenticated=True)  # type: ignore[arg-type]
    _only_remote_errors(lambda: DANDI_CALLS[call](api))


def test_dandi_listing_that_loops_or_never_ends_is_refused() -> None:
    """next → itself, next → a new page forever, a count beyond the bound: all RemoteError."""
    asset = {
        "asset_id": "a",
        "blob": "b",
        "path": "f",
        "size": 1,
        "created": "2024-01-01T00:00:00Z",
        "modified": "2024-01-01T00:00:00Z",
    }
    counter = iter(range(10**9))
    answers: dict[str, Callable[[str], Any]] = {
        "self loop": lambda path: {"next": "assets/?page=2", "results": [asset]},
        "endless": lambda path: {"next": f"assets/?page={next(counter)}", "results": [asset]},
        "empty pages": lambda path: {"next": f"assets/?p={next(counter)}", "results": []},
        "huge count": lambda path: {"count": 10**12, "next": "x", "results": [asset]},
        "other host": lambda path: {"next": "http://evil.invalid/", "results": [asset]},
    }
    for case, answer in answers.items():
        http = StubHttp(answer)
        api = dandi_api.DandiApi(http, authenticated=False)  # type: ignore[arg-type]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dandi_api, "MAX_LISTING_ITEMS", 500)

            async def run(api: dandi_api.DandiApi = api) -> None:
                with pytest.raises(RemoteError):
                    await api.assets("000001", "draft")

            trio.run(run)
        assert http.requests <= 501, case


def _wk(answer: Callable[[str], Any]) -> tuple[wk_api.WebknossosApi, StubHttp]:
    config = SourceConfig(kind="webknossos", name="wk", url="http://server.invalid")
    api = wk_api.WebknossosApi(config, Stats(), None)
    http = StubHttp(answer)
    api.http = http  # type: ignore[assignment]
    return api, http


BUILDINFO = {"httpApiVersioning": {"currentApiVersion": 12, "oldestSupportedApiVersion": 5}}
dataset_like = shaped(
    {
        "id": st.text(max_size=5),
        "name": names_strategy,
        "owningOrganization": names_strategy,
        "dataStore": shaped({"url": st.just("http://ds")}),
        "dataSource": shaped(
            {
                "dataLayers": st.lists(
                    shaped(
                        {
                            "name": names_strategy,
                            "category": st.just("color"),
                            "elementClass": st.sampled_from(["uint8", "uint24", "weird"]),
                            "boundingBox": shaped(
                                {
                                    "topLeft": st.lists(st.integers(-(2**40), 2**40), max_size=4),
                                    "width": st.integers(-1, 2**40),
                                    "height": st.integers(-1, 2**40),
                                    "depth": st.integers(-1, 2**40),
                                }
                            ),
                            "mags": st.lists(
                                st.lists(st.integers(-1, 2**20), min_size=3, max_size=3),
                                max_size=3,
                            ),
                        }
                    ),
                    max_size=2,
                )
            }
        ),
    }
)


@fuzz
@given(
    st.sampled_from(["buildinfo", "datasets", "dataset", "teams", "folders", "sharing"]),
    any_json | dataset_like | st.lists(dataset_like, max_size=3),
)
def test_webknossos_parsers_raise_only_remote_error(call: str, answer: Any) -> None:
    def respond(path: str) -> Any:
        if call != "buildinfo" and path.endswith("buildinfo"):
            return BUILDINFO
        return answer

    api, _ = _wk(respond)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "buildinfo": api.version,
        "datasets": api.datasets,
        "dataset": lambda: api.dataset("x"),
        "teams": api.teams,
        "folders": api.folders,
        "sharing": lambda: api.sharing_token("x"),
    }

    async def run() -> None:
        try:
            result = await calls[call]()
        except RemoteError:
            return
        except NeurofsError as exc:  # ConfigError: a server version neurofs does not speak
            assert call == "buildinfo", exc
            return
        for d in result if isinstance(result, list) else [result]:
            if isinstance(d, Dataset):
                _check_dataset_geometry(d)

    trio.run(run)


def _check_dataset_geometry(d: Dataset) -> None:
    """Whatever a validated dataset says, its arrays have sane extents: no division by zero,
    no astronomically long listing (beyond MAX_LISTED_CHUNKS it is not listed)."""
    for layer in d.data_source.data_layers:
        for mag in layer.mags:
            g = MagGeometry(layer, mag.mag)
            counts = g.chunk_counts
            assert all(0 <= c <= 2**32 for c in counts)
            with contextlib.suppress(RemoteError):  # an elementClass neurofs does not know
                assert g.chunk_bytes > 0
    assert MAX_LISTED_CHUNKS > 0


def _cave(answer: Callable[[str], Any]) -> cave_api.CaveApi:
    config = SourceConfig(kind="cave", name="cave", url="http://server.invalid", datastacks=["d"])

    class Api(cave_api.CaveApi):
        def _client(self, url: str) -> Any:
            return StubHttp(answer)

    return Api(config, Stats(), None)


INFO = {"local_server": "http://local.invalid", "aligned_volume": {"name": "v"}}
CAVE_CALLS: dict[str, Callable[[cave_api.CaveApi], Awaitable[Any]]] = {
    "info": lambda a: a.local("d"),
    "tables": lambda a: a.tables("d"),
    "metadata": lambda a: a.table_metadata("d", "t"),
    "count": lambda a: a.count("d", "t"),
    "rows": lambda a: a.rows("d", "t"),
    "versions": lambda a: a.versions("d"),
    "vtables": lambda a: a.version_tables("d", 1),
    "vrows": lambda a: a.version_rows("d", 1, "t"),
}


@fuzz
@given(
    st.sampled_from(sorted(CAVE_CALLS)),
    any_json | st.lists(shaped({"id": st.integers(0, 5)}), max_size=4),
)
def test_cave_parsers_raise_only_remote_error(call: str, answer: Any) -> None:
    def respond(path: str) -> Any:
        if call != "info" and "datastack/full" in path:
            return INFO
        return answer

    api = _cave(respond)
    _only_remote_errors(lambda: CAVE_CALLS[call](api))


def _counted(count: int, pages: Callable[[int], Any]) -> Callable[[str], Any]:
    """A local server whose first query answer is the count, then ``pages(n)`` for the nth."""
    asked = 0

    def respond(path: str) -> Any:
        nonlocal asked
        if "datastack/full" in path:
            return INFO
        asked += 1
        return [{"count": count}] if asked == 1 else pages(asked - 1)

    return respond


def test_cave_query_that_repeats_its_page_is_refused() -> None:
    page = [{"id": i} for i in range(cave_api.QUERY_LIMIT)]
    api = _cave(_counted(2 * cave_api.QUERY_LIMIT, lambda n: page))

    async def run() -> None:
        with pytest.raises(RemoteError, match="repeats"):
            await api.rows("d", "t")

    trio.run(run)


def test_cave_query_pages_past_a_server_cap_until_its_count() -> None:
    """A server capping answers at 3 rows (below what is asked): every row is read."""
    api = _cave(_counted(10, lambda n: [{"id": i} for i in range(3 * n - 2, min(3 * n, 10) + 1)]))
    rows = trio.run(lambda: api.rows("d", "t"))
    assert [r["id"] for r in rows] == list(range(1, 11))


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        # Stops after 6 rows: never a silently short table.
        (
            lambda n: [{"id": i} for i in range(3 * n - 2, 3 * n + 1)] if n <= 2 else [],
            "6 of its 10",
        ),
        # More rows than counted.
        (lambda n: [{"id": i} for i in range(6 * n - 5, 6 * n + 1)], "counts 10"),
    ],
)
def test_cave_query_short_or_long_of_its_count_is_refused(
    pages: Callable[[int], Any], message: str
) -> None:
    api = _cave(_counted(10, pages))

    async def run() -> None:
        with pytest.raises(RemoteError, match=message):
            await api.rows("d", "t")

    trio.run(run)
