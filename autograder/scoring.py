"""The trusted score of a submission, decided outside every kernel.

Inputs: what a worker reported (:class:`~autograder.model.WorkerResult`: nbgrader's in-kernel verdict per cell,
the hidden-check records, the source analysis), the instructor's reference records and the rules declared in
the instructor's notebooks. Per graded cell:

1. a cell with hidden checks scores its points iff every check's record matches the reference (``checks.py``);
   a cell without any (none recorded by the reference) keeps nbgrader's in-kernel verdict and is *untrusted*;
2. where the in-kernel verdict and the trusted one differ, the submission is flagged for review;
3. a forbidden name found in the source (``rules.py``): ``forbid`` zeroes the declaring cell,
   ``forbid_for_task`` every cell of the task;
4. ``requires``: the declaring cell scores only if the cells it requires score (after 1-3);
5. suspicious constructs, unexpected or malformed records and stray record files flag for review (the score
   stays what the trusted checks gave).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .checks import CellVerdict, judge_cell, validate_reference
from .model import StaticContext, Status, WorkerResult

REFERENCE_ID = "instructor-reference"


@dataclass
class Reference:
    fingerprint: str
    cells: dict[str, list[dict]]  # cell key -> the reference's records (key, value, rtol, atol, label)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "cells": self.cells}))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> Reference | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("fingerprint") != fingerprint:
            return None
        return cls(fingerprint=fingerprint, cells=data["cells"])


def reference_fingerprint(source_digest: str, threads: int = 1) -> str:
    """Everything the reference records depend on: the assignment's source, the record protocol (this
    package's checks/execute code), the numeric stack and the kernels' thread count."""
    import numpy
    import torch

    h = hashlib.sha256(source_digest.encode())
    here = Path(__file__).parent
    for name in ("checks.py", "execute.py"):
        h.update((here / name).read_bytes())
    h.update(json.dumps([torch.__version__, numpy.__version__, sys.version, platform.machine(), threads]).encode())
    return h.hexdigest()


def build_reference(result: WorkerResult, records: dict, max_scores: dict[str, float], fingerprint: str,
                    hidden_cells: set[str]) -> tuple[Reference, list[str]]:
    """The reference from the worker's run of the instructor's solution; raises ValueError listing every
    problem if the solution does not pass its own tests. Returns (reference, warnings)."""
    errors: list[str] = []
    if result.status != Status.GRADED:
        errors.append(f"status {result.status}: {result.reason}")
    failed = [k for k, (score, mx) in result.in_kernel.items() if score < mx]
    if failed:
        errors.append("test cells fail on the solution itself: " + ", ".join(failed))
    cells = {}
    for key, rec in records.items():
        errors += validate_reference(key, rec["entries"], rec["problems"])
        if rec["entries"]:
            cells[key] = rec["entries"]
    if errors:
        raise ValueError("; ".join(errors))
    warnings = [f"{k}: its hidden block records nothing, so its score is decided in the student's kernel "
                "(untrusted)" for k in sorted(hidden_cells - set(cells))]
    warnings += [f"{k}: no hidden checks (scored by nbgrader in the student's kernel, untrusted)"
                 for k in sorted(set(max_scores) - set(cells) - hidden_cells)]
    return Reference(fingerprint=fingerprint, cells=cells), warnings


@dataclass
class Scored:
    cells: dict[str, tuple[float, float]]
    messages: dict[str, str] = field(default_factory=dict)  # cell -> why it lost its points (student-safe)
    notes: list[str] = field(default_factory=list)  # grading decisions for the reason column
    review: list[str] = field(default_factory=list)  # why a person should look at it
    review_cells: list[str] = field(default_factory=list)  # cells to mark "needs manual grade" in the gradebook
    trusted: dict[str, bool] = field(default_factory=dict)  # cell -> decided by trusted checks (vs in-kernel)


def read_worker_records(result: WorkerResult) -> dict:
    if not result.records_path:
        return {}
    try:
        return json.loads(Path(result.records_path).read_text())
    except (OSError, ValueError):
        return {}


def score(result: WorkerResult, records: dict, reference: Reference, ctx: StaticContext,
          max_scores: dict[str, float]) -> Scored:
    cells: dict[str, tuple[float, float]] = {}
    out = Scored(cells=cells)
    manual = set(result.manual)
    passes: dict[str, bool] = {}
    verdicts: dict[str, CellVerdict] = {}
    disagree_up, disagree_down = [], []
    for key, mx in max_scores.items():
        got, _ = result.in_kernel.get(key, (0.0, mx))
        in_kernel = got >= mx
        if key in manual:
            passes[key] = in_kernel
            continue
        if key in reference.cells:
            rec = records.get(key, {"entries": [], "problems": []})
            verdict = judge_cell(reference.cells[key], rec.get("entries", []), rec.get("problems", []),
                                 started=key in result.hidden_started)
            verdicts[key] = verdict
            passes[key] = verdict.passed
            out.trusted[key] = True
            if not verdict.passed:
                out.messages[key] = verdict.message
            if in_kernel and not verdict.passed:
                disagree_up.append(key)
            elif verdict.passed and not in_kernel:
                disagree_down.append(key)
        else:
            passes[key] = in_kernel
            out.trusted[key] = False
    if disagree_up:
        out.review.append("the in-kernel tests passed but the trusted checks failed for " + ", ".join(disagree_up))
    if disagree_down:
        out.review.append("the in-kernel tests failed but the trusted checks passed for " + ", ".join(disagree_down))
    out.review_cells += disagree_up + disagree_down

    # static rules
    static = result.static or {}
    if static.get("failed") and any(r.forbid or r.forbid_for_task for r in ctx.rules):
        for rule in ctx.rules:
            for key in (rule.task if rule.forbid_for_task else []) + ([rule.cell] if rule.forbid else []):
                passes[key] = False
                out.messages[key] = "the submitted code could not be checked for forbidden calls"
        out.review.append(static["failed"])
    zeroed: dict[str, str] = {}
    noted: set[tuple[int, str]] = set()
    for v in static.get("violations", []):
        rule = ctx.rules[v["rule"]] if 0 <= v["rule"] < len(ctx.rules) else None
        if rule is None or (v["rule"], v["tier"]) in noted:
            continue
        noted.add((v["rule"], v["tier"]))
        targets = rule.task if v["tier"] == "task" else [rule.cell]
        text = f"{', '.join(rule.code)} uses {v['name']} ({v['where']}), which this task forbids"
        for key in targets:
            if key in passes and key not in zeroed:
                zeroed[key] = text
        out.notes.append(f"forbidden call: {text}; " + ("every cell of the task scores 0: " if v["tier"] == "task"
                                                        else "this costs ") + ", ".join(targets))
    for key, text in zeroed.items():
        passes[key] = False
        out.messages[key] = text

    # requires, in dependency order
    pending = [r for r in ctx.rules if r.requires]
    for _ in range(len(pending) + 1):
        changed = False
        for rule in pending:
            if not passes.get(rule.cell):
                continue
            failing = [k for k in rule.requires if not passes.get(k, False)]
            if failing:
                passes[rule.cell] = False
                out.messages[rule.cell] = ("this cell scores only together with a working implementation; "
                                           f"{', '.join(failing)} did not pass")
                changed = True
        if not changed:
            break

    for key, mx in max_scores.items():
        if key in manual:
            cells[key] = (result.in_kernel.get(key, (0.0, mx))[0], mx)
        else:
            cells[key] = (mx if passes.get(key) else 0.0, mx)

    # flags for review
    suspicious = static.get("suspicious", [])
    if suspicious:
        out.review.append("suspicious code: " + "; ".join(f"{s['what']} ({s['where']})" for s in suspicious[:8])
                          + (f"; and {len(suspicious) - 8} more" if len(suspicious) > 8 else ""))
    unexpected = sorted({f"{k}: {u}" for k, v in verdicts.items() for u in v.unexpected})
    if unexpected:
        out.review.append("records no check asked for: " + ", ".join(unexpected[:5]))
    problems = sorted({f"{k}: {p}" for k, rec in records.items() for p in rec.get("problems", [])})
    if problems:
        out.review.append("record problems: " + "; ".join(problems[:5]))
    foreign = sorted(k for k, rec in records.items() if k not in reference.cells and rec.get("entries"))
    if foreign:
        out.review.append("records for cells without hidden checks: " + ", ".join(foreign[:5]))
    if result.stray_records:
        out.review.append(f"{len(result.stray_records)} record file(s) written outside a hidden check "
                          "(ignored)")
    if len(out.review) > bool(disagree_up) + bool(disagree_down):  # a flag about the whole submission
        out.review_cells = sorted(set(out.review_cells) | {k for k, (s, _) in cells.items() if s > 0})
    return out
