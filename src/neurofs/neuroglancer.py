"""Links that open a neuroglancer viewer on a state: the forms of URL a deployment reads.

A viewer reads its state from the URL it is opened at. Mainline neuroglancer (google's, and
the builds CAVE deploys, such as spelunker) reads the fragment after ``#!``: the state's JSON
itself (what ``neurofs ng-url`` prints), or the URL of a JSON state kept elsewhere, prefixed
``middleauth+`` when the server holding it signs readers in with CAVE's middle_auth. The
seung-lab fork takes the state's URL in the query instead (``?json_url=``) and signs in on
its own. Which form a deployment reads, its ``version.json`` tells: mainline builds publish
one, the seung-lab fork has none (caveclient, ``JSONService.build_neuroglancer_url``).
"""

from __future__ import annotations

import enum
import json
import urllib.parse
from collections.abc import Sized
from typing import Any

# Where mainline neuroglancer reads its state from.
STATE_FRAGMENT = "#!"
# The state is kept by a server that signs readers in with CAVE's middle_auth.
MIDDLE_AUTH = "middleauth+"
# A deployment's build information; only mainline builds publish it.
VERSION_FILE = "version.json"


class ViewerKind(enum.Enum):
    """Which form of link a neuroglancer deployment reads."""

    MAINLINE = "mainline"  # google/neuroglancer and its builds (CAVE's spelunker)
    SEUNGLAB = "seunglab"  # the seung-lab fork


def kind_of(version: Sized | None) -> ViewerKind:
    """The kind of a deployment, from its ``version.json`` (None: it has none). An empty
    document counts as none, as caveclient counts it."""
    return ViewerKind.MAINLINE if version is not None and len(version) > 0 else ViewerKind.SEUNGLAB


def version_url(viewer: str) -> str:
    """Where a deployment's ``version.json`` is asked for: the viewer's URL and the file's
    name joined by a slash whatever the URL ends with, the very URL caveclient asks (so both
    get one answer and choose one form)."""
    return f"{viewer}/{VERSION_FILE}"


def neuroglancer_url(client: str, state: dict[str, Any]) -> str:
    """A mainline viewer at ``client`` (as given: it may name a page) showing ``state``
    itself, carried whole in the fragment."""
    text = json.dumps(state, separators=(",", ":"))
    return client + STATE_FRAGMENT + urllib.parse.quote(text, safe="")


def linked_state_url(viewer: str, state_url: str, kind: ViewerKind) -> str:
    """A viewer at ``viewer`` showing the state CAVE's state server keeps at ``state_url``.

    Built as caveclient builds it, so that a link equals the client's: the viewer's URL gets
    a slash unless it ends with one, then the form of ``kind``; the state's URL goes in as
    it is (unquoted), which both forms read."""
    join = "" if viewer.endswith("/") else "/"
    if kind is ViewerKind.SEUNGLAB:
        return f"{viewer}{join}?json_url={state_url}"
    return f"{viewer}{join}{STATE_FRAGMENT}{MIDDLE_AUTH}{state_url}"
