"""Weight initialization: named schemes applied to a model, their formulas, and what they predict.

* :func:`init_std` is the standard deviation each scheme gives a weight of a layer with ``fan_in`` inputs
  and ``fan_out`` outputs (Glorot & Bengio's Xavier, He et al.'s Kaiming, LeCun's, PyTorch's default, a
  fixed ``std``), written from the derivation, independently of ``torch.nn.init``.
* :func:`init_` applies a scheme to every linear/convolutional layer of a model (through ``torch.nn.init``).
* :func:`predict_signal` propagates the variance of the pre-activations forward and of the gradients
  backward through an MLP in the infinite-width (mean-field) approximation: independent zero-mean weights,
  zero biases, Gaussian pre-activations, gradients independent of the forward weights. For ReLU and a
  linear network it is the Xavier/He calculation; for tanh the Gaussian expectations are computed by
  numerical quadrature instead of assuming the linear regime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SCHEMES = ("zero", "constant", "normal", "uniform", "lecun_normal", "xavier_uniform", "xavier_normal",
           "kaiming_uniform", "kaiming_normal", "default")
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def gain(nonlinearity: str = "linear", param: float | None = None) -> float:
    """The factor by which a scheme scales its std for a non-linearity (same values as ``calculate_gain``).

    ReLU halves the second moment of a symmetric input, so it needs √2; leaky ReLU with slope ``a``
    keeps (1 + a²)/2 of it; tanh and sigmoid use the empirical constants 5/3 and 1.
    """
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; use linear, tanh, relu, leaky_relu, sigmoid or selu")


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel): in·k and out·k, k the kernel size."""
    if weight.ndim < 2:
        raise ValueError(f"fan_in/fan_out need a weight with at least 2 dimensions, got shape {tuple(weight.shape)}")
    receptive = int(np.prod(weight.shape[2:])) if weight.ndim > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def init_std(scheme: str, fan_in: int, fan_out: int, *, std: float | None = None, gain: float = 1.0,
             mode: str = "fan_in") -> float:
    """Standard deviation of one weight under ``scheme`` (the uniform schemes draw from U(−√3σ, √3σ)).

    * ``xavier_*``: gain·√(2/(fan_in + fan_out)) — the compromise between the forward condition
      Var(w) = 1/fan_in and the backward one Var(w) = 1/fan_out;
    * ``kaiming_*``: gain/√fan with fan = fan_in (``mode="fan_in"``, forward) or fan_out (backward);
    * ``lecun_normal``: 1/√fan_in; ``default``: PyTorch's ``nn.Linear``/``nn.Conv`` default,
      kaiming_uniform with a = √5, i.e. U(−1/√fan_in, 1/√fan_in), std 1/√(3·fan_in);
    * ``normal``/``uniform``: the given ``std``; ``zero``/``constant``: 0.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    if scheme in ("zero", "constant"):
        return 0.0
    if scheme in ("normal", "uniform"):
        if std is None:
            raise ValueError(f"scheme {scheme!r} needs std=...")
        return float(std)
    if scheme.startswith("xavier"):
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    if scheme.startswith("kaiming"):
        return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    if scheme == "lecun_normal":
        return 1.0 / math.sqrt(fan_in)
    return 1.0 / math.sqrt(3.0 * fan_in)  # default


def linear_layers(model: nn.Module) -> list[nn.Module]:
    """The model's linear and convolutional layers, in registration order."""
    layers = [m for m in model.modules() if isinstance(m, _LAYERS)]
    if not layers:
        raise ValueError("the model has no nn.Linear or nn.Conv layers to initialize")
    return layers


