"""Regenerate the student release (``assignments/NAME``) from the instructor source (``solutions/NAME``).

The output is deterministic: outputs and execution counts cleared, solutions and hidden tests stripped, cell ids
stable, notebooks written in nbformat's canonical JSON. ``check_release`` regenerates into a temporary directory
and compares with what is committed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import nbformat

from .course import AutograderError, Course, load_course, patch_nbgrader, quiet_logger

FORBIDDEN = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store")


def generate_into(course: Course, name: str, root: Path, *, db_url: str | None = None) -> Path:
    """Run nbgrader's GenerateAssignment on a copy of the source in ``root``; return the release folder.

    ``root`` gets ``source/NAME`` (a copy), ``release/NAME`` and, unless ``db_url`` is given, its own gradebook.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    patch_nbgrader()
    src = course.source_path(name)
    if not src.is_dir() or not any(src.glob("*.ipynb")):
        known = ", ".join(course.assignments()) or "none"
        raise AutograderError(
            f"no assignment '{name}': {src} has no notebooks (assignments in {course.source_directory}/: {known})")
    shutil.copytree(src, root / "source" / name, ignore=IGNORE, dirs_exist_ok=True)
    c = course.fresh_config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = course.course_id
    c.CourseDirectory.source_directory = "source"
    c.CourseDirectory.release_directory = "release"
    c.CourseDirectory.db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    c.CourseDirectory.assignment_id = name
    c.GenerateAssignment.force = True
    c.GenerateAssignment.create_assignment = True
    log, buf = quiet_logger("autograder.release")
    conv = GenerateAssignment(coursedir=CourseDirectory(config=c, log=log), config=c, log=log)
    try:
        conv.start()
    except Exception as exc:  # noqa: BLE001
        raise AutograderError(f"nbgrader could not generate '{name}': {exc}\n{buf.getvalue()}") from exc
    out = root / "release" / name
    for nb_path in sorted(out.glob("*.ipynb")):
        _normalize(nb_path)
    return out


def _normalize(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if "id" in cell or nb.nbformat_minor >= 5:
            if not cell.get("id"):
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                seed = grade_id or f"{path.stem}-{i}-{cell.get('source', '')}"
                cell["id"] = hashlib.sha1(seed.encode()).hexdigest()[:12]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        text = cell.get("source", "")
        for marker in FORBIDDEN:
            if marker in text:
                raise AutograderError(f"{path.name}: cell {i} still contains '{marker}' after release; "
                                      "check the delimiters in the source notebook")
    nb.metadata.pop("widgets", None)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def release_assignment(name: str, *, course_dir: str | Path, output_dir: str | Path | None = None) -> Path:
    """Regenerate ``<release_directory>/NAME`` (or ``output_dir``) from ``<source_directory>/NAME``."""
    course = load_course(course_dir)
    out = Path(output_dir) if output_dir else course.release_path(name)
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        built = generate_into(course, name, Path(tmp))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(built, out)
    return out


def _canonical(path: Path) -> str:
    if path.suffix == ".ipynb":
        try:
            return json.dumps(json.loads(path.read_text(encoding="utf-8")), sort_keys=True, indent=1)
        except ValueError:
            pass
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_release(name: str, *, course_dir: str | Path) -> list[str]:
    """Differences between the committed release of NAME and a fresh one (empty list: identical)."""
    course = load_course(course_dir)
    committed = course.release_path(name)
    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        fresh = release_assignment(name, course_dir=course.root, output_dir=Path(tmp) / name)
        if not committed.is_dir():
            return [f"{committed} is missing: run `python -m autograder release {name}`"]
        files_c = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()
                   and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}
        files_f = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        diffs = [f"only in the committed release: {p}" for p in sorted(files_c - files_f)]
        diffs += [f"missing from the committed release: {p}" for p in sorted(files_f - files_c)]
        for rel in sorted(files_c & files_f):
            if _canonical(committed / rel) != _canonical(fresh / rel):
                diffs.append(f"differs from a fresh release: {rel}{_nb_diff(committed / rel, fresh / rel)}")
        return diffs


def _nb_diff(a: Path, b: Path) -> str:
    if a.suffix != ".ipynb":
        return ""
    try:
        ca = json.loads(a.read_text(encoding="utf-8"))["cells"]
        cb = json.loads(b.read_text(encoding="utf-8"))["cells"]
    except (ValueError, KeyError):
        return " (committed file is not a valid notebook)"
    if len(ca) != len(cb):
        return f" ({len(ca)} cells committed vs {len(cb)} fresh)"
    bad = [str(i) for i, (x, y) in enumerate(zip(ca, cb, strict=True)) if x != y]
    return f" (cells {', '.join(bad[:10])})" if bad else " (notebook metadata)"
