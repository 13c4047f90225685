"""trainlab.diagnostics.dead_units / SilentUnits: ReLU units that never fire (and so never learn)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab as tl
from trainlab.diagnostics import SilentUnits, dead_units


def _mlp_with_known_units():
    """Linear(2→3) + ReLU: unit 0 never fires, unit 1 always fires, unit 2 fires only when x₀ > 0.5."""
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]))
        model[0].bias.copy_(torch.tensor([-1.0, 1.0, -0.5]))
    return model


def _inputs(n=40, one_firing=True):
    x = torch.zeros(n, 2)
    if one_firing:
        x[n // 2, 0] = 1.0  # the only input on which unit 2 fires
    return x


@pytest.mark.parametrize("batch_size", [1, 7, 4096])
def test_dead_units_counts_a_unit_alive_on_a_single_input_as_alive(batch_size):
    # A wrong version that looks at one batch only (or the last one) calls unit 2 dead for small batches.
    model = _mlp_with_known_units()
    mask = dead_units(model, "1", _inputs(), batch_size=batch_size)
    assert mask.tolist() == [True, False, False]
    assert dead_units(model, "1", _inputs(one_firing=False)).tolist() == [True, False, True]


def test_dead_units_works_on_channels_and_restores_the_mode():
    conv = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
    with torch.no_grad():
        conv[0].weight.fill_(1.0)
        conv[0].bias.copy_(torch.tensor([0.0, -10.0]))
    x = torch.rand(4, 1, 3, 3)
    conv.train()
    assert dead_units(conv, "1", x).tolist() == [False, True]
    assert conv.training
    with pytest.raises(ValueError, match="no module named"):
        dead_units(conv, "7", x)


def test_silent_units_per_epoch_and_consistent_with_dead_units():
    # Unit 2 fires on one training example only: with batches of 4 it is silent in 9 of 10 batches,
    # so a per-batch (instead of per-epoch) record would wrongly call it silent.
    torch.manual_seed(0)
    model = _mlp_with_known_units()
    x = _inputs()
    train = tl.Split(x, torch.randint(0, 2, (len(x),)))
    val = tl.Split(torch.ones(8, 2), torch.zeros(8, dtype=torch.long))  # fires unit 2, but only in evaluation
    silent = SilentUnits("1")
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.01), train, val=val, epochs=3, batch_size=4,
           callbacks=[silent], progress=False)
    assert silent.fractions == pytest.approx([1 / 3] * 3)
    # Plain SGD on the first layer: the silent unit's weights never moved, so it is dead at the end too.
    assert model[0].weight[0].tolist() == [0.0, 0.0] and model[0].bias[0].item() == -1.0
    assert dead_units(model, "1", x).float().mean().item() == pytest.approx(silent.fractions[-1])
    assert not model[1]._forward_hooks  # the hook is removed after training


def test_silent_units_ignores_evaluation_passes():
    model = _mlp_with_known_units()
    x = _inputs(one_firing=False)  # unit 2 never fires on the training data ...
    train = tl.Split(x, torch.zeros(len(x), dtype=torch.long))
    val = tl.Split(torch.ones(4, 2), torch.zeros(4, dtype=torch.long))  # ... but fires on validation
    silent = SilentUnits("1")
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.01), train, val=val, epochs=1, batch_size=8,
           callbacks=[silent], progress=False)
    assert silent.fractions == pytest.approx([2 / 3])


def test_silent_units_unknown_layer():
    model = _mlp_with_known_units()
    train = tl.Split(_inputs(), torch.zeros(40, dtype=torch.long))
    with pytest.raises(ValueError, match="no module named"):
        tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.01), train, epochs=1, batch_size=8,
               callbacks=[SilentUnits("relu")], progress=False)
