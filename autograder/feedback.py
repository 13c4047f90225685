"""``feedback``: per-student HTML without hidden-test source and without hidden-test lines in tracebacks."""

from __future__ import annotations

import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .course import AutograderError, load_course, patch_nbgrader, quiet_logger

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class StripHiddenTests(NbGraderPreprocessor):
    """Removes hidden-test blocks from sources; replaces errors that reveal a hidden line."""

    begin = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or self.begin not in cell.source:
            return cell, resources
        visible, hidden, inside = [], [], False
        for line in cell.source.splitlines():
            if self.begin in line:
                inside = True
                continue
            if self.end in line:
                inside = False
                continue
            (hidden if inside else visible).append(line)
        cell.source = "\n".join(visible)
        needles = [h.strip() for h in hidden if len(h.strip()) >= 4]
        for i, out in enumerate(cell.get("outputs", [])):
            if out.get("output_type") != "error":
                continue
            text = ANSI.sub("", "\n".join(out.get("traceback", [])) + "\n" + str(out.get("evalue", "")))
            if any(n in text for n in needles):
                cell.outputs[i] = {"output_type": "error", "ename": out.get("ename", "Error"), "evalue": "",
                                   "traceback": [f"{out.get('ename', 'Error')}: a hidden test failed "
                                                 "(its code is not shown)"]}
        return cell, resources


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
