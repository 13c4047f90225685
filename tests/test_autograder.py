"""The instructor's autograder (autograder/): release, sandboxed parallel grading, trusted hidden checks, source
rules, export, feedback.

Grades the small fixture assignment in tests/fixtures/autograder/course against fabricated submissions, each
with an exact expected score, status and reason; unit tests cover the record format, the comparison, the
source analysis, the scoring rules and the typed process data.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import checks, rules, sandbox, scoring
from autograder.course import AutograderError
from autograder.grading import discover, grade_submissions, regrade_fingerprint
from autograder.model import (
    Job,
    Limits,
    RuleSpec,
    SandboxSettings,
    StaticContext,
    Status,
    WorkerResult,
    WorkerSettings,
    cell_key,
    from_json,
    to_json,
)
from autograder.release import check_release, release_assignment
from autograder.sandbox import bwrap_works

FIXTURE = Path(__file__).parent / "fixtures" / "autograder" / "course"
GOOD_SQUARE = "def square(x):\n    return x * x"
GOOD_MEAN = "def mean(xs):\n    return sum(xs) / len(xs)"
CELL_TIMEOUT = 3
HAVE_BWRAP = bwrap_works()
TRANSFORMER = """
import IPython
IPython.get_ipython().input_transformers_cleanup.append(
    lambda lines: ["pass\\n"] if any("assert" in line for line in lines) else lines)"""
SPY = """
import IPython
_seen = []
def _spy(lines):
    text = "".join(lines)
    if "negative" in text:  # the hidden block of test_square (its label says "negative")
        _seen.append(text)
        print(text)
    return lines
IPython.get_ipython().input_transformers_cleanup.append(_spy)"""

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
    "late": ("graded", 5, ""),
    "bad_timestamp": ("graded", 5, "timestamp.txt ('not a date at all') is not a date nbgrader can read"),
    "transformer": ("graded", 0, "the in-kernel tests passed but the trusted checks failed for test_square, test_mean"),
    "spy": ("graded", 5, "REVIEW: suspicious code: imports IPython"),
}
REVIEWED = {"sigint_ignored", "transformer", "spy", "cheater"}  # every other submission must not be flagged
if HAVE_BWRAP:
    EXPECTED["cheater"] = ("graded", 5, "REVIEW: suspicious code: imports socket")


def _require_bwrap() -> None:
    """Sandbox-escape tests need bubblewrap: skipped visibly without it, a failure in CI (`make test` installs
    it there)."""
    if HAVE_BWRAP:
        return
    if os.environ.get("CI"):
        pytest.fail("bubblewrap (bwrap) is missing or cannot create namespaces in CI: the sandbox is untested")
    pytest.skip("bubblewrap (bwrap) is missing or cannot create namespaces: sandbox-escape tests not run")


def _release_nb(course: Path, name: str = "fixture", notebook: str = "fixture") -> dict:
    rel = release_assignment(name, course_dir=course)
    return json.loads((rel / f"{notebook}.ipynb").read_text())


def _make(nb: dict, square: str = GOOD_SQUARE, mean: str = GOOD_MEAN) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid == "square":
            cell["source"] = square
        elif gid == "mean":
            cell["source"] = mean
    return nb


def _cheat(course: Path, out: Path) -> str:
    return f"""
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


def build_submissions(course: Path, out: Path) -> Path:
    """Fabricate one submission per EXPECTED entry in nbgrader's submitted/ layout."""
    nb = _release_nb(course)
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
        "cheater": _make(nb, square=_cheat(course, out)),
        "tests_edited": _make(nb, square="def square(x):\n    return 0"),
        "tests_deleted": _make(nb),
        "late": _make(nb),
        "bad_timestamp": _make(nb),
        "transformer": _make(nb, square="def square(x):\n    raise NotImplementedError()\n" + TRANSFORMER),
        "spy": _make(nb, square=GOOD_SQUARE + "\n" + SPY, mean=GOOD_MEAN + "\nprint(''.join(_seen))"),
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
    (out / "late" / "fixture" / "timestamp.txt").write_text("2030-01-02 00:00:00 UTC")
    (out / "bad_timestamp" / "fixture" / "timestamp.txt").write_text("not a date at all")
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


def _gradebook(course: Path):
    from nbgrader.api import Gradebook

    from autograder.course import patch_nbgrader

    patch_nbgrader()
    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", "fixture-course")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade every fabricated submission twice: --jobs 2 and --jobs 1 (separate course copies)."""
    base = tmp_path_factory.mktemp("ag")
    runs = {}
    for jobs in (2, 1):
        course = base / f"course{jobs}"
        shutil.copytree(FIXTURE, course)
        (course / "canary.txt").write_text("canary")
        with _gradebook(course) as gb:  # the instructor set a due date before grading
            gb.update_or_create_assignment("fixture", duedate="2030-01-01 00:00:00 UTC")
        subs = build_submissions(course, base / f"subs{jobs}")
        before = _digest(subs)
        results = grade_submissions("fixture", subs, course_dir=course, jobs=jobs, timeout_cell=CELL_TIMEOUT,
                                    timeout_notebook=60, memory_mb=1536)
        runs[jobs] = (course, subs, before, results)
    return runs


