import math

import pytest
import torch
from torch import nn

import trainlab as tl


@pytest.fixture(scope="module")
def digits():
    return tl.load_dataset("digits", flatten=True)


def _model(ds, seed=0):
    tl.seed_everything(seed)
    return tl.mlp(ds.input_dim, [32], ds.num_classes)


def test_fit_learns_and_records_a_complete_history(digits):
    model = _model(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    h = tl.fit(model, opt, digits.train, val=digits.val, epochs=6, batch_size=64)
    steps = math.ceil(len(digits.train) / 64)
    assert h.steps_per_epoch == steps and len(h.step_loss) == 6 * steps and len(h.step_lr) == 6 * steps
    assert h.epoch == [1, 2, 3, 4, 5, 6] and len(h.val_acc) == 6 and len(h.epoch_time) == 6
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.val_acc[-1] > 0.85
    assert 1 <= h.best_epoch <= 6 and h.wall_time > 0
    loss, acc = tl.evaluate(model, digits.val)
    assert loss == pytest.approx(h.val_loss[-1], rel=1e-5) and acc == pytest.approx(h.val_acc[-1])


def test_fit_matches_a_hand_written_loop(digits):
    """fit() is exactly the loop chapter 1 writes by hand: same batches, same updates."""
    ref, model = _model(digits), _model(digits)
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.05)
    for xb, yb in tl.DeviceBatches(digits.train, 50, seed=3):
        loss = nn.functional.cross_entropy(ref(xb), yb)
        opt_ref.zero_grad()
        loss.backward()
        opt_ref.step()
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.05), digits.train, epochs=1, batch_size=50, seed=3)
    for a, b in zip(ref.parameters(), model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_train_loss_is_the_example_weighted_mean_of_step_losses(digits):
    model = _model(digits)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.0), digits.train, epochs=1, batch_size=1000)
    sizes = [1000, len(digits.train) - 1000]
    expected = sum(size * loss for size, loss in zip(sizes, h.step_loss, strict=True)) / len(digits.train)
    assert h.train_loss[0] == pytest.approx(expected)


def test_step_scheduler_and_lr_log(digits):
    model = _model(digits)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.1)
    h = tl.fit(model, opt, digits.train, epochs=1, batch_size=100, scheduler=sched)
    assert h.step_lr[:5] == [1.0] * 5 and h.step_lr[5] == pytest.approx(0.1)


def test_epoch_scheduler_and_reduce_on_plateau(digits):
    model = _model(digits)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    h = tl.fit(model, opt, digits.train, epochs=3, batch_size=500, scheduler=sched, scheduler_interval="epoch")
    assert sorted(set(h.step_lr), reverse=True) == [1.0, 0.5, 0.25]
    model = _model(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # no progress: the plateau is certain
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5, eps=0.0)
    opt.param_groups[0]["lr"] = 1e-12
    tl.fit(model, opt, digits.train, val=digits.val, epochs=3, batch_size=500, scheduler=plateau)
    assert opt.param_groups[0]["lr"] < 1e-12


def test_divergence_stops_training_and_is_flagged(digits):
    model = _model(digits)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=1e6), digits.train, epochs=20, batch_size=32)
    assert h.diverged and len(h.epoch) < 20


def test_early_stopping_restores_the_best_weights(digits):
    model = _model(digits)
    stopper = tl.EarlyStopping(patience=2)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=2.0), digits.train, val=digits.val, epochs=40,
               batch_size=16, callbacks=[stopper])
    assert h.stopped_early and len(h.epoch) < 40
    assert tl.evaluate(model, digits.val)[0] == pytest.approx(min(h.val_loss), rel=1e-5)


def test_callbacks_see_every_step_and_epoch(digits):
    seen = {"steps": 0, "epochs": 0}

    class Counter(tl.Callback):
        def on_step_end(self, state):
            seen["steps"] += 1

        def on_epoch_end(self, state):
            seen["epochs"] += 1
            state.stop = state.epoch == 2

    model = _model(digits)
    h = tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), digits.train, epochs=5, batch_size=500,
               callbacks=[Counter()])
    assert seen == {"steps": 2 * h.steps_per_epoch, "epochs": 2}


def test_grad_clip_bounds_the_update(digits):
    model = _model(digits)
    before = [p.detach().clone() for p in model.parameters()]
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=1.0), digits.train, epochs=1, batch_size=len(digits.train),
           grad_clip=1e-3)
    change = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before, strict=True)))
    assert float(change) <= 1e-3 + 1e-7


def test_compute_grads_hook_replaces_backward(digits):
    calls = []

    def doubled(model, xb, yb):
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        (2 * loss).backward()
        calls.append(1)
        return loss, logits

    a, b = _model(digits), _model(digits)
    tl.fit(a, torch.optim.SGD(a.parameters(), lr=0.05), digits.train, epochs=1, batch_size=100, compute_grads=doubled)
    tl.fit(b, torch.optim.SGD(b.parameters(), lr=0.1), digits.train, epochs=1, batch_size=100)
    assert len(calls) == math.ceil(len(digits.train) / 100)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


def test_clear_errors_for_wrong_model_outputs(digits):
    wrong_classes = tl.mlp(digits.input_dim, [8], 3)
    with pytest.raises(ValueError, match=r"labels go up to \d+ but the model outputs only 3 classes"):
        tl.fit(wrong_classes, torch.optim.SGD(wrong_classes.parameters(), lr=0.1), digits.train, epochs=1,
               batch_size=10)
    flat_output = nn.Sequential(nn.Flatten(), nn.Linear(digits.input_dim, 1), nn.Flatten(0))
    with pytest.raises(ValueError, match=r"logits of shape \(batch, classes\)"):
        tl.fit(flat_output, torch.optim.SGD(flat_output.parameters(), lr=0.1), digits.train, epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        tl.fit(wrong_classes, torch.optim.SGD(wrong_classes.parameters(), lr=0.1), digits.train, epochs=0,
               batch_size=10)


def test_evaluate_restores_training_mode(digits):
    model = tl.mlp(digits.input_dim, [8], 10, dropout=0.5)
    model.train()
    tl.evaluate(model, digits.val)
    assert model.training


def test_models_shapes():
    cnn = tl.small_cnn(1, 10, width=4, image_size=28, batch_norm=True)
    assert cnn(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    net = tl.mlp(64, [16, 16], 10, batch_norm=True, dropout=0.1)
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert tl.count_parameters(tl.mlp(4, [3], 2)) == 4 * 3 + 3 + 3 * 2 + 2


def test_live_plot_redraws_each_epoch_outside_the_book_build(digits, monkeypatch):
    from trainlab import train as train_module

    redraws = []
    original = train_module._LivePlot.update

    def spy(self, history):
        original(self, history)
        redraws.append([line.get_label() for line in self.ax.get_lines()])

    monkeypatch.setattr(train_module._LivePlot, "update", spy)
    model = _model(digits)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tl.fit(model, opt, digits.train, val=digits.val, epochs=2, batch_size=500, live_plot=True)
    assert redraws == []  # the book build (TRAINLAB_BOOK_BUILD=1 in tests) never draws live
    monkeypatch.setenv("TRAINLAB_BOOK_BUILD", "0")
    tl.fit(model, opt, digits.train, val=digits.val, epochs=2, batch_size=500, live_plot=True, progress=False)
    assert redraws == [["train", "validation"], ["train", "validation"]]
