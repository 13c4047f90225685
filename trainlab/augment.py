"""Batched data augmentation that runs on the device, one call per mini-batch.

Per-example randomness without a Python loop: every example in the batch gets its own crop
offset, flip decision, rotation angle and shift, drawn in one tensor operation, so the images never
leave the device (chapter "Data augmentation").

* :func:`random_crop`, :func:`horizontal_flip`, :func:`random_affine` and their composition
  :class:`Augment` transform images ``(N, C, H, W)``;
* :func:`affine` is the deterministic warp behind :func:`random_affine`: per-example angle and
  shift, in the conventions of ``torchvision.transforms.v2.functional.affine`` (bilinear);
* :func:`mixed_grads` turns a batch-mixing transform (``torchvision.transforms.v2.MixUp`` /
  ``CutMix``, which return soft labels) into a ``compute_grads`` for :func:`trainlab.fit`.

``fill`` is the value of the pixels that come in from outside the image. Inputs are usually
standardised, so 0 is the *mean* grey, not black: pass ``fill = -mean / std`` (per channel) to pad
with black, as torchvision does on unnormalised images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

Augmentation = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]
Fill = float | Sequence[float] | torch.Tensor
# mix(x, y) -> (mixed x, soft labels (N, C)), e.g. torchvision.transforms.v2.MixUp(num_classes=C)
Mix = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


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


def _fill_tensor(fill: Fill, x: torch.Tensor) -> torch.Tensor:
    """``fill`` as a ``(1, C, 1, 1)`` tensor on the CPU (one value for all channels: ``(1, 1, 1, 1)``)."""
    value = torch.as_tensor(fill, dtype=torch.float64).reshape(-1)
    if value.numel() not in (1, x.shape[1]):
        raise ValueError(f"fill needs 1 value or one per channel ({x.shape[1]}), got {value.numel()}")
    if value.numel() > 1 and bool((value == value[0]).all()):
        value = value[:1]
    return value.view(1, -1, 1, 1)


def random_crop(
    x: torch.Tensor,
    padding: int,
    generator: torch.Generator | None = None,
    *,
    fill: Fill = 0.0,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pad by ``padding`` pixels of value ``fill`` and take a random ``H×W`` crop per example.

    ``offsets`` (``(N, 2)`` integers in ``0..2·padding``: top and left corner of each crop in the padded
    image) replaces the random draw; ``offsets = padding`` everywhere gives back ``x``.
    """
    _check_images(x, "random_crop")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if padding == 0:
        return x
    n, c, h, w = x.shape
    if offsets is None:
        offsets = (_rand((n, 2), x, generator) * (2 * padding + 1)).long()  # uniform in 0..2p
    else:
        offsets = torch.as_tensor(offsets, device=x.device).long()
        if offsets.shape != (n, 2) or offsets.min() < 0 or offsets.max() > 2 * padding:
            raise ValueError(f"offsets must be (N, 2) = ({n}, 2) integers in 0..{2 * padding}, "
                             f"got shape {tuple(offsets.shape)}")
    pad = (padding, padding, padding, padding)
    value = _fill_tensor(fill, x)
    if value.numel() == 1:
        padded = F.pad(x, pad, value=float(value))
    else:  # one value per channel
        value = value.to(dtype=x.dtype, device=x.device)
        padded = F.pad(x - value, pad) + value
    # One gather on the flattened padded image: pixel (r, c) of the crop is (top + r, left + c) there.
    wp = w + 2 * padding
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (N, W)
    flat = (rows[:, :, None] * wp + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, flat).view(n, c, h, w)


