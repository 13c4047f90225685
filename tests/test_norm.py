"""trainlab.norm: normalization layers by name, layer-vs-layer checks, the forgotten model.eval()."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab as tl
from trainlab.norm import check_same_layer, evaluate_with_batch_statistics, norm_layer


class ScratchBatchNorm(nn.Module):
    """A from-scratch BatchNorm with switchable bugs, to show check_same_layer catches each."""

    def __init__(self, c, momentum=0.1, eps=1e-5, bug=None):
        super().__init__()
        self.momentum, self.eps, self.bug = momentum, eps, bug
        self.weight = nn.Parameter(torch.rand(c, dtype=torch.float64) + 0.5)
        self.bias = nn.Parameter(torch.randn(c, dtype=torch.float64))
        self.register_buffer("running_mean", torch.zeros(c, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones(c, dtype=torch.float64))
        self.register_buffer("num_batches_tracked", torch.tensor(0))

    def forward(self, x):
        dims = [0] + list(range(2, x.ndim))
        shape = [1, -1] + [1] * (x.ndim - 2)
        if self.training:
            self.num_batches_tracked += 1
            mean, var = x.mean(dims), x.var(dims, unbiased=self.bug == "unbiased-normalize")
            n = x.numel() // x.shape[1]
            m = 1 - self.momentum if self.bug == "ema-convention" else self.momentum
            running = var if self.bug == "biased-running" else var * n / (n - 1)
            with torch.no_grad():
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * running)
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return self.weight.view(shape) * x_hat + self.bias.view(shape)


def _images(step):
    gen = torch.Generator().manual_seed(step)
    return 3 * torch.randn(8, 4, 5, 5, generator=gen, dtype=torch.float64) + 2


def test_check_same_layer_accepts_a_correct_batchnorm():
    torch.manual_seed(0)
    n = check_same_layer(ScratchBatchNorm(4), nn.BatchNorm2d(4).double(), _images, steps=4)
    # per step: output, input grad, 2 parameter grads, 3 buffers; 4 training steps + 1 eval step
    assert n == 5 * 7


@pytest.mark.parametrize("bug", ["unbiased-normalize", "ema-convention", "biased-running"])
def test_check_same_layer_catches_each_convention_bug(bug):
    torch.manual_seed(0)
    with pytest.raises(AssertionError):
        check_same_layer(ScratchBatchNorm(4, bug=bug), nn.BatchNorm2d(4).double(), _images, steps=3)


def test_check_same_layer_catches_an_eval_mode_bug():
    class TrainStatsAtEval(ScratchBatchNorm):  # forgets to use the running statistics at evaluation
        def forward(self, x):
            training = self.training
            self.training = True
            try:
                return super().forward(x)
            finally:
                self.training = training

    torch.manual_seed(0)
    with pytest.raises(AssertionError, match="training=False"):
        check_same_layer(TrainStatsAtEval(4), nn.BatchNorm2d(4).double(), _images, steps=2)


def test_norm_layer_kinds_and_errors():
    assert isinstance(norm_layer("batch", 8), nn.BatchNorm1d)
    assert isinstance(norm_layer("layer", 8), nn.LayerNorm)
    group = norm_layer("group", 8, groups=4)
    assert isinstance(group, nn.GroupNorm) and group.num_groups == 4
    assert isinstance(norm_layer(None, 8), nn.Identity) and isinstance(norm_layer("none", 8), nn.Identity)
    with pytest.raises(ValueError, match="unknown normalization"):
        norm_layer("instance", 8)
    with pytest.raises(ValueError, match="equal groups"):
        norm_layer("group", 10, groups=4)


def test_mlp_norm_argument_is_backwards_compatible():
    kinds = lambda m: [type(layer).__name__ for layer in m]  # noqa: E731
    assert kinds(tl.mlp(5, [8], 3, batch_norm=True)) == kinds(tl.mlp(5, [8], 3, norm="batch")) == [
        "Flatten", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert kinds(tl.mlp(5, [8], 3)) == ["Flatten", "Linear", "ReLU", "Linear"]
    assert "LayerNorm" in kinds(tl.mlp(5, [8], 3, norm="layer"))
    model = tl.mlp(5, [8, 8], 3, norm="group", norm_groups=2)
    assert [m.num_groups for m in model if isinstance(m, nn.GroupNorm)] == [2, 2]
    with pytest.raises(ValueError, match="contradicts"):
        tl.mlp(5, [8], 3, batch_norm=True, norm="layer")


def test_forgotten_eval_uses_batch_statistics_and_restores_the_model():
    torch.manual_seed(0)
    model = tl.mlp(6, [16], 3, batch_norm=True)
    x, y = 2 * torch.randn(40, 6) + 1, torch.randint(0, 3, (40,))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc = evaluate_with_batch_statistics(model, x, y, batch_size=8)
    model.train()  # by hand: five batches of 8, in training mode
    manual = sum(int((model(x[i:i + 8]).argmax(1) == y[i:i + 8]).sum()) for i in range(0, 40, 8)) / 40
    model.load_state_dict(before)
    model.eval()
    assert acc == pytest.approx(manual)
    acc = evaluate_with_batch_statistics(model, x, y, batch_size=8)
    assert not model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert acc != pytest.approx(float((model(x).argmax(1) == y).float().mean()))  # not eval mode
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_with_batch_statistics(model, x, y, batch_size=1)
    with pytest.raises(ValueError, match="at least one full batch"):
        evaluate_with_batch_statistics(model, x[:3], y[:3], batch_size=8)
