"""Checks to run before a long training run (the cs231n notes' "sanity checks" and "gradient checks").

* :func:`numerical_gradient` (centered differences) and :func:`relative_error` compare an analytic
  gradient with a numerical one; :func:`check_gradients` does it for a model's parameters in float64.
* :func:`penalized_loss` is the data loss plus (λ/2)·Σ‖W‖² over the weights, to check that the loss
  goes up with the regularization strength.
* :func:`overfit` trains on a handful of examples until the loss is ~0: a model or a pipeline that
  cannot do that has a bug.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def relative_error(analytic: torch.Tensor, numeric: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
    """|a − n| / max(|a|, |n|, floor), elementwise: cs231n's criterion (≲ 1e-7 good, > 1e-2 wrong)."""
    return (analytic - numeric).abs() / torch.maximum(analytic.abs().maximum(numeric.abs()),
                                                      torch.tensor(floor, dtype=analytic.dtype))


@torch.no_grad()
def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6,
                       index: torch.Tensor | None = None) -> torch.Tensor:
    """Centered differences (f(x + ε e_i) − f(x − ε e_i)) / 2ε for every coordinate i of ``x`` (or only
    the flat indices in ``index``; the others are 0). ``x`` is perturbed in place and restored."""
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in (range(flat.numel()) if index is None else index.tolist()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f(x))
        flat[i] = old - eps
        minus = float(f(x))
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_fn: LossFn = F.cross_entropy,
                    eps: float = 1e-6, per_tensor: int = 20, dtype: torch.dtype = torch.float64,
                    seed: int = 0) -> dict[str, float]:
    """Largest relative error between autograd and centered differences, per parameter tensor.

    Works on a copy of ``model`` converted to ``dtype`` (float64 by default: in float32 round-off swamps
    the difference quotient); ``per_tensor`` coordinates of each parameter are checked, drawn at random.
    """
    if per_tensor < 1:
        raise ValueError(f"per_tensor must be at least 1, got {per_tensor}")
    model = copy.deepcopy(model).to(dtype)
    x = x.to(dtype) if x.is_floating_point() else x
    loss = lambda _p: loss_fn(model(x), y)  # noqa: E731  (reads the parameters, perturbed in place)
    params = dict(model.named_parameters())
    analytic = dict(zip(params, torch.autograd.grad(loss(None), list(params.values())), strict=True))
    gen = torch.Generator().manual_seed(seed)
    errors = {}
    for name, p in params.items():
        index = torch.randperm(p.numel(), generator=gen)[:per_tensor]
        numeric = numerical_gradient(loss, p.data, eps, index=index)
        errors[name] = float(relative_error(analytic[name].reshape(-1)[index], numeric.reshape(-1)[index]).max())
    return errors


def penalized_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float, *,
                   loss_fn: LossFn = F.cross_entropy) -> float:
    """loss_fn(model(x), y) + (λ/2)·Σ‖W‖² over the weights (parameters with ≥ 2 dimensions)."""
    with torch.no_grad():
        penalty = sum(float((p**2).sum()) for p in model.parameters() if p.ndim >= 2)
        return float(loss_fn(model(x), y)) + 0.5 * lam * penalty


def overfit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int = 200, lr: float = 1e-3,
            loss_fn: LossFn = F.cross_entropy) -> list[float]:
    """Train ``model`` with Adam on the one batch ``(x, y)`` for ``steps`` steps; the loss after each."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
