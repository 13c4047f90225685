"""Input pipelines compared: per-image CPU transforms in a ``DataLoader`` vs batched augmentation on the device.

The classic pipeline (torchvision tutorials) augments one image at a time in ``Dataset.__getitem__``, on
the CPU, and collates the results into a batch that is then copied to the GPU. The alternative of chapter
"Data augmentation" keeps the data on the device and augments a whole mini-batch in a few tensor
operations (:class:`trainlab.augment.Augment`). These helpers time both, and the training step they feed,
in samples per second; ``benchmarks/augment.py`` prints them.

Each rate uses the fastest of several repetitions (robust to a busy machine); on a GPU the clock waits for
the device (``torch.cuda.synchronize``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from .augment import Augmentation
from .device import make_generator
from .timing import best_time, device_sync


class PerImageDataset(TorchDataset):
    """``(transform(x[i]), y[i])`` one example at a time, as a torchvision dataset with a transform does."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        self.x, self.y, self.transform = x.cpu(), y.cpu(), transform

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.x[i]), self.y[i]


def _check(batch_size: int, repeats: int) -> None:
    if batch_size < 1 or repeats < 1:
        raise ValueError(f"batch_size and repeats must be positive, got {batch_size} and {repeats}")


def loader_rate(
    x: torch.Tensor,
    y: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    *,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    batches: int = 5,
    repeats: int = 3,
) -> float:
    """Samples per second delivered to ``device`` by a ``DataLoader`` applying ``transform`` image by image.

    Times ``batches`` batches (after one warm-up batch, which also starts the workers), including the copy
    to ``device``; the best of ``repeats`` passes.
    """
    _check(batch_size, repeats)
    device = torch.device(device)
    loader = DataLoader(PerImageDataset(x, y, transform), batch_size=batch_size, shuffle=True,
                        num_workers=num_workers, pin_memory=device.type == "cuda", drop_last=True)
    if len(loader) < batches + 1:
        raise ValueError(f"need {batches + 1} batches of {batch_size}, the data gives {len(loader)}")
    sync, best = device_sync(device), float("inf")
    for _ in range(repeats):
        it = iter(loader)
        next(it)  # warm-up (starts the workers)
        start = time.perf_counter()
        for _ in range(batches):
            xb, yb = next(it)
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        sync()
        best = min(best, time.perf_counter() - start)
        del it
    return batches * batch_size / best


def augment_rate(augment: Augmentation, x: torch.Tensor, batch_size: int, *, min_time: float = 0.1,
                 seed: int = 0) -> float:
    """Samples per second of ``augment(batch, generator)`` on batches of ``x`` where ``x`` lives."""
    _check(batch_size, 1)
    idx = torch.arange(batch_size, device=x.device) % x.shape[0]
    xb, generator = x[idx], make_generator(x.device, seed)
    out = augment(xb, generator)
    if out.device != x.device or out.shape != xb.shape:
        raise ValueError(f"augment must return a batch of the same shape on the same device; got {tuple(out.shape)} "
                         f"on {out.device} for {tuple(xb.shape)} on {x.device}")
    return batch_size / best_time(lambda: augment(xb, generator), device_sync(x.device), min_time)


def step_rate(model: torch.nn.Module, x: torch.Tensor, num_classes: int, batch_size: int, *,
              min_time: float = 0.1, lr: float = 0.01) -> float:
    """Samples per second of a training step (forward, cross-entropy, backward, SGD step) on ``x``'s device.

    Works on a copy of ``model``: the caller's weights do not change.
    """
    import copy

    import torch.nn.functional as F

    _check(batch_size, 1)
    model = copy.deepcopy(model).to(x.device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    idx = torch.arange(batch_size, device=x.device) % x.shape[0]
    xb = x[idx]
    yb = torch.randint(num_classes, (batch_size,), device=x.device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        optimizer.step()

    return batch_size / best_time(step, device_sync(x.device), min_time)
