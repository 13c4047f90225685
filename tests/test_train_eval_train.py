"""fit(..., eval_train=True): the full training loss at each epoch's end, next to the running mean."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab as tl


@pytest.fixture(scope="module")
def digits():
    return tl.load_dataset("digits", flatten=True)


def _model(ds, seed=0, dropout=0.0):
    tl.seed_everything(seed)
    layers = [nn.Linear(ds.input_dim, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, ds.num_classes)]
    return nn.Sequential(*layers)


def test_default_leaves_the_new_fields_empty(digits):
    model = _model(digits)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, epochs=2, batch_size=64)
    assert h.eval_train_loss == [] and h.eval_train_acc == []
    assert "eval_train_loss" in h.to_dict()


def test_eval_train_is_the_full_training_loss_after_each_epoch(digits):
    model = _model(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = tl.fit(model, opt, digits.train, val=digits.val, epochs=3, batch_size=64, eval_train=True)
    assert len(h.eval_train_loss) == len(h.eval_train_acc) == 3
    loss, acc = tl.evaluate(model, digits.train)
    assert h.eval_train_loss[-1] == pytest.approx(loss, rel=1e-6) and h.eval_train_acc[-1] == pytest.approx(acc)
    # the running mean lags: in the first epoch it averages losses of earlier, worse weights
    assert h.eval_train_loss[0] < h.train_loss[0]


def test_eval_train_equals_the_running_mean_when_nothing_moves(digits):
    model = _model(digits)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.0), digits.train, epochs=1, batch_size=100,
               eval_train=True)
    assert h.eval_train_loss[0] == pytest.approx(h.train_loss[0], rel=1e-5)


def test_eval_train_uses_eval_mode_and_restores_train_mode(digits):
    model = _model(digits, dropout=0.5)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.05), digits.train, epochs=1, batch_size=64,
               eval_train=True)
    assert model.training  # fit leaves the model in training mode
    model.eval()
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(digits.train.x), digits.train.y).item()
    assert h.eval_train_loss[0] == pytest.approx(expected, rel=1e-5)  # deterministic: dropout was off


def test_eval_train_with_a_tuple_and_a_full_batch(digits):
    x, y = digits.train.x[:200], digits.train.y[:200]
    model = _model(digits)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.2), (x, y), epochs=4, batch_size=200,
               eval_train=True)
    # full batch: the step loss is the loss *before* the step, eval_train the loss *after* it
    assert h.eval_train_loss[:-1] == pytest.approx(h.step_loss[1:], rel=1e-5)
