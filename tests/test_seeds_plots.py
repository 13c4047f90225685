import numpy as np
import pytest
import torch

import trainlab as tl
from trainlab import plots, toy
from trainlab.train import History


def test_over_seeds_seeds_each_run():
    draws = tl.over_seeds(lambda seed: torch.randn(1).item(), [0, 1, 0])
    assert draws[0] == draws[2] != draws[1]
    with pytest.raises(ValueError, match="at least one seed"):
        tl.over_seeds(lambda s: s, [])


def test_stack_pads_short_runs_with_nan():
    runs = tl.stack([History(val_loss=[3.0, 2.0, 1.0]), History(val_loss=[4.0])], "val_loss")
    assert runs.shape == (2, 3) and np.isnan(runs[1, 1:]).all()


def test_mean_and_spread_and_format():
    assert tl.mean_and_spread([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert tl.mean_and_spread([5.0]) == (5.0, 0.0)
    assert tl.format_mean_std([0.9, 0.92], digits=1, scale=100) == "91.0 ± 1.4"


def test_seed_band_draws_mean_line_and_spread():
    ax = plots.seed_band(None, np.arange(3), np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]), label="run")
    (line,) = ax.get_lines()
    assert np.allclose(line.get_ydata(), [2.0, 3.0, 4.0]) and line.get_label() == "run (2 seeds)"
    assert len(ax.collections) == 1  # the band
    with pytest.raises(ValueError, match="spread"):
        plots.seed_band(None, [0], np.ones((2, 1)), spread="iqr")


def test_plot_runs_labels_axes_by_metric():
    groups = {"a": [History(step_loss=[3, 2, 1]), History(step_loss=[3, 2, 2])]}
    ax = plots.plot_runs(groups, "step_loss", logy=True)
    assert ax.get_xlabel() == "step" and ax.get_yscale() == "log" and "loss" in ax.get_ylabel()
    ax = plots.plot_train_val(History(train_loss=[2, 1], val_loss=[2.5, 1.5]))
    assert ax.get_xlabel() == "epoch" and len(ax.get_lines()) == 2


def test_plot_surface_with_paths():
    f = toy.ravine(1, 10)
    path, losses = toy.optimize_2d(f, lambda p: torch.optim.SGD(p, lr=0.05), (2.0, 1.0), 50)
    ax = plots.plot_surface(f, xlim=(-3, 3), ylim=(-2, 2), paths={"SGD": path}, minimum=(0, 0))
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    assert losses[-1] < losses[0] and path.shape == (51, 2)
