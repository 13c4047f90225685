"""JupyterLab for the course (``make lab``): chapters open cleanly and stay unchanged on disk.

``python -m trainlab.lab install .venv`` (run by ``make`` after installing) writes, inside the venv only:

* JupyterLab settings: MyST ``.md`` files open as notebooks through jupytext (for authors; students open
  the chapters' ``.ipynb`` twins, which read as pages, see :mod:`trainlab.myst`);
* a Jupyter Server setting that installs :func:`pre_save_hook`: when a chapter notebook (``chapters/NN-*.ipynb``
  or ``.md``) is saved, outputs, execution counts and the metadata a kernel adds are dropped, so opening and
  running a chapter leaves the tracked file byte-for-byte unchanged (``git pull`` keeps working). Edits to
  the cells themselves are saved: they are the reader's;
* a students' configuration (``make lab``) in which nbgrader's instructor tools (Create Assignment,
  Formgrader, course list) are disabled and ``solutions/`` is hidden; ``make instructor-lab`` has them.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

LAB_OVERRIDES = {
    "@jupyterlab/docmanager-extension:plugin": {
        "defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
    },
    # No "get notified about Jupyter news?" toast over the first cells, no update check (offline labs).
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
SERVER_CONFIG = {"ContentsManager": {"pre_save_hook": "trainlab.lab.pre_save_hook"}}
INSTRUCTOR_PLUGINS = ("@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                      "@jupyter/nbgrader:course-list")
CHAPTER = re.compile(r"(^|/)chapters/\d\d-[^/]+\.(ipynb|md)$")
# Cell metadata a front end or kernel writes while a notebook is used (not part of the chapter).
TRANSIENT_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime", "outputHidden", "inputHidden")


def is_chapter(path: str) -> bool:
    return bool(CHAPTER.search(path.replace("\\", "/")))


def _strip_run_state(notebook: dict[str, Any]) -> dict[str, Any]:
    notebook = copy.deepcopy(notebook)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        metadata = cell.get("metadata", {})
        for key in TRANSIENT_CELL_METADATA:
            metadata.pop(key, None)
        # JupyterLab expands/collapses cells by writing jupyter.outputs_hidden etc.; keep source_hidden only.
        if isinstance(metadata.get("jupyter"), dict):
            kept = {k: v for k, v in metadata["jupyter"].items() if k == "source_hidden"}
            metadata.pop("jupyter")
            if kept:
                metadata["jupyter"] = kept
    return notebook


def pre_save_hook(model: dict[str, Any], path: str, contents_manager: Any, **kwargs: Any) -> None:
    """Jupyter Server's ContentsManager.pre_save_hook: keep chapter files free of run state."""
    if model.get("type") != "notebook" or not model.get("content") or not is_chapter(path):
        return
    content = _strip_run_state(model["content"])
    try:  # the notebook-level metadata (kernel, language_info) stays as the file has it
        # Read the file itself: the server's get() may be a coroutine, and this hook is synchronous.
        on_disk = json.loads(Path(contents_manager._get_os_path(path)).read_text())
        content["metadata"] = copy.deepcopy(dict(on_disk["metadata"]))
        disk_cells = on_disk["cells"]
        if len(disk_cells) == len(content["cells"]):  # keep the file's cell ids where the cell is unchanged
            for cell, disk in zip(content["cells"], disk_cells, strict=True):
                if cell.get("source") == disk.get("source") and "id" in disk:
                    cell["id"] = disk["id"]
    except Exception:  # a new file: nothing to keep
        pass
    model["content"] = content


def install(venv: str | Path) -> None:
    venv = Path(venv)
    settings = venv / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2) + "\n")
    # Jupyter Server reads only extension switches from jupyter_server_config.d/; other settings go in the
    # venv's jupyter_server_config.json (merged with whatever is already there).
    server = venv / "etc" / "jupyter" / "jupyter_server_config.json"
    server.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(server.read_text()) if server.exists() else {}
    current.setdefault("ContentsManager", {}).update(SERVER_CONFIG["ContentsManager"])
    server.write_text(json.dumps(current, indent=2) + "\n")
    student = venv / "etc" / "jupyter-student"  # JUPYTER_CONFIG_DIR of `make lab`
    (student / "labconfig").mkdir(parents=True, exist_ok=True)
    page_config = {"disabledExtensions": {plugin: True for plugin in INSTRUCTOR_PLUGINS}}
    (student / "labconfig" / "page_config.json").write_text(json.dumps(page_config, indent=2) + "\n")
    hidden = ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", "*.so", "*.dylib", "solutions", "gradebook.db"]
    (student / "jupyter_server_config.json").write_text(
        json.dumps({"ContentsManager": {"hide_globs": hidden}}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "install":
        print("usage: python -m trainlab.lab install VENV", file=sys.stderr)
        return 2
    install(args[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
