"""Feedback (autograder/feedback.py): a student sees their own errors in full, never the hidden tests.

The rule is decided by *where an error was raised*, not by whether an output resembles hidden code: the grader
runs a test cell's visible part and each hidden block as separate requests, so the outputs of the visible part
(an error in the student's function, a visible assertion) are shown as in Jupyter, a hidden block's error becomes
a notice plus the trusted verdict, and no verbatim hidden line survives anywhere (a student's code can print the
kernel's input history). Graded for real (a small assignment written here, and the untouched release of
assignment 1) in temporary course copies; the fast tests cover the rules on hand-made notebooks.
"""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder import rules
from autograder.course import AutograderError
from autograder.feedback import (
    FEEDBACK_PREPROCESSORS,
    REMOVED_LINE,
    Redactor,
    StripHiddenTests,
    generate_feedback,
    hidden_lines,
    is_secret,
    raising_line,
)
from autograder.grading import grade_submissions
from autograder.release import release_assignment

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "autograder" / "course"
NOTICE = "a hidden test of this cell stopped with"

# The hidden block repeats the visible assertion (as assignment 1's do), keeps hidden values and a message.
TEST_SQUARE = '''# Test (2 points): square
assert square(3) == 9, "square(3) should be 9"
print("visible tests passed")
### BEGIN HIDDEN TESTS
_h_secret_inputs = [31337, -27182]
record("square/3", square(3), label="square(3)")
record("square/neg", square(_h_secret_inputs[1]), label="square of a negative number")
assert square(3) == 9, "square(3) should be 9"
for _h_x in _h_secret_inputs:
    assert square(_h_x) == _h_x * _h_x, "hidden-assert-message-zeta"
### END HIDDEN TESTS'''
TEST_MEAN = '''# Test (3 points): mean
assert mean([1, 2, 3]) == 2, "mean([1, 2, 3]) should be 2"
### BEGIN HIDDEN TESTS
record("mean/floats", mean([2.0, 5.0, 0.125]), rtol=1e-12, label="mean of three floats")
_h_check = mean([4.0, 4.0])
### END HIDDEN TESTS'''
SECRETS = ["31337", "27182", "hidden-assert-message-zeta", "_h_secret_inputs", "_h_check", "__autograder_record__",
           'record("square/neg"', "mean([2.0, 5.0, 0.125])"]

GOOD_SQUARE = "def square(x):\n    return x * x"
GOOD_MEAN = "def mean(xs):\n    return sum(xs) / len(xs)"
EXFILTRATE = GOOD_MEAN + '''
import html as _html
from IPython.display import HTML, display
_history = "\\n".join(In)  # every request the kernel ran so far, hidden blocks included
print(_history)
display(HTML("<pre>" + _html.escape(_history) + "</pre>"))
print(repr(_history))
raise RuntimeError(_history)'''
SUBMISSIONS = {
    "correct": {},
    # raised in the student's own function, called from the visible part
    "student_error": {"square": "def square(x):\n    raise ValueError(f'my own message for {x}')"},
    # the visible assertion fails (the hidden block repeats that line)
    "visible_assert": {"square": "def square(x):\n    return x + x"},
    # passes the visible part, raises inside the hidden block (the message would show a hidden input)
    "hidden_error": {"square": "def square(x):\n    if x < 0:\n        raise ValueError(f'negative input {x}')\n"
                               "    return x * x"},
    # prints, displays and raises the kernel's input history (the hidden blocks of test_square)
    "exfiltrate": {"mean": EXFILTRATE},
}


def _cell(source: str, grade_id: str, *, grade=False, solution=False, points=0):
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return new_code_cell(source, metadata={"nbgrader": meta})


