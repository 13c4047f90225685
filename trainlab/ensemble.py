"""Ensembles, weight averaging and calibration (chapter "Ensembles and weight averaging").

* Ensemble prediction from stacked member logits of shape ``(M, N, C)`` (M members, N examples,
  C classes): :func:`combine` gives scores per class (averaged probabilities, softmax of averaged
  logits, or vote fractions) and :func:`predict` the predicted class, with a documented tie rule for
  the majority vote.
* Diversity: :func:`disagreement`, the fraction of examples on which two members' predictions differ.
* Calibration: :func:`reliability` (the data of a reliability diagram and the expected calibration
  error, ECE) with equal-width, right-closed confidence bins; :func:`nll`.
* Plumbing for :func:`trainlab.fit`: :class:`Checkpoints` keeps copies of the weights during a run,
  :class:`StepAverager` updates a ``torch.optim.swa_utils.AveragedModel`` after every optimizer step.
* :func:`stack_logits` runs several models on the same inputs; :func:`models_from_states` turns saved
  state dicts back into models; :func:`inference_seconds` times a prediction function.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .train import Callback, TrainState

METHODS = ("prob", "logit", "vote")


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"member logits must be a tensor of shape (members, examples, classes), got {shape}; "
                         "stack them with stack_logits(models, x) or torch.stack([...])")
    if logits.shape[0] < 1:
        raise ValueError("an ensemble needs at least one member")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")


def combine(logits: torch.Tensor, method: str = "prob") -> torch.Tensor:
    """Ensemble scores of shape ``(N, C)`` whose rows sum to one.

    * ``"prob"``: the mean of the members' softmax probabilities;
    * ``"logit"``: the softmax of the mean of the members' logits (a geometric mean of probabilities,
      renormalized);
    * ``"vote"``: the fraction of members that predict each class.
    """
    _check_logits(logits)
    _check_method(method)
    if method == "prob":
        return logits.softmax(dim=-1).mean(dim=0)
    if method == "logit":
        return logits.mean(dim=0).softmax(dim=-1)
    votes = F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
    return votes.mean(dim=0)


def predict(logits: torch.Tensor, method: str = "prob") -> torch.Tensor:
    """Predicted class per example, shape ``(N,)``.

    Tie rule of the majority vote: among the classes with the most votes, the one with the highest
    averaged probability wins (and, if that ties too, the lowest class index). With an odd number of
    members and two classes there are no ties; with 10 classes a tie is possible for any M >= 2.
    """
    scores = combine(logits, method)
    if method != "vote":
        return scores.argmax(dim=-1)
    tied = scores == scores.max(dim=-1, keepdim=True).values
    mean_prob = combine(logits, "prob").masked_fill(~tied, -1.0)
    return mean_prob.argmax(dim=-1)  # argmax returns the first (lowest) index among equal values


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``pred == y``."""
    if pred.shape != y.shape:
        raise ValueError(f"predictions and labels differ in shape: {tuple(pred.shape)} vs {tuple(y.shape)}")
    return float((pred == y).float().mean())


def disagreement(logits: torch.Tensor) -> np.ndarray:
    """``(M, M)`` matrix: fraction of examples on which members i and j predict different classes."""
    _check_logits(logits)
    pred = logits.argmax(dim=-1)  # (M, N)
    return (pred[:, None, :] != pred[None, :, :]).float().mean(dim=-1).cpu().numpy()


