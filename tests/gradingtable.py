"""One grading-table harness for every assignment (``tests/assignmentNN/variants.py`` defines ``TABLE``).

A *filled* submission is the released notebook with every answer cell replaced by the solution code (the
``### BEGIN/END SOLUTION`` lines removed), which is what a student who solved everything hands in. A *buggy
variant* is a filled submission with textual patches applied to one answer cell; each patch must match the
solution exactly once, so a variant fails loudly instead of silently testing nothing when the solution changes.
Each variant names the grade cells that must lose their points; every other cell must keep full marks.

``GradingTable.grade`` grades a folder of submissions with the real ``python -m autograder grade`` in a temporary
copy of the course (the repository never gets a gradebook); ``student_path`` runs the release and the filled
release as a student does in Jupyter (visible tests only).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    cell: str  # grade_id of the answer cell to patch
    old: str
    new: str
    loses: frozenset[str]  # grade_ids of the test cells that must score 0
    what: str
    extra: tuple[tuple[str, str], ...] = ()  # further (old, new) patches of the same cell


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _replace_once(text: str, old: str, new: str, where: str) -> str:
    count = text.count(old)
    if count != 1:
        raise ValueError(f"patch for {where} matches {count} times (must be exactly 1): {old!r}")
    return text.replace(old, new)


@dataclass
class Graded:
    records: dict[str, dict]  # student id -> grading/<assignment>/<sid>.json
    course: Path
    elapsed: float
    stdout: str


@dataclass
class GradingTable:
    assignment: str  # e.g. "02-adaptive"
    notebook: str  # e.g. "adaptive.ipynb"
    variants: dict[str, Variant] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return REPO / "solutions" / self.assignment / self.notebook

    @property
    def release(self) -> Path:
        return REPO / "assignments" / self.assignment / self.notebook

    def points(self) -> dict[str, float]:
        """grade_id -> max points of every test cell, in notebook order."""
        return {
            grade_id(c): float(c.metadata["nbgrader"]["points"])
            for c in read(self.source).cells
            if c.metadata.get("nbgrader", {}).get("grade")
        }

    def solution_code(self) -> dict[str, str]:
        """grade_id -> the solution answer cell's code without the BEGIN/END SOLUTION lines."""
        out = {}
        for cell in read(self.source).cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
                lines = cell.source.splitlines()
                kept = [ln for ln in lines if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
                out[grade_id(cell)] = "\n".join(kept)
        return out

    def submission(self, variant: str | None = None) -> nbformat.NotebookNode:
        """The release filled with the solution; with ``variant``, that variant's bug patched in."""
        nb = copy.deepcopy(read(self.release))
        code = self.solution_code()
        if variant is not None:
            v = self.variants[variant]
            for old, new in ((v.old, v.new), *v.extra):
                code[v.cell] = _replace_once(code[v.cell], old, new, variant)
        for cell in nb.cells:
            if grade_id(cell) in code:
                cell.source = code[grade_id(cell)]
        return nb

    def expected_scores(self, variant: str | None) -> dict[str, float]:
        """Per test cell: full points, except the cells the variant must lose."""
        loses = self.variants[variant].loses if variant else frozenset()
        return {gid: (0.0 if gid in loses else pts) for gid, pts in self.points().items()}

    def write_submissions(self, folder: Path) -> dict[str, dict[str, float]]:
        """Write ``solution``, ``release`` and every variant as ``<student_id>.ipynb`` into ``folder``;
        return student_id -> expected per-cell scores."""
        folder.mkdir(parents=True, exist_ok=True)
        expected = {}
        nbformat.write(self.submission(), folder / "solution.ipynb")
        expected["solution"] = self.expected_scores(None)
        nbformat.write(read(self.release), folder / "release.ipynb")
        expected["release"] = {gid: 0.0 for gid in self.points()}
        for name in self.variants:
            student = name.replace("_", "-")
            nbformat.write(self.submission(name), folder / f"{student}.ipynb")
            expected[student] = self.expected_scores(name)
        return expected

    def grade(self, tmp_path: Path, submissions: Path, jobs: int = 2) -> Graded:
        """``python -m autograder grade`` on ``submissions`` in a fresh course copy under ``tmp_path``."""
        from autograder.grading import load_records

        course = tmp_path / "course"
        for folder in ("solutions", "assignments"):
            shutil.copytree(REPO / folder / self.assignment, course / folder / self.assignment)
        shutil.copy(REPO / "nbgrader_config.py", course)
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "autograder", "grade", self.assignment, str(submissions), "--jobs", str(jobs),
               "--course-dir", str(course)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3000)
        elapsed = time.perf_counter() - start
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        return Graded(load_records(course, self.assignment), course, elapsed, proc.stdout)

    def check_table(self, graded: Graded, expected: dict[str, dict[str, float]]) -> None:
        """Every honest submission: status graded, no review flag, exactly its expected per-cell scores."""
        wrong = {}
        for student, want in expected.items():
            rec = graded.records.get(student)
            assert rec is not None, (student, "not graded", graded.stdout[-2000:])
            assert rec["status"] == "graded", (student, rec["status"], rec["reason"])
            assert rec["max_score"] == sum(self.points().values())
            assert rec["review"] == [], (student, rec["review"])
            got = {gid: float(score) for gid, (score, _max) in rec["cells"].items()}
            diff = {g: (got.get(g), v, rec["messages"].get(g)) for g, v in want.items() if got.get(g) != v}
            if diff:
                wrong[student] = diff
        assert not wrong, wrong

    def student_path(self, tmp_path: Path, timeout: int = 600) -> dict[str, dict[str, str | None]]:
        """Run the untouched release and the filled release in a plain Jupyter kernel, every cell, as a student's
        "Restart Kernel and Run All Cells" with errors allowed. Return, for each, grade_id -> the error name of
        every visible test cell (None when it passed)."""
        from nbclient import NotebookClient

        out = {}
        for name, nb in (("release", copy.deepcopy(read(self.release))), ("filled", self.submission())):
            folder = tmp_path / name
            folder.mkdir(parents=True)
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                    resources={"metadata": {"path": str(folder)}})
            client.execute()
            errors = {}
            for cell in nb.cells:
                if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                    err = [o for o in cell.outputs if o.output_type == "error"]
                    errors[grade_id(cell)] = err[0].ename if err else None
            nbformat.write(nb, folder / self.notebook)
            out[name] = errors
        return out
