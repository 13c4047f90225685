"""The optimizer playground: pick a 2-D surface and an optimizer, move the sliders, watch the path.

Three layers, so the first two work (and are tested) without a browser:

* :func:`run_playground` runs one setting and returns the path and the losses;
* :func:`draw_playground` draws that path on the surface (the book's static figures use it);
* :func:`optimizer_playground` wraps both in ipywidgets; it needs a live Jupyter kernel to be useful.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .plots import plot_surface
from .toy import SURFACES, get_surface, optimize_2d

#: Optimizer names the playground accepts. ``momentum`` is the heavy ball as PyTorch writes it
#: (``b = ρb + g``, ``θ -= lr·b``); for Adam the momentum slider sets β₁.
OPTIMIZERS = ("SGD", "momentum", "Nesterov", "Adam")
MAX_STEPS = 5000


def _make_optimizer(optimizer: str, lr: float, momentum: float):
    if optimizer == "SGD":
        return lambda params: torch.optim.SGD(params, lr=lr)
    if optimizer == "momentum":
        return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)
    if optimizer == "Nesterov":
        if momentum == 0:  # torch refuses nesterov=True with momentum 0; it is plain SGD then
            return lambda params: torch.optim.SGD(params, lr=lr)
        return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True)
    return lambda params: torch.optim.Adam(params, lr=lr, betas=(momentum, 0.999))


def _check(surface: str, optimizer: str, lr: float, momentum: float, steps: int) -> None:
    get_surface(surface)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}.")
    if not (isinstance(momentum, int | float) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r} (1 or more never slows down).")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer between 1 and {MAX_STEPS}, got {steps!r}.")


def run_playground(
    surface: str, optimizer: str, lr: float, momentum: float = 0.0, steps: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``optimizer`` on the named surface from its start point.

    Returns the iterates ``(steps + 1, 2)`` and the losses ``(steps + 1,)``; a diverging run keeps
    its inf/NaN values so the divergence shows. Unknown names or out-of-range values raise
    ``ValueError`` saying what is allowed.
    """
    _check(surface, optimizer, lr, momentum, steps)
    s = get_surface(surface)
    return optimize_2d(s.f, _make_optimizer(optimizer, float(lr), float(momentum)), s.start, int(steps))


def describe(optimizer: str, lr: float, momentum: float) -> str:
    """Short label such as ``"momentum lr=0.02 ρ=0.8"`` (ρ: the book's symbol for the momentum)."""
    if optimizer == "SGD":
        return f"SGD lr={lr:.3g}"
    knob = "β₁" if optimizer == "Adam" else "ρ"
    return f"{optimizer} lr={lr:.3g} {knob}={momentum:.2g}"


def draw_playground(
    surface: str,
    optimizer: str,
    lr: float,
    momentum: float = 0.0,
    steps: int = 100,
    *,
    ax: Axes | None = None,
    colorbar: bool = True,
    title: bool = True,
) -> Figure:
    """Draw the path of :func:`run_playground` on the surface; return the figure.

    Without ``ax`` a new figure is made (outside pyplot, so nothing piles up in a loop).
    """
    path, losses = run_playground(surface, optimizer, lr, momentum, steps)
    return _draw(surface, optimizer, lr, momentum, path, losses, ax=ax, colorbar=colorbar, title=title)


def _draw(surface, optimizer, lr, momentum, path, losses, *, ax=None, colorbar=True, title=True) -> Figure:
    s, steps = get_surface(surface), len(path) - 1
    if ax is None:
        ax = Figure(figsize=(6.4, 4.4), layout="constrained").subplots()
    plot_surface(s.f, xlim=s.xlim, ylim=s.ylim, paths={describe(optimizer, lr, momentum): path}, ax=ax,
                 minimum=s.minimum, log_scale=s.log_scale, colorbar=colorbar)
    if title:
        final = losses[-1]
        blew_up = not np.isfinite(final) or final > 1e3 * max(losses[0], 1e-12)
        status = "diverged" if blew_up else f"loss after {steps} steps: {final:.3g}"
        ax.set_title(f"{surface}: {status}")
    return ax.figure


def _png_output(fig: Figure) -> dict:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return {
        "output_type": "display_data",
        "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": repr(fig)},
        "metadata": {},
    }


def optimizer_playground(
    surface: str = "ravine", optimizer: str = "momentum", lr: float = 0.02, momentum: float = 0.8,
    steps: int = 60,
):
    """An ipywidgets ``VBox``: surface and optimizer menus, LR (log), momentum and steps sliders,
    and the plot, redrawn on every change. Use it in Jupyter: ``display(optimizer_playground())``.

    The box also carries ``controls`` (name → widget), ``output`` (the ``Output`` widget), and
    after each redraw ``figure``, ``path``, ``losses`` and ``redraws`` (a counter).
    """
    import ipywidgets as w

    _check(surface, optimizer, lr, momentum, steps)
    controls = {
        "surface": w.Dropdown(options=list(SURFACES), value=surface, description="surface"),
        "optimizer": w.Dropdown(options=list(OPTIMIZERS), value=optimizer, description="optimizer"),
        "lr": w.FloatLogSlider(value=lr, base=10, min=-5, max=0, step=0.05, description="LR",
                               readout_format=".2e"),
        "momentum": w.FloatSlider(value=momentum, min=0.0, max=0.99, step=0.01, description="momentum"),
        "steps": w.IntSlider(value=steps, min=1, max=1000, description="steps"),
    }
    output = w.Output()
    message = w.HTML()
    box = w.VBox([w.HBox([controls["surface"], controls["optimizer"]]),
                  w.HBox([controls["lr"], controls["momentum"], controls["steps"]]), message, output])
    box.controls, box.output, box.redraws = controls, output, 0

    def redraw(_change=None) -> None:
        values = {name: c.value for name, c in controls.items()}
        try:
            path, losses = run_playground(**values)
        except ValueError as error:
            message.value = f"<b>Cannot run this setting:</b> {error}"
            return
        message.value = ""
        box.path, box.losses = path, losses
        box.figure = _draw(values["surface"], values["optimizer"], values["lr"], values["momentum"], path, losses)
        output.outputs = (_png_output(box.figure),)
        box.redraws += 1

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    return box
