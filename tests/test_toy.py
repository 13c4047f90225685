"""trainlab.toy: test functions, the surface registry and the 2-D optimizer driver."""

import numpy as np
import pytest
import torch

from trainlab.toy import SURFACES, bumpy, get_surface, optimize_2d, ravine, rosenbrock


def test_functions_are_zero_at_their_minimum_and_broadcast():
    assert ravine()(torch.zeros(2)).item() == 0
    assert rosenbrock()(torch.tensor([1.0, 1.0])).item() == 0
    assert bumpy()(torch.zeros(2)).item() == 0
    grid = torch.zeros(4, 5, 2)
    assert ravine()(grid).shape == (4, 5)


def test_registry_surfaces_are_consistent():
    for name, s in SURFACES.items():
        assert s.name == name
        value_at_min = s.f(torch.tensor(s.minimum, dtype=torch.float64)).item()
        value_at_start = s.f(torch.tensor(s.start, dtype=torch.float64)).item()
        assert value_at_min < value_at_start
        assert s.xlim[0] < s.start[0] < s.xlim[1] and s.ylim[0] < s.start[1] < s.ylim[1]


def test_get_surface_unknown_name_is_a_clear_value_error():
    assert get_surface("ravine") is SURFACES["ravine"]
    with pytest.raises(ValueError, match="Unknown surface 'valley'.*ravine"):
        get_surface("valley")


def test_optimize_2d_plain_gd_on_quadratic_matches_closed_form():
    lr, steps = 0.04, 10
    path, losses = optimize_2d(ravine(1.0, 20.0), lambda p: torch.optim.SGD(p, lr=lr), (1.0, 1.0), steps)
    factors = np.array([1 - lr * 1.0, 1 - lr * 20.0])
    np.testing.assert_allclose(path[-1], factors**steps, rtol=1e-12)
    assert path.shape == (steps + 1, 2) and losses.shape == (steps + 1,)


def test_optimize_2d_rejects_zero_steps():
    with pytest.raises(ValueError, match="steps"):
        optimize_2d(ravine(), lambda p: torch.optim.SGD(p, lr=0.1), (1.0, 1.0), 0)
