import gzip
import struct

import numpy as np
import pytest
import torch

import trainlab as tl
from trainlab.data import _raw_arrays, _tensors


@pytest.fixture(scope="module")
def mnist5k():
    return tl.load_dataset("mnist5k")


def test_mnist5k_splits_are_disjoint_deterministic_and_sized(mnist5k):
    assert (len(mnist5k.train), len(mnist5k.val), len(mnist5k.test)) == (3600, 400, 1000)
    assert mnist5k.input_shape == (1, 28, 28) and mnist5k.num_classes == 10
    again = tl.load_dataset("mnist5k")
    assert torch.equal(again.train.x, mnist5k.train.x) and torch.equal(again.test.y, mnist5k.test.y)
    # No example appears in two splits (compare raw pixels as bytes).
    rows = {
        split: {bytes(r.numpy()) for r in getattr(mnist5k, split).x.flatten(1)} for split in ("train", "val", "test")
    }
    assert not rows["train"] & rows["val"] and not rows["train"] & rows["test"] and not rows["val"] & rows["test"]
    # Every class is present in every split.
    for split in (mnist5k.train, mnist5k.val, mnist5k.test):
        assert set(split.y.tolist()) == set(range(10))


def test_normalisation_uses_training_statistics_only(mnist5k):
    assert abs(float(mnist5k.train.x.mean())) < 1e-4
    assert abs(float(mnist5k.train.x.std()) - 1) < 1e-3
    # Validation/test are standardised with the *training* mean and std, so they are not exactly 0/1.
    x_raw, _, _, _ = _raw_arrays("mnist5k", "", False)
    assert float(mnist5k.mean) == pytest.approx(float(x_raw[: len(x_raw)].mean()), rel=0.05)
    assert float(mnist5k.val.x.mean()) != pytest.approx(0.0, abs=1e-6)


def test_val_fraction_moves_only_validation_never_test():
    small = tl.load_dataset("mnist5k", val_fraction=0.2)
    default = tl.load_dataset("mnist5k")
    assert len(small.val) == 800 and len(small.train) == 3200
    assert torch.equal(small.test.y, default.test.y)


def test_flatten_and_unnormalised(mnist5k):
    flat = tl.load_dataset("mnist5k", flatten=True, normalize=False)
    assert flat.train.x.shape == (3600, 784) and flat.input_shape == (784,) and flat.input_dim == 784
    assert 0.0 <= float(flat.train.x.min()) and float(flat.train.x.max()) <= 1.0


def test_digits_dataset():
    digits = tl.load_dataset("digits")
    assert digits.input_shape == (1, 8, 8)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(tl.UnknownDatasetError) as info:
        tl.load_dataset("imagenet")
    message = str(info.value)
    for name in tl.DATASETS:
        assert name in message


def test_bad_split_arguments():
    with pytest.raises(ValueError, match="val_fraction"):
        tl.load_dataset("digits", val_fraction=1.5)


def test_missing_online_dataset_offline_is_one_clear_error(tmp_path):
    with pytest.raises(tl.DatasetUnavailableError) as info:
        tl.load_dataset("fashion-mnist", root=tmp_path, download=False)
    message = str(info.value)
    assert "fashion-mnist" in message and str(tmp_path / "FashionMNIST" / "raw") in message
    assert "'mnist5k'" in message and "'digits'" in message
    assert isinstance(info.value, tl.DatasetError)


def test_failed_download_is_reported_not_substituted(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def refuse(self, *args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(tvd.CIFAR10, "download", refuse)
    with pytest.raises(tl.DatasetUnavailableError, match="download failed: OSError: Name or service not known"):
        tl.load_dataset("cifar10", root=tmp_path, download=True)


def _write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """IDX as in LeCun's MNIST files: magic (0, 0, dtype=0x08 ubyte, ndim), big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open(path.with_suffix(path.suffix + ".gz"), "wb") if gz else open(path, "wb")).write(payload)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_layout_loads_offline(tmp_path, name, folder):
    """The online path, without a network: IDX files built from mnist5k in torchvision's folder layout."""
    x, y, x_test, y_test = _raw_arrays("mnist5k", "", False)
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    to_pixels = lambda t: (t.squeeze(1).numpy() * 255).round()  # noqa: E731
    _write_idx(raw / "train-images-idx3-ubyte", to_pixels(x))
    _write_idx(raw / "train-labels-idx1-ubyte", y.numpy())
    _write_idx(raw / "t10k-images-idx3-ubyte", to_pixels(x_test))
    _write_idx(raw / "t10k-labels-idx1-ubyte", y_test.numpy())

    ds = tl.load_dataset(name, root=tmp_path, download=False)
    assert ds.name == name and ds.input_shape == (1, 28, 28)
    assert len(ds.train) + len(ds.val) == len(y) and len(ds.test) == len(y_test)
    assert len(ds.val) == round(0.1 * len(y))
    # Same pixels, same labels: the test split is the files' test set, in order.
    assert torch.equal(ds.test.y, y_test)
    restored = ds.test.x * ds.std.view(1, -1, 1, 1) + ds.mean.view(1, -1, 1, 1)
    assert torch.allclose(restored, x_test, atol=1e-5)
    if name == "fashion-mnist":
        assert ds.class_names[0] == "T-shirt/top"


def test_cifar_like_arrays_become_nchw():
    class Fake:
        data = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
        targets = [0, 1, 2, 3]

    x, y = _tensors(Fake())
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.tolist() == [0, 1, 2, 3]
    assert torch.allclose(x[1, 2], torch.as_tensor(Fake.data[1, :, :, 2]).float() / 255)


def test_split_validation_errors():
    with pytest.raises(ValueError, match="disagree on the number of examples: x has 3, y has 2"):
        tl.Split(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        tl.Split(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="labels y must be integers"):
        tl.Split(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(TypeError, match="torch tensors"):
        tl.Split(np.zeros((3, 2)), torch.zeros(3, dtype=torch.long))


def test_subset_and_to(mnist5k):
    sub = mnist5k.train.subset(10)
    assert len(sub) == 10 and sub.to("cpu").x.device.type == "cpu"
    with pytest.raises(ValueError, match="subset size"):
        mnist5k.train.subset(0)
