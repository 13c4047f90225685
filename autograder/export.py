"""``export --csv``: one row per student and assignment, from the instructor's gradebook plus grading records."""

from __future__ import annotations

import csv
from pathlib import Path

from .course import AutograderError, load_course, patch_nbgrader
from .grading import load_records


def export_csv(path: str | Path, *, course_dir: str | Path = ".", assignment: str | None = None) -> int:
    """Write the CSV; return the number of rows. Columns: student_id, assignment, one per graded cell
    (``notebook/grade_id`` when an assignment has several notebooks), total, max_score, status, reason."""
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
            multi = len(a.notebooks) > 1
            cell_names = []
            for nb in sorted(a.notebooks, key=lambda n: n.name):
                order = {}
                rec = next(iter(records.values()), None)
                if rec:
                    order = {k: i for i, k in enumerate(rec["cells"])}
                for gc in sorted(nb.grade_cells, key=lambda g: (order.get(g.name, 1e9), g.name)):
                    cell_names.append((nb.name, gc.name, f"{nb.name}/{gc.name}" if multi else gc.name))
            columns += [c for _, _, c in cell_names if c not in columns]
            for sid in students:
                row = {"student_id": sid, "assignment": a.name}
                try:
                    sub = gb.find_submission(a.name, sid)
                except MissingEntry:
                    rows.append({**row, "total": 0, "max_score": a.max_score, "status": "missing",
                                 "reason": "no submission"})
                    continue
                for nb_name, gid, col in cell_names:
                    grade = gb.find_grade(gid, nb_name, a.name, sid)
                    row[col] = "" if grade.score is None else f"{grade.score:g}"
                rec = records.get(sid, {})
                row.update(total=f"{sub.score:g}", max_score=f"{sub.max_score:g}",
                           status=rec.get("status", "graded"), reason=rec.get("reason", ""))
                if sub.needs_manual_grade and "manual" not in row["reason"]:
                    row["reason"] = "; ".join(x for x in (row["reason"], "needs manual grading") if x)
                rows.append(row)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["student_id", "assignment", *columns, "total", "max_score", "status",
                                     "reason"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
