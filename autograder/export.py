"""``export --csv``: one row per student and assignment, from the instructor's gradebook plus grading records."""

from __future__ import annotations

import csv
from pathlib import Path

from .course import AutograderError, load_course, patch_nbgrader
from .grading import NOT_STORED, load_records
from .model import cell_key

COLUMNS_AFTER = ["total", "max_score", "late_penalty", "status", "review", "reason"]


def export_csv(path: str | Path, *, course_dir: str | Path = ".", assignment: str | None = None) -> int:
    """Write the CSV; return the number of rows. Columns: student_id, assignment, one per graded cell
    (``notebook/grade_id`` when an assignment has several notebooks), total (sum of the cells, before any late
    penalty), max_score, late_penalty (nbgrader's LateSubmissionPlugin), status, review ("yes" when a person
    should look at it: the reason says why), reason. Students in the gradebook without a submission of an
    assignment get a row with status ``missing``; an ``invalid`` submission (or one the grader failed on), which
    is kept out of the gradebook, gets its status and reason from the grading record, total 0."""
    from nbgrader.api import Gradebook, MissingEntry

    patch_nbgrader()
    course = load_course(course_dir)
    rows, columns = [], []
    with Gradebook(course.db_url, course.course_id) as gb:
        if assignment:
            try:
                assignments = [gb.find_assignment(assignment)]
            except MissingEntry:
                raise AutograderError(f"assignment '{assignment}' is not in the gradebook {course.db_url}; "
                                      f"grade it first (python -m autograder grade {assignment} ...)") from None
        else:
            assignments = sorted(gb.assignments, key=lambda a: a.name)
        students = sorted(s.id for s in gb.students)
        for a in assignments:
            records = load_records(course.root, a.name)
            names = sorted(nb.name for nb in a.notebooks)
            rec = next(iter(records.values()), None)
            order = {k: i for i, k in enumerate(rec["cells"])} if rec else {}
            cell_names = []
            for nb in sorted(a.notebooks, key=lambda n: n.name):
                for gc in nb.grade_cells:
                    cell_names.append((nb.name, gc.name, cell_key(names, nb.name, gc.name)))
            cell_names.sort(key=lambda c: (order.get(c[2], 1e9), c[2]))
            columns += [c for _, _, c in cell_names if c not in columns]
            for sid in students:
                row = {"student_id": sid, "assignment": a.name}
                try:
                    sub = gb.find_submission(a.name, sid)
                except MissingEntry:  # never submitted, or nothing gradable (not stored in the gradebook)
                    rec = records.get(sid, {})
                    status = rec.get("status") if rec.get("status") in NOT_STORED else "missing"
                    rows.append({**row, "total": 0, "max_score": f"{a.max_score:g}", "late_penalty": 0,
                                 "status": status, "review": "",
                                 "reason": rec.get("reason", "") if status != "missing" else "no submission"})
                    continue
                for nb_name, gid, col in cell_names:
                    grade = gb.find_grade(gid, nb_name, a.name, sid)
                    row[col] = "" if grade.score is None else f"{grade.score:g}"
                rec = records.get(sid, {})
                row.update(total=f"{sub.score:g}", max_score=f"{sub.max_score:g}",
                           late_penalty=f"{sub.late_submission_penalty or 0:g}",
                           status=rec.get("status", "graded"), review="yes" if rec.get("review") else "",
                           reason=rec.get("reason", ""))
                manual = [k for k in rec.get("manual", [])]
                if manual and "manual" not in row["reason"]:
                    row["reason"] = "; ".join(x for x in (row["reason"], "needs manual grading") if x)
                rows.append(row)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["student_id", "assignment", *columns, *COLUMNS_AFTER], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
