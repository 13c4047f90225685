"""``fit`` and ``evaluate``: the training loop the early chapters write by hand, packaged.

Chapter 1 writes this loop out (forward, loss, backward, step, zero_grad); from then on chapters
call :func:`fit`, which adds what every experiment needs: a history of per-step and per-epoch
metrics, schedulers, gradient clipping, callbacks (early stopping, weight averaging), a progress
bar and an optional live plot.

Per-step losses are collected on the device and copied to the CPU once per epoch, so a GPU
never waits for Python in the middle of an epoch.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .augment import Augmentation
from .batches import DeviceBatches
from .data import Split
from .profile import in_book_build

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# compute_grads(model, x_batch, y_batch) -> (loss, logits); must leave the gradients in p.grad.
GradFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class History:
    """Everything ``fit`` measured. Per-step lists have one entry per optimizer step."""

    step_loss: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # running mean over the epoch's batches
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    # filled only with fit(..., eval_train=True): the whole training set evaluated at each epoch's end
    # (eval mode, final weights of the epoch), comparable with a full-batch loss, unlike train_loss
    eval_train_loss: list[float] = field(default_factory=list)
    eval_train_acc: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)  # seconds, cumulative wall time
    steps_per_epoch: int = 0
    diverged: bool = False
    stopped_early: bool = False

    @property
    def wall_time(self) -> float:
        return self.epoch_time[-1] if self.epoch_time else 0.0

    @property
    def best_epoch(self) -> int:
        """Epoch (1-based) with the lowest validation loss; pick the model there, never on test."""
        if not self.val_loss:
            raise ValueError("no validation data was given to fit(), so there is no best epoch")
        finite = [(v, e) for v, e in zip(self.val_loss, self.epoch, strict=True) if math.isfinite(v)]
        return min(finite)[1] if finite else self.epoch[-1]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainState:
    """What callbacks see; setting ``stop = True`` ends training after the current epoch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    stop: bool = False


