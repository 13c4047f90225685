"""nbgrader's Execute preprocessor with limits that always let the batch finish.

- a whole-notebook wall-clock budget (from the first cell on) on top of the per-cell timeout;
- a cell that times out, or a kernel that dies (``os._exit``, SIGKILL, a crash), stops the kernel; that cell and
  every later code cell get an error output, so nbgrader scores them 0 and keeps what was earned before;
- outputs are capped in bytes per cell as they arrive (``LimitOutput`` only caps lines); error outputs are
  always kept (they decide the score) with their tracebacks shortened;
- a test cell with hidden tests runs as separate requests: its visible part, then for each hidden block a
  prelude (the recorder, with a fresh nonce) and the block; the block's records are read back right after it
  (``checks.collect``) and its outputs are stored after the visible ones, with
  ``metadata.autograder.visible_outputs`` saying how many outputs the student may see.

What happened is appended to ``REPORTS`` for the worker to read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from jupyter_client.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from .checks import collect, has_hidden, hidden_phase, split_hidden, stray_record_files

REPORTS: list[dict] = []
TRACEBACK_CAP = 20_000


def scrub(folder: str) -> None:
    """Delete symlinks, sockets, fifos and devices under ``folder`` (never following links)."""
    import os
    import stat

    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                os.unlink(path)


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class SandboxedExecute(Execute):
    interrupt_on_timeout = Bool(False).tag(config=True)
    raise_on_iopub_timeout = Bool(False).tag(config=True)
    notebook_timeout = Integer(600, help="wall-clock seconds for the whole notebook").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="output bytes kept per cell").tag(config=True)
    memory_mb = Integer(0, help="kernel memory limit (for messages only)").tag(config=True)
    max_record_bytes = Integer(64 * 2**20, help="hidden-check record bytes read back per notebook").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        self._ag = {"status": "graded", "reason": "", "truncated": [], "memory_errors": [], "cell": None,
                    "notebook": resources.get("nbgrader", {}).get("notebook"), "records": {}, "problems": {},
                    "hidden_started": [], "stray": []}
        self._ag_deadline = None  # starts with the first cell: kernel start-up has its own limit
        self._ag_bytes: dict[int, int] = {}
        self._ag_cell_timeout = self.timeout
        self._ag_budget = self.max_record_bytes
        folder = resources.get("metadata", {}).get("path") or "."
        self._ag_folder = os.path.realpath(folder)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            # the kernel is gone now; nbgrader (trusted, unsandboxed) is about to write into the folder the
            # kernel could write to: remove anything but plain files and folders (a symlink planted as
            # `<notebook>.ipynb` would make nbgrader overwrite its target), and any record file nobody read.
            self._ag["stray"] = stray_record_files(self._ag_folder)
            for name in self._ag["stray"]:
                path = os.path.join(self._ag_folder, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
            scrub(self._ag_folder)
            REPORTS.append(dict(self._ag))

    def _get_timeout(self, cell):
        return self._ag_cell_timeout

    def _name(self, cell, index: int) -> str:
        return cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"

    def _stop(self, status: str, reason: str) -> None:
        if self._ag["status"] == "graded":
            self._ag.update(status=status, reason=reason)

    async def _kill(self) -> None:
        try:
            if self.km is not None:
                await self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - already dead is fine
            pass

    async def _part(self, cell, cell_index, source, deadline, per_cell, execution_count, store_history):
        """Run ``source`` as (part of) ``cell``; return (outputs, ok). ``ok`` is False after an error, a timeout
        or a dead kernel (the last two stop the notebook: later cells are not run)."""
        name = self._name(cell, cell_index)
        left = deadline - time.monotonic()
        if left < 1:
            self._stop("timeout", f"the notebook used up its {self.notebook_timeout} s time limit before "
                                  f"cell '{name}'; later cells were not run")
            await self._kill()
            return [_error("NotExecuted", f"not run: {self._ag['reason']}")], False
        self._ag_cell_timeout = max(1, int(left))
        cell.source = source
        try:
            await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except CellTimeoutError:
            which = (f"per-cell time limit ({per_cell} s)" if per_cell and deadline < self._ag_deadline
                     else f"notebook time limit ({self.notebook_timeout} s)")
            self._stop("timeout", f"cell '{name}' exceeded the {which}; the kernel was stopped and later "
                                  "cells were not run")
            await self._kill()
            return list(cell.outputs) + [_error("CellTimeoutError", self._ag["reason"])], False
        except DeadKernelError:
            limit = f" or the {self.memory_mb} MB memory limit" if self.memory_mb else ""
            self._stop("crashed", f"the kernel died while running cell '{name}' (os._exit, a signal, a crash"
                                  f"{limit}); later cells were not run")
            await self._kill()
            return list(cell.outputs) + [_error("DeadKernelError", self._ag["reason"])], False
        outs = list(cell.outputs)
        if any(o.get("output_type") == "error" and o.get("ename") == "MemoryError" for o in outs):
            if name not in self._ag["memory_errors"]:
                self._ag["memory_errors"].append(name)
        return outs, not any(o.get("output_type") == "error" for o in outs)

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if self._ag["status"] != "graded":
            cell.outputs = [_error("NotExecuted", f"not run: {self._ag['reason']}")]
            return cell
        per_cell = self.timeout if self.timeout and self.timeout > 0 else None
        now = time.monotonic()
        if self._ag_deadline is None:
            self._ag_deadline = now + self.notebook_timeout
        deadline = min(now + per_cell, self._ag_deadline) if per_cell else self._ag_deadline
        meta = cell.metadata.get("nbgrader", {})
        full = cell.source
        if not (meta.get("grade") and not meta.get("solution") and has_hidden(full)):
            outs, _ = await self._part(cell, cell_index, full, deadline, per_cell, execution_count, store_history)
            cell.source, cell.outputs = full, outs
            self.nb.cells[cell_index] = cell
            return cell
        # A test cell with hidden tests: its visible part and each hidden block run as separate requests, so
        # that the hidden block's outputs are kept apart (never shown to the student) and its records can be
        # attributed to it. See checks.py.
        gid = meta.get("grade_id") or f"cell {cell_index}"
        visible: list = []
        hidden: list = []
        for is_hidden, text in split_hidden(full):
            if not is_hidden:
                outs, ok = await self._part(cell, cell_index, text, deadline, per_cell, execution_count,
                                            store_history)
                (hidden if hidden else visible).extend(outs)
            else:
                if gid not in self._ag["hidden_started"]:
                    self._ag["hidden_started"].append(gid)
                phase = hidden_phase(self._ag_folder, text)
                outs, ok = await self._part(cell, cell_index, phase.prelude, deadline, per_cell, None, False)
                if ok:
                    more, ok = await self._part(cell, cell_index, phase.source, deadline, per_cell, None,
                                                store_history)
                    outs += more
                entries, problems, used = collect(phase, max(0, self._ag_budget))
                self._ag_budget -= used
                self._ag["records"].setdefault(gid, []).extend(entries)
                if problems:
                    self._ag["problems"].setdefault(gid, []).extend(problems)
                hidden.extend(outs)
            execution_count = None
            if not ok:
                break
        cell.source = full
        cell.outputs = visible + hidden
        cell.metadata["autograder"] = {"visible_outputs": len(visible)}
        self.nb.cells[cell_index] = cell
        return cell

    execute_cell = run_sync(async_execute_cell)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            tb = content.get("traceback", [])
            total = 0
            kept = []
            for line in tb:
                total += len(line)
                if total > TRACEBACK_CAP:
                    kept.append("... (traceback truncated by the autograder)")
                    break
                kept.append(line)
            content["traceback"] = kept
            content["evalue"] = str(content.get("evalue", ""))[:TRACEBACK_CAP]
            return super().output(outs, msg, display_id, cell_index)
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        used = self._ag_bytes.get(cell_index, 0)
        if used + size <= self.max_output_bytes:
            self._ag_bytes[cell_index] = used + size
            return super().output(outs, msg, display_id, cell_index)
        if used >= self.max_output_bytes:
            return None
        self._ag_bytes[cell_index] = self.max_output_bytes
        name = self._name(self.nb.cells[cell_index], cell_index)
        self._ag["truncated"].append(name)
        note = f"\n[autograder: output truncated after {self.max_output_bytes} bytes]\n"
        if msg.get("msg_type") == "stream":
            content["text"] = content.get("text", "")[: max(0, self.max_output_bytes - used)] + note
            return super().output(outs, msg, display_id, cell_index)
        outs.append(NotebookNode(output_type="stream", name="stderr", text=note))
        return None
