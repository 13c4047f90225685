"""Every assignment, through one harness (``tests/gradingtable.py``; each ``tests/assignmentNN/variants.py``
defines ``TABLE``):

- the committed release is the student version of the source (no solutions or hidden tests, no outputs) and is
  what ``python -m autograder release --check`` would write;
- every buggy variant is a real change of exactly one answer cell, and every graded cell has at least one variant
  that loses it;
- the student path: the untouched release runs top to bottom (with errors allowed, as Run All with Validate
  shows it) and every visible test fails; the filled release passes every visible test;
- graded by the real autograder in a temporary course copy, the solution scores full marks, the untouched release
  0 on every cell, each buggy variant exactly its table (assignment 1's table, with its hostile submissions, is
  graded in ``test_assignment01.py``), each submission within the 60 s budget.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import nbformat
import pytest
from gradingtable import REPO, GradingTable, grade_id

NAMES = sorted(p.parent.name for p in (REPO / "tests").glob("assignment[0-9][0-9]/variants.py"))
TABLES: dict[str, GradingTable] = {n: importlib.import_module(f"{n}.variants").TABLE for n in NAMES}
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def test_every_assignment_has_a_table():
    sources = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    assert [t.assignment for t in TABLES.values()] == sources


@pytest.mark.parametrize("name", NAMES)
def test_release_is_the_student_version(name):
    table = TABLES[name]
    source, release = nbformat.read(table.source, 4), nbformat.read(table.release, 4)
    assert [grade_id(c) for c in source.cells] == [grade_id(c) for c in release.cells]
    for cell in release.cells:
        assert not any(m in cell.source for m in SOLUTION_MARKERS), grade_id(cell)
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, grade_id(cell)
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            assert "raise NotImplementedError()" in cell.source, grade_id(cell)
    assert all(not c.get("outputs") for c in source.cells if c.cell_type == "code"), "commit without outputs"
    assert sum(table.points().values()) >= 40, "assignments are worth about 50 points"


@pytest.mark.parametrize("name", NAMES)
def test_every_graded_cell_has_a_buggy_variant_and_every_patch_applies(name):
    table = TABLES[name]
    points, solution = table.points(), table.submission()
    covered = set()
    for vname, variant in table.variants.items():
        assert variant.loses and variant.loses <= set(points), vname
        assert set(points) - variant.loses, f"{vname} loses every cell: tasks must be independent"
        buggy = table.submission(vname)
        changed = [grade_id(a) for a, b in zip(buggy.cells, solution.cells, strict=True) if a.source != b.source]
        assert changed == [variant.cell], vname
        nbformat.validate(buggy)
        covered |= variant.loses
    assert set(points) <= covered, f"graded cells without a buggy variant: {sorted(set(points) - covered)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_student_path_visible_tests_fail_on_the_release_and_pass_when_filled(name, tmp_path):
    table = TABLES[name]
    errors = table.student_path(tmp_path)
    assert errors["release"] and all(errors["release"].values()), errors["release"]
    assert not any(errors["filled"].values()), {g: e for g, e in errors["filled"].items() if e}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in NAMES if n != "assignment01"])
def test_grading_table(name, tmp_path):
    table = TABLES[name]
    subs = tmp_path / "submissions"
    expected = table.write_submissions(subs)
    graded = table.grade(tmp_path, subs)
    table.check_table(graded, expected)
    seconds = {sid: rec["seconds"] for sid, rec in graded.records.items()}
    print(f"{table.assignment}: {len(expected)} submissions graded in {graded.elapsed:.0f} s with 2 jobs; "
          f"slowest {max(seconds.values()):.1f} s")
    assert max(seconds.values()) <= 60, {k: v for k, v in seconds.items() if v > 60}
def test_harness_reads_assignment_paths():
    table = TABLES["assignment01"]
    assert table.source == Path(REPO, "solutions", table.assignment, table.notebook) and table.source.exists()


def test_the_book_links_every_release_with_its_points_per_task():
    """chapters/assignments.md has a section per assignment: its download link, and a task table whose points
    per task are the notebook's (the sum of its test cells' points, by the `# Task k` first line)."""
    page = (REPO / "chapters" / "assignments.md").read_text()
    sections = re.split(r"^## ", page, flags=re.M)
    for table in TABLES.values():
        link = f"../assignments/{table.assignment}/{table.notebook}"
        section = next((s for s in sections if link in s), None)
        assert section is not None, f"chapters/assignments.md does not link {link}"
        per_task: dict[int, float] = {}
        for cell in nbformat.read(table.release, 4).cells:
            if cell.metadata.get("nbgrader", {}).get("grade"):
                task = int(re.match(r"# Task (\d+)", cell.source).group(1))
                per_task[task] = per_task.get(task, 0) + float(cell.metadata["nbgrader"]["points"])
        rows = re.findall(r"^\| (\d+) \|.*\| (\d+) \|\s*$", section, flags=re.M)
        assert {int(t): float(p) for t, p in rows} == per_task, (table.assignment, rows, per_task)
        total = re.search(r"\*\*(\d+)\*\*", section)
        assert total and float(total.group(1)) == sum(per_task.values()), table.assignment
