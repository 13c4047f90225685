"""Training diagnostics that plug into :func:`trainlab.fit` as callbacks.

:class:`UpdateRatio` records ‖Δθ‖/‖θ‖ (the size of one optimizer step relative to the size
of the weights) for every parameter tensor. cs231n's rule of thumb is that about 1e-3 is
healthy: far below, the learning rate is probably too small; far above (1e-1 and more), too
large.

:func:`layer_statistics` runs a model once on a batch and records, per layer (linear/convolutional
layers and activation modules by default), the outputs and the gradients flowing back into them;
:func:`trainlab.plots.plot_layer_histograms` draws them in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
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


# --------------------------------------------------------------------------------------------------
# Per-layer statistics: what each layer outputs, and the gradient that flows back into it.
# Used for activation and gradient histograms (normalization, initialization chapters).
# --------------------------------------------------------------------------------------------------

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
)
LINEAR_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
)
# What layer_statistics records by default: layers with weights and the non-linearities after them.
DEFAULT_LAYER_TYPES = LINEAR_TYPES + ACTIVATION_TYPES
KINDS = ("activation", "gradient", "weight", "weight_gradient")


def _describe(module: nn.Module) -> str:
    """``"Linear 784→128"``, ``"Conv2d 1→16"``, ``"BatchNorm1d 128"``, ``"Tanh"``."""
    kind = type(module).__name__
    if isinstance(module, nn.Linear):
        return f"{kind} {module.in_features}→{module.out_features}"
    if isinstance(module, nn.modules.conv._ConvNd):
        return f"{kind} {module.in_channels}→{module.out_channels}"
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return f"{kind} {module.num_features}"
    if isinstance(module, nn.GroupNorm):
        return f"{kind} {module.num_groups}×{module.num_channels // module.num_groups}"
    return kind


@dataclass
class LayerRecord:
    """One call of one module during the measured forward pass (tensors detached, on the CPU).

    ``activation`` is the module's output; ``gradient`` the gradient of the loss with respect to that
    output (``None`` without labels); ``weight``/``weight_gradient`` the module's ``weight`` parameter and
    its gradient (``None`` for modules without one).
    """

    name: str  # qualified module name, e.g. "3" or "features.0"
    index: int  # 1-based position among the recorded calls, in forward order
    module_type: str  # class name, e.g. "Linear"
    description: str  # e.g. "Linear 784→128"
    activation: torch.Tensor
    gradient: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    weight_gradient: torch.Tensor | None = None

    @property
    def label(self) -> str:
        return f"{self.index}: {self.description}"

    def values(self, kind: str = "activation") -> torch.Tensor:
        """The recorded tensor of ``kind`` (one of :data:`KINDS`), flattened."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        value = getattr(self, kind)
        if value is None:
            hint = ("pass labels y to layer_statistics to get gradients" if "gradient" in kind
                    else f"{self.description} has no weight parameter")
            raise ValueError(f"layer {self.label} has no {kind} recorded: {hint}")
        return value.reshape(-1)

    def std(self, kind: str = "activation") -> float:
        return float(self.values(kind).std(unbiased=False))

    def mean(self, kind: str = "activation") -> float:
        return float(self.values(kind).mean())


@dataclass
class LayerStatistics:
    """The records of :func:`layer_statistics`, in forward order, with per-layer summaries.

    Index it by position (``stats[0]``) or module name (``stats["3"]``); ``select("Tanh")`` keeps some
    module types; ``std(kind)`` gives one number per layer (e.g. to plot against depth over seeds).
    """

    layers: list[LayerRecord]
    loss: float | None = None

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> LayerRecord:
        if isinstance(key, str):
            for record in self.layers:
                if record.name == key:
                    return record
            raise KeyError(f"no layer named {key!r}; recorded: {[r.name for r in self.layers]}")
        return self.layers[key]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.layers]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.layers]

    def select(self, *types: str | type[nn.Module]) -> LayerStatistics:
        """Only the layers of these module types (class names or classes), re-numbered from 1."""
        wanted = {t if isinstance(t, str) else t.__name__ for t in types}
        kept = [r for r in self.layers if r.module_type in wanted]
        if not kept:
            raise ValueError(f"no layers of type {sorted(wanted)}; recorded types: "
                             f"{sorted({r.module_type for r in self.layers})}")
        return LayerStatistics([replace(r, index=i) for i, r in enumerate(kept, start=1)], loss=self.loss)

    def std(self, kind: str = "activation") -> np.ndarray:
        """Standard deviation of ``kind`` per layer (population std over all recorded entries)."""
        return np.array([r.std(kind) for r in self.layers])

    def mean(self, kind: str = "activation") -> np.ndarray:
        return np.array([r.mean(kind) for r in self.layers])

    def table(self):
        """A pandas DataFrame: one row per layer, mean and std of every kind that was recorded."""
        import pandas as pd

        rows = []
        for r in self.layers:
            row = {"layer": r.label}
            for kind in KINDS:
                if getattr(r, kind) is not None:
                    row[f"{kind} mean"], row[f"{kind} std"] = r.mean(kind), r.std(kind)
            rows.append(row)
        return pd.DataFrame(rows).set_index("layer").rename_axis(index=None)


