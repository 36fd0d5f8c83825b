"""Files rendered once into the cache directory: written whole or not at all, once for all
concurrent askers, found again by a later process, temporaries of a crash swept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from neurofs.errors import RemoteError
from neurofs.io.cache.rendered import RENDERED_DIR, RenderedFiles


class Renderer:
    def __init__(self, data: bytes = b"rendered bytes", fail_after: bytes | None = None) -> None:
        self.data, self.fail_after = data, fail_after
        self.calls = 0

    async def __call__(self, path: Path) -> None:
        self.calls += 1
        with path.open("wb") as f:
            if self.fail_after is not None:
                f.write(self.fail_after)
                await trio.sleep(0.01)
                raise RemoteError("the server went away mid-render")
            await trio.sleep(0.01)
            f.write(self.data)


async def test_rendered_once_then_found(tmp_path: Path):
    files = RenderedFiles(tmp_path)
    render = Renderer()
    first = await files.ensure("id:a", ".parquet", render)
    assert first.path.read_bytes() == b"rendered bytes" and first.size == 14
    assert (await files.ensure("id:a", ".parquet", render)) == first
    assert render.calls == 1
    # A later process on the same directory finds it without rendering.
    assert RenderedFiles(tmp_path).find("id:a", ".parquet") == first
    assert files.find("id:b", ".parquet") is None


async def test_concurrent_asks_share_one_render(tmp_path: Path):
    files = RenderedFiles(tmp_path)
    render = Renderer()
    sizes: list[int] = []

    async def ask() -> None:
        sizes.append((await files.ensure("id:a", ".parquet", render)).size)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
    assert render.calls == 1 and sizes == [14] * 5


async def test_a_failed_render_leaves_nothing_and_fails_every_asker(tmp_path: Path):
    files = RenderedFiles(tmp_path)
    render = Renderer(fail_after=b"PAR1 half a file")
    errors: list[Exception] = []

    async def ask() -> None:
        try:
            await files.ensure("id:a", ".parquet", render)
        except RemoteError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(ask)
    assert render.calls == 1 and len(errors) == 3
    assert list((tmp_path / RENDERED_DIR).iterdir()) == []
    # The next ask renders again.
    assert (await files.ensure("id:a", ".parquet", Renderer())).size == 14


async def test_temporaries_left_by_a_crash_are_swept(tmp_path: Path):
    files = RenderedFiles(tmp_path)
    await files.ensure("id:a", ".parquet", Renderer())
    leftover = files.path_of("id:b", ".parquet").with_suffix(".parquet.tmp")
    leftover.write_bytes(b"PAR1 cut short")
    RenderedFiles(tmp_path, sweep=False)  # beside another process: may be its render
    assert leftover.exists()
    again = RenderedFiles(tmp_path)
    assert not leftover.exists()
    assert again.find("id:a", ".parquet") is not None
    assert again.clear() == 1
    assert again.find("id:a", ".parquet") is None


async def test_two_processes_rendering_one_file_at_once_do_not_mix_their_bytes(
    tmp_path: Path,
):
    """Two processes sharing a cache directory (two RenderedFiles on it) render the same
    identity at once: each writes its own temporary, the file is whole, none is left."""
    started = trio.Event()

    async def slow(path: Path) -> None:
        with path.open("wb") as f:
            f.write(b"PAR1 first half ")
            started.set()
            await trio.sleep(0.2)
            f.write(b"second half PAR1")

    async def fast(path: Path) -> None:
        await started.wait()
        path.write_bytes(b"PAR1 first half second half PAR1")

    one, two = RenderedFiles(tmp_path), RenderedFiles(tmp_path, sweep=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(one.ensure, "id:a", ".parquet", slow)
        nursery.start_soon(two.ensure, "id:a", ".parquet", fast)
    found = one.find("id:a", ".parquet")
    assert found is not None
    assert found.path.read_bytes() == b"PAR1 first half second half PAR1"
    assert [p.name for p in (tmp_path / RENDERED_DIR).iterdir()] == [found.path.name]


def test_the_directory_is_private(tmp_path: Path):
    files = RenderedFiles(tmp_path)
    assert files.directory.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("identity", ["a", "cave-parquet:http://x/|ds|1|t|layout1"])
def test_names_are_digests_of_the_identity(tmp_path: Path, identity: str):
    path = RenderedFiles(tmp_path).path_of(identity, ".parquet")
    assert path.parent == tmp_path / RENDERED_DIR
    assert len(path.stem) == 64 and path.suffix == ".parquet"


async def test_clearing_the_cache_clears_rendered_files(tmp_path: Path):
    from neurofs.io.cache import BlockCache

    files = RenderedFiles(tmp_path)
    await files.ensure("id:a", ".parquet", Renderer())
    with BlockCache(tmp_path, 1 << 20) as cache:
        cache.put("blob", 0, b"block")
        cache.clear()
        assert cache.stats().stored_blocks == 0
    assert files.find("id:a", ".parquet") is None


async def test_a_kind_rendered_with_a_budget_keeps_its_newest_files_within_it(tmp_path: Path):
    files = RenderedFiles(tmp_path)
    parquet = await files.ensure("table", ".parquet", Renderer(b"p" * 500))
    made = []
    for i in range(6):
        found = await files.ensure(f"root:{i}", ".leaves", Renderer(b"x" * 100), budget=(4, 350))
        os.utime(found.path, (1000 + i, 1000 + i))  # rendered in this order, a second apart
        made.append(found)
    # Newest first: 3 files of 100 bytes fit 350 bytes (4 would be 400); the others went.
    kept = [f for f in made if f.path.exists()]
    assert kept == made[3:]
    # Other kinds are not counted or touched.
    assert parquet.path.exists()
    # By count: a budget of 2 files keeps the one just rendered and the newest other.
    last = await files.ensure("root:9", ".leaves", Renderer(b"y"), budget=(2, 10**6))
    assert [f for f in made if f.path.exists()] == made[5:] and last.path.exists()
    # The one just rendered stays even when it alone is past the budget.
    alone = await files.ensure("root:10", ".leaves", Renderer(b"z" * 1000), budget=(5, 10))
    assert alone.path.exists() and not last.path.exists()
