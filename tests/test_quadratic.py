"""trainlab.quadratic: companion matrices, closed-form rates, stability limits, optimal tunings, noise."""

import numpy as np
import pytest
import torch
from scipy.linalg import solve_discrete_lyapunov

from trainlab import quadratic as quad
from trainlab.toy import optimize_2d, ravine

RNG = np.random.default_rng(0)
LR = RNG.uniform(0.0, 0.3, 5000)
RHO = RNG.uniform(0.0, 0.999, 5000)
H = RNG.uniform(0.01, 30.0, 5000)
LIMITS = {  # the stability limits of γh the chapter states
    "gd": lambda rho: 2 + 0 * rho,
    "heavy_ball": lambda rho: 2 * (1 + rho),
    "nesterov": lambda rho: (2 + 2 * rho) / (1 + 2 * rho),
}


@pytest.mark.parametrize("method", quad.METHODS)
def test_closed_form_rate_is_the_numerical_spectral_radius(method):
    numeric = quad.spectral_radius(quad.companion_matrix(method, LR, RHO, H))
    np.testing.assert_allclose(quad.rate(method, LR, RHO, H), numeric, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", quad.METHODS)
def test_stable_exactly_below_the_stated_limit(method):
    numeric = quad.spectral_radius(quad.companion_matrix(method, LR, RHO, H))
    limit = LIMITS[method](RHO)
    np.testing.assert_allclose(quad.stability_limit(method, RHO), limit)
    assert np.array_equal(numeric < 1, LR * H < limit)


@pytest.mark.parametrize(
    "buggy",
    [
        lambda lr, rho, h: np.sqrt(rho) + 0 * lr * h,  # complex case only
        lambda lr, rho, h: np.abs(1 + rho - lr * h) / 2 + np.sqrt(rho) / 2,  # no discriminant
        lambda lr, rho, h: np.maximum(np.abs(1 - lr * h / (1 - rho)), np.sqrt(rho)),  # "effective-rate" folklore
    ],
)
def test_the_eigenvalue_check_catches_wrong_closed_forms(buggy):
    numeric = quad.spectral_radius(quad.companion_matrix("heavy_ball", LR, RHO, H))
    assert not np.allclose(buggy(LR, RHO, H), numeric, rtol=1e-6)


def test_wrong_stability_rule_from_the_effective_rate_is_refuted():
    # "γ/(1−ρ)·h < 2" is not the heavy ball's limit: plenty of settings violate it and still converge
    numeric = quad.spectral_radius(quad.companion_matrix("heavy_ball", LR, RHO, H))
    folklore_unstable = LR / (1 - RHO) * H >= 2
    assert np.any(folklore_unstable & (numeric < 1))


@pytest.mark.parametrize("method", ["heavy_ball", "nesterov"])
def test_companion_matrix_reproduces_torch_optim_sgd(method):
    h, lr, rho, steps = 7.0, 0.05, 0.8, 30
    path, _ = optimize_2d(
        lambda theta: 0.5 * h * theta[..., 0] ** 2 + 0 * theta[..., 1],
        lambda p: torch.optim.SGD(p, lr=lr, momentum=rho, nesterov=method == "nesterov"),
        (1.0, 0.0),
        steps,
    )
    x = path[:, 0]
    M = quad.companion_matrix(method, lr, rho, h)
    state = np.array([x[1], x[0]])  # (x_1, x_0): the recursion holds from t = 1 on
    for t in range(1, steps):
        state = M @ state
        assert state[0] == pytest.approx(x[t + 1], abs=1e-12)


@pytest.mark.parametrize("kappa", [1.0, 2.0, 20.0, 1e3])
def test_optimal_tunings_match_a_grid_search_and_rank_heavy_ball_first(kappa):
    h_min, h_max = 0.5, 0.5 * kappa
    gd, hb = quad.optimal_gd(h_min, h_max), quad.optimal_heavy_ball(h_min, h_max)
    nag = quad.optimal_nesterov(h_min, h_max)
    sk = np.sqrt(kappa)
    assert gd.rate == pytest.approx((kappa - 1) / (kappa + 1), abs=1e-12)
    assert hb.rate == pytest.approx((sk - 1) / (sk + 1), abs=1e-12) and hb.rho == pytest.approx(hb.rate**2)
    assert hb.lr == pytest.approx(4 / (np.sqrt(h_max) + np.sqrt(h_min)) ** 2)
    for t in (gd, hb, nag):  # the tuning achieves its stated rate on both ends of the spectrum
        assert quad.worst_rate(t.method, t.lr, t.rho, [h_min, h_max]) == pytest.approx(t.rate, abs=1e-6)
    if kappa > 1:
        assert hb.rate < nag.rate < gd.rate
        lrs, rhos = np.meshgrid(np.linspace(1e-4, 4 / h_max, 600), np.linspace(0, 0.999, 600))
        for t in (hb, nag):  # no grid point beats the formula, and the grid's best comes close to it
            grid = quad.worst_rate(t.method, lrs, rhos, [h_min, h_max])
            assert t.rate - 1e-9 <= grid.min() <= t.rate + 0.1 * (1 - t.rate)


def test_every_curvature_between_the_ends_converges_at_least_as_fast():
    hb = quad.optimal_heavy_ball(1.0, 20.0)
    inside = quad.rate("heavy_ball", hb.lr, hb.rho, np.linspace(1.0, 20.0, 200))
    assert inside.max() <= hb.rate + 1e-9


def test_tuning_builds_the_matching_torch_optimizer():
    hb = quad.optimal_heavy_ball(1.0, 20.0)
    opt = hb.sgd([torch.zeros(2, requires_grad=True)])
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (hb.lr, hb.rho, False)
    assert quad.optimal_nesterov(1.0, 20.0).sgd([torch.zeros(1, requires_grad=True)]).param_groups[0]["nesterov"]
    assert quad.optimal_gd(1.0, 20.0).sgd([torch.zeros(1, requires_grad=True)]).param_groups[0]["momentum"] == 0


@pytest.mark.parametrize("name", ["gd", "heavy_ball", "nesterov"])
def test_measured_rate_on_the_ravine_matches_the_prediction(name):
    tuning = getattr(quad, f"optimal_{name}")(1.0, 20.0)
    path, _ = optimize_2d(ravine(1.0, 20.0), tuning.sgd, (-9.0, 2.0), 120)
    assert quad.measured_rate(path, start=40) == pytest.approx(tuning.rate, rel=0.02)


def test_measured_rate_of_a_geometric_sequence_and_bad_paths():
    assert quad.measured_rate(3.0 * 0.7 ** np.arange(50)) == pytest.approx(0.7, rel=1e-12)
    with pytest.raises(ValueError, match="diverged"):
        quad.measured_rate(np.array([1.0, 2.0, np.inf, np.nan]))
    with pytest.raises(ValueError, match="window"):
        quad.measured_rate(np.ones(5), start=10)


def test_stationary_variance_matches_lyapunov_and_reduces_to_sgd():
    sigma = 0.7
    for lr, rho, h in [(0.1, 0.0, 1.0), (0.01, 0.9, 1.0), (0.005, 0.9, 20.0), (0.2, 0.5, 5.0)]:
        M = quad.companion_matrix("heavy_ball", lr, rho, h)
        noise = np.array([[(lr * sigma) ** 2, 0.0], [0.0, 0.0]])  # x_{t+1} gets −γξ_t
        exact = solve_discrete_lyapunov(M, noise)[0, 0]
        assert quad.stationary_variance(lr, rho, h, sigma) == pytest.approx(exact, rel=1e-9)
    assert quad.stationary_variance(0.1, 0.0, 3.0) == pytest.approx(0.1 / (3.0 * (2 - 0.3)))
    assert np.isinf(quad.stationary_variance(0.1, 0.5, 40.0))  # γh = 4 > 2(1 + ρ) = 3


def test_equal_effective_rate_gives_equal_noise_in_flat_directions():
    eff = 0.01
    sgd = quad.stationary_variance(eff, 0.0, 0.1)
    for rho in (0.5, 0.9, 0.99):
        assert quad.stationary_variance(eff * (1 - rho), rho, 0.1) == pytest.approx(sgd, rel=0.01)


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="Unknown method 'adam'"):
        quad.rate("adam", 0.1, 0.9, 1.0)
    with pytest.raises(ValueError, match="h_min <= h_max"):
        quad.optimal_heavy_ball(2.0, 1.0)
    with pytest.raises(ValueError, match="h_min"):
        quad.optimal_gd(0.0, 1.0)


@pytest.mark.parametrize("method", quad.METHODS)
def test_worst_rate_over_an_interval_is_attained_at_its_ends(method):
    rng = np.random.default_rng(1)
    for _ in range(300):
        lr, rho = rng.uniform(0, 0.3), rng.uniform(0, 0.999)
        low, high = sorted(rng.uniform(0.01, 30, 2))
        inside = quad.rate(method, lr, rho, np.linspace(low, high, 200)).max()
        assert inside <= quad.worst_rate(method, lr, rho, [low, high]) + 1e-9
