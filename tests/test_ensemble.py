"""trainlab.ensemble: combination rules, tie rule, disagreement, ECE/reliability, callbacks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import trainlab as tl
from trainlab import ensemble as ens


def _logits(m=3, n=50, c=4, seed=0):
    return torch.randn(m, n, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3


def test_combine_rules_match_definitions():
    z = _logits()
    torch.testing.assert_close(ens.combine(z, "prob"), z.softmax(-1).mean(0))
    torch.testing.assert_close(ens.combine(z, "logit"), z.mean(0).softmax(-1))
    votes = ens.combine(z, "vote")
    for i in range(z.shape[1]):
        expected = torch.bincount(z[:, i].argmax(-1), minlength=z.shape[2]).double() / z.shape[0]
        torch.testing.assert_close(votes[i], expected)
    for method in ens.METHODS:
        torch.testing.assert_close(ens.combine(z, method).sum(1), torch.ones(z.shape[1], dtype=torch.float64))


def test_single_member_all_rules_agree():
    z = _logits(m=1)
    preds = [ens.predict(z, m) for m in ens.METHODS]
    assert all(torch.equal(preds[0], p) for p in preds)
    assert torch.equal(preds[0], z[0].argmax(-1))


def test_logit_averaging_lets_a_member_veto():
    toy = torch.tensor([[[0.0, 3.0, 0.0]], [[0.0, 3.0, 0.0]], [[4.0, -20.0, 0.0]]])
    assert ens.predict(toy, "prob").item() == 1
    assert ens.predict(toy, "vote").item() == 1
    assert ens.predict(toy, "logit").item() == 0


def test_vote_tie_goes_to_highest_mean_probability():
    # two members disagree (a 1-1 tie between classes 0 and 2); member 2 is far more confident
    toy = torch.tensor([[[1.0, 0.9, 0.0]], [[-5.0, 0.0, 6.0]]])
    assert ens.predict(toy, "vote").item() == 2
    # swap the confidence: the tie now goes to class 0
    toy2 = torch.tensor([[[6.0, 0.0, -5.0]], [[0.0, 0.9, 1.0]]])
    assert ens.predict(toy2, "vote").item() == 0
    # a class without votes never wins, even with the highest mean probability
    toy3 = torch.tensor([[[3.0, 2.9, -9.0]], [[-9.0, 2.9, 3.0]]])
    assert ens.predict(toy3, "prob").item() == 1
    assert ens.predict(toy3, "vote").item() in (0, 2)


def test_vote_full_tie_falls_back_to_lowest_index():
    toy = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # symmetric: equal votes and equal mean probabilities
    assert ens.predict(toy, "vote").item() == 0


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="members, examples, classes"):
        ens.combine(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="method must be one of"):
        ens.combine(_logits(), "median")
    with pytest.raises(ValueError, match="at least two members"):
        ens.mean_disagreement(_logits(m=1))
    with pytest.raises(ValueError, match="differ in shape"):
        ens.accuracy(torch.zeros(3), torch.zeros(4))


def test_disagreement_matrix():
    z = torch.zeros(3, 4, 2)
    z[0, :, 0] = 1  # member 0 predicts class 0 everywhere
    z[1, :, 1] = 1  # member 1 predicts class 1 everywhere
    z[2, :2, 0] = 1  # member 2: class 0 on the first half
    z[2, 2:, 1] = 1
    d = ens.disagreement(z)
    np.testing.assert_allclose(d, [[0, 1, 0.5], [1, 0, 0.5], [0.5, 0.5, 0]])
    assert ens.mean_disagreement(z) == pytest.approx((1 + 0.5 + 0.5) / 3)


def _ece_brute_force(probs, y, n_bins):
    """Independent computation: plain Python lists and fractions of the bin width."""
    bins = [[] for _ in range(n_bins)]
    for row, label in zip(probs.tolist(), y.tolist(), strict=True):
        conf = max(row)
        pred = row.index(conf)
        b = max(0, math.ceil(conf * n_bins) - 1)  # (k/n, (k+1)/n] -> k; 0 -> 0
        bins[b].append((conf, pred == label))
    total = 0.0
    for content in bins:
        if content:
            acc = sum(c for _, c in content) / len(content)
            conf = sum(p for p, _ in content) / len(content)
            total += len(content) / len(y) * abs(acc - conf)
    return total


def test_ece_known_answers():
    y = torch.tensor([0] * 6 + [1] * 4)
    probs = torch.tensor([[0.9, 0.1]] * 10, dtype=torch.float64)
    assert ens.expected_calibration_error(probs, y) == pytest.approx(0.3, abs=1e-12)
    # perfect predictions at confidence 1: ECE 0
    assert ens.expected_calibration_error(torch.eye(3, dtype=torch.float64), torch.arange(3)) == 0.0
    # two groups: conf 0.6 right half the time, conf 1.0 always right -> ECE = 0.5 * 0.1
    probs = torch.tensor([[0.6, 0.4]] * 4 + [[1.0, 0.0]] * 4, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 0, 0, 0, 0])
    assert ens.expected_calibration_error(probs, y) == pytest.approx(0.05, abs=1e-12)


def test_ece_calibrated_by_construction_is_small():
    g = torch.Generator().manual_seed(0)
    p = 0.5 + 0.5 * torch.rand(200_000, generator=g, dtype=torch.float64)
    y = (torch.rand(200_000, generator=g, dtype=torch.float64) >= p).long()
    assert ens.expected_calibration_error(torch.stack([p, 1 - p], 1), y) < 0.005


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_brute_force(n_bins):
    z = _logits(m=1, n=400, c=5, seed=3)[0]
    probs = z.softmax(-1)
    y = torch.randint(0, 5, (400,), generator=torch.Generator().manual_seed(1))
    assert ens.expected_calibration_error(probs, y, n_bins) == pytest.approx(_ece_brute_force(probs, y, n_bins),
                                                                           abs=1e-12)


def test_reliability_bins_are_right_closed():
    probs = torch.tensor([[0.5, 0.5], [0.6, 0.4], [0.0, 1.0]], dtype=torch.float64)
    r = ens.reliability(probs, torch.tensor([0, 0, 1]), n_bins=2)
    np.testing.assert_array_equal(r.count, [1, 2])  # 0.5 belongs to (0, 0.5], 0.6 and 1.0 to (0.5, 1]
    assert r.confidence[0] == 0.5 and r.accuracy[1] == 1.0


def test_reliability_empty_bins_are_nan_and_ignored():
    probs = torch.tensor([[0.95, 0.05]] * 3, dtype=torch.float64)
    r = ens.reliability(probs, torch.tensor([0, 0, 1]), n_bins=10)
    assert r.count.sum() == 3 and np.isnan(r.accuracy[0])
    assert r.ece == pytest.approx(abs(2 / 3 - 0.95))


def test_vote_confidence_uses_given_prediction():
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]])
    votes = ens.combine(z, "vote")
    r = ens.reliability(votes, torch.tensor([0]), n_bins=3, pred=ens.predict(z, "vote"))
    assert r.ece == pytest.approx(1 / 3)


def test_nll():
    probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]], dtype=torch.float64)
    assert ens.nll(probs, torch.tensor([0, 1])) == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2)


def _tiny_data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    return tl.Split(x, (x[:, 0] > 0).long())


def test_stack_logits_restores_mode_and_matches_models():
    torch.manual_seed(0)
    models = [tl.mlp(6, [8], 2, norm="batch") for _ in range(3)]
    models[1].eval()
    x = _tiny_data().x
    out = ens.stack_logits(models, x, batch_size=10)
    assert out.shape == (3, 64, 2)
    assert models[0].training and not models[1].training
    with torch.no_grad():
        torch.testing.assert_close(out[2], models[2].eval()(x))


def test_checkpoints_and_models_from_states():
    torch.manual_seed(0)
    model = tl.mlp(6, [8], 2)
    ckpt = ens.Checkpoints(every=2)
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), _tiny_data(), epochs=5, batch_size=16,
           callbacks=[ckpt], progress=False)
    assert ckpt.epochs == [2, 4]
    restored = ens.models_from_states(model, ckpt.states)
    assert not torch.equal(restored[0][1].weight, restored[1][1].weight)  # copies, not references
    assert not torch.equal(restored[1][1].weight, model[1].weight)  # epoch 4 differs from epoch 5
    with pytest.raises(ValueError, match="every"):
        ens.Checkpoints(every=0)


def test_step_averager_is_an_ema_of_every_step():
    torch.manual_seed(0)
    model = tl.mlp(6, [8], 2, norm="batch").double()
    avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    seen = []

    class Record(tl.Callback):
        def on_step_end(self, state):
            seen.append({k: v.clone() for k, v in state.model.state_dict().items()})

    data = _tiny_data()
    data = tl.Split(data.x.double(), data.y)
    tl.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=2, batch_size=16,
           callbacks=[Record(), ens.StepAverager(avg, start=1)], progress=False)
    steps_per_epoch = 4
    kept = seen[steps_per_epoch:]  # averaging starts after one completed epoch
    expected = kept[0]["1.weight"]
    for state in kept[1:]:
        expected = 0.5 * expected + 0.5 * state["1.weight"]
    torch.testing.assert_close(avg.module[1].weight, expected, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="AveragedModel"):
        ens.StepAverager(nn.Linear(2, 2))


def test_inference_seconds():
    calls = []
    t = ens.inference_seconds(lambda: calls.append(1), repeats=3)
    assert t >= 0 and len(calls) == 4  # one warm-up + 3 timed
    with pytest.raises(ValueError):
        ens.inference_seconds(lambda: None, repeats=0)


class _Buggy:
    """Deliberately wrong variants: each must fail a check above (kept here to show the tests bite)."""

    @staticmethod
    def ece_left_closed(probs, y, n_bins=15):  # bins [k/n, (k+1)/n): a different answer on bin edges
        conf, pred = probs.max(1)
        idx = torch.clamp((conf * n_bins).floor().long(), max=n_bins - 1)
        total = 0.0
        for b in range(n_bins):
            m = idx == b
            if m.any():
                total += m.double().mean() * ((pred[m] == y[m]).double().mean() - conf[m].mean()).abs()
        return float(total)

    @staticmethod
    def ece_unweighted(probs, y, n_bins=15):  # forgets the |B_k|/N weights
        r = ens.reliability(probs, y, n_bins)
        full = r.count > 0
        return float(np.abs(r.accuracy[full] - r.confidence[full]).mean())


def test_buggy_ece_variants_are_caught():
    probs = torch.tensor([[0.6, 0.4]] * 6 + [[1.0, 0.0]] * 2, dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0])  # 6 at 0.6 (half right), 2 at 1.0 (right): 6/8 * 0.1
    assert ens.expected_calibration_error(probs, y) == pytest.approx(0.075, abs=1e-12)
    assert _Buggy.ece_unweighted(probs, y) != pytest.approx(0.075, abs=1e-12)
    edge = torch.tensor([[0.5, 0.5], [0.6, 0.4]], dtype=torch.float64)
    ye = torch.tensor([1, 0])
    assert _Buggy.ece_left_closed(edge, ye, 2) != pytest.approx(_ece_brute_force(edge, ye, 2), abs=1e-12)
    assert ens.expected_calibration_error(edge, ye, 2) == pytest.approx(_ece_brute_force(edge, ye, 2), abs=1e-12)