def horizontal_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each example left–right with probability ``p``."""
    _check_images(x, "horizontal_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"flip probability must be in [0, 1], got {p}")
    flip = _rand((x.shape[0],), x, generator) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def affine(x: torch.Tensor, angle: torch.Tensor | float, translate: torch.Tensor | Sequence[float] = (0.0, 0.0),
           *, fill: Fill = 0.0) -> torch.Tensor:
    """Rotate each image by ``angle`` degrees about its centre, then shift it by ``translate`` pixels.

    ``angle``: a number or ``(N,)`` (clockwise on the screen); ``translate``: ``(dx, dy)`` or ``(N, 2)``
    (right, down). Bilinear sampling with ``F.affine_grid`` + ``F.grid_sample``; equal to
    ``torchvision.transforms.v2.functional.affine(x - fill, angle, translate, 1.0, [0.0, 0.0],
    InterpolationMode.BILINEAR) + fill``, image by image.
    """
    _check_images(x, "affine")
    if not x.is_floating_point():
        raise ValueError(f"affine needs floating-point images, got {x.dtype}; convert with x.float()")
    n, _, h, w = x.shape
    angle = torch.as_tensor(angle, dtype=x.dtype, device=x.device).expand(n)
    shift = torch.as_tensor(translate, dtype=x.dtype, device=x.device).expand(n, 2)
    rad = torch.deg2rad(angle)
    cos, sin = rad.cos(), rad.sin()
    dx, dy = shift[:, 0], shift[:, 1]
    # Output pixel p (centred pixel units) samples the input at R(-angle)·(p - shift); affine_grid
    # works in [-1, 1] units, so columns are scaled by w/2 and rows by h/2.
    theta = torch.stack([cos, sin * (h / w), (cos * dx + sin * dy) * (-2 / w),
                         sin * (-w / h), cos, (sin * dx - cos * dy) * (2 / h)], dim=-1).view(n, 2, 3)
    # = F.affine_grid(theta, x.shape, align_corners=False), formed with one einsum (much faster on a CPU)
    grid = torch.einsum("pk,njk->npj", _base_grid(h, w, x.dtype, x.device), theta).view(n, h, w, 2)
    value = _fill_tensor(fill, x)
    if value.numel() == 1:  # a Python number: no tensor copy to the device
        value = float(value)
        if value == 0.0:
            return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    else:
        value = value.to(dtype=x.dtype, device=x.device)
    return F.grid_sample(x - value, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + value


@lru_cache(maxsize=16)
def _base_grid(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(H·W, 3)`` rows ``(x, y, 1)``: pixel centres in ``[-1, 1]`` units (``align_corners=False``)."""
    xs = (2 * torch.arange(w, dtype=dtype, device=device) + 1) / w - 1
    ys = (2 * torch.arange(h, dtype=dtype, device=device) + 1) / h - 1
    return torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, dtype=dtype, device=device)],
                       dim=-1).view(h * w, 3)


def random_affine(
    x: torch.Tensor,
    degrees: float,
    translate: float = 0.0,
    generator: torch.Generator | None = None,
    *,
    fill: Fill = 0.0,
) -> torch.Tensor:
    """Rotate each image by a uniform angle in ±``degrees`` and shift it by up to ±``translate`` pixels
    (uniform, independently in x and y), one draw per example; see :func:`affine`."""
    _check_images(x, "random_affine")
    if degrees < 0 or translate < 0:
        raise ValueError(f"degrees and translate must be >= 0, got {degrees} and {translate}")
    n = x.shape[0]
    u = _rand((n, 3), x, generator).to(x.dtype) * 2 - 1  # uniform in [-1, 1)
    return affine(x, u[:, 0] * degrees, u[:, 1:] * translate, fill=fill)


class Augment:
    """Compose batched augmentations: ``Augment(crop=2, degrees=10, fill=black)`` or a list of callables.

    Applied in the order crop, flip, affine (rotation ±``degrees``, shift ±``translate`` pixels), then
    each callable of ``extra``, which takes ``(batch, generator)`` and returns the augmented batch.
    """

    def __init__(self, crop: int = 0, flip: float = 0.0, extra: Sequence[Augmentation] = (), *,
                 degrees: float = 0.0, translate: float = 0.0, fill: Fill = 0.0) -> None:
        self.crop, self.flip, self.extra = crop, flip, list(extra)
        self.degrees, self.translate, self.fill = degrees, translate, fill

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.crop:
            x = random_crop(x, self.crop, generator, fill=self.fill)
        if self.flip:
            x = horizontal_flip(x, self.flip, generator)
        if self.degrees or self.translate:
            x = random_affine(x, self.degrees, self.translate, generator, fill=self.fill)
        for step in self.extra:
            x = step(x, generator)
        return x

    def __repr__(self) -> str:
        parts = [f"crop={self.crop}", f"flip={self.flip}"]
        if self.degrees or self.translate:
            parts += [f"degrees={self.degrees}", f"translate={self.translate}"]
        return f"Augment({', '.join(parts)}, extra={len(self.extra)})"


def mixed_grads(mix: Mix) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A ``compute_grads`` for :func:`trainlab.fit` that trains on ``mix(x, y)`` with soft targets.

    ``mix`` is e.g. ``torchvision.transforms.v2.MixUp(alpha=0.2, num_classes=10)`` or ``CutMix``: it returns
    mixed images and soft labels, and the loss is the cross-entropy with those soft labels. It runs on the
    batch's device; torchvision draws λ from the global generator (seed it, e.g. with ``over_seeds``).
    """
    def compute_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_mixed, soft = mix(x, y)
        if soft.ndim != 2:
            raise ValueError(f"mix(x, y) must return soft labels (N, C); got shape {tuple(soft.shape)}")
        logits = model(x_mixed)
        loss = F.cross_entropy(logits, soft.to(logits.dtype))  # probabilities as targets
        loss.backward()
        return loss, logits

    return compute_grads


__all__ = ["Augment", "Augmentation", "affine", "horizontal_flip", "mixed_grads", "random_affine", "random_crop"]
