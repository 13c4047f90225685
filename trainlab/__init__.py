"""trainlab — the small library behind the course *Training Neural Networks*.

One concern per module: ``device`` (device, seeds), ``profile`` (experiment size, dataset),
``data`` (datasets as tensors), ``batches`` (device-side mini-batches), ``augment`` (batched
augmentation), ``models``, ``train`` (fit / evaluate), ``seeds`` (multi-seed runs), ``plots``,
``toy`` (2-D test functions), ``widgets`` (the optimizer playground).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .augment import Augment, horizontal_flip, random_crop
from .batches import DeviceBatches
from .data import (
    DATASETS,
    OFFLINE_DATASETS,
    Dataset,
    DatasetError,
    DatasetUnavailableError,
    Split,
    UnknownDatasetError,
    load_dataset,
)
from .device import get_device, seed_everything
from .models import count_parameters, mlp, small_cnn
from .profile import Profile, dataset_name, get_profile, in_book_build
from .seeds import format_mean_std, mean_and_spread, over_seeds, stack
from .train import Callback, EarlyStopping, History, TrainState, evaluate, fit

__version__ = "0.1.0"


@dataclass(frozen=True)
class Setup:
    device: torch.device
    profile: Profile
    dataset: str

    def __str__(self) -> str:
        return f"device={self.device.type}  profile={self.profile.name}  dataset={self.dataset}"


def setup(seed: int = 0) -> Setup:
    """What the first cell of every chapter calls: seed, pick device/profile/dataset, plot style."""
    from .plots import use_style

    seed_everything(seed)
    use_style()
    return Setup(device=get_device(), profile=get_profile(), dataset=dataset_name())


__all__ = [
    "Augment", "Callback", "DATASETS", "Dataset", "DatasetError", "DatasetUnavailableError",
    "DeviceBatches", "EarlyStopping", "History", "OFFLINE_DATASETS", "Profile", "Setup", "Split",
    "TrainState", "UnknownDatasetError", "count_parameters", "dataset_name", "evaluate", "fit",
    "format_mean_std", "get_device", "get_profile", "horizontal_flip", "in_book_build", "load_dataset",
    "mean_and_spread", "mlp", "over_seeds", "random_crop", "seed_everything", "setup", "small_cnn", "stack",
]
