"""trainlab.diagnostics.layer_statistics records each layer's output and gradients; plots draw them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import trainlab as tl
from trainlab.diagnostics import NORM_TYPES, LayerStatistics, layer_statistics
from trainlab.plots import plot_layer_histograms, plot_layer_std


def _batch(n=32, d=6, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen), torch.randint(0, k, (n,), generator=gen)


def _manual(model, x, y):
    """Layer outputs and their gradients, computed by hand with retain_grad."""
    outs, h = [], x
    for layer in model:
        h = layer(h)
        h.retain_grad()
        outs.append(h)
    F.cross_entropy(h, y).backward()
    return outs


def test_records_linear_and_activation_outputs_in_forward_order():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    x, y = _batch()
    stats = layer_statistics(model, x, y)
    assert stats.names == ["0", "1", "2", "3", "4"]
    assert stats.labels[0] == "1: Linear 6→5" and stats.labels[1] == "2: Tanh"
    manual = _manual(model, x, y)
    for record, out in zip(stats, manual, strict=True):
        torch.testing.assert_close(record.activation, out.detach())
        torch.testing.assert_close(record.gradient, out.grad)
    # weight gradients equal what backward() left in .grad
    for name in ["0", "2", "4"]:
        torch.testing.assert_close(stats[name].weight_gradient, model[int(name)].weight.grad)
    assert stats["1"].weight is None and stats["1"].weight_gradient is None
    assert stats.loss == pytest.approx(F.cross_entropy(model(x), y).item())


def test_leaves_model_mode_buffers_and_grads_untouched():
    torch.manual_seed(1)
    model = tl.mlp(6, [8, 8], 3, batch_norm=True)
    model.eval()
    x, y = _batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_statistics(model, x, y, train=True)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"  # running stats restored, weights untouched
    assert all(p.grad is None for p in model.parameters())
    model.train()
    layer_statistics(model, x, y, train=False)
    assert model.training


def test_train_flag_switches_batchnorm_statistics():
    torch.manual_seed(2)
    model = tl.mlp(6, [8], 3, batch_norm=True)
    x, _ = _batch(n=64)
    types = NORM_TYPES
    train = layer_statistics(model, 3 * x + 5, types=types, train=True)[0].activation
    evals = layer_statistics(model, 3 * x + 5, types=types, train=False)[0].activation
    torch.testing.assert_close(train.mean(0), torch.zeros(8), atol=1e-5, rtol=0)  # batch statistics
    assert evals.mean(0).abs().max() > 0.1  # fresh running stats (0, 1): nearly the identity


def test_without_labels_only_activations_and_clear_error():
    model = nn.Sequential(nn.Linear(6, 3))
    x, _ = _batch()
    stats = layer_statistics(model, x)
    assert stats.loss is None and stats[0].gradient is None
    with pytest.raises(ValueError, match="pass labels y"):
        stats[0].values("gradient")
    with pytest.raises(ValueError, match="kind must be one of"):
        stats[0].values("activations")
    with pytest.raises(ValueError, match="no modules of the types"):
        layer_statistics(nn.Sequential(nn.Flatten()), x)
    with pytest.raises(ValueError, match="one entry per example"):
        layer_statistics(model, x, torch.zeros(3, dtype=torch.long))


def test_inplace_relu_does_not_overwrite_the_recorded_linear_output():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(inplace=True), nn.Linear(16, 3))
    reference = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    reference.load_state_dict(model.state_dict())
    x, y = _batch()
    stats = layer_statistics(model, x, y)
    assert (stats["0"].activation < 0).any()  # pre-activation, not the ReLU output
    manual = _manual(reference, x, y)
    for record, out in zip(stats, manual, strict=True):
        torch.testing.assert_close(record.activation, out.detach())
        torch.testing.assert_close(record.gradient, out.grad)


def test_conv_net_select_std_table_and_shared_module():
    torch.manual_seed(4)
    model = tl.small_cnn(1, 10, width=4, image_size=8)
    x = torch.randn(5, 1, 8, 8)
    stats = layer_statistics(model, x, torch.arange(5))
    assert [r.module_type for r in stats] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Linear"]
    relu = stats.select("ReLU")
    assert isinstance(relu, LayerStatistics) and relu.labels == ["1: ReLU", "2: ReLU"]
    assert np.allclose(relu.std(), [r.activation.std(unbiased=False) for r in relu])
    assert relu.std().shape == (2,) and (stats.select(nn.Conv2d).mean("weight_gradient") != 0).all()
    table = stats.table()
    assert list(table.index) == stats.labels and "gradient std" in table.columns
    with pytest.raises(ValueError, match="no layers of type"):
        stats.select("Tanh")
    with pytest.raises(KeyError, match="no layer named"):
        stats["nope"]
    shared = nn.Linear(6, 6)
    twice = layer_statistics(nn.Sequential(shared, nn.Tanh(), shared), _batch()[0])
    assert twice.names == ["0", "1", "0#2"]


def test_histograms_and_std_plot():
    torch.manual_seed(5)
    model = tl.mlp(6, [8, 8, 8], 3, activation=nn.Tanh)
    x, y = _batch()
    stats = layer_statistics(model, x, y)
    ax = plot_layer_histograms(stats, types=["Tanh"], title="tanh")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["3", "2", "1"] and ax.get_ylabel() == "Tanh layer"  # first layer on top
    assert ax.get_xlim() == pytest.approx((-1, 1), abs=0.2) and ax.get_title() == "tanh"
    assert sum("σ=" in t.get_text() for t in ax.texts) == 3
    ax = plot_layer_histograms(stats, "gradient")
    low, high = ax.get_xlim()
    assert low == pytest.approx(-high) and "∂L" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "1: Linear 6→8" and labels[-2] == "2: Tanh"  # mixed types: full labels
    with pytest.raises(ValueError, match="pass labels y"):
        plot_layer_histograms(layer_statistics(model, x), "gradient")
    ax = plot_layer_std({"tanh": [stats, layer_statistics(model, x + 0.1, y)]}, types=["Tanh"])
    (line,) = ax.get_lines()
    assert line.get_label() == "tanh (2 seeds)" and len(line.get_xdata()) == 3
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "layer (depth)"
