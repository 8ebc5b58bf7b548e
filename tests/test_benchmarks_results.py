"""The benchmarks' results file: each run appends one dated row."""

from __future__ import annotations

from pathlib import Path

from benchmarks.results import COLUMNS, RESULTS, command_line, record


def test_record_appends_a_dated_row(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    record("python -m benchmarks.bench_x", "first line\n\nsecond\tline", path)
    record(command_line("benchmarks.bench_x", ["--runs", "2"]), "again", path)
    header, first, second = path.read_text(encoding="utf-8").splitlines()
    assert header.split("\t") == list(COLUMNS)
    cells = first.split("\t")
    assert len(cells) == len(COLUMNS) and cells[0][:2] == "20" and cells[1]  # a date, a commit (or "unknown")
    assert cells[3:] == ["python -m benchmarks.bench_x", "first line; second line"]
    assert second.split("\t")[3] == "python -m benchmarks.bench_x --runs 2"


def test_the_results_file_has_its_columns() -> None:
    lines = RESULTS.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    assert all(len(line.split("\t")) == len(COLUMNS) for line in lines[1:])
