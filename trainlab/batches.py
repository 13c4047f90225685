"""Mini-batches of in-memory tensors, shuffled on the device.

For data that fits in (GPU) memory a ``DataLoader`` is pure overhead: it collates examples one
by one in Python. Here each epoch is one ``randperm`` on the device and each batch one indexing
operation; ``benchmarks/loop.py`` measures the difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .augment import Augmentation
from .data import Split, check_pair
from .device import make_generator


class DeviceBatches:
    """Iterate over ``(x_batch, y_batch)`` pairs of ``x``/``y`` without leaving their device.

    * ``shuffle``: a fresh permutation every epoch (every ``iter()``), from ``seed``;
    * ``drop_last``: drop the final batch when it is smaller than ``batch_size`` (otherwise it is
      kept, smaller);
    * ``augment``: a callable ``(x_batch, generator) -> x_batch`` applied to each training batch.
    """

    def __init__(
        self,
        data: Split | tuple[torch.Tensor, torch.Tensor],
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        augment: Augmentation | None = None,
        seed: int = 0,
    ) -> None:
        x, y = (data.x, data.y) if isinstance(data, Split) else data
        check_pair(x, y)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if drop_last and batch_size > x.shape[0]:
            raise ValueError(
                f"batch_size {batch_size} > {x.shape[0]} examples with drop_last=True would give no batches"
            )
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.drop_last, self.augment = shuffle, drop_last, augment
        self.generator = make_generator(x.device, seed)

    def __len__(self) -> int:
        n = self.x.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.x.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.generator.device).to(self.x.device)
        else:
            order = None
        for batch in range(len(self)):
            start = batch * self.batch_size
            if order is None:
                xb, yb = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            else:
                idx = order[start : start + self.batch_size]
                xb, yb = self.x[idx], self.y[idx]
            if self.augment is not None:
                xb = self.augment(xb, self.generator)
            yield xb, yb
