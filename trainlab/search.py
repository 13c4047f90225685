"""Hyperparameter search: search spaces, grid and random search, the edge check, resumable trials,
Optuna workers that share one study through its storage, and many small models trained at once.

Chapter 9 (``chapters/09-hyperparameter-search.md``) teaches with these pieces:

* :class:`Param` / :func:`grid_configs` / :func:`random_configs`: a search space sampled on a grid
  or at random, on a log scale where the parameter acts multiplicatively (learning rate, weight decay);
* :func:`edge_check`: "the best value sits at the edge of the range", so the range is wrong;
* :func:`narrow`: the next, finer range around the best configuration (coarse-to-fine);
* :class:`MLPTrial`: one configuration of a small MLP that can be trained a few more epochs at a
  time (what successive halving and Optuna's pruners need);
* :func:`mlp_objective`, :func:`make_storage`, :func:`run_workers` and ``python -m trainlab.search
  worker ...``: the worker/master setup, with several worker processes sharing one Optuna study;
* :func:`train_stacked`: N copies of a model with N learning rates trained in one pass with
  ``torch.func`` (``stack_module_state`` + ``vmap`` over ``functional_call``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batches import DeviceBatches
from .data import Dataset, Split
from .device import seed_everything
from .models import mlp
from .train import evaluate, fit


# ----------------------------------------------------------------------------- search spaces
@dataclass(frozen=True)
class Param:
    """A real hyperparameter in ``[low, high]``, sampled uniformly in ``log10`` when ``log``."""

    low: float
    high: float
    log: bool = True

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"Param needs low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale Param needs low > 0, got {self.low} (use log=False)")

    def to_unit(self, value: float | np.ndarray) -> np.ndarray:
        """Position of ``value`` in the range: 0 at ``low``, 1 at ``high`` (in log10 if ``log``)."""
        f = np.log10 if self.log else np.asarray
        return (f(np.asarray(value, dtype=float)) - f(self.low)) / (f(self.high) - f(self.low))

    def from_unit(self, u: float | np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_unit`: ``u`` in [0, 1] to a value in the range."""
        u = np.asarray(u, dtype=float)
        if self.log:
            return 10 ** (np.log10(self.low) + u * (np.log10(self.high) - np.log10(self.low)))
        return self.low + u * (self.high - self.low)


Space = Mapping[str, Param]


def grid_configs(space: Space, per_axis: int | Mapping[str, int]) -> list[dict[str, float]]:
    """All combinations of ``per_axis`` evenly spaced values (in log10 where ``log``) per parameter,
    endpoints included: ``per_axis ** len(space)`` configurations."""
    counts = {name: per_axis if isinstance(per_axis, int) else per_axis[name] for name in space}
    if any(n < 1 for n in counts.values()):
        raise ValueError(f"every axis needs at least one value, got {counts}")
    axes = {name: p.from_unit(np.linspace(0, 1, counts[name]) if counts[name] > 1 else [0.5])
            for name, p in space.items()}
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    flat = [m.ravel() for m in mesh]
    return [{name: float(col[i]) for name, col in zip(axes, flat, strict=True)} for i in range(flat[0].size)]


