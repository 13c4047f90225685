"""Shared test set-up: no progress bars, a non-interactive plot backend, no network downloads."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("TRAINLAB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _quiet_training(monkeypatch):
    monkeypatch.setenv("TRAINLAB_BOOK_BUILD", "1")  # fit(): no tqdm bars in test logs
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


_INSTRUCTOR_OUTPUTS = ("gradebook.db", "grading", "autograded", "feedback", "submitted")


@pytest.fixture(scope="session", autouse=True)
def _repository_stays_clean():
    """Tests grade in temporary course copies: none may leave instructor outputs in the checkout."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    before = {name for name in _INSTRUCTOR_OUTPUTS if (root / name).exists()}
    yield
    created = {name for name in _INSTRUCTOR_OUTPUTS if (root / name).exists()} - before
    assert not created, f"tests wrote {sorted(created)} into the repository root"


@pytest.fixture(scope="session")
def book_html(tmp_path_factory):
    """The executed book, built once per test session (reusing `make book`'s execution cache).

    ``TRAINLAB_BOOK_HTML=_build/html`` tests an existing build instead (e.g. right after `make book`).
    """
    import subprocess
    import sys
    from pathlib import Path

    given = os.environ.get("TRAINLAB_BOOK_HTML")
    if given:
        path = Path(given).resolve()
        assert (path / "intro.html").exists(), f"TRAINLAB_BOOK_HTML={given} has no intro.html: run `make book`"
        return path
    root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, TRAINLAB_BOOK_BUILD="1", TRAINLAB_OFFLINE="1")
    result = subprocess.run(
        [str(jb), "build", str(root), "--path-output", str(out), "--warningiserror", "--nitpick", "--keep-going"],
        cwd=root, env=env, capture_output=True, text=True, timeout=2400,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, "book build failed:\n" + "\n".join(
        line for line in log.splitlines() if "WARNING" in line or "ERROR" in line or "Error" in line
    )[-5000:]
    return out / "_build" / "html"
