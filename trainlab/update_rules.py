"""From-scratch optimizer update rules: check them against ``torch.optim`` step for step, and run them.

A chapter writes an update rule in a few lines, ``update(theta, grad, state, **hp) -> new theta``
(``state`` is a dict the rule keeps its buffers in), and asserts that it follows exactly the same
trajectory as the PyTorch class given the *same* hyperparameters (same names as PyTorch's keyword
arguments, so nothing differs by accident: scratch and library share one ``hp`` dict).

The test problem is a noisy, badly scaled quadratic whose gradient coordinates span many orders of
magnitude, so details such as where ``eps`` sits in a denominator change the trajectory measurably::

    gap = max_gap_to_torch(adam, torch.optim.Adam, lr=1e-2, betas=(0.9, 0.99))
    assert gap < 1e-12

Because such a rule is written with element-wise tensor operations, it also runs for a whole grid of
learning rates at once (:func:`optimize_2d_batch`: one row of parameters per learning rate), which
makes learning-rate scans on the 2-D surfaces of :mod:`trainlab.toy` nearly free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

# grad_fn(theta, t) -> gradient at theta for step t (t = 1, 2, ...); the same t gives the same noise.
GradFn = Callable[[torch.Tensor, int], torch.Tensor]
Update = Callable[..., torch.Tensor]


def noisy_quadratic(dim: int = 8, *, noise: float = 0.3, seed: int = 0) -> GradFn:
    """Gradient of ``Σ h_i θ_i² / 2`` plus Gaussian noise, with curvatures ``h`` from 1e-2 to 1e2 and
    noise scales from ``noise·1e-6`` to ``noise``: some coordinates see gradients of order 1, others of
    order 1e-7, where an optimizer's ``eps`` matters. Deterministic in ``(theta, t)``."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    h = torch.logspace(-2, 2, dim, dtype=torch.float64)
    scale = noise * torch.logspace(-6, 0, dim, dtype=torch.float64)

    def grad(theta: torch.Tensor, t: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + t)
        return h * theta + scale * torch.randn(dim, generator=generator, dtype=torch.float64)

    return grad


def scratch_trajectory(update: Update, grad_fn: GradFn, theta0: torch.Tensor, steps: int, **hp) -> torch.Tensor:
    """Iterates ``(steps + 1, dim)`` of ``theta ← update(theta, grad_fn(theta, t), state, **hp)``."""
    _check_steps(steps)
    theta, state, path = theta0.clone(), {}, [theta0.clone()]
    for t in range(1, steps + 1):
        theta = update(theta, grad_fn(theta, t), state, **hp)
        path.append(theta.clone())
    return torch.stack(path)


def torch_trajectory(
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    grad_fn: GradFn,
    theta0: torch.Tensor,
    steps: int,
) -> torch.Tensor:
    """Iterates ``(steps + 1, dim)`` of a ``torch.optim`` optimizer fed the gradients of ``grad_fn``."""
    _check_steps(steps)
    param = theta0.clone().requires_grad_(True)
    optimizer = make_optimizer([param])
    path = [theta0.clone()]
    for t in range(1, steps + 1):
        param.grad = grad_fn(param.detach().clone(), t)
        optimizer.step()
        path.append(param.detach().clone())
    return torch.stack(path)


def max_gap_to_torch(
    update: Update,
    optimizer_class: type[torch.optim.Optimizer],
    *,
    steps: int = 200,
    grad_fn: GradFn | None = None,
    theta0: torch.Tensor | None = None,
    **hp,
) -> float:
    """Largest ``|θ_scratch − θ_torch|`` over ``steps`` steps, both runs given the same ``hp``.

    ``hp`` are the optimizer's keyword arguments (``lr=..., eps=...``), passed unchanged to
    ``update`` and to ``optimizer_class``. The default problem is :func:`noisy_quadratic` from
    ``θ₀ = (1, …, 1)`` in float64.
    """
    grad_fn = grad_fn or noisy_quadratic()
    if theta0 is None:
        theta0 = torch.ones(8, dtype=torch.float64)
    if theta0.dtype != torch.float64:
        raise ValueError(f"compare in float64 (theta0 has dtype {theta0.dtype}): float32 rounding hides small bugs")
    ours = scratch_trajectory(update, grad_fn, theta0, steps, **hp)
    theirs = torch_trajectory(lambda params: optimizer_class(params, **hp), grad_fn, theta0, steps)
    if not torch.isfinite(theirs).all():
        raise ValueError("the torch.optim run diverged on the test problem; use a smaller lr")
    return float((ours - theirs).abs().max())


def optimize_2d_batch(
    f: Callable[[torch.Tensor], torch.Tensor],
    update: Update,
    start: tuple[float, float],
    steps: int,
    lrs: Sequence[float],
    **hp,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the rule ``update`` on a 2-D function for every learning rate in ``lrs`` at once (float64).

    Returns iterates ``(len(lrs), steps + 1, 2)`` and losses ``(len(lrs), steps + 1)``, like
    :func:`trainlab.toy.optimize_2d` with one row per learning rate. ``update`` receives ``lr`` as a
    column ``(len(lrs), 1)``, so it must use only element-wise operations. Diverging rows keep their
    inf/NaN values.
    """
    _check_steps(steps)
    lr = torch.as_tensor(np.asarray(lrs, dtype=float), dtype=torch.float64).reshape(-1, 1)
    if lr.numel() == 0:
        raise ValueError("lrs is empty: give at least one learning rate")
    theta = torch.tensor(start, dtype=torch.float64).repeat(lr.shape[0], 1)
    state: dict = {}
    path, losses = [theta.clone()], []
    for _ in range(steps):
        theta = theta.detach().requires_grad_(True)
        loss = f(theta)
        (grad,) = torch.autograd.grad(loss.sum(), theta)
        losses.append(loss.detach())
        with torch.no_grad():
            theta = update(theta.detach(), grad, state, lr=lr, **hp)
        path.append(theta.detach().clone())
    with torch.no_grad():
        losses.append(f(theta))
    return torch.stack(path, 1).numpy(), torch.stack(losses, 1).numpy()


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