def random_configs(space: Space, n: int, rng: np.random.Generator) -> list[dict[str, float]]:
    """``n`` configurations drawn independently, uniformly in log10 for log parameters (the cs231n
    ``lr = 10 ** uniform(-6, 1)``)."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    cols = {name: p.from_unit(rng.uniform(0, 1, n)) for name, p in space.items()}
    return [{name: float(col[i]) for name, col in cols.items()} for i in range(n)]


@dataclass(frozen=True)
class EdgeWarning:
    """The best value of ``param`` lies in the outer ``fraction`` of its range, on ``side``."""

    param: str
    best: float
    low: float
    high: float
    side: str  # "low" or "high"

    def __str__(self) -> str:
        move = "down" if self.side == "low" else "up"
        return (f"{self.param}: best {self.best:.3g} at the {self.side} edge of "
                f"[{self.low:.3g}, {self.high:.3g}]; extend the range {move}")


def edge_check(configs: Sequence[Mapping[str, float]], scores: Sequence[float], space: Space, *,
               fraction: float = 0.1, higher_is_better: bool = True) -> list[EdgeWarning]:
    """Warnings for every parameter whose best configuration lies within ``fraction`` of an end of its
    range (measured in log10 for log parameters). An empty list means no parameter is at an edge.
    NaN scores (diverged trials) are ignored."""
    if len(configs) != len(scores) or not configs:
        raise ValueError(f"need as many scores as configs (and at least one), got {len(configs)} and {len(scores)}")
    if not 0 <= fraction < 0.5:
        raise ValueError(f"fraction must be in [0, 0.5), got {fraction}")
    s = np.asarray(scores, dtype=float)
    if not np.isfinite(s).any():
        raise ValueError("every score is NaN/inf: no best configuration to check")
    s = np.where(np.isfinite(s), s, -np.inf if higher_is_better else np.inf)
    best = configs[int(np.argmax(s) if higher_is_better else np.argmin(s))]
    warnings = []
    for name, p in space.items():
        u = float(p.to_unit(best[name]))
        if u <= fraction or u >= 1 - fraction:
            warnings.append(EdgeWarning(name, best[name], p.low, p.high, "low" if u <= fraction else "high"))
    return warnings


def narrow(space: Space, best: Mapping[str, float], factor: float = 0.25) -> dict[str, Param]:
    """A finer space around ``best``: each range shrunk to ``factor`` of its width (in log10 for log
    parameters), centred on the best value. It may extend beyond the old range (on purpose: a best
    value near an edge moves the search there)."""
    if not 0 < factor <= 1:
        raise ValueError(f"factor must be in (0, 1], got {factor}")
    out = {}
    for name, p in space.items():
        if p.log:
            half = factor * (np.log10(p.high) - np.log10(p.low)) / 2
            c = np.log10(best[name])
            out[name] = Param(float(10 ** (c - half)), float(10 ** (c + half)), True)
        else:
            half = factor * (p.high - p.low) / 2
            out[name] = Param(best[name] - half, best[name] + half, False)
    return out


# ----------------------------------------------------------------------------- resumable trials
@dataclass
class MLPTrial:
    """One configuration (learning rate ``lr``, ``weight_decay``) of an MLP trained with SGD + momentum,
    a few epochs at a time: ``train(k)`` continues where the last call stopped and returns the
    validation accuracy. ``val_acc`` keeps one value per epoch; ``best_epoch`` is where it peaked."""

    data: Dataset
    lr: float
    weight_decay: float = 0.0
    hidden: Sequence[int] = (64,)
    momentum: float = 0.9
    batch_size: int = 64
    seed: int = 0
    val_acc: list[float] = field(default_factory=list)
    diverged: bool = False

    def __post_init__(self) -> None:
        seed_everything(self.seed)
        self.model = mlp(self.data.input_dim, list(self.hidden), self.data.num_classes).to(self.data.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=self.momentum,
                                         weight_decay=self.weight_decay)

    @property
    def epochs(self) -> int:
        return len(self.val_acc)

    @property
    def best_epoch(self) -> int:
        """1-based epoch of the highest validation accuracy (the checkpoint one would keep)."""
        return int(np.argmax(self.val_acc)) + 1

    @property
    def best_val_acc(self) -> float:
        return max(self.val_acc)

    def train(self, epochs: int = 1) -> float:
        """Train ``epochs`` more epochs (a diverged run stays at its last accuracy); return the latest
        validation accuracy."""
        for _ in range(epochs):
            if self.diverged:
                self.val_acc.append(self.val_acc[-1])
                continue
            h = fit(self.model, self.optimizer, self.data.train, epochs=1, batch_size=self.batch_size,
                    seed=self.seed * 10_007 + self.epochs, progress=False)
            self.diverged = h.diverged
            acc = evaluate(self.model, self.data.val)[1] if not h.diverged else 1.0 / self.data.num_classes
            self.val_acc.append(acc if math.isfinite(acc) else 1.0 / self.data.num_classes)
        return self.val_acc[-1]


def search_data(name: str = "digits", train_size: int | None = None, device: str | torch.device = "cpu") -> Dataset:
    """The dataset a search runs on (flattened), optionally with the training split cut to ``train_size``
    examples; validation and test splits are kept whole."""
    from dataclasses import replace

    from .data import load_dataset

    data = load_dataset(name, device=device, flatten=True)
    if train_size is not None and train_size < len(data.train):
        data = replace(data, train=data.train.subset(train_size))
    return data


# ----------------------------------------------------------------------------- Optuna
SPACE = {"lr": Param(1e-4, 1.0), "weight_decay": Param(1e-6, 1e-2)}


def mlp_objective(data: Dataset, space: Space, *, max_epochs: int, seed: int = 0, prune: bool = True,
                  hidden: Sequence[int] = (64,)):
    """An Optuna objective: sample ``space``, train an :class:`MLPTrial` epoch by epoch, report the
    validation accuracy after each epoch (so a pruner can stop it) and return the best one. Every trial
    records ``epochs`` (the budget it spent) and ``pid`` (the process that ran it) as user attributes."""
    import optuna

    def objective(trial: optuna.Trial) -> float:
        params = {name: trial.suggest_float(name, p.low, p.high, log=p.log) for name, p in space.items()}
        run = MLPTrial(data, hidden=hidden, seed=seed * 1000 + trial.number, **params)
        trial.set_user_attr("pid", os.getpid())
        for epoch in range(1, max_epochs + 1):
            acc = run.train(1)
            trial.set_user_attr("epochs", epoch)
            trial.report(acc, epoch)
            if prune and trial.should_prune():
                raise optuna.TrialPruned()
        return run.best_val_acc

    return objective


def study_from_results(configs: Sequence[Mapping[str, float]], scores: Sequence[float], space: Space, *,
                       direction: str = "maximize"):
    """An in-memory Optuna study holding finished trials run elsewhere (e.g. a hand-written random
    search), so Optuna's importance and plotting tools can read them."""
    import optuna
    from optuna.distributions import FloatDistribution

    if len(configs) != len(scores):
        raise ValueError(f"need one score per config, got {len(configs)} and {len(scores)}")
    dists = {name: FloatDistribution(p.low, p.high, log=p.log) for name, p in space.items()}
    study = optuna.create_study(direction=direction)
    study.add_trials([optuna.trial.create_trial(params={k: float(c[k]) for k in space}, distributions=dists,
                                                value=float(s)) for c, s in zip(configs, scores, strict=True)])
    return study


