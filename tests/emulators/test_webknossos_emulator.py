"""The WEBKNOSSOS emulator over real HTTP: routes, shapes, auth, writes, voxel data, knobs.

Expectations come from the real server's behaviour (scalableminds/webknossos's controllers, the real
controllers, webknossos-libs' recorded traffic) and from :class:`SampleWorld`, the ground truth
of what the emulator serves. Tests that write start their own emulator, so the shared one
always serves the pristine sample.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.webknossos import volume
from neurofs_emulators.webknossos.http import chain_text
from neurofs_emulators.webknossos.sample import (
    CURRENT_API_VERSION,
    DATASET_CEREBELLUM,
    DATASET_L4,
    DATASET_RETINA,
    FOLDER_ARCHIVE,
    FOLDER_CORTEX,
    FOLDER_EM,
    FOLDER_LM,
    FOLDER_ROOT,
    ORGANIZATION,
    OTHER_TOKEN,
    OWNER_TOKEN,
    PROJECT_BETA,
    PROJECT_DEMO,
    TASK_IDS,
    TASK_TYPE_SKELETON,
    TASK_TYPE_VOLUME,
    TEAM_ALPHA,
    TEAM_BETA,
    TEAM_ORG,
    USER_OTHER,
    USER_OWNER,
    SampleWorld,
)

OWNER = {"X-Auth-Token": OWNER_TOKEN}
OTHER = {"X-Auth-Token": OTHER_TOKEN}
BAD = {"X-Auth-Token": "not-a-token"}


@pytest.fixture
def fresh() -> Iterator[RunningEmulator]:
    """A private emulator for tests that write."""
    with start_emulator("webknossos") as emulator:
        yield emulator


# The emulator's default API version: what a recorded real server announces.
V = f"v{CURRENT_API_VERSION}"


def api_client(emulator: RunningEmulator, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=f"{emulator.urls[0]}/api/{V}/", headers=headers, timeout=60)


def data_client(emulator: RunningEmulator, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=f"{emulator.urls[1]}/data/{V}/", headers=headers, timeout=60)


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"messages"}, body
    return str(body["messages"][0]["error"])


# The real server's chain entry (ExtendedController.formatChain): the server time as Java's
# Instant.toString, then " <~ " before each cause.
CHAIN = re.compile(r"^\[Server Time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z\] (?P<causes>.*)$")


def refusal_of(response: httpx.Response) -> tuple[int, str, list[str]]:
    """Status, error and chained causes of an error answer in the real server's shape:
    ``{"messages": [{"error": ...}]}`` or ``[{"error": ...}, {"chain": ...}]``."""
    body = response.json()
    assert set(body) == {"messages"}, body
    first, *rest = body["messages"]
    assert set(first) == {"error"}, body
    if not rest:
        return response.status_code, first["error"], []
    [chain] = rest
    assert set(chain) == {"chain"}, body
    found = CHAIN.match(chain["chain"])
    assert found is not None, chain
    causes = found["causes"].split(" <~ ")
    assert causes[0] == "", chain
    return response.status_code, first["error"], causes[1:]


# ---------------------------------------------------------------------------- basics


def test_ready_line_has_two_origins(wk: RunningEmulator) -> None:
    main, store = (urlsplit(u) for u in wk.urls)
    assert main.hostname == store.hostname and main.port != store.port
    # Each origin serves only its own host's routes.
    assert httpx.get(f"{wk.urls[0]}/data/{V}/zarr/x/.zgroup").status_code == 404
    assert httpx.get(f"{wk.urls[1]}/api/{V}/buildinfo").status_code == 404


def test_buildinfo_and_versions(wk: RunningEmulator) -> None:
    # By default, what a recorded real server announces.
    info = httpx.get(wk.urls[0] + "/api/buildinfo").json()
    assert info["httpApiVersioning"] == {"currentApiVersion": 12, "oldestSupportedApiVersion": 5}
    assert info["webknossos"]["name"] == "webknossos"
    assert {"localDataStoreEnabled", "localTracingStoreEnabled", "schemaVersion"} <= set(info)
    for version in (5, 11, 12):
        assert httpx.get(f"{wk.urls[0]}/api/v{version}/datasets").status_code == 200
        url = f"{wk.urls[1]}/data/v{version}/zarr/{DATASET_L4}/.zgroup"
        assert httpx.get(url).json() == {"zarr_format": 2}
    for version in (4, 13, 14):
        response = httpx.get(f"{wk.urls[0]}/api/v{version}/datasets")
        assert response.status_code == 404
        assert f"Client requested {version} but must be at least 5 and at most 12" in error_of(
            response
        )
        response = httpx.get(f"{wk.urls[1]}/data/v{version}/zarr/{DATASET_L4}/.zgroup")
        assert response.status_code == 404
    # Unversioned routes are the current version.
    assert httpx.get(wk.urls[0] + "/api/datasets").status_code == 200


@pytest.mark.parametrize("version", [13, 14])
def test_api_version_knob(version: int) -> None:
    with start_emulator("webknossos", ["--api-version", str(version)]) as emulator:
        info = httpx.get(emulator.urls[0] + "/api/buildinfo").json()
        assert info["httpApiVersioning"] == {
            "currentApiVersion": version,
            "oldestSupportedApiVersion": 5,
        }
        for v in (12, version):
            assert httpx.get(f"{emulator.urls[0]}/api/v{v}/user", headers=OWNER).status_code == 200
            url = f"{emulator.urls[1]}/data/v{v}/zarr/{DATASET_L4}/.zgroup"
            assert httpx.get(url).json() == {"zarr_format": 2}
        response = httpx.get(f"{emulator.urls[0]}/api/v{version + 1}/user", headers=OWNER)
        assert response.status_code == 404
        assert f"at most {version}." in error_of(response)


def test_unknown_route_and_wrong_method(wk_api: httpx.Client) -> None:
    assert wk_api.get("nope", headers=OWNER).status_code == 404
    response = wk_api.delete("datasets", headers=OWNER)
    assert response.status_code == 404
    assert "messages" in response.json()


def test_user(wk_api: httpx.Client) -> None:
    assert wk_api.get("user").status_code == 401
    assert wk_api.get("user", headers=BAD).status_code == 401
    assert "log in" in error_of(wk_api.get("user"))
    owner = wk_api.get("user", headers=OWNER).json()
    assert owner["organization"] == ORGANIZATION
    assert owner["isAdmin"] and owner["isDatasetManager"]
    assert {t["name"] for t in owner["teams"]} == {ORGANIZATION, "team_alpha", "team_beta"}
    other = wk_api.get("user", headers=OTHER).json()
    assert not other["isAdmin"] and not other["isDatasetManager"]
    assert other["teams"] == [{"id": TEAM_BETA, "name": "team_beta", "isTeamManager": False}]
    # The token is also accepted as a query parameter.
    assert wk_api.get("user", params={"token": OTHER_TOKEN}).json()["id"] == other["id"]


def test_teams_and_datastores(wk_api: httpx.Client, wk: RunningEmulator) -> None:
    assert wk_api.get("teams").status_code == 401
    teams = wk_api.get("teams", headers=OWNER).json()
    assert teams[0] == {
        "id": TEAM_ORG,
        "name": ORGANIZATION,
        "organization": ORGANIZATION,
        "isOrganizationTeam": True,
    }
    assert {t["id"] for t in teams} == {TEAM_ORG, TEAM_ALPHA, TEAM_BETA}
    assert [t["id"] for t in wk_api.get("teams", headers=OTHER).json()] == [TEAM_BETA]
    stores = wk_api.get("datastores").json()
    assert stores == [
        {
            "name": "localhost",
            "url": wk.urls[1],
            "allowsUpload": True,
            "jobsSupportedByAvailableWorkers": [],
            "jobsEnabled": False,
        }
    ]


# ---------------------------------------------------------------------------- datasets


def test_dataset_list_visibility(wk_api: httpx.Client) -> None:
    def names(headers: dict[str, str] | None, **params: Any) -> list[str]:
        response = wk_api.get("datasets", headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [d["name"] for d in response.json()]

    # Newest first.
    assert names(OWNER) == ["cerebellum_beta", "retina_rgb", "l4_demo"]
    assert names(OTHER) == ["cerebellum_beta", "l4_demo"]
    assert names(None) == ["l4_demo"]
    assert names(BAD) == ["l4_demo"]


def test_dataset_list_filters(wk_api: httpx.Client) -> None:
    def ids(**params: Any) -> list[str]:
        return [d["id"] for d in wk_api.get("datasets", headers=OWNER, params=params).json()]

    assert ids(isActive="true", organizationId=ORGANIZATION, searchQuery="RETINA") == [
        DATASET_RETINA
    ]
    assert ids(organizationId="someone_else") == []
    assert ids(isActive="false") == []
    assert ids(folderId=FOLDER_EM) == [DATASET_CEREBELLUM]
    assert ids(folderId=FOLDER_EM, recursive="true") == [DATASET_CEREBELLUM, DATASET_L4]
    assert ids(folderId=FOLDER_ARCHIVE) == []
    assert ids(limit=1) == [DATASET_CEREBELLUM]
    compact = wk_api.get("datasets", headers=OWNER, params={"compact": "true"}).json()
    assert compact[0]["id"] == DATASET_CEREBELLUM
    assert {"id", "name", "tags", "folderId", "colorLayerNames"} <= set(compact[0])
    assert "dataSource" not in compact[0]
    assert compact[1]["colorLayerNames"] == ["color", "rgb"]
    assert wk_api.get("datasets", params={"isActive": "maybe"}).status_code == 400


def test_dataset_shape(wk_api: httpx.Client, wk: RunningEmulator, wk_sample: SampleWorld) -> None:
    d = wk_api.get(f"datasets/{DATASET_RETINA}", headers=OWNER).json()
    spec = wk_sample.dataset(DATASET_RETINA)
    assert d["id"] == DATASET_RETINA and d["name"] == "retina_rgb" == d["directoryName"]
    assert d["owningOrganization"] == ORGANIZATION
    assert d["dataStore"]["url"] == wk.urls[1]
    assert d["isPublic"] is False and d["isActive"] is True and d["isEditable"] is True
    assert d["folderId"] == FOLDER_LM
    assert d["allowedTeams"] == [
        {
            "id": TEAM_ALPHA,
            "name": "team_alpha",
            "organization": ORGANIZATION,
            "isOrganizationTeam": False,
        }
    ]
    assert d["tags"] == ["LM"] and d["description"] is None
    assert d["metadata"] == [{"key": "species", "type": "string", "value": "zebrafish"}]
    assert isinstance(d["created"], int) and d["created"] > 1_600_000_000_000
    source = d["dataSource"]
    assert source["id"] == {"name": "retina_rgb", "team": ORGANIZATION}
    assert source["scale"] == {"factor": [100.0, 100.0, 250.0], "unit": "nanometer"}
    layers = {layer["name"]: layer for layer in source["dataLayers"]}
    assert list(layers) == ["color", "segmentation", "rgb"]
    rgb = layers["rgb"]
    assert (
        rgb["elementClass"] == "uint24" and rgb["numChannels"] == 3 and rgb["category"] == "color"
    )
    assert rgb["boundingBox"] == {"topLeft": [128, 64, 8], "width": 192, "height": 160, "depth": 48}
    assert [m["mag"] for m in rgb["mags"]] == [[1, 1, 1], [2, 2, 1], [4, 4, 2]]
    assert rgb["mags"][1]["path"].endswith("/retina_rgb/rgb/2-2-1")
    assert rgb["mags"][0]["axisOrder"] == {"x": 1, "y": 2, "z": 3, "c": 0}
    assert "largestSegmentId" not in rgb
    seg = layers["segmentation"]
    assert seg["largestSegmentId"] == spec.layer("segmentation").largest_segment_id()
    assert seg["largestSegmentId"] > 0
    # Each layer's view defaults; attachments (DataLayerAttachments: lists always written, an
    # absent single file left out) only where the datastore found files, here segmentation.
    assert rgb["defaultViewConfiguration"] == {"color": [255, 255, 255], "intensityRange": [0, 255]}
    assert seg["defaultViewConfiguration"] == {"alpha": 20}
    assert "attachments" not in rgb
    attachments = seg["attachments"]
    assert set(attachments) == {"meshes", "agglomerates", "segmentIndex", "connectomes"}
    assert attachments["connectomes"] == []
    mesh = attachments["meshes"][0]
    assert set(mesh) == {"name", "path", "dataFormat"} and mesh["dataFormat"] == "hdf5"
    assert mesh["path"].endswith("/retina_rgb/segmentation/meshes/meshfile_4-4-2.hdf5")
    assert attachments["segmentIndex"]["name"] == "segmentIndex"
    listed = wk_api.get("datasets", headers=OWNER).json()
    in_list = next(x for x in listed if x["id"] == DATASET_RETINA)["dataSource"]["dataLayers"]
    assert in_list == source["dataLayers"]


def test_dataset_read_access(wk_api: httpx.Client, wk_sample: SampleWorld) -> None:
    # Public: anyone.
    assert wk_api.get(f"datasets/{DATASET_L4}").json()["isEditable"] is False
    # Private, no token: 404 with the log-in hint; a user without access: 404 without it.
    response = wk_api.get(f"datasets/{DATASET_RETINA}")
    assert response.status_code == 404
    assert error_of(response) == (
        f"Dataset {DATASET_RETINA} does not exist or could not be accessed. You may need to log in."
    )
    response = wk_api.get(f"datasets/{DATASET_RETINA}", headers=OTHER)
    assert response.status_code == 404
    assert error_of(response) == f"Dataset {DATASET_RETINA} does not exist or could not be accessed"
    # Team access, read-only.
    assert wk_api.get(f"datasets/{DATASET_CEREBELLUM}", headers=OTHER).json()["isEditable"] is False
    # The sharing token opens a private dataset to anyone.
    token = wk_sample.sharing_token(DATASET_RETINA)
    response = wk_api.get(f"datasets/{DATASET_RETINA}", params={"sharingToken": token})
    assert response.status_code == 200
    assert (
        wk_api.get(f"datasets/{DATASET_RETINA}", params={"sharingToken": "nope"}).status_code == 404
    )
    assert wk_api.get("datasets/66a0d00000000000000000ff", headers=OWNER).status_code == 404
    assert wk_api.get("datasets/not-an-id", headers=OWNER).status_code == 400


def test_disambiguate_and_sharing_token(wk_api: httpx.Client, wk_sample: SampleWorld) -> None:
    response = wk_api.get(f"datasets/disambiguate/{ORGANIZATION}/l4_demo/toId")
    assert response.json() == {
        "id": DATASET_L4,
        "name": "l4_demo",
        "organization": ORGANIZATION,
        "directoryName": "l4_demo",
    }
    assert wk_api.get(f"datasets/disambiguate/{ORGANIZATION}/retina_rgb/toId").status_code == 404
    assert wk_api.get("datasets/disambiguate/other_org/l4_demo/toId").status_code == 404
    ok = wk_api.get(f"datasets/disambiguate/{ORGANIZATION}/retina_rgb/toId", headers=OWNER)
    assert ok.json()["id"] == DATASET_RETINA

    assert wk_api.get(f"datasets/{DATASET_RETINA}/sharingToken").status_code == 401
    assert wk_api.get(f"datasets/{DATASET_RETINA}/sharingToken", headers=OTHER).status_code == 404
    token = wk_api.get(f"datasets/{DATASET_RETINA}/sharingToken", headers=OWNER).json()
    assert token == {"sharingToken": wk_sample.sharing_token(DATASET_RETINA)}


def test_update_partial_changes_only_given_keys(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        before = api.get(f"datasets/{DATASET_L4}").json()
        response = api.patch(f"datasets/{DATASET_L4}/updatePartial", json={"description": "new"})
        assert response.status_code == 200
        after = response.json()
        assert after["description"] == "new"
        changed = {k for k in before if before[k] != after[k]}
        assert changed == {"description"}
        assert api.get(f"datasets/{DATASET_L4}").json() == after

        after = api.patch(
            f"datasets/{DATASET_L4}/updatePartial",
            json={"tags": ["x", "y"], "isPublic": False, "folderId": FOLDER_ARCHIVE},
        ).json()
        assert (after["tags"], after["isPublic"], after["folderId"]) == (
            ["x", "y"],
            False,
            FOLDER_ARCHIVE,
        )
        assert after["description"] == "new"  # untouched
        metadata = [
            {"key": "a", "type": "string", "value": "b"},
            {"key": "n", "type": "number", "value": 1.5},
            {"key": "l", "type": "string[]", "value": ["p", "q"]},
        ]
        after = api.patch(
            f"datasets/{DATASET_L4}/updatePartial",
            json={"metadata": metadata, "name": "l4_renamed"},
        ).json()
        assert after["metadata"] == metadata and after["name"] == "l4_renamed"
        assert after["directoryName"] == "l4_demo"
        # null clears the description.
        after = api.patch(f"datasets/{DATASET_L4}/updatePartial", json={"description": None}).json()
        assert after["description"] is None and after["tags"] == ["x", "y"]
        # An empty object changes nothing.
        assert api.patch(f"datasets/{DATASET_L4}/updatePartial", json={}).json() == after
        log = [r for r in fresh.requests() if r["method"] == "PATCH"]
        assert log[0]["body"] == {"description": "new"}
        assert log[-2]["body"] == {"description": None}


def test_explore_and_add_remote(fresh: RunningEmulator) -> None:
    """A zarr of the emulator's own datastore is explored and added as a new dataset of the
    caller's organization that serves the same voxels; the answer is its id as a string."""
    layer_uri = f"{fresh.urls[1]}/data/{V}/zarr/{DATASET_L4}/color"
    with api_client(fresh, OWNER) as api, data_client(fresh, OWNER) as data:
        body = {"remoteUri": layer_uri, "datasetName": "added", "folderId": FOLDER_EM}
        response = api.post("datasets/exploreAndAddRemote", json=body)
        assert response.status_code == 200, response.text
        new_id = response.json()
        assert isinstance(new_id, str)
        added = api.get(f"datasets/{new_id}").json()
        assert (added["name"], added["folderId"]) == ("added", FOLDER_EM)
        assert [layer["name"] for layer in added["dataSource"]["dataLayers"]] == ["color"]
        assert new_id in {d["id"] for d in api.get("datasets").json()}
        chunk = "color/1/0.2.1.0"
        assert data.get(f"zarr/{new_id}/{chunk}").content == (
            data.get(f"zarr/{DATASET_L4}/{chunk}").content
        )
        # A dataset's URI brings every layer; without a folder it goes to the root folder.
        whole = api.post(
            "datasets/exploreAndAddRemote",
            json={"remoteUri": layer_uri.rsplit("/", 1)[0], "datasetName": "whole"},
        ).json()
        again = api.get(f"datasets/{whole}").json()
        source = api.get(f"datasets/{DATASET_L4}").json()
        assert again["folderId"] == FOLDER_ROOT
        assert [x["name"] for x in again["dataSource"]["dataLayers"]] == [
            x["name"] for x in source["dataSource"]["dataLayers"]
        ]


