"""``feedback``: per-student HTML that shows the student's own errors in full and nothing of the hidden tests.

What a student sees of a test cell with hidden tests (``StripHiddenTests``):

- the cell's visible source (the hidden blocks are removed);
- what the *visible part* printed or raised, in full: the grader runs the visible part and each hidden block as
  separate requests (``execute.py``), and ``metadata.autograder.visible_outputs`` says how many of the cell's
  outputs came from the visible part. A ``NotImplementedError`` raised in the student's function, or a visible
  assertion, is shown as the student would see it in Jupyter;
- if a hidden block raised (or timed out), a notice saying so, never its traceback, message or output;
- the trusted verdict (``metadata.autograder.trusted``): "all hidden checks passed", or what was compared and
  how it differed, never the expected value.

Which request an output came from decides; no output is judged by whether it *resembles* hidden code. For
notebooks autograded before the requests were separate (no ``visible_outputs``), an error is attributed by the
line of the cell that raised it (the first frame of its traceback): inside a hidden block, it is hidden.

Separately, no output of any cell may show a verbatim line of hidden-test source (a student's code can read the
kernel's input history and print it): such lines are replaced, wherever they appear (streams, tracebacks,
error messages, text/HTML/Markdown displays). A hidden line the student can see anyway (it also appears in the
visible source) is not secret; lines without letters or digits, and bare keywords (``else:``, ``pass``), are
not secrets either. Obfuscated forms (base64, one character per line) are not recognised: see the README.
"""

from __future__ import annotations

import builtins
import html as html_lib
import re
import textwrap
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .checks import privatize, split_hidden
from .course import AutograderError, load_course, patch_nbgrader, quiet_logger

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TAG = re.compile(r"<[^>]*>")
GUTTER = re.compile(r"^\s*(?:-*>\s*)?\d+\s(?=\s*\S)")  # IPython's "---> 12 " / "     12 " before a source line
FRAME_LINE = re.compile(r"^\s*-*>\s*(\d+)\b", re.M)  # the line that raised, inside one traceback frame
NEEDLE_MIN = 16  # a hidden line this long is also found inside a longer output line (e.g. a repr)
TRIVIAL = {"else:", "try:", "finally:", "pass", "continue", "break", "return", "except:", "except Exception:",
           "return None", "return True", "return False", "raise", "else", "...", "print()"}
REMOVED_LINE = "[hidden test line removed by the autograder]"
HIDDEN_NOTICE = ("[autograder] a hidden test of this cell stopped with {what};\n"
                 "             its code and output are not shown (the verdict below names what it checked)\n")
FEEDBACK_PREPROCESSORS: list = []  # filled below: what nbgrader's GenerateFeedback should run (nbgrader_config.py)


def _norm(line: str) -> str:
    return " ".join(line.split())


def hidden_lines(source: str) -> list[str]:
    """The normalised lines of the hidden blocks of a cell's source, as written and as sent to the kernel."""
    out = []
    for is_hidden, text in split_hidden(source):
        if is_hidden:
            for line in (text + "\n" + privatize(text)).splitlines():
                out.append(_norm(line))
    return out


def is_secret(line: str) -> bool:
    """Whether a (normalised) hidden line reveals anything: not blank, not punctuation, not a bare keyword."""
    return bool(line) and any(ch.isalnum() for ch in line) and line not in TRIVIAL


def raising_line(traceback: list[str]) -> int | None:
    """The line (1-based, in the code the request sent) at which the request's own frame raised: the first
    frame of an IPython traceback, or None if the traceback has no frame (a grader-made or odd error)."""
    frames = [ANSI.sub("", t) for t in traceback]
    for text in frames:
        if re.search(r"(Cell In\s*\[|Input In\s*\[|<ipython-input-)", text):
            m = FRAME_LINE.search(text) or re.search(r"Cell In\s*\[\d*\], line (\d+)", text)
            return int(m.group(1)) if m else None
    return None


