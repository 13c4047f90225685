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
