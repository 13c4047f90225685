"""trainlab.sweeps: learning-rate grids over seeds and the width of the good range."""

import math

import numpy as np
import pytest

from trainlab.sweeps import lr_sweep, tolerance_range

LRS = np.geomspace(1e-4, 1, 9)  # half-decade grid


def test_lr_sweep_table_shape_and_seeding():
    import torch

    table = lr_sweep(lambda lr, seed: lr + torch.rand(()).item(), LRS[:3], seeds=[0, 1])
    assert table.shape == (3, 2)
    again = lr_sweep(lambda lr, seed: lr + torch.rand(()).item(), LRS[:3], seeds=[0, 1])
    np.testing.assert_array_equal(table, again)  # each run is seeded, so the table is reproducible
    assert table[0, 0] != table[0, 1]
    pairs = lr_sweep(lambda lr, seed: (lr, 2 * lr), LRS[:2], seeds=[0, 1, 2])
    assert pairs.shape == (2, 3, 2)
    np.testing.assert_allclose(pairs[:, 0, 1], 2 * LRS[:2])


def test_lr_sweep_rejects_bad_input():
    with pytest.raises(ValueError, match="seed"):
        lr_sweep(lambda lr, seed: lr, LRS, seeds=[])
    with pytest.raises(ValueError, match="sorted"):
        lr_sweep(lambda lr, seed: lr, LRS[::-1], seeds=[0])
    with pytest.raises(ValueError, match="positive"):
        lr_sweep(lambda lr, seed: lr, [0.0, 1.0], seeds=[0])
    with pytest.raises(ValueError, match="fixed-length"):
        lr_sweep(lambda lr, seed: [lr] * (1 + seed), LRS[:2], seeds=[0, 1])


def test_tolerance_range_of_a_triangle_is_exact():
    # accuracy = 0.9 - 0.1 * |log10(lr) + 2|: best at 1e-2; within 0.05 for |Δ log10 lr| <= 0.5
    acc = 0.9 - 0.1 * np.abs(np.log10(LRS) + 2)
    r = tolerance_range(LRS, acc, tolerance=0.05)
    assert r.best_lr == pytest.approx(1e-2) and r.best_value == pytest.approx(0.9)
    assert r.low == pytest.approx(10**-2.5) and r.high == pytest.approx(10**-1.5)
    assert r.decades == pytest.approx(1.0) and not r.clipped
    # interpolation: a tolerance of 0.075 gives 1.5 decades, between grid points
    assert tolerance_range(LRS, acc, tolerance=0.075).decades == pytest.approx(1.5)


def test_tolerance_range_for_losses_relative_and_seed_tables():
    loss = 0.2 + 0.1 * (np.log10(LRS) + 2) ** 2
    r = tolerance_range(LRS, loss, tolerance=0.5, relative=True, higher_is_better=False)
    # within 1.5 × 0.2 = 0.3: (log10 lr + 2)^2 <= 1, i.e. one decade each side
    assert r.best_lr == pytest.approx(1e-2)
    assert r.decades == pytest.approx(2.0)
    table = np.stack([loss, loss + 0.0], axis=1)
    assert tolerance_range(LRS, table, tolerance=0.5, relative=True, higher_is_better=False).decades == \
        pytest.approx(2.0)


def test_nan_diverged_runs_end_the_range_and_edges_are_flagged():
    acc = np.array([0.5, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, np.nan])
    r = tolerance_range(LRS, acc, tolerance=0.05)
    assert r.high == pytest.approx(LRS[7]) and not r.clipped  # stops before the NaN point
    table = np.tile(acc[:, None], (1, 3))
    table[7, 1] = np.nan  # one diverged seed spoils that learning rate
    assert tolerance_range(LRS, table, tolerance=0.05).high == pytest.approx(LRS[6])
    flat = np.full(len(LRS), 0.9)
    r = tolerance_range(LRS, flat, tolerance=0.01)
    assert r.clipped and math.isclose(r.decades, 4.0)


def test_tolerance_range_rejects_bad_input():
    with pytest.raises(ValueError, match="two"):
        tolerance_range([1e-3], [0.5], tolerance=0.1)
    with pytest.raises(ValueError, match="values"):
        tolerance_range(LRS, np.ones(3), tolerance=0.1)
    with pytest.raises(ValueError, match="NaN"):
        tolerance_range(LRS, np.full(len(LRS), np.nan), tolerance=0.1)
    with pytest.raises(ValueError, match="tolerance"):
        tolerance_range(LRS, np.ones(len(LRS)), tolerance=-1)
