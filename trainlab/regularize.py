"""Regularization experiments: clean per-epoch metrics, evaluation in a chosen mode, confidence, L2 penalty.

Chapter 4 ("Regularization") writes the regularizers themselves on the page (inverted dropout, label
smoothing, decoupled weight decay) and asserts them equal to PyTorch's. What lives here is the
measuring:

* :class:`SplitMetrics` — a :func:`trainlab.fit` callback that evaluates named splits after every epoch
  in *eval* mode with the *plain* cross-entropy. ``fit``'s own ``train_loss`` is a running mean taken in
  train mode with the training loss function, so with dropout or label smoothing it is not comparable
  with the validation loss; the generalization gap needs clean numbers on both sides.
* :func:`evaluate_in_mode` — loss and accuracy with the model in train or eval mode (the classic bug of
  evaluating with dropout still on, measured).
* :func:`max_probabilities` / :func:`mean_confidence` — the largest softmax probability per example and
  its mean, what label smoothing changes.
* :func:`l2_penalty` — :math:`\\frac{\\lambda}{2}\\lVert\\theta\\rVert^2`, the term whose gradient is
  ``torch.optim.SGD(weight_decay=λ)``'s ``λθ``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .batches import DeviceBatches
from .data import Split
from .train import Callback, TrainState, evaluate


def l2_penalty(params: Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    """``lam / 2 * sum(||p||^2)`` over ``params``; its gradient is ``lam * p`` (PyTorch's ``weight_decay=lam``)."""
    if lam < 0:
        raise ValueError(f"the L2 coefficient must be >= 0, got {lam}")
    params = list(params)
    if not params:
        raise ValueError("l2_penalty needs at least one parameter tensor (got an empty iterable)")
    return lam / 2 * sum(p.pow(2).sum() for p in params)


class SplitMetrics(Callback):
    """After every epoch, evaluate each named split in eval mode with the plain cross-entropy.

    ``SplitMetrics({"train": data.train, "val": data.val})`` gets attributes ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc`` (one entry per epoch), so a list of them works with
    :func:`trainlab.stack` and :func:`trainlab.plots.plot_runs` like a list of histories. :meth:`gap`
    gives the generalization gap per epoch.
    """

    def __init__(self, splits: Mapping[str, Split | tuple[torch.Tensor, torch.Tensor]], *,
                 loss_fn=F.cross_entropy) -> None:
        if not splits:
            raise ValueError("SplitMetrics needs at least one split, e.g. {'train': data.train, 'val': data.val}")
        self.splits, self.loss_fn = dict(splits), loss_fn
        self.epoch: list[int] = []
        for name in self.splits:
            if not name.isidentifier():
                raise ValueError(f"split names become attribute names; {name!r} is not a valid identifier")
            setattr(self, f"{name}_loss", [])
            setattr(self, f"{name}_acc", [])

    def on_epoch_end(self, state: TrainState) -> None:
        self.epoch.append(state.epoch)
        for name, split in self.splits.items():
            loss, acc = evaluate(state.model, split, loss_fn=self.loss_fn)
            getattr(self, f"{name}_loss").append(loss)
            getattr(self, f"{name}_acc").append(acc)

    def gap(self, metric: str = "acc", a: str = "train", b: str = "val") -> list[float]:
        """``a`` minus ``b`` per epoch for ``metric`` ``"acc"``; ``b`` minus ``a`` for ``"loss"`` (both ≥ 0
        when the model fits ``a`` better than ``b``)."""
        if metric not in ("acc", "loss"):
            raise ValueError(f"metric must be 'acc' or 'loss', got {metric!r}")
        first, second = getattr(self, f"{a}_{metric}"), getattr(self, f"{b}_{metric}")
        sign = 1.0 if metric == "acc" else -1.0
        return [sign * (x - y) for x, y in zip(first, second, strict=True)]


@torch.no_grad()
def evaluate_in_mode(model: nn.Module, data: Split | tuple[torch.Tensor, torch.Tensor], *, training: bool,
                     batch_size: int = 2048) -> tuple[float, float]:
    """Mean cross-entropy and accuracy with the model in train mode (``training=True``: dropout active,
    BatchNorm on batch statistics) or eval mode; the model's mode is restored afterwards.

    :func:`trainlab.evaluate` always uses eval mode, which is right; this function exists to *measure*
    what forgetting ``model.eval()`` costs. In train mode the result is random: seed before calling.
    """
    was_training = model.training
    model.train(training)
    total_loss, correct, n = 0.0, 0, 0
    try:
        for xb, yb in DeviceBatches(data, batch_size, shuffle=False):
            logits = model(xb)
            total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
            n += len(yb)
    finally:
        model.train(was_training)
    return total_loss / n, correct / n


@torch.no_grad()
def max_probabilities(model: nn.Module, data: Split | tuple[torch.Tensor, torch.Tensor], *,
                      batch_size: int = 2048) -> torch.Tensor:
    """The largest softmax probability for each example of ``data`` (1-D, on the data's device), in eval
    mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        parts = [model(xb).softmax(dim=1).amax(dim=1) for xb, _ in DeviceBatches(data, batch_size, shuffle=False)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def mean_confidence(model: nn.Module, data: Split | tuple[torch.Tensor, torch.Tensor], *,
                    batch_size: int = 2048) -> float:
    """Mean over examples of the largest softmax probability, in eval mode (how sure the model is).

    Compare it with the accuracy on the same data: a model whose confidence exceeds its accuracy is
    over-confident.
    """
    return float(max_probabilities(model, data, batch_size=batch_size).mean())
