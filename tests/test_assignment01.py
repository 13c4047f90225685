"""Assignment 01-optimizers: the solution scores full marks through the real autograder, the untouched release
scores 0 on every graded cell (and is still graded), every buggy variant loses exactly the points of the test
cells that check what it gets wrong (``tests/assignment01/variants.py``), and every hostile submission
(``tests/assignment01/hostile.py``) gets only what its real work earns and is flagged for review; all graded in
one batch by ``python -m autograder grade``, the scores decided outside the students' kernels."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest
from assignment01 import hostile, variants

from autograder.grading import load_records

REPO = variants.REPO


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_points_total_and_cells():
    points = variants.points()
    assert sum(points.values()) == 50
    assert len(points) == 19
    assert not set(variants.VARIANTS) & {name.replace("-", "_") for name in hostile.hostiles(REPO)}
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
def test_grading_table_and_hostile_submissions_in_one_batch(tmp_path):
    """The honest table (solution, release, every buggy variant) and the hostile submissions, graded together by
    `python -m autograder grade`: honest ones get their exact per-cell scores and no review flag; each hostile
    one gets what its real work earns and is flagged for review; a pickled record is never unpickled."""
    subs = tmp_path / "submissions"
    expected = variants.write_submissions(subs)
    canary = tmp_path / "CANARY-created-by-unpickling"
    attacks = hostile.write(subs, canary)
    # Grade in a copy of the course, as an instructor's course directory: the test never writes a
    # gradebook, grading/ or autograded/ into the repository.
    course = tmp_path / "course"
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO / folder / variants.ASSIGNMENT, course / folder / variants.ASSIGNMENT)
    shutil.copy(REPO / "nbgrader_config.py", course)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", variants.ASSIGNMENT, str(subs), "--jobs", "2",
                           "--course-dir", str(course)], capture_output=True, text=True, timeout=3000)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    records = load_records(course, variants.ASSIGNMENT)
    assert set(records) == set(expected) | set(attacks), proc.stdout
    table, wrong = {}, {}
    for student, want in expected.items():
        rec = records[student]
        assert rec["status"] == "graded", (student, rec["status"], rec["reason"])
        assert rec["max_score"] == 50
        assert rec["review"] == [], (student, rec["review"])
        table[student] = {gid: float(score) for gid, (score, _max) in rec["cells"].items()}
        wrong[student] = {g: (table[student].get(g), v) for g, v in want.items() if table[student].get(g) != v}
    assert not any(wrong.values()), {s: w for s, w in wrong.items() if w}
    for name, h in attacks.items():
        rec = records[name]
        assert rec["score"] == h.earns, (name, rec["score"], h.earns, rec["messages"], rec["reason"])
        assert rec["review"], (name, "not flagged for review", rec["reason"])
    assert "in-kernel tests passed but the trusted checks failed" in records["hostile-input-transformer"]["reason"]
    assert not canary.exists(), "the grader unpickled a record"
    # a forbidden call costs the task (reason says so); the grader's message names what was compared
    assert "forbidden call" in records["ce-calls-f-cross-entropy"]["reason"]
    msg = records["sgd-reads-defaults"]["messages"]["test_sgd_groups"]  # visible tests pass, a hidden run differs
    assert re.search(r"^per-group weight decay and dampening, run 1: after step \d+, parameter \d+: differs by up "
                     r"to [0-9.e-]+ \(and \d+ more of \d+ checks failed\)$", msg), msg
    assert "hidden checks did not run" in records["sgd-nesterov-wrong"]["messages"]["test_sgd_nesterov"]
    assert "working implementation" in records["sgd-step-does-nothing"]["messages"]["test_sgd_rules"]
    # the exfiltrator printed the hidden tests into its own outputs: the feedback shows none of it
    _feedback_shows_no_hidden_source(course / "autograded" / "hostile-exfiltrate" / variants.ASSIGNMENT)
    # the CSV flags the hostile rows
    out = tmp_path / "grades.csv"
    cli = [sys.executable, "-m", "autograder", "export", "--csv", str(out), "--course-dir", str(course)]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert {s for s, r in rows.items() if r["review"] == "yes"} == set(attacks)
    assert rows["solution"]["total"] == "50" and rows["release"]["total"] == "0"
    n = len(expected) + len(attacks) + 1
    print(f"graded {n - 1} submissions and the reference in {elapsed:.0f} s with 2 jobs")  # speed: see the report


def _feedback_shows_no_hidden_source(folder):
    from autograder.checks import privatize, split_hidden
    from autograder.feedback import StripHiddenTests

    def text(out) -> str:
        parts = [str(out.get("text", "")), str(out.get("evalue", ""))] + [str(t) for t in out.get("traceback", [])]
        return "\n".join(parts + [str(v) for v in out.get("data", {}).values()])

    nb = nbformat.read(folder / "optimizers.ipynb", as_version=4)
    public = "\n".join(c.source for c in variants.read(variants.RELEASE).cells)  # every student sees these
    needles = set()
    for cell in nb.cells:
        for hidden_part, block in split_hidden(cell.source) if cell.cell_type == "code" else []:
            if hidden_part:
                lines = (block + "\n" + privatize(block)).splitlines()
                needles |= {ln.strip() for ln in lines if len(ln.strip()) >= 20 and ln.strip() not in public}
    printed = "\n".join(text(o) for c in nb.cells for o in c.get("outputs", []))
    assert any(n in printed for n in needles), "the exfiltrator's outputs should contain hidden test code"
    shown, _ = StripHiddenTests().preprocess(nb, {})
    seen = "\n".join(c.source + "\n" + "\n".join(text(o) for o in c.get("outputs", [])) for c in shown.cells)
    leaked = [n for n in needles if n in seen]
    assert not leaked, leaked[:3]
