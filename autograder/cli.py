"""``python -m autograder {release,reference,grade,export,feedback}``; see autograder/README.md."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .course import AutograderError, load_course
from .model import Limits


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    r.add_argument("names", nargs="*")
    r.add_argument("--all", action="store_true", help="every assignment in the source directory")
    r.add_argument("--check", action="store_true", help="fail if the committed release differs from a fresh one")
    d = Limits()
    q = sub.add_parser("reference", help="run the solution through the hidden checks and cache the reference")
    q.add_argument("assignment")
    q.add_argument("--sandbox", default=None, help="auto (default), bwrap or rlimit")
    g = sub.add_parser("grade", help="grade a folder of submissions")
    g.add_argument("assignment")
    g.add_argument("submissions", type=Path)
    g.add_argument("--jobs", "-j", type=int, default=1)
    g.add_argument("--timeout-cell", type=int, default=None,
                   help=f"seconds per cell (default: the course's Execute.timeout, else {d.timeout_cell})")
    g.add_argument("--timeout-notebook", type=int, default=None,
                   help=f"seconds per notebook (default {d.timeout_notebook})")
    g.add_argument("--memory-mb", type=int, default=None,
                   help=f"kernel address-space limit (default {d.memory_mb})")
    g.add_argument("--sandbox", default=None, help="auto (default), bwrap or rlimit")
    g.add_argument("--force", action="store_true",
                   help="regrade unchanged submissions too, and recompute the reference")
    g.add_argument("--roster", type=Path, default=None,
                   help="class list CSV (id,first_name,last_name,email) naming the students in the gradebook")
    e = sub.add_parser("export", help="write grades to CSV")
    e.add_argument("--csv", required=True, type=Path)
    e.add_argument("--assignment")
    f = sub.add_parser("feedback", help="write per-student feedback HTML")
    f.add_argument("assignment")
    for s in (r, q, g, e, f):
        s.add_argument("--course-dir", type=Path, default=Path("."))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore")
    try:
        return _run(args)
    except AutograderError as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autograder: interrupted", file=sys.stderr)
        return 130


def _run(args) -> int:
    if args.cmd == "release":
        from .release import check_release, release_assignment

        names = load_course(args.course_dir).assignments() if args.all else args.names
        if not names:
            raise AutograderError("name an assignment or pass --all")
        bad = 0
        for name in names:
            if args.check:
                diffs = check_release(name, course_dir=args.course_dir)
                print(f"{name}: {'up to date' if not diffs else 'OUT OF DATE'}")
                for d in diffs:
                    print(f"  {d}")
                if diffs:
                    print(f"  fix: python -m autograder release {name}")
                bad += bool(diffs)
            else:
                out = release_assignment(name, course_dir=args.course_dir)
                print(f"{name}: released to {out}")
        return 1 if bad else 0
    if args.cmd == "reference":
        from .grading import compute_reference

        ref = compute_reference(args.assignment, course_dir=args.course_dir, sandbox=args.sandbox)
        for cell, entries in ref.cells.items():
            print(f"{cell:<30} {len(entries):>6} checks")
        print(f"{args.assignment}: reference of {sum(map(len, ref.cells.values()))} checks in "
              f"{len(ref.cells)} cells cached")
        return 0
    if args.cmd == "grade":
        from .grading import grade_submissions

        results = grade_submissions(args.assignment, args.submissions, course_dir=args.course_dir,
                                    jobs=args.jobs, timeout_cell=args.timeout_cell,
                                    timeout_notebook=args.timeout_notebook, memory_mb=args.memory_mb,
                                    sandbox=args.sandbox, force=args.force, progress=True, roster=args.roster)
        width = max([len(r.student_id) for r in results] + [10])
        for r in results:
            flag = "REVIEW" if r.review else ""
            print(f"{r.student_id:<{width}}  {r.score:>6g}/{r.max_score:<6g} {r.status:<8} {flag:<6} {r.reason}")
        counts = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        n_review = sum(bool(r.review) for r in results)
        print(f"{len(results)} submissions: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
              + (f"; {n_review} flagged for review" if n_review else ""))
        return 0
    if args.cmd == "export":
        from .export import export_csv

        n = export_csv(args.csv, course_dir=args.course_dir, assignment=args.assignment)
        print(f"wrote {n} rows to {args.csv}")
        return 0
    if args.cmd == "feedback":
        from .feedback import generate_feedback

        files = generate_feedback(args.assignment, course_dir=args.course_dir)
        print(f"wrote {len(files)} feedback files under feedback/")
        return 0
    return 2
