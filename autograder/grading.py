"""Grade a folder of submissions in parallel, each in its own throw-away course directory and sandbox.

Accepted layouts of SUBMISSIONS (both may be mixed):

- nbgrader's ``submitted/``: ``SUBMISSIONS/<student_id>/<assignment>/<notebook>.ipynb`` (plus data files and
  an optional ``timestamp.txt``); ``SUBMISSIONS/<student_id>/<notebook>.ipynb`` is accepted too;
- a flat folder, as an LMS download gives: ``SUBMISSIONS/<student_id>.ipynb`` (assignments with one notebook).

Scores are merged into the instructor's gradebook here, outside any sandbox; autograded notebooks go to
``<course>/autograded/<sid>/<assignment>/`` and a record with status and reason to
``<course>/grading/<assignment>/<sid>.json``. Submissions are only ever read.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .course import AutograderError, Course, load_course, patch_nbgrader
from .sandbox import FALLBACK_WARNING, KERNEL_NAME, resolve_mode, sandbox_settings, write_kernelspec

SID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
STATUSES = ("graded", "timeout", "crashed", "invalid", "error")


@dataclass
class GradeResult:
    student_id: str
    assignment: str
    status: str  # one of STATUSES
    reason: str
    score: float
    max_score: float
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False  # True when an unchanged submission's earlier result was kept


def _nb_meta(path: Path) -> tuple[dict[str, float], dict[str, str]]:
    """(max points per grade cell, visible source of each test cell) of a released notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    points, tests = {}, {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            points[meta["grade_id"]] = float(meta.get("points", 0))
        if meta.get("grade") and not meta.get("solution"):
            src = cell.get("source", "")
            tests[meta["grade_id"]] = "".join(src) if isinstance(src, list) else src
    return points, tests


def discover(assignment: str, root: Path, notebooks: list[str]) -> list[dict]:
    if not root.is_dir():
        raise AutograderError(f"submissions folder {root} does not exist")
    jobs: dict[str, dict] = {}
    flat = sorted(p for p in root.iterdir() if p.is_file() and p.suffix == ".ipynb")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if flat and len(notebooks) != 1:
        raise AutograderError(f"{root} holds <student_id>.ipynb files, but '{assignment}' has {len(notebooks)} "
                              f"notebooks; use the <student_id>/{assignment}/<notebook>.ipynb layout")
    for p in flat:
        jobs[p.stem] = {"student_id": p.stem, "files": {notebooks[0]: str(p)}, "extras": [], "timestamp": None,
                        "notes": []}
    for d in dirs:
        sid, notes = d.name, []
        adir = d / assignment if (d / assignment).is_dir() else (d if any(d.glob("*.ipynb")) else None)
        job = {"student_id": sid, "files": {}, "extras": [], "timestamp": None, "notes": notes}
        if sid in jobs:
            notes.append(f"both {sid}.ipynb and {sid}/ were found; graded the folder")
        jobs[sid] = job
        if adir is None:
            notes.append(f"no notebook in {d.name}/{assignment}/")
            continue
        found = sorted(adir.glob("*.ipynb"))
        for nb in notebooks:
            if (adir / f"{nb}.ipynb").is_file():
                job["files"][nb] = str(adir / f"{nb}.ipynb")
        missing = [nb for nb in notebooks if nb not in job["files"]]
        unmatched = [p for p in found if p.stem not in notebooks]
        if len(missing) == 1 and len(unmatched) == 1:
            job["files"][missing[0]] = str(unmatched[0])
            notes.append(f"renamed notebook '{unmatched[0].name}' graded as '{missing[0]}.ipynb'")
        for p in sorted(adir.rglob("*")):
            rel = p.relative_to(adir)
            if p.is_file() and p.suffix != ".ipynb" and rel.parts[0] not in (".ipynb_checkpoints", "timestamp.txt"):
                job["extras"].append([str(p), str(rel)])
        if (adir / "timestamp.txt").is_file():
            job["timestamp"] = (adir / "timestamp.txt").read_text().strip()[:100]
    if not jobs:
        raise AutograderError(f"no submissions in {root}: expected <student_id>/{assignment}/<notebook>.ipynb "
                              "(nbgrader's submitted/ layout) or <student_id>.ipynb files")
    return [jobs[k] for k in sorted(jobs)]


def _sha(paths: list[str], base: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update((os.path.relpath(p, base) if base else p).encode() + b"\0")
        h.update(Path(p).read_bytes() if Path(p).is_file() else b"")
    return h.hexdigest()


class _Worker:
    """One long-lived ``autograder.worker`` process (imports nbgrader once; ~2-4 s start-up)."""

    def __init__(self, settings_path: Path, log_path: Path):
        self.settings_path, self.log_path, self.proc = settings_path, log_path, None

    def _start(self) -> None:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
               "PYTHONUNBUFFERED": "1"}
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.worker", str(self.settings_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True, env=env, cwd=str(self.settings_path.parent))

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
            self.log.close()

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.kill()

    def run(self, job: dict, limit: float) -> dict | str:
        if self.proc is None:
            self._start()
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            self.kill()
            return "the grading worker died"
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return f"grading did not finish within {int(limit)} s; the grader and kernel were killed"
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 5))
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    self.kill()
                    return f"the grading worker crashed (log: {self.log_path})"
                return json.loads(line)