def layer_statistics(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    types: Sequence[type[nn.Module]] | None = None,
    train: bool | None = None,
) -> LayerStatistics:
    """Run ``model`` on the batch ``x`` once and record, per layer, its output and (with labels ``y``) the
    gradient of ``loss_fn(model(x), y)`` with respect to that output and to the layer's weight.

    * ``types``: the module classes to record (default :data:`DEFAULT_LAYER_TYPES`: linear and
      convolutional layers and activation modules; add :data:`NORM_TYPES` for normalization layers).
      Activations written as functions (``F.relu``) are not modules and cannot be recorded.
    * ``train``: run in training (``True``) or evaluation (``False``) mode; ``None`` keeps the model's mode.
      This matters for BatchNorm (batch vs running statistics) and dropout.

    The model is left as it was: its mode, its buffers (BatchNorm's running statistics are restored) and
    the ``.grad`` of its parameters (gradients are computed with ``torch.autograd.grad``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a batch of inputs as a tensor, got {type(x).__name__}")
    if y is not None and (not isinstance(y, torch.Tensor) or y.shape[0] != x.shape[0]):
        raise ValueError("y must be a tensor of labels with one entry per example of x "
                         f"(x has {x.shape[0]}, y is {getattr(y, 'shape', type(y).__name__)})")
    types = tuple(types) if types is not None else DEFAULT_LAYER_TYPES
    tracked = {m: name for name, m in model.named_modules() if isinstance(m, types)}
    if not tracked:
        raise ValueError(f"the model has no modules of the types to record ({[t.__name__ for t in types]}); "
                         "pass types=(...) with the module classes it uses")

    calls: list[tuple[str, nn.Module, torch.Tensor]] = []

    def hook(module: nn.Module, inputs, output):
        if not isinstance(output, torch.Tensor):
            return None
        calls.append((tracked[module], module, output))
        # Downstream layers get a copy, so an in-place op after this layer (ReLU(inplace=True)) cannot
        # overwrite the recorded output; gradients still flow through the copy to the original.
        return output.clone()

    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    handles = [m.register_forward_hook(hook) for m in tracked]
    try:
        if train is not None:
            model.train(train)
        with torch.set_grad_enabled(y is not None):
            out = model(x)
            loss = loss_fn(out, y) if y is not None else None
            weights = [getattr(m, "weight", None) for _, m, _ in calls]
            grads: list[torch.Tensor | None] = [None] * (2 * len(calls))
            if loss is not None:
                targets = [o for _, _, o in calls] + [w for w in weights if isinstance(w, nn.Parameter)]
                found = torch.autograd.grad(loss, targets, allow_unused=True)
                grads[: len(calls)] = found[: len(calls)]
                rest = iter(found[len(calls):])
                for i, w in enumerate(weights):
                    if isinstance(w, nn.Parameter):
                        grads[len(calls) + i] = next(rest)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])

    def cpu(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().float().cpu()

    seen: dict[str, int] = {}
    records = []
    for i, (name, module, output) in enumerate(calls):
        seen[name] = seen.get(name, 0) + 1
        shown = name if seen[name] == 1 else f"{name}#{seen[name]}"  # a module called twice
        weight = weights[i] if isinstance(weights[i], nn.Parameter) else None
        records.append(LayerRecord(
            name=shown, index=i + 1, module_type=type(module).__name__, description=_describe(module),
            activation=cpu(output), gradient=cpu(grads[i]), weight=cpu(weight),
            weight_gradient=cpu(grads[len(calls) + i]) if loss is not None else None))
    return LayerStatistics(records, loss=None if loss is None else float(loss.detach()))


# --------------------------------------------------------------------------------------------------
# Dead units: ReLU units that output 0 for every input, so their incoming weights get no gradient.
# --------------------------------------------------------------------------------------------------


def _module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"no module named {layer!r}; the model has {sorted(n for n in modules if n)}")
    return modules[layer]


def _alive(output: torch.Tensor) -> torch.Tensor:
    """Per unit (dimension 1: features of a Linear, channels of a conv), is any entry of ``output`` > 0?"""
    if output.ndim < 2:
        raise ValueError(f"expected a batch of outputs (batch, units, ...), got shape {tuple(output.shape)}")
    return (output > 0).transpose(0, 1).reshape(output.shape[1], -1).any(dim=1)


@torch.no_grad()
def dead_units(model: nn.Module, layer: str, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Boolean mask of the units of module ``layer`` (a name from ``model.named_modules()``, e.g. the
    ReLU ``"2"`` of ``tl.mlp``) whose output is ≤ 0 for every input in ``x``.

    For a ReLU fed by the inputs ``x`` themselves (the first hidden layer), such a unit gets a zero
    gradient on every example, so plain SGD never changes its weights again: it is dead for good.
    Runs the model in eval mode and restores the previous mode.
    """
    module = _module(model, layer)
    alive: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: alive.append(_alive(out)))
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])
    finally:
        handle.remove()
        model.train(was_training)
    if not alive:
        raise ValueError(f"module {layer!r} was not called during the forward pass (x has {len(x)} rows)")
    return ~torch.stack(alive).any(dim=0)


