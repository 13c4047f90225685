"""Grade a folder of submissions in parallel, each in its own throw-away course directory and sandbox.

Accepted layouts of SUBMISSIONS (both may be mixed):

- nbgrader's ``submitted/``: ``SUBMISSIONS/<student_id>/<assignment>/<notebook>.ipynb`` (plus data files and
  an optional ``timestamp.txt``); ``SUBMISSIONS/<student_id>/<notebook>.ipynb`` is accepted too;
- a flat folder, as an LMS download gives: ``SUBMISSIONS/<student_id>.ipynb`` (assignments with one notebook).

Order of work: a preflight check that a sandboxed kernel starts (else one clear error, nothing graded); the
instructor's solution is run through the hidden checks to produce the reference records (cached under
``grading/<assignment>/.reference/`` with a fingerprint) while the workers start on the students; scores are
decided outside every kernel (``scoring.py``) and merged into the instructor's gradebook here. Autograded
notebooks go to ``<course>/autograded/<sid>/<assignment>/`` and a record with status and reason to
``<course>/grading/<assignment>/<sid>.json``. Submissions are only ever read.

The gradebook is left as nbgrader's own ``collect`` + ``autograde`` would leave it, so formgrader continues where
the command line stopped: a copy of each stored submission in ``<course>/submitted/<sid>/<assignment>/`` (what
formgrader counts as submissions; skipped when SUBMISSIONS is that folder), students named (from ``--roster``,
else the student id as the last name), and a submission is in the gradebook exactly when its autograded
notebook exists (``invalid`` and ``error`` ones are not: they would count in the averages but be missing from
manual grading).
"""

from __future__ import annotations

import csv
import dataclasses
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
from .model import Job, Limits, Status, WorkerResult, WorkerSettings, cell_key, from_json, to_json
from .sandbox import FALLBACK_WARNING, KERNEL_NAME, preflight, resolve_mode, sandbox_settings, write_kernelspec
from .scoring import (
    REFERENCE_ID,
    Reference,
    Scored,
    build_reference,
    read_worker_records,
    reference_fingerprint,
    score,
)

SID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
STATUSES = tuple(s.value for s in Status)
NOT_STORED = (Status.INVALID.value, Status.ERROR.value)  # never in the gradebook (nothing autograded to look at)
ROSTER_FIELDS = ("first_name", "last_name", "email", "lms_user_id")
GRADER_VERSION = "2"  # part of the regrade fingerprint: bump when grading itself changes


@dataclass
class GradeResult:
    student_id: str
    assignment: str
    status: str  # one of STATUSES
    reason: str
    score: float
    max_score: float
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)  # trusted scores
    seconds: float = 0.0
    reused: bool = False  # True when an unchanged submission's earlier result was kept
    in_kernel: dict[str, tuple[float, float]] = field(default_factory=dict)  # nbgrader's in-kernel verdict
    messages: dict[str, str] = field(default_factory=dict)  # per cell: why it lost its points
    review: list[str] = field(default_factory=list)  # why a person should look at it (empty: no review)
    late_penalty: float = 0.0
    seconds_late: float = 0.0


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


