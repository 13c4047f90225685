"""nbgrader's Execute preprocessor with limits that always let the batch finish.

- a whole-notebook wall-clock budget on top of the per-cell timeout;
- a cell that times out, or a kernel that dies (``os._exit``, SIGKILL, a crash), stops the kernel; that cell and
  every later code cell get an error output, so nbgrader scores them 0 and keeps what was earned before;
- outputs are capped in bytes per cell as they arrive (``LimitOutput`` only caps lines); error outputs are
  always kept (they decide the score) with their tracebacks shortened.

What happened is appended to ``REPORTS`` for the worker to read.
"""

from __future__ import annotations

import time

from jupyter_client.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

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

    def preprocess(self, nb, resources=None, km=None):
        self._ag = {"status": "graded", "reason": "", "truncated": [], "memory_errors": [], "cell": None}
        self._ag_deadline = time.monotonic() + self.notebook_timeout
        self._ag_bytes: dict[int, int] = {}
        self._ag_cell_timeout = self.timeout
        try:
            return super().preprocess(nb, resources, km)
        finally:
            # the kernel is gone now; nbgrader (trusted, unsandboxed) is about to write into the folder the
            # kernel could write to: remove anything but plain files and folders (a symlink planted as
            # `<notebook>.ipynb` would make nbgrader overwrite its target).
            folder = (resources or {}).get("metadata", {}).get("path")
            if folder:
                scrub(folder)
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

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        name = self._name(cell, cell_index)
        if self._ag["status"] != "graded":
            cell.outputs = [_error("NotExecuted", f"not run: {self._ag['reason']}")]
            return cell
        remaining = self._ag_deadline - time.monotonic()
        if remaining < 1:
            self._stop("timeout", f"the notebook used up its {self.notebook_timeout} s time limit before "
                                  f"cell '{name}'; later cells were not run")
            await self._kill()
            cell.outputs = [_error("NotExecuted", f"not run: {self._ag['reason']}")]
            return cell
        per_cell = self.timeout if self.timeout and self.timeout > 0 else None
        self._ag_cell_timeout = int(remaining) if per_cell is None else max(1, int(min(per_cell, remaining)))
        try:
            result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except CellTimeoutError:
            which = (f"per-cell time limit ({per_cell} s)" if per_cell and self._ag_cell_timeout >= per_cell
                     else f"notebook time limit ({self.notebook_timeout} s)")
            self._stop("timeout", f"cell '{name}' exceeded the {which}; the kernel was stopped and later "
                                  "cells were not run")
            await self._kill()
            cell.outputs.append(_error("CellTimeoutError", self._ag["reason"]))
            return cell
        except DeadKernelError:
            limit = f" or the {self.memory_mb} MB memory limit" if self.memory_mb else ""
            self._stop("crashed", f"the kernel died while running cell '{name}' (os._exit, a signal, a crash"
                                  f"{limit}); later cells were not run")
            await self._kill()
            cell.outputs.append(_error("DeadKernelError", self._ag["reason"]))
            return cell
        for out in cell.outputs:
            if out.get("output_type") == "error" and out.get("ename") == "MemoryError":
                self._ag["memory_errors"].append(name)
        return result

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
