"""The instructor's autograder (autograder/): release, sandboxed parallel grading, export, feedback.

Grades the small fixture assignment in tests/fixtures/autograder/course against fabricated submissions, each
with an exact expected score, status and reason.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.grading import discover, grade_submissions
from autograder.release import check_release, release_assignment
from autograder.sandbox import bwrap_works

FIXTURE = Path(__file__).parent / "fixtures" / "autograder" / "course"
GOOD_SQUARE = "def square(x):\n    return x * x"
GOOD_MEAN = "def mean(xs):\n    return sum(xs) / len(xs)"
CELL_TIMEOUT = 3
HAVE_BWRAP = bwrap_works()

# student id -> (status, score, substring of the reason; "" means the reason must be empty)
EXPECTED = {
    "correct": ("graded", 5, ""),
    "untouched": ("graded", 0, ""),
    "partial": ("graded", 2, ""),
    "hidden_fail": ("graded", 3, ""),
    "syntax_error": ("graded", 3, ""),
    "exception": ("graded", 3, ""),
    "infinite_loop": ("timeout", 2, f"cell 'mean' exceeded the per-cell time limit ({CELL_TIMEOUT} s)"),
    "os_exit": ("crashed", 2, "the kernel died while running cell 'mean'"),
    "sigint_ignored": ("timeout", 2, f"cell 'mean' exceeded the per-cell time limit ({CELL_TIMEOUT} s)"),
    "big_output": ("graded", 5, "output truncated to 1000000 bytes in: square"),
    "memory_hog": ("graded", 2, "MemoryError (limit 1536 MB) in: mean"),
    "renamed": ("graded", 5, "renamed notebook 'Fixture (1).ipynb' graded as 'fixture.ipynb'"),
    "corrupt_json": ("invalid", 0, "'fixture.ipynb' is not a valid notebook (not valid notebook JSON"),
    "no_cells": ("invalid", 0, "'fixture.ipynb' has no cells"),
    "tests_edited": ("graded", 3, "test cell(s) edited by the student were restored before grading: test_square"),
    "tests_deleted": ("graded", 2, "test cell(s) deleted by the student score 0: test_mean"),
}
if HAVE_BWRAP:
    EXPECTED["cheater"] = ("graded", 5, "")


def _release_nb(course: Path) -> dict:
    rel = release_assignment("fixture", course_dir=course)
    return json.loads((rel / "fixture.ipynb").read_text())


def _make(nb: dict, square: str = GOOD_SQUARE, mean: str = GOOD_MEAN) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid == "square":
            cell["source"] = square
        elif gid == "mean":
            cell["source"] = mean
    return nb


def build_submissions(course: Path, out: Path) -> Path:
    """Fabricate one submission per EXPECTED entry in nbgrader's submitted/ layout."""
    nb = _release_nb(course)
    cheat = f"""
import os, socket
leaked = []
for p in [{str(course / 'solutions/fixture/fixture.ipynb')!r}, {str(course / 'gradebook.db')!r},
          {str(out / 'correct/fixture/fixture.ipynb')!r}, '../../../gradebook.db', '../../../../gradebook.db']:
    try:
        open(p, 'rb').read(1); leaked.append(p)
    except OSError:
        pass
try:
    open({str(course / 'gradebook.db')!r}, 'ab').write(b'x'); leaked.append('wrote gradebook')
except OSError:
    pass
try:
    socket.create_connection(('1.1.1.1', 53), timeout=1); leaked.append('network')
except OSError:
    pass
os.symlink({str(course / 'canary.txt')!r}, 'planted-link')
os.remove('fixture.ipynb')
os.symlink({str(course / 'canary.txt')!r}, 'fixture.ipynb')
def square(x):
    return 0 if leaked else x * x
"""
    subs = {
        "correct": _make(nb),
        "untouched": nb,
        "partial": _make(nb, mean="def mean(xs):\n    return 0"),
        "hidden_fail": _make(nb, square="def square(x):\n    return abs(x) * x"),
        "syntax_error": _make(nb, square="def square(x)\n    return x * x"),
        "exception": _make(nb, square="raise ValueError('boom')"),
        "infinite_loop": _make(nb, mean="while True:\n    pass"),
        "os_exit": _make(nb, mean="import os\nos._exit(0)"),
        "sigint_ignored": _make(nb, mean="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                         "while True:\n    pass"),
        "big_output": _make(nb, square=GOOD_SQUARE + "\nprint('x' * 30_000_000)"),
        "memory_hog": _make(nb, mean="blob = bytearray(8 * 1024**3)\n" + GOOD_MEAN),
        "cheater": _make(nb, square=cheat),
        "tests_edited": _make(nb, square="def square(x):\n    return 0"),
        "tests_deleted": _make(nb),
    }
    for cell in subs["tests_edited"]["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "test_square":
            cell["source"] = "pass  # trust me"
    subs["tests_deleted"]["cells"] = [c for c in subs["tests_deleted"]["cells"]
                                      if c["metadata"].get("nbgrader", {}).get("grade_id") != "test_mean"]
    for sid, content in subs.items():
        if sid not in EXPECTED:
            continue
        d = out / sid / "fixture"
        d.mkdir(parents=True)
        (d / "fixture.ipynb").write_text(json.dumps(content))
    (out / "renamed" / "fixture").mkdir(parents=True)
    (out / "renamed" / "fixture" / "Fixture (1).ipynb").write_text(json.dumps(_make(nb)))
    (out / "corrupt_json" / "fixture").mkdir(parents=True)
    (out / "corrupt_json" / "fixture" / "fixture.ipynb").write_text(json.dumps(_make(nb))[:500])
    (out / "no_cells" / "fixture").mkdir(parents=True)
    (out / "no_cells" / "fixture" / "fixture.ipynb").write_text(
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}))
    return out


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every fabricated submission twice: --jobs 2 and --jobs 1 (separate course copies)."""
    base = tmp_path_factory.mktemp("ag")
    runs = {}
    for jobs in (2, 1):
        course = base / f"course{jobs}"
        shutil.copytree(FIXTURE, course)
        (course / "canary.txt").write_text("canary")
        subs = build_submissions(course, base / f"subs{jobs}")
        before = _digest(subs)
        results = grade_submissions("fixture", subs, course_dir=course, jobs=jobs, timeout_cell=CELL_TIMEOUT,
                                    timeout_notebook=60, memory_mb=1536)
        runs[jobs] = (course, subs, before, results)
    return runs


@pytest.mark.slow
def test_each_submission_gets_its_exact_score_status_and_reason(graded):
    _, _, _, results = graded[2]
    got = {r.student_id: (r.status, r.score, r.reason) for r in results}
    assert set(got) == set(EXPECTED)
    for sid, (status, score, reason) in EXPECTED.items():
        assert got[sid][0] == status, (sid, got[sid])
        assert got[sid][1] == score, (sid, got[sid])
        assert (reason in got[sid][2]) if reason else got[sid][2] == "", (sid, got[sid])
    by = {r.student_id: r for r in results}
    assert by["partial"].cells == {"test_square": (2.0, 2.0), "test_mean": (0.0, 3.0)}
    assert "manual" not in by["tests_deleted"].reason
    assert all(r.max_score == 5 for r in results)


@pytest.mark.slow
def test_parallel_results_equal_sequential(graded):
    def key(results):
        return [(r.student_id, r.status, r.score, r.cells, r.reason) for r in results]

    assert key(graded[2][3]) == key(graded[1][3])


@pytest.mark.slow
def test_inputs_untouched_gradebook_merged_and_outputs_capped(graded):
    from nbgrader.api import Gradebook

    course, subs, before, results = graded[2]
    assert _digest(subs) == before
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "fixture-course") as gb:
        assert gb.find_submission("fixture", "correct").score == 5
        assert gb.find_submission("fixture", "partial").score == 2
        assert gb.find_submission("fixture", "corrupt_json").score == 0
    big = course / "autograded" / "big_output" / "fixture" / "fixture.ipynb"
    assert big.stat().st_size < 2_000_000
    assert not (course / "autograded" / "corrupt_json").exists()
    assert (course / "grading" / "fixture" / "os_exit.json").is_file()
    if HAVE_BWRAP:  # the cheater's planted symlinks neither redirected nbgrader's write nor were copied
        assert (course / "canary.txt").read_text() == "canary"
        cheat = course / "autograded" / "cheater" / "fixture"
        assert sorted(p.name for p in cheat.iterdir()) == ["fixture.ipynb"]
        assert not any(p.is_symlink() for p in cheat.iterdir())


@pytest.mark.slow
def test_rerun_is_idempotent_and_reuses_unchanged(graded):
    course, subs, _, results = graded[2]
    again = grade_submissions("fixture", subs, course_dir=course, jobs=2, timeout_cell=CELL_TIMEOUT,
                              timeout_notebook=60, memory_mb=1536)
    assert all(r.reused for r in again)
    assert [(r.student_id, r.status, r.score, r.reason) for r in again] == \
           [(r.student_id, r.status, r.score, r.reason) for r in results]


@pytest.mark.slow
def test_export_csv_and_feedback_hide_hidden_tests(graded):
    import csv

    from autograder.export import export_csv
    from autograder.feedback import generate_feedback

    course = graded[2][0]
    out = course / "grades.csv"
    assert export_csv(out, course_dir=course, assignment="fixture") == len(EXPECTED)
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert list(next(iter(rows.values())))[:4] == ["student_id", "assignment", "test_square", "test_mean"]
    assert rows["partial"]["total"] == "2" and rows["partial"]["test_mean"] == "0"
    assert rows["os_exit"]["status"] == "crashed" and "kernel died" in rows["os_exit"]["reason"]
    assert rows["corrupt_json"]["status"] == "invalid" and rows["corrupt_json"]["max_score"] == "5"
    files = generate_feedback("fixture", course_dir=course)
    assert len(files) == len([s for s, v in EXPECTED.items() if v[0] != "invalid"])
    for f in files:
        html = f.read_text()
        assert "hidden-check" not in html and "BEGIN HIDDEN" not in html, f
    # square(-4) fails only the hidden assert: the feedback says so without showing the line
    raw = (course / "autograded/hidden_fail/fixture/fixture.ipynb").read_text()
    assert "hidden-check-negative-square" in raw  # the instructor's copy keeps the traceback
    html = (course / "feedback/hidden_fail/fixture/fixture.html").read_text()
    assert "a hidden test failed" in html and "square(-4)" not in html


def test_flat_layout_and_discovery_errors(tmp_path):
    from autograder.course import AutograderError

    (tmp_path / "s1.ipynb").write_text("{}")
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "fixture").mkdir()
    (tmp_path / "s2" / "fixture" / "fixture.ipynb").write_text("{}")
    (tmp_path / "s2" / "fixture" / "data.csv").write_text("1")
    jobs = discover("fixture", tmp_path, ["fixture"])
    assert [j["student_id"] for j in jobs] == ["s1", "s2"]
    assert jobs[0]["files"] == {"fixture": str(tmp_path / "s1.ipynb")}
    assert jobs[1]["extras"] == [[str(tmp_path / "s2/fixture/data.csv"), "data.csv"]]
    with pytest.raises(AutograderError, match="has 2 notebooks"):
        discover("fixture", tmp_path, ["a", "b"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutograderError, match="no submissions"):
        discover("fixture", tmp_path / "empty", ["fixture"])
    with pytest.raises(AutograderError, match="does not exist"):
        discover("fixture", tmp_path / "missing", ["fixture"])


@pytest.mark.slow
def test_fallback_without_bubblewrap_warns_and_still_limits(tmp_path, capfd):
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    nb = _release_nb(course)
    subs = tmp_path / "flat"
    subs.mkdir()
    for sid, content in {"ok": _make(nb), "loop": _make(nb, mean="while True:\n    pass"),
                         "hog": _make(nb, mean="blob = bytearray(8 * 1024**3)\n" + GOOD_MEAN),
                         "exit": _make(nb, mean="import os\nos._exit(0)")}.items():
        (subs / f"{sid}.ipynb").write_text(json.dumps(content))
    results = grade_submissions("fixture", subs, course_dir=course, jobs=2, timeout_cell=CELL_TIMEOUT,
                                timeout_notebook=60, memory_mb=1536, sandbox="rlimit")
    assert "NOT sandboxed" in capfd.readouterr().err
    got = {r.student_id: (r.status, r.score) for r in results}
    assert got == {"ok": ("graded", 5), "loop": ("timeout", 2), "hog": ("graded", 2), "exit": ("crashed", 2)}


def test_release_is_deterministic_and_check_detects_drift(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    first = release_assignment("fixture", course_dir=course)
    snapshot = _digest(first)
    text = (first / "fixture.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "HIDDEN", "hidden-check", "sum(xs)"):
        assert marker not in text
    assert '"outputs": []' in text and '"id": "test_square"' in text
    assert check_release("fixture", course_dir=course) == []
    assert _digest(release_assignment("fixture", course_dir=course)) == snapshot
    src = course / "solutions/fixture/fixture.ipynb"
    src.write_text(src.read_text().replace("Implement `square`", "Implement `square` now"))
    diffs = check_release("fixture", course_dir=course)
    assert diffs and "fixture.ipynb" in diffs[0]
    cli = [sys.executable, "-m", "autograder", "release", "fixture", "--check", "--course-dir", str(course)]
    proc = subprocess.run(cli, capture_output=True, text=True)
    assert proc.returncode == 1 and "OUT OF DATE" in proc.stdout
    proc = subprocess.run(cli[:4] + ["nope", "--course-dir", str(course)], capture_output=True, text=True)
    assert proc.returncode == 2 and "no assignment 'nope'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(not sandbox.bwrap_works(), reason="bubblewrap cannot run here (the fallback is tested above)")
def test_bwrap_keeps_python_visible_when_the_course_lives_under_tmp(tmp_path):
    """A course cloned into /tmp (as CI may do) has its venv under /tmp: the private /tmp must not hide it."""
    course = tmp_path / "course"
    venv = course / ".venv"
    venv.mkdir(parents=True)
    (venv / "marker").write_text("venv visible\n")
    (course / "solutions").mkdir()
    (course / "solutions" / "secret").write_text("hidden")
    scratch = tmp_path / "scratch"  # the grader's scratch space is hidden, the notebook's folder inside it is not
    work = scratch / "work"
    work.mkdir(parents=True)
    (scratch / "gradebook.db").write_text("hidden")
    settings = {"mode": "bwrap", "tmp_mb": 16, "threads": 1, "hide": ["/tmp", str(course), str(scratch)],
                "expose": [str(venv)]}
    probe = (f"cat {venv}/marker; test -e {course}/solutions/secret && echo LEAK; "
             f"test -e {scratch}/gradebook.db && echo LEAK; "
             f"touch {venv}/x 2>/dev/null && echo WRITABLE; touch {work}/ok && echo work-writable")
    result = subprocess.run(sandbox.bwrap_argv(settings, str(work), [], ["/bin/sh", "-c", probe]),
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split("\n")[:2] == ["venv visible", "work-writable"], result.stdout + result.stderr