def book_style(ax, *, labels: Mapping[str, str] | None = None):
    """Give an axes drawn by ``optuna.visualization.matplotlib`` (which uses matplotlib's grey "ggplot"
    style) the look of the current rcParams (the book's style after ``tl.setup()``): white background,
    the usual grid, spines and font sizes. ``labels`` renames tick labels and legend entries (e.g.
    ``{"lr": "learning rate γ"}``). Returns ``ax``."""
    import matplotlib as mpl

    rc = mpl.rcParams
    ax.set_facecolor(rc["axes.facecolor"])
    ax.figure.set_facecolor(rc["figure.facecolor"])
    ax.grid(rc["axes.grid"], color=rc["grid.color"], alpha=rc["grid.alpha"], linewidth=rc["grid.linewidth"])
    for side, spine in ax.spines.items():
        spine.set_visible(rc[f"axes.spines.{side}"])
        spine.set_color(rc["axes.edgecolor"])
    for axis, name in [(ax.xaxis, "xtick"), (ax.yaxis, "ytick")]:
        axis.label.set_color(rc["axes.labelcolor"])
        axis.label.set_fontsize(rc["axes.labelsize"])
        ax.tick_params(axis=name[0], colors=rc[f"{name}.color"], labelsize=rc[f"{name}.labelsize"])
    ax.title.set_fontsize(rc["axes.titlesize"])
    labels = dict(labels or {})
    if labels:
        for get, put in [(ax.get_yticklabels, ax.set_yticklabels), (ax.get_xticklabels, ax.set_xticklabels)]:
            ticks = [t.get_text() for t in get()]
            if any(t in labels for t in ticks):
                put([labels.get(t, t) for t in ticks])
    if ax.get_legend() is not None:  # redraw it inside the axes, in the current style
        handles, names = ax.get_legend_handles_labels()
        ax.legend(handles, [labels.get(n, n) for n in names], loc="best")
    return ax