def hidden_line_numbers(source: str, begin: str, end: str) -> set[int]:
    """1-based numbers of the lines inside hidden blocks (marker lines included) of a cell's full source."""
    inside, numbers = False, set()
    for i, line in enumerate(source.split("\n"), start=1):
        if begin in line:
            inside = True
        if inside:
            numbers.add(i)
        if end in line:
            inside = False
    return numbers


class Redactor:
    """Replaces every line of an output that shows a secret line of hidden-test source."""

    def __init__(self, secrets: set[str], visible: set[str] = frozenset()):
        self.secrets = set(secrets)
        # long lines are searched inside longer output lines too, unless they are part of a visible line (a
        # hidden `f(x)` repeating the visible `y = f(x)` must not hide the student's own traceback)
        self.long = sorted((s for s in self.secrets if len(s) >= NEEDLE_MIN and not any(s in v for v in visible)),
                           key=len, reverse=True)

    def shows_secret(self, line: str, markup: bool = False) -> bool:
        text = ANSI.sub("", line)
        if markup:
            text = html_lib.unescape(TAG.sub(" ", text))
        candidates = {_norm(text), _norm(GUTTER.sub("", text))}
        for piece in re.split(r"\\n|\\r|\\t", text):  # a repr() of the hidden source
            candidates.add(_norm(piece).strip("'\"[](), "))
        if candidates & self.secrets:
            return True
        flat = _norm(text)
        return any(s in flat for s in self.long)

    def text(self, text: str, markup: bool = False) -> tuple[str, int]:
        lines = text.split("\n")
        removed = 0
        for i, line in enumerate(lines):
            if line.strip() and self.shows_secret(line, markup):
                lines[i] = REMOVED_LINE
                removed += 1
        return "\n".join(lines), removed

    def output(self, out) -> int:
        """Redact ``out`` in place; return the number of lines removed."""
        if not self.secrets:
            return 0
        removed = 0
        kind = out.get("output_type")
        if kind == "stream":
            out["text"], n = self.text(_joined(out.get("text", "")))
            removed += n
        elif kind == "error":
            out["evalue"], n = self.text(str(out.get("evalue", "")))
            removed += n
            tb = []
            for entry in out.get("traceback", []):
                new, n = self.text(str(entry))
                tb.append(new)
                removed += n
            out["traceback"] = tb
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            for mime in list(data):
                if not (mime.startswith("text/") or mime.endswith("+json") or mime.endswith("+xml")
                        or mime == "application/javascript"):
                    continue
                markup = mime in ("text/html", "text/markdown", "image/svg+xml") or mime.endswith("+xml")
                value = data[mime] if isinstance(data[mime], str) else _joined(data[mime])
                data[mime], n = self.text(value, markup)
                removed += n
        return removed


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class StripHiddenTests(NbGraderPreprocessor):
    """What the student may see of the grading run (see the module docstring)."""

    begin = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess(self, nb, resources):
        hidden: set[str] = set()
        visible: set[str] = set()
        for cell in nb.cells:
            if cell.cell_type == "code" and self.begin in cell.source:
                hidden.update(hidden_lines(cell.source))
                for is_hidden, text in split_hidden(cell.source):
                    if not is_hidden:
                        visible.update(_norm(line) for line in text.splitlines())
            else:
                visible.update(_norm(line) for line in cell.source.splitlines())
        self.redactor = Redactor({line for line in hidden if is_secret(line) and line not in visible}, visible)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        meta = cell.metadata.get("autograder", {})
        notice = None
        if self.begin in cell.source:
            outs = list(cell.get("outputs", []))
            if "visible_outputs" in meta:  # which request produced each output decides
                n = max(0, int(meta["visible_outputs"]))
                shown, hidden = outs[:n], outs[n:]
                errors = [o for o in hidden if o.get("output_type") == "error"]
            else:  # autograded in one request: the line that raised decides; prints cannot be attributed
                lines = hidden_line_numbers(cell.source, self.begin, self.end)
                shown, errors = [], []
                for o in outs:
                    if o.get("output_type") != "error":
                        continue
                    at = raising_line(o.get("traceback", []))
                    (errors if at is None or at in lines else shown).append(o)
            if errors:
                notice = HIDDEN_NOTICE.format(what=_what(errors[0]))
            cell.source = "\n".join(text for is_hidden, text in split_hidden(cell.source) if not is_hidden)
            cell.outputs = shown
        cell.outputs = _coalesce(cell.get("outputs", []))  # a hidden line split across stream chunks is found too
        removed = sum(self.redactor.output(o) for o in cell.outputs)
        if removed:
            cell.outputs.append(new_output(
                "stream", name="stderr",
                text=f"[part of this output removed by the autograder: {removed} line(s) of hidden test code]\n"))
        if notice:
            cell.outputs.append(new_output("stream", name="stderr", text=notice))
        trusted = meta.get("trusted")
        if trusted:
            cell.outputs.append(new_output("stream", name="stdout", text=self._verdict(trusted)))
        return cell, resources

    @staticmethod
    def _verdict(t: dict) -> str:
        got, points = t.get("score", 0), t.get("points", 0)
        head = f"[autograder] {got:g} / {points:g} points"
        if t.get("message"):
            return textwrap.fill(f"{head}: {t['message']}", width=100, subsequent_indent=" " * 13,
                                 break_long_words=False, break_on_hyphens=False) + "\n"
        if t.get("checked"):
            return f"{head}: all hidden checks passed\n"
        return head + "\n"


