"""trainlab.regularize (clean per-epoch metrics, evaluation in a chosen mode, confidence, L2 penalty) and
EarlyStopping's ``monitor``/``best_epoch``, which chapter 4 relies on."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import trainlab as tl
from trainlab.regularize import SplitMetrics, evaluate_in_mode, l2_penalty, max_probabilities, mean_confidence


@pytest.fixture(scope="module")
def digits():
    return tl.load_dataset("digits", flatten=True)


def _model(ds, seed=0, dropout=0.0):
    tl.seed_everything(seed)
    return tl.mlp(ds.input_dim, [32], ds.num_classes, dropout=dropout)


# --- l2_penalty -------------------------------------------------------------------------------------------------

def test_l2_penalty_value_and_gradient():
    params = [torch.randn(3, 4, dtype=torch.float64, requires_grad=True),
              torch.randn(5, dtype=torch.float64, requires_grad=True)]
    lam = 0.3
    penalty = l2_penalty(params, lam)
    expected = lam / 2 * sum(float((p.detach() ** 2).sum()) for p in params)
    assert penalty.item() == pytest.approx(expected, rel=1e-12)
    penalty.backward()
    for p in params:
        torch.testing.assert_close(p.grad, lam * p.detach(), rtol=0, atol=1e-14)


def test_l2_penalty_rejects_bad_input():
    with pytest.raises(ValueError, match=">= 0"):
        l2_penalty([torch.ones(2)], -1.0)
    with pytest.raises(ValueError, match="empty"):
        l2_penalty([], 0.1)


def _sgd_steps(ds, weight_decay=0.0, penalty=None, steps=5):
    net = _model(ds).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=weight_decay)
    x, y = ds.train.x[:64].double(), ds.train.y[:64]
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        if penalty is not None:
            loss = loss + penalty(list(net.parameters()))
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_penalty_equals_sgd_weight_decay_and_a_wrong_factor_does_not(digits):
    lam = 0.05
    reference = _sgd_steps(digits, weight_decay=lam)
    torch.testing.assert_close(_sgd_steps(digits, penalty=lambda ps: l2_penalty(ps, lam)), reference,
                               rtol=0, atol=1e-12)
    # Buggy variant: lam * ||θ||² (no 1/2) is weight_decay = 2 lam, not lam.
    no_half = _sgd_steps(digits, penalty=lambda ps: lam * sum(p.pow(2).sum() for p in ps))
    assert (no_half - reference).abs().max() > 1e-6
    torch.testing.assert_close(no_half, _sgd_steps(digits, weight_decay=2 * lam), rtol=0, atol=1e-12)


# --- SplitMetrics ------------------------------------------------------------------------------------------------

def test_split_metrics_records_clean_metrics_every_epoch(digits):
    model = _model(digits)
    curves = SplitMetrics({"train": digits.train, "val": digits.val})
    smoothed = lambda z, y: F.cross_entropy(z, y, label_smoothing=0.3)  # noqa: E731
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, val=digits.val, epochs=3,
               batch_size=64, loss_fn=smoothed, callbacks=[curves], progress=False)
    assert curves.epoch == [1, 2, 3]
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert len(getattr(curves, name)) == 3
    # Plain cross-entropy, eval mode, final weights: equal to evaluate(); fit's val_loss is the smoothed loss.
    loss, acc = tl.evaluate(model, digits.val)
    assert curves.val_loss[-1] == pytest.approx(loss, rel=1e-6) and curves.val_acc[-1] == pytest.approx(acc)
    assert curves.val_acc == pytest.approx(h.val_acc)
    assert abs(curves.val_loss[-1] - h.val_loss[-1]) > 1e-3
    assert curves.gap("acc") == pytest.approx(np.subtract(curves.train_acc, curves.val_acc))
    assert curves.gap("loss") == pytest.approx(np.subtract(curves.val_loss, curves.train_loss))
    stacked = tl.stack([curves, curves], "val_acc")
    assert stacked.shape == (2, 3)


def test_split_metrics_rejects_bad_names(digits):
    with pytest.raises(ValueError, match="at least one split"):
        SplitMetrics({})
    with pytest.raises(ValueError, match="identifier"):
        SplitMetrics({"my split": digits.val})
    with pytest.raises(ValueError, match="metric"):
        SplitMetrics({"val": digits.val}).gap("f1")


# --- evaluate_in_mode, max_probabilities, mean_confidence ----------------------------------------------------------

def test_evaluate_in_mode_measures_the_train_mode_bug_and_restores_the_mode(digits):
    model = _model(digits, dropout=0.5)
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, epochs=3, batch_size=64,
           progress=False)
    model.train()
    assert evaluate_in_mode(model, digits.val, training=False) == pytest.approx(tl.evaluate(model, digits.val))
    assert model.training
    torch.manual_seed(0)
    first = evaluate_in_mode(model, digits.val, training=True)
    torch.manual_seed(1)
    second = evaluate_in_mode(model, digits.val, training=True)
    assert first != second  # dropout active: random results
    model.eval()
    evaluate_in_mode(model, digits.val, training=True)
    assert not model.training


def test_evaluate_in_mode_is_mode_independent_without_dropout(digits):
    model = _model(digits)
    a = evaluate_in_mode(model, digits.val, training=True)
    b = evaluate_in_mode(model, digits.val, training=False)
    assert a == pytest.approx(b, rel=1e-6)


def test_max_probabilities_and_mean_confidence(digits):
    model = _model(digits, dropout=0.5)
    model.train()  # must be evaluated in eval mode anyway
    top = max_probabilities(model, digits.val, batch_size=50)
    model.eval()
    with torch.no_grad():
        expected = model(digits.val.x).softmax(dim=1).max(dim=1).values
    torch.testing.assert_close(top, expected)
    model.train()
    assert mean_confidence(model, digits.val) == pytest.approx(float(expected.mean()), rel=1e-6)
    assert model.training
    assert 1 / digits.num_classes <= float(top.min()) and float(top.max()) <= 1


# --- EarlyStopping(monitor=..., best_epoch) ---------------------------------------------------------------------------

def test_early_stopping_on_accuracy_restores_the_most_accurate_epoch(digits):
    model = _model(digits)
    stopper = tl.EarlyStopping(patience=5, monitor="val_acc")
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), digits.train, val=digits.val,
               epochs=60, batch_size=16, callbacks=[stopper], progress=False)
    assert h.stopped_early
    best = int(np.argmax(h.val_acc)) + 1  # first epoch with the highest accuracy
    assert best > 1 and best != h.best_epoch  # this run separates the two criteria
    assert stopper.best_epoch == best and stopper.best == pytest.approx(max(h.val_acc))
    assert len(h.epoch) == best + 5
    assert tl.evaluate(model, digits.val)[1] == pytest.approx(max(h.val_acc))


def test_early_stopping_default_still_watches_the_loss(digits):
    model = _model(digits)
    stopper = tl.EarlyStopping(patience=2)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=2.0), digits.train, val=digits.val, epochs=40,
               batch_size=16, callbacks=[stopper], progress=False)
    assert stopper.monitor == "val_loss" and stopper.best_epoch == h.best_epoch
    assert stopper.best == pytest.approx(min(h.val_loss))
    assert tl.evaluate(model, digits.val)[0] == pytest.approx(min(h.val_loss), rel=1e-5)


def test_early_stopping_rejects_an_unknown_monitor():
    with pytest.raises(ValueError, match="monitor"):
        tl.EarlyStopping(monitor="val_f1")


def test_dropout_model_copy_is_unaffected_by_evaluate_in_mode(digits):
    """evaluate_in_mode never changes the weights (no grad, no update)."""
    model = _model(digits, dropout=0.5)
    before = copy.deepcopy(model.state_dict())
    evaluate_in_mode(model, digits.val, training=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert math.isfinite(mean_confidence(model, digits.val))