def write_assignment(course: Path) -> None:
    """A two-task assignment ``fb`` in the course's solutions/."""
    nb = new_notebook(cells=[
        new_markdown_cell("# Feedback fixture\nImplement `square` and `mean`."),
        _cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION", "square",
              solution=True),
        _cell(TEST_SQUARE, "test_square", grade=True, points=2),
        _cell("def mean(xs):\n    ### BEGIN SOLUTION\n    return sum(xs) / len(xs)\n    ### END SOLUTION", "mean",
              solution=True),
        _cell(TEST_MEAN, "test_mean", grade=True, points=3),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (course / "solutions" / "fb").mkdir(parents=True)
    nbformat.write(nb, course / "solutions" / "fb" / "fb.ipynb")


def _student(release: dict, answers: dict) -> dict:
    nb = copy.deepcopy(release)
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in ("square", "mean"):
            cell["source"] = answers.get(gid, GOOD_SQUARE if gid == "square" else GOOD_MEAN)
    return nb


def text_of(page: str) -> str:
    """What a reader of an HTML page sees: tags removed, entities decoded, whitespace collapsed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


def shown(nb_path: Path) -> dict[str, list]:
    """The outputs of each graded cell as the feedback shows them (StripHiddenTests on the autograded notebook)."""
    nb = nbformat.read(nb_path, as_version=4)
    nb, _ = StripHiddenTests().preprocess(nb, {})
    return {c.metadata.get("nbgrader", {}).get("grade_id", f"cell{i}"): c.outputs for i, c in enumerate(nb.cells)
            if c.cell_type == "code"}


def _texts(outputs: list) -> str:
    parts = []
    for o in outputs:
        parts += [str(o.get("text", "")), str(o.get("evalue", "")), *map(str, o.get("traceback", []))]
        parts += [str(v) for v in o.get("data", {}).values()]
    return " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", "\n".join(parts)).split())  # as read: wrapping aside


def _errors(outputs: list) -> list:
    return [o for o in outputs if o.get("output_type") == "error"]


# ----------------------------------------------------------------------------------------- rules, by hand


def test_hidden_lines_as_written_and_as_sent_and_what_counts_as_secret():
    lines = hidden_lines(TEST_MEAN)
    assert 'record("mean/floats", mean([2.0, 5.0, 0.125]), rtol=1e-12, label="mean of three floats")' in lines
    assert '__autograder_record__("mean/floats", mean([2.0, 5.0, 0.125]), rtol=1e-12, ' \
           'label="mean of three floats")' in lines
    assert "assert mean([1, 2, 3]) == 2, \"mean([1, 2, 3]) should be 2\"" not in lines  # visible part
    assert is_secret("_h_check = mean([4.0, 4.0])") and is_secret("x = 3")
    assert not any(is_secret(s) for s in ("", ")", "]:", "else:", "pass", "return"))


def test_redactor_removes_hidden_lines_from_every_kind_of_output_and_nothing_else():
    secret = '_h_secret_inputs = [31337, -27182]'
    red = Redactor({secret, "x = 3"}, visible={"y = f(x)"})
    stream = new_output("stream", name="stdout", text=f"before\n{secret}\nx = 3\nx = 30\nafter\n")
    assert red.output(stream) == 2
    assert stream.text == f"before\n{REMOVED_LINE}\n{REMOVED_LINE}\nx = 30\nafter\n"
    tb = ["\x1b[0;31mValueError\x1b[0m  Traceback", f"Cell \x1b[0;32mIn[7], line 2\x1b[0m\n      1 a = 1\n"
          f"\x1b[0;32m----> 2\x1b[0m {secret}\n", "ValueError: boom"]
    err = new_output("error", ename="ValueError", evalue=f"look: {secret}", traceback=tb)
    assert red.output(err) == 2
    assert secret not in _texts([err]) and "a = 1" in _texts([err]) and "ValueError: boom" in _texts([err])
    disp = new_output("display_data", data={"text/html": f"<pre>{html.escape(secret)}</pre>\n<b>ok</b>",
                                            "text/plain": repr("a\n" + secret + "\nb")})
    assert red.output(disp) == 2
    assert "31337" not in str(disp.data) and "<b>ok</b>" in disp.data["text/html"]
    # a hidden line that is part of a visible line is matched only as a whole line, never inside another
    red = Redactor({"f(x) with a long argument"}, visible={"y = f(x) with a long argument"})
    mine = new_output("stream", name="stdout", text="----> 3 y = f(x) with a long argument\n")
    assert red.output(mine) == 0


def test_raising_line_is_the_request_frames_line():
    tb = ["-----\nNameError  Traceback (most recent call last)",
          "Cell In[3], line 4\n      2 a = 1\n      3 b = 2\n----> 4 c = d\n      5 e = 3\n",
          "Cell In[2], line 2, in f()\n----> 2 raise X\n", "NameError: name 'd' is not defined"]
    assert raising_line(tb) == 4
    assert raising_line(["<ipython-input-5-abc> in <module>\n      1 x\n----> 2 y\n"]) == 2
    assert raising_line(["CellTimeoutError: cell 'x' exceeded the time limit"]) is None


def _legacy_nb(traceback_line: int) -> nbformat.NotebookNode:
    """A test cell autograded in one request (before visible and hidden parts ran separately)."""
    source = TEST_SQUARE  # lines 1-3 visible, 4 marker, 5-10 hidden, 11 marker
    line = source.split("\n")[traceback_line - 1]
    tb = ["------\nAssertionError  Traceback (most recent call last)",
          f"Cell In[4], line {traceback_line}\n      1 # Test (2 points): square\n----> {traceback_line} {line}\n",
          "AssertionError: hidden-assert-message-zeta" if traceback_line > 4 else
          "AssertionError: square(3) should be 9"]
    cell = _cell(source, "test_square", grade=True, points=2)
    cell.outputs = [new_output("stream", name="stdout", text="printed by someone\n"),
                    new_output("error", ename="AssertionError", evalue="", traceback=tb)]
    cell.metadata["autograder"] = {"trusted": {"score": 0, "points": 2, "checked": True, "message": "m"}}
    return new_notebook(cells=[_cell(GOOD_SQUARE, "square", solution=True), cell])


def test_legacy_notebooks_attribute_an_error_by_the_line_that_raised_it():
    visible = shown_nb(_legacy_nb(2))["test_square"]
    assert "AssertionError: square(3) should be 9" in _texts(visible) and NOTICE not in _texts(visible)
    hidden = shown_nb(_legacy_nb(10))["test_square"]
    assert not _errors(hidden) and NOTICE in _texts(hidden)
    assert "zeta" not in _texts(hidden) and "printed by someone" not in _texts(hidden)  # prints cannot be attributed
    assert "[autograder] 0 / 2 points: m" in _texts(hidden)


def shown_nb(nb) -> dict[str, list]:
    nb, _ = StripHiddenTests().preprocess(copy.deepcopy(nb), {})
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c.outputs for c in nb.cells if c.cell_type == "code"}


def test_request_split_notebooks_show_the_visible_outputs_and_a_notice_for_a_hidden_error():
    cell = _cell(TEST_SQUARE, "test_square", grade=True, points=2)
    cell.outputs = [new_output("stream", name="stdout", text="visible tests passed\n"),
                    new_output("stream", name="stdout", text="hidden print 31337\n"),
                    new_output("error", ename="ValueError", evalue="negative input -27182",
                               traceback=["ValueError: negative input -27182"])]
    cell.metadata["autograder"] = {"visible_outputs": 1, "trusted": {"score": 0, "points": 2, "checked": True,
                                                                     "message": "square of a negative number: "
                                                                                "was not recorded"}}
    out = _texts(shown_nb(new_notebook(cells=[cell]))["test_square"])
    assert "visible tests passed" in out and "a hidden test of this cell stopped with a ValueError" in out
    assert "31337" not in out and "27182" not in out and "square of a negative number: was not recorded" in out
    # the class name of an error the student's code made up is not shown (it could carry hidden values)
    cell.outputs[2] = new_output("error", ename="Leak_31337", evalue="", traceback=["Leak_31337"])
    out = _texts(shown_nb(new_notebook(cells=[cell]))["test_square"])
    assert "stopped with an error;" in out and "31337" not in out


def test_formgraders_feedback_uses_the_same_preprocessors():
    """nbgrader's own GenerateFeedback (formgrader's button) shows hidden tests; the course config replaces it."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert list(config.GenerateFeedback.preprocessors) == FEEDBACK_PREPROCESSORS
    assert StripHiddenTests in FEEDBACK_PREPROCESSORS


