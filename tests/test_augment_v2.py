"""trainlab.augment beyond crop and flip: affine warps, fills, explicit crop offsets, mixing for fit()."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

import trainlab as tl
from trainlab.augment import Augment, affine, mixed_grads, random_affine, random_crop


def _torchvision_affine(image, angle, shift, fill):
    fill = torch.as_tensor(fill, dtype=image.dtype).reshape(-1, 1, 1)
    out = TF.affine(image - fill, angle=float(angle), translate=[float(s) for s in shift], scale=1.0,
                    shear=[0.0, 0.0], interpolation=InterpolationMode.BILINEAR)
    return out + fill


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (5, 3, 12, 20)])
def test_affine_equals_torchvision_image_by_image(shape):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    angle = torch.tensor([0.0, 10.0, -25.0, 90.0, 33.3], dtype=torch.float64)
    shift = torch.tensor([[0, 0], [1.5, -2], [3, 1], [0, 0], [-2.25, 0.5]], dtype=torch.float64)
    fill = [0.3] if shape[1] == 1 else [0.3, -1.0, 2.0]
    out = affine(x, angle, shift, fill=fill)
    ref = torch.stack([_torchvision_affine(x[i], angle[i], shift[i], fill) for i in range(shape[0])])
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_affine_conventions_clockwise_and_right_down():
    x = torch.zeros(1, 1, 7, 7, dtype=torch.float64)
    x[0, 0, 1, 3] = 1.0  # a pixel above the centre
    # 90° clockwise on the screen moves "up" to "right" (torch.rot90 with k=-1).
    torch.testing.assert_close(affine(x, 90.0), torch.rot90(x, k=-1, dims=(2, 3)), rtol=0, atol=1e-12)
    # An integer shift is an exact move: 2 right, 1 down.
    moved = affine(x, 0.0, (2.0, 1.0))
    assert moved[0, 0, 2, 5] == pytest.approx(1.0, abs=1e-12) and moved.sum() == pytest.approx(1.0, abs=1e-12)


def test_affine_fills_outside_and_checks_input():
    x = torch.ones(2, 1, 6, 6)
    out = affine(x, 0.0, (3.0, 0.0), fill=-2.0)  # shifted 3 right: the three left columns come from outside
    assert torch.allclose(out[..., :3], torch.full_like(out[..., :3], -2.0))
    assert torch.allclose(out[..., 3:], torch.ones_like(out[..., 3:]))
    with pytest.raises(ValueError, match="floating-point"):
        affine(torch.ones(1, 1, 4, 4, dtype=torch.uint8), 10.0)
    with pytest.raises(ValueError, match="one per channel"):
        affine(torch.ones(1, 3, 4, 4), 10.0, fill=[0.0, 1.0])


def test_random_affine_draws_per_example_within_bounds_and_repeats_with_seed():
    x = torch.zeros(400, 1, 15, 15)
    x[:, 0, 7, 12] = 1.0  # a pixel 5 to the right of the centre
    out = random_affine(x, degrees=30.0, generator=torch.Generator().manual_seed(0))
    ys, xs = torch.meshgrid(torch.arange(15.0), torch.arange(15.0), indexing="ij")
    mass = out[:, 0].sum(dim=(1, 2))
    cy, cx = (out[:, 0] * ys).sum(dim=(1, 2)) / mass, (out[:, 0] * xs).sum(dim=(1, 2)) / mass
    angle = torch.rad2deg(torch.atan2(cy - 7, cx - 7))  # clockwise on the screen is positive here
    assert angle.abs().max() < 31 and angle.max() > 25 and angle.min() < -25  # spread over ±30°
    assert len(torch.unique(angle.round(decimals=2))) > 300  # one angle per example
    again = random_affine(x, degrees=30.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.allclose(random_affine(x, 0.0, 0.0), x, atol=1e-6)
    with pytest.raises(ValueError, match=">= 0"):
        random_affine(x, -1.0)


def test_random_affine_translation_range():
    x = torch.zeros(300, 1, 21, 21)
    x[:, 0, 10, 10] = 1.0
    out = random_affine(x, 0.0, translate=3.0, generator=torch.Generator().manual_seed(1))
    xs = torch.arange(21.0)
    cx = (out[:, 0].sum(dim=1) * xs).sum(dim=1) - 10
    cy = (out[:, 0].sum(dim=2) * xs).sum(dim=1) - 10
    for c in (cx, cy):
        assert c.abs().max() <= 3.0 + 1e-5 and c.max() > 2.5 and c.min() < -2.5


def test_random_crop_with_explicit_offsets_and_fill_equals_torchvision():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 9, 7)
    offsets = torch.randint(0, 5, (6, 2))
    ref = torch.stack([TF.crop(TF.pad(x[i], [2], fill=-0.5), int(t), int(left), 9, 7)
                       for i, (t, left) in enumerate(offsets)])
    assert torch.equal(random_crop(x, 2, offsets=offsets, fill=-0.5), ref)
    assert torch.equal(random_crop(x, 2, offsets=torch.full((6, 2), 2)), x)  # the centre crop
    per_channel = random_crop(x, 2, offsets=torch.zeros(6, 2, dtype=torch.long), fill=[1.0, -1.0])
    assert torch.all(per_channel[:, 0, :2] == 1.0) and torch.all(per_channel[:, 1, :, :2] == -1.0)
    with pytest.raises(ValueError, match="offsets must be"):
        random_crop(x, 2, offsets=torch.full((6, 2), 5))


def test_augment_composes_crop_and_affine_on_the_device_of_the_batch():
    aug = Augment(crop=2, degrees=10.0, translate=1.0, fill=-0.4)
    x = torch.randn(16, 1, 28, 28)
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.device == x.device and not torch.allclose(out, x)
    assert torch.equal(out, aug(x, torch.Generator().manual_seed(0)))
    assert "degrees=10.0" in repr(aug) and repr(Augment(crop=4, flip=0.5)) == "Augment(crop=4, flip=0.5, extra=0)"
    # fit() accepts it.
    data = (torch.randn(64, 1, 28, 28), torch.randint(10, (64,)))
    model = tl.mlp(784, [8], 10)
    history = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.01), data, epochs=1, batch_size=32,
                     augment=aug, progress=False)
    assert len(history.step_loss) == 2


def test_mixed_grads_is_soft_target_cross_entropy_and_reduces_to_plain_ce():
    torch.manual_seed(0)
    model = tl.mlp(12, [8], 3)
    x, y = torch.randn(10, 1, 3, 4), torch.randint(3, (10,))

    def no_mix(x, y):
        return x, F.one_hot(y, 3).float()

    loss, logits = mixed_grads(no_mix)(model, x, y)
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    assert torch.allclose(loss, F.cross_entropy(logits, y))
    for g, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)

    model.zero_grad()
    mixup = v2.MixUp(alpha=1.0, num_classes=3)
    torch.manual_seed(3)
    loss, _ = mixed_grads(mixup)(model, x, y)
    torch.manual_seed(3)
    xm, soft = mixup(x, y)
    manual = -(soft * model(xm).log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(loss, manual)
    with pytest.raises(ValueError, match="soft labels"):
        mixed_grads(lambda x, y: (x, y))(model, x, y)


def test_fit_trains_with_mixup_and_cutmix():
    data = (torch.randn(64, 1, 8, 8), torch.randint(4, (64,)))
    for mix in (v2.MixUp(alpha=0.4, num_classes=4), v2.CutMix(alpha=1.0, num_classes=4)):
        model = tl.mlp(64, [8], 4)
        history = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=2, batch_size=16,
                         compute_grads=mixed_grads(mix), progress=False)
        assert len(history.train_loss) == 2 and all(v == v for v in history.train_loss)
