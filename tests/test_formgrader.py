"""Formgrader after command-line grading: what nbgrader's own API (the one formgrader's pages call) reports after
`python -m autograder grade`, checked against what an instructor expects to continue with.

One course copy with an nbgrader exchange (the assignment released through nbgrader's own API, so formgrader
says "released"), graded from a flat LMS-style folder plus one exchange-style submission (nbgrader's
`submitted/` layout with timestamp.txt and submission_secret.txt), with a class roster. Checked: submission
counts, status, student names, averages and the manual-grading list agree, an invalid submission is in none
of them, and formgrader's Generate/Release Feedback work on CLI-graded submissions without showing hidden tests.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import AutograderError, load_course, patch_nbgrader
from autograder.grading import _Merger, grade_submissions, read_roster
from autograder.model import Job
from autograder.release import release_assignment

FIXTURE = Path(__file__).parent / "fixtures" / "autograder" / "course"
GOOD_SQUARE = "def square(x):\n    return x * x"
GOOD_MEAN = "def mean(xs):\n    return sum(xs) / len(xs)"
ROSTER = "id,first_name,last_name,email\nalice,Ada,Lovelace,ada@example.org\nbob,,,bob@example.org\n" \
         "carol,Carol,Shannon,\n"
SCORES = {"alice": 5.0, "bob": 2.0, "dave": 3.0, "erin": 5.0}  # the stored submissions
SECRET = "0123456789abcdef"


def _make(nb: dict, square: str = GOOD_SQUARE, mean: str = GOOD_MEAN) -> dict:
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in ("square", "mean"):
            cell["source"] = square if gid == "square" else mean
    return nb


def api_for(course: Path, exchange: Path):
    """nbgrader's API as formgrader builds it: the course's nbgrader_config.py, the given exchange."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    patch_nbgrader()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.Exchange.root = str(exchange)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def grade_cli(course: Path, subs: Path, *extra: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "fixture", str(subs), "--jobs", "2",
                           "--timeout-cell", "30", "--memory-mb", "1536", "--course-dir", str(course), *extra],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    base = tmp_path_factory.mktemp("formgrader")
    course = base / "course"
    shutil.copytree(FIXTURE, course)
    with (course / "nbgrader_config.py").open("a") as fh:  # as the repository's nbgrader_config.py does
        fh.write("\nfrom autograder.feedback import FEEDBACK_PREPROCESSORS\n"
                 "c.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS\n")
    exchange = base / "exchange"
    exchange.mkdir()
    release = release_assignment("fixture", course_dir=course)
    nb = json.loads((release / "fixture.ipynb").read_text())
    api = api_for(course, exchange)
    assert api.get_assignment("fixture")["status"] == "draft"
    result = api.release_assignment("fixture")  # nbgrader's own release to the exchange (formgrader's button)
    assert result["success"], result
    subs = base / "lms"
    subs.mkdir()
    (subs / "alice.ipynb").write_text(json.dumps(_make(nb)))
    (subs / "bob.ipynb").write_text(json.dumps(_make(nb, mean="def mean(xs):\n    return 0")))
    (subs / "dave.ipynb").write_text(json.dumps(_make(nb, square="def square(x):\n    return abs(x) * x")))
    (subs / "broken.ipynb").write_text(json.dumps(_make(nb))[:300])  # invalid: not notebook JSON
    erin = subs / "erin" / "fixture"  # came through the exchange: nbgrader's submitted/ layout
    erin.mkdir(parents=True)
    (erin / "fixture.ipynb").write_text(json.dumps(_make(nb)))
    (erin / "timestamp.txt").write_text("2025-01-02 03:04:05.000000 UTC")
    (erin / "submission_secret.txt").write_text(SECRET)
    (base / "roster.csv").write_text(ROSTER)
    out = grade_cli(course, subs, "--roster", str(base / "roster.csv"))
    assert "5 submissions: 4 graded, 1 invalid" in out, out
    return course, exchange, subs


@pytest.mark.slow
def test_manage_assignments_shows_the_submissions_status_and_feedback_buttons(course):
    root, exchange, _ = course
    api = api_for(root, exchange)
    a = api.get_assignment("fixture")
    assert a["status"] == "released" and a["releaseable"]  # from the exchange, as with nbgrader alone
    assert a["num_submissions"] == len(SCORES)  # > 0: formgrader shows Generate/Release Feedback
    assert a["average_score"] == pytest.approx(sum(SCORES.values()) / len(SCORES))  # the invalid one is out
    assert [x["name"] for x in api.get_assignments()] == ["fixture", "twonb"]
    assert api.get_submitted_students("fixture") == set(SCORES)
    assert api.get_autograded_students("fixture") == set(SCORES)  # timestamps agree with the gradebook
    # without an exchange (an LMS course) nbgrader calls every assignment a draft; the counts do not change
    local = api_for(root, root / "no-exchange")
    b = local.get_assignment("fixture")
    assert (b["status"], b["releaseable"], b["num_submissions"]) == ("draft", False, len(SCORES))


