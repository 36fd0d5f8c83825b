"""The repository stands alone: no tracked file of the code, tests, scripts, benchmarks or CI
refers to reference material outside the clone (a ``shared/`` directory beside it).

Fixtures a test needs are copied into ``tests/fixtures`` with their provenance
(``tests/fixtures/SOURCES.md``); comments cite upstream repositories, not local paths.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ("src", "tests", "scripts", "bench", ".ci")

# Built from pieces so this file does not match itself.
_SHARED = "shared"
OUTSIDE = re.compile(
    r"\.\./"
    + _SHARED
    + r"\b"  # the directory beside the clone
    + r"|/work/"
    + _SHARED
    + r"\b"  # an absolute path of one machine
    + r"|\b"
    + _SHARED
    + r"/(?:fixtures|api|seeds|hooks|DESIGN\.md|README\.md)"  # its contents
    + r"|\b"
    + _SHARED
    + r" api/"  # its API notes named in prose
)


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--", *CHECKED],
            check=True,
            capture_output=True,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file
        names = [
            str(p.relative_to(REPO))
            for top in CHECKED
            for p in (REPO / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
    return [REPO / n for n in names]


def references_outside(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]


def test_the_pattern_finds_what_it_should() -> None:
    bad = [
        'p = "../' + _SHARED + '/x"',
        "see " + _SHARED + "/api/dandi.md",
        "(" + _SHARED + " api/cave.md)",
        'Path("/work/' + _SHARED + '/fixtures/cave")',
        "cat " + _SHARED + "/fixtures/cave/x.json",
    ]
    for line in bad:
        assert references_outside(line), line
    good = ["the shared HTTP client", "a shared cache tier", "shared_memory", "tests/fixtures/cave"]
    for line in good:
        assert not references_outside(line), line


def test_no_tracked_file_refers_outside_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 50  # the listing itself worked
    found: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary fixtures, files deleted in the work tree
        found += [f"{path.relative_to(REPO)}: {line}" for line in references_outside(text)]
    assert not found, "files refer to material outside the repository:\n" + "\n".join(found)


def test_fixture_provenance_names_every_fixture() -> None:
    fixtures = REPO / "tests" / "fixtures"
    sources = (fixtures / "SOURCES.md").read_text()
    for fixture in fixtures.rglob("*"):
        if fixture.is_file() and fixture.name != "SOURCES.md":
            name = str(fixture.relative_to(fixtures))
            assert f"`{name}`" in sources, f"{name} is not in tests/fixtures/SOURCES.md"