def mean_disagreement(logits: torch.Tensor) -> float:
    """Mean of :func:`disagreement` over the pairs i < j (needs at least two members)."""
    d = disagreement(logits)
    if d.shape[0] < 2:
        raise ValueError("disagreement needs at least two members")
    return float(d[np.triu_indices(d.shape[0], k=1)].mean())


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram data: per confidence bin, the mean confidence, the accuracy and the count.

    Bins are equal-width and right-closed: bin b holds confidences in ``(edges[b], edges[b+1]]`` (bin 0
    also holds a confidence of exactly 0). Empty bins have ``count == 0`` and NaN confidence/accuracy.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of (count / N) * |accuracy - confidence|."""
        full = self.count > 0
        weights = self.count[full] / self.count.sum()
        return float((weights * np.abs(self.accuracy[full] - self.confidence[full])).sum())


def reliability(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15,
                pred: torch.Tensor | None = None) -> Reliability:
    """Bin the confidence ``max_c probs[:, c]`` and compare it with the accuracy in each bin.

    ``pred`` (default ``probs.argmax(1)``) lets a majority vote use its own tie rule.
    """
    if probs.ndim != 2 or probs.shape[0] != y.shape[0]:
        raise ValueError(f"probs must be (N, C) with N = len(y) = {y.shape[0]}, got {tuple(probs.shape)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    probs = probs.detach().double().cpu()
    y = y.detach().cpu()
    pred = probs.argmax(dim=1) if pred is None else pred.detach().cpu()
    conf = probs.gather(1, pred[:, None]).squeeze(1)
    correct = (pred == y).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = torch.bucketize(conf, edges[1:-1], right=False)  # right-closed bins
    count = torch.bincount(index, minlength=n_bins).double()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = (torch.bincount(index, conf, minlength=n_bins) / count).numpy()
        mean_acc = (torch.bincount(index, correct, minlength=n_bins) / count).numpy()
    return Reliability(edges=edges.numpy(), confidence=mean_conf, accuracy=mean_acc, count=count.numpy())


def expected_calibration_error(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15,
                               pred: torch.Tensor | None = None) -> float:
    """ECE with ``n_bins`` equal-width bins (see :func:`reliability`)."""
    return reliability(probs, y, n_bins, pred).ece


def nll(probs: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the labels under ``probs`` (clamped at ``eps``)."""
    return float(-probs.gather(1, y[:, None]).clamp_min(eps).log().mean())


@torch.no_grad()
def stack_logits(models: Sequence[nn.Module], x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits of every model on ``x`` in eval mode, stacked to ``(M, N, C)``; training modes are restored."""
    if len(models) == 0:
        raise ValueError("stack_logits needs at least one model")
    out = []
    for model in models:
        was_training = model.training
        model.eval()
        try:
            out.append(torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]))
        finally:
            model.train(was_training)
    return torch.stack(out)


def models_from_states(template: nn.Module, states: Sequence[dict]) -> list[nn.Module]:
    """One deep copy of ``template`` per saved ``state_dict``."""
    models = []
    for state in states:
        model = copy.deepcopy(template)
        model.load_state_dict(state)
        models.append(model.eval())
    return models


class Checkpoints(Callback):
    """Keep a copy of the weights (``state_dict``) at the end of every ``every``-th epoch, in ``states``;
    ``epochs`` lists which epochs (1-based) they come from."""

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.states: list[dict] = []
        self.epochs: list[int] = []

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch % self.every == 0:
            self.states.append({k: v.detach().clone() for k, v in state.model.state_dict().items()})
            self.epochs.append(state.epoch)


class StepAverager(Callback):
    """Call ``averaged.update_parameters(model)`` after every optimizer step once ``start`` epochs are done
    (``averaged`` is a ``torch.optim.swa_utils.AveragedModel``: uniform average by default, an EMA with
    ``multi_avg_fn=get_ema_multi_avg_fn(decay)``)."""

    def __init__(self, averaged: nn.Module, start: int = 0) -> None:
        if not hasattr(averaged, "update_parameters"):
            raise TypeError("StepAverager needs a torch.optim.swa_utils.AveragedModel (it has update_parameters)")
        self.averaged, self.start = averaged, start

    def on_step_end(self, state: TrainState) -> None:
        if state.epoch >= self.start:  # state.epoch counts the epochs already completed
            self.averaged.update_parameters(state.model)


def inference_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    """Fastest of ``repeats`` wall-clock timings of ``fn()`` (after one warm-up call), synchronizing CUDA."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best
