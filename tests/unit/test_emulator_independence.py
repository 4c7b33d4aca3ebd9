"""The emulator and the client follow docs/api-contract.md each on its own: neither imports the other.

A rule written once and used on both sides would test nothing, so this reads every import statement.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_optimizely"
EMULATOR = PACKAGE / "emulator"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import: resolve it against the file's own package.
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                dotted = ".".join(base.relative_to(PACKAGE.parent).parts)
                names.append(f"{dotted}.{node.module}" if node.module else dotted)
            elif node.module:
                names.append(node.module)
    return names


def _modules(root: Path, *, inside: bool) -> list[Path]:
    files = sorted(root.rglob("*.py")) if inside else sorted(PACKAGE.rglob("*.py"))
    return [f for f in files if inside or EMULATOR not in f.parents]


@pytest.mark.parametrize("path", _modules(EMULATOR, inside=True), ids=lambda p: p.name)
def test_emulator_imports_nothing_of_the_client(path: Path):
    ours = [n for n in _imports(path) if n.startswith("airflow_provider_optimizely")]
    foreign = [n for n in ours if not n.startswith("airflow_provider_optimizely.emulator")]
    assert foreign == [], f"{path.relative_to(PACKAGE)} imports client code: {foreign}"


@pytest.mark.parametrize("path", _modules(PACKAGE, inside=False), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_client_imports_nothing_of_the_emulator(path: Path):
    emulator = [n for n in _imports(path) if n.startswith("airflow_provider_optimizely.emulator")]
    assert emulator == [], f"{path.relative_to(PACKAGE)} imports the emulator: {emulator}"


def test_the_check_sees_both_sides():
    assert _modules(EMULATOR, inside=True), "no emulator modules found"
    assert _modules(PACKAGE, inside=False), "no client modules found"
