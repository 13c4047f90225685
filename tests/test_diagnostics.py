"""trainlab.diagnostics.UpdateRatio records ‖Δθ‖/‖θ‖ of real optimizer steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab as tl
from trainlab.diagnostics import UpdateRatio


def _data(n=64, d=5, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tl.Split(torch.randn(n, d, generator=gen), torch.randint(0, k, (n,), generator=gen))


def test_ratio_equals_lr_times_grad_over_weight_for_sgd():
    # One linear layer, full batch, one step: Δθ = -lr·∇, so the ratio is lr·‖∇‖/‖θ_after‖.
    train = _data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3))
    before = model[0].weight.detach().clone()
    x, y = train.x, train.y
    grad = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), model[0].weight)[0]
    tracker = UpdateRatio()
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.5), train, epochs=1, batch_size=64,
           callbacks=[tracker], progress=False)
    after = model[0].weight.detach()
    expected = float((0.5 * grad).norm() / after.norm())
    assert tracker.steps == [1]
    assert list(tracker.ratios) == ["0.weight"]  # biases are skipped by default
    assert tracker.as_array("0.weight")[0] == pytest.approx(expected, rel=1e-5)
    assert float((after - before).norm() / after.norm()) == pytest.approx(expected, rel=1e-5)


def test_ratio_scales_with_learning_rate_and_every():
    train = _data(n=80)
    results = {}
    for lr in (0.01, 0.1):
        torch.manual_seed(1)
        model = tl.mlp(5, [8], 3)
        tracker = UpdateRatio(every=2)
        tl.fit(model, torch.optim.SGD(model.parameters(), lr=lr), train, epochs=2, batch_size=16,
               callbacks=[tracker], progress=False)
        results[lr] = tracker
    assert results[0.1].steps == [2, 4, 6, 8, 10]  # 5 batches × 2 epochs, every second step
    assert set(results[0.1].ratios) == {"1.weight", "3.weight"}
    # The first measured step has nearly the same gradient, so the ratio is ~10× larger.
    r_small, r_big = results[0.01].as_array("1.weight")[0], results[0.1].as_array("1.weight")[0]
    assert 5 < r_big / r_small < 20


def test_named_parameters_and_errors():
    train = _data()
    model = nn.Sequential(nn.Linear(5, 3))
    tracker = UpdateRatio(names=["0.bias"])
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), train, epochs=1, batch_size=32,
           callbacks=[tracker], progress=False)
    assert list(tracker.ratios) == ["0.bias"] and len(tracker.steps) == 2
    with pytest.raises(KeyError, match="0.weight"):
        tracker.as_array("0.weight")
    with pytest.raises(ValueError, match="no parameters named"):
        tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), train, epochs=1, batch_size=32,
               callbacks=[UpdateRatio(names=["nope"])], progress=False)
    with pytest.raises(ValueError, match="every"):
        UpdateRatio(every=0)
