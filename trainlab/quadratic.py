"""Gradient descent, heavy ball and Nesterov on a quadratic: the 2×2 companion-matrix analysis.

On ``ℓ(θ) = ½ Σᵢ hᵢ θᵢ²`` (any quadratic, in the eigenbasis of its Hessian) every method of
``torch.optim.SGD`` acts on each eigen-direction separately. With ``u = γh`` the iterates obey

* gradient descent: ``x_{t+1} = (1 − u) x_t``;
* heavy ball (PyTorch form ``b ← ρb + g``, ``θ ← θ − γb``): ``x_{t+1} = (1 + ρ − u) x_t − ρ x_{t−1}``;
* Nesterov (``nesterov=True``): ``x_{t+1} = (1 + ρ)(1 − u) x_t − ρ(1 − u) x_{t−1}``,

so the state ``(x_t, x_{t−1})`` is multiplied by a companion matrix at every step, and the error shrinks
like ``r^t`` where ``r`` (the *convergence rate*) is the matrix's spectral radius. This module gives the
matrices, their spectral radii in closed form (checked against ``numpy.linalg.eigvals`` in the tests and
on the page), the stability limits, the optimal settings for a condition number ``κ = h_max/h_min``
(:func:`optimal_gd`, :func:`optimal_heavy_ball`, :func:`optimal_nesterov`), the stationary variance of
the heavy ball under gradient noise, and :func:`measured_rate` to read a rate off a trajectory.

All functions broadcast over NumPy arrays, so a rate map over a grid of ``(γ, ρ)`` is one call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

ArrayLike = float | np.ndarray

METHODS = ("gd", "heavy_ball", "nesterov")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")


def _scaled_step(method: str, lr: ArrayLike, rho: ArrayLike, h: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Check ``method``; return ``u = γh`` and ``ρ`` broadcast to one shape."""
    _check_method(method)
    u, rho = np.broadcast_arrays(np.asarray(lr, dtype=float) * np.asarray(h, dtype=float),
                                 np.asarray(rho, dtype=float))
    return u, rho


def companion_matrix(method: str, lr: ArrayLike, rho: ArrayLike, h: ArrayLike) -> np.ndarray:
    """The matrix ``M`` with ``(x_{t+1}, x_t) = M (x_t, x_{t−1})`` along a direction of curvature ``h``.

    Shape ``broadcast(lr, rho, h).shape + (2, 2)``. For ``"gd"`` ``rho`` is ignored (``M = [[1−γh, 0], [1, 0]]``).
    """
    u, rho = _scaled_step(method, lr, rho, h)
    if method == "gd":
        rho = np.zeros_like(u)
    trace, det = _trace_det(method, u, rho)
    matrix = np.zeros(u.shape + (2, 2))
    matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 1, 0] = trace, -det, 1.0
    return matrix


