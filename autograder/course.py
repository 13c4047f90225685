"""Where a course lives and what its nbgrader settings are, independent of the current directory."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader


class AutograderError(Exception):
    """A problem the user can fix; the CLI prints the message without a traceback."""


@dataclass
class Course:
    root: Path
    config: Config
    course_id: str
    source_directory: str
    release_directory: str
    db_url: str

    def source_path(self, assignment: str) -> Path:
        return self.root / self.source_directory / assignment

    def release_path(self, assignment: str) -> Path:
        return self.root / self.release_directory / assignment

    def fresh_config(self) -> Config:
        """A deep copy of the course's nbgrader config, safe to modify."""
        return copy.deepcopy(self.config)

    def assignments(self) -> list[str]:
        base = self.root / self.source_directory
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def load_course(course_dir: str | Path) -> Course:
    """Read ``<course_dir>/nbgrader_config.py`` (if any) and fill in the defaults this course uses."""
    root = Path(course_dir).resolve()
    if not root.is_dir():
        raise AutograderError(f"course directory {root} does not exist (pass --course-dir DIR)")
    config = Config()
    cfg_file = root / "nbgrader_config.py"
    if cfg_file.is_file():
        try:
            config = PyFileConfigLoader(cfg_file.name, path=str(root)).load_config()
        except Exception as exc:  # noqa: BLE001 - report any config error plainly
            raise AutograderError(f"could not read {cfg_file}: {exc}") from exc
    cd = config.CourseDirectory
    source = cd.get("source_directory", "solutions")
    release = cd.get("release_directory", "assignments")
    course_id = cd.get("course_id", "course") or "course"
    db_url = cd.get("db_url", "") or f"sqlite:///{root / 'gradebook.db'}"
    return Course(root=root, config=config, course_id=course_id, source_directory=source,
                  release_directory=release, db_url=db_url)


def quiet_logger(name: str):
    """A logger for nbgrader apps/converters that keeps messages in memory (returned buffer)."""
    import io
    import logging

    buf = io.StringIO()
    log = logging.getLogger(name)
    log.handlers[:] = [logging.StreamHandler(buf)]
    log.handlers[0].setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    log.setLevel(logging.INFO)
    log.propagate = False
    return log, buf


_PATCHED = False


def patch_nbgrader() -> None:
    """nbgrader shells out to an ``alembic`` found on PATH when it creates a gradebook (fails when the venv is
    not activated, and costs a process start each time); compute the same head revision in-process, once."""
    global _PATCHED
    if _PATCHED:
        return
    import functools
    import os

    import nbgrader
    import nbgrader.api
    from alembic.script import ScriptDirectory

    @functools.lru_cache(maxsize=1)
    def head() -> str:
        return ScriptDirectory(os.path.join(os.path.dirname(nbgrader.__file__), "alembic")).get_current_head()

    nbgrader.api.get_alembic_version = head
    _PATCHED = True
