"""Normalization layers: the plumbing around them (the layers themselves are taught from scratch in the
normalization chapter and checked there against PyTorch with :func:`check_same_layer`).

* :func:`norm_layer` builds ``nn.BatchNorm1d`` / ``nn.LayerNorm`` / ``nn.GroupNorm`` (or nothing) by name,
  for models whose normalization is a setting (``trainlab.mlp(..., norm="layer")``).
* :func:`check_same_layer` runs two layers side by side for several training steps and in evaluation
  mode and asserts equal outputs, gradients and buffers (running statistics).
* :func:`evaluate_with_batch_statistics` measures what happens when ``model.eval()`` is forgotten:
  BatchNorm then normalizes each evaluation batch with its own statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

NORM_KINDS = ("none", "batch", "layer", "group")


def norm_layer(kind: str | None, num_features: int, *, groups: int = 8) -> nn.Module:
    """A normalization layer for ``num_features`` features (or channels) of a ``(B, num_features)`` input.

    ``kind``: ``"batch"`` (``nn.BatchNorm1d``), ``"layer"`` (``nn.LayerNorm``), ``"group"``
    (``nn.GroupNorm`` with ``groups`` groups) or ``"none"``/``None`` (``nn.Identity``).
    """
    kind = "none" if kind is None else kind
    if kind not in NORM_KINDS:
        raise ValueError(f"unknown normalization {kind!r}; use one of {NORM_KINDS}")
    if kind == "batch":
        return nn.BatchNorm1d(num_features)
    if kind == "layer":
        return nn.LayerNorm(num_features)
    if kind == "group":
        if groups < 1 or num_features % groups:
            raise ValueError(f"GroupNorm needs the {num_features} features to split into {groups} equal groups; "
                             "pick groups that divide the width")
        return nn.GroupNorm(groups, num_features)
    return nn.Identity()


def check_same_layer(
    ours: nn.Module,
    reference: nn.Module,
    make_input: Callable[[int], torch.Tensor],
    *,
    steps: int = 5,
    atol: float = 1e-12,
    rtol: float = 0.0,
) -> int:
    """Assert that ``ours`` behaves exactly like ``reference`` (e.g. a from-scratch BatchNorm against
    ``nn.BatchNorm2d``), and return the number of tensors compared.

    Both start from the same state (``ours``' parameters and buffers are copied into ``reference``, so
    their names must match). For ``steps`` training-mode steps, each on the batch ``make_input(step)``,
    the outputs, the gradients with respect to the input and to every parameter (for the same random
    upstream gradient) and all buffers must agree; after a parameter update, the same holds in
    evaluation mode. Use float64 inputs and modules for a tolerance of 1e-12.
    """
    reference.load_state_dict(ours.state_dict())
    gen = torch.Generator().manual_seed(0)
    compared = 0

    def same(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
        nonlocal compared
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m: f"{what} differs: {m}")
        compared += 1

    for training in (True, False):
        ours.train(training)
        reference.train(training)
        for step in range(steps if training else 1):
            x = make_input(step)
            x_ours, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
            out_ours, out_ref = ours(x_ours), reference(x_ref)
            same(out_ours, out_ref, f"output (step {step}, training={training})")
            upstream = torch.randn(out_ref.shape, generator=gen, dtype=out_ref.dtype).to(out_ref.device)
            (out_ours * upstream).sum().backward()
            (out_ref * upstream).sum().backward()
            same(x_ours.grad, x_ref.grad, "gradient w.r.t. the input")
            params_ref = dict(reference.named_parameters())
            for name, p in ours.named_parameters():
                same(p.grad, params_ref[name].grad, f"gradient of {name}")
            buffers_ref = dict(reference.named_buffers())
            for name, b in ours.named_buffers():
                same(b, buffers_ref[name], f"buffer {name} after step {step}")
            with torch.no_grad():  # a plain SGD step on both, so later steps see new parameters
                for name, p in ours.named_parameters():
                    p -= 0.1 * p.grad
                    params_ref[name] -= 0.1 * params_ref[name].grad
                    p.grad, params_ref[name].grad = None, None
    return compared


@torch.no_grad()
def evaluate_with_batch_statistics(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
) -> float:
    """Accuracy of ``model`` on ``(x, y)`` evaluated in *training* mode, in batches of ``batch_size`` taken
    in the given order: what you measure when you forget ``model.eval()``.

    BatchNorm then normalizes every batch with that batch's own mean and variance (and would overwrite
    its running statistics: here they are restored afterwards, and so is the model's mode). A last
    incomplete batch is dropped, since BatchNorm cannot normalize a batch of one.
    """
    if batch_size < 2:
        raise ValueError("batch_size must be at least 2: in training mode BatchNorm cannot normalize one example")
    n = (len(y) // batch_size) * batch_size
    if n == 0:
        raise ValueError(f"need at least one full batch: {len(y)} examples, batch_size {batch_size}")
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    try:
        correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                      for i in range(0, n, batch_size))
    finally:
        model.train(was_training)
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return correct / n