def _trace_det(method: str, u: np.ndarray, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trace and determinant of the companion matrix: its eigenvalues solve ``λ² − trace·λ + det = 0``."""
    if method == "nesterov":
        return (1 + rho) * (1 - u), rho * (1 - u)
    if method == "heavy_ball":
        return 1 + rho - u, rho
    return 1 - u, np.zeros_like(u)


def spectral_radius(matrix: np.ndarray) -> np.ndarray:
    """Largest eigenvalue modulus of each ``(..., 2, 2)`` matrix, computed numerically."""
    return np.abs(np.linalg.eigvals(matrix)).max(axis=-1)


def rate(method: str, lr: ArrayLike, rho: ArrayLike, h: ArrayLike) -> np.ndarray:
    """Closed-form convergence rate (spectral radius) along one direction of curvature ``h``.

    The eigenvalues are ``(c ± √(c² − 4d))/2`` with ``c`` the trace and ``d`` the determinant. When they
    are complex (``c² < 4d``) both have modulus ``√d`` — ``√ρ`` for the heavy ball, whatever ``γ`` is;
    otherwise the larger modulus is ``(|c| + √(c² − 4d))/2``. ``≥ 1`` means no convergence.
    """
    u, rho = _scaled_step(method, lr, rho, h)
    if method == "gd":
        return np.abs(1 - u)
    c, d = _trace_det(method, u, rho)
    disc = c**2 - 4 * d
    with np.errstate(invalid="ignore"):
        real = (np.abs(c) + np.sqrt(np.maximum(disc, 0))) / 2
        return np.where(disc < 0, np.sqrt(np.abs(d)), real)


def worst_rate(method: str, lr: ArrayLike, rho: ArrayLike, curvatures) -> np.ndarray:
    """The rate on a quadratic with the given Hessian eigenvalues: the slowest direction decides.

    For an interval ``[h_min, h_max]`` of eigenvalues pass its two ends: the rate is largest there.
    """
    return np.max([rate(method, lr, rho, h) for h in np.atleast_1d(curvatures)], axis=0)


def stability_limit(method: str, rho: ArrayLike = 0.0) -> np.ndarray:
    """The largest ``γh`` that converges: GD ``2``; heavy ball ``2(1 + ρ)``; Nesterov ``(2 + 2ρ)/(1 + 2ρ)``.

    (Stable iff ``0 < γh <`` this, for ``0 ≤ ρ < 1``; from the Jury conditions ``|d| < 1``, ``|c| < 1 + d``.)
    """
    _check_method(method)
    rho = np.asarray(rho, dtype=float)
    if method == "gd":
        return np.full_like(rho, 2.0)
    if method == "heavy_ball":
        return 2 * (1 + rho)
    return (2 + 2 * rho) / (1 + 2 * rho)


@dataclass(frozen=True)
class Tuning:
    """A method's best setting for curvatures in ``[h_min, h_max]`` and the rate it achieves."""

    method: str
    lr: float
    rho: float
    rate: float

    def steps_to(self, factor: float = 1e-6) -> float:
        """Steps until the error is ``factor`` times its start (``ln factor / ln rate``)."""
        return float(np.log(factor) / np.log(self.rate))

    def sgd(self, params: Iterable[torch.Tensor]) -> torch.optim.SGD:
        """``torch.optim.SGD`` with this setting (``nesterov=True`` for the Nesterov tuning)."""
        if self.method == "gd":
            return torch.optim.SGD(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.rho, nesterov=self.method == "nesterov")


def _check_range(h_min: float, h_max: float) -> float:
    if not (0 < h_min <= h_max and np.isfinite(h_max)):
        raise ValueError(f"need 0 < h_min <= h_max < inf, got h_min={h_min!r}, h_max={h_max!r}")
    return h_max / h_min


def optimal_gd(h_min: float, h_max: float) -> Tuning:
    """``γ = 2/(h_min + h_max)``: both ends contract by ``(κ − 1)/(κ + 1)``."""
    kappa = _check_range(h_min, h_max)
    return Tuning("gd", 2 / (h_min + h_max), 0.0, (kappa - 1) / (kappa + 1))


def optimal_heavy_ball(h_min: float, h_max: float) -> Tuning:
    """Polyak's tuning: ``γ = 4/(√h_max + √h_min)²``, ``ρ = ((√κ − 1)/(√κ + 1))²``, rate ``(√κ − 1)/(√κ + 1)``.

    Both ends sit exactly on critical damping (a double eigenvalue ``±√ρ``); every curvature in between
    has complex eigenvalues of modulus ``√ρ``.
    """
    kappa = _check_range(h_min, h_max)
    root = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    return Tuning("heavy_ball", float(4 / (np.sqrt(h_max) + np.sqrt(h_min)) ** 2), float(root**2), float(root))


def optimal_nesterov(h_min: float, h_max: float) -> Tuning:
    """Best Nesterov setting on quadratics (Lessard, Recht and Packard 2016): ``γ = 4/(3h_max + h_min)``,
    ``ρ = (√(3κ+1) − 2)/(√(3κ+1) + 2)``, rate ``1 − 2/√(3κ + 1)`` — slower than the tuned heavy ball."""
    kappa = _check_range(h_min, h_max)
    s = np.sqrt(3 * kappa + 1)
    return Tuning("nesterov", 4 / (3 * h_max + h_min), float((s - 2) / (s + 2)), float(1 - 2 / s))


def stationary_variance(lr: ArrayLike, rho: ArrayLike, h: ArrayLike, sigma: ArrayLike = 1.0) -> np.ndarray:
    """Long-run variance of ``x_t`` for the heavy ball on ``½hx²`` with gradient noise of std ``sigma``.

    ``Var = γσ²(1 + ρ) / (h(1 − ρ)(2(1 + ρ) − γh))`` (the stationary variance of the AR(2) process
    ``x_{t+1} = (1 + ρ − γh)x_t − ρx_{t−1} − γξ_t``). For ``γh ≪ 1`` it is ``≈ (γ/(1−ρ))·σ²/(2h)``: the same as
    plain SGD with the effective learning rate ``γ/(1−ρ)``. ``inf`` outside the stability region.
    """
    lr, rho, h, sigma = (np.asarray(v, dtype=float) for v in (lr, rho, h, sigma))
    u = lr * h
    stable = (u > 0) & (u < 2 * (1 + rho)) & (rho < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = lr * sigma**2 * (1 + rho) / (h * (1 - rho) * (2 * (1 + rho) - u))
    return np.where(stable, var, np.inf)


def measured_rate(path: np.ndarray, minimum=0.0, *, start: int = 0, stop: int | None = None) -> float:
    """The per-step contraction read off a trajectory: ``exp`` of the least-squares slope of ``ln e_t``.

    ``path`` is ``(T+1, d)`` (or ``(T+1,)``), ``e_t = √(|θ_t − θ*|² + |θ_{t−1} − θ*|²)`` is the size of the
    companion state (it never passes through zero, unlike ``|θ_t − θ*|`` for an oscillating method), fitted
    over steps ``start..stop``. Equal to the spectral radius up to oscillation and polynomial factors, which
    shrink as the window grows.
    """
    path = np.asarray(path, dtype=float)
    path = path.reshape(len(path), -1) - np.asarray(minimum, dtype=float)
    squared = (path**2).sum(axis=1)
    state = np.sqrt(squared[1:] + squared[:-1])[start:stop]
    if state.size < 2 or not np.all(np.isfinite(state)) or np.any(state <= 0):
        raise ValueError("measured_rate needs at least 2 finite, nonzero errors in the window "
                         "(the run diverged, reached the minimum exactly, or the window is empty)")
    t = np.arange(state.size)
    slope = np.polyfit(t, np.log(state), 1)[0]
    return float(np.exp(slope))
