"""Chapters opened, run and saved in JupyterLab leave the repository clean; the students' lab hides
instructor tools. Drives a real Jupyter Server (the one `make lab` starts) through its contents API."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from trainlab import lab

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
CHAPTER = "chapters/01-sgd-learning-rate"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, root: Path, config_dir: Path | None = None) -> None:
        self.port, self.token = _free_port(), "test-token"
        env = dict(os.environ)
        if config_dir is not None:
            env["JUPYTER_CONFIG_DIR"] = str(config_dir)
        self.process = subprocess.Popen(
            [str(VENV / "bin" / "jupyter"), "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}", "--allow-root"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                self.get("/api/status")
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("Jupyter Server did not start: " + (self.process.stderr.read() or "")[-2000:])

    def request(self, method: str, path: str, body: dict | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.read()

    def get(self, path: str) -> dict:
        return json.loads(self.request("GET", path))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A git clone of the chapters as a student has them."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "chapters", root / "chapters")
    shutil.copy(ROOT / ".gitignore", root / ".gitignore")
    shutil.rmtree(root / "chapters" / "__pycache__", ignore_errors=True)
    (root / "solutions").mkdir()
    (root / "solutions" / "secret.ipynb").write_text("{}")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"], cwd=root, check=True)
    return root


def _run_in_lab(notebook: dict) -> dict:
    """What a JupyterLab session adds: outputs, counts, kernel metadata, cell timing metadata."""
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            cell["execution_count"] = index + 1
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
            cell["metadata"]["execution"] = {"iopub.status.idle": "2026-11-22T10:00:00Z"}
            cell["metadata"].setdefault("jupyter", {})["outputs_hidden"] = False
    notebook["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    notebook["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return notebook


@pytest.mark.parametrize("suffix", [".ipynb", ".md"])
def test_opening_running_and_saving_a_chapter_leaves_git_clean(clone, suffix):
    server = Server(clone)
    try:
        path = f"{CHAPTER}{suffix}"
        model = server.get(f"/api/contents/{path}?type=notebook&content=1")
        assert model["type"] == "notebook"  # the .md opens as a notebook through jupytext
        saved = {"type": "notebook", "format": "json", "content": _run_in_lab(model["content"])}
        server.request("PUT", f"/api/contents/{path}", saved)
    finally:
        server.stop()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status == "", f"saving {path} after running it changed tracked files:\n{status}"


def test_an_edit_by_the_reader_is_saved(clone, tmp_path):
    server = Server(clone)
    try:
        path = f"{CHAPTER}.ipynb"
        model = server.get(f"/api/contents/{path}?type=notebook&content=1")
        code = next(c for c in model["content"]["cells"] if c["cell_type"] == "code")
        code["source"] += "\n# my note"
        server.request("PUT", f"/api/contents/{path}",
                       {"type": "notebook", "format": "json", "content": _run_in_lab(model["content"])})
    finally:
        server.stop()
    saved = json.loads((clone / path).read_text())
    assert any("# my note" in "".join(c["source"]) for c in saved["cells"])
    assert all(not c.get("outputs") for c in saved["cells"] if c["cell_type"] == "code")
    subprocess.run(["git", "checkout", "-q", "--", path], cwd=clone, check=True)


def test_students_lab_hides_instructor_tools_and_solutions(clone):
    config = VENV / "etc" / "jupyter-student"
    if not config.exists():
        lab.install(VENV)
    server = Server(clone, config_dir=config)
    try:
        listing = [item["name"] for item in server.get("/api/contents/")["content"]]
        page = server.request("GET", "/lab").decode()
    finally:
        server.stop()
    assert "chapters" in listing and "solutions" not in listing
    data = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    disabled = data.get("disabledExtensions", [])
    assert all(plugin in disabled for plugin in lab.INSTRUCTOR_PLUGINS), disabled


def test_hook_ignores_other_files():
    model = {"type": "notebook", "content": {"cells": [{"cell_type": "code", "outputs": [1], "metadata": {},
                                                        "source": "x", "execution_count": 3}], "metadata": {}}}
    lab.pre_save_hook(model, "assignments/01-optimizers/optimizers.ipynb", contents_manager=None)
    assert model["content"]["cells"][0]["outputs"] == [1]  # a student's assignment keeps its outputs
    assert lab.is_chapter("chapters/03-momentum.ipynb") and not lab.is_chapter("chapters/assignments.md")
