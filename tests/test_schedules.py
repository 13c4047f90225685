"""trainlab.schedules: lr_trace reproduces what a scheduler really sets, step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.schedules import lr_trace, robbins_monro_partial_sums

sched = torch.optim.lr_scheduler


def test_step_lr_trace_has_the_rate_of_each_step():
    rates = lr_trace(lambda o: sched.StepLR(o, step_size=3, gamma=0.1), 7, lr=0.5)
    np.testing.assert_allclose(rates, [0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005])


def test_exponential_and_one_over_t_follow_their_formulas():
    t = np.arange(50)
    np.testing.assert_allclose(lr_trace(lambda o: sched.ExponentialLR(o, gamma=0.9), 50, lr=2.0), 2.0 * 0.9**t)
    one_over_t = lr_trace(lambda o: sched.LambdaLR(o, lambda s: 1 / (1 + 0.5 * s)), 50, lr=0.3)
    np.testing.assert_allclose(one_over_t, 0.3 / (1 + 0.5 * t))


def test_warmup_then_cosine():
    total, warm = 100, 10
    rates = lr_trace(
        lambda o: sched.SequentialLR(
            o, [sched.LinearLR(o, start_factor=0.1, total_iters=warm), sched.CosineAnnealingLR(o, T_max=total - warm)],
            milestones=[warm]),
        total, lr=1.0)
    assert rates[0] == pytest.approx(0.1)
    assert np.all(np.diff(rates[:warm]) > 0)  # linear ramp up
    assert rates[warm] == pytest.approx(1.0)  # peak right after warmup
    assert np.all(np.diff(rates[warm:]) < 0)  # cosine decay
    mid = warm + (total - warm) // 2
    assert rates[mid] == pytest.approx(0.5 * (1 + math.cos(math.pi * (mid - warm) / (total - warm))), rel=1e-6)


def test_trace_matches_a_real_training_loop():
    make = lambda o: sched.StepLR(o, step_size=4, gamma=0.5)  # noqa: E731
    param = torch.ones(3, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.8)
    scheduler = make(opt)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        param.sum().backward()
        opt.step()
        opt.zero_grad()
        scheduler.step()
    np.testing.assert_allclose(lr_trace(make, 12, lr=0.8), seen)


def test_plateau_needs_metrics_and_halves_on_plateau():
    with pytest.raises(ValueError, match="metrics"):
        lr_trace(lambda o: sched.ReduceLROnPlateau(o), 5)
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    rates = lr_trace(lambda o: sched.ReduceLROnPlateau(o, factor=0.5, patience=1), len(metrics), lr=1.0,
                     metrics=metrics)
    # improvement at steps 0-1; two non-improving values (steps 2, 3) exceed patience=1 -> halved from step 4
    np.testing.assert_allclose(rates, [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25])


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        lr_trace(lambda o: sched.StepLR(o, 1), steps)


def test_metrics_rejected_for_other_schedulers():
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lr_trace(lambda o: sched.StepLR(o, 1), 3, metrics=[1, 2, 3])


def test_robbins_monro_partial_sums():
    sums, squares = robbins_monro_partial_sums(1.0 / np.arange(1, 10_001))
    assert sums[-1] == pytest.approx(np.log(10_000) + 0.5772, rel=1e-3)  # harmonic: grows without bound
    assert squares[-1] == pytest.approx(np.pi**2 / 6, rel=1e-3)  # converges
    with pytest.raises(ValueError):
        robbins_monro_partial_sums([0.1, -0.1])


def test_warmup_cosine_follows_its_documented_formula():
    from trainlab.schedules import warmup_cosine

    total, warm, a, lr = 60, 8, 0.1, 0.3
    s = np.arange(total)
    formula = np.where(s < warm, lr * (a + (1 - a) * s / warm),
                       lr / 2 * (1 + np.cos(np.pi * (s - warm) / (total - warm))))
    rates = lr_trace(lambda o: warmup_cosine(o, total, warm, start_factor=a), total, lr=lr)
    np.testing.assert_allclose(rates, formula, atol=1e-12)
    # A cosine over the whole run (no offset) is a different schedule: the offset matters.
    assert np.abs(rates[warm:] - lr / 2 * (1 + np.cos(np.pi * s[warm:] / total))).max() > 0.01
    for bad in [dict(total_steps=10, warmup_steps=0), dict(total_steps=10, warmup_steps=10)]:
        with pytest.raises(ValueError, match="warmup_steps"):
            warmup_cosine(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), **bad)
    with pytest.raises(ValueError, match="start_factor"):
        warmup_cosine(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 10, 2, start_factor=0)
