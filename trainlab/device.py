"""Device selection and seeding.

Chapters call :func:`get_device` once; it prefers CUDA, then Apple's MPS, then the CPU, so the
same notebook runs on a GPU server, a laptop and a CI machine.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_VALID_DEVICES = ("cuda", "mps", "cpu")


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: ``cuda`` → ``mps`` → ``cpu``.

    ``prefer`` (or the environment variable ``TRAINLAB_DEVICE``) forces one of them; asking for a
    device that is not available is an error rather than a silent fallback, because a chapter
    that silently runs on the CPU would take hours and never say why.
    """
    wanted = prefer or os.environ.get("TRAINLAB_DEVICE")
    if wanted:
        kind = wanted.split(":")[0]
        if kind not in _VALID_DEVICES:
            raise ValueError(f"Unknown device {wanted!r}; use one of {', '.join(_VALID_DEVICES)}.")
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"Device {wanted!r} was requested but CUDA is not available here.")
        if kind == "mps" and not _mps_available():
            raise RuntimeError(f"Device {wanted!r} was requested but Apple MPS is not available here.")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a CPU generator seeded the same.

    Seeding makes a run repeatable on one machine and software stack; it does not make a CPU
    run equal a GPU run (different kernels round differently).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA/MPS device
    return torch.Generator().manual_seed(seed)


def make_generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A generator living on ``device`` (so ``randperm`` and friends never leave the device)."""
    device = torch.device(device)
    try:
        return torch.Generator(device=device).manual_seed(seed)
    except RuntimeError:  # backends without device generators fall back to the CPU one
        return torch.Generator().manual_seed(seed)
