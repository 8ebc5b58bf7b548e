"""The benchmarks' results file: every run appends one dated row to ``benchmarks/results.tsv``.

Columns: the UTC date and time, the git commit (``+`` when the tree had uncommitted changes), the
machine (CPU count and platform), the command, and the run's headline figures on one line.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().with_name("results.tsv")
COLUMNS = ("date", "commit", "machine", "command", "figures")


def _commit(root: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True)  # fmt: skip
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def command_line(module: str, argv: list[str] | None) -> str:
    """How the benchmark was started: ``python -m MODULE ARGS``."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", module, *args])


def record(command: str, figures: str, path: Path = RESULTS) -> Path:
    """Append one row (tabs and newlines in ``figures`` become ``; ``) and return the file."""
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    machine = f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"
    flat = "; ".join(part.strip() for part in figures.replace("\t", " ").splitlines() if part.strip())
    row = (when, _commit(path.parent), machine, command, flat)
    new = not path.exists()
    with path.open("a", encoding="utf-8") as f:
        if new:
            f.write("\t".join(COLUMNS) + "\n")
        f.write("\t".join(row) + "\n")
    return path
