"""Batched data augmentation that runs on the device, one call per mini-batch.

Per-example randomness without a Python loop: every example in the batch gets its own crop
offset and flip decision, drawn in one tensor operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Augmentation = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _check_images(x: torch.Tensor, what: str) -> None:
    if x.ndim != 4:
        raise ValueError(
            f"{what} needs images shaped (N, C, H, W), got {tuple(x.shape)}; "
            "load the dataset with flatten=False and flatten inside the model."
        )


def _rand(shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Draw where the generator lives, then move: a CPU generator may drive a CUDA batch.
    gen_device = generator.device if generator is not None else x.device
    return torch.rand(shape, generator=generator, device=gen_device).to(x.device)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding`` pixels and take a random ``H×W`` crop per example."""
    _check_images(x, "random_crop")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    offsets = (_rand((n, 2), x, generator) * (2 * padding + 1)).long()  # uniform in 0..2p
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (N, W)
    batch_idx = torch.arange(n, device=x.device)[:, None, None, None]
    chan_idx = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]


def horizontal_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each example left–right with probability ``p``."""
    _check_images(x, "horizontal_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"flip probability must be in [0, 1], got {p}")
    flip = _rand((x.shape[0],), x, generator) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


class Augment:
    """Compose batched augmentations: ``Augment(crop=4, flip=0.5)`` or a list of callables.

    Each callable takes ``(batch, generator)`` and returns the augmented batch.
    """

    def __init__(self, crop: int = 0, flip: float = 0.0, extra: Sequence[Augmentation] = ()) -> None:
        self.crop, self.flip, self.extra = crop, flip, list(extra)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.crop:
            x = random_crop(x, self.crop, generator)
        if self.flip:
            x = horizontal_flip(x, self.flip, generator)
        for step in self.extra:
            x = step(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Augment(crop={self.crop}, flip={self.flip}, extra={len(self.extra)})"
