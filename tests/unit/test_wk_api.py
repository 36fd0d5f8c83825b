from __future__ import annotations

import httpx
import pytest

from neurofs.errors import ConfigError, InvalidContent
from neurofs.io.http import HttpClient
from neurofs.io.stats import Stats
from neurofs.sources.webknossos.api import choose_version, folder_paths
from neurofs.sources.webknossos.models import BuildInfo, Folder


def info(current: int, oldest: int) -> BuildInfo:
    return BuildInfo.model_validate(
        {"httpApiVersioning": {"currentApiVersion": current, "oldestSupportedApiVersion": oldest}}
    )


@pytest.mark.parametrize(("current", "oldest", "chosen"), [(12, 5, 12), (14, 5, 14), (16, 13, 14)])
def test_newest_common_version(current, oldest, chosen):
    assert choose_version(info(current, oldest)) == chosen


@pytest.mark.parametrize(("current", "oldest"), [(11, 5), (20, 15)])
def test_no_common_version_is_a_clear_error(current, oldest):
    with pytest.raises(ConfigError, match="neurofs speaks v12"):
        choose_version(info(current, oldest))


def test_folder_paths_below_the_single_root():
    folders = [
        Folder(id="r", name="Root"),
        Folder(id="a", name="EM", parent="r"),
        Folder(id="b", name="Cortex", parent="a"),
    ]
    assert folder_paths(folders) == {"r": "", "a": "EM", "b": "EM/Cortex"}


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ({"messages": [{"error": "Project could not be found"}]}, "Project could not be found"),
        ({"messages": [{"error": "a"}, {"success": "ignored"}, {"error": "b"}]}, "a; b"),
        (  # a failure with its causes (the server's formatChain)
            {
                "messages": [
                    {"error": "Could not automatically import the explored dataset."},
                    {
                        "chain": "[Server Time 2026-12-07T03:40:01.250Z]  <~ No write access"
                        " in this folder. <~ No update access."
                    },
                ]
            },
            "Could not automatically import the explored dataset.; No write access in this"
            " folder.; No update access.",
        ),
        (  # a body the server's JSON reads refused: the fields too
            {
                "errors": [{"field": "obj.owner", "error": "Missing path"}],
                "messages": [{"error": "Invalid Json format"}],
            },
            "Invalid Json format (owner: Missing path)",
        ),
    ],
)
async def test_server_error_messages_are_read_as_text(body, shown):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=body)

    http = HttpClient("wk", "http://wk.test/", Stats(), transport=httpx.MockTransport(handler))
    with pytest.raises(InvalidContent) as info:
        await http.send_json("PUT", "api/v12/projects/x", {})
    assert str(info.value).endswith(f"HTTP 400: {shown}")
