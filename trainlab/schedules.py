"""Learning-rate schedules as numbers: what a ``torch.optim.lr_scheduler`` does, step by step.

:func:`lr_trace` runs any scheduler on a throw-away optimizer and returns the learning rate in
force at every step, so a chapter can plot schedules side by side (or feed them to a toy
problem) without training anything. :func:`robbins_monro_partial_sums` shows numerically
whether a sequence of step sizes looks like it satisfies Σγ = ∞, Σγ² < ∞. :func:`warmup_cosine` builds
the usual linear warm-up + cosine schedule from PyTorch's schedulers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

SchedulerFactory = Callable[[torch.optim.Optimizer], object]


def lr_trace(
    make_scheduler: SchedulerFactory,
    steps: int,
    *,
    lr: float = 1.0,
    metrics: Sequence[float] | None = None,
) -> np.ndarray:
    """The learning rate used at each of ``steps`` optimizer steps under ``make_scheduler``.

    ``make_scheduler`` gets an SGD optimizer with base learning rate ``lr``, e.g.
    ``lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)``.
    Entry ``t`` is the rate of step ``t`` (read before ``scheduler.step()``, as a training loop
    does). ``ReduceLROnPlateau`` needs ``metrics``: the monitored value passed at each step.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = make_scheduler(optimizer)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau:
        if metrics is None:
            raise ValueError("ReduceLROnPlateau is driven by a monitored value: pass metrics=[...] (one per step)")
        if len(metrics) < steps:
            raise ValueError(f"metrics has {len(metrics)} values but steps={steps}; give one value per step")
    elif metrics is not None:
        raise ValueError("metrics is only used with ReduceLROnPlateau")
    rates = np.empty(steps)
    for t in range(steps):
        rates[t] = optimizer.param_groups[0]["lr"]
        optimizer.step()  # no gradient: the parameter stays put, but the scheduler sees a real step
        if plateau:
            scheduler.step(float(metrics[t]))
        else:
            scheduler.step()
    return rates


def robbins_monro_partial_sums(rates: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative sums ``(Σ_{s≤t} γ_s, Σ_{s≤t} γ_s²)`` of a step-size sequence.

    Robbins and Monro ask the first to grow without bound (the iterates can travel any
    distance) and the second to stay finite (the noise they accumulate stays bounded).
    """
    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 1 or rates.size == 0:
        raise ValueError(f"rates must be a non-empty 1-D sequence, got shape {rates.shape}")
    if np.any(rates < 0):
        raise ValueError("step sizes must be non-negative")
    return np.cumsum(rates), np.cumsum(rates**2)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, *, start_factor: float = 0.1
) -> torch.optim.lr_scheduler.SequentialLR:
    """Linear warm-up, then cosine decay to 0, for a scheduler stepped once per optimizer step.

    With base rate γ₀, ``a = start_factor``, ``W = warmup_steps``, ``T = total_steps`` and ``s`` the number
    of steps already taken (``s = t − 1`` for step ``t``), the rate of the next step is
    ``γ₀ (a + (1 − a) s / W)`` for ``s < W`` and ``γ₀ (1 + cos(π (s − W) / (T − W))) / 2`` for ``W ≤ s < T``:
    the cosine starts *after* the warm-up (``LinearLR`` then ``CosineAnnealingLR`` joined by ``SequentialLR``).
    """
    if not isinstance(total_steps, int) or not isinstance(warmup_steps, int) or not 1 <= warmup_steps < total_steps:
        raise ValueError(f"need integers 1 <= warmup_steps < total_steps, got warmup_steps={warmup_steps!r}, "
                         f"total_steps={total_steps!r}")
    if not 0 < start_factor <= 1:
        raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
    sched = torch.optim.lr_scheduler
    warmup = sched.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_steps)
    cosine = sched.CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps)
    return sched.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])
