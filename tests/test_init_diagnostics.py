"""trainlab.init (schemes, formulas, signal prediction), trainlab.sanity (gradient checks and sanity checks),
diagnostics.GradientNorms and the plots chapter 8 adds (plot_layer_histogram_grid, plot_layer_traces)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import trainlab as tl  # noqa: E402
from trainlab import sanity  # noqa: E402
from trainlab.diagnostics import GradientNorms, UpdateRatio, layer_statistics  # noqa: E402
from trainlab.init import (  # noqa: E402
    SCHEMES,
    fans,
    gain,
    init_,
    init_std,
    mlp_shapes,
    predict_signal,
)
from trainlab.plots import plot_layer_histogram_grid, plot_layer_traces  # noqa: E402


@pytest.mark.parametrize("name,param", [("linear", None), ("tanh", None), ("relu", None), ("sigmoid", None),
                                        ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_gain_matches_torch(name, param):
    assert gain(name, param) == pytest.approx(nn.init.calculate_gain(name, param))


def test_fans_of_linear_and_conv():
    assert fans(torch.empty(3, 5)) == (5, 3)
    assert fans(torch.empty(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fans(torch.empty(4))


def test_init_std_formulas():
    assert init_std("xavier_normal", 100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert init_std("kaiming_normal", 100, 300, gain=math.sqrt(2)) == pytest.approx(math.sqrt(2 / 100))
    assert init_std("kaiming_normal", 100, 300, gain=1, mode="fan_out") == pytest.approx(1 / math.sqrt(300))
    assert init_std("default", 100, 300) * math.sqrt(3) == pytest.approx(1 / math.sqrt(100))
    assert init_std("lecun_normal", 100, 300) == pytest.approx(0.1)
    assert init_std("zero", 10, 10) == 0.0
    with pytest.raises(ValueError, match="unknown scheme"):
        init_std("glorot", 1, 1)
    with pytest.raises(ValueError, match="needs std"):
        init_std("normal", 1, 1)
    with pytest.raises(ValueError, match="mode"):
        init_std("kaiming_normal", 1, 1, mode="fan_avg")


@pytest.mark.parametrize("scheme,kw,nonlin", [
    ("xavier_uniform", {}, None), ("xavier_normal", {"gain": 5 / 3}, None),
    ("kaiming_uniform", {}, "relu"), ("kaiming_normal", {"mode": "fan_out"}, "relu"),
    ("kaiming_normal", {"gain": 1.0}, None), ("kaiming_uniform", {"gain": 3.0}, None),
    ("normal", {"std": 0.02}, None), ("uniform", {"std": 0.02}, None), ("lecun_normal", {}, None),
])
def test_init_draws_have_the_formula_std(scheme, kw, nonlin):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(600, 500), nn.ReLU(), nn.Linear(500, 400))
    init_(model, scheme, **kw)
    g = kw.get("gain", math.sqrt(2) if nonlin == "relu" else 1.0)
    for layer in (model[0], model[2]):
        std = init_std(scheme, *fans(layer.weight), std=kw.get("std"), gain=g, mode=kw.get("mode", "fan_in"))
        w = layer.weight.detach().double()
        assert float(w.std()) == pytest.approx(std, rel=0.01)
        assert torch.all(layer.bias == 0)
        if "uniform" in scheme:
            assert float(w.abs().max()) <= math.sqrt(3) * std * (1 + 1e-6)


def test_init_zero_constant_default_and_bias_none():
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    init_(model, "constant", value=0.5, bias=None)
    assert torch.all(model[0].weight == 0.5) and not torch.all(model[0].bias == 0)
    init_(model, "zero")
    assert all(torch.all(p == 0) for p in model.parameters())
    init_(model, "default")
    assert float(model[0].weight.detach().abs().max()) <= 1 / math.sqrt(4)
    assert set(SCHEMES) >= {"zero", "xavier_normal", "kaiming_normal", "default"}
    with pytest.raises(ValueError, match="no nn.Linear"):
        init_(nn.Sequential(nn.Tanh()), "zero")


def test_predict_signal_closed_forms():
    shapes = [(100, 50), (50, 50), (50, 10)]
    # ReLU with He: pre-activation variance stays 2·E[x²]·... after the first layer
    he = [math.sqrt(2 / fi) for fi, _ in shapes]
    p = predict_signal(shapes, he, activation="relu", input_second_moment=1.0, output_grad_std=1.0)
    np.testing.assert_allclose(p.activation_std, [math.sqrt(2)] * 3)
    # backward through ReLU with fan-in He: factor fan_out/fan_in · 2 · 1/2 per layer
    np.testing.assert_allclose(p.gradient_std ** 2, [10 / 50 * 50 / 50 * 2 * 0.5 * 2 * 0.5, 10 / 50, 1.0])
    lin = predict_signal(shapes, [0.1] * 3, activation="linear", input_second_moment=2.0)
    np.testing.assert_allclose(lin.activation_std ** 2, [100 * 0.01 * 2, 50 * 0.01 * 2, 50 * 0.01 * 1])
    assert lin.gradient_std is None
    with pytest.raises(ValueError, match="one std per layer"):
        predict_signal(shapes, [0.1], activation="relu", input_second_moment=1.0)
    with pytest.raises(ValueError, match="activation"):
        predict_signal(shapes, [0.1] * 3, activation="gelu", input_second_moment=1.0)


@pytest.mark.parametrize("act,module", [("tanh", nn.Tanh), ("relu", nn.ReLU)])
@pytest.mark.parametrize("std", [0.05, 0.1])
def test_predict_signal_matches_a_wide_network(act, module, std):
    torch.manual_seed(0)
    model = tl.mlp(64, [512] * 4, 10, activation=module)
    init_(model, "normal", std=std)
    x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
    st = layer_statistics(model, x, y).select("Linear")
    p = predict_signal(mlp_shapes(model), [std] * 5, activation=act, input_second_moment=float((x**2).mean()),
                       output_grad_std=st.std("gradient")[-1])
    # hidden layers: 512 units each; the 10-unit output layer's std has ~sqrt(2/10) sampling noise
    np.testing.assert_allclose(st.std("activation")[:-1], p.activation_std[:-1], rtol=0.15)
    np.testing.assert_allclose(st.std("activation")[-1], p.activation_std[-1], rtol=0.5)
    np.testing.assert_allclose(st.std("gradient"), p.gradient_std, rtol=0.2)


def test_predict_signal_tanh_saturated_gradient():
    # σ=1 on width 256: E[tanh'(z)²] for z ~ N(0, q) must be resolved by the quadrature (≈ 4/(3√(2πq)))
    from trainlab.init import _moments

    q = 250.0
    assert _moments("tanh", q)[1] == pytest.approx(4 / 3 / math.sqrt(2 * math.pi * q), rel=0.02)
    assert _moments("tanh", 1e-8)[0] == pytest.approx(1e-8, rel=1e-6)


def test_numerical_gradient_and_relative_error():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    f = lambda v: (v**3).sum()  # noqa: E731
    num = sanity.numerical_gradient(f, x.clone())
    torch.testing.assert_close(num, 3 * x**2, rtol=1e-9, atol=0)
    only = sanity.numerical_gradient(f, x.clone(), index=torch.tensor([1]))
    assert only[0] == 0 and only[2] == 0 and only[1] == pytest.approx(3 * 1.44)
    assert float(sanity.relative_error(torch.tensor([1.0]), torch.tensor([1.1]))) == pytest.approx(0.1 / 1.1)
    assert float(sanity.relative_error(torch.tensor([0.0]), torch.tensor([0.0]))) == 0.0


def test_check_gradients_passes_a_correct_model_and_catches_a_wrong_backward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = torch.randn(6, 5), torch.randint(0, 3, (6,))
    errors = sanity.check_gradients(model, x, y)
    assert set(errors) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert max(errors.values()) < 1e-6
    assert model[0].weight.dtype == torch.float32  # the check works on a copy

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            return z * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3  # should be 2

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(5, 3)

        def forward(self, v):
            return Wrong.apply(self.lin(v))

    assert max(sanity.check_gradients(Bad(), x, y).values()) > 0.1
    with pytest.raises(ValueError, match="per_tensor"):
        sanity.check_gradients(model, x, y, per_tensor=0)


def test_penalized_loss_and_overfit():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(10, 8), torch.randint(0, 3, (10,))
    values = [sanity.penalized_loss(model, x, y, lam) for lam in (0.0, 0.1, 1.0)]
    assert values[0] < values[1] < values[2]
    weights = sum(float((p**2).sum()) for p in model.parameters() if p.ndim >= 2)
    assert values[2] - values[0] == pytest.approx(0.5 * weights, rel=1e-5)
    losses = sanity.overfit(model, x, y, steps=300, lr=1e-2)
    assert len(losses) == 300 and losses[-1] < 1e-2 < losses[0]


def _fit_with(callbacks, steps_per_epoch=4):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(8 * steps_per_epoch, 6), torch.randint(0, 3, (8 * steps_per_epoch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tl.fit(model, opt, (x, y), epochs=2, batch_size=8, callbacks=callbacks, progress=False)
    return model, x, y


def test_gradient_norms_records_each_layer_every_k_steps():
    norms = GradientNorms(every=2)
    _fit_with([norms])
    assert norms.steps == [2, 4, 6, 8]
    assert set(norms.norms) == {"0.weight", "2.weight"}
    assert all(len(v) == 4 and all(n > 0 for n in v) for v in norms.norms.values())
    assert norms.as_array("0.weight").shape == (4,)
    with pytest.raises(KeyError):
        norms.as_array("0.bias")
    with pytest.raises(ValueError):
        GradientNorms(every=0)
    with pytest.raises(ValueError, match="no parameters named"):
        _fit_with([GradientNorms(names=["nope"])])


def test_gradient_norms_equal_the_last_step_gradient():
    class Last(GradientNorms):
        def on_step_end(self, state):
            super().on_step_end(state)
            self.grad = state.model[0].weight.grad.norm().item()

    cb = Last(every=1, names=["0.weight"])
    _fit_with([cb])
    assert set(cb.norms) == {"0.weight"} and cb.norms["0.weight"][-1] == pytest.approx(cb.grad)


def test_plot_layer_histogram_grid_and_traces():
    torch.manual_seed(0)
    model = tl.mlp(6, [8, 8], 3, activation=nn.Tanh)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    stats = layer_statistics(model, x, y)
    zero = layer_statistics(init_(tl.mlp(6, [8, 8], 3, activation=nn.Tanh), "zero"), x, y)
    fig = plot_layer_histogram_grid({"default": stats, "zero": zero},
                                    types={"activation": ["Tanh"], "gradient": ["Linear"]},
                                    value_range={"activation": (-1, 1)})
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "default"
    assert fig.axes[0].get_xlim() == (-1, 1)
    plt.close(fig)
    with pytest.raises(ValueError, match="one or two kinds"):
        plot_layer_histogram_grid({"a": stats}, kinds=("activation", "gradient", "weight"))
    ratios, norms = UpdateRatio(), GradientNorms()
    _fit_with([ratios, norms])
    ax = plot_layer_traces(ratios.steps, ratios.ratios, reference=1e-3, ylabel="ratio")
    assert ax.get_yscale() == "log" and len(ax.get_legend_handles_labels()[1]) == 2
    seeds = {k: np.stack([v, v]) for k, v in norms.norms.items()}
    plot_layer_traces(norms.steps, seeds)
    plt.close("all")
    with pytest.raises(ValueError, match="no traces"):
        plot_layer_traces([1], {})
