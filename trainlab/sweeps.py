"""Learning-rate sensitivity: run a grid of learning rates over seeds, and measure how wide the good range is.

"Adam is easier to tune" is a statement about the *width* of the range of learning rates that give a
result close to the best one. :func:`lr_sweep` collects a ``(learning rates, seeds)`` table of a final
metric, and :func:`tolerance_range` turns a curve of that metric into a number: the learning rates
(in decades, on a log scale) over which the curve stays within a tolerance of its best value::

    table = lr_sweep(lambda lr, seed: final_val_accuracy(lr, seed), lrs, seeds=range(3))
    good = tolerance_range(lrs, table, tolerance=0.02)          # within 2 points of the best
    print(good.decades, good.low, good.high)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .device import seed_everything


def lr_sweep(run: Callable[[float, int], float | Sequence[float]], lrs: Sequence[float],
             seeds: Iterable[int]) -> np.ndarray:
    """Table of ``run(lr, seed)`` over the grid; everything is seeded with ``seed`` before each run.

    ``run`` returns one number (e.g. the final validation accuracy; NaN for a diverged run), giving a
    ``(len(lrs), n_seeds)`` array, or a fixed-length tuple of numbers (e.g. validation and test
    accuracy), giving ``(len(lrs), n_seeds, k)``.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("lr_sweep needs at least one seed")
    lrs = _check_lrs(lrs)
    rows = []
    for lr in lrs:
        row = []
        for seed in seeds:
            seed_everything(seed)
            row.append(np.asarray(run(float(lr), seed), dtype=float))
        rows.append(row)
    shapes = {r.shape for row in rows for r in row}
    if len(shapes) != 1 or len(next(iter(shapes))) > 1:
        raise ValueError(f"run must return one number or a fixed-length sequence of numbers; got shapes {shapes}")
    return np.array(rows)


@dataclass(frozen=True)
class ToleranceRange:
    """The learning rates ``[low, high]`` around ``best_lr`` whose metric is within tolerance of the best.

    ``decades = log10(high / low)``. ``clipped`` says the range reaches an end of the grid, so the true
    range may be wider than measured.
    """

    best_lr: float
    best_value: float
    threshold: float
    low: float
    high: float
    clipped: bool

    @property
    def decades(self) -> float:
        return math.log10(self.high / self.low)


def tolerance_range(
    lrs: Sequence[float],
    values: np.ndarray | Sequence[float],
    *,
    tolerance: float,
    relative: bool = False,
    higher_is_better: bool = True,
) -> ToleranceRange:
    """Contiguous range of learning rates around the best whose metric is within ``tolerance`` of it.

    ``values`` is one value per learning rate, or a ``(lrs, seeds)`` table (the mean over seeds is
    used; NaN, e.g. a diverged run, counts as out of tolerance). The curve is interpolated linearly in
    ``log10(lr)`` between grid points, so the width is not limited to multiples of the grid step.
    ``tolerance`` is absolute (``best - 0.02`` for accuracy), or a fraction of the best with
    ``relative=True`` (``best * 1.1`` for a loss with ``tolerance=0.1, higher_is_better=False``).
    """
    lrs = _check_lrs(lrs)
    if len(lrs) < 2:
        raise ValueError("tolerance_range needs at least two learning rates")
    table = np.asarray(values, dtype=float)
    if table.ndim == 2:
        curve = table.mean(axis=1)  # a NaN seed (diverged) makes the learning rate's mean NaN
    elif table.ndim == 1:
        curve = table
    else:
        raise ValueError(f"values must be 1-D (one per lr) or 2-D (lrs, seeds), got shape {table.shape}")
    if curve.shape[0] != len(lrs):
        raise ValueError(f"{len(lrs)} learning rates but {curve.shape[0]} values")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not np.isfinite(curve).any():
        raise ValueError("every learning rate gave NaN/inf: no best value to measure a range around")

    sign = 1.0 if higher_is_better else -1.0
    score = np.where(np.isfinite(curve), sign * curve, -np.inf)  # higher is better from here on
    best = int(np.argmax(score))
    best_value = float(curve[best])
    margin = tolerance * abs(best_value) if relative else tolerance
    threshold = best_value - sign * margin
    slack = score - sign * threshold  # >= 0 inside the range

    x = np.log10(lrs)
    low, clipped_low = _edge(x, slack, best, -1)
    high, clipped_high = _edge(x, slack, best, +1)
    return ToleranceRange(best_lr=float(lrs[best]), best_value=best_value, threshold=float(threshold),
                          low=float(10**low), high=float(10**high), clipped=clipped_low or clipped_high)


def _edge(x: np.ndarray, slack: np.ndarray, best: int, direction: int) -> tuple[float, bool]:
    """Walk from ``best`` in ``direction`` while slack >= 0; interpolate where it crosses zero."""
    i = best
    while 0 <= i + direction < len(x) and slack[i + direction] >= 0:
        i += direction
    j = i + direction
    if not 0 <= j < len(x):
        return float(x[i]), True
    if not np.isfinite(slack[j]):  # the next point diverged: stop at the last good grid point
        return float(x[i]), False
    fraction = slack[i] / (slack[i] - slack[j])
    return float(x[i] + fraction * (x[j] - x[i])), False


def _check_lrs(lrs: Sequence[float]) -> np.ndarray:
    array = np.asarray(lrs, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError("lrs must be a non-empty 1-D sequence of learning rates")
    if not (array > 0).all():
        raise ValueError(f"learning rates must be positive, got {array.tolist()}")
    if not (np.diff(array) > 0).all():
        raise ValueError("learning rates must be sorted in increasing order")
    return array

