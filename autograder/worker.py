"""A grading worker: ``python -m autograder.worker SETTINGS.json``.

Reads one :class:`~autograder.model.Job` (JSON) per line on stdin, grades it in a throw-away course directory
with nbgrader's Autograde (the student's kernel runs in the sandbox, see ``sandbox.py``) and writes one
:class:`~autograder.model.WorkerResult` (JSON) per line. What it reports:

- ``in_kernel``: nbgrader's own verdict per graded cell (decided inside the student's kernel: forgeable);
- ``records_path``: the hidden-check records read back after each hidden block (``checks.py``), which the
  parent compares with the instructor's reference *outside* any kernel;
- ``static``: forbidden calls and suspicious constructs found in the submitted source (``rules.py``).

Trusted code only: it never imports or executes anything from a submission.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .model import Job, Status, WorkerResult, WorkerSettings, cell_key, from_json, to_json


def _zero_cells(settings: WorkerSettings) -> dict[str, tuple[float, float]]:
    return {key: (0.0, mx) for key, mx in settings.max_scores.items()}


def grade_job(job: Job, settings: WorkerSettings) -> WorkerResult:
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

    from . import execute, rules
    from .course import load_course, quiet_logger

    sid, a, limits = job.student_id, settings.assignment, settings.limits
    started = time.monotonic()
    notes: list[str] = list(job.notes)
    result = WorkerResult(student_id=sid, status=Status.INVALID, in_kernel=_zero_cells(settings))
    tmp = Path(tempfile.mkdtemp(prefix="sub-", dir=settings.work_root))
    result.tmp = str(tmp)
    course = tmp / "course"
    sub_dir = course / "submitted" / sid / a
    sub_dir.mkdir(parents=True)
    shutil.copy(settings.template_db, course / "gradebook.db")
    valid, deleted_keys, parsed = [], set(), {}
    for nb in settings.notebooks:
        src = job.files.get(nb)
        if src is None:
            notes.append(f"no notebook '{nb}.ipynb' was submitted")
            continue
        raw = Path(src).read_bytes()
        label = Path(src).name
        if len(raw) > limits.max_submission_bytes:
            notes.append(f"'{label}' is larger than {limits.max_submission_bytes // 2**20} MB")
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
        deleted = [g for g in settings.tests[nb] if g not in present]
        edited = [g for g, s in settings.tests[nb].items() if g in present and present[g].source != s]
        if edited:
            notes.append(f"test cell(s) edited by the student were restored before grading: {', '.join(edited)}")
        deleted_keys.update(cell_key(settings.notebooks, nb, g) for g in deleted)
        if deleted:
            notes.append(f"test cell(s) deleted by the student score 0: {', '.join(deleted)}")
        (sub_dir / f"{nb}.ipynb").write_bytes(raw)
        valid.append(nb)
        parsed[nb] = node
    if not valid:
        result.reason = "; ".join(notes) or "nothing to grade"
        return result
    try:
        result.static = rules.analyse(parsed, settings.static)
    except (RecursionError, MemoryError, ValueError) as exc:  # e.g. absurdly nested code
        result.static = {"failed": f"the submitted source could not be analysed ({type(exc).__name__})"}
    for src, rel in job.extras:
        dest = sub_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    # no timestamp.txt here: late penalties are applied by the parent (nbgrader fails on an unreadable one)

    os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    (tmp / "runtime").mkdir()
    c = load_course(settings.course_dir).fresh_config()
    c.CourseDirectory.root = str(course)
    c.CourseDirectory.course_id = settings.course_id
    c.CourseDirectory.source_directory = settings.files_dir
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
    ex.timeout = limits.timeout_cell
    ex.notebook_timeout = limits.timeout_notebook
    ex.max_output_bytes = limits.max_output_bytes
    ex.memory_mb = limits.memory_mb
    ex.max_record_bytes = limits.max_record_bytes
    ex.kernel_name = settings.kernel_name
    ex.interrupt_on_timeout = False
    ex.raise_on_iopub_timeout = False
    ex.startup_timeout = limits.kernel_startup_s
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
        result.status = Status.ERROR
        result.reason = "; ".join(notes + [f"nbgrader could not grade it: {detail[:300]}"])
        return result
    with Gradebook(c.CourseDirectory.db_url, settings.course_id) as gb:
        sub = gb.find_submission(a, sid)
        for nb_sub in sub.notebooks:
            for grade in nb_sub.grades:
                key = cell_key(settings.notebooks, nb_sub.name, grade.name)
                if key in deleted_keys:
                    result.in_kernel[key] = (0.0, float(grade.max_score))
                    continue
                if grade.auto_score is None and grade.manual_score is None:
                    result.manual.append(key)
                result.in_kernel[key] = (float(grade.score or 0.0), float(grade.max_score))
    out_dir = course / "autograded" / sid / a
    for nb_file in out_dir.glob("*.ipynb"):
        if nb_file.stat().st_size > limits.max_notebook_bytes:
            node = nbformat.read(nb_file, as_version=4)
            for cell in node.cells:
                if cell.cell_type == "code":
                    cell.outputs = [o for o in cell.outputs if o.get("output_type") == "error"]
            nbformat.write(node, nb_file)
            notes.append(f"outputs of '{nb_file.name}' removed (over {limits.max_notebook_bytes} bytes)")
    status, reason = Status.GRADED, []
    records: dict[str, dict] = {}
    for rep in execute.REPORTS:
        nb_name = rep.get("notebook") or settings.notebooks[0]
        for gid in list(rep["records"]) + [g for g in rep["problems"] if g not in rep["records"]]:  # cell order
            records[cell_key(settings.notebooks, nb_name, gid)] = {
                "entries": rep["records"].get(gid, []), "problems": rep["problems"].get(gid, [])}
        result.hidden_started += [cell_key(settings.notebooks, nb_name, g) for g in rep["hidden_started"]]
        result.stray_records += rep["stray"]
        if rep["status"] != Status.GRADED.value and status == Status.GRADED:
            status = Status(rep["status"])
            reason.append(rep["reason"])
        if rep["truncated"]:
            reason.append(f"output truncated to {limits.max_output_bytes} bytes in: " + ", ".join(rep["truncated"]))
        if rep["memory_errors"]:
            reason.append(f"MemoryError (limit {limits.memory_mb} MB) in: " + ", ".join(rep["memory_errors"]))
    records_path = tmp / "records.json"
    records_path.write_text(json.dumps(records))
    if result.manual:
        reason.append("needs manual grading: " + ", ".join(result.manual))
    result.status = status
    result.reason = "; ".join(reason + notes)
    result.autograded_dir = str(out_dir)
    result.records_path = str(records_path)
    result.seconds = round(time.monotonic() - started, 2)
    return result


def main(argv: list[str]) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    settings = from_json(WorkerSettings, Path(argv[0]).read_text())
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything printed by libraries goes to the log, not the protocol
    os.environ["JUPYTER_PATH"] = settings.jupyter_path
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    from .course import patch_nbgrader

    patch_nbgrader()
    for line in sys.stdin:
        job = from_json(Job, line)
        try:
            res = grade_job(job, settings)
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            import traceback

            traceback.print_exc()
            res = WorkerResult(student_id=job.student_id, status=Status.ERROR, in_kernel=_zero_cells(settings),
                               reason=f"grading failed: {type(exc).__name__}: {exc}"[:400])
        proto.write(to_json(res) + "\n")
        proto.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
