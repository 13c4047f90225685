"""trainlab.search: spaces, the edge check, resumable trials, shared Optuna studies, stacked models."""

from __future__ import annotations

import copy

import numpy as np
import optuna
import pytest
import torch

import trainlab as tl
from trainlab import search
from trainlab.search import EdgeWarning, MLPTrial, Param

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def digits():
    return search.search_data("digits", 300)


def test_param_unit_roundtrip_and_log_scale():
    p = Param(1e-4, 1.0)
    np.testing.assert_allclose(p.to_unit([1e-4, 1e-2, 1.0]), [0, 0.5, 1])
    np.testing.assert_allclose(p.from_unit(p.to_unit(0.037)), 0.037)
    lin = Param(0.0, 1.0, log=False)
    np.testing.assert_allclose(lin.from_unit(0.25), 0.25)
    with pytest.raises(ValueError, match="low > 0"):
        Param(0.0, 1.0)
    with pytest.raises(ValueError, match="low < high"):
        Param(1.0, 0.1)


def test_grid_and_random_configs():
    space = {"lr": Param(1e-4, 1.0), "p": Param(0.0, 0.5, log=False)}
    grid = search.grid_configs(space, 3)
    assert len(grid) == 9
    assert sorted({round(c["lr"], 12) for c in grid}) == [1e-4, 1e-2, 1.0]
    assert sorted({c["p"] for c in grid}) == [0.0, 0.25, 0.5]
    rand = search.random_configs(space, 4000, np.random.default_rng(0))
    lrs = np.array([c["lr"] for c in rand])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1.0
    # log-uniform: half the samples below the geometric middle 1e-2 (uniform would give 1 %)
    assert abs(np.mean(lrs < 1e-2) - 0.5) < 0.03
    assert abs(np.mean([c["p"] for c in rand]) - 0.25) < 0.02


def test_edge_check_flags_edges_only():
    space = {"lr": Param(1e-5, 1e-2), "wd": Param(1e-6, 1e-2)}
    configs = [{"lr": 1e-5, "wd": 1e-4}, {"lr": 1e-3, "wd": 1e-4}, {"lr": 9e-3, "wd": 1e-4}]
    warnings = search.edge_check(configs, [0.1, 0.5, 0.8], space)
    assert warnings == [EdgeWarning("lr", 9e-3, 1e-5, 1e-2, "high")]
    assert "extend the range up" in str(warnings[0])
    low = search.edge_check(configs, [0.9, 0.5, 0.1], space)
    assert [(w.param, w.side) for w in low] == [("lr", "low")]
    assert search.edge_check(configs, [0.1, 0.9, 0.5], space) == []
    # a loss: lower is better; NaN (diverged) is ignored
    assert search.edge_check(configs, [np.nan, 0.2, 0.3], space, higher_is_better=False) == []
    with pytest.raises(ValueError, match="as many scores"):
        search.edge_check(configs, [0.1], space)


def test_narrow_is_centred_in_log_space():
    fine = search.narrow({"lr": Param(1e-4, 1.0)}, {"lr": 1e-2}, factor=0.25)
    np.testing.assert_allclose([fine["lr"].low, fine["lr"].high], [10**-2.5, 10**-1.5])


def test_mlp_trial_resumes_exactly(digits):
    a = MLPTrial(digits, lr=0.05, weight_decay=1e-4, seed=3)
    b = MLPTrial(digits, lr=0.05, weight_decay=1e-4, seed=3)
    a.train(3)
    b.train(1)
    b.train(2)
    assert a.val_acc == b.val_acc and a.epochs == 3
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert a.best_val_acc == max(a.val_acc) and 1 <= a.best_epoch <= 3


def test_diverged_trial_stays_at_chance(digits):
    run = MLPTrial(digits, lr=1e6, seed=0)
    run.train(3)
    assert run.diverged and run.epochs == 3 and all(np.isfinite(run.val_acc))


