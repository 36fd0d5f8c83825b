"""Real kernel mounts of neurofs against emulators on loopback.

The mount runs as its own process (``neurofs mount``, background mode, exactly as a user
starts it); tests use shell tools and libraries on the mount point. Without /dev/fuse the
tests are skipped, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurofs_emulators.cave.sample import DATASTACK as CAVE_DATASTACK
from neurofs_emulators.cave.sample import OWNER_TOKEN as CAVE_OWNER_TOKEN
from neurofs_emulators.dandi.sample import OTHER_TOKEN, OWNER_TOKEN
from neurofs_emulators.launch import RunningEmulator, start_emulator
from neurofs_emulators.webknossos.sample import API_VERSIONS as WK_API_VERSIONS
from neurofs_emulators.webknossos.sample import CURRENT_API_VERSION as WK_DEFAULT_API_VERSION
from neurofs_emulators.webknossos.sample import OWNER_TOKEN as WK_OWNER_TOKEN
from tests.unavailable import unavailable

NEUROFS = [sys.executable, "-m", "neurofs"]


def require_fuse() -> None:
    if not os.path.exists("/dev/fuse"):
        unavailable("/dev/fuse is missing")


@dataclass
class Emulator:
    """A running emulator plus helpers to ask it what it serves and what it was asked."""

    running: RunningEmulator

    @property
    def api_url(self) -> str:
        return self.running.api_url

    def _base(self) -> str:
        return self.running.urls[0].rsplit("/api", 1)[0]

    def requests(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self._base()}/__emulator__/requests").json()

    def reset(self) -> None:
        httpx.delete(f"{self._base()}/__emulator__/requests").raise_for_status()

    def data_requests(self) -> list[dict[str, Any]]:
        """Requests for bytes: the blob store and the download redirects."""
        return [
            r
            for r in self.requests()
            if r["path"].startswith("/dandiarchive/")
            or "download" in r["path"]
            or "download=true" in (r.get("query") or "")
        ]

    def writes(self) -> list[dict[str, Any]]:
        """Requests that change something (the log's ``body`` field holds what was sent)."""
        return [r for r in self.requests() if r["method"] not in ("GET", "HEAD")]

    def refuse(self, method: str, path_prefix: str, status: int, body: Any, times: int = 1) -> None:
        """Make the next matching request(s) fail as the real server would."""
        httpx.post(
            f"{self._base()}/__emulator__/refusals",
            json={
                "method": method,
                "path_prefix": path_prefix,
                "status": status,
                "body": body,
                "times": times,
            },
        ).raise_for_status()

    def clear_refusals(self) -> None:
        httpx.delete(f"{self._base()}/__emulator__/refusals").raise_for_status()

    def draft_metadata(self, dandiset: str) -> dict[str, Any]:
        with self.api() as c:
            r = c.get(f"dandisets/{dandiset}/versions/draft/info/")
            r.raise_for_status()
            return r.json()["metadata"]

    def api(self, token: str | None = OWNER_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=self.api_url + "/", headers=headers, timeout=60)

    def all_assets(self, dandiset: str, version: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with self.api() as c:
            url: str | None = f"dandisets/{dandiset}/versions/{version}/assets/"
            params: dict[str, Any] | None = {"page_size": 1000, "metadata": "true"}
            while url:
                page = c.get(url, params=params).json()
                out.extend(page["results"])
                url, params = page["next"], None
        return out

    def download(self, asset_id: str) -> bytes:
        with self.api() as c:
            r = c.get(f"assets/{asset_id}/download/", follow_redirects=False)
            assert r.status_code == 302
        return httpx.get(r.headers["Location"], timeout=300).content


@dataclass
class WkEmulator(Emulator):
    """The WEBKNOSSOS emulator: main server first, datastore second; ``api_version`` is the
    current API version it announces."""

    api_version: int = WK_DEFAULT_API_VERSION

    @property
    def api_url(self) -> str:
        return self.running.urls[0]

    def _base(self) -> str:
        return self.running.urls[0].rstrip("/")

    def wk(self, token: str | None = None) -> httpx.Client:
        token = token or WK_OWNER_TOKEN
        return httpx.Client(
            base_url=self._base() + "/api/v12/", headers={"X-Auth-Token": token}, timeout=60
        )


@dataclass
class CaveEmulator(Emulator):
    """The CAVE emulator: global server first, local server second."""

    @property
    def api_url(self) -> str:
        return self.running.urls[0]

    def _base(self) -> str:
        return self.running.urls[0].rstrip("/")

    def local(self, token: str | None = None) -> httpx.Client:
        token = token or CAVE_OWNER_TOKEN
        return httpx.Client(
            base_url=self.running.urls[1].rstrip("/") + "/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def cave_emulator() -> Iterator[CaveEmulator]:
    with start_emulator("cave", []) as running:
        yield CaveEmulator(running)


# neurofs speaks WEBKNOSSOS API v12 to v14: the tests of these modules run against an emulator
# announcing each version (other modules get the emulator's default, v12).
WK_VERSIONED_MODULES = ("test_webknossos_mount", "test_webknossos_records")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in WK_VERSIONED_MODULES and "wk_emulator" in metafunc.fixturenames:
        metafunc.parametrize(
            "wk_api_version",
            WK_API_VERSIONS,
            indirect=True,
            scope="module",
            ids=[f"wk-v{v}" for v in WK_API_VERSIONS],
        )


@pytest.fixture(scope="module")
def wk_api_version(request: pytest.FixtureRequest) -> int:
    version: int = getattr(request, "param", WK_DEFAULT_API_VERSION)
    return version


@pytest.fixture(scope="module")
def wk_emulator(wk_api_version: int) -> Iterator[WkEmulator]:
    with start_emulator("webknossos", ["--api-version", str(wk_api_version)]) as running:
        yield WkEmulator(running, wk_api_version)


@pytest.fixture(scope="session")
def dandi_emulator() -> Iterator[Emulator]:
    with start_emulator("dandi", []) as running:
        yield Emulator(running)


@pytest.fixture(scope="module")
def private_dandi_emulator() -> Iterator[Emulator]:
    """An emulator of this test module's own, for tests that change server state."""
    with start_emulator("dandi", []) as running:
        yield Emulator(running)


@pytest.fixture(scope="session")
def slow_dandi_emulator() -> Iterator[Emulator]:
    """Every response waits 300 ms: long enough for concurrent readers to overlap."""
    with start_emulator("dandi", ["--latency-ms", "300"]) as running:
        yield Emulator(running)


@dataclass
class Mount:
    path: Path
    config: Path
    cache_dir: Path
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    last_output: str = ""

    def start(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                *NEUROFS,
                "mount",
                str(self.path),
                "--config",
                str(self.config),
                "--cache-dir",
                str(self.cache_dir),
                *self.extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **self.env},
        )
        self.last_output = result.stdout + result.stderr
        if check:
            assert result.returncode == 0, self.last_output
            assert os.path.ismount(self.path)
        return result

    def stop(self) -> None:
        if os.path.ismount(self.path) or _stale(self.path):
            result = subprocess.run(
                [*NEUROFS, "unmount", str(self.path)], capture_output=True, text=True, timeout=60
            )
            if result.returncode != 0:
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False)
                raise AssertionError(f"unmount failed: {result.stdout}{result.stderr}")

    def remount(self) -> None:
        self.stop()
        self.start()

    def stats(self) -> dict[str, Any]:
        return json.loads((self.path / ".neurofs" / "stats.json").read_text())

    def __truediv__(self, other: str) -> Path:
        return self.path / other


def _stale(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError:
        return True
    return False


def write_config(
    path: Path, url: str, token: str | None, kind: str = "dandi", **extra: Any
) -> Path:
    lines = ["[[source]]", f'kind = "{kind}"', f'name = "{kind}"', f'url = "{url}"']
    if token:
        lines.append(f'token = "{token}"')
    for k, v in extra.items():
        lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def make_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """make_mount(emulator, token=..., **source_options) → a started Mount."""
    require_fuse()
    mounts: list[Mount] = []

    def factory(
        emulator: Emulator,
        token: str | None = OWNER_TOKEN,
        start: bool = True,
        cache_dir: Path | None = None,
        fuse_options: list[str] | None = None,
        **options: Any,
    ) -> Mount:
        base = tmp_path_factory.mktemp("mount")
        (base / "mnt").mkdir()
        kind = (
            "webknossos"
            if isinstance(emulator, WkEmulator)
            else "cave"
            if isinstance(emulator, CaveEmulator)
            else "dandi"
        )
        if token == OWNER_TOKEN:  # "the owner" of whichever service this is
            token = {"webknossos": WK_OWNER_TOKEN, "cave": CAVE_OWNER_TOKEN}.get(kind, token)
        if kind == "cave":
            options.setdefault("datastacks", [CAVE_DATASTACK])
        m = Mount(
            base / "mnt",
            write_config(base / "config.toml", emulator.api_url, token, kind, **options),
            cache_dir or base / "cache",
            extra=[a for o in (fuse_options or []) for a in ("-o", o)],
        )
        mounts.append(m)
        if start:
            m.start()
        return m

    yield factory
    for m in mounts:
        with contextlib.suppress(Exception):
            m.stop()


__all__ = ["OTHER_TOKEN", "OWNER_TOKEN", "Emulator", "Mount"]
