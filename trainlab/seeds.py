"""Run an experiment over several seeds and summarise it: single runs mislead."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

from .device import seed_everything

R = TypeVar("R")


def over_seeds(run: Callable[[int], R], seeds: Iterable[int]) -> list[R]:
    """Call ``run(seed)`` for each seed after seeding everything with it."""
    results = []
    for seed in seeds:
        seed_everything(seed)
        results.append(run(seed))
    if not results:
        raise ValueError("over_seeds needs at least one seed")
    return results


def stack(histories: Sequence, metric: str) -> np.ndarray:
    """``(n_seeds, T)`` array of ``metric`` from several histories; shorter runs are padded with NaN
    (e.g. one stopped early), so means ignore what a run did not reach."""
    series = [np.asarray(getattr(h, metric), dtype=float) for h in histories]
    if not series:
        raise ValueError("no histories to stack")
    length = max(len(s) for s in series)
    out = np.full((len(series), length), np.nan)
    for row, s in zip(out, series, strict=True):
        row[: len(s)] = s
    return out


def mean_and_spread(values: np.ndarray | Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value), ignoring NaN."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else 0.0


def format_mean_std(values: np.ndarray | Sequence[float], digits: int = 3, scale: float = 1.0) -> str:
    """``"0.912 ± 0.004"`` for a table; ``scale=100`` turns accuracies into percent."""
    mean, std = mean_and_spread(np.asarray(values, dtype=float) * scale)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