def discover(assignment: str, root: Path, notebooks: list[str]) -> list[Job]:
    if not root.is_dir():
        raise AutograderError(f"submissions folder {root} does not exist")
    jobs: dict[str, Job] = {}
    flat = sorted(p for p in root.iterdir() if p.is_file() and p.suffix == ".ipynb")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if flat and len(notebooks) != 1:
        raise AutograderError(f"{root} holds <student_id>.ipynb files, but '{assignment}' has {len(notebooks)} "
                              f"notebooks; use the <student_id>/{assignment}/<notebook>.ipynb layout")
    for p in flat:
        jobs[p.stem] = Job(student_id=p.stem, files={notebooks[0]: str(p)})
    for d in dirs:
        sid = d.name
        adir = d / assignment if (d / assignment).is_dir() else (d if any(d.glob("*.ipynb")) else None)
        job = Job(student_id=sid)
        if sid in jobs:
            job.notes.append(f"both {sid}.ipynb and {sid}/ were found; graded the folder")
        jobs[sid] = job
        if adir is None:
            job.notes.append(f"no notebook in {d.name}/{assignment}/")
            continue
        found = sorted(adir.glob("*.ipynb"))
        for nb in notebooks:
            if (adir / f"{nb}.ipynb").is_file():
                job.files[nb] = str(adir / f"{nb}.ipynb")
        missing = [nb for nb in notebooks if nb not in job.files]
        unmatched = [p for p in found if p.stem not in notebooks]
        if len(missing) == 1 and len(unmatched) == 1:
            job.files[missing[0]] = str(unmatched[0])
            job.notes.append(f"renamed notebook '{unmatched[0].name}' graded as '{missing[0]}.ipynb'")
        for p in sorted(adir.rglob("*")):
            rel = p.relative_to(adir)
            if p.is_file() and p.suffix != ".ipynb" and rel.parts[0] not in (".ipynb_checkpoints", "timestamp.txt"):
                job.extras.append((str(p), str(rel)))
        if (adir / "timestamp.txt").is_file():
            job.timestamp = (adir / "timestamp.txt").read_text(errors="replace").strip()[:100]
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


def regrade_fingerprint(source_digest: str, limits: Limits, mode: str) -> str:
    """What a stored result depends on besides the submission: the assignment source, every limit, the sandbox
    mode and the grader's version."""
    return hashlib.sha256(json.dumps([source_digest, limits.fingerprint(), mode, GRADER_VERSION]).encode()
                          ).hexdigest()


def job_hash(fingerprint: str, job: Job) -> str:
    files = _sha(sorted(job.files.values()) + [src for src, _ in job.extras])
    return hashlib.sha256((fingerprint + files + json.dumps(job.notes) + str(job.timestamp)).encode()).hexdigest()


def make_limits(course: Course, **overrides) -> Limits:
    """The run's limits: ``Limits`` defaults, the course's ``Execute.timeout`` for the per-cell timeout, then
    explicit overrides (``None`` means "not given")."""
    names = {f.name for f in dataclasses.fields(Limits)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown limits {sorted(unknown)}")
    values = {k: v for k, v in overrides.items() if v is not None}
    if "timeout_cell" not in values:
        course_timeout = course.config.Execute.get("timeout")
        if course_timeout:
            values["timeout_cell"] = int(course_timeout)
    limits = dataclasses.replace(Limits(), **values)
    limits.validate()
    return limits


class _Worker:
    """One long-lived ``autograder.worker`` process (imports nbgrader once; ~2-4 s start-up)."""

    def __init__(self, settings_path: Path, log_path: Path):
        self.settings_path, self.log_path, self.proc = settings_path, log_path, None
        self.lock = threading.Lock()

    def _start(self) -> None:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
               "PYTHONUNBUFFERED": "1"}
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.worker", str(self.settings_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True, env=env, cwd=str(self.settings_path.parent))

    def kill(self) -> None:
        with self.lock:
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

    def run(self, job: Job, limit: float) -> WorkerResult | str:
        if self.proc is None:
            self._start()
        proc = self.proc
        try:
            proc.stdin.write((to_json(job) + "\n").encode())
            proc.stdin.flush()
        except (OSError, AttributeError):
            self.kill()
            return "the grading worker died"
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return f"grading did not finish within {int(limit)} s; the grader and kernel were killed"
            try:
                ready, _, _ = select.select([proc.stdout], [], [], min(left, 5))
            except (ValueError, OSError):  # killed from another thread
                return "the grading worker was stopped"
            if ready:
                line = proc.stdout.readline()
                if not line:
                    self.kill()
                    return f"the grading worker crashed while grading it (log: {self.log_path})"
                return from_json(WorkerResult, line)