# ----------------------------------------------------------------------------------------- fixture batch


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
    assert {s for s, r in by.items() if r.review} == REVIEWED & set(by)
    assert by["partial"].cells == {"test_square": (2.0, 2.0), "test_mean": (0.0, 3.0)}
    assert "manual" not in by["tests_deleted"].reason
    assert all(r.max_score == 5 for r in results)
    # the trusted checks decided: the transformer fooled the kernel, not the grader
    assert by["transformer"].in_kernel == {"test_square": (2.0, 2.0), "test_mean": (3.0, 3.0)}
    # what was compared, never the expected value
    assert by["hidden_fail"].messages == {"test_square": "square of a negative number: is -16, not the expected value"}
    assert "did not run" in by["partial"].messages["test_mean"]


@pytest.mark.slow
def test_late_submission_is_penalised_from_its_timestamp(graded):
    course, _, _, results = graded[2]
    by = {r.student_id: r for r in results}
    assert by["late"].seconds_late == 86400 and by["late"].late_penalty == 5  # penalty_method "zero"
    assert by["correct"].seconds_late == 0 and by["correct"].late_penalty == 0
    with _gradebook(course) as gb:
        late = gb.find_submission("fixture", "late")
        assert late.total_seconds_late == 86400 and late.late_submission_penalty == 5
        assert gb.find_submission("fixture", "bad_timestamp").timestamp is None
    assert (course / "autograded/late/fixture/timestamp.txt").read_text() == "2030-01-02 00:00:00 UTC"


@pytest.mark.slow
def test_sandbox_escape_attempts_fail(graded):
    """The cheater could neither read other files, write the gradebook, reach the network, nor redirect
    nbgrader's writes with planted symlinks."""
    _require_bwrap()
    course, _, _, results = graded[2]
    by = {r.student_id: r for r in results}
    assert (by["cheater"].status, by["cheater"].score) == ("graded", 5), by["cheater"]
    assert (course / "canary.txt").read_text() == "canary"
    cheat = course / "autograded" / "cheater" / "fixture"
    assert sorted(p.name for p in cheat.iterdir()) == ["fixture.ipynb"]
    assert not any(p.is_symlink() for p in cheat.iterdir())


@pytest.mark.slow
def test_parallel_results_equal_sequential(graded):
    def key(results):
        return [(r.student_id, r.status, r.score, r.cells, r.reason) for r in results]

    assert key(graded[2][3]) == key(graded[1][3])


def test_kernel_thread_count_does_not_depend_on_jobs(tmp_path, monkeypatch):
    """Float reductions round differently with other thread counts: every batch, and the reference, runs its
    kernels with Limits.threads, whatever --jobs (a score must not depend on how the instructor ran it)."""
    import autograder.grading as grading

    seen = []

    class _Stop(Exception):
        pass

    def capture(batch, settings):
        seen.append(settings.threads)
        raise _Stop

    monkeypatch.setattr(grading, "write_kernelspec", capture)
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    for jobs in (1, 2, 8):
        with pytest.raises(_Stop):
            grade_submissions("fixture", None, course_dir=course, jobs=jobs)
    assert seen == [Limits().threads] * 3 == [1] * 3


@pytest.mark.slow
def test_inputs_untouched_gradebook_merged_and_outputs_capped(graded):
    course, subs, before, results = graded[2]
    assert _digest(subs) == before
    with _gradebook(course) as gb:
        assert gb.find_submission("fixture", "correct").score == 5
        assert gb.find_submission("fixture", "partial").score == 2
        from nbgrader.api import MissingEntry

        with pytest.raises(MissingEntry):  # invalid: reported in the CSV, never stored in the gradebook
            gb.find_submission("fixture", "corrupt_json")
        # in-kernel verdict 5/5, trusted 0: the gradebook holds the trusted score, flagged for a person
        transformer = gb.find_submission("fixture", "transformer")
        assert transformer.score == 0 and transformer.needs_manual_grade
        assert not gb.find_submission("fixture", "correct").needs_manual_grade
    big = course / "autograded" / "big_output" / "fixture" / "fixture.ipynb"
    assert big.stat().st_size < 2_000_000
    assert not (course / "autograded" / "corrupt_json").exists()
    assert (course / "grading" / "fixture" / "os_exit.json").is_file()
    ref = json.loads((course / "grading" / "fixture" / ".reference" / "reference.json").read_text())
    assert sorted(ref["cells"]) == ["test_mean", "test_square"] and len(ref["cells"]["test_square"]) == 2


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
    assert rows["late"]["late_penalty"] == "5" and rows["correct"]["late_penalty"] == "0"
    assert {s for s, r in rows.items() if r["review"] == "yes"} == REVIEWED & set(rows)
    assert rows["transformer"]["total"] == "0"
    files = generate_feedback("fixture", course_dir=course)
    assert len(files) == len([s for s, v in EXPECTED.items() if v[0] != "invalid"])
    for f in files:
        html = f.read_text()
        assert "hidden-check" not in html and "BEGIN HIDDEN" not in html, f
    # square(-4) fails only a hidden check: the feedback says what was compared, without the hidden line
    raw = (course / "autograded/hidden_fail/fixture/fixture.ipynb").read_text()
    assert "hidden-check-negative-square" in raw  # the instructor's copy keeps the hidden block's output
    html = (course / "feedback/hidden_fail/fixture/fixture.html").read_text()
    assert "square of a negative number: is -16, not the expected value" in html and "square(-4)" not in html
    # the spy printed the hidden test source into a later answer cell's output: removed from its feedback
    spy_raw = (course / "autograded/spy/fixture/fixture.ipynb").read_text()
    assert "hidden-check-negative-square" in spy_raw
    spy = (course / "feedback/spy/fixture/fixture.html").read_text()
    assert "output removed by the autograder" in spy and "all hidden checks passed" in spy