class Callback:
    """Override any of these; ``fit`` calls them in order."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class EarlyStopping(Callback):
    """Stop when validation loss has not improved by ``min_delta`` for ``patience`` epochs, and
    (by default) put back the weights of the best epoch.

    ``monitor="val_acc"`` watches validation accuracy instead (higher is better); ``best_epoch`` is
    the (1-based) epoch whose weights are restored."""

    _MONITORS = ("val_loss", "val_acc")

    def __init__(self, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True,
                 monitor: str = "val_loss") -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if monitor not in self._MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(self._MONITORS)}, got {monitor!r}")
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best
        self.monitor = monitor
        self._sign = 1.0 if monitor == "val_loss" else -1.0  # compare sign * value: lower is better
        self.best = math.inf * self._sign
        self.best_epoch = 0
        self.best_state: dict | None = None
        self.wait = 0

    def on_epoch_end(self, state: TrainState) -> None:
        if not state.history.val_loss:
            raise ValueError("EarlyStopping needs validation data: pass val=... to fit()")
        current = getattr(state.history, self.monitor)[-1]
        if self._sign * current < self._sign * self.best - self.min_delta:
            self.best, self.wait, self.best_epoch = current, 0, state.epoch
            if self.restore_best:
                self.best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.wait += 1
            if self.wait >= self.patience:
                state.stop = True
                state.history.stopped_early = True

    def on_train_end(self, state: TrainState) -> None:
        if self.restore_best and self.best_state is not None:
            state.model.load_state_dict(self.best_state)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Split | tuple[torch.Tensor, torch.Tensor],
    *,
    loss_fn: LossFn = F.cross_entropy,
    batch_size: int = 2048,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``data``, in eval mode (dropout off, BN running stats)."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=_device_of(data))
    correct = torch.zeros((), device=_device_of(data))
    n = 0
    try:
        for xb, yb in DeviceBatches(data, batch_size, shuffle=False):
            logits = model(xb)
            _check_logits(logits, yb)
            total_loss += loss_fn(logits, yb).float() * len(yb)
            correct += (logits.argmax(dim=1) == yb).sum()
            n += len(yb)
    finally:
        model.train(was_training)
    return float(total_loss) / n, float(correct) / n


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Split | tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    val: Split | tuple[torch.Tensor, torch.Tensor] | None = None,
    loss_fn: LossFn = F.cross_entropy,
    scheduler: object | None = None,
    scheduler_interval: str = "step",
    grad_clip: float | None = None,
    augment: Augmentation | None = None,
    callbacks: Sequence[Callback] = (),
    compute_grads: GradFn | None = None,
    drop_last: bool = False,
    seed: int = 0,
    progress: bool | None = None,
    live_plot: bool = False,
    desc: str | None = None,
    stop_on_divergence: bool = True,
    eval_train: bool = False,
) -> History:
    """Train ``model`` for ``epochs`` epochs of mini-batches of ``train``; return a :class:`History`.

    * ``scheduler``: any ``torch.optim.lr_scheduler``; stepped after every optimizer step
      (``scheduler_interval="step"``) or every epoch (``"epoch"``). ``ReduceLROnPlateau`` is
      always stepped per epoch with the validation loss (training loss if there is no ``val``).
    * ``grad_clip``: clip the global gradient norm to this value before each step.
    * ``compute_grads``: replaces "forward, loss, backward" for methods that need more than one
      backward pass (e.g. a gradient-norm penalty); called after ``zero_grad``, it returns
      ``(loss, logits)`` and leaves gradients in ``p.grad``.
    * ``seed``: the mini-batch order and augmentation randomness (not the model's initial weights:
      seed before building the model, e.g. with :func:`trainlab.seeds.over_seeds`).
    * ``progress``: a tqdm bar; default on, except during the book build.
    * ``live_plot``: redraw train/val loss after each epoch in Jupyter (ignored in the book build).
    * Training stops early, with ``history.diverged = True``, when the loss becomes inf/NaN.
    * ``eval_train``: also evaluate the whole training set after each epoch (one extra forward pass
      over it) into ``history.eval_train_loss``/``eval_train_acc``. ``train_loss`` is the running
      mean of the mini-batch losses *during* the epoch (it lags by about half an epoch); use
      ``eval_train_loss`` to compare training losses across batch sizes or with full-batch GD.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")
    batches = DeviceBatches(train, batch_size, shuffle=True, drop_last=drop_last, augment=augment, seed=seed)
    device = batches.x.device
    _check_model_device(model, device)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    history = History(steps_per_epoch=len(batches))
    state = TrainState(model=model, optimizer=optimizer, history=history)
    for callback in callbacks:
        callback.on_train_begin(state)
    show_progress = (not in_book_build()) if progress is None else progress
    bar = _progress_bar(epochs, desc) if show_progress else None
    plotter = _LivePlot() if live_plot and not in_book_build() else None
    start = time.perf_counter()

    model.train()
    for epoch in range(1, epochs + 1):
        step_losses = torch.empty(len(batches), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        for i, (xb, yb) in enumerate(batches):
            optimizer.zero_grad(set_to_none=True)
            if compute_grads is None:
                logits = model(xb)
                if epoch == 1 and i == 0:
                    _check_logits(logits, yb)
                loss = loss_fn(logits, yb)
                loss.backward()
            else:
                loss, logits = compute_grads(model, xb, yb)
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            history.step_lr.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step" and not plateau:
                scheduler.step()
            step_losses[i] = loss.detach()
            correct += (logits.detach().argmax(dim=1) == yb).sum()
            seen += len(yb)
            state.step += 1
            for callback in callbacks:
                callback.on_step_end(state)

        losses = step_losses.tolist()  # one device→host copy per epoch
        history.step_loss.extend(losses)
        history.epoch.append(epoch)
        batch_sizes = [min(batch_size, len(batches.y) - k * batch_size) for k in range(len(batches))]
        history.train_loss.append(sum(a * b for a, b in zip(losses, batch_sizes, strict=True)) / seen)
        history.train_acc.append(float(correct) / seen)
        if val is not None:
            val_loss, val_acc = evaluate(model, val, loss_fn=loss_fn)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
        if eval_train:
            train_loss, train_acc = evaluate(model, train, loss_fn=loss_fn)
            history.eval_train_loss.append(train_loss)
            history.eval_train_acc.append(train_acc)
        history.epoch_time.append(time.perf_counter() - start)
        state.epoch = epoch

        if scheduler is not None and (plateau or scheduler_interval == "epoch"):
            if plateau:
                scheduler.step(history.val_loss[-1] if val is not None else history.train_loss[-1])
            else:
                scheduler.step()
        for callback in callbacks:
            callback.on_epoch_end(state)
        if bar is not None:
            bar.set_postfix(_postfix(history))
            bar.update(1)
        if plotter is not None:
            plotter.update(history)
        if stop_on_divergence and not all(math.isfinite(v) for v in losses):
            history.diverged = True
            break
        if state.stop:
            break

    for callback in callbacks:
        callback.on_train_end(state)
    if bar is not None:
        bar.close()
    return history


def _device_of(data: Split | tuple[torch.Tensor, torch.Tensor]) -> torch.device:
    return data.x.device if isinstance(data, Split) else data[0].device


def _check_model_device(model: nn.Module, device: torch.device) -> None:
    param = next(model.parameters(), None)
    if param is not None and param.device.type != device.type:
        raise ValueError(
            f"the model is on {param.device} but the data is on {device}; "
            f"call model.to({str(device)!r}) or load the data with device={str(param.device)!r}"
        )


def _check_logits(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.ndim != 2 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"the model should output logits of shape (batch, classes) = ({targets.shape[0]}, K); "
            f"got {tuple(logits.shape)}"
        )
    if int(targets.max()) >= logits.shape[1]:
        raise ValueError(
            f"labels go up to {int(targets.max())} but the model outputs only {logits.shape[1]} classes; "
            "make the last layer's size the number of classes"
        )


def _postfix(history: History) -> dict[str, str]:
    post = {"loss": f"{history.train_loss[-1]:.3f}"}
    if history.val_loss:
        post["val_loss"] = f"{history.val_loss[-1]:.3f}"
        post["val_acc"] = f"{history.val_acc[-1]:.3f}"
    return post


def _progress_bar(epochs: int, desc: str | None):
    from tqdm.auto import tqdm

    return tqdm(total=epochs, desc=desc or "epochs", unit="epoch", leave=False)


class _LivePlot:
    """Train/val loss redrawn in place in a Jupyter output area."""

    def __init__(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.fig, self.ax = plt.subplots(figsize=(6, 3.5))
        plt.close(self.fig)  # shown only through the display handle
        self.handle = display(self.fig, display_id=True)

    def update(self, history: History) -> None:
        self.ax.clear()
        self.ax.plot(history.epoch, history.train_loss, label="train")
        if history.val_loss:
            self.ax.plot(history.epoch, history.val_loss, label="validation")
        self.ax.set(xlabel="epoch", ylabel="loss", title="live loss")
        self.ax.legend()
        if self.handle is not None:
            self.handle.update(self.fig)
