"""Assignment 01-optimizers: the solution scores full marks through the real autograder, the untouched release
scores 0 on every graded cell (and is still graded), and every buggy variant loses exactly the points of the
test cells that check what it gets wrong (``tests/assignment01/variants.py``)."""

from __future__ import annotations

import shutil
import time

import nbformat
import pytest
from assignment01 import variants

REPO = variants.REPO


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_points_total_and_cells():
    points = variants.points()
    assert sum(points.values()) == 50
    assert len(points) == 19
    for name, variant in variants.VARIANTS.items():
        assert variant.loses <= set(points), name


def test_release_is_a_student_version_of_the_source():
    source, release = variants.read(variants.SOURCE), variants.read(variants.RELEASE)
    assert [variants.grade_id(c) for c in source.cells] == [variants.grade_id(c) for c in release.cells]
    for cell in release.cells:
        text = cell.source
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, variants.grade_id(cell)
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, variants.grade_id(cell)
        if _nbgrader(cell).get("solution"):
            assert "raise NotImplementedError()" in text, variants.grade_id(cell)
    for nb in (source, release):
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"


@pytest.mark.parametrize("name", sorted(variants.VARIANTS))
def test_variant_patch_applies(name):
    """Each bug is a real change of the solution code (the patch matched exactly once)."""
    buggy, solution = variants.submission(name), variants.submission()
    changed = [variants.grade_id(a) for a, b in zip(buggy.cells, solution.cells, strict=True) if a.source != b.source]
    assert changed == [variants.VARIANTS[name].cell]
    nbformat.validate(buggy)


@pytest.mark.slow
def test_grading_table(tmp_path):
    from autograder.grading import grade_submissions  # the real grader: missing means failing, not skipping

    expected = variants.write_submissions(tmp_path / "submissions")
    # Grade in a copy of the course, as an instructor's course directory: the test never writes a
    # gradebook, grading/ or autograded/ into the repository.
    course = tmp_path / "course"
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO / folder / variants.ASSIGNMENT, course / folder / variants.ASSIGNMENT)
    shutil.copy(REPO / "nbgrader_config.py", course)
    start = time.perf_counter()
    results = grade_submissions(variants.ASSIGNMENT, tmp_path / "submissions", course_dir=course, jobs=2,
                                work_dir=tmp_path)
    elapsed = time.perf_counter() - start
    by_student = {r.student_id: r for r in results}
    assert set(by_student) == set(expected)
    table = {}
    for student in expected:
        result = by_student[student]
        assert result.status == "graded", (student, result.status, result.reason)
        table[student] = {gid: float(score) for gid, (score, _max) in result.cells.items()}
        assert result.max_score == 50
    wrong = {s: {g: (table[s].get(g), v) for g, v in want.items() if table[s].get(g) != v}
             for s, want in expected.items()}
    assert not any(wrong.values()), {s: w for s, w in wrong.items() if w}
    print(f"graded {len(expected)} submissions in {elapsed:.0f} s with 2 jobs")  # speed: see the report, not a test