def _what(error) -> str:
    """The kind of a hidden block's error, named only when it is a built-in exception (the name of a class the
    student's code made could carry hidden values)."""
    name = str(error.get("ename", ""))
    if name == "CellTimeoutError":
        return "a time limit"
    if name == "DeadKernelError":
        return "a crash of the kernel"
    obj = getattr(builtins, name, None)
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"
    return "an error"


def _coalesce(outputs: list) -> list:
    """Consecutive stream outputs of the same stream merged into one."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            text = _joined(merged[-1].get("text", "")) + _joined(out.get("text", ""))
            merged[-1] = new_output("stream", name=out.get("name"), text=text)
        else:
            merged.append(out)
    return merged


def _feedback_preprocessors() -> list:
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    return [GetGrades, StripHiddenTests, CSSHTMLHeaderPreprocessor]


FEEDBACK_PREPROCESSORS[:] = _feedback_preprocessors()


def generate_feedback(assignment: str, *, course_dir: str | Path = ".") -> list[Path]:
    """Write ``feedback/<sid>/<assignment>/*.html`` for every autograded submission; return the files."""
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    patch_nbgrader()
    course = load_course(course_dir)
    autograded = course.root / course.config.CourseDirectory.get("autograded_directory", "autograded")
    if not list(autograded.glob(f"*/{assignment}")):
        raise AutograderError(f"nothing autograded for '{assignment}' in {autograded}; run grade first")
    c = course.fresh_config()
    c.CourseDirectory.root = str(course.root)
    c.CourseDirectory.db_url = course.db_url
    c.CourseDirectory.course_id = course.course_id
    c.CourseDirectory.assignment_id = assignment
    c.CourseDirectory.student_id = "*"
    c.GenerateFeedback.force = True
    c.GenerateFeedback.preprocessors = list(FEEDBACK_PREPROCESSORS)
    log, buf = quiet_logger("autograder.feedback")
    try:
        GenerateFeedback(coursedir=CourseDirectory(config=c, log=log), config=c, log=log).start()
    except Exception as exc:  # noqa: BLE001
        raise AutograderError(f"nbgrader could not generate feedback: {exc}\n{buf.getvalue()[-2000:]}") from exc
    fb = course.root / course.config.CourseDirectory.get("feedback_directory", "feedback")
    return sorted(fb.glob(f"*/{assignment}/*.html"))