# ----------------------------------------------------------------------------------------- other batches


@pytest.mark.slow
def test_fallback_without_bubblewrap_warns_limits_and_cleans_the_environment(tmp_path, capfd, monkeypatch):
    """rlimit mode: limits apply, the kernel gets the same clean environment as in the sandbox, and a kernel
    that kills its grading worker costs only its own grade."""
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", "instructor-only")
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    nb = _release_nb(course)
    subs = tmp_path / "flat"
    subs.mkdir()
    leak = "import os\ndef square(x):\n    return 0 if 'AUTOGRADER_TEST_SECRET' in os.environ else x * x"
    for sid, content in {"ok": _make(nb), "loop": _make(nb, mean="while True:\n    pass"),
                         "hog": _make(nb, mean="blob = bytearray(8 * 1024**3)\n" + GOOD_MEAN),
                         "exit": _make(nb, mean="import os\nos._exit(0)"),
                         "env": _make(nb, square=leak),
                         "killer": _make(nb, mean="import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
                         }.items():
        (subs / f"{sid}.ipynb").write_text(json.dumps(content))
    results = grade_submissions("fixture", subs, course_dir=course, jobs=2, timeout_cell=CELL_TIMEOUT,
                                timeout_notebook=60, memory_mb=1536, sandbox="rlimit")
    assert "NOT sandboxed" in capfd.readouterr().err
    got = {r.student_id: (r.status, r.score) for r in results}
    assert got == {"ok": ("graded", 5), "loop": ("timeout", 2), "hog": ("graded", 2), "exit": ("crashed", 2),
                   "env": ("graded", 5), "killer": ("error", 0)}
    killer = next(r for r in results if r.student_id == "killer")
    assert "the grading worker crashed while grading it" in killer.reason


@pytest.mark.slow
def test_whole_notebook_timeout_stops_the_notebook(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    nb = _release_nb(course)
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "slow.ipynb").write_text(json.dumps(_make(nb, mean="while True:\n    pass")))
    results = grade_submissions("fixture", subs, course_dir=course, jobs=1, timeout_cell=30, timeout_notebook=8,
                                memory_mb=1536)
    (r,) = results
    assert (r.status, r.score) == ("timeout", 2), r
    assert "cell 'mean' exceeded the notebook time limit (8 s)" in r.reason


@pytest.mark.slow
def test_two_notebooks_one_without_graded_cells(tmp_path):
    """One cell-key rule everywhere: a perfect submission is 5/5 in the result, the gradebook and the CSV."""
    from autograder.export import export_csv

    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    part1 = _release_nb(course, "twonb", "part1")
    notes = json.loads((course / "assignments/twonb/notes.ipynb").read_text())
    subs = tmp_path / "subs"
    (subs / "ada" / "twonb").mkdir(parents=True)
    (subs / "ada" / "twonb" / "part1.ipynb").write_text(json.dumps(_make(part1)))
    (subs / "ada" / "twonb" / "notes.ipynb").write_text(json.dumps(notes))
    (r,) = grade_submissions("twonb", subs, course_dir=course, jobs=1, timeout_cell=30, memory_mb=1536)
    assert (r.status, r.score, r.max_score) == ("graded", 5, 5), r
    assert r.cells == {"part1/test_square": (2.0, 2.0), "part1/test_mean": (3.0, 3.0)}
    with _gradebook(course) as gb:
        assert gb.find_submission("twonb", "ada").score == 5
    export_csv(tmp_path / "g.csv", course_dir=course, assignment="twonb")
    (row,) = list(csv.DictReader((tmp_path / "g.csv").open()))
    assert (row["part1/test_square"], row["part1/test_mean"], row["total"], row["status"]) == ("2", "3", "5", "graded")


@pytest.mark.slow
def test_command_line_grade_export_feedback_force_and_changed_submissions(tmp_path):
    """`grade`, `export` and `feedback` end to end; an invalid student id; a student without a submission;
    a changed submission is regraded, an unchanged one reused, and --force regrades everything."""
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    nb = _release_nb(course)
    subs = tmp_path / "subs"
    (subs / "alice" / "fixture").mkdir(parents=True)
    (subs / "alice" / "fixture" / "fixture.ipynb").write_text(json.dumps(_make(nb)))
    (subs / "bob.ipynb").write_text(json.dumps(_make(nb, mean="def mean(xs):\n    return 0")))
    (subs / "bad id!" / "fixture").mkdir(parents=True)
    (subs / "bad id!" / "fixture" / "fixture.ipynb").write_text(json.dumps(_make(nb)))
    cli = [sys.executable, "-m", "autograder"]
    where = ["--course-dir", str(course)]

    proc = subprocess.run(cli + ["grade", "fixture", str(subs), "--jobs", "2", "--timeout-cell", "30"] + where,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.strip()}
    assert "5/5" in lines["alice"] and "2/5" in lines["bob"]
    assert "invalid" in proc.stdout and "student id 'bad id!' has characters nbgrader does not accept" in proc.stdout
    assert "3 submissions: 2 graded, 1 invalid" in proc.stdout

    with _gradebook(course) as gb:
        gb.update_or_create_student("carol")  # enrolled, never submitted
    out = tmp_path / "grades.csv"
    proc = subprocess.run(cli + ["export", "--csv", str(out)] + where, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "wrote 3 rows" in proc.stdout, proc.stdout + proc.stderr
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"alice", "bob", "carol"}
    assert (rows["carol"]["status"], rows["carol"]["total"], rows["carol"]["max_score"]) == ("missing", "0", "5")
    assert rows["carol"]["test_square"] == "" and rows["alice"]["total"] == "5"

    proc = subprocess.run(cli + ["feedback", "fixture"] + where, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "wrote 2 feedback files" in proc.stdout, proc.stdout + proc.stderr
    assert (course / "feedback/alice/fixture/fixture.html").is_file()

    (subs / "bob.ipynb").write_text(json.dumps(_make(nb)))  # bob fixes mean and hands in again
    again = {r.student_id: r for r in grade_submissions("fixture", subs, course_dir=course, jobs=2, timeout_cell=30)}
    assert again["alice"].reused and not again["bob"].reused and again["bob"].score == 5
    forced = grade_submissions("fixture", subs, course_dir=course, jobs=2, timeout_cell=30, force=True)
    assert not any(r.reused for r in forced)
    assert {r.student_id: r.score for r in forced} == {"alice": 5, "bob": 5, "bad id!": 0}
    assert not (course / "grading" / "fixture" / "bad id!.json").exists()


@pytest.mark.slow
def test_a_sandbox_that_cannot_start_is_one_clear_error_and_nothing_is_graded(tmp_path, monkeypatch):
    import autograder.grading as grading

    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    nb = _release_nb(course)
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "s1.ipynb").write_text(json.dumps(_make(nb)))
    real = grading.sandbox_settings

    def broken(*args, **kwargs):  # as if the environment were invisible inside the sandbox
        return dataclasses.replace(real(*args, **kwargs), python=str(tmp_path / "no-such-venv" / "bin" / "python"))

    monkeypatch.setattr(grading, "sandbox_settings", broken)
    with pytest.raises(AutograderError, match="cannot start, so nothing was graded"):
        grade_submissions("fixture", subs, course_dir=course, timeout_cell=30)
    assert not (course / "grading").exists() and not (course / "autograded").exists()
    assert not (course / "gradebook.db").exists()


def test_bogus_sandbox_mode_is_a_clear_error(tmp_path):
    env = {**os.environ, "AUTOGRADER_SANDBOX": "bogus"}
    (tmp_path / "subs").mkdir()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "fixture", str(tmp_path / "subs"),
                           "--course-dir", str(FIXTURE)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "unknown sandbox mode 'bogus' (from the environment variable AUTOGRADER_SANDBOX)" in proc.stderr
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------------------- release, discovery


def test_flat_layout_and_discovery_errors(tmp_path):
    (tmp_path / "s1.ipynb").write_text("{}")
    (tmp_path / "s2").mkdir()
    (tmp_path / "s2" / "fixture").mkdir()
    (tmp_path / "s2" / "fixture" / "fixture.ipynb").write_text("{}")
    (tmp_path / "s2" / "fixture" / "data.csv").write_text("1")
    (tmp_path / "s2" / "fixture" / "timestamp.txt").write_text("2024-05-01 10:00:00\n")
    jobs = discover("fixture", tmp_path, ["fixture"])
    assert [j.student_id for j in jobs] == ["s1", "s2"]
    assert jobs[0].files == {"fixture": str(tmp_path / "s1.ipynb")}
    assert jobs[1].extras == [(str(tmp_path / "s2/fixture/data.csv"), "data.csv")]
    assert jobs[1].timestamp == "2024-05-01 10:00:00"
    with pytest.raises(AutograderError, match="has 2 notebooks"):
        discover("fixture", tmp_path, ["a", "b"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutograderError, match="no submissions"):
        discover("fixture", tmp_path / "empty", ["fixture"])
    with pytest.raises(AutograderError, match="does not exist"):
        discover("fixture", tmp_path / "missing", ["fixture"])


def test_release_is_deterministic_and_check_detects_drift(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    first = release_assignment("fixture", course_dir=course)
    snapshot = _digest(first)
    text = (first / "fixture.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "HIDDEN", "hidden-check", "sum(xs)", "record("):
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


# ----------------------------------------------------------------------------------------- sandbox


def _settings(hide: list[str], expose: list[list[str]]) -> SandboxSettings:
    return SandboxSettings(mode="bwrap", memory_mb=4096, max_file_mb=16, tmp_mb=16, threads=1, python=sys.executable,
                           hide=hide, expose=expose)


def test_bwrap_keeps_python_visible_when_the_course_lives_under_tmp(tmp_path):
    """A course cloned into /tmp (as CI may do) has its venv under /tmp: the private /tmp must not hide it."""
    _require_bwrap()
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
    settings = _settings(["/tmp", str(course), str(scratch)], sandbox.expose_pairs([str(venv)]))
    probe = (f"cat {venv}/marker; test -e {course}/solutions/secret && echo LEAK; "
             f"test -e {scratch}/gradebook.db && echo LEAK; "
             f"touch {venv}/x 2>/dev/null && echo WRITABLE; touch {work}/ok && echo work-writable")
    result = subprocess.run(sandbox.bwrap_argv(settings, str(work), [], ["/bin/sh", "-c", probe]),
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split("\n")[:2] == ["venv visible", "work-writable"], result.stdout + result.stderr


def test_a_symlinked_venv_is_exposed_at_its_real_path_too(tmp_path):
    """A `.venv` that is a symlink to a folder under /tmp: the sandbox hides /tmp, so the folder is bound from
    its real path, both where the link is and where it points (paths inside the venv may use either)."""
    real = tmp_path / "real-venv"
    real.mkdir()
    (real / "marker").write_text("venv visible\n")
    course = tmp_path / "course"
    course.mkdir()
    (course / ".venv").symlink_to(real)
    pairs = sandbox.expose_pairs([str(course / ".venv")])
    assert pairs == sorted([[str(real), str(course / ".venv")], [str(real), str(real)]], key=lambda p: p[1])
    _require_bwrap()
    work = tmp_path / "scratch" / "work"
    work.mkdir(parents=True)
    settings = _settings(["/tmp", str(course), str(tmp_path / "scratch")], pairs)
    probe = f"cat {course}/.venv/marker {real}/marker"
    result = subprocess.run(sandbox.bwrap_argv(settings, str(work), [], ["/bin/sh", "-c", probe]),
                            capture_output=True, text=True, timeout=60)
    assert result.stdout == "venv visible\nvenv visible\n", result.stdout + result.stderr


def test_kernel_environment_is_the_same_clean_one_in_both_modes(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", "instructor-only")
    monkeypatch.setenv("JPY_PARENT_PID", "4242")
    allowed = {"PATH", "HOME", "LANG", "MPLBACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "PYTHONNOUSERSITE", "TMPDIR", "MPLCONFIGDIR", "IPYTHONDIR",
               "PYTHONHASHSEED", "JPY_PARENT_PID"}
    for mode in ("bwrap", "rlimit"):
        env = sandbox.kernel_env(dataclasses.replace(_settings([], []), mode=mode), "/work/nb")
        assert "AUTOGRADER_TEST_SECRET" not in env and env["HOME"] == "/work/nb"
        assert {k for k in env if not k.startswith(("TRAINLAB_", "NBGRADER_"))} <= allowed, sorted(env)
    assert "JPY_PARENT_PID" not in sandbox.kernel_env(_settings([], []), "/x")  # pid 1 in bwrap's namespace
    assert sandbox.kernel_env(dataclasses.replace(_settings([], []), mode="rlimit"), "/x")["JPY_PARENT_PID"] == "4242"


def test_resolve_mode_rejects_unknown_modes(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "bogus")
    with pytest.raises(AutograderError, match="unknown sandbox mode 'bogus'"):
        sandbox.resolve_mode(None)
    with pytest.raises(AutograderError, match=r"from --sandbox"):
        sandbox.resolve_mode("nope")


# ----------------------------------------------------------------------------------------- typed process data


def test_typed_process_data_round_trips_and_rejects_unknown_fields():
    limits = Limits(timeout_cell=7)
    settings = WorkerSettings(assignment="a", course_dir="/c", course_id="c", template_db="/t", files_dir="/f",
                              work_root="/w", jupyter_path="/j", kernel_name="k", notebooks=["nb"],
                              max_scores={"x": 2.0}, tests={"nb": {"x": "src"}}, limits=limits,
                              static=StaticContext(rules=[RuleSpec(cell="x", code=["f"], forbid=["*y"])]))
    assert from_json(WorkerSettings, to_json(settings)) == settings
    job = Job(student_id="s", files={"nb": "/p"}, extras=[("/e", "e")], timestamp="t", notes=["n"], hash="h")
    assert from_json(Job, to_json(job)) == job
    res = WorkerResult(student_id="s", status=Status.CRASHED, in_kernel={"x": (1.0, 2.0)})
    back = from_json(WorkerResult, to_json(res))
    assert back == res and back.status is Status.CRASHED and back.in_kernel["x"] == (1.0, 2.0)
    with pytest.raises(ValueError, match="unknown fields"):
        from_json(Job, json.dumps({"student_id": "s", "surprise": 1}))
    with pytest.raises(AutograderError, match="memory-mb must be a positive integer"):
        Limits(memory_mb=0).validate()


def test_every_limit_is_part_of_the_regrade_fingerprint():
    base = Limits()
    seen = {regrade_fingerprint("src", base, "bwrap")}
    for f in dataclasses.fields(Limits):
        changed = dataclasses.replace(base, **{f.name: getattr(base, f.name) + 1})
        seen.add(regrade_fingerprint("src", changed, "bwrap"))
    assert len(seen) == len(dataclasses.fields(Limits)) + 1
    assert regrade_fingerprint("src", base, "rlimit") not in seen
    assert regrade_fingerprint("other", base, "bwrap") not in seen


def test_one_cell_key_rule():
    assert cell_key(["nb"], "nb", "t1") == "t1"
    assert cell_key(["a", "b"], "a", "t1") == "a/t1"  # even when only notebook a has graded cells


# ----------------------------------------------------------------------------------------- record format


def _entry(key, value_json, **kw):
    return {"key": key, "value": value_json, "rtol": kw.get("rtol"), "atol": kw.get("atol"), "label": kw.get("label")}


def _encode(value):
    """Run the kernel-side recorder here (plain Python) and return the JSON it writes for `value`."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        phase = checks.hidden_phase(folder, "")
        namespace: dict = {}
        exec(phase.prelude, namespace)  # noqa: S102 - the grader's own prelude, in a test
        namespace["__autograder_record__"]("k", value)
        return json.loads(Path(phase.path).read_text())["value"]


def test_stand_ins_for_running_a_solution_by_hand():
    assert checks.record("k", [1.0], rtol=0.1, label="x") is None and checks.rules(code=["f"]) is None
    assert checks.raises(ValueError, int, "x") and not checks.raises(ValueError, int, "1")
    assert not checks.raises(ValueError, lambda: 1 / 0)
    with pytest.raises(ValueError, match="rtol must be a number >= 0"):
        checks.record("k", 1, rtol=-1)


def test_split_hidden_and_privatize():
    src = "a = 1\n### BEGIN HIDDEN TESTS\nrecord('k', a)\n### END HIDDEN TESTS\nb = 2"
    assert checks.split_hidden(src) == [(False, "a = 1"), (True, "record('k', a)"), (False, "b = 2")]
    code = ("record('x', 1)\nobj.record('y')\nf(record=2)\nprint('record(')  # record(\n"
            "ok = raises(ValueError, f)\nrules(code=['f'])\nrecorded = 3")
    assert checks.privatize(code) == ("__autograder_record__('x', 1)\nobj.record('y')\nf(record=2)\n"
                                      "print('record(')  # record(\n"
                                      "ok = __autograder_raises__(ValueError, f)\n__autograder_rules__(code=['f'])\n"
                                      "recorded = 3")


def test_records_round_trip_and_compare_without_revealing_the_reference():
    import numpy as np
    import torch

    t = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    v = checks.decode(_encode(t))
    assert v.kind == "tensor" and v.dtype == "float64" and np.array_equal(v.data, t.numpy())
    assert checks.decode(_encode([1, 2.5, "s", None, True, {"a": np.float32(1)}])).kind == "list"
    ref = checks.decode(_encode(t))
    assert checks.compare(ref, checks.decode(_encode(t + 1e-12)), 1e-9, 0) is None
    assert checks.compare(ref, checks.decode(_encode(t + 0.03)), 1e-9, 0) == "differs by up to 0.03"
    assert checks.compare(ref, checks.decode(_encode(t.float())), 1e-9, 0) == "has dtype float32 instead of float64"
    assert checks.compare(ref, checks.decode(_encode(t[0])), 1e-9, 0) == "has shape (2,), not the expected shape"
    assert checks.compare(ref, checks.decode(_encode(t.numpy())), 1e-9, 0) == "is a NumPy array, expected a tensor"
    nan = t.clone()
    nan[0, 0] = float("nan")
    assert "nan" in checks.compare(ref, checks.decode(_encode(nan)), 1e-9, 0)

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    assert checks.compare(ref, checks.decode(_encode(AlwaysEqual())), 1, 1) == \
        "is an object of type AlwaysEqual, expected a tensor"
    assert checks.compare(checks.decode(_encode([1.0, 2.0])), checks.decode(_encode([1.0, 2.5])), 1e-9, 0) == \
        "item 1: differs by 0.5"
    assert checks.compare(checks.decode(_encode(9)), checks.decode(_encode(9.0)), 0, 0) == "is a float, expected an int"
    assert checks.compare(checks.decode(_encode(True)), checks.decode(_encode(False)), 0, 0) == \
        "is False, not the expected value"


@pytest.mark.parametrize("bad", [
    {"t": "tensor", "dtype": "object", "shape": [], "b64": "gAN9cQAu"},  # a pickle, announced as an object array
    {"t": "pickle", "b64": "gAN9cQAu"},
    {"t": "tensor", "dtype": "float64", "shape": [3], "b64": "AAAA"},  # size does not match
    {"t": "array", "dtype": "float64", "shape": [-1], "b64": ""},
    {"t": "int", "v": "1" * 500},
    {"t": "float", "v": "__import__('os')"},
    "just a string",
])
def test_malformed_records_fail_their_check_and_are_never_unpickled(bad):
    with pytest.raises(checks.RecordError):
        checks.decode(bad)
    ref = [_entry("k", {"t": "float", "v": "1.0"}, label="the loss")]
    verdict = checks.judge_cell(ref, [_entry("k", bad)])
    assert not verdict.passed and verdict.message.startswith("the loss: the record is malformed")


def test_judge_cell_missing_duplicate_unexpected_and_tolerance_from_the_reference():
    ref = [_entry("a", {"t": "float", "v": "1.0"}, rtol=0.1, label="A"), _entry("b", {"t": "int", "v": "3"})]
    ok = checks.judge_cell(ref, [_entry("a", {"t": "float", "v": "1.05"}, rtol=0.0),
                                 _entry("b", {"t": "int", "v": "3"})])
    assert ok.passed and ok.checks == 2  # the student's own rtol=0 is ignored: the reference's 0.1 applies
    missing = checks.judge_cell(ref, [_entry("b", {"t": "int", "v": "3"})])
    assert not missing.passed and missing.message.startswith("A: was not recorded")
    assert "did not run: the visible tests" in checks.judge_cell(ref, [], started=False).message
    assert "stopped with an error before recording" in checks.judge_cell(ref, [], started=True).message
    dup = checks.judge_cell(ref, [_entry("a", {"t": "float", "v": "1.0"})] * 2 + [_entry("b", {"t": "int", "v": "3"})])
    assert dup.message == "A: was recorded more than once"
    extra = checks.judge_cell(ref, [_entry("a", {"t": "float", "v": "9.0"}), _entry("b", {"t": "int", "v": "4"}),
                                    _entry("zzz", {"t": "none"})])
    assert extra.failed == 2 and extra.message == "A: differs by 8 (and 1 more of 2 checks failed)"
    assert extra.unexpected == ["zzz"]


def test_collect_reads_only_its_own_plain_file_once(tmp_path):
    phase = checks.hidden_phase(str(tmp_path), "record('k', 1)")
    assert phase.source == "__autograder_record__('k', 1)" and phase.nonce in phase.path
    Path(phase.path).write_text(json.dumps({"nonce": phase.nonce, "key": "k", "value": {"t": "none"}}) + "\n"
                                + json.dumps({"nonce": "forged", "key": "k", "value": {"t": "none"}}) + "\nnot json\n")
    entries, problems, used = checks.collect(phase, 10_000)
    assert [e["key"] for e in entries] == ["k"] and len(problems) == 2 and used > 0
    assert not Path(phase.path).exists()
    secret = tmp_path / "secret"
    secret.write_text(json.dumps({"nonce": phase.nonce, "key": "k", "value": {"t": "none"}}))
    os.symlink(secret, phase.path)  # a planted link is not followed
    entries, problems, _ = checks.collect(phase, 10_000)
    assert entries == [] and problems and secret.exists()
    Path(phase.path).write_text("x" * 100)
    assert checks.collect(phase, 10)[1] == ["more than 10 bytes of records"]
    assert checks.stray_record_files(str(tmp_path)) == []


# ----------------------------------------------------------------------------------------- source rules


CONTEXT_NB = {"cells": [
    {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "setup", "locked": True, "grade": False}},
     "source": "import torch\nimport torch.nn.functional as F\ndef helper():\n    pass"},
    {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "ce", "solution": True, "grade": False}},
     "source": "def ce(x):\n    pass"},
    {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "t1", "grade": True, "points": 1}},
     "source": "assert True"},
    {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "t2", "grade": True, "points": 1}},
     "source": "assert True\n### BEGIN HIDDEN TESTS\nrules(code=['ce'], forbid=['*log_softmax'], "
               "forbid_for_task=['torch.*cross_entropy*', 'torch.*CrossEntropyLoss*'], task=['t1', 't2'], "
               "requires=['t1'])\n"
               "### END HIDDEN TESTS"},
]}


def _ctx():
    return rules.parse_context({"nb": CONTEXT_NB}, error=_raise)


def _raise(msg):
    raise AutograderError(msg)


def _analyse(code: str) -> dict:
    nb = copy.deepcopy(CONTEXT_NB)
    nb["cells"][1]["source"] = code
    return rules.analyse({"nb": nb}, _ctx())


def test_rules_are_read_from_the_instructors_hidden_block():
    ctx = _ctx()
    assert ctx.aliases == {"torch": "torch", "F": "torch.nn.functional"} and ctx.helpers == ["helper"]
    assert ctx.rules == [RuleSpec(cell="t2", code=["ce"], forbid=["*log_softmax"],
                                  forbid_for_task=["torch.*cross_entropy*", "torch.*CrossEntropyLoss*"],
                                  task=["t1", "t2"], requires=["t1"])]
    bad = copy.deepcopy(CONTEXT_NB)
    bad["cells"][3]["source"] = "### BEGIN HIDDEN TESTS\nrules(code=['ce'], requires=['nope'])\n### END HIDDEN TESTS"
    with pytest.raises(AutograderError, match="'nope', which is not a graded cell"):
        rules.parse_context({"nb": bad}, error=_raise)
    bad["cells"][3]["source"] = "### BEGIN HIDDEN TESTS\nrules(code=[f()])\n### END HIDDEN TESTS"
    with pytest.raises(AutograderError, match="literal list of strings"):
        rules.parse_context({"nb": bad}, error=_raise)


@pytest.mark.parametrize(("code", "tier", "name"), [
    ("def ce(x, y):\n    return F.cross_entropy(x, y)", "task", "torch.nn.functional.cross_entropy"),
    ("import torch.nn.functional as G\ndef ce(x, y):\n    return G.cross_entropy(x, y)", "task",
     "torch.nn.functional.cross_entropy"),
    ("from torch.nn.functional import cross_entropy as c\ndef ce(x, y):\n    return c(x, y)", "task",
     "torch.nn.functional.cross_entropy"),
    ("def ce(x, y):\n    import torch.nn as nn\n    return nn.CrossEntropyLoss()(x, y)", "task",
     "torch.nn.CrossEntropyLoss"),
    ("def ce(x, y):\n    return -torch._log_softmax(x, 1, False)[0, 0]", "cell", "torch._log_softmax"),
    ("def ce(x, y):\n    return -x.log_softmax(1)[0, 0]", "cell", "<expr>.log_softmax"),
    ("def ce(x, y):\n    return -torch.special.log_softmax(x, 1)[0, 0]", "cell", "torch.special.log_softmax"),
    ("def ce(x, y):\n    return getattr(torch, 'log_softmax')(x, 1)[0, 0]", "cell", "torch.log_softmax"),
    ("ls = torch.log_softmax\ndef _inner(x):\n    return ls(x, 1)\ndef ce(x, y):\n    return _inner(x)[0, 0]",
     "cell", "torch.log_softmax"),
    ("ce = F.cross_entropy", "task", "torch.nn.functional.cross_entropy"),
    ("from torch.nn.functional import *\ndef ce(x, y):\n    return cross_entropy(x, y)", "task",
     "torch.nn.functional.cross_entropy"),
])
def test_forbidden_calls_are_found_through_aliases_and_helpers(code, tier, name):
    found = _analyse(code)
    assert any(v["tier"] == tier and v["name"] == name for v in found["violations"]), found


def test_allowed_code_and_other_functions_are_not_violations():
    ok = "def ce(x, y):\n    m = x.max(1, keepdim=True).values\n    return (m + (x - m).exp().sum(1).log()).mean()\n" \
         "def check(x, y):\n    return F.cross_entropy(x, y)  # not reachable from ce: fine"
    found = _analyse(ok)
    assert found["violations"] == [] and found["suspicious"] == []


@pytest.mark.parametrize(("code", "what"), [
    ("def ce(x, y):\n    return getattr(F, 'cross_' + 'entropy')(x, y)", "getattr with a computed attribute name"),
    ("def ce(x, y):\n    return eval('F.cross_entropy')(x, y)", "uses eval"),
    ("import importlib\nce = 1", "imports importlib"),
    ("torch.allclose = lambda *a, **k: True", "patches torch.allclose"),
    ("def helper():\n    return 1", "redefines the test helper `helper`"),
    ("import sys\nsys.modules['torch'] = None", "uses sys.modules"),
    ("get_ipython().input_transformers_cleanup.append(print)", "uses get_ipython"),
    ("class A:\n    def __eq__(self, other):\n        return True", "defines __eq__"),
    ("open('.autograder-x.jsonl', 'w')", "refers to the grader's internals"),
    ("import pickle", "imports pickle"),
    ("from torch.nn.functional import *", "imports * from torch.nn.functional (names it brings in are resolved to "
                                          "that module)"),
])
def test_suspicious_constructs_are_flagged(code, what):
    found = _analyse(code)
    assert any(s["what"] == what for s in found["suspicious"]), found["suspicious"]


# ----------------------------------------------------------------------------------------- scoring


def _scored(in_kernel, records, static=None):
    reference = scoring.Reference("fp", {
        "t1": [_entry("v", {"t": "float", "v": "1.0"})], "t2": [_entry("w", {"t": "float", "v": "2.0"})]})
    result = WorkerResult(student_id="s", status=Status.GRADED, in_kernel=in_kernel, static=static or {})
    return scoring.score(result, records, reference, _ctx(), {"t1": 1.0, "t2": 1.0})


GOOD = {"t1": {"entries": [_entry("v", {"t": "float", "v": "1.0"})], "problems": []},
        "t2": {"entries": [_entry("w", {"t": "float", "v": "2.0"})], "problems": []}}


def test_trusted_scores_rules_requires_and_review_flags():
    full = {"t1": (1.0, 1.0), "t2": (1.0, 1.0)}
    s = _scored(full, GOOD)
    assert s.cells == {"t1": (1.0, 1.0), "t2": (1.0, 1.0)} and not s.review
    # no records at all: trusted 0 although the kernel said 2/2 -> flagged
    s = _scored(full, {})
    assert s.cells == {"t1": (0.0, 1.0), "t2": (0.0, 1.0)} and s.review_cells == ["t1", "t2"]
    assert "the in-kernel tests passed but the trusted checks failed for t1, t2" in s.review[0]
    # a cell-tier violation costs the rule's cell; a task-tier one every cell of the task
    v = {"violations": [{"rule": 0, "tier": "cell", "name": "torch.log_softmax", "where": "cell 'ce', line 2"}]}
    assert _scored(full, GOOD, v).cells == {"t1": (1.0, 1.0), "t2": (0.0, 1.0)}
    v = {"violations": [{"rule": 0, "tier": "task", "name": "torch.nn.functional.cross_entropy", "where": "x"}]}
    s = _scored(full, GOOD, v)
    assert s.cells == {"t1": (0.0, 1.0), "t2": (0.0, 1.0)} and "every cell of the task scores 0" in s.notes[0]
    assert not s.review
    # requires: t2 scores only together with t1
    broken = dict(GOOD, t1={"entries": [_entry("v", {"t": "float", "v": "5.0"})], "problems": []})
    s = _scored({"t1": (0.0, 1.0), "t2": (1.0, 1.0)}, broken)
    assert s.cells == {"t1": (0.0, 1.0), "t2": (0.0, 1.0)} and "working implementation" in s.messages["t2"]
    # suspicious code flags the submission, keeps the trusted score, marks the awarded cells for review
    s = _scored(full, GOOD, {"suspicious": [{"what": "uses eval", "where": "cell 'ce', line 1"}]})
    assert s.cells == {"t1": (1.0, 1.0), "t2": (1.0, 1.0)} and s.review_cells == ["t1", "t2"]
    # an analysis that failed cannot clear the rules: the rules' cells score 0, flagged
    s = _scored(full, GOOD, {"failed": "the submitted source could not be analysed (RecursionError)"})
    assert s.cells == {"t1": (0.0, 1.0), "t2": (0.0, 1.0)} and s.review