@torch.no_grad()
def init_(model: nn.Module, scheme: str, *, std: float | None = None, value: float = 0.0,
          nonlinearity: str = "relu", gain: float | None = None, mode: str = "fan_in",
          bias: float | None = 0.0) -> nn.Module:
    """Initialize every ``nn.Linear``/``nn.Conv`` weight of ``model`` with ``scheme`` (in place; returns it).

    ``scheme`` is one of :data:`SCHEMES`. ``gain`` defaults to 1 for Xavier (Glorot & Bengio's choice) and to
    ``gain(nonlinearity)`` for Kaiming; ``value`` is the constant of ``"constant"``; ``bias`` fills every
    bias (``None`` leaves biases as they are). ``"default"`` calls each layer's ``reset_parameters()``
    (PyTorch's own weights *and* biases). Random draws use the global torch generator: seed first.
    """
    init_std(scheme, 2, 2, std=std if std is not None else 1.0, mode=mode)  # validates scheme and mode
    for layer in linear_layers(model):
        w = layer.weight
        if scheme == "default":
            layer.reset_parameters()
            continue
        if scheme == "zero":
            nn.init.zeros_(w)
        elif scheme == "constant":
            nn.init.constant_(w, value)
        elif scheme in ("normal", "uniform", "lecun_normal"):
            sigma = init_std(scheme, *fans(w), std=std)
            if scheme == "uniform":
                nn.init.uniform_(w, -math.sqrt(3) * sigma, math.sqrt(3) * sigma)
            else:
                nn.init.normal_(w, 0.0, sigma)
        elif scheme.startswith("xavier"):
            g = 1.0 if gain is None else gain
            (nn.init.xavier_uniform_ if scheme == "xavier_uniform" else nn.init.xavier_normal_)(w, gain=g)
        elif gain is None:  # kaiming from the non-linearity's name, as torch does it
            fn = nn.init.kaiming_uniform_ if scheme == "kaiming_uniform" else nn.init.kaiming_normal_
            fn(w, mode=mode, nonlinearity=nonlinearity)
        else:  # kaiming with an explicit gain
            sigma = init_std(scheme, *fans(w), gain=gain, mode=mode)
            if scheme == "kaiming_uniform":
                nn.init.uniform_(w, -math.sqrt(3) * sigma, math.sqrt(3) * sigma)
            else:
                nn.init.normal_(w, 0.0, sigma)
        if bias is not None and layer.bias is not None:
            nn.init.constant_(layer.bias, bias)
    return model


# --------------------------------------------------------------------------------------------------
# Signal propagation in the infinite-width approximation
# --------------------------------------------------------------------------------------------------

_U = np.linspace(-12.0, 12.0, 48_001)  # z = √q·u with u ~ N(0, 1), a grid fine enough for tanh' at large q
_PDF = np.exp(-_U**2 / 2)
_PDF = _PDF / _PDF.sum()


def gaussian_mean(f, q: float) -> float:
    """E[f(z)] for z ~ N(0, q), by a dense quadrature over ±12 standard deviations."""
    return float(np.sum(_PDF * f(math.sqrt(max(q, 0.0)) * _U)))


def _moments(activation: str, q: float) -> tuple[float, float]:
    """(E[φ(z)²], E[φ'(z)²]) for z ~ N(0, q)."""
    if activation == "relu":
        return q / 2.0, 0.5  # half of a symmetric distribution survives, with slope 1
    if activation == "linear":
        return q, 1.0
    if activation == "tanh":
        return gaussian_mean(lambda z: np.tanh(z) ** 2, q), gaussian_mean(lambda z: (1 - np.tanh(z) ** 2) ** 2, q)
    raise ValueError(f"activation must be 'relu', 'tanh' or 'linear', got {activation!r}")


@dataclass(frozen=True)
class SignalPrediction:
    """Predicted std per linear layer (first to output): of its output z_l and of ∂L/∂z_l."""

    activation_std: np.ndarray
    gradient_std: np.ndarray | None


def predict_signal(shapes: Sequence[tuple[int, int]], weight_std: Sequence[float], *, activation: str,
                   input_second_moment: float, output_grad_std: float | None = None) -> SignalPrediction:
    """Mean-field prediction for an MLP Linear → φ → … → Linear with zero biases.

    ``shapes[l]`` is (fan_in, fan_out) of linear layer l, ``weight_std[l]`` the std of its weights,
    ``input_second_moment`` the mean of x_i² over the input coordinates. Forward:
    q_1 = fan_in·Var(w_1)·E[x²], q_l = fan_in·Var(w_l)·E[φ(z_{l−1})²]. Backward, from the output gradient's
    std: Var(δ_l) = E[φ'(z_l)²]·fan_out_{l+1}·Var(w_{l+1})·Var(δ_{l+1}).
    """
    if len(shapes) != len(weight_std) or not shapes:
        raise ValueError(f"need one std per layer: {len(shapes)} shapes, {len(weight_std)} stds")
    q = []
    second = float(input_second_moment)
    for k, ((fan_in, _), s) in enumerate(zip(shapes, weight_std, strict=True)):
        q.append(fan_in * s**2 * second)
        if k < len(shapes) - 1:
            second = _moments(activation, q[-1])[0]
    grad = None
    if output_grad_std is not None:
        v = [float(output_grad_std) ** 2]
        for k in range(len(shapes) - 2, -1, -1):
            fan_out_next, s_next = shapes[k + 1][1], weight_std[k + 1]
            v.append(_moments(activation, q[k])[1] * fan_out_next * s_next**2 * v[-1])
        grad = np.sqrt(np.array(v[::-1]))
    return SignalPrediction(np.sqrt(np.array(q)), grad)


def mlp_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every linear layer of ``model`` in order."""
    return [fans(layer.weight) for layer in linear_layers(model)]
