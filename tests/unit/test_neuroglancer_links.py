"""The forms of neuroglancer link (``neurofs/neuroglancer.py``): a stored state's link is
caveclient's ``build_neuroglancer_url`` for both kinds of viewer, with and without a
trailing slash on the viewer's URL, and the kind of a viewer is read from its version.json
as caveclient reads it."""

from __future__ import annotations

import pytest

from neurofs.neuroglancer import (
    ViewerKind,
    kind_of,
    linked_state_url,
    neuroglancer_url,
    version_url,
)

STATE = "https://global.daf-apis.com/nglstate/api/v1/5612340979580928"


@pytest.mark.parametrize(
    ("viewer", "kind", "link"),
    [
        (
            "https://spelunker.cave-explorer.org/",
            ViewerKind.MAINLINE,
            f"https://spelunker.cave-explorer.org/#!middleauth+{STATE}",
        ),
        (
            "https://spelunker.cave-explorer.org",
            ViewerKind.MAINLINE,
            f"https://spelunker.cave-explorer.org/#!middleauth+{STATE}",
        ),
        (
            "https://neuromancer-seung-import.appspot.com/",
            ViewerKind.SEUNGLAB,
            f"https://neuromancer-seung-import.appspot.com/?json_url={STATE}",
        ),
        (
            "https://neuromancer-seung-import.appspot.com",
            ViewerKind.SEUNGLAB,
            f"https://neuromancer-seung-import.appspot.com/?json_url={STATE}",
        ),
    ],
)
def test_a_stored_states_link_is_caveclients(viewer: str, kind: ViewerKind, link: str) -> None:
    assert linked_state_url(viewer, STATE, kind) == link


def test_the_kind_of_a_viewer_is_whether_its_version_json_says_anything() -> None:
    assert kind_of(None) is ViewerKind.SEUNGLAB  # no version.json (404)
    assert kind_of({}) is ViewerKind.SEUNGLAB and kind_of("") is ViewerKind.SEUNGLAB
    assert kind_of({"tag": "v2.40.1"}) is ViewerKind.MAINLINE
    assert kind_of(["v2.40.1"]) is ViewerKind.MAINLINE


def test_version_json_is_asked_where_caveclient_asks_it() -> None:
    # "{ngl_url}/version.json", whatever the URL ends with.
    assert version_url("https://ng.example.org/") == "https://ng.example.org//version.json"
    assert version_url("https://ng.example.org") == "https://ng.example.org/version.json"


def test_an_inline_state_keeps_the_client_url_as_given() -> None:
    # A client URL may name a page: nothing is added to it.
    url = neuroglancer_url("http://127.0.0.1:8000/v/neurofs/index.html", {"layers": []})
    assert url == "http://127.0.0.1:8000/v/neurofs/index.html#!%7B%22layers%22%3A%5B%5D%7D"
