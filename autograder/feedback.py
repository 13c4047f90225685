"""``feedback``: per-student HTML without hidden-test source and without hidden-test lines in tracebacks."""

from __future__ import annotations

import re
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .checks import privatize
from .course import AutograderError, load_course, patch_nbgrader, quiet_logger

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


NEEDLE_MIN = 16  # hidden-source lines at least this long are searched for in every output


class StripHiddenTests(NbGraderPreprocessor):
    """What the student may see of the grading run.

    - hidden-test blocks are removed from the test cells' source;
    - a test cell keeps only the outputs of its visible part (``metadata.autograder.visible_outputs``); what its
      hidden block printed or raised is replaced by the trusted verdict (``metadata.autograder.trusted``: "all
      hidden checks passed", or what was compared and how it differed, never the expected values);
    - any output of any cell that shows a line of hidden-test source is replaced by a notice.
    """

    begin = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess(self, nb, resources):
        self._needles = set()
        visible = []
        for cell in nb.cells:
            if cell.cell_type == "code" and self.begin in cell.source:
                shown, hidden_lines = self._split(cell.source)
                visible += shown
                hidden = "\n".join(hidden_lines)
                for line in (hidden + "\n" + privatize(hidden)).splitlines():  # as written and as sent
                    if len(line.strip()) >= NEEDLE_MIN:
                        self._needles.add(line.strip())
            else:
                visible += cell.source.splitlines()
        shown_text = "\n".join(visible)
        self._needles = {n for n in self._needles if n not in shown_text}  # lines the student sees anyway
        return super().preprocess(nb, resources)

    def _split(self, source: str) -> tuple[list[str], list[str]]:
        visible, hidden, inside = [], [], False
        for line in source.splitlines():
            if self.begin in line:
                inside = True
                continue
            if self.end in line:
                inside = False
                continue
            (hidden if inside else visible).append(line)
        return visible, hidden

    def _shows_hidden(self, out) -> bool:
        parts = [str(out.get("text", "")), str(out.get("evalue", ""))]
        parts += [str(v) for v in out.get("data", {}).values()]
        parts += [str(t) for t in out.get("traceback", [])]
        text = ANSI.sub("", "\n".join(parts))
        return any(n in text for n in self._needles)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        meta = cell.metadata.get("autograder", {})
        if self.begin in cell.source:
            visible, hidden = self._split(cell.source)
            cell.source = "\n".join(visible)
            outs = list(cell.get("outputs", []))
            if "visible_outputs" in meta:
                outs = outs[: int(meta["visible_outputs"])]
            elif self._needles:  # autograded before hidden blocks ran separately: hide revealing errors
                outs = [o for o in outs if not (o.get("output_type") == "error" and self._shows_hidden(o))]
            cell.outputs = outs
        cell.outputs = _coalesce(cell.get("outputs", []))  # a hidden line split across stream chunks is found too
        cell.outputs = [o if not self._shows_hidden(o) else
                        new_output("stream", name="stderr",
                                   text="[output removed by the autograder: it showed hidden test code]\n")
                        for o in cell.get("outputs", [])]
        trusted = meta.get("trusted")
        if trusted:
            cell.outputs.append(new_output("stream", name="stdout", text=self._verdict(trusted)))
        return cell, resources

    @staticmethod
    def _verdict(t: dict) -> str:
        got, points = t.get("score", 0), t.get("points", 0)
        head = f"[autograder] {got:g} / {points:g} points"
        if t.get("message"):
            return f"{head}: {t['message']}\n"
        if t.get("checked"):
            return f"{head}: all hidden checks passed\n"
        return head + "\n"


def _coalesce(outputs: list) -> list:
    """Consecutive stream outputs of the same stream merged into one."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            text = merged[-1].get("text", "") + out.get("text", "")
            merged[-1] = new_output("stream", name=out.get("name"), text=text)
        else:
            merged.append(out)
    return merged


def generate_feedback(assignment: str, *, course_dir: str | Path = ".") -> list[Path]:
    """Write ``feedback/<sid>/<assignment>/*.html`` for every autograded submission; return the files."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades

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
    c.GenerateFeedback.preprocessors = [GetGrades, StripHiddenTests, CSSHTMLHeaderPreprocessor]
    log, buf = quiet_logger("autograder.feedback")
    try:
        GenerateFeedback(coursedir=CourseDirectory(config=c, log=log), config=c, log=log).start()
    except Exception as exc:  # noqa: BLE001
        raise AutograderError(f"nbgrader could not generate feedback: {exc}\n{buf.getvalue()[-2000:]}") from exc
    fb = course.root / course.config.CourseDirectory.get("feedback_directory", "feedback")
    return sorted(fb.glob(f"*/{assignment}/*.html"))
