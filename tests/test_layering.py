"""Imports point one way: audio <- motion <- render <- talker <- server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["audio", "motion", "render", "talker", "server"]
# The command line is the outermost edge (``talker serve`` starts the server), not a stage.
EDGES = {"talker/cli.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_server_uses_the_stages_only_through_talker() -> None:
    bad = {}
    for f in sorted((ROOT / "server").rglob("*.py")):
        direct = _imports(f) & {"audio", "motion", "render"}
        if direct:
            bad[str(f.relative_to(ROOT))] = sorted(direct)
    assert not bad, f"server must reach the stages through talker (talker.stages): {bad}"


@pytest.mark.parametrize("package", ORDER)
def test_no_upward_imports(package: str) -> None:
    higher = set(ORDER[ORDER.index(package) + 1 :])
    bad = {}
    for f in sorted((ROOT / package).rglob("*.py")):
        up = _imports(f) & higher
        if up and str(f.relative_to(ROOT)) not in EDGES:
            bad[str(f.relative_to(ROOT))] = sorted(up)
    assert not bad, f"{package} must not import from {sorted(higher)}: {bad}"


@pytest.mark.parametrize("package", ORDER)
def test_installed_packages_do_not_import_tools_benchmarks_or_tests(package: str) -> None:
    outside = {"tools", "benchmarks", "tests"}
    bad = {}
    for f in sorted((ROOT / package).rglob("*.py")):
        used = _imports(f) & outside
        if used:
            bad[str(f.relative_to(ROOT))] = sorted(used)
    assert not bad, f"{package} is installed; tools/, benchmarks/ and tests/ are not: {bad}"


@pytest.mark.parametrize("package", ORDER)
def test_installed_packages_do_not_read_the_sibling_media_folder(package: str) -> None:
    bad = [
        str(f.relative_to(ROOT))
        for f in sorted((ROOT / package).rglob("*.py"))
        if '"shared"' in f.read_text() or "shared/media" in f.read_text()
    ]
    assert not bad, f"an installed package must not read ../shared: {bad}"
