"""Training diagnostics that plug into :func:`trainlab.fit` as callbacks.

:class:`UpdateRatio` records ‖Δθ‖/‖θ‖ (the size of one optimizer step relative to the size
of the weights) for every parameter tensor. cs231n's rule of thumb is that about 1e-3 is
healthy: far below, the learning rate is probably too small; far above (1e-1 and more), too
large.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .train import Callback, TrainState


@torch.no_grad()
def update_to_weight_ratio(before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float]:
    """‖Δθ‖/‖θ‖ per parameter after one step (cs231n's rule of thumb: about 1e-3 is healthy).

    ``before`` is ``{name: p.detach().clone()}`` taken just before ``optimizer.step()``.
    """
    ratios = {}
    for name, p in model.named_parameters():
        if name in before:
            ratios[name] = float((p - before[name]).norm() / p.norm().clamp_min(1e-12))
    return ratios


class UpdateRatio(Callback):
    """Record ‖θ_after − θ_before‖ / ‖θ_after‖ per parameter, every ``every`` optimizer steps.

    After training, ``steps`` lists the (1-based) steps measured and ``ratios[name]`` the ratio
    of parameter ``name`` at those steps. ``names`` restricts tracking to some parameters (by
    default every parameter with at least two dimensions, i.e. weights, not biases).
    """

    def __init__(self, every: int = 1, names: list[str] | None = None) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.every = every
        self.names = names
        self.steps: list[int] = []
        self.ratios: dict[str, list[float]] = {}
        self._before: dict[str, torch.Tensor] | None = None

    def _tracked(self, model: nn.Module) -> list[tuple[str, torch.Tensor]]:
        params = list(model.named_parameters())
        if self.names is None:
            return [(n, p) for n, p in params if p.ndim >= 2]
        known = {n for n, _ in params}
        missing = [n for n in self.names if n not in known]
        if missing:
            raise ValueError(f"UpdateRatio: no parameters named {missing}; the model has {sorted(known)}")
        return [(n, p) for n, p in params if n in self.names]

    def _snapshot(self, model: nn.Module) -> None:
        self._before = {n: p.detach().clone() for n, p in self._tracked(model)}

    def on_train_begin(self, state: TrainState) -> None:
        self.steps, self.ratios, self._before = [], {}, None
        if self.every == 1:
            self._snapshot(state.model)

    def on_step_end(self, state: TrainState) -> None:
        # The weights only change in optimizer.step(), so a snapshot taken at the end of step t-1
        # is exactly "before" for step t.
        if self._before is not None:
            for name, ratio in update_to_weight_ratio(self._before, state.model).items():
                self.ratios.setdefault(name, []).append(ratio)
            self.steps.append(state.step)
            self._before = None
        if (state.step + 1) % self.every == 0:
            self._snapshot(state.model)

    def as_array(self, name: str) -> np.ndarray:
        """The ratios of parameter ``name`` as an array (one entry per measured step)."""
        if name not in self.ratios:
            raise KeyError(f"no ratios recorded for {name!r}; recorded: {sorted(self.ratios)}")
        return np.asarray(self.ratios[name], dtype=float)