def test_assignment01_setup_imports_forbid_and_redefining_it_is_still_flagged():
    source = json.loads((REPO / "solutions/01-optimizers/optimizers.ipynb").read_text())
    setup = "".join(source["cells"][1]["source"])
    assert re.search(r"^from trainlab\.checking import .*\bforbid\b", setup, flags=re.M) and "def forbid" not in setup

    def fail(msg):
        raise AutograderError(msg)

    ctx = rules.parse_context({"optimizers": source}, error=fail)
    assert {"forbid", "make_problem", "compare_with_torch"} <= set(ctx.helpers)
    student = copy.deepcopy(source)
    for cell in student["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "cross_entropy":
            cell["source"] = "import contextlib\n@contextlib.contextmanager\ndef forbid(*names):\n    yield\n"
    found = rules.analyse({"optimizers": student}, ctx)
    assert any(s["what"] == "redefines the test helper `forbid`" for s in found["suspicious"]), found
    honest = rules.analyse({"optimizers": source}, ctx)
    assert not any("forbid" in s["what"] for s in honest["suspicious"]), honest


def test_assignment01_tells_what_run_all_and_validate_really_do():
    for folder in ("solutions", "assignments"):
        nb = json.loads((REPO / folder / "01-optimizers/optimizers.ipynb").read_text())
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert "Restart & Run All" not in text, folder
        assert text.count("*Kernel → Restart Kernel and Run All Cells…*") == 2, folder
        assert text.count("stops at the first failing cell") + text.count("stops\nat the first failing cell") == 2
        assert text.count("*Validate* button (toolbar) runs everything and lists every failing test") == 2, folder


# ----------------------------------------------------------------------------------------- graded for real


@pytest.fixture(scope="module")
def graded_fb(tmp_path_factory):
    base = tmp_path_factory.mktemp("fb")
    course = base / "course"
    shutil.copytree(FIXTURE, course)
    write_assignment(course)
    release = json.loads((release_assignment("fb", course_dir=course) / "fb.ipynb").read_text())
    subs = base / "subs"
    subs.mkdir()
    for sid, answers in SUBMISSIONS.items():
        (subs / f"{sid}.ipynb").write_text(json.dumps(_student(release, answers)))
    results = {r.student_id: r for r in grade_submissions("fb", subs, course_dir=course, jobs=2, timeout_cell=30,
                                                          memory_mb=1536)}
    files = generate_feedback("fb", course_dir=course)
    return course, results, files


@pytest.mark.slow
def test_scores_are_what_each_submission_earns(graded_fb):
    _, results, files = graded_fb
    got = {sid: (r.status, r.score) for sid, r in results.items()}
    assert got == {"correct": ("graded", 5), "student_error": ("graded", 3), "visible_assert": ("graded", 3),
                   "hidden_error": ("graded", 3), "exfiltrate": ("graded", 5)}, results
    assert len(files) == len(SUBMISSIONS)


@pytest.mark.slow
def test_no_hidden_line_or_value_in_any_feedback(graded_fb):
    course, _, files = graded_fb
    for f in files:
        page = text_of(f.read_text())
        for secret in SECRETS:
            assert secret not in page, (f.parent.parent.name, secret)
        assert "BEGIN HIDDEN" not in page and "[autograder]" in page


@pytest.mark.slow
def test_an_error_in_the_students_code_called_from_the_visible_part_is_shown_in_full(graded_fb):
    course, results, _ = graded_fb
    out = shown(course / "autograded/student_error/fb/fb.ipynb")["test_square"]
    (err,) = _errors(out)
    text = _texts(out)
    assert err.ename == "ValueError" and "my own message for 3" in text
    assert "raise ValueError(f'my own message for {x}')" in text  # the student's frame
    assert 'assert square(3) == 9, "square(3) should be 9"' in text  # the visible line that called it
    assert NOTICE not in text and REMOVED_LINE not in text
    assert "[autograder] 0 / 2 points: its hidden checks did not run" in text
    page = text_of((course / "feedback/student_error/fb/fb.html").read_text())
    assert "ValueError: my own message for 3" in page and NOTICE not in page


@pytest.mark.slow
def test_a_failing_visible_assertion_is_shown_with_its_message(graded_fb):
    course, _, _ = graded_fb
    out = shown(course / "autograded/visible_assert/fb/fb.ipynb")["test_square"]
    (err,) = _errors(out)
    text = _texts(out)
    assert err.ename == "AssertionError" and "square(3) should be 9" in err.evalue
    assert NOTICE not in text and REMOVED_LINE not in text
    assert not any("visible tests passed" in str(o.get("text", "")) for o in out)  # it stopped at the assert
    page = text_of((course / "feedback/visible_assert/fb/fb.html").read_text())
    assert "AssertionError: square(3) should be 9" in page


@pytest.mark.slow
def test_an_error_in_the_hidden_part_is_a_notice_and_the_trusted_verdict(graded_fb):
    course, results, _ = graded_fb
    raw = (course / "autograded/hidden_error/fb/fb.ipynb").read_text()
    assert "negative input -27182" in raw  # the instructor's copy keeps what the hidden block raised
    out = shown(course / "autograded/hidden_error/fb/fb.ipynb")
    text = _texts(out["test_square"])
    assert not _errors(out["test_square"]) and "visible tests passed" in text
    assert "a hidden test of this cell stopped with a ValueError; its code and output are not shown" in text
    assert "[autograder] 0 / 2 points: square of a negative number: was not recorded" in text
    assert "27182" not in text and "negative input" not in text
    assert "[autograder] 3 / 3 points: all hidden checks passed" in _texts(out["test_mean"])
    page = text_of((course / "feedback/hidden_error/fb/fb.html").read_text())
    assert "stopped with a ValueError" in page and "negative input -27182" not in page


@pytest.mark.slow
def test_printing_the_kernels_history_shows_no_hidden_line(graded_fb):
    course, results, _ = graded_fb
    raw = (course / "autograded/exfiltrate/fb/fb.ipynb").read_text()
    assert "_h_secret_inputs = [31337, -27182]" in raw  # the attack did print the hidden source
    out = shown(course / "autograded/exfiltrate/fb/fb.ipynb")["mean"]
    text = _texts(out)
    for secret in SECRETS:
        assert secret not in text, secret
    assert REMOVED_LINE in text and "output removed by the autograder" in text and "of hidden test code]" in text
    assert "RuntimeError" in text  # the student's own error is still there, less the hidden lines
    assert results["exfiltrate"].cells["test_square"] == (2.0, 2.0)


@pytest.mark.slow
def test_untouched_assignment01_feedback_shows_the_students_notimplementederror(tmp_path):
    """The release handed in as it is: every test cell's feedback is the NotImplementedError raised in the
    student's own cell, called from the visible part, never "a hidden test failed"."""
    course = tmp_path / "course"
    for folder in ("solutions", "assignments"):
        shutil.copytree(REPO / folder / "01-optimizers", course / folder / "01-optimizers")
    shutil.copy(REPO / "nbgrader_config.py", course)
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(REPO / "assignments/01-optimizers/optimizers.ipynb", subs / "untouched.ipynb")
    (result,) = grade_submissions("01-optimizers", subs, course_dir=course, jobs=1)
    assert (result.status, result.score) == ("graded", 0), result
    (page,) = generate_feedback("01-optimizers", course_dir=course)
    out = shown(course / "autograded/untouched/01-optimizers/optimizers.ipynb")
    tests = [gid for gid in out if gid.startswith("test_")]
    assert len(tests) == 19
    for gid in tests:
        text = _texts(out[gid])
        (err,) = _errors(out[gid])
        assert err.ename == "NotImplementedError", gid
        assert "# YOUR CODE HERE" in text and "raise NotImplementedError()" in text, gid  # the student's cell
        assert NOTICE not in text and REMOVED_LINE not in text, gid
        assert text.rstrip().endswith("the visible tests of this cell failed, or the notebook stopped before it"), gid
    visible = text_of(page.read_text())
    assert visible.count("NotImplementedError") >= 19 and "hidden test failed" not in visible and NOTICE not in visible