def optuna_plot(plot, *args, figsize: tuple[float, float] = (6.4, 3.4), labels: Mapping[str, str] | None = None,
                **kwargs):
    """Call an ``optuna.visualization.matplotlib`` function and return its axes in the book's style.

    Optuna's functions call ``plt.style.use("ggplot")``, which changes matplotlib's settings for good; the
    call runs inside ``plt.rc_context`` so that the settings are restored afterwards, then ``book_style``
    restyles the axes."""
    import matplotlib.pyplot as plt

    with plt.rc_context({"figure.figsize": figsize}):
        ax = plot(*args, **kwargs)
    return book_style(ax, labels=labels)


def epochs_spent(study) -> int:
    """Total training epochs of all finished (complete or pruned) trials of ``study``."""
    return int(sum(t.user_attrs.get("epochs", 0) for t in study.trials if t.state.is_finished()))


def make_storage(where: str | os.PathLike):
    """Optuna storage from a database URL (``sqlite:///…``, ``postgresql://…``: an RDB storage shared by
    many machines) or from a file path (a journal file shared by processes on one machine)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    where = str(where)
    if "://" in where:
        return optuna.storages.RDBStorage(where)
    return JournalStorage(JournalFileBackend(where))


def trials_per_minute(study) -> float:
    """Completed trials per minute of wall time, from the first trial's start to the last one's end
    (the storage's timestamps: process start-up and imports are not counted)."""
    done = [t for t in study.trials if t.datetime_complete is not None]
    if len(done) < 2:
        raise ValueError("need at least two completed trials to measure a rate")
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return 60.0 * len(done) / span


def _barrier(folder: str, rank: int, n_workers: int, timeout: float = 300) -> None:
    """Wait until all ``n_workers`` workers have written their ready file into ``folder``."""
    Path(folder, f"ready.{rank}").touch()
    deadline = time.monotonic() + timeout
    while len(list(Path(folder).glob("ready.*"))) < n_workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not all {n_workers} workers became ready within {timeout} s")
        time.sleep(0.02)


def run_worker(storage: str, study_name: str, n_trials: int, *, dataset: str = "digits",
               train_size: int | None = None, max_epochs: int = 4, seed: int = 0,
               barrier: str | None = None, n_workers: int = 1) -> None:
    """One worker: load the study from ``storage`` (created if absent), run ``n_trials`` trials, exit.
    Any number of these can run at once, in processes or on machines that reach the same storage. With
    ``barrier`` (a folder), the worker starts its trials only once ``n_workers`` workers are ready, so
    that a throughput measurement is not skewed by their start-up times."""
    import optuna

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = search_data(dataset, train_size)
    if barrier is not None:
        _barrier(barrier, seed, n_workers)
    study = optuna.create_study(study_name=study_name, storage=make_storage(storage), direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed), load_if_exists=True)
    study.optimize(mlp_objective(data, SPACE, max_epochs=max_epochs, seed=seed, prune=False), n_trials=n_trials)


def worker_command(storage: str, study_name: str, n_trials: int, *, seed: int = 0, **options) -> list[str]:
    """The command line that starts one worker: what a master (or a cluster's job script) runs."""
    cmd = [sys.executable, "-m", "trainlab.search", "worker", "--storage", str(storage), "--study", study_name,
           "--trials", str(n_trials), "--seed", str(seed)]
    for key, value in options.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    return cmd


