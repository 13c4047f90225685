"""Plots every chapter uses: curves with seed bands, train vs validation, 2-D loss surfaces.

Every function takes an optional ``ax`` and returns it, labels its axes, and never calls
``plt.show()`` (the notebook shows the figure).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from .seeds import stack

_LABELS = {
    "step_loss": "training loss (per step)",
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "step_lr": "learning rate",
}


def use_style() -> None:
    """Readable defaults for the book: size, grid, font sizes, no top/right spines."""
    plt.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "legend.framealpha": 0.85,
            "figure.constrained_layout.use": True,
        }
    )


def _ax(ax: Axes | None) -> Axes:
    return ax if ax is not None else plt.subplots()[1]


def seed_band(
    ax: Axes | None,
    x: np.ndarray | Sequence[float],
    runs: np.ndarray,
    *,
    label: str | None = None,
    color: str | None = None,
    spread: str = "std",
    smooth: int = 1,
) -> Axes:
    """Mean over seeds (rows of ``runs``) as a line, with ±1 std (or min–max) as a band.

    ``smooth`` > 1 applies a moving average along time first (for noisy per-step losses).
    """
    ax = _ax(ax)
    runs = np.atleast_2d(np.asarray(runs, dtype=float))
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        runs = np.stack([np.convolve(r, kernel, mode="valid") for r in runs])
        x = np.asarray(x)[smooth - 1 :]
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(runs, axis=0)
        if spread == "std":
            sd = np.nanstd(runs, axis=0)
            low, high = mean - sd, mean + sd
        elif spread == "minmax":
            low, high = np.nanmin(runs, axis=0), np.nanmax(runs, axis=0)
        else:
            raise ValueError(f"spread must be 'std' or 'minmax', got {spread!r}")
    n = runs.shape[0]
    (line,) = ax.plot(x, mean, label=f"{label} ({n} seeds)" if label and n > 1 else label, color=color)
    if n > 1:
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    return ax


def plot_runs(
    groups: Mapping[str, Sequence],
    metric: str = "val_loss",
    *,
    ax: Axes | None = None,
    logy: bool = False,
    smooth: int = 1,
    title: str | None = None,
) -> Axes:
    """One seed band per group of histories: ``{"SGD": [h_seed0, h_seed1, ...], ...}``.

    Per-step metrics are plotted against the step, per-epoch ones against the epoch.
    """
    ax = _ax(ax)
    per_step = metric.startswith("step_")
    for label, histories in groups.items():
        runs = stack(histories, metric)
        x = np.arange(1, runs.shape[1] + 1)
        seed_band(ax, x, runs, label=label, smooth=smooth)
    return _finish(ax, xlabel="step" if per_step else "epoch", ylabel=_LABELS.get(metric, metric), logy=logy,
                   title=title)


def plot_train_val(histories, *, ax: Axes | None = None, logy: bool = False, title: str | None = None) -> Axes:
    """Training and validation loss of one run (or a seed band over a list of runs)."""
    ax = _ax(ax)
    histories = histories if isinstance(histories, list | tuple) else [histories]
    x = np.arange(1, len(histories[0].train_loss) + 1)
    seed_band(ax, x, stack(histories, "train_loss"), label="training")
    if histories[0].val_loss:
        seed_band(ax, x, stack(histories, "val_loss"), label="validation")
    return _finish(ax, xlabel="epoch", ylabel="loss", logy=logy, title=title)


def _finish(ax: Axes, *, xlabel: str, ylabel: str, logy: bool, title: str | None) -> Axes:
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if xlabel in ("epoch", "step"):  # counts: no ticks at 1.25 epochs
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def plot_surface(
    f: Callable[[torch.Tensor], torch.Tensor],
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    paths: Mapping[str, np.ndarray] | None = None,
    ax: Axes | None = None,
    resolution: int = 200,
    levels: int = 30,
    log_scale: bool = True,
    minimum: tuple[float, float] | None = None,
    colorbar: bool = True,
) -> Axes:
    """Contours of a 2-D function ``f(points[..., 2]) -> values[...]`` with optimizer paths.

    ``paths`` maps a label to a ``(T, 2)`` array of iterates (from :func:`trainlab.toy.optimize_2d`).
    """
    ax = _ax(ax)
    xs = torch.linspace(*xlim, resolution, dtype=torch.float64)
    ys = torch.linspace(*ylim, resolution, dtype=torch.float64)
    grid_x, grid_y = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        z = f(torch.stack([grid_x, grid_y], dim=-1)).numpy()
    if log_scale:
        z = z - z.min() + 1e-3
        contour = ax.contourf(grid_x, grid_y, z, levels=np.geomspace(z.min(), z.max(), levels),
                              norm=LogNorm(), cmap="viridis", alpha=0.85)
    else:
        contour = ax.contourf(grid_x, grid_y, z, levels=levels, cmap="viridis", alpha=0.85)
    if colorbar:
        bar = ax.figure.colorbar(contour, ax=ax, shrink=0.9)
        bar.set_label("loss" + (" (shifted, log scale)" if log_scale else ""))
        if log_scale:  # label decades only; minor labels like 1.36739×10⁻¹ overlap
            from matplotlib.ticker import LogLocator, NullFormatter

            bar.ax.yaxis.set_major_locator(LogLocator(base=10))
            bar.ax.yaxis.set_minor_formatter(NullFormatter())
    for label, path in (paths or {}).items():
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], ".-", markersize=3, linewidth=1.2, label=label)
    if minimum is not None:
        ax.plot(*minimum, marker="*", color="white", markeredgecolor="black", markersize=14, linestyle="none",
                label="minimum")
    ax.set(xlim=xlim, ylim=ylim, xlabel=r"$\theta_1$", ylabel=r"$\theta_2$")
    ax.grid(False)
    if paths:
        ax.legend(loc="upper right")
    return ax