def grade_submissions(assignment: str, submissions: str | Path, *, course_dir: str | Path = ".", jobs: int = 1,
                      timeout_cell: int | None = None, timeout_notebook: int = 600, memory_mb: int = 6144,
                      sandbox: str | None = None, force: bool = False, progress: bool = False,
                      max_output_bytes: int = 1_000_000, max_notebook_bytes: int = 20_000_000,
                      work_dir: str | Path | None = None) -> list[GradeResult]:
    """Grade every submission of ASSIGNMENT in SUBMISSIONS; see the module docstring for layouts."""
    import warnings

    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    course = load_course(course_dir)
    submissions = Path(submissions).resolve()
    mode = resolve_mode(sandbox)
    if mode == "rlimit":
        print(FALLBACK_WARNING, file=sys.stderr, flush=True)
    if timeout_cell is None:
        timeout_cell = int(course.config.Execute.get("timeout", 120) or 120)
    jobs = max(1, int(jobs))
    patch_nbgrader()
    from .release import generate_into

    batch = Path(tempfile.mkdtemp(prefix="autograder-", dir=work_dir))
    try:
        template = batch / "template"
        release = generate_into(course, assignment, template)
        files_dir = template / "files"
        shutil.copytree(template / "source" / assignment, files_dir / assignment,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__", "*.pyc"))
        notebooks = sorted(p.stem for p in release.glob("*.ipynb"))
        max_scores, tests = {}, {}
        for nb in notebooks:
            pts, tst = _nb_meta(release / f"{nb}.ipynb")
            tests[nb] = tst
            for gid, mx in pts.items():
                max_scores[gid if len(notebooks) == 1 else f"{nb}/{gid}"] = mx
        # register the assignment (notebooks, grade cells) in the instructor's gradebook
        generate_into(course, assignment, batch / "instructor", db_url=course.db_url)
        hide = [course.root, submissions, batch]
        if work_dir:
            hide.append(Path(work_dir).resolve())
        threads = max(1, (os.cpu_count() or 1) // jobs)
        sbx = sandbox_settings(mode, memory_mb=memory_mb, hide=hide, threads=threads)
        write_kernelspec(batch, sbx)
        (batch / "work").mkdir()
        settings = {"assignment": assignment, "course_dir": str(course.root), "course_id": course.course_id,
                    "template_db": str(template / "gradebook.db"), "files_dir": str(files_dir),
                    "work_root": str(batch / "work"), "jupyter_path": str(batch), "kernel_name": KERNEL_NAME,
                    "notebooks": notebooks, "max_scores": max_scores, "tests": tests,
                    "timeout_cell": timeout_cell, "timeout_notebook": timeout_notebook, "memory_mb": memory_mb,
                    "max_output_bytes": max_output_bytes, "max_notebook_bytes": max_notebook_bytes,
                    "max_submission_bytes": 50 * 2**20}
        settings_path = batch / "worker.json"
        settings_path.write_text(json.dumps(settings, indent=1))
        fingerprint = _sha(sorted(str(p) for p in (template / "source").rglob("*") if p.is_file()), template)
        fingerprint += json.dumps([timeout_cell, timeout_notebook, memory_mb, mode, max_output_bytes])

        todo = discover(assignment, submissions, notebooks)
        merger = _Merger(course, assignment, max_scores)
        results: list[GradeResult] = []
        pending: queue.Queue = queue.Queue()
        for job in todo:
            job["hash"] = hashlib.sha256((fingerprint + _sha(sorted(job["files"].values())
                                          + [e[0] for e in job["extras"]]) + json.dumps(job["notes"])
                                          + str(job["timestamp"])).encode()).hexdigest()
            if not SID_RE.match(job["student_id"]):
                job["invalid"] = (f"student id '{job['student_id']}' has characters nbgrader does not accept; "
                                  "rename the file/folder to letters, digits and _.@+-")
            prev = None if force else merger.previous(job)
            if prev is not None:
                results.append(merger.merge(prev, None, job, reused=True))
            elif "invalid" in job:
                res = {"status": "invalid", "reason": job["invalid"], "cells": {}, "manual": []}
                results.append(merger.merge(res, None, job))
            else:
                pending.put(job)
        n_todo = pending.qsize()
        from tqdm import tqdm

        bar = tqdm(total=n_todo, desc=f"grading {assignment}", unit="nb", file=sys.stderr,
                   disable=not progress or n_todo == 0)
        done: queue.Queue = queue.Queue()
        limit = timeout_notebook + 180

        def slot(i: int) -> None:
            w = _Worker(settings_path, batch / f"worker-{i}.log")
            try:
                while True:
                    try:
                        job = pending.get_nowait()
                    except queue.Empty:
                        return
                    t0 = time.monotonic()
                    out = w.run(job, limit)
                    if isinstance(out, str):
                        out = {"status": "timeout" if "did not finish" in out else "error", "reason": out,
                               "cells": {}, "manual": [], "autograded_dir": None, "tmp": None}
                    out["seconds"] = round(time.monotonic() - t0, 2)
                    done.put((out, job))
            finally:
                w.close()

        threads_ = [threading.Thread(target=slot, args=(i,), daemon=True) for i in range(min(jobs, n_todo))]
        for t in threads_:
            t.start()
        for _ in range(n_todo):
            out, job = done.get()
            res = merger.merge(out, out.get("autograded_dir"), job)
            if out.get("tmp"):
                shutil.rmtree(out["tmp"], ignore_errors=True)
            results.append(res)
            bar.set_postfix_str(f"{res.student_id}: {res.status} {res.score:g}/{res.max_score:g}")
            bar.update(1)
        for t in threads_:
            t.join()
        bar.close()
        merger.close()
        return sorted(results, key=lambda r: r.student_id)
    finally:
        if not os.environ.get("AUTOGRADER_KEEP_WORKDIR"):
            shutil.rmtree(batch, ignore_errors=True)


class _Merger:
    """Writes results into the instructor's gradebook, autograded/ and grading/ (main thread only)."""

    def __init__(self, course: Course, assignment: str, max_scores: dict[str, float]):
        from nbgrader.api import Gradebook

        self.course, self.assignment, self.max_scores = course, assignment, max_scores
        self.gb = Gradebook(course.db_url, course.course_id)
        self.autograded = course.root / course.config.CourseDirectory.get("autograded_directory", "autograded")
        self.records = course.root / "grading" / assignment

    def close(self) -> None:
        self.gb.close()

    def previous(self, job: dict) -> dict | None:
        path = self.records / f"{job['student_id']}.json"
        if not path.is_file():
            return None
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            return None
        if rec.get("hash") != job["hash"]:
            return None
        if rec["status"] != "invalid" and not (self.autograded / job["student_id"] / self.assignment).is_dir():
            return None
        return rec

    def merge(self, out: dict, autograded_dir: str | None, job: dict, reused: bool = False) -> GradeResult:
        sid, a = job["student_id"], self.assignment
        cells = {k: (0.0, mx) for k, mx in self.max_scores.items()}
        for k, v in out.get("cells", {}).items():
            cells[k] = (float(v[0]), float(v[1]))
        res = GradeResult(student_id=sid, assignment=a, status=out["status"], reason=out.get("reason", ""),
                          score=round(sum(s for s, _ in cells.values()), 6),
                          max_score=round(sum(m for _, m in cells.values()), 6), cells=cells,
                          seconds=float(out.get("seconds", 0.0)), reused=reused)
        if not SID_RE.match(sid):
            return res  # cannot be stored in nbgrader's gradebook
        dest = self.autograded / sid / a
        if not reused:
            if dest.exists():
                shutil.rmtree(dest)
            if autograded_dir and Path(autograded_dir).is_dir():
                _copy_results(Path(autograded_dir), dest)
        self.gb.update_or_create_student(sid)
        kwargs = {"timestamp": job["timestamp"]} if job.get("timestamp") else {}
        try:
            sub = self.gb.update_or_create_submission(a, sid, **kwargs)
        except Exception:  # noqa: BLE001 - unparsable timestamp: keep the grade, drop the timestamp
            sub = self.gb.update_or_create_submission(a, sid)
        manual = set(out.get("manual", []))
        multi = len({k.split("/")[0] for k in self.max_scores}) > 1 and any("/" in k for k in self.max_scores)
        for nb in sub.notebooks:
            for grade in nb.grades:
                key = f"{nb.name}/{grade.name}" if multi else grade.name
                if key in manual:
                    grade.auto_score, grade.needs_manual_grade = None, True
                else:
                    grade.auto_score = cells.get(key, (0.0, 0.0))[0]
                    grade.needs_manual_grade = False
        self.gb.db.commit()
        if not reused:
            self.records.mkdir(parents=True, exist_ok=True)
            rec = {**asdict(res), "hash": job["hash"], "manual": sorted(manual)}
            (self.records / f"{sid}.json").write_text(json.dumps(rec, indent=1))
        return res


def _copy_results(src: Path, dest: Path) -> None:
    """Copy only the autograded notebooks and timestamp: plain files, never links or kernel-made files."""
    import stat

    dest.mkdir(parents=True)
    for p in sorted(src.iterdir()):
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode) and (p.suffix == ".ipynb" or p.name == "timestamp.txt"):
            shutil.copyfile(p, dest / p.name, follow_symlinks=False)


def load_records(course_dir: str | Path, assignment: str) -> dict[str, dict]:
    """The status/reason records written by ``grade_submissions`` (student id -> record)."""
    base = load_course(course_dir).root / "grading" / assignment
    out = {}
    for p in sorted(base.glob("*.json")) if base.is_dir() else []:
        try:
            out[p.stem] = json.loads(p.read_text())
        except ValueError:
            continue
    return out
