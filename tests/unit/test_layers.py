"""The product and its emulators are two packages that stay apart, checked on the source.

- ``neurofs`` (the filesystem) never imports ``neurofs_emulators``, except ``neurofs demo``
  and ``neurofs emulate`` in ``neurofs/cli/main.py``, and there only inside a function: a
  mount must not load (or need) the emulators' servers, sample data and their dependencies.
- ``neurofs_emulators`` imports nothing of ``neurofs`` but ``neurofs.io.digests``: the
  DANDI digest algorithms (dandi-etag, zarr checksum), pure functions of the bytes that the
  emulator serves and ``neurofs verify`` checks with one implementation (a conformance test
  compares both with the official client's). The emulators must behave like the services,
  not like the code they test, so nothing else of the product may leak into them.

The imports are read with :mod:`ast`, so an import hidden in a function counts too; module
names built in strings (``importlib.import_module``) are caught by their literal prefix.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PRODUCT = "neurofs"
EMULATORS = "neurofs_emulators"

# The product's modules that may start emulators (lazily, inside a command's function).
EMULATOR_COMMANDS = {"neurofs.cli.main"}
# What the emulators may share with the product (see the module docstring).
SHARED_WITH_EMULATORS = {"neurofs.io.digests"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or a module-name string literal)
    line: int
    top_level: bool  # executed when the module is imported (not inside a function)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def _string_prefix(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _string_prefix(node.values[0])
    return None


def imports_of(path: Path, root: Path = SRC) -> Iterator[Import]:
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)

    def visit(node: ast.AST, top_level: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = top_level and not isinstance(child, functions)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, top_level)
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, is_package, child)
                yield Import(module, target, child.lineno, top_level)
                # `from neurofs import secrets` imports the module neurofs.secrets.
                for alias in child.names:
                    yield Import(module, f"{target}.{alias.name}", child.lineno, top_level)
            else:
                text = _string_prefix(child)
                if text is not None and text.startswith(EMULATORS):
                    yield Import(module, text, getattr(child, "lineno", 0), top_level)
            yield from visit(child, inner)

    yield from visit(tree, True)


def package_imports(package: str) -> list[Import]:
    return [imp for path in sorted((SRC / package).rglob("*.py")) for imp in imports_of(path)]


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_reader_sees_imports_in_functions_relative_imports_and_strings(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg" / "sub"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from . import x\n")
    (package / "mod.py").write_text(
        "import a.b\n"
        "from ..c import d\n"
        "def f():\n"
        "    from neurofs_emulators.launch import start\n"
        "    return __import__('importlib').import_module(f'neurofs_emulators.{f}')\n"
    )
    found = {(i.target, i.top_level) for i in imports_of(package / "mod.py", tmp_path)}
    assert {
        ("a.b", True),
        ("pkg.c.d", True),
        ("neurofs_emulators.launch", False),
        ("neurofs_emulators.", False),
    } <= found
    init = {(i.target, i.top_level) for i in imports_of(package / "__init__.py", tmp_path)}
    assert ("pkg.sub.x", True) in init


def test_the_product_starts_emulators_only_inside_the_demo_and_emulate_commands() -> None:
    imports = package_imports(PRODUCT)
    assert any(is_within(i.target, "neurofs.io") for i in imports)  # the walk found imports
    wrong = [
        f"{i.module}:{i.line} imports {i.target}"
        + ("" if i.module in EMULATOR_COMMANDS else " (only the demo/emulate commands may)")
        + (" at import time" if i.top_level else "")
        for i in imports
        if is_within(i.target, EMULATORS) and (i.module not in EMULATOR_COMMANDS or i.top_level)
    ]
    assert not wrong, "\n".join(wrong)
    starts = [i for i in imports if is_within(i.target, EMULATORS)]
    assert starts, "the demo/emulate commands no longer start the emulators: update this test"


def test_the_emulators_share_only_the_digest_algorithms_with_the_product() -> None:
    imports = package_imports(EMULATORS)
    assert any(is_within(i.target, EMULATORS) for i in imports)  # the walk found imports
    wrong = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in imports
        if is_within(i.target, PRODUCT)
        and i.target not in SHARED_WITH_EMULATORS
        # `from neurofs.io.digests import X` names X as a possible submodule too.
        and not any(i.target.startswith(shared + ".") for shared in SHARED_WITH_EMULATORS)
        # `from neurofs.io import digests`: the package on the way to a shared module.
        and not any(shared.startswith(i.target + ".") for shared in SHARED_WITH_EMULATORS)
    ]
    assert not wrong, "\n".join(wrong)


def test_what_the_emulators_share_imports_nothing_else_of_the_product() -> None:
    for shared in SHARED_WITH_EMULATORS:
        path = SRC / (shared.replace(".", "/") + ".py")
        wrong = [
            f"{i.module}:{i.line} imports {i.target}"
            for i in imports_of(path)
            if is_within(i.target, PRODUCT) or is_within(i.target, EMULATORS)
        ]
        assert not wrong, "\n".join(wrong)
