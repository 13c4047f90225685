"""Verdicts about measured quantities, computed from the data so the prose cannot drift from the run.

A sentence such as "warm-up helped" is data: it must be chosen by a comparison with its uncertainty,
glued into the text, or asserted in the cell that produced the numbers, so the book build fails when a
change makes the sentence false. Two tools:

* :func:`compare` summarises two groups of per-seed results (e.g. final accuracies) and picks a word
  ("higher", "lower", "indistinguishable") from the difference of means and its Welch standard error.
* :func:`claim` is an ``assert`` with a message that tells the author which sentence became false.

Example (in a chapter)::

    cmp = compare(acc_warmup, acc_plain, names=("warm-up", "no warm-up"))
    glue("warmup_verdict", cmp.verdict(better="helped", worse="hurt", same="made no measurable difference",
                                      higher_is_better=True))
    claim(cmp.diff > 0, "the text says warm-up raises mean accuracy")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class ClaimError(AssertionError):
    """A sentence in the book is no longer true for the data the page just produced."""


def claim(condition: bool, sentence: str) -> None:
    """Fail the build when ``condition`` is false; ``sentence`` names the prose that would be wrong."""
    if not bool(condition):
        raise ClaimError(f"The text claims: {sentence!r}, but this run's data contradicts it. "
                         "Change the experiment or the sentence (and its glued verdict).")


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        raise ValueError("compare() needs at least one finite value per group (all were NaN/inf: did a run diverge?)")
    return finite


@dataclass(frozen=True)
class Comparison:
    """Group ``a`` against group ``b``: means, spreads, difference ``a - b`` and its standard error."""

    names: tuple[str, str]
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    n_a: int
    n_b: int
    z: float
    unit: str = "seeds"  # what one value is: a seed, a run, a measurement

    @property
    def diff(self) -> float:
        return self.mean_a - self.mean_b

    @property
    def se(self) -> float:
        """Welch standard error of the difference of means (0 when both groups have one value)."""
        var = (self.std_a**2 / self.n_a if self.n_a > 1 else 0.0) + (self.std_b**2 / self.n_b if self.n_b > 1 else 0.0)
        return math.sqrt(var)

    @property
    def resolved(self) -> bool:
        """The difference exceeds ``z`` standard errors (and both groups have at least 2 seeds)."""
        if self.n_a < 2 or self.n_b < 2:
            return False
        return abs(self.diff) > self.z * self.se

    @property
    def direction(self) -> str:
        """``"higher"``, ``"lower"`` or ``"same"`` (not resolved) for ``a`` relative to ``b``."""
        if not self.resolved:
            return "same"
        return "higher" if self.diff > 0 else "lower"

    def verdict(self, *, higher: str = "higher", lower: str = "lower", same: str = "indistinguishable",
                higher_is_better: bool | None = None, better: str | None = None, worse: str | None = None) -> str:
        """The word for the text. Give ``higher``/``lower``/``same``, or ``better``/``worse``/``same``
        together with ``higher_is_better`` (True for accuracy, False for a loss)."""
        if better is not None or worse is not None:
            if higher_is_better is None:
                raise ValueError("with better=/worse= also say higher_is_better=True (accuracy) or False (loss)")
            higher, lower = (better or "better", worse or "worse") if higher_is_better else (
                worse or "worse", better or "better")
        return {"higher": higher, "lower": lower, "same": same}[self.direction]

    def summary(self, digits: int = 3, scale: float = 1.0) -> str:
        """``"a: 0.912 ± 0.004 (5 seeds) vs b: 0.889 ± 0.010 (5 seeds), difference 0.023 ± 0.005"``."""
        f = f".{digits}f"
        return (f"{self.names[0]}: {self.mean_a * scale:{f}} ± {self.std_a * scale:{f}} ({self.n_a} {self.unit}) vs "
                f"{self.names[1]}: {self.mean_b * scale:{f}} ± {self.std_b * scale:{f}} ({self.n_b} {self.unit}), "
                f"difference {self.diff * scale:{f}} ± {self.se * scale:{f}} (s.e.)")

    def __str__(self) -> str:
        return self.summary()


def compare(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
            names: tuple[str, str] = ("a", "b"), z: float = 2.0, unit: str = "seeds") -> Comparison:
    """Compare per-seed results ``a`` and ``b`` (NaN/inf from diverged runs are dropped).

    ``z = 2`` calls a difference resolved when it exceeds two standard errors (about 95 % for normal
    noise). With the 3–5 seeds a CPU build affords this is a rough screen, not a significance test; the
    text should say "indistinguishable at this number of seeds", not "equal".
    """
    fa, fb = _finite(a), _finite(b)
    std = lambda x: float(x.std(ddof=1)) if x.size > 1 else 0.0  # noqa: E731
    return Comparison(names=names, mean_a=float(fa.mean()), mean_b=float(fb.mean()), std_a=std(fa), std_b=std(fb),
                      n_a=int(fa.size), n_b=int(fb.size), z=z, unit=unit)


def saturation_point(x: Sequence[float], y: Sequence[float], fraction: float = 0.9) -> float:
    """The smallest ``x`` at which ``y`` reaches ``fraction`` of its maximum (e.g. throughput vs batch size).

    Gives a definition to words such as "saturates": "past B = 512 throughput is within 10 % of its peak".
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.size == 0:
        raise ValueError(f"x and y need the same non-empty shape, got {xs.shape} and {ys.shape}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    return float(xs[np.argmax(ys >= fraction * ys.max())])
