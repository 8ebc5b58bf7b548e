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
