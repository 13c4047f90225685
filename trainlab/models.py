"""Small models used across chapters (sized so a CPU epoch on mnist5k takes about a second)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(
    input_dim: int,
    hidden: Sequence[int],
    num_classes: int,
    *,
    activation: type[nn.Module] = nn.ReLU,
    dropout: float = 0.0,
    batch_norm: bool = False,
    norm: str | None = None,
    norm_groups: int = 8,
) -> nn.Sequential:
    """Flatten → [Linear → (normalization) → activation → (Dropout)] × len(hidden) → Linear.

    Flattening happens inside, so the model accepts images or already-flat inputs. ``norm`` is
    ``"batch"``, ``"layer"``, ``"group"`` (``norm_groups`` groups) or ``None``/``"none"``
    (see :func:`trainlab.norm.norm_layer`); ``batch_norm=True`` is the same as ``norm="batch"``.
    """
    from .norm import norm_layer

    if input_dim < 1 or num_classes < 1:
        raise ValueError(f"input_dim and num_classes must be positive, got {input_dim} and {num_classes}")
    if batch_norm and norm not in (None, "batch"):
        raise ValueError(f"batch_norm=True contradicts norm={norm!r}; pass only norm=...")
    norm = "batch" if batch_norm else norm
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_dim
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if norm not in (None, "none"):
            layers.append(norm_layer(norm, size, groups=norm_groups))
        layers.append(activation())
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def small_cnn(
    in_channels: int, num_classes: int, *, width: int = 16, image_size: int = 28, batch_norm: bool = False
) -> nn.Sequential:
    """Two conv blocks (conv 3×3 → (BN) → ReLU → max-pool 2) and a linear classifier."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        return layers + [nn.ReLU(), nn.MaxPool2d(2)]

    final = image_size // 4
    return nn.Sequential(
        *block(in_channels, width),
        *block(width, 2 * width),
        nn.Flatten(),
        nn.Linear(2 * width * final * final, num_classes),
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