def run_workers(storage: str, study_name: str, n_workers: int, trials_per_worker: int, *,
                timeout: float = 300, **options) -> float:
    """The master: start ``n_workers`` worker processes on one study, wait for all, return the wall time
    in seconds. Each worker runs with one torch thread; a failed worker raises with its error output."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    import shutil
    import tempfile

    barrier = tempfile.mkdtemp(prefix="trainlab-barrier-")
    start = time.perf_counter()
    procs = [subprocess.Popen(worker_command(storage, study_name, trials_per_worker, seed=rank, barrier=barrier,
                                             n_workers=n_workers, **options),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in range(n_workers)]
    errors = []
    try:
        for rank, proc in enumerate(procs):
            out, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                errors.append(f"worker {rank} exited with {proc.returncode}:\n{err[-2000:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        shutil.rmtree(barrier, ignore_errors=True)
    if errors:
        raise RuntimeError("\n".join(errors))
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- stacked models
def train_stacked(models: Sequence[nn.Module], lrs: Sequence[float], train: Split, *, epochs: int,
                  batch_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Train ``len(models)`` models of one architecture with plain SGD, model ``i`` with learning rate
    ``lrs[i]``, in one pass: the parameters are stacked (``torch.func.stack_module_state``) and one
    ``vmap`` over ``functional_call`` computes all N forward passes on the same mini-batches.
    Equal to ``fit(models[i], SGD(lr=lrs[i]), train, epochs=..., batch_size=..., seed=seed)`` for every
    i. The models are not modified; returns the stacked parameters (leading dimension N)."""
    from torch.func import functional_call, stack_module_state, vmap

    if len(models) != len(lrs) or not models:
        raise ValueError(f"need one learning rate per model, got {len(models)} models and {len(lrs)} rates")
    if any(len(list(m.buffers())) for m in models):
        raise ValueError("train_stacked supports models without buffers (no BatchNorm)")
    params, _ = stack_module_state(list(models))
    base = copy.deepcopy(models[0]).to("meta")
    n = len(models)

    def forward(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, p, (x,))

    many = vmap(forward, in_dims=(0, None))
    lr = {k: torch.as_tensor(lrs, dtype=v.dtype, device=v.device).view(n, *[1] * (v.ndim - 1))
          for k, v in params.items()}
    batches = DeviceBatches(train, batch_size, shuffle=True, seed=seed)
    for _ in range(epochs):
        for xb, yb in batches:
            logits = many(params, xb)  # (N, B, C)
            # sum over models of each model's mean loss: model i's gradient is its own loss's gradient
            loss = F.cross_entropy(logits.flatten(0, 1), yb.repeat(n), reduction="sum") / len(yb)
            grads = torch.autograd.grad(loss, list(params.values()))
            with torch.no_grad():
                for (k, p), g in zip(params.items(), grads, strict=True):
                    p -= lr[k] * g
    return {k: v.detach() for k, v in params.items()}


def stacked_accuracy(model: nn.Module, params: Mapping[str, torch.Tensor], data: Split) -> torch.Tensor:
    """Accuracy of each of the stacked models (parameters from :func:`train_stacked`) on ``data``."""
    from torch.func import functional_call, vmap

    base = copy.deepcopy(model).to("meta")
    with torch.no_grad():
        logits = vmap(lambda p, x: functional_call(base, p, (x,)), in_dims=(0, None))(dict(params), data.x)
    return (logits.argmax(-1) == data.y).float().mean(-1)


# ----------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trainlab.search", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run trials of a shared Optuna study (start several of these)")
    w.add_argument("--storage", required=True, help="journal file path, or a database URL (sqlite:///x.db, ...)")
    w.add_argument("--study", required=True, help="study name (workers with the same name cooperate)")
    w.add_argument("--trials", type=int, required=True, help="trials this worker runs")
    w.add_argument("--seed", type=int, default=0, help="sampler seed (give each worker its own)")
    w.add_argument("--dataset", default="digits")
    w.add_argument("--train-size", type=int, default=None)
    w.add_argument("--max-epochs", type=int, default=4)
    w.add_argument("--barrier", default=None, help="folder: start trials when --n-workers are ready")
    w.add_argument("--n-workers", type=int, default=1)
    args = parser.parse_args(argv)
    run_worker(args.storage, args.study, args.trials, dataset=args.dataset, train_size=args.train_size,
               max_epochs=args.max_epochs, seed=args.seed, barrier=args.barrier, n_workers=args.n_workers)
    print(json.dumps({"pid": os.getpid(), "trials": args.trials}))


if __name__ == "__main__":
    main()
