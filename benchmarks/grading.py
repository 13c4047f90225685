"""Grading throughput: plain sequential `nbgrader autograde` vs `python -m autograder grade --jobs N`.

Grades N copies of a real assignment's submission (the instructor's solution notebook, so every test runs)
both ways, in throw-away course directories, and prints both wall-clock times and their ratio.

    .venv/bin/python benchmarks/grading.py [--assignment 01-optimizers] [--copies 8] [--jobs 2]

Fair comparison: plain nbgrader runs the same notebooks, hidden blocks included, in kernels that define the
hidden-check API (``record``/``raises``/``rules``, writing the same records to a file); the one-off setup of
each side is timed separately and not in the ratio (nbgrader's ``generate_assignment``; the autograder's
reference run of the solution, which is cached per assignment version and shared by every later batch).

Timings on a shared machine are noisy; run it on an otherwise idle one. Goals: ratio >= 1.8 on 2 cores and
<= 30 s per submission.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _course(base: Path, src_course: Path, assignment: str, copies: int) -> Path:
    course = base
    course.mkdir(parents=True)
    if (src_course / "nbgrader_config.py").is_file():
        shutil.copy(src_course / "nbgrader_config.py", course)
    from autograder.course import load_course

    c = load_course(src_course)
    shutil.copytree(c.source_path(assignment), course / c.source_directory / assignment)
    for i in range(copies):
        d = course / "submitted" / f"s{i:03d}" / assignment
        d.mkdir(parents=True)
        for nb in c.source_path(assignment).glob("*.ipynb"):
            shutil.copy(nb, d / nb.name)
    return course


def _ipython_with_checks_api(folder: Path) -> Path:
    """An IPYTHONDIR whose startup file defines the hidden-check API in every plain nbgrader kernel."""
    from autograder.checks import prelude_source

    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True)
    code = prelude_source(str(folder / "records.jsonl"), "benchmark")
    code += "\nrecord, raises, rules = __autograder_record__, __autograder_raises__, __autograder_rules__\n"
    (startup / "00-hidden-check-api.py").write_text(code)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assignment", default="01-optimizers")
    ap.add_argument("--course-dir", type=Path, default=ROOT)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=1800, help="give up on either run after this many seconds")
    args = ap.parse_args()
    src = args.course_dir.resolve()
    if not (src / "solutions" / args.assignment).is_dir():
        print(f"no solutions/{args.assignment} in {src}; using the test fixture assignment")
        src, args.assignment = ROOT / "tests/fixtures/autograder/course", "fixture"
    from autograder.grading import compute_reference, grade_submissions
    from autograder.sandbox import resolve_mode

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
               "IPYTHONDIR": str(_ipython_with_checks_api(Path(tmp) / "ipython"))}
        nbgrader = [sys.executable, "-m", "nbgrader"]
        plain = _course(Path(tmp) / "plain", src, args.assignment, args.copies)
        subprocess.run(nbgrader + ["generate_assignment", args.assignment, "--force"], cwd=plain, env=env,
                       check=True, capture_output=True)
        t0 = time.perf_counter()
        proc = subprocess.run(nbgrader + ["autograde", args.assignment, "--force"], cwd=plain, env=env,
                              capture_output=True, text=True, timeout=args.timeout)
        t_plain = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            print(f"plain nbgrader autograde failed (rc={proc.returncode})")
        ours = _course(Path(tmp) / "ours", src, args.assignment, 0)
        t0 = time.perf_counter()
        reference = compute_reference(args.assignment, course_dir=ours)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = grade_submissions(args.assignment, plain / "submitted", course_dir=ours, jobs=args.jobs,
                                    progress=True)
        t_ours = time.perf_counter() - t0
    statuses = sorted({(r.status, r.score, r.max_score, bool(r.review)) for r in results})
    n = args.copies
    print(f"assignment {args.assignment}: {n} submissions, {os.cpu_count()} CPUs, sandbox {resolve_mode(None)}")
    print(f"plain sequential nbgrader autograde: {t_plain:7.1f} s  ({t_plain / n:.1f} s/submission)")
    print(f"autograder grade --jobs {args.jobs}:        {t_ours:7.1f} s  ({t_ours / n:.1f} s/submission)")
    print(f"ratio (plain / ours): {t_plain / t_ours:.2f}x   results (status, score, max, review): {statuses}")
    print(f"one-off reference run ({sum(map(len, reference.cells.values()))} checks): {t_ref:.1f} s; "
          f"including it, ratio {t_plain / (t_ours + t_ref):.2f}x")
    return 0 if all(r.status == "graded" and r.score == r.max_score for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