def test_explore_and_add_remote_refusals(fresh: RunningEmulator) -> None:
    """An unreachable or unreadable URI is an exploration that found nothing: the real
    server's 400 with Msg.Dataset.Explore.failed alone (DatasetController.
    exploreAndAddRemoteDataset, ``exploreResponse.dataSource.toFox ?~>``: the datastore's
    report stays on the server); a URI without a scheme is refused before exploring
    (WKExploreRemoteLayerService.storeCredentials); a malformed body is Play's 400; nothing is
    added."""
    with api_client(fresh, OWNER) as api:
        before = len(api.get("datasets").json())
        for uri in (
            "https://data.example.org/missing.zarr",
            f"{fresh.urls[1]}/data/{V}/zarr/{DATASET_RETINA}/color",  # private, no token
            f"{fresh.urls[1]}/data/{V}/zarr/{DATASET_L4}/nope",
        ):
            response = api.post(
                "datasets/exploreAndAddRemote", json={"remoteUri": uri, "datasetName": "xyz"}
            )
            assert response.json() == {"messages": [{"error": "Could not explore remote dataset."}]}
            assert response.status_code == 400
        no_scheme = api.post(
            "datasets/exploreAndAddRemote", json={"remoteUri": "a.zarr", "datasetName": "xyz"}
        )
        assert refusal_of(no_scheme) == (400, "Received invalid URI: a.zarr", [])
        response = api.post("datasets/exploreAndAddRemote", json={"datasetName": "x"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "obj.remoteUri"
        assert len(api.get("datasets").json()) == before
    response = httpx.post(
        f"{fresh.urls[0]}/api/{V}/datasets/exploreAndAddRemote",
        json={"remoteUri": "https://x.org/a", "datasetName": "x"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("name", "error"),
    [
        # DatasetService.assertValidDatasetName, rule by rule (Msg.Dataset.Name.*).
        (
            "my data",
            "Dataset name is invalid. Please use only letters, digits, dots, underscores, hyphens.",
        ),  # invalidCharacters
        (
            "bad/name",
            "Dataset name is invalid. Please use only letters, digits, dots, underscores, hyphens.",
        ),  # invalidCharacters
        (
            ".hidden",
            "Dataset name is invalid. Please use a name that does not start with a dot.",
        ),  # invalidStartsWithDot
        ("ab", "Dataset name is invalid. Please use at least three characters."),
        ("", "Dataset name is invalid. Please use at least three characters."),
    ],
)
def test_explore_and_add_remote_checks_the_dataset_name(
    fresh_module: RunningEmulator, name: str, error: str
) -> None:
    uri = f"{fresh_module.urls[1]}/data/{V}/zarr/{DATASET_L4}/color"
    with api_client(fresh_module, OWNER) as api:
        before = len(api.get("datasets").json())
        response = api.post(
            "datasets/exploreAndAddRemote", json={"remoteUri": uri, "datasetName": name}
        )
        assert refusal_of(response) == (400, error, [])
        assert len(api.get("datasets").json()) == before


def test_explore_and_add_remote_folders(fresh: RunningEmulator) -> None:
    """``folderPath`` is FolderService.getOrCreateFromPathLiteral's: ``/<root>/…``, the
    missing folders made; its refusals are Msg.Dataset.Explore.autoAddGetFolderFailed with
    Msg.Folder.pathMustStartWithSlash or .pathMustStartAtOrganizationRootFolder chained. A
    folder the caller cannot write to (or none: an unknown ``folderId``) fails in
    DatasetService.createAndSetUpDataset: Msg.Dataset.Explore.autoAddFailed on
    Msg.Folder.noWriteAccess on SQLDAO.assertUpdateAccess's "No update access."."""
    uri = f"{fresh.urls[1]}/data/{V}/zarr/{DATASET_L4}/color"
    folder_failed = "Could not get or create folder during dataset exploration."
    add_failed = "Could not automatically import the explored dataset."
    no_write = ["No write access in this folder.", "No update access."]

    def explore(api: httpx.Client, **extra: Any) -> httpx.Response:
        body = {"remoteUri": uri, "datasetName": "added", **extra}
        return api.post("datasets/exploreAndAddRemote", json=body)

    with api_client(fresh, OWNER) as api, api_client(fresh, OTHER) as other:
        folders_before = api.get("folders/tree").json()
        assert refusal_of(explore(api, folderPath="EM/Cortex")) == (
            400,
            folder_failed,
            ["Folder path must start with a slash."],
        )
        assert refusal_of(explore(api, folderPath="/EM/Cortex")) == (
            400,
            folder_failed,
            ["Folder path must start at the organization’s root folder."],
        )
        unknown = "66a0f00000000000000000ff"
        assert refusal_of(explore(api, folderId=unknown)) == (400, add_failed, no_write)
        # Oscar may read l4_demo but write in no folder (the root folder included).
        assert refusal_of(explore(other)) == (400, add_failed, no_write)
        assert api.get("folders/tree").json() == folders_before
        # An existing path is its folder; a new one is made below the deepest existing one.
        existing = explore(api, folderPath=f"/{ORGANIZATION}/EM/Cortex/")
        assert existing.status_code == 200, existing.text
        assert api.get(f"datasets/{existing.json()}").json()["folderId"] == FOLDER_CORTEX
        made = explore(api, datasetName="deeper", folderPath=f"/{ORGANIZATION}/EM/New/Deeper")
        assert made.status_code == 200, made.text
        tree = {f["id"]: f for f in api.get("folders/tree").json()}
        deeper = tree[api.get(f"datasets/{made.json()}").json()["folderId"]]
        new = tree[deeper["parent"]]
        assert (deeper["name"], new["name"], new["parent"]) == ("Deeper", "New", FOLDER_EM)


def test_error_chain_text_is_the_servers_format() -> None:
    """ExtendedController.formatChain: "[Server Time <Instant>] " and " <~ <cause>" each; the
    server's Instant prints as Java's ISO_INSTANT (milliseconds only when not zero)."""
    at = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert chain_text(["a", "b"], at) == "[Server Time 2025-01-02T03:04:05.678Z]  <~ a <~ b"
    whole = at.replace(microsecond=0)
    assert chain_text(["a"], whole) == "[Server Time 2025-01-02T03:04:05Z]  <~ a"


@pytest.mark.parametrize(
    "body",
    [
        {"tags": "not-a-list"},
        {"tags": [1, 2]},
        {"isPublic": "yes"},
        {"description": 5},
        {"name": None},
        {"metadata": [{"key": "a", "type": "string", "value": 1}]},
        {"metadata": [{"key": "a", "type": "bogus", "value": "x"}]},
        {"metadata": [{"key": "a", "type": "string", "value": "x"}] * 2},
        {"folderId": "66a0f00000000000000000ff"},
        [1, 2],
    ],
)
def test_update_partial_validation(fresh_module: RunningEmulator, body: Any) -> None:
    with api_client(fresh_module, OWNER) as api:
        before = api.get(f"datasets/{DATASET_CEREBELLUM}").json()
        response = api.patch(f"datasets/{DATASET_CEREBELLUM}/updatePartial", json=body)
        assert response.status_code == 400, response.text
        assert error_of(response)
        assert api.get(f"datasets/{DATASET_CEREBELLUM}").json() == before


@pytest.fixture(scope="module")
def fresh_module() -> Iterator[RunningEmulator]:
    with start_emulator("webknossos") as emulator:
        yield emulator


def test_update_partial_auth(fresh_module: RunningEmulator) -> None:
    with api_client(fresh_module) as api:
        url = f"datasets/{DATASET_CEREBELLUM}/updatePartial"
        assert api.patch(url, json={"tags": []}).status_code == 401
        assert api.patch(url, json={"tags": []}, headers=OTHER).status_code == 403
        assert error_of(api.patch(url, json={"tags": []}, headers=OTHER)) == (
            "You are not authorized to view or edit this resource"
        )
        url = f"datasets/{DATASET_RETINA}/updatePartial"
        assert api.patch(url, json={"tags": []}, headers=OTHER).status_code == 404


def test_dataset_teams(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        url = f"datasets/{DATASET_RETINA}/teams"
        assert api.patch(url, json=[TEAM_BETA, TEAM_ALPHA]).json() == [TEAM_BETA, TEAM_ALPHA]
        got = api.get(f"datasets/{DATASET_RETINA}").json()["allowedTeams"]
        assert [t["name"] for t in got] == ["team_beta", "team_alpha"]
        # Now Oscar (team_beta) can read it.
        assert api.get(f"datasets/{DATASET_RETINA}", headers=OTHER).status_code == 200
        # Unknown teams are ignored, like the real server.
        assert api.patch(url, json=["66a0c00000000000000000ff"]).json() == []
        assert api.get(f"datasets/{DATASET_RETINA}", headers=OTHER).status_code == 404
        assert api.patch(url, json="nope").status_code == 400
        assert api.patch(url, json=["bad-id"]).status_code == 400
        assert (
            api.patch(f"datasets/{DATASET_CEREBELLUM}/teams", json=[], headers=OTHER).status_code
            == 403
        )
        assert httpx.patch(f"{fresh.urls[0]}/api/{V}/{url}", json=[]).status_code == 401


# ---------------------------------------------------------------------------- folders


def test_folders_read(wk_api: httpx.Client) -> None:
    assert wk_api.get("folders/root").status_code == 401
    root = wk_api.get("folders/root", headers=OWNER).json()
    assert root == {
        "id": FOLDER_ROOT,
        "name": ORGANIZATION,
        "metadata": [],
        "allowedTeams": [],
        "allowedTeamsCumulative": [],
        "isEditable": True,
    }
    tree = wk_api.get("folders/tree", headers=OWNER).json()
    by_id = {f["id"]: f for f in tree}
    assert tree[-1]["id"] == FOLDER_ROOT and tree[-1]["parent"] is None
    assert by_id[FOLDER_CORTEX]["parent"] == FOLDER_EM
    assert by_id[FOLDER_EM]["parent"] == FOLDER_ROOT
    assert by_id[FOLDER_EM]["metadata"] == [{"key": "modality", "type": "string", "value": "EM"}]
    assert set(by_id) == {FOLDER_ROOT, FOLDER_EM, FOLDER_CORTEX, FOLDER_LM, FOLDER_ARCHIVE}
    assert set(tree[0]) == {"id", "name", "parent", "metadata", "isEditable"}
    em = wk_api.get(f"folders/{FOLDER_EM}", headers=OWNER).json()
    assert em["name"] == "EM" and em["isEditable"] is True
    # Oscar sees only the root (no folder is shared with team_beta).
    assert [f["id"] for f in wk_api.get("folders/tree", headers=OTHER).json()] == [FOLDER_ROOT]
    assert wk_api.get(f"folders/{FOLDER_EM}", headers=OTHER).status_code == 404
    assert wk_api.get("folders/66a0f00000000000000000ff", headers=OWNER).status_code == 404


def test_folders_write(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        made = api.post("folders/create", params={"parentId": FOLDER_LM, "name": "Retina"}).json()
        assert set(made) == {
            "id",
            "name",
            "metadata",
            "allowedTeams",
            "allowedTeamsCumulative",
            "isEditable",
        }
        fid = made["id"]
        assert api.get("folders/tree").json()[0]["id"] in {fid, FOLDER_ARCHIVE}
        updated = api.put(
            f"folders/{fid}",
            json={
                "name": "Retina 2",
                "allowedTeams": [TEAM_BETA],
                "metadata": [{"key": "k", "type": "number", "value": 3}],
            },
        ).json()
        assert updated["name"] == "Retina 2"
        assert [t["id"] for t in updated["allowedTeams"]] == [TEAM_BETA]
        assert updated["metadata"] == [{"key": "k", "type": "number", "value": 3}]
        sub = api.post("folders/create", params={"parentId": fid, "name": "sub"}).json()
        assert [t["id"] for t in sub["allowedTeamsCumulative"]] == [TEAM_BETA]
        # Oscar (team_beta) now sees both.
        seen = {f["id"] for f in api.get("folders/tree", headers=OTHER).json()}
        assert {fid, sub["id"]} <= seen
        moved = api.put(f"folders/{sub['id']}/move", params={"newParentId": FOLDER_ARCHIVE})
        assert moved.status_code == 200 and moved.json()["id"] == sub["id"]
        tree = {f["id"]: f for f in api.get("folders/tree").json()}
        assert tree[sub["id"]]["parent"] == FOLDER_ARCHIVE
        assert (
            api.put(f"folders/{FOLDER_EM}/move", params={"newParentId": FOLDER_CORTEX}).status_code
            == 400
        )
        assert (
            api.put(f"folders/{FOLDER_ROOT}/move", params={"newParentId": FOLDER_EM}).status_code
            == 400
        )
        # Deleting: not while it has content; the root never.
        assert api.delete(f"folders/{FOLDER_ARCHIVE}").status_code == 400
        assert api.delete(f"folders/{FOLDER_ROOT}").status_code == 400
        response = api.delete(f"folders/{sub['id']}")
        assert response.status_code == 200 and response.content == b""
        assert api.get(f"folders/{sub['id']}").status_code == 404
        assert (
            api.post("folders/create", params={"parentId": FOLDER_LM, "name": ""}).status_code
            == 400
        )
        assert (
            api.post("folders/create", params={"parentId": FOLDER_LM, "name": "a/b"}).status_code
            == 400
        )
        assert api.put(f"folders/{fid}", json={"name": "x"}).status_code == 400
        assert (
            api.put(
                f"folders/{fid}", json={"name": "x", "allowedTeams": ["66a0c00000000000000000ff"]}
            ).status_code
            == 400
        )
        assert (
            api.post(
                "folders/create", params={"parentId": FOLDER_ROOT, "name": "n"}, headers=OTHER
            ).status_code
            == 403
        )
        writes = [r for r in fresh.requests() if r["method"] == "PUT" and r["path"].endswith(fid)]
        assert writes[0]["body"]["name"] == "Retina 2"


# ---------------------------------------------------------------------------- task types, projects


def test_task_types(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        listed = api.get("taskTypes").json()
        assert [t["id"] for t in listed] == [TASK_TYPE_SKELETON, TASK_TYPE_VOLUME]
        assert listed[0]["tracingType"] == "skeleton" and listed[1]["tracingType"] == "volume"
        assert set(listed[0]) == {
            "id",
            "summary",
            "description",
            "teamId",
            "teamName",
            "settings",
            "recommendedConfiguration",
            "tracingType",
        }
        assert [t["id"] for t in api.get("taskTypes", headers=OTHER).json()] == [TASK_TYPE_VOLUME]
        body = {
            "summary": "new type",
            "description": "d",
            "teamId": TEAM_ALPHA,
            "teamName": "team_alpha",
            "tracingType": "volume",
            "settings": {"mergerMode": True, "zoom": 0.8, "magRestrictions": {"min": 1, "max": 1}},
        }
        created = api.post("taskTypes", json=body).json()
        assert created["summary"] == "new type" and created["teamName"] == "team_alpha"
        assert created["settings"]["mergerMode"] is True and "zoom" not in created["settings"]
        assert api.get(f"taskTypes/{created['id']}").json() == created
        assert api.post("taskTypes", json=body).status_code == 400  # duplicate summary
        assert (
            api.post(
                "taskTypes", json={**body, "summary": "x", "teamId": TEAM_ALPHA}, headers=OTHER
            ).status_code
            == 403
        )
        assert api.post("taskTypes", json={"summary": "x"}).status_code == 400
        deleted = api.delete(f"taskTypes/{created['id']}").json()
        assert deleted == {"messages": [{"success": "Task type “new type” successfully deleted"}]}
        assert api.get(f"taskTypes/{created['id']}").status_code == 404


def test_projects(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        demo = api.get(f"projects/{PROJECT_DEMO}").json()
        assert demo["name"] == "demo_project" and demo["teamName"] == "team_alpha"
        assert demo["owner"]["firstName"] == "Olivia"
        assert api.get("projects/byName/demo_project").json() == demo
        missing = api.get("projects/byName/nope")
        assert missing.status_code == 404 and error_of(missing) == "Project could not be found"
        assert [p["id"] for p in api.get("projects", headers=OTHER).json()] == [PROJECT_BETA]
        body = {
            "name": "p22",
            "team": TEAM_ALPHA,
            "priority": 1,
            "paused": False,
            "isBlacklistedFromReport": False,
            "expectedTime": 1234,
            "owner": USER_OWNER,
        }
        made = api.post("projects", json=body).json()
        assert (made["name"], made["team"], made["priority"], made["expectedTime"]) == (
            "p22",
            TEAM_ALPHA,
            1,
            1234,
        )
        assert made["owner"]["id"] == USER_OWNER
        assert api.post("projects", json=body).status_code == 400  # name taken
        assert api.post("projects", json={**body, "name": "p33"}, headers=OTHER).status_code == 403
        assert api.delete(f"projects/{made['id']}").json() == {
            "messages": [{"success": "Project was removed successfully"}]
        }
        assert api.get("projects/byName/p22").status_code == 404


def project_parameters(project: dict[str, Any]) -> dict[str, Any]:
    """What a client sends back for a project it read (ProjectParameters)."""
    return {
        "name": project["name"],
        "team": project["team"],
        "priority": project["priority"],
        "paused": project["paused"],
        "expectedTime": project["expectedTime"],
        "owner": project["owner"]["id"],
        "isBlacklistedFromReport": project["isBlacklistedFromReport"],
    }


def test_project_parameters_are_checked_like_the_real_server(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        demo = api.get(f"projects/{PROJECT_DEMO}").json()
        body = project_parameters(demo)
        del body["owner"]
        for method in ("POST", "PUT"):
            url = "projects" if method == "POST" else f"projects/{PROJECT_DEMO}"
            refused = api.request(method, url, json={**body, "name": "new_one"})
            # Play's answer to a body its JSON reads refuse: field errors, then the message.
            assert refused.status_code == 400
            assert refused.json() == {
                "errors": [{"field": "obj.owner", "error": "Missing path"}],
                "messages": [{"error": "Invalid Json format"}],
            }
        full = {**body, "owner": USER_OWNER}
        for name, text in (
            ("ab", "Minimum length is 3"),
            ("a b", "Name contains invalid characters"),
        ):
            refused = api.post("projects", json={**full, "name": name})
            assert refused.json()["errors"] == [{"field": "obj.name", "error": text}]
        no_flag = {k: v for k, v in full.items() if k != "isBlacklistedFromReport"}
        refused = api.put(f"projects/{PROJECT_DEMO}", json=no_flag)
        assert refused.json()["errors"] == [
            {"field": "obj.isBlacklistedFromReport", "error": "Missing path"}
        ]
        assert api.get(f"projects/{PROJECT_DEMO}").json() == demo


def test_project_update_keeps_name_and_paused(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        demo = api.get(f"projects/{PROJECT_DEMO}").json()
        body = {
            **project_parameters(demo),
            "name": "renamed",
            "paused": True,
            "priority": 7,
            "expectedTime": 99,
            "owner": USER_OTHER,
        }
        updated = api.put(f"projects/{PROJECT_DEMO}", json=body).json()
        assert (updated["priority"], updated["expectedTime"]) == (7, 99)
        assert updated["owner"]["id"] == USER_OTHER
        assert (updated["name"], updated["paused"]) == ("demo_project", False)
        assert api.get(f"projects/{PROJECT_DEMO}").json() == updated


def test_project_pause_and_resume(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        paused = api.patch(f"projects/{PROJECT_DEMO}/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True
        assert api.get(f"projects/{PROJECT_DEMO}").json()["paused"] is True
        resumed = api.patch(f"projects/{PROJECT_DEMO}/resume").json()
        assert resumed["paused"] is False and resumed["id"] == PROJECT_DEMO
        # A member who does not manage the project's team may not; other teams' projects are
        # not found; other methods are no route.
        assert api.patch(f"projects/{PROJECT_BETA}/pause", headers=OTHER).status_code == 403
        assert api.patch(f"projects/{PROJECT_DEMO}/pause", headers=OTHER).status_code == 404
        assert api.put(f"projects/{PROJECT_DEMO}/pause").status_code == 404
        assert (
            httpx.patch(f"{fresh.urls[0]}/api/{V}/projects/{PROJECT_DEMO}/pause").status_code == 401
        )
        assert api.get(f"projects/{PROJECT_BETA}").json()["paused"] is False


def test_project_tasks_total_count(wk_api: httpx.Client) -> None:
    url = f"projects/{PROJECT_DEMO}/tasks"
    response = wk_api.get(
        url, headers=OWNER, params={"limit": 2, "pageNumber": 0, "includeTotalCount": "true"}
    )
    assert response.headers["X-Total-Count"] == "3"
    assert [t["id"] for t in response.json()] == list(TASK_IDS[:2])
    page2 = wk_api.get(
        url, headers=OWNER, params={"limit": 2, "pageNumber": 1, "includeTotalCount": "true"}
    )
    assert [t["id"] for t in page2.json()] == [TASK_IDS[2]]
    assert "X-Total-Count" not in wk_api.get(url, headers=OWNER).headers
    assert wk_api.get(url, headers=OTHER).status_code == 404


# ---------------------------------------------------------------------------- tasks


def test_task_shapes_and_annotations(wk_api: httpx.Client) -> None:
    task = wk_api.get(f"tasks/{TASK_IDS[0]}", headers=OWNER).json()
    assert task["projectName"] == "demo_project" and task["team"] == "team_alpha"
    assert task["datasetId"] == DATASET_L4 and task["datasetName"] == "l4_demo"
    assert task["status"] == {"pending": 1, "active": 1, "finished": 1}
    assert task["type"]["id"] == TASK_TYPE_SKELETON
    assert task["boundingBox"] is None and task["editPosition"] == [224, 160, 64]
    assert task["neededExperience"] == {"domain": "tracing", "value": 3}
    with_box = wk_api.get(f"tasks/{TASK_IDS[2]}", headers=OWNER).json()
    assert with_box["boundingBox"] == {
        "topLeft": [160, 96, 16],
        "width": 64,
        "height": 64,
        "depth": 16,
    }
    annotations = wk_api.get(f"tasks/{TASK_IDS[0]}/annotations", headers=OWNER).json()
    assert [a["state"] for a in annotations] == ["Active", "Finished"]
    assert annotations[0]["typ"] == "Task" and annotations[0]["owner"]["firstName"] == "Oscar"
    assert annotations[0]["annotationLayers"][0]["typ"] == "Skeleton"
    assert wk_api.get(f"tasks/{TASK_IDS[1]}/annotations", headers=OWNER).json() == []
    # Oscar reads beta tasks only.
    assert wk_api.get(f"tasks/{TASK_IDS[3]}", headers=OTHER).status_code == 200
    missing = wk_api.get(f"tasks/{TASK_IDS[0]}", headers=OTHER)
    assert missing.status_code == 404 and error_of(missing) == "Task could not be found"
    assert wk_api.get(f"tasks/{TASK_IDS[0]}").status_code == 401


def test_task_list_filters(wk_api: httpx.Client) -> None:
    def ids(body: Any, headers: dict[str, str] = OWNER) -> list[str]:
        response = wk_api.post("tasks/list", json=body, headers=headers)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()]

    assert ids({}) == list(TASK_IDS)
    assert ids({"project": PROJECT_BETA}) == [TASK_IDS[3]]
    assert ids({"taskType": TASK_TYPE_SKELETON}) == list(TASK_IDS[:3])
    assert ids({"ids": [TASK_IDS[1], TASK_IDS[3]]}) == [TASK_IDS[1], TASK_IDS[3]]
    oscar = wk_api.get("user", headers=OTHER).json()["id"]
    assert ids({"user": oscar}) == [TASK_IDS[0], TASK_IDS[3]]
    assert ids({}, headers=OTHER) == [TASK_IDS[3]]
    assert wk_api.post("tasks/list", json={"ids": "x"}, headers=OWNER).status_code == 400


def task_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "taskTypeId": TASK_TYPE_SKELETON,
        "neededExperience": {"domain": "tracing", "value": 1},
        "pendingInstances": 2,
        "projectName": "demo_project",
        "scriptId": None,
        "boundingBox": {"topLeft": [100, 100, 20], "width": 32, "height": 32, "depth": 8},
        "datasetId": DATASET_L4,
        "editPosition": [110, 110, 24],
        "editRotation": [0, 0, 0],
    }
    params.update(overrides)
    return params


def test_task_batch_create_partial_failure(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        batch = [
            task_params(),
            task_params(projectName="no_such_project"),
            task_params(taskTypeId="66a0a00000000000000000ff"),
            task_params(pendingInstances=0),
            {"datasetId": DATASET_L4},
            task_params(boundingBox=None),
        ]
        response = api.post("tasks", json=batch)
        assert response.status_code == 200
        result = response.json()
        assert result["warnings"] == []
        statuses = [item["status"] for item in result["tasks"]]
        assert statuses == [200, 400, 400, 400, 400, 200]
        assert result["tasks"][1] == {"status": 400, "error": "Project could not be found"}
        created = [item["success"] for item in result["tasks"] if item["status"] == 200]
        assert created[0]["status"] == {"pending": 2, "active": 0, "finished": 0}
        assert created[0]["boundingBox"] == {
            "topLeft": [100, 100, 20],
            "width": 32,
            "height": 32,
            "depth": 8,
        }
        assert created[1]["boundingBox"] is None
        for task in created:
            assert api.get(f"tasks/{task['id']}").json() == task
        listed = api.post("tasks/list", json={"project": PROJECT_DEMO}).json()
        assert len(listed) == 5
        # All tasks of one request must be on one dataset.
        mixed = [task_params(), task_params(datasetId=DATASET_RETINA)]
        assert api.post("tasks", json=mixed).status_code == 400
        assert api.post("tasks", json=task_params()).status_code == 400  # not a list
        assert api.post("tasks", json=[task_params()] * 1001).status_code == 400
        # Oscar is no manager of team_alpha: per-item refusal.
        refused = api.post("tasks", json=[task_params()], headers=OTHER).json()
        assert refused["tasks"][0] == {"status": 400, "error": "Task type could not be found"}
        beta = task_params(
            taskTypeId=TASK_TYPE_VOLUME, projectName="beta_project", datasetId=DATASET_CEREBELLUM
        )
        refused = api.post("tasks", json=[beta], headers=OTHER).json()
        assert refused["tasks"][0]["status"] == 403
        assert httpx.post(f"{fresh.urls[0]}/api/{V}/tasks", json=[task_params()]).status_code == 401
        log = [
            r for r in fresh.requests() if r["method"] == "POST" and r["path"].endswith("/tasks")
        ]
        assert log[0]["body"] == batch


def test_task_update_and_delete(fresh: RunningEmulator) -> None:
    with api_client(fresh, OWNER) as api:
        task = api.get(f"tasks/{TASK_IDS[1]}").json()
        body = task_params(
            pendingInstances=5,
            neededExperience={"domain": "tracing", "value": 4},
            boundingBox=None,
            editPosition=task["editPosition"],
        )
        updated = api.put(f"tasks/{TASK_IDS[1]}", json=body).json()
        assert updated["messages"] == [{"success": "Task successfully edited"}]
        assert updated["status"]["pending"] == 5 and updated["neededExperience"]["value"] == 4
        assert api.get(f"tasks/{TASK_IDS[1]}").json()["status"]["pending"] == 5
        assert api.put(f"tasks/{TASK_IDS[1]}", json=[body]).status_code == 400
        assert api.delete(f"tasks/{TASK_IDS[1]}", headers=OTHER).status_code == 404
        assert api.delete(f"tasks/{TASK_IDS[3]}", headers=OTHER).status_code == 403
        assert api.delete(f"tasks/{TASK_IDS[1]}").json() == {
            "messages": [{"success": "Task was removed"}]
        }
        gone = api.get(f"tasks/{TASK_IDS[1]}")
        assert gone.status_code == 404 and error_of(gone) == "Task could not be found"


# ------------------------------------------------------------------ datastore: zarr streaming


def test_zarr_properties(wk_data: httpx.Client, wk_sample: SampleWorld) -> None:
    url = f"zarr/{DATASET_RETINA}/datasource-properties.json"
    response = wk_data.get(url, headers=OWNER)
    assert response.status_code == 200
    props = response.json()
    assert props["id"] == {"name": "retina_rgb", "team": ORGANIZATION}
    layers = {layer["name"]: layer for layer in props["dataLayers"]}
    assert all(layer["dataFormat"] == "zarr" for layer in layers.values())
    assert [m["path"] for m in layers["rgb"]["mags"]] == ["./rgb/1", "./rgb/2-2-1", "./rgb/4-4-2"]
    assert layers["rgb"]["mags"][0]["axisOrder"] == {"x": 1, "y": 2, "z": 3, "c": 0}
    assert layers["rgb"]["resolutions"] == [[1, 1, 1], [2, 2, 1], [4, 4, 2]]
    assert layers["rgb"]["numChannels"] == 3
    # The layer's view defaults are kept; attachments are not (convertLayerToZarrLayer).
    assert layers["segmentation"]["defaultViewConfiguration"] == {"alpha": 20}
    assert "attachments" not in layers["segmentation"]
    assert "largestSegmentId" in layers["segmentation"] and "largestSegmentId" not in layers["rgb"]
    assert props["scale"] == {"factor": [100.0, 100.0, 250.0], "unit": "nanometer"}
    # HEAD answers the same Content-Length without a body; Range is ignored.
    head = wk_data.head(url, headers=OWNER)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(response.content)
    ranged = wk_data.get(url, headers={**OWNER, "Range": "bytes=0-9"})
    assert ranged.status_code == 200 and ranged.content == response.content


def test_zarr_groups_and_attrs(wk_data: httpx.Client) -> None:
    assert wk_data.get(f"zarr/{DATASET_L4}/.zgroup").json() == {"zarr_format": 2}
    assert wk_data.get(f"zarr/{DATASET_L4}/color/.zgroup").json() == {"zarr_format": 2}
    attrs = wk_data.get(f"zarr/{DATASET_L4}/color/.zattrs").json()
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4" and ms["name"] == "color"
    assert [a["name"] for a in ms["axes"]] == ["c", "x", "y", "z"]
    assert ms["axes"][1] == {"name": "x", "type": "space", "unit": "nanometer"}
    assert [d["path"] for d in ms["datasets"]] == ["1", "2-2-1", "4-4-2"]
    scale = ms["datasets"][2]["coordinateTransformations"][0]
    assert scale == {"type": "scale", "scale": [1.0, 11.24 * 4, 11.24 * 4, 28.0 * 2]}
    listing = wk_data.get(f"zarr/{DATASET_L4}/")
    assert listing.status_code == 200 and "datasource-properties.json" in listing.text
    assert wk_data.get(f"zarr/{DATASET_L4}/nope/.zattrs").status_code == 404


@pytest.mark.parametrize(
    ("dataset", "layer", "mag", "dtype", "shape"),
    [
        (DATASET_L4, "color", "1", "|u1", [1, 384, 288, 112]),
        (DATASET_L4, "segmentation", "2-2-1", "<u4", [1, 192, 144, 112]),
        (DATASET_L4, "color", "4-4-2", "|u1", [1, 96, 72, 56]),
        (DATASET_RETINA, "rgb", "2-2-1", "|u1", [3, 160, 112, 56]),
    ],
)
def test_zarray(
    wk_data: httpx.Client, dataset: str, layer: str, mag: str, dtype: str, shape: list[int]
) -> None:
    zarray = wk_data.get(f"zarr/{dataset}/{layer}/{mag}/.zarray", headers=OWNER).json()
    assert zarray == {
        "dtype": dtype,
        "fill_value": 0,
        "zarr_format": 2,
        "order": "F",
        "chunks": [shape[0], 32, 32, 32],
        "compressor": None,
        "filters": None,
        "shape": shape,
        "dimension_separator": ".",
    }


@pytest.mark.parametrize(
    ("dataset", "layer", "mag", "chunk"),
    [
        (DATASET_L4, "color", (1, 1, 1), (3, 2, 1)),
        (DATASET_L4, "color", (2, 2, 1), (1, 0, 0)),  # partly outside the bounding box
        (DATASET_L4, "segmentation", (1, 1, 1), (5, 4, 2)),
        (DATASET_L4, "segmentation", (4, 4, 2), (1, 1, 1)),
        (DATASET_RETINA, "rgb", (1, 1, 1), (5, 3, 0)),
        (DATASET_RETINA, "rgb", (4, 4, 2), (1, 0, 0)),
        (DATASET_CEREBELLUM, "color", (2, 2, 1), (0, 0, 1)),
    ],
)
def test_zarr_chunk_bytes(
    wk_data: httpx.Client,
    wk_sample: SampleWorld,
    dataset: str,
    layer: str,
    mag: tuple[int, int, int],
    chunk: tuple[int, int, int],
) -> None:
    spec = wk_sample.layer(dataset, layer)
    key = f"0.{chunk[0]}.{chunk[1]}.{chunk[2]}"
    response = wk_data.get(f"zarr/{dataset}/{layer}/{volume.mag_literal(mag)}/{key}", headers=OWNER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    channels = spec.num_channels
    expected = wk_sample.chunk(dataset, layer, mag, *chunk)
    assert len(response.content) == channels * 32**3 * expected.dtype.itemsize
    got = np.frombuffer(response.content, dtype=expected.dtype.newbyteorder("<")).reshape(
        (channels, 32, 32, 32), order="F"
    )
    np.testing.assert_array_equal(got, expected)
    assert got.any()
    # Range is ignored: the whole chunk, 200.
    again = wk_data.get(
        f"zarr/{dataset}/{layer}/{volume.mag_literal(mag)}/{key}",
        headers={**OWNER, "Range": "bytes=0-99"},
    )
    assert again.status_code == 200 and again.content == response.content


def test_zarr_missing_chunks(wk_data: httpx.Client) -> None:
    base = f"zarr/{DATASET_L4}/color"
    # Entirely outside the bounding box (which starts at 64, 32, 16 in mag 1).
    # Every failure is a 404 (ZarrStreamingController); the message tells which.
    response = wk_data.get(f"{base}/1/0.0.0.0")
    assert response.status_code == 404
    assert error_of(response) == "Could not find the requested chunk"
    assert wk_data.get(f"{base}/1/0.99.0.0").status_code == 404
    assert wk_data.get(f"{base}/1/1.2.1.1").status_code == 404  # no channel 1
    assert wk_data.get(f"{base}/1/0.2.1").status_code == 404
    wrong_mag = wk_data.get(f"{base}/8-8-8/0.2.1.1")
    assert wrong_mag.status_code == 404
    assert error_of(wrong_mag) == "DataLayer “color” does not have mag “8-8-8”"
    assert wk_data.get(f"{base}/8-8-8/.zarray").status_code == 404
    assert wk_data.get(f"zarr/{DATASET_L4}/nope/1/0.2.1.1").status_code == 404
    assert wk_data.get("zarr/66a0d00000000000000000ff/color/1/0.2.1.1").status_code == 404
    assert wk_data.head(f"{base}/1/0.2.1.1").status_code == 200


def test_datastore_access(wk_data: httpx.Client, wk_sample: SampleWorld) -> None:
    url = f"zarr/{DATASET_RETINA}/color/1/.zarray"
    denied = wk_data.get(url)
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("text/plain")
    assert "Access forbidden" in denied.text
    assert wk_data.get(url, headers=OTHER).status_code == 403
    assert wk_data.get(url, headers=OWNER).status_code == 200
    assert wk_data.get(url, params={"token": OWNER_TOKEN}).status_code == 200
    token = wk_sample.sharing_token(DATASET_RETINA)
    assert wk_data.get(url, headers={"X-Auth-Token": token}).status_code == 200
    assert wk_data.get(url, params={"token": token}).status_code == 200
    assert (
        wk_data.get(f"zarr/{DATASET_CEREBELLUM}/color/1/.zarray", headers=OTHER).status_code == 200
    )
    assert wk_data.get("zarr/66a0d00000000000000000ff/.zgroup", headers=OWNER).status_code == 404


def test_reload_in_datastore(wk_data: httpx.Client, wk_sample: SampleWorld) -> None:
    route = f"triggers/reload/{ORGANIZATION}/{DATASET_RETINA}"
    reloaded = wk_data.post(route, headers=OWNER)
    assert reloaded.status_code == 200
    source = reloaded.json()  # the data source read again, as the main server stores it
    assert source["id"] == {"name": "retina_rgb", "team": ORGANIZATION}
    assert [layer["name"] for layer in source["dataLayers"]] == ["color", "segmentation", "rgb"]
    assert wk_data.post(route, params={"token": OWNER_TOKEN}).status_code == 200
    # The administration check's two plain-text refusals: no user behind the token, and a
    # user who is neither admin, team manager nor dataset manager. A sharing token is no user.
    for headers, reason in [
        ({}, "invalid access token"),
        (BAD, "invalid access token"),
        ({"X-Auth-Token": wk_sample.sharing_token(DATASET_RETINA)}, "invalid access token"),
        (OTHER, "Token authentication failed."),
    ]:
        denied = wk_data.post(route, headers=headers)
        assert denied.status_code == 403 and denied.headers["content-type"].startswith("text/")
        assert denied.text.startswith("Token may be expired") and denied.text.endswith(reason)
    # A dataset manager may, whatever organization the path names (the real server's rule).
    other_org = wk_data.post(f"triggers/reload/elsewhere/{DATASET_RETINA}", headers=OWNER)
    assert other_org.status_code == 200
    missing = "66a0d00000000000000000ff"
    unknown = wk_data.post(f"triggers/reload/{ORGANIZATION}/{missing}", headers=OWNER)
    assert unknown.status_code == 404 and "Failed to get data source" in error_of(unknown)
    malformed = wk_data.post(f"triggers/reload/{ORGANIZATION}/retina_rgb", headers=OWNER)
    assert malformed.status_code == 400
    assert wk_data.get(route, headers=OWNER).status_code == 404  # POST only, as routed


# ---------------------------------------------------------------------------- datastore: raw data


@pytest.mark.parametrize(
    ("dataset", "layer", "mag", "box"),
    [
        (DATASET_L4, "color", (1, 1, 1), (100, 60, 30, 37, 21, 9)),
        (DATASET_L4, "segmentation", (2, 2, 1), (64, 32, 16, 50, 40, 12)),
        (DATASET_RETINA, "rgb", (4, 4, 2), (128, 64, 8, 20, 16, 10)),
        (DATASET_L4, "color", (1, 1, 1), (40, 20, 10, 40, 20, 10)),  # straddles the box corner
    ],
)
def test_raw_cuboid(
    wk_data: httpx.Client,
    wk_sample: SampleWorld,
    dataset: str,
    layer: str,
    mag: tuple[int, int, int],
    box: tuple[int, int, int, int, int, int],
) -> None:
    x, y, z, w, h, d = box
    response = wk_data.get(
        f"datasets/{dataset}/layers/{layer}/data",
        params={
            "mag": "-".join(map(str, mag)),
            "x": x,
            "y": y,
            "z": z,
            "width": w,
            "height": h,
            "depth": d,
        },
        headers=OWNER,
    )
    assert response.status_code == 200, response.text
    assert response.headers["MISSING-BUCKETS"] == "[]"
    mx, my, mz = mag
    expected = wk_sample.voxels(
        dataset, layer, mag, x // mx, y // my, z // mz, x // mx + w, y // my + h, z // mz + d
    )
    got = np.frombuffer(response.content, dtype=expected.dtype.newbyteorder("<")).reshape(
        expected.shape, order="F"
    )
    np.testing.assert_array_equal(got, expected)


def test_raw_cuboid_edges(wk_data: httpx.Client, wk_sample: SampleWorld) -> None:
    url = f"datasets/{DATASET_L4}/layers/color/data"
    outside = wk_data.get(
        url, params={"mag": "1", "x": 0, "y": 0, "z": 0, "width": 8, "height": 8, "depth": 8}
    )
    assert outside.status_code == 200 and outside.headers["MISSING-BUCKETS"] == "[0]"
    assert outside.content == bytes(512)
    assert (
        wk_data.get(url, params={"mag": "1", "x": 0, "y": 0, "z": 0, "width": 8}).status_code == 400
    )
    assert (
        wk_data.get(
            url, params={"mag": "3", "x": 0, "y": 0, "z": 0, "width": 8, "height": 8, "depth": 8}
        ).status_code
        == 404
    )
    token = wk_sample.sharing_token(DATASET_RETINA)
    url = f"datasets/{DATASET_RETINA}/layers/color/data"
    params = {"mag": "1", "x": 128, "y": 64, "z": 8, "width": 4, "height": 4, "depth": 4}
    assert wk_data.get(url, params=params).status_code == 403
    assert wk_data.get(url, params={**params, "token": token}).status_code == 200


@pytest.mark.parametrize(
    ("size", "served"),
    [
        ((512, 8, 4), True),  # the largest side the datastore takes, whatever the volume
        ((8, 512, 2), True),
        ((4, 2, 512), True),
        ((513, 8, 4), False),  # one voxel too wide: refused, though smaller than 512³
        ((8, 513, 1), False),
        ((1, 1, 513), False),
        ((0, 8, 8), False),
        ((8, -1, 8), False),
    ],
)
def test_raw_cuboid_sides_are_capped_at_512_like_the_datastore(
    wk_data: httpx.Client, size: tuple[int, int, int], served: bool
) -> None:
    """The datastore's ``Cuboid.hasValidDimensions`` (each side 1..512) refuses a box by
    dropping it as a missing bucket: 200, no bytes, ``MISSING-BUCKETS: [0]``."""
    w, h, d = size
    response = wk_data.get(
        f"datasets/{DATASET_L4}/layers/color/data",
        params={"mag": "1", "x": 0, "y": 0, "z": 0, "width": w, "height": h, "depth": d},
    )
    assert response.status_code == 200
    if served:
        assert len(response.content) == w * h * d
    else:
        assert response.content == b""
        assert response.headers["MISSING-BUCKETS"] == "[0]"


# ---------------------------------------------------------------------------- datastore: proxy


def test_proxy_properties_and_zarr_json(wk_data: httpx.Client) -> None:
    props = wk_data.get(f"datasets/{DATASET_L4}/proxy/datasource-properties.json").json()
    color = props["dataLayers"][0]
    assert color["dataFormat"] == "zarr3"
    assert [m["path"] for m in color["mags"]] == [
        "./layers/color/mags/1",
        "./layers/color/mags/2-2-1",
        "./layers/color/mags/4-4-2",
    ]
    response = wk_data.get(f"datasets/{DATASET_L4}/proxy/layers/segmentation/mags/2-2-1/zarr.json")
    assert response.headers["accept-ranges"] == "bytes"
    header = response.json()
    assert header["zarr_format"] == 3 and header["data_type"] == "uint32"
    assert header["shape"] == [1, 192, 144, 112]
    assert header["chunk_grid"]["configuration"]["chunk_shape"] == [1, 64, 64, 64]


def test_proxy_chunk_and_ranges(wk_data: httpx.Client, wk_sample: SampleWorld) -> None:
    url = f"datasets/{DATASET_RETINA}/proxy/layers/rgb/mags/1/c/0/2/1/0"
    whole = wk_data.get(url, headers=OWNER)
    assert whole.status_code == 200 and len(whole.content) == 3 * 64**3
    expected = wk_sample.voxels(DATASET_RETINA, "rgb", (1, 1, 1), 128, 64, 0, 192, 128, 64)
    got = np.frombuffer(whole.content, dtype=np.uint8).reshape((3, 64, 64, 64), order="F")
    np.testing.assert_array_equal(got, expected)
    part = wk_data.get(url, headers={**OWNER, "Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    assert part.content == whole.content[100:200]
    suffix = wk_data.get(url, headers={**OWNER, "Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == whole.content[-10:]
    open_end = wk_data.get(url, headers={**OWNER, "Range": f"bytes={len(whole.content) - 5}-"})
    assert open_end.content == whole.content[-5:]
    beyond = wk_data.get(url, headers={**OWNER, "Range": f"bytes={len(whole.content)}-"})
    assert beyond.status_code == 416
    assert wk_data.get(url).status_code == 403
    assert (
        wk_data.get(f"datasets/{DATASET_L4}/proxy/layers/color/mags/1/c/0/0/0/0").status_code == 404
    )
    assert wk_data.get(f"datasets/{DATASET_L4}/proxy/layers/color/mags/1/nope").status_code == 404


# ---------------------------------------------------------------------------- ground truth


def test_voxel_formulas_by_hand(wk_sample: SampleWorld) -> None:
    """A few values recomputed straight from the documented formulas (not via volume.py)."""

    def tri(v: int, p: int) -> int:
        return abs(v % (2 * p) - p)

    def color(x: int, y: int, z: int, s: int) -> int:
        value = 2 * tri(x + 7 * s, 40) + 2 * tri(y + 11 * s, 56) + 5 * tri(z + 3 * s, 12)
        value += (7 * x + 13 * y + 29 * z + s) % 4
        if (x + 5 * s) % 40 == 0 or (y + 3 * s) % 48 == 0 or z % 24 == 0:
            value //= 3
        return value

    def label(x: int, y: int, z: int, s: int) -> int:
        bx, by, bz = (x + 5 * s) // 40, (y + 3 * s) // 48, z // 24
        return 0 if (bx + by + bz) % 7 == 0 else 1 + bx + 16 * by + 256 * bz

    got = wk_sample.voxels("l4_demo", "color", (1, 1, 1), 100, 50, 20, 101, 51, 21)
    assert int(got[0, 0, 0, 0]) == color(100, 50, 20, 0)
    got = wk_sample.voxels("l4_demo", "segmentation", (4, 4, 2), 30, 20, 20, 31, 21, 21)
    assert int(got[0, 0, 0, 0]) == label(120, 80, 40, 0)
    got = wk_sample.voxels("retina_rgb", "rgb", (2, 2, 1), 70, 40, 10, 71, 41, 11)
    block = [(x, y, 10) for x in (140, 141) for y in (80, 81)]
    assert int(got[0, 0, 0, 0]) == sum(color(x, y, z, 1) for x, y, z in block) // 4
    assert int(got[2, 0, 0, 0]) == sum((x + 2 * y + 3 * z + 1) % 256 for x, y, z in block) // 4
    # Outside the bounding box: zero.
    assert not wk_sample.voxels("l4_demo", "color", (1, 1, 1), 0, 0, 0, 10, 10, 10).any()
    seg = wk_sample.layer("l4_demo", "segmentation")
    full = seg.voxels((1, 1, 1), seg.top_left, seg.bottom_right)
    assert seg.largest_segment_id() == int(full.max())


def test_determinism(wk_data: httpx.Client, wk_api: httpx.Client) -> None:
    url = f"zarr/{DATASET_L4}/segmentation/1/0.4.3.2"
    first = wk_data.get(url).content
    with (
        start_emulator("webknossos") as other,
        data_client(other) as data2,
        api_client(other, OWNER) as api2,
    ):
        assert data2.get(url).content == first
        a = wk_api.get(f"datasets/{DATASET_L4}", headers=OWNER).json()
        b = api2.get(f"datasets/{DATASET_L4}").json()
        a["dataStore"].pop("url")
        b["dataStore"].pop("url")
        assert a == b


# ---------------------------------------------------------------------------- knobs and log


def test_request_log_and_faults(wk: RunningEmulator, wk_data: httpx.Client) -> None:
    wk_data.get(f"zarr/{DATASET_L4}/.zgroup", headers={"Range": "bytes=0-1"})
    records = wk.requests()
    assert records[-1]["path"] == f"/data/{V}/zarr/{DATASET_L4}/.zgroup"
    assert records[-1]["range"] == "bytes=0-1" and records[-1]["status"] == 200
    wk.set_knobs(fault_rate=1.0, seed=3)
    outcomes: set[int | str] = set()
    for _ in range(4):
        try:
            outcomes.add(wk_data.get(f"zarr/{DATASET_L4}/.zgroup").status_code)
        except httpx.TransportError:
            outcomes.add("cut")
    assert outcomes <= {500, 502, 503, 429, "cut"}
    wk.set_knobs()
    assert wk_data.get(f"zarr/{DATASET_L4}/.zgroup").status_code == 200


def test_tasks_from_annotation_files(fresh: RunningEmulator) -> None:
    """``POST /tasks/createFromFiles``: one task per NML (a zip's NMLs each), the dataset and
    position from the NML, the form's parameters; a bad NML is a refused item."""
    from tests.support.nml import nml, zipped

    form = {
        "taskTypeId": TASK_TYPE_SKELETON,
        "neededExperience": {"domain": "tracing", "value": 1},
        "pendingInstances": 2,
        "projectName": "demo_project",
        "scriptId": None,
        "boundingBox": None,
    }
    import json as _json

    files = [
        ("a.nml", ("a.nml", nml(DATASET_L4, position=(10, 20, 30), box=((1, 2, 3), 4, 5, 6)))),
        ("b.zip", ("b.zip", zipped(**{"b1.nml": nml(DATASET_L4), "b2.nml": b"<things>"}))),
        ("notes.txt", ("notes.txt", b"ignored: neither .nml nor .zip")),
    ]
    with api_client(fresh, OWNER) as api:
        answer = api.post(
            "tasks/createFromFiles", data={"formJSON": _json.dumps(form)}, files=files
        )
        assert answer.status_code == 200, answer.text
        items = answer.json()["tasks"]
        assert [i["status"] for i in items] == [200, 200, 400]
        assert "b2.nml" in items[2]["error"]
        first = items[0]["success"]
        assert (first["datasetId"], first["editPosition"], first["creationInfo"]) == (
            DATASET_L4,
            [10, 20, 30],
            "a.nml",
        )
        assert first["boundingBox"] == {"topLeft": [1, 2, 3], "width": 4, "height": 5, "depth": 6}
        assert first["status"]["pending"] == 2
        assert api.get(f"tasks/{first['id']}").json() == first
        # Refusals of the whole request.
        no_file = api.post("tasks/createFromFiles", data={"formJSON": _json.dumps(form)})
        assert no_file.status_code == 400
        no_json = api.post("tasks/createFromFiles", files=files[:1])
        assert no_json.status_code == 400
        bad_type = {**form, "taskTypeId": "66a0a00000000000000000ff"}
        assert (
            api.post(
                "tasks/createFromFiles", data={"formJSON": _json.dumps(bad_type)}, files=files[:1]
            ).status_code
            == 404
        )
        two = [files[0], ("r.nml", ("r.nml", nml(DATASET_RETINA)))]
        assert (
            api.post(
                "tasks/createFromFiles", data={"formJSON": _json.dumps(form)}, files=two
            ).status_code
            == 400
        )
    logged = next(r for r in fresh.requests() if r["path"].endswith("/tasks/createFromFiles"))
    assert logged["body"]["form"] == {"formJSON": _json.dumps(form)}
    assert [f["filename"] for f in logged["body"]["files"]] == ["a.nml", "b.zip", "notes.txt"]


def test_tasks_from_annotation_files_refusals(fresh: RunningEmulator) -> None:
    """The refusals of TaskController.createFromFiles, with its texts (util/.../Msg.scala:
    Msg.Task.Create.multipartPayloadInvalid, Msg.Nml.fileNotFound,
    Msg.Task.Create.formJsonMissing, Msg.Task.Create.failed, Msg.TaskType.notFound(id) and
    Msg.Project.notFound(name) with 404, and TaskCreationService.assertBatchLimit's
    Msg.Task.Create.batchLimitExceeded: 100 files for a task type with a volume, checked after
    the task type); nothing is created."""
    import json as _json

    from tests.support.nml import nml

    form = {
        "taskTypeId": TASK_TYPE_SKELETON,
        "neededExperience": {"domain": "tracing", "value": 1},
        "pendingInstances": 1,
        "projectName": "demo_project",
    }
    one = [("a.nml", ("a.nml", nml(DATASET_L4)))]

    def post(api: httpx.Client, fields: dict[str, Any], files: Any) -> httpx.Response:
        data = {"formJSON": _json.dumps(fields)} if fields else None
        return api.post("tasks/createFromFiles", data=data, files=files)

    with api_client(fresh, OWNER) as api:
        before = api.post("tasks/list", json={}).json()
        not_multipart = api.post("tasks/createFromFiles", json=form)
        assert refusal_of(not_multipart) == (
            400,
            "Could not parse task creation multipart request.",
            [],
        )
        notes = [("notes.txt", ("notes.txt", b"neither .nml nor .zip"))]
        assert refusal_of(post(api, form, notes)) == (400, "Could not extract NML file.", [])
        assert refusal_of(post(api, {}, one)) == (
            400,
            "Could not parse task creation multipart request: no form data.",
            [],
        )
        for bad in ({**form, "taskTypeId": "not-an-id"}, {**form, "pendingInstances": "2"}):
            assert refusal_of(post(api, bad, one))[:2] == (400, "Could not create task.")
        unknown_type = "66a0a00000000000000000ff"
        assert refusal_of(post(api, {**form, "taskTypeId": unknown_type}, one)) == (
            404,
            f"Task type “{unknown_type}” could not be found or accessed.",
            [],
        )
        assert refusal_of(post(api, {**form, "projectName": "nope"}, one)) == (
            404,
            "Project with name “nope” could not be found or accessed.",
            [],
        )
        many = [(f"{i}.nml", (f"{i}.nml", nml(DATASET_L4))) for i in range(101)]
        volume = {**form, "taskTypeId": TASK_TYPE_VOLUME, "projectName": "nope"}
        assert refusal_of(post(api, volume, many)) == (
            400,
            "Cannot create more than 100 tasks in one request.",
            [],
        )
        assert api.post("tasks/list", json={}).json() == before


def _stl(data: bytes) -> np.ndarray:
    """Vertices (triangles × 3 × 3) of binary STL bytes, checked against the header's count."""
    count = int.from_bytes(data[80:84], "little")
    assert len(data) == 84 + 50 * count
    rows = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    return np.frombuffer(data, dtype=rows, offset=84)["vertices"]


@pytest.mark.parametrize("mag", [(1, 1, 1), (4, 4, 2)])
def test_full_mesh_bounds_are_the_segment_voxels_in_nm(
    wk_data: httpx.Client, wk_sample: SampleWorld, mag: tuple[int, int, int]
) -> None:
    x0, y0, z0, x1, y1, z1 = 64, 32, 16, 384, 288, 112  # l4_demo's segmentation
    labels = wk_sample.voxels(
        DATASET_L4,
        "segmentation",
        mag,
        x0 // mag[0],
        y0 // mag[1],
        z0 // mag[2],
        x1 // mag[0],
        y1 // mag[1],
        z1 // mag[2],
    )[0]
    segment = int(np.unique(labels)[5])
    where = np.argwhere(labels == segment)
    corner = np.array([x0 // mag[0], y0 // mag[1], z0 // mag[2]])
    lo, hi = (where.min(0) + corner) * mag, (where.max(0) + 1 + corner) * mag
    response = wk_data.post(
        f"datasets/{DATASET_L4}/layers/segmentation/meshes/fullMesh.stl",
        json={"segmentId": segment, "mag": list(mag), "lod": 0},
        headers=OWNER,
    )
    assert response.status_code == 200, response.text
    vertices = _stl(response.content).reshape(-1, 3)
    assert len(vertices) > 0
    voxel_size = np.array([11.24, 11.24, 28.0])
    np.testing.assert_allclose(vertices.min(0), lo * voxel_size, rtol=1e-6)
    np.testing.assert_allclose(vertices.max(0), hi * voxel_size, rtol=1e-6)


def test_full_mesh_of_an_absent_segment_is_empty_and_a_mag_is_needed(
    wk_data: httpx.Client,
) -> None:
    route = f"datasets/{DATASET_L4}/layers/segmentation/meshes/fullMesh.stl"
    absent = wk_data.post(route, json={"segmentId": 99999, "mag": [1, 1, 1]}, headers=OWNER)
    assert absent.status_code == 200 and absent.content == bytes(84)
    # DSMeshController.loadFullMeshStl puts Msg.Mesh.File.loadChunkFailed on the cause
    # (util/.../Msg.scala): here Msg.Mesh.magNeededForAdHoc, chained.
    no_mag = wk_data.post(route, json={"segmentId": 2}, headers=OWNER)
    assert refusal_of(no_mag) == (
        400,
        "Could not load mesh chunk for segment.",
        ["A mag needs to be provided for ad-hoc mesh computation."],
    )
    denied = wk_data.post(
        f"datasets/{DATASET_RETINA}/layers/segmentation/meshes/fullMesh.stl",
        json={"segmentId": 2, "mag": [1, 1, 1]},
    )
    assert denied.status_code == 403


@pytest.mark.parametrize(
    ("layer", "body", "cause"),
    [
        # DSFullMeshService's ad-hoc mesh needs a segmentation layer
        # (Msg.Dataset.Layer.mustBeSegmentation) ...
        ("color", {"segmentId": 2, "mag": [1, 1, 1]}, "Data layer must be a segmentation layer."),
        # ... and a mesh file's must exist (Msg.Mesh.File.lookUpFailed): none does here.
        (
            "segmentation",
            {"segmentId": 2, "meshFileName": "meshes_4-4-2"},
            "Could not look up mesh file “meshes_4-4-2”.",
        ),
    ],
)
def test_full_mesh_refusals_chain_the_cause(
    wk_data: httpx.Client, layer: str, body: dict[str, Any], cause: str
) -> None:
    response = wk_data.post(
        f"datasets/{DATASET_L4}/layers/{layer}/meshes/fullMesh.stl", json=body, headers=OWNER
    )
    assert refusal_of(response) == (400, "Could not load mesh chunk for segment.", [cause])
