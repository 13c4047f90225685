"""trainlab.widgets: the optimizer playground, without a browser."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from trainlab.toy import get_surface
from trainlab.widgets import OPTIMIZERS, draw_playground, optimizer_playground, run_playground


def test_run_playground_shapes_and_start():
    path, losses = run_playground("ravine", "SGD", lr=0.05, momentum=0.0, steps=20)
    assert path.shape == (21, 2) and losses.shape == (21,)
    np.testing.assert_array_equal(path[0], get_surface("ravine").start)
    assert losses[-1] < losses[0]


def test_momentum_changes_the_path_and_nesterov_differs_from_heavy_ball():
    sgd, _ = run_playground("ravine", "SGD", 0.02, 0.8, 30)
    heavy, _ = run_playground("ravine", "momentum", 0.02, 0.8, 30)
    nesterov, _ = run_playground("ravine", "Nesterov", 0.02, 0.8, 30)
    assert not np.allclose(sgd, heavy) and not np.allclose(heavy, nesterov)
    # the SGD entry ignores the momentum slider
    np.testing.assert_array_equal(sgd, run_playground("ravine", "SGD", 0.02, 0.0, 30)[0])


def test_every_optimizer_runs_on_every_surface():
    for surface in ("ravine", "rosenbrock", "bumpy"):
        for optimizer in OPTIMIZERS:
            path, losses = run_playground(surface, optimizer, 1e-3, 0.5, 5)
            assert np.isfinite(path).all() and np.isfinite(losses).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"surface": "valley"}, "Unknown surface 'valley'"),
        ({"optimizer": "adamw"}, "Unknown optimizer 'adamw'"),
        ({"lr": 0.0}, "lr must be"),
        ({"lr": float("nan")}, "lr must be"),
        ({"momentum": 1.0}, "momentum must be"),
        ({"steps": 0}, "steps must be"),
        ({"steps": 2.5}, "steps must be"),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs, match):
    args = {"surface": "ravine", "optimizer": "SGD", "lr": 0.01, "momentum": 0.0, "steps": 5} | kwargs
    with pytest.raises(ValueError, match=match):
        run_playground(**args)
    with pytest.raises(ValueError, match=match):
        draw_playground(**args)


def test_draw_playground_returns_a_labelled_figure_and_reports_divergence():
    fig = draw_playground("ravine", "SGD", 0.05, 0.0, 10)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and "ravine" in ax.get_title()
    diverged = draw_playground("ravine", "SGD", 0.2, 0.0, 50)  # 1 - 0.2·20 = -3: blows up
    assert "diverged" in diverged.axes[0].get_title()


def test_widget_redraws_when_a_control_changes():
    box = optimizer_playground(surface="ravine", optimizer="SGD", lr=0.02, momentum=0.0, steps=20)
    assert box.redraws == 1 and len(box.output.outputs) == 1
    assert "image/png" in box.output.outputs[0]["data"]
    first_figure, first_path = box.figure, box.path.copy()
    box.controls["optimizer"].value = "momentum"
    box.controls["momentum"].value = 0.8
    assert box.redraws == 3 and box.figure is not first_figure
    assert not np.allclose(box.path, first_path)
    assert len(box.output.outputs) == 1  # replaced, not appended
    box.controls["steps"].value = 40
    assert box.path.shape == (41, 2)
    box.controls["surface"].value = "rosenbrock"
    np.testing.assert_array_equal(box.path[0], get_surface("rosenbrock").start)


def test_widget_rejects_bad_initial_values():
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizer_playground(optimizer="LBFGS")
