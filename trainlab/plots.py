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
    "eval_train_loss": "training loss (full, epoch end)",
    "eval_train_acc": "training accuracy (full, epoch end)",
    "val_loss": "validation loss",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "step_lr": "learning rate",
}


def use_style() -> None:
    """Readable defaults for the book, also on a phone.

    A 6.4-inch figure is shown about 700 px wide on a desktop and about 350 px on a phone, i.e. at half
    size: text is set at 12–13 pt so that it is still ~6–7 pt on the phone, and figures are drawn at 2× the
    pixel density (``retina``) so they stay sharp when zoomed. Put at most two panels side by side.
    """
    plt.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 200,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 12,
            "axes.titlesize": 13,
            "axes.labelsize": 13,
            "xtick.labelsize": 11,
            "ytick.labelsize": 11,
            "legend.fontsize": 11,
            "legend.framealpha": 0.85,
            "lines.linewidth": 2.0,
            "figure.constrained_layout.use": True,
        }
    )
    try:  # inline figures at twice the pixel density (Jupyter and the book's build)
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("retina")
    except ImportError:  # matplotlib-inline ships with ipykernel; plain scripts do not need it
        pass


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


_KIND_LABELS = {
    "activation": "layer output (activation)",
    "gradient": "∂L/∂(layer output)",
    "weight": "weight",
    "weight_gradient": "∂L/∂(weight)",
}
_KIND_STD_LABELS = {
    "activation": "std of the layer output",
    "gradient": "std of ∂L/∂(layer output)",
    "weight": "std of the weight",
    "weight_gradient": "std of ∂L/∂(weight)",
}


def plot_layer_histograms(
    stats,
    kind: str = "activation",
    *,
    ax: Axes | None = None,
    types: Sequence[str | type] | None = None,
    bins: int = 60,
    value_range: tuple[float, float] | None = None,
    annotate_std: bool = True,
    cmap: str = "viridis",
    title: str | None = None,
) -> Axes:
    """Histograms of every layer of a :class:`trainlab.diagnostics.LayerStatistics`, stacked by depth.

    One row per layer (first layer at the top), all on the same x-axis; each histogram is scaled to its
    own row so a narrow spike and a broad bump are both visible, and the row is labelled with the
    layer's standard deviation. ``kind`` is ``"activation"``, ``"gradient"`` (w.r.t. the layer's
    output), ``"weight"`` or ``"weight_gradient"``; ``types`` keeps only some module types (e.g.
    ``["Tanh"]``). The x-range covers 99 % of all values unless ``value_range`` is given.
    """
    ax = _ax(ax)
    if types:
        stats = stats.select(*types)
    if len(stats) == 0:
        raise ValueError("no layers to plot")
    values = [r.values(kind).numpy().astype(float) for r in stats]
    if value_range is None:
        pooled = np.concatenate(values)
        low, high = np.quantile(pooled, [0.005, 0.995])
        if kind != "activation" or (low < 0 < high):  # gradients, tanh: symmetric around zero
            low, high = -max(abs(low), abs(high)), max(abs(low), abs(high))
        if not high > low:
            low, high = low - 1.0, high + 1.0
        value_range = (float(low), float(high))
    edges = np.linspace(*value_range, bins + 1)
    colors = plt.get_cmap(cmap)(np.linspace(0.0, 0.85, len(values)))
    rows = len(values)
    for i, (v, color) in enumerate(zip(values, colors, strict=True)):
        base = rows - 1 - i  # first layer on top
        counts, _ = np.histogram(np.clip(v, *value_range), bins=edges)
        height = 0.9 * counts / max(counts.max(), 1)
        height = np.append(height, height[-1])  # one value per edge, so the last bin is drawn too
        ax.fill_between(edges, base, base + height, step="post", color=color, alpha=0.75, linewidth=0)
        ax.plot(edges, base + height, drawstyle="steps-post", color="black", linewidth=0.5)
        if annotate_std:
            ax.text(1.01, base + 0.35, f"σ={np.std(v):.2g}", transform=ax.get_yaxis_transform(),
                    fontsize="small", va="center")
    kinds = {r.module_type for r in stats}
    if len(kinds) == 1:  # one module type: number the rows, name the type once
        labels, ylabel = [str(r.index) for r in stats], f"{kinds.pop()} layer"
    else:
        labels, ylabel = [r.label for r in stats], None
    ax.set_yticks(np.arange(rows) + 0.35, labels[::-1])
    ax.set(xlim=value_range, ylim=(-0.1, rows), xlabel=_KIND_LABELS.get(kind, kind), ylabel=ylabel)
    ax.grid(False, axis="y")
    if title:
        ax.set_title(title)
    return ax


