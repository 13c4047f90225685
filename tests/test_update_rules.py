"""trainlab.update_rules: the scratch-vs-torch.optim check catches real bugs, and the batched 2-D runner."""

import functools

import numpy as np
import pytest
import torch

from trainlab.toy import get_surface, optimize_2d
from trainlab.update_rules import (
    max_gap_to_torch,
    noisy_quadratic,
    optimize_2d_batch,
    scratch_trajectory,
    torch_trajectory,
)


def sgd(theta, g, s, lr=1e-3, momentum=0.0):
    if momentum:
        s["buf"] = g = momentum * s.get("buf", 0) + g
    return theta - lr * g


def adam(theta, g, s, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False,
         eps_inside=False, bias_correction=True):
    b1, b2 = betas
    s["t"] = t = s.get("t", 0) + 1
    if decoupled:
        theta = theta * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * theta
    s["m"] = m = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = v = b2 * s.get("v", 0) + (1 - b2) * g * g
    c1, c2 = (1 - b1**t, 1 - b2**t) if bias_correction else (1.0, 1.0)
    m_hat, v_hat = m / c1, v / c2
    denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
    return theta - lr * m_hat / denom


def test_correct_rules_match_torch_to_float64_rounding():
    assert max_gap_to_torch(sgd, torch.optim.SGD, lr=1e-2) < 1e-13
    assert max_gap_to_torch(sgd, torch.optim.SGD, lr=1e-2, momentum=0.9) < 1e-13
    assert max_gap_to_torch(adam, torch.optim.Adam, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1) < 1e-13
    adamw = functools.partial(adam, decoupled=True)
    assert max_gap_to_torch(adamw, torch.optim.AdamW, lr=1e-2, weight_decay=0.1) < 1e-13


@pytest.mark.parametrize("bug", [
    dict(eps_inside=True),              # the lecture-notes form sqrt(v + eps)
    dict(bias_correction=False),
    dict(decoupled=True),               # AdamW's rule checked against Adam's class
])
def test_buggy_adam_variants_are_caught(bug):
    buggy = functools.partial(adam, **bug)
    assert max_gap_to_torch(buggy, torch.optim.Adam, lr=1e-2, weight_decay=0.1) > 1e-9


def test_wrong_momentum_convention_is_caught():
    def damped(theta, g, s, lr=1e-3, momentum=0.0):  # EMA form: (1 - ρ) g
        s["buf"] = b = momentum * s.get("buf", 0) + (1 - momentum) * g
        return theta - lr * b

    assert max_gap_to_torch(damped, torch.optim.SGD, lr=1e-2, momentum=0.9) > 1e-6


def test_noisy_quadratic_is_deterministic_and_spans_scales():
    grad = noisy_quadratic(seed=3)
    theta = torch.ones(8, dtype=torch.float64)
    torch.testing.assert_close(grad(theta, 5), grad(theta, 5), rtol=0, atol=0)
    assert not torch.equal(grad(theta, 5), grad(theta, 6))
    noise_only = grad(torch.zeros(8, dtype=torch.float64), 1).abs()
    assert noise_only.min() < 1e-5 < noise_only.max()
    with pytest.raises(ValueError, match="dim"):
        noisy_quadratic(dim=0)


def test_trajectories_have_the_right_shape_and_check_arguments():
    grad, theta0 = noisy_quadratic(dim=3), torch.ones(3, dtype=torch.float64)
    path = scratch_trajectory(sgd, grad, theta0, 7, lr=0.005)
    assert path.shape == (8, 3) and torch.equal(path[0], theta0)
    torch_path = torch_trajectory(lambda p: torch.optim.SGD(p, lr=0.005), grad, theta0, 7)
    torch.testing.assert_close(path, torch_path, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="steps"):
        scratch_trajectory(sgd, grad, theta0, 0, lr=0.1)
    with pytest.raises(ValueError, match="float64"):
        max_gap_to_torch(sgd, torch.optim.SGD, theta0=torch.ones(8), lr=0.1)
    with pytest.raises(ValueError, match="diverged"):
        max_gap_to_torch(sgd, torch.optim.SGD, lr=1e3)


def test_batch_runner_matches_optimize_2d_row_by_row():
    s = get_surface("rosenbrock")
    lrs = [1e-4, 1e-3, 1e-1]
    paths, losses = optimize_2d_batch(s.f, adam, s.start, 40, lrs, betas=(0.9, 0.99))
    assert paths.shape == (3, 41, 2) and losses.shape == (3, 41)
    for row, lr in enumerate(lrs):
        ref_path, ref_losses = optimize_2d(s.f, lambda p, lr=lr: torch.optim.Adam(p, lr=lr, betas=(0.9, 0.99)),
                                           s.start, 40)
        np.testing.assert_allclose(paths[row], ref_path, rtol=0, atol=1e-12)
        np.testing.assert_allclose(losses[row], ref_losses, rtol=1e-12)


def test_batch_runner_keeps_divergence_and_rejects_empty_grids():
    s = get_surface("ravine")
    _, losses = optimize_2d_batch(s.f, sgd, s.start, 30, [0.01, 0.5])
    assert np.isfinite(losses[0]).all() and losses[0, -1] < losses[0, 0]
    assert losses[1, -1] > losses[1, 0]  # 0.5 > 2/20: diverges, and the row shows it
    with pytest.raises(ValueError, match="empty"):
        optimize_2d_batch(s.f, sgd, s.start, 5, [])
