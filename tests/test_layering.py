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


def _runtime_imports(path: Path, module: str) -> set[str]:
    """Project modules ``path`` imports at run time, at any depth (lazy imports in functions count),
    leaving out ``if TYPE_CHECKING:`` blocks (annotations only)."""
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)  # ``from audio import espeak``
    return names


def test_no_import_cycles() -> None:
    modules = {}
    for package in ORDER:
        for f in sorted((ROOT / package).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            modules[name] = f
    graph = {m: sorted(_runtime_imports(f, m) & modules.keys() - {m}) for m, f in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in graph[m]:
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


LONG_LINES = 450
"""A module longer than this says why at its top, in a line starting with ``REASON``."""
REASON = "# Over 400 lines:"


def _long_without_reason(path: Path) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    return len(lines) > LONG_LINES and not any(line.startswith(REASON) for line in lines[:3])


def test_long_modules_say_why_at_their_top() -> None:
    files = [f for folder in [*ORDER, "tools", "benchmarks"] for f in sorted((ROOT / folder).rglob("*.py"))]
    bad = [str(f.relative_to(ROOT)) for f in files if _long_without_reason(f)]
    assert not bad, f"over {LONG_LINES} lines, split them or say why on line 1 ({REASON} ...): {bad}"
