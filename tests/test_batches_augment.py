import pytest
import torch

import trainlab as tl


def _data(n=10, d=3):
    return torch.arange(n * d, dtype=torch.float32).view(n, d), torch.arange(n)


def test_each_epoch_is_a_new_permutation_covering_every_example_once():
    x, y = _data(10)
    batches = tl.DeviceBatches((x, y), 4, seed=0)
    epochs = [torch.cat([yb for _, yb in batches]) for _ in range(3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(epochs[0], epochs[1]), "shuffle must differ between epochs"
    # x and y stay paired.
    for xb, yb in batches:
        assert torch.equal(xb[:, 0], yb.float() * 3)


def test_last_batch_is_kept_smaller_or_dropped():
    x, y = _data(10)
    assert [len(yb) for _, yb in tl.DeviceBatches((x, y), 4)] == [4, 4, 2]
    assert len(tl.DeviceBatches((x, y), 4)) == 3
    assert [len(yb) for _, yb in tl.DeviceBatches((x, y), 4, drop_last=True)] == [4, 4]
    assert len(tl.DeviceBatches((x, y), 4, drop_last=True)) == 2


def test_no_shuffle_keeps_order_and_seed_repeats():
    x, y = _data(7)
    assert torch.cat([yb for _, yb in tl.DeviceBatches((x, y), 3, shuffle=False)]).tolist() == list(range(7))
    a = [yb.tolist() for _, yb in tl.DeviceBatches((x, y), 3, seed=5)]
    b = [yb.tolist() for _, yb in tl.DeviceBatches((x, y), 3, seed=5)]
    assert a == b


def test_bad_arguments_are_named():
    x, y = _data(5)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        tl.DeviceBatches((x, y), 0)
    with pytest.raises(ValueError, match="would give no batches"):
        tl.DeviceBatches((x, y), 6, drop_last=True)
    with pytest.raises(ValueError, match="x has 5, y has 4"):
        tl.DeviceBatches((x, y[:4]), 2)


def test_random_crop_shifts_each_image_within_padding():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0  # a single bright pixel in the centre
    batch = image.repeat(200, 1, 1, 1)
    out = tl.random_crop(batch, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == batch.shape
    positions = {tuple(torch.nonzero(o[0])[0].tolist()) for o in out if o.sum() > 0}
    # The pixel can land anywhere in the 5x5 window (offsets -2..2), and every example is an exact shift.
    assert len(positions) == 25
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1.0)


def test_random_crop_with_zero_padding_is_identity_and_needs_images():
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(tl.random_crop(x, 0), x)
    with pytest.raises(ValueError, match=r"needs images shaped \(N, C, H, W\).*flatten=False"):
        tl.random_crop(torch.randn(4, 64), 2)


def test_horizontal_flip_probability_and_exactness():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(1000, 1, 1, 1)
    out = tl.horizontal_flip(x, p=0.5, generator=torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 3.0)
    assert 0.4 < flipped.float().mean() < 0.6
    assert torch.equal(out[flipped], x[flipped].flip(-1)) and torch.equal(out[~flipped], x[~flipped])
    assert torch.equal(tl.horizontal_flip(x[:3], p=1.0), x[:3].flip(-1))
    with pytest.raises(ValueError, match="probability"):
        tl.horizontal_flip(x, p=1.5)


def test_augment_is_applied_per_training_batch():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(8, 1, 1, 1)
    y = torch.zeros(8, dtype=torch.long)
    batches = tl.DeviceBatches((x, y), 8, augment=tl.Augment(flip=1.0))
    (xb, _), = list(batches)
    assert torch.equal(xb, x.flip(-1))