def read_roster(path: str | Path) -> dict[str, dict[str, str | None]]:
    """A class list in nbgrader's ``db student import`` format: a CSV with an ``id`` (or ``student_id``) column
    and any of ``first_name``, ``last_name``, ``email``, ``lms_user_id``. Returns id -> those fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AutograderError(f"cannot read the roster {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    columns = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
    id_col = columns.get("id") or columns.get("student_id")
    if id_col is None:
        raise AutograderError(f"the roster {path} has no 'id' column; expected a CSV header such as "
                              "id,first_name,last_name,email (nbgrader's `db student import` format)")
    out: dict[str, dict[str, str | None]] = {}
    for line, row in enumerate(reader, start=2):
        sid = (row.get(id_col) or "").strip()
        if not sid:
            continue
        if not SID_RE.match(sid):
            raise AutograderError(f"the roster {path}, line {line}: student id {sid!r} has characters nbgrader "
                                  "does not accept (letters, digits and _.@+- only)")
        out[sid] = {f: ((row.get(columns[f]) or "").strip() or None) for f in ROSTER_FIELDS if f in columns}
    return out


def grade_submissions(assignment: str, submissions: str | Path | None, *, course_dir: str | Path = ".", jobs: int = 1,
                      sandbox: str | None = None, force: bool = False, progress: bool = False,
                      work_dir: str | Path | None = None, limits: Limits | None = None,
                      roster: str | Path | None = None, **limit_overrides) -> list[GradeResult]:
    """Grade every submission of ASSIGNMENT in SUBMISSIONS; see the module docstring. Limits: ``limits`` or
    keyword overrides of :class:`~autograder.model.Limits` fields (``timeout_cell=...``, ``memory_mb=...``).
    ``roster``: an optional class list (CSV, see :func:`read_roster`) naming the students in the gradebook."""
    import warnings

    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    course = load_course(course_dir)
    only_reference = submissions is None
    if only_reference:
        force = True
    else:
        submissions = Path(submissions).resolve()
        if not submissions.is_dir():
            raise AutograderError(f"submissions folder {submissions} does not exist")
    limits = limits or make_limits(course, **limit_overrides)
    names = read_roster(roster) if roster else {}
    mode = resolve_mode(sandbox)
    if mode == "rlimit":
        print(FALLBACK_WARNING, file=sys.stderr, flush=True)
    jobs = max(1, int(jobs))
    patch_nbgrader()
    from .release import generate_into
    from .rules import parse_context

    batch = Path(os.path.realpath(tempfile.mkdtemp(prefix="autograder-", dir=work_dir)))
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
                max_scores[cell_key(notebooks, nb, gid)] = mx
        source_dir = template / "source" / assignment
        sources = {nb: json.loads((source_dir / f"{nb}.ipynb").read_text(encoding="utf-8")) for nb in notebooks}
        static = parse_context(sources, error=_raise)
        hidden_cells = {cell_key(notebooks, nb, c["metadata"]["nbgrader"]["grade_id"])
                        for nb, node in sources.items() for c in node["cells"]
                        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                        and "BEGIN HIDDEN TESTS" in "".join(c.get("source", ""))}

        hide = [course.root, batch] + ([] if only_reference else [submissions])
        if work_dir:
            hide.append(Path(work_dir).resolve())
        write_kernelspec(batch, sandbox_settings(mode, limits=limits, hide=hide, threads=limits.threads))
        preflight(batch)  # one clear error, and nothing graded, if a sandboxed kernel cannot start

        # register the assignment (notebooks, grade cells) in the instructor's gradebook
        generate_into(course, assignment, batch / "instructor", db_url=course.db_url)
        (batch / "work").mkdir()
        settings = WorkerSettings(
            assignment=assignment, course_dir=str(course.root), course_id=course.course_id,
            template_db=str(template / "gradebook.db"), files_dir=str(files_dir), work_root=str(batch / "work"),
            jupyter_path=str(batch), kernel_name=KERNEL_NAME, notebooks=notebooks, max_scores=max_scores,
            tests=tests, limits=limits, static=static)
        settings_path = batch / "worker.json"
        settings_path.write_text(to_json(settings))
        source_digest = _sha(sorted(str(p) for p in (template / "source").rglob("*") if p.is_file()), template)
        fingerprint = regrade_fingerprint(source_digest, limits, mode)
        ref_fp = reference_fingerprint(source_digest, limits.threads)
        ref_path = course.root / "grading" / assignment / ".reference" / "reference.json"
        reference = None if force else Reference.load(ref_path, ref_fp)

        todo = [] if only_reference else discover(assignment, submissions, notebooks)
        merger = _Merger(course, assignment, max_scores, static, notebooks, roster=names,
                         submissions=None if only_reference else submissions)
        ready: list[tuple] = []  # merges waiting for the reference: (kind, payload, job)
        pending: queue.Queue = queue.Queue()
        if reference is None:
            ref_job = Job(student_id=REFERENCE_ID, reference=True,
                          files={nb: str(source_dir / f"{nb}.ipynb") for nb in notebooks})
            pending.put(ref_job)
        for job in todo:
            job.hash = job_hash(fingerprint, job)
            if not SID_RE.match(job.student_id):
                job.invalid = (f"student id '{job.student_id}' has characters nbgrader does not accept; "
                               "rename the file/folder to letters, digits and _.@+-")
            prev = None if force else merger.previous(job)
            if prev is not None:
                ready.append(("reused", prev, job))
            elif job.invalid:
                ready.append(("result", WorkerResult(student_id=job.student_id, status=Status.INVALID,
                                                     reason=job.invalid), job))
            else:
                pending.put(job)
        n_todo = pending.qsize()
        from tqdm import tqdm

        bar = tqdm(total=n_todo, desc=f"grading {assignment}", unit="nb", file=sys.stderr,
                   disable=not progress or n_todo == 0)
        done: queue.Queue = queue.Queue()
        stop = threading.Event()
        limit = limits.timeout_notebook + limits.worker_grace_s
        workers: list[_Worker] = []

        def slot(i: int) -> None:
            w = _Worker(settings_path, batch / f"worker-{i}.log")
            workers.append(w)
            try:
                while not stop.is_set():
                    try:
                        job = pending.get_nowait()
                    except queue.Empty:
                        return
                    t0 = time.monotonic()
                    out = w.run(job, limit)
                    if isinstance(out, str):
                        out = WorkerResult(student_id=job.student_id, reason=out,
                                           status=Status.TIMEOUT if "did not finish" in out else Status.ERROR)
                    out.seconds = round(time.monotonic() - t0, 2)
                    done.put((out, job))
            finally:
                w.close()

        threads_ = [threading.Thread(target=slot, args=(i,), daemon=True) for i in range(min(jobs, n_todo))]
        for t in threads_:
            t.start()
        results: list[GradeResult] = []
        try:
            for _ in range(n_todo):
                out, job = done.get()
                bar.update(1)
                if job.reference:
                    reference = _make_reference(out, max_scores, ref_fp, hidden_cells, ref_path, assignment)
                    continue
                ready.append(("result", out, job))
                if reference is None:
                    continue
                for item in ready:
                    res = _merge(merger, reference, item)
                    results.append(res)
                    bar.set_postfix_str(f"{res.student_id}: {res.status} {res.score:g}/{res.max_score:g}")
                ready.clear()
            if reference is None:  # nothing was graded in this run (everything reused or invalid)
                reference = Reference.load(ref_path, ref_fp) or Reference(fingerprint=ref_fp, cells={})
            for item in ready:
                results.append(_merge(merger, reference, item))
            ready.clear()
        except BaseException:
            stop.set()
            for w in list(workers):
                w.kill()
            raise
        finally:
            for t in threads_:
                t.join(timeout=60)
            bar.close()
            merger.close()
        return sorted(results, key=lambda r: r.student_id)
    finally:
        if not os.environ.get("AUTOGRADER_KEEP_WORKDIR"):
            shutil.rmtree(batch, ignore_errors=True)


def _raise(message: str):
    raise AutograderError(message)


def _make_reference(out: WorkerResult, max_scores, ref_fp, hidden_cells, ref_path: Path, assignment: str
                    ) -> Reference:
    records = read_worker_records(out)
    try:
        reference, warnings = build_reference(out, records, max_scores, ref_fp, hidden_cells)
    except ValueError as exc:
        raise AutograderError(f"the instructor's solution of '{assignment}' does not pass its own tests, so "
                              f"there is no reference to compare with and nothing was graded: {exc}") from None
    finally:
        if out.tmp:
            shutil.rmtree(out.tmp, ignore_errors=True)
    for w in warnings:
        print(f"autograder: note: {w}", file=sys.stderr)
    reference.save(ref_path)
    return reference


def compute_reference(assignment: str, *, course_dir: str | Path = ".", sandbox: str | None = None,
                      work_dir: str | Path | None = None) -> Reference:
    """Run the instructor's solution through the hidden checks now and cache the reference
    (``python -m autograder reference NAME``; ``grade`` does the same when the cache is stale)."""
    course = load_course(course_dir)
    grade_submissions(assignment, None, course_dir=course.root, sandbox=sandbox, work_dir=work_dir)
    data = json.loads((course.root / "grading" / assignment / ".reference" / "reference.json").read_text())
    return Reference(fingerprint=data["fingerprint"], cells=data["cells"])


def _merge(merger: _Merger, reference: Reference, item: tuple) -> GradeResult:
    kind, payload, job = item
    if kind == "reused":
        return merger.merge_reused(payload, job)
    out: WorkerResult = payload
    try:
        records = read_worker_records(out)
        scored = score(out, records, reference, merger.static, merger.max_scores)
        return merger.merge(out, scored, job)
    finally:
        if out.tmp:
            shutil.rmtree(out.tmp, ignore_errors=True)


class _Merger:
    """Writes results into the instructor's gradebook, autograded/ and grading/ (main thread only)."""

    def __init__(self, course: Course, assignment: str, max_scores: dict[str, float], static,
                 notebooks: list[str], roster: dict[str, dict] | None = None, submissions: Path | None = None):
        from nbgrader.api import Gradebook

        self.course, self.assignment, self.max_scores, self.static = course, assignment, max_scores, static
        self.notebooks = notebooks
        self.gb = Gradebook(course.db_url, course.course_id)
        cd = course.config.CourseDirectory
        self.autograded = course.root / cd.get("autograded_directory", "autograded")
        self.submitted = course.root / cd.get("submitted_directory", "submitted")
        self.submissions = Path(os.path.realpath(submissions)) if submissions else None
        self.records = course.root / "grading" / assignment
        self.roster = roster or {}
        for sid in sorted(self.roster):
            self._ensure_student(sid)
        self.gb.db.commit()

    def close(self) -> None:
        self.gb.close()

    def previous(self, job: Job) -> dict | None:
        path = self.records / f"{job.student_id}.json"
        if not path.is_file():
            return None
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            return None
        if rec.get("hash") != job.hash:
            return None
        if rec["status"] != "invalid" and not (self.autograded / job.student_id / self.assignment).is_dir():
            return None
        return rec

    def merge_reused(self, rec: dict, job: Job) -> GradeResult:
        fields = {f.name for f in dataclasses.fields(GradeResult)}
        res = GradeResult(**{k: v for k, v in rec.items() if k in fields})
        res.cells = {k: (float(v[0]), float(v[1])) for k, v in res.cells.items()}
        res.in_kernel = {k: (float(v[0]), float(v[1])) for k, v in res.in_kernel.items()}
        res.reused = True
        self._write_gradebook(res, job, set(rec.get("manual", [])), set(rec.get("review_cells", [])))
        return res

    def merge(self, out: WorkerResult, scored: Scored, job: Job) -> GradeResult:
        sid, a = job.student_id, self.assignment
        cells = {k: (0.0, mx) for k, mx in self.max_scores.items()}
        cells.update(scored.cells)
        reason = [out.reason] if out.reason else []
        reason += scored.notes
        if scored.review:
            reason.append("REVIEW: " + "; ".join(scored.review))
        res = GradeResult(student_id=sid, assignment=a, status=str(out.status), reason="; ".join(reason),
                          score=round(sum(s for s, _ in cells.values()), 6),
                          max_score=round(sum(m for _, m in cells.values()), 6), cells=cells,
                          seconds=float(out.seconds), in_kernel=dict(out.in_kernel), messages=scored.messages,
                          review=scored.review)
        if not SID_RE.match(sid):
            return res  # cannot be stored in nbgrader's gradebook
        dest = self.autograded / sid / a
        if dest.exists():
            shutil.rmtree(dest)
        if out.autograded_dir and Path(out.autograded_dir).is_dir():
            _copy_results(Path(out.autograded_dir), dest, job.timestamp,
                          [src for src, rel in job.extras if rel == "submission_secret.txt"])
            _annotate(dest, res, scored, self.notebooks)
        note = self._write_gradebook(res, job, set(out.manual), set(scored.review_cells))
        if note:
            res.reason = "; ".join(x for x in (res.reason, note) if x)
        self.records.mkdir(parents=True, exist_ok=True)
        rec = {**asdict(res), "hash": job.hash, "manual": sorted(out.manual),
               "review_cells": sorted(scored.review_cells), "trusted": scored.trusted}
        (self.records / f"{sid}.json").write_text(json.dumps(rec, indent=1))
        return res

    def _ensure_student(self, sid: str) -> None:
        """The student in the gradebook, named from the roster, else (if nobody named them) with the student id
        as the last name, so formgrader never lists "None, None"."""
        from nbgrader.api import MissingEntry

        fields = {k: v for k, v in self.roster.get(sid, {}).items() if v is not None}
        try:
            student = self.gb.find_student(sid)
        except MissingEntry:
            student = None
        unnamed = student is None or (not student.first_name and not student.last_name)
        if unnamed and not (fields.get("first_name") or fields.get("last_name")):
            fields.update(last_name=sid, first_name="")
        if fields or student is None:
            self.gb.update_or_create_student(sid, **fields)

    def _is_input(self, path: Path) -> bool:
        """Whether ``path`` lies inside the SUBMISSIONS folder being graded (never written or removed)."""
        if self.submissions is None:
            return False
        real = Path(os.path.realpath(path))
        return real == self.submissions or self.submissions in real.parents or real in self.submissions.parents

    def _forget(self, sid: str) -> None:
        """Nothing gradable (invalid, or the grader failed): no submission in the gradebook and no copy in
        submitted/, so formgrader's counts, averages and manual-grading list agree."""
        from nbgrader.api import MissingEntry

        try:
            self.gb.remove_submission(self.assignment, sid)
        except MissingEntry:
            pass
        copy = self.submitted / sid / self.assignment
        if copy.is_dir() and not self._is_input(copy):
            shutil.rmtree(copy)

    def _copy_submitted(self, job: Job, timestamp_ok: bool) -> None:
        """What was graded, in nbgrader's ``submitted/<sid>/<assignment>/`` layout (what ``nbgrader collect``
        leaves), so formgrader counts it; the timestamp only if nbgrader could read it (formgrader compares it
        with the gradebook's). Skipped when the submissions being graded are that very folder."""
        dest = self.submitted / job.student_id / self.assignment
        if self._is_input(dest):
            return
        tmp = dest.parent / f".{self.assignment}.copying"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for nb, src in sorted(job.files.items()):
            shutil.copyfile(src, tmp / f"{nb}.ipynb")
        for src, rel in job.extras:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        if job.timestamp and timestamp_ok:
            (tmp / "timestamp.txt").write_text(job.timestamp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)

    def _write_gradebook(self, res: GradeResult, job: Job, manual: set[str], review_cells: set[str]) -> str:
        """Scores into the gradebook; late penalty per nbgrader's LateSubmissionPlugin. Returns a note."""
        sid, a = res.student_id, self.assignment
        if not SID_RE.match(sid):
            return ""
        note = ""
        self._ensure_student(sid)
        if res.status in NOT_STORED or not any((self.autograded / sid / a).glob("*.ipynb")):
            try:
                self._forget(sid)
            except OSError as exc:
                note = f"could not remove the earlier copy in {self.submitted.name}/: {exc}"
            self.gb.db.commit()
            return note
        try:
            sub = self.gb.update_or_create_submission(a, sid, **({"timestamp": job.timestamp}
                                                                  if job.timestamp else {}))
        except Exception:  # noqa: BLE001 - unparsable timestamp: keep the grade, drop the timestamp
            self.gb.db.rollback()
            sub = self.gb.update_or_create_submission(a, sid)
            note = f"timestamp.txt ({job.timestamp!r}) is not a date nbgrader can read; it was ignored"
        for nb in sub.notebooks:
            for grade in nb.grades:
                key = cell_key(self.notebooks, nb.name, grade.name)
                if key in manual:
                    grade.auto_score, grade.needs_manual_grade = None, True
                else:
                    grade.auto_score = res.cells.get(key, (0.0, 0.0))[0]
                    grade.needs_manual_grade = key in review_cells
        self.gb.db.commit()
        seconds_late = float(sub.total_seconds_late or 0.0)
        plugin = _late_plugin(self.course)
        total_penalty = 0.0
        for nb in sub.notebooks:
            nb.late_submission_penalty = None
            if seconds_late > 0:
                penalty = plugin.late_submission_penalty(sid, nb.score, seconds_late)
                if penalty is not None:
                    nb.late_submission_penalty = min(max(float(penalty), 0.0), float(nb.score))
                    total_penalty += nb.late_submission_penalty
        self.gb.db.commit()
        res.seconds_late, res.late_penalty = seconds_late, total_penalty
        try:
            self._copy_submitted(job, timestamp_ok=sub.timestamp is not None)
        except OSError as exc:  # the grade stands; formgrader will not count this submission
            note = "; ".join(x for x in (note, f"could not copy it into {self.submitted.name}/: {exc}") if x)
        return note


