"""trainlab.pipeline: timing per-image DataLoader transforms, batched augmentation and training steps."""

import pytest
import torch

import trainlab as tl
from trainlab.augment import Augment
from trainlab.pipeline import PerImageDataset, augment_rate, loader_rate, step_rate


def test_per_image_dataset_applies_the_transform_to_one_example():
    x, y = torch.arange(12.0).view(3, 1, 2, 2), torch.tensor([0, 1, 2])
    ds = PerImageDataset(x, y, lambda image: image * 10)
    assert len(ds) == 3
    image, label = ds[1]
    assert image.shape == (1, 2, 2) and torch.equal(image, x[1] * 10) and label == 1
    with pytest.raises(ValueError, match="examples"):
        PerImageDataset(x, y[:2], lambda image: image)


def test_rates_are_positive_and_loader_counts_its_calls():
    x, y = torch.randn(64, 1, 8, 8), torch.randint(10, (64,))
    calls = []

    def transform(image):
        calls.append(1)
        return image

    rate = loader_rate(x, y, transform, 8, batches=3, repeats=2)
    assert rate > 0
    assert len(calls) == 2 * 4 * 8  # per pass: one warm-up batch and 3 timed batches, 8 images each
    assert augment_rate(Augment(crop=2), x, 16, min_time=0.0) > 0
    with pytest.raises(ValueError, match="need 11 batches"):
        loader_rate(x, y, transform, 8, batches=10)


def test_augment_rate_rejects_an_augmentation_that_changes_the_batch_shape():
    x = torch.randn(32, 1, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        augment_rate(lambda xb, g: xb[:, :, :4], x, 8, min_time=0.0)


def test_step_rate_trains_a_copy_and_leaves_the_model_alone():
    model = tl.mlp(64, [8], 10)
    before = [p.detach().clone() for p in model.parameters()]
    assert step_rate(model, torch.randn(32, 1, 8, 8), 10, 16, min_time=0.0, lr=1.0) > 0
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