@pytest.mark.slow
def test_submissions_names_scores_and_manual_grading_agree(course):
    root, exchange, _ = course
    api = api_for(root, exchange)
    subs = {s["student"]: s for s in api.get_submissions("fixture")}
    assert set(subs) == set(SCORES)
    for sid, s in subs.items():
        assert s["autograded"] and s["submitted"] and s["score"] == SCORES[sid], s
    names = {sid: (s["last_name"], s["first_name"]) for sid, s in subs.items()}
    assert names == {"alice": ("Lovelace", "Ada"), "bob": ("bob", ""), "dave": ("dave", ""), "erin": ("erin", "")}
    manual = api.get_notebook_submission_indices("fixture", "fixture")  # formgrader's manual-grading list
    assert len(manual) == len(SCORES) == len(api.get_notebook_submissions("fixture", "fixture"))
    students = {s["id"]: s for s in api.get_students()}
    assert set(students) == {"alice", "bob", "carol", "dave", "erin", "broken"}  # carol: enrolled, no submission
    assert all(s["last_name"] and s["first_name"] is not None for s in students.values()), students
    assert api.get_student("carol")["last_name"] == "Shannon" and api.get_student("bob")["email"] == "bob@example.org"
    broken = api.get_submission("fixture", "broken")
    assert not broken["submitted"] and not broken["autograded"]  # "no submission", in every view
    with api.gradebook as gb:
        assert gb.find_assignment("fixture").num_submissions == len(SCORES)
        assert gb.find_submission("fixture", "erin").timestamp is not None
    assert not (root / "submitted" / "broken").exists() and not (root / "autograded" / "broken").exists()


@pytest.mark.slow
def test_the_export_still_reports_the_invalid_submission(course):
    from autograder.export import export_csv

    root, _, _ = course
    out = root / "grades.csv"
    export_csv(out, course_dir=root, assignment="fixture")
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert rows["broken"]["status"] == "invalid" and rows["broken"]["total"] == "0"
    assert "not a valid notebook" in rows["broken"]["reason"]
    assert rows["carol"]["status"] == "missing" and rows["alice"]["total"] == "5"


@pytest.mark.slow
def test_formgraders_generate_and_release_feedback_work_and_hide_hidden_tests(course):
    root, exchange, _ = course
    api = api_for(root, exchange)
    result = api.generate_feedback("fixture")
    assert result["success"], result
    pages = sorted((root / "feedback").glob("*/fixture/fixture.html"))
    assert [p.parent.parent.name for p in pages] == sorted(SCORES)
    for page in pages:
        text = page.read_text()
        assert "hidden-check" not in text and "BEGIN HIDDEN" not in text and "record(" not in text, page
        assert "[autograder]" in text, page
    assert "square of a negative number" in (root / "feedback/dave/fixture/fixture.html").read_text()
    # erin submitted through the exchange: her feedback can be released there (formgrader's button)
    result = api.release_feedback("fixture", "erin")
    assert result["success"], result
    released = list((exchange / "fixture-course" / "feedback").glob("*.html"))
    assert len(released) == 1 and "hidden-check" not in released[0].read_text()


@pytest.mark.slow
def test_a_submission_that_becomes_invalid_leaves_every_view_and_a_fixed_one_returns(course, tmp_path):
    root, exchange, subs = course
    again = tmp_path / "again"
    shutil.copytree(subs, again)
    good = (again / "alice.ipynb").read_text()
    (again / "alice.ipynb").write_text(good[:200])
    (again / "broken.ipynb").write_text(good)
    grade_cli(root, again)
    api = api_for(root, exchange)
    assert api.get_submitted_students("fixture") == set(SCORES) - {"alice"} | {"broken"}
    assert {s["student"] for s in api.get_submissions("fixture")} == set(SCORES) - {"alice"} | {"broken"}
    assert len(api.get_notebook_submission_indices("fixture", "fixture")) == len(SCORES)
    assert api.get_student("alice")["last_name"] == "Lovelace"  # names survive a run without the roster
    assert api.get_student("broken")["last_name"] == "broken"


def test_roster_format_and_errors(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("\ufeffStudent_ID,First_Name,last_name\nx1,Ann,Lee\n\n y2 ,,\n")
    assert read_roster(path) == {"x1": {"first_name": "Ann", "last_name": "Lee"},
                                 "y2": {"first_name": None, "last_name": None}}
    path.write_text("name,email\nAnn,a@b\n")
    with pytest.raises(AutograderError, match="has no 'id' column"):
        read_roster(path)
    path.write_text("id\nbad id!\n")
    with pytest.raises(AutograderError, match="line 2: student id 'bad id!'"):
        read_roster(path)
    with pytest.raises(AutograderError, match="cannot read the roster"):
        grade_submissions("fixture", tmp_path, course_dir=FIXTURE, roster=tmp_path / "missing.csv")


def test_grading_the_courses_own_submitted_folder_leaves_it_alone(tmp_path):
    course_dir = tmp_path / "course"
    shutil.copytree(FIXTURE, course_dir)
    course = load_course(course_dir)
    patch_nbgrader()
    folder = course_dir / "submitted" / "ann" / "fixture"
    folder.mkdir(parents=True)
    (folder / "fixture.ipynb").write_text("{}")
    (folder / "notes.txt").write_text("mine")
    merger = _Merger(course, "fixture", {}, None, ["fixture"], submissions=course_dir / "submitted")
    try:
        merger._copy_submitted(Job(student_id="ann", files={"fixture": str(folder / "fixture.ipynb")}), True)
        merger._forget("ann")
    finally:
        merger.close()
    assert sorted(p.name for p in folder.iterdir()) == ["fixture.ipynb", "notes.txt"]