def _late_plugin(course: Course):
    from nbgrader.preprocessors import AssignLatePenalties

    return AssignLatePenalties(config=course.fresh_config()).plugin_class(config=course.fresh_config())


def _copy_results(src: Path, dest: Path, timestamp: str | None, secret: list[str] | None = None) -> None:
    """Copy only the autograded notebooks (plain files, never links); the timestamp (and an nbgrader exchange's
    ``submission_secret.txt``, which ``release_feedback`` needs) come from the submission as read before
    grading, never from the folder the kernel could write to."""
    import stat

    dest.mkdir(parents=True)
    for p in sorted(src.iterdir()):
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode) and p.suffix == ".ipynb":
            shutil.copyfile(p, dest / p.name, follow_symlinks=False)
    if timestamp:
        (dest / "timestamp.txt").write_text(timestamp)
    for path in secret or []:
        shutil.copyfile(path, dest / "submission_secret.txt")


def _annotate(dest: Path, res: GradeResult, scored: Scored, notebooks: list[str]) -> None:
    """Write the trusted verdict of each graded cell into the autograded notebooks (formgrader and feedback
    show it): ``metadata.autograder.trusted`` = score, points, whether checks decided it, and the message."""
    import nbformat

    for path in sorted(dest.glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - nbgrader wrote it; leave it alone if it cannot be read
            continue
        for cell in nb.cells:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            key = cell_key(notebooks, path.stem, gid) if gid else None
            if not gid or key not in res.cells:
                continue
            got, mx = res.cells[key]
            meta = cell.metadata.setdefault("autograder", {})
            meta["trusted"] = {"score": got, "points": mx, "checked": bool(scored.trusted.get(key)),
                               "message": scored.messages.get(key, "")}
        nbformat.write(nb, path)


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