def plot_layer_std(
    groups: Mapping[str, Sequence],
    kind: str = "activation",
    *,
    ax: Axes | None = None,
    types: Sequence[str | type] | None = None,
    logy: bool = True,
    title: str | None = None,
) -> Axes:
    """Standard deviation of ``kind`` against depth, one seed band per group.

    ``groups`` maps a label to a list of :class:`trainlab.diagnostics.LayerStatistics` (one per seed, same
    architecture), e.g. ``{"no normalization": [stats_seed0, ...], "BatchNorm": [...]}``.
    """
    ax = _ax(ax)
    for label, runs in groups.items():
        runs = list(runs) if isinstance(runs, list | tuple) else [runs]
        if types:
            runs = [r.select(*types) for r in runs]
        stds = np.stack([r.std(kind) for r in runs])
        seed_band(ax, np.arange(1, stds.shape[1] + 1), stds, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="layer (depth)", ylabel=_KIND_STD_LABELS.get(kind, f"std of {kind}"))
    if logy:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_yscale("log")
        def some(v, _):  # label the minor ticks at 2 and 5 × 10^k only
            return f"{v:g}" if round(v / 10 ** np.floor(np.log10(v))) in (2, 5) else ""

        low, high = ax.get_ylim()
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.06, not 6×10⁻²
        ax.yaxis.set_minor_formatter(FuncFormatter(some) if high / low < 100 else NullFormatter())
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def plot_layer_histogram_grid(
    groups: Mapping[str, object],
    kinds: Sequence[str] = ("activation", "gradient"),
    *,
    types: Mapping[str, Sequence[str | type]] | Sequence[str | type] | None = None,
    value_range: Mapping[str, tuple[float, float]] | None = None,
    row_height: float = 2.3,
    width: float = 6.4,
):
    """A figure of :func:`plot_layer_histograms`: one row per group (e.g. per initialization), one column
    per kind (at most two, so it stays legible on a phone). ``groups`` maps a label to one
    :class:`trainlab.diagnostics.LayerStatistics`; ``types`` gives the module types to show, for all kinds
    or per kind (``{"activation": ["Tanh"], "gradient": ["Linear"]}``); ``value_range`` fixes the x-range
    of a kind (e.g. ``{"activation": (-1, 1)}`` for tanh). Returns the figure.
    """
    kinds = list(kinds)
    if not 1 <= len(kinds) <= 2:
        raise ValueError(f"give one or two kinds (columns), got {kinds}")
    if not groups:
        raise ValueError("no groups to plot")
    per_kind = types if isinstance(types, Mapping) else {kind: types for kind in kinds}
    fig, axes = plt.subplots(len(groups), len(kinds), figsize=(width, row_height * len(groups)), squeeze=False)
    for row, (label, stats) in zip(axes, groups.items(), strict=True):
        for ax, kind in zip(row, kinds, strict=True):
            plot_layer_histograms(stats, kind, ax=ax, types=per_kind.get(kind),
                                  value_range=(value_range or {}).get(kind), title=label)
            ax.xaxis.set_major_locator(MaxNLocator(4, symmetric=kind != "activation"))
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))  # 2e-4, not 0.00020000
            if ax is not axes[-1][0] and ax is not axes[-1][-1]:
                ax.set_xlabel("")
    for ax in axes[-1]:  # room for a "1e-4" multiplier between tick labels and axis label
        ax.xaxis.labelpad = 16
    return fig


def plot_layer_traces(
    steps: Sequence[int] | np.ndarray,
    traces: Mapping[str, np.ndarray | Sequence[float]],
    *,
    ax: Axes | None = None,
    ylabel: str = "value",
    reference: float | None = None,
    logy: bool = True,
    title: str | None = None,
    cmap: str = "viridis",
    smooth: int = 1,
) -> Axes:
    """One line per layer over training steps, coloured by depth (first layer dark, last light).

    ``traces`` maps a layer name to its series, ``(T,)`` for one run or ``(seeds, T)`` for a seed band
    (e.g. ``UpdateRatio.ratios`` or ``GradientNorms.norms``); ``reference`` draws a dotted horizontal line
    (e.g. cs231n's 1e-3 for the update/weight ratio).
    """
    ax = _ax(ax)
    if not traces:
        raise ValueError("no traces to plot")
    colors = plt.get_cmap(cmap)(np.linspace(0.0, 0.85, len(traces)))
    for (name, series), color in zip(traces.items(), colors, strict=True):
        seed_band(ax, np.asarray(steps), np.atleast_2d(np.asarray(series, dtype=float)), label=name,
                  color=color, smooth=smooth)
    if reference is not None:
        ax.axhline(reference, color="0.3", linestyle=":", linewidth=1.2)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel=ylabel)
    if title:
        ax.set_title(title)
    return ax
