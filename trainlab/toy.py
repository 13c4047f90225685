"""Two-dimensional test functions and a driver that runs any ``torch.optim`` optimizer on them.

The functions take points shaped ``(..., 2)`` and return values shaped ``(...)``, so the same
function draws a contour plot (a grid of points) and is minimised (a single point).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

Objective = Callable[[torch.Tensor], torch.Tensor]


def ravine(a: float = 1.0, b: float = 20.0) -> Objective:
    """The quadratic ``(a·θ₁² + b·θ₂²) / 2``: curvature ``b/a`` times larger across than along."""

    def f(theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * (a * theta[..., 0] ** 2 + b * theta[..., 1] ** 2)

    f.__name__ = f"ravine(a={a}, b={b})"
    return f


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Objective:
    """Rosenbrock's banana valley ``(a − θ₁)² + b(θ₂ − θ₁²)²``, minimum at ``(a, a²)``."""

    def f(theta: torch.Tensor) -> torch.Tensor:
        return (a - theta[..., 0]) ** 2 + b * (theta[..., 1] - theta[..., 0] ** 2) ** 2

    f.__name__ = f"rosenbrock(a={a}, b={b})"
    return f


def optimize_2d(
    f: Objective,
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    start: tuple[float, float],
    steps: int,
    *,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``f`` from ``start`` for ``steps`` steps; return iterates ``(steps+1, 2)`` and losses.

    ``make_optimizer`` gets the parameter list, e.g. ``lambda p: torch.optim.SGD(p, lr=0.1)``.
    ``noise`` adds Gaussian noise of that standard deviation to each gradient (a stand-in for
    mini-batch noise). Iterates that overflow are kept as inf/NaN so divergence shows.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    theta = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([theta])
    generator = torch.Generator().manual_seed(seed)
    path, losses = [theta.detach().clone()], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = f(theta)
        loss.backward()
        if noise:
            theta.grad += noise * torch.randn(2, generator=generator, dtype=torch.float64)
        optimizer.step()
        losses.append(loss.item())
        path.append(theta.detach().clone())
    with torch.no_grad():
        losses.append(f(theta).item())
    return torch.stack(path).numpy(), np.asarray(losses)
