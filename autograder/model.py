"""The data passed between the grader's processes, one typed definition each, and the defaults in one place.

- :class:`Limits`: every limit of a grading run (defaults here and nowhere else; all of them are part of the
  regrade fingerprint, see :meth:`Limits.fingerprint`);
- :class:`Job`: one student's submission, parent -> worker;
- :class:`SandboxSettings`: how a kernel is confined, parent -> kernel launcher;
- :class:`WorkerSettings`: what a worker needs for the whole batch, parent -> worker;
- :class:`WorkerResult`: what a worker reports for one job, worker -> parent;
- :class:`Status`: the outcome of grading one submission.

All of them travel as JSON (``to_json``/``from_json``); nothing here is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import asdict, dataclass, field
from enum import Enum, StrEnum
from typing import Any, TypeVar

T = TypeVar("T")


class Status(StrEnum):
    GRADED = "graded"  # ran to the end (the reason may still note truncated output, restored cells, ...)
    TIMEOUT = "timeout"  # a cell or the whole notebook ran out of time; later cells score 0
    CRASHED = "crashed"  # the kernel died; later cells score 0
    INVALID = "invalid"  # nothing gradable (not a notebook, no cells, bad student id); score 0
    ERROR = "error"  # the grader itself failed on it (the reason quotes the error); score 0


@dataclass(frozen=True)
class Limits:
    """Every limit of a grading run. Changing any of them regrades every submission (``fingerprint``)."""

    timeout_cell: int = 120  # seconds per cell (a course's ``Execute.timeout`` replaces this default)
    timeout_notebook: int = 600  # seconds for the whole notebook
    memory_mb: int = 6144  # kernel address space; importing torch alone maps ~3 GB
    max_output_bytes: int = 1_000_000  # output kept per cell
    max_notebook_bytes: int = 20_000_000  # an autograded notebook larger than this loses its outputs
    max_submission_bytes: int = 50 * 2**20  # a submitted notebook larger than this is not graded
    max_file_mb: int = 512  # largest file the kernel may write
    tmp_mb: int = 256  # the sandbox's private /tmp
    max_record_bytes: int = 64 * 2**20  # hidden-check records read back per submission
    kernel_startup_s: int = 60  # seconds a kernel may take to start
    worker_grace_s: int = 180  # a worker gets timeout_notebook + this per job before it is killed
    # Threads per kernel: fixed, not derived from --jobs or the machine's core count, because float reductions
    # (sums, matmuls) round differently with different thread counts, and a score must not depend on how the
    # instructor ran the batch. The reference is computed with the same number.
    threads: int = 1

    def fingerprint(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def validate(self) -> None:
        from .course import AutograderError

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise AutograderError(f"limit {f.name.replace('_', '-')} must be a positive integer, got {value!r}")


@dataclass
class Job:
    student_id: str
    files: dict[str, str] = field(default_factory=dict)  # notebook name (no .ipynb) -> submitted file
    extras: list[tuple[str, str]] = field(default_factory=list)  # (source path, path inside the assignment)
    timestamp: str | None = None
    notes: list[str] = field(default_factory=list)
    hash: str = ""
    invalid: str | None = None  # why it cannot be graded at all (set before it reaches a worker)
    reference: bool = False  # the instructor's solution, run to produce the reference records


@dataclass
class SandboxSettings:
    mode: str  # "bwrap" or "rlimit"
    memory_mb: int
    max_file_mb: int
    tmp_mb: int
    threads: int
    python: str
    hide: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)


@dataclass
class RuleSpec:
    """A forbidden-call rule declared by ``rules(...)`` in a hidden test block (see ``autograder/rules.py``)."""

    cell: str  # cell key of the test cell that declares it
    code: list[str] = field(default_factory=list)  # the student's functions/classes the rule applies to
    forbid: list[str] = field(default_factory=list)  # patterns; a hit: this cell scores 0
    forbid_for_task: list[str] = field(default_factory=list)  # patterns; a hit: every cell of `task` scores 0
    task: list[str] = field(default_factory=list)  # cell keys of the task
    requires: list[str] = field(default_factory=list)  # cell keys that must score for this cell to score


@dataclass
class StaticContext:
    """What the submitted source is analysed against (from the instructor's notebooks, trusted)."""

    rules: list[RuleSpec] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # names the locked cells bind to modules/objects
    helpers: list[str] = field(default_factory=list)  # functions/classes the locked cells define
    locked: dict[str, list[str]] = field(default_factory=dict)  # notebook -> grade_ids nbgrader restores


@dataclass
class WorkerSettings:
    assignment: str
    course_dir: str
    course_id: str
    template_db: str
    files_dir: str
    work_root: str
    jupyter_path: str
    kernel_name: str
    notebooks: list[str]
    max_scores: dict[str, float]  # cell key -> points
    tests: dict[str, dict[str, str]]  # notebook -> grade_id -> released (visible) source of the test cell
    limits: Limits
    static: StaticContext = field(default_factory=StaticContext)


@dataclass
class WorkerResult:
    student_id: str
    status: Status = Status.INVALID
    reason: str = ""
    in_kernel: dict[str, tuple[float, float]] = field(default_factory=dict)  # nbgrader's own verdict per cell
    manual: list[str] = field(default_factory=list)
    autograded_dir: str | None = None
    tmp: str | None = None
    seconds: float = 0.0
    records_path: str | None = None  # JSON written by the worker: cell key -> raw records and problems
    hidden_started: list[str] = field(default_factory=list)  # cells whose hidden block was sent to the kernel
    static: dict[str, Any] = field(default_factory=dict)  # findings of the source analysis (rules.analyse)
    stray_records: list[str] = field(default_factory=list)  # record-like files nobody asked for


def cell_key(notebooks: list[str] | tuple[str, ...], notebook: str, grade_id: str) -> str:
    """THE key of a graded cell everywhere (worker, merger, export, records): ``grade_id`` when the assignment
    has one notebook, ``notebook/grade_id`` when it has several (whether or not each has graded cells)."""
    return grade_id if len(notebooks) == 1 else f"{notebook}/{grade_id}"


# ---------------------------------------------------------------------------------------------- JSON


def to_json(obj: Any) -> str:
    return json.dumps(_plain(obj))


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def from_json(cls: type[T], text: str | bytes) -> T:
    return from_dict(cls, json.loads(text))


def from_dict(cls: type[T], data: dict) -> T:
    """Build dataclass ``cls`` from plain JSON data, converting nested dataclasses, enums and tuples; unknown
    keys are an error (a stale settings file fails loudly instead of being half-read)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    kwargs = {k: _convert(hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def _convert(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if origin is dict:
        return {k: _convert(args[1], v) for k, v in value.items()} if args else dict(value)
    if origin is list:
        return [_convert(args[0], v) for v in value] if args else list(value)
    if origin is tuple:
        return tuple(value)
    return value
