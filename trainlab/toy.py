"""Two-dimensional test functions and a driver that runs any ``torch.optim`` optimizer on them.

The functions take points shaped ``(..., 2)`` and return values shaped ``(...)``, so the same
function draws a contour plot (a grid of points) and is minimised (a single point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def bumpy(curvature: float = 0.2, amplitude: float = 0.4, frequency: float = 1.5) -> Objective:
    """A wide bowl with ripples: ``c·|θ|²/2 + A·(sin²(kθ₁) + sin²(kθ₂))``, global minimum at 0.

    The ripples make many shallow local minima; plain gradient descent stops in the nearest one.
    """

    def f(theta: torch.Tensor) -> torch.Tensor:
        bowl = 0.5 * curvature * (theta[..., 0] ** 2 + theta[..., 1] ** 2)
        ripples = torch.sin(frequency * theta[..., 0]) ** 2 + torch.sin(frequency * theta[..., 1]) ** 2
        return bowl + amplitude * ripples

    f.__name__ = f"bumpy(curvature={curvature}, amplitude={amplitude}, frequency={frequency})"
    return f


@dataclass(frozen=True)
class Surface:
    """A named test function with the view and start point that show it best."""

    name: str
    f: Objective
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    start: tuple[float, float]
    minimum: tuple[float, float]
    log_scale: bool = True
    description: str = ""


SURFACES: dict[str, Surface] = {
    "ravine": Surface(
        "ravine", ravine(1.0, 20.0), xlim=(-10.5, 2.5), ylim=(-3.0, 3.0), start=(-9.0, 2.0),
        minimum=(0.0, 0.0), description="quadratic, 20x more curved across than along",
    ),
    "rosenbrock": Surface(
        "rosenbrock", rosenbrock(1.0, 100.0), xlim=(-2.0, 2.0), ylim=(-1.0, 3.0), start=(-1.5, 1.5),
        minimum=(1.0, 1.0), description="curved banana valley",
    ),
    "bumpy": Surface(
        "bumpy", bumpy(), xlim=(-6.0, 6.0), ylim=(-6.0, 6.0), start=(-5.0, 4.5),
        minimum=(0.0, 0.0), log_scale=False, description="bowl with ripples (many local minima)",
    ),
}


def get_surface(name: str) -> Surface:
    """The surface called ``name`` in :data:`SURFACES`, with a clear error for an unknown name."""
    try:
        return SURFACES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown surface {name!r}; choose one of {', '.join(SURFACES)}."
        ) from None