class SilentUnits(Callback):
    """Per epoch, the fraction of units of module ``layer`` that were ≤ 0 on *every* example the epoch
    trained on: for a ReLU, the units whose incoming weights got no gradient during the whole epoch.

    A forward hook watches the training passes, so it costs no extra forward pass. For the first hidden
    layer under plain SGD (no momentum, no weight decay) a unit silent for an epoch is also dead at the
    epoch's end (its weights did not move); :func:`dead_units` measures that directly. ``fractions[e]`` is
    the value for epoch ``e + 1``.
    """

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.fractions: list[float] = []
        self._peak: torch.Tensor | None = None  # per unit, the largest output seen this epoch
        self._handle = None

    def _hook(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if torch.is_grad_enabled():  # training passes only, not evaluations inside the epoch
            out = output.detach()
            if out.ndim < 2:
                raise ValueError(f"expected a batch of outputs (batch, units, ...), got shape {tuple(out.shape)}")
            peak = out.amax(dim=0) if out.ndim == 2 else out.transpose(0, 1).reshape(out.shape[1], -1).amax(dim=1)
            self._peak = peak if self._peak is None else torch.maximum(self._peak, peak)

    def on_train_begin(self, state: TrainState) -> None:
        self.fractions, self._peak = [], None
        self._handle = _module(state.model, self.layer).register_forward_hook(self._hook)

    def on_epoch_end(self, state: TrainState) -> None:
        if self._peak is None:
            raise RuntimeError(f"SilentUnits: module {self.layer!r} was never called during the epoch")
        self.fractions.append(float((self._peak <= 0).float().mean()))
        self._peak = None

    def on_train_end(self, state: TrainState) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


# --------------------------------------------------------------------------------------------------
# Gradient norms per layer over training: vanishing (first layers ≪ last) or exploding gradients.
# --------------------------------------------------------------------------------------------------


class GradientNorms(Callback):
    """Record ‖∂L/∂θ‖ per parameter (weights, i.e. ≥ 2 dimensions, by default) every ``every`` steps.

    Measured after ``backward()`` (and after any gradient clipping), before the next ``zero_grad``.
    ``steps`` lists the (1-based) steps measured and ``norms[name]`` the norms at those steps.
    """

    def __init__(self, every: int = 1, names: list[str] | None = None) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        self.every, self.names = every, names
        self.steps: list[int] = []
        self.norms: dict[str, list[float]] = {}

    def on_train_begin(self, state: TrainState) -> None:
        self.steps, self.norms = [], {}
        if self.names is not None:
            known = {n for n, _ in state.model.named_parameters()}
            missing = [n for n in self.names if n not in known]
            if missing:
                raise ValueError(f"GradientNorms: no parameters named {missing}; the model has {sorted(known)}")

    @torch.no_grad()
    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every:
            return
        self.steps.append(state.step)
        for name, p in state.model.named_parameters():
            if (p.ndim >= 2 if self.names is None else name in self.names) and p.grad is not None:
                self.norms.setdefault(name, []).append(float(p.grad.norm()))

    def as_array(self, name: str) -> np.ndarray:
        if name not in self.norms:
            raise KeyError(f"no gradient norms recorded for {name!r}; recorded: {sorted(self.norms)}")
        return np.asarray(self.norms[name], dtype=float)
