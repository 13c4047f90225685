"""A grading worker: ``python -m autograder.worker SETTINGS.json``.

Reads one JSON job per line on stdin, grades it in a throw-away course directory with nbgrader's Autograde
(the student's kernel runs in the sandbox, see ``sandbox.py``) and writes one JSON result per line. Trusted code
only: it never imports or executes anything from a submission.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def _zero_cells(settings: dict) -> dict:
    return {key: [0.0, mx] for key, mx in settings["max_scores"].items()}


def _key(settings: dict, nb: str, gid: str) -> str:
    return gid if len(settings["notebooks"]) == 1 else f"{nb}/{gid}"


def grade_job(job: dict, settings: dict) -> dict:
    import nbformat
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from . import execute
    from .course import load_course, quiet_logger

    sid, a = job["student_id"], settings["assignment"]
    started = time.monotonic()
    notes: list[str] = list(job.get("notes", []))
    result = {"student_id": sid, "status": "invalid", "reason": "", "cells": _zero_cells(settings),
              "manual": [], "autograded_dir": None, "tmp": None}
    tmp = Path(tempfile.mkdtemp(prefix="sub-", dir=settings["work_root"]))
    result["tmp"] = str(tmp)
    course = tmp / "course"
    sub_dir = course / "submitted" / sid / a
    sub_dir.mkdir(parents=True)
    shutil.copy(settings["template_db"], course / "gradebook.db")
    valid, deleted_keys = [], set()
    for nb in settings["notebooks"]:
        src = job["files"].get(nb)
        if src is None:
            notes.append(f"no notebook '{nb}.ipynb' was submitted")
            continue
        raw = Path(src).read_bytes()
        label = Path(src).name
        if len(raw) > settings["max_submission_bytes"]:
            notes.append(f"'{label}' is larger than {settings['max_submission_bytes'] // 2**20} MB")
            continue
        try:
            node = nbformat.reads(raw.decode("utf-8"), as_version=4)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the student's file
            msg = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
            notes.append(f"'{label}' is not a valid notebook (not valid notebook JSON: {msg})")
            continue
        if not node.get("cells"):
            notes.append(f"'{label}' has no cells")
            continue
        present = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): c for c in node.cells}
        deleted = [g for g in settings["tests"][nb] if g not in present]
        edited = [g for g, s in settings["tests"][nb].items() if g in present and present[g].source != s]
        if edited:
            notes.append(f"test cell(s) edited by the student were restored before grading: {', '.join(edited)}")
        deleted_keys.update(_key(settings, nb, g) for g in deleted)
        if deleted:
            notes.append(f"test cell(s) deleted by the student score 0: {', '.join(deleted)}")
        (sub_dir / f"{nb}.ipynb").write_bytes(raw)
        valid.append(nb)
    if not valid:
        result["reason"] = "; ".join(notes) or "nothing to grade"
        return result
    for src, rel in job.get("extras", []):
        dest = sub_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    if job.get("timestamp"):
        (sub_dir / "timestamp.txt").write_text(job["timestamp"])

    os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    (tmp / "runtime").mkdir()
    c = load_course(settings["course_dir"]).fresh_config()
    c.CourseDirectory.root = str(course)
    c.CourseDirectory.course_id = settings["course_id"]
    c.CourseDirectory.source_directory = settings["files_dir"]
    c.CourseDirectory.submitted_directory = "submitted"
    c.CourseDirectory.autograded_directory = "autograded"
    c.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    c.CourseDirectory.assignment_id = a
    c.CourseDirectory.student_id = sid
    c.Autograde.create_student = True
    c.Autograde.force = True
    c.Autograde.autograde_preprocessors = [execute.SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor,
                                           LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    ex = c.SandboxedExecute
    ex.timeout = settings["timeout_cell"]
    ex.notebook_timeout = settings["timeout_notebook"]
    ex.max_output_bytes = settings["max_output_bytes"]
    ex.memory_mb = settings["memory_mb"]
    ex.kernel_name = settings["kernel_name"]
    ex.interrupt_on_timeout = False
    ex.raise_on_iopub_timeout = False
    ex.startup_timeout = 60
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = str(tmp / "runtime" / "kernel")  # absolute: the kernel's cwd differs from ours
    c.KernelManager.connection_file = str(tmp / "runtime" / "kernel.json")
    execute.REPORTS.clear()
    log, buf = quiet_logger("autograder.worker")
    try:
        Autograde(coursedir=CourseDirectory(config=c, log=log), config=c, log=log).start()
    except Exception as exc:  # noqa: BLE001
        errors = [ln for ln in buf.getvalue().splitlines() if ln.strip() and not ln.startswith("[INFO]")]
        detail = next((ln.strip() for ln in reversed(errors) if "Error" in ln and "Traceback" not in ln),
                      str(exc))
        result.update(status="error", reason="; ".join(notes + [f"nbgrader could not grade it: {detail[:300]}"]))
        return result
    with Gradebook(c.CourseDirectory.db_url, settings["course_id"]) as gb:
        sub = gb.find_submission(a, sid)
        for nb_sub in sub.notebooks:
            for grade in nb_sub.grades:
                key = _key(settings, nb_sub.name, grade.name)
                if key in deleted_keys:
                    result["cells"][key] = [0.0, float(grade.max_score)]
                    continue
                if grade.auto_score is None and grade.manual_score is None:
                    result["manual"].append(key)
                result["cells"][key] = [float(grade.score or 0.0), float(grade.max_score)]
    out_dir = course / "autograded" / sid / a
    for nb_file in out_dir.glob("*.ipynb"):
        if nb_file.stat().st_size > settings["max_notebook_bytes"]:
            node = nbformat.read(nb_file, as_version=4)
            for cell in node.cells:
                if cell.cell_type == "code":
                    cell.outputs = [o for o in cell.outputs if o.get("output_type") == "error"]
            nbformat.write(node, nb_file)
            notes.append(f"outputs of '{nb_file.name}' removed (over {settings['max_notebook_bytes']} bytes)")
    status, reason = "graded", []
    for rep in execute.REPORTS:
        if rep["status"] != "graded" and status == "graded":
            status = rep["status"]
            reason.append(rep["reason"])
        if rep["truncated"]:
            reason.append(f"output truncated to {settings['max_output_bytes']} bytes in: "
                          + ", ".join(rep["truncated"]))
        if rep["memory_errors"]:
            reason.append(f"MemoryError (limit {settings['memory_mb']} MB) in: " + ", ".join(rep["memory_errors"]))
    if result["manual"]:
        reason.append("needs manual grading: " + ", ".join(result["manual"]))
    result.update(status=status, reason="; ".join(reason + notes), autograded_dir=str(out_dir),
                  seconds=round(time.monotonic() - started, 2))
    return result


def main(argv: list[str]) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    settings = json.loads(Path(argv[0]).read_text())
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by libraries goes to the log, not the protocol
    os.environ["JUPYTER_PATH"] = settings["jupyter_path"]
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    from .course import patch_nbgrader

    patch_nbgrader()
    for line in sys.stdin:
        job = json.loads(line)
        try:
            res = grade_job(job, settings)
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            import traceback

            traceback.print_exc()
            res = {"student_id": job["student_id"], "status": "error", "cells": _zero_cells(settings),
                   "manual": [], "reason": f"grading failed: {type(exc).__name__}: {exc}"[:400],
                   "autograded_dir": None, "tmp": None}
        proto.write(json.dumps(res) + "\n")
        proto.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
