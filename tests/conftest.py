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