def test_train_stacked_equals_separate_fits(digits):
    train = tl.Split(digits.train.x.double(), digits.train.y)
    lrs = [0.01, 0.1, 0.5]
    tl.seed_everything(0)
    models = [tl.mlp(digits.input_dim, [16], 10).double() for _ in lrs]
    before = copy.deepcopy(models)
    stacked = search.train_stacked(models, lrs, train, epochs=2, batch_size=32, seed=5)
    for m, m0 in zip(models, before, strict=True):  # inputs untouched
        for p, p0 in zip(m.parameters(), m0.parameters(), strict=True):
            assert torch.equal(p, p0)
    for i, (m, lr) in enumerate(zip(models, lrs, strict=True)):
        tl.fit(m, torch.optim.SGD(m.parameters(), lr=lr), train, epochs=2, batch_size=32, seed=5, progress=False)
        for name, p in m.named_parameters():
            torch.testing.assert_close(stacked[name][i], p.detach(), rtol=0, atol=1e-10)
    val = tl.Split(digits.val.x.double(), digits.val.y)
    acc = search.stacked_accuracy(models[0], stacked, val)
    assert acc.shape == (3,) and abs(float(acc[2]) - tl.evaluate(models[2], val)[1]) < 1e-6
    with pytest.raises(ValueError, match="one learning rate per model"):
        search.train_stacked(models, lrs[:2], train, epochs=1, batch_size=32)


def test_objective_reports_and_prunes(digits):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # prunes every trial
    study.optimize(search.mlp_objective(digits, search.SPACE, max_epochs=3), n_trials=2)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert search.epochs_spent(study) == 2  # each stopped after its first report
    full = optuna.create_study(direction="maximize")
    full.optimize(search.mlp_objective(digits, search.SPACE, max_epochs=2, prune=False), n_trials=2)
    assert search.epochs_spent(full) == 4


def test_study_from_results_feeds_importance():
    rng = np.random.default_rng(0)
    configs = search.random_configs(search.SPACE, 40, rng)
    scores = [-abs(np.log10(c["lr"]) + 1.5) for c in configs]  # depends on lr only
    study = search.study_from_results(configs, scores, search.SPACE)
    assert len(study.trials) == 40
    imp = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    assert imp["lr"] > 0.9


def test_make_storage_takes_a_file_or_a_url(tmp_path):
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalStorage

    assert isinstance(search.make_storage(tmp_path / "j.log"), JournalStorage)
    assert isinstance(search.make_storage(f"sqlite:///{tmp_path / 'x.db'}"), RDBStorage)


def test_two_worker_processes_share_one_study(tmp_path):
    journal = str(tmp_path / "study.log")
    search.run_workers(journal, "shared", 2, 2, dataset="digits", train_size=200, max_epochs=1)
    study = optuna.load_study(study_name="shared", storage=search.make_storage(journal))
    assert len(study.trials) == 4
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert search.trials_per_minute(study) > 0


def test_failed_worker_reports_its_error(tmp_path):
    with pytest.raises(RuntimeError, match="worker 0 exited"):
        search.run_workers(str(tmp_path / "s.log"), "bad", 1, 1, dataset="no-such-dataset")


def test_book_style_undoes_optunas_ggplot_look():
    import matplotlib
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    matplotlib.use("Agg")
    from trainlab.plots import use_style

    use_style()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1.0, log=True), n_trials=4)
    with plt.rc_context():
        grey = ovm.plot_optimization_history(study)
    assert matplotlib.colors.to_hex(grey.get_facecolor()) != "#ffffff"  # optuna's ggplot style
    ax = search.optuna_plot(ovm.plot_optimization_history, study,
                            labels={"Objective Value": "trial", "Best Value": "best so far"})
    assert plt.rcParams["axes.facecolor"] == "white"  # optuna's plt.style.use did not leak out
    assert matplotlib.colors.to_hex(ax.get_facecolor()) == "#ffffff"
    assert not ax.spines["top"].get_visible() and ax.spines["left"].get_visible()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trial", "best so far"]
    assert ax.xaxis.label.get_fontsize() == plt.rcParams["axes.labelsize"]
    plt.close("all")
