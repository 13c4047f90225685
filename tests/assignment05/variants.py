"""Submissions for grading tests of assignment 05-search-ensembles, generated from the nbgrader source notebook
(the harness: ``tests/gradingtable.py``). Each buggy variant patches one answer cell and names the test cells
that must lose their points; every other cell must keep full marks."""

from __future__ import annotations

from gradingtable import GradingTable, Variant

ASSIGNMENT = "05-search-ensembles"

LOG_UNIFORM = frozenset({"test_log_uniform_range", "test_log_uniform_dist", "test_log_uniform_generator"})
RANDOM_SEARCH = frozenset({"test_random_search_result", "test_random_search_space", "test_random_search_generator"})
SH = frozenset({"test_sh_schedule", "test_sh_survivors", "test_sh_ties"})
EMA = frozenset({"test_ema_params", "test_ema_first", "test_ema_buffers"})
SWA = frozenset({"test_swa_weights", "test_swa_bn"})
ENSEMBLE = frozenset({"test_ens_prob", "test_ens_logit", "test_ens_vote", "test_ens_vote_ties"})
ECE = frozenset({"test_ece_known", "test_ece_random", "test_ece_edges"})


def _v(cell: str, patches: list[tuple[str, str]], loses: set[str] | frozenset[str], what: str) -> Variant:
    (old, new), *extra = patches
    return Variant(cell, old, new, frozenset(loses), what, tuple(extra))


_LU_BODY = "    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))"

VARIANTS: dict[str, Variant] = {
    # ---------------------------------------------------------------- task 1: log_uniform
    "log_uniform_linear_scale": _v("log_uniform", [
        (_LU_BODY, "    return low + u * (high - low)")],
        {"test_log_uniform_dist"}, "uniform on the linear scale: right range, wrong distribution"),
    "log_uniform_global_rng": _v("log_uniform", [
        ("torch.rand(size, generator=generator, dtype=torch.float64)", "torch.rand(size, dtype=torch.float64)")],
        {"test_log_uniform_generator"}, "ignores the generator and draws from the global random state"),
    "log_uniform_no_check": _v("log_uniform", [
        ("    if not 0 < low < high:\n", "    if False:\n")],
        {"test_log_uniform_range"}, "no ValueError for low <= 0 or high <= low (returns nan or a reversed range)"),
    "log_uniform_log10_mixup": _v("log_uniform", [
        (_LU_BODY, "    return 10 ** (math.log(low) + u * (math.log(high) - math.log(low)))")],
        {"test_log_uniform_range", "test_log_uniform_dist"},
        "10 ** U(ln a, ln b): mixes the bases, so the samples leave [low, high]"),
    "log_uniform_via_trainlab_alias": _v("log_uniform", [
        (_LU_BODY, "    from trainlab.search import Param as LogRange\n"
                   "    return torch.from_numpy(LogRange(low, high).from_unit(u.numpy()))")],
        LOG_UNIFORM | RANDOM_SEARCH,
        "right values through the course library (trainlab.search.Param under another name): task 1 scores 0, and "
        "so does task 2, whose random_search calls this log_uniform"),
    # ---------------------------------------------------------------- task 2: random_search
    "random_search_ties_to_last": _v("random_search", [
        ("if trials[t][1] < trials[best][1]:", "if trials[t][1] <= trials[best][1]:")],
        {"test_random_search_result"}, "of two equal values, the later trial wins"),
    "random_search_maximizes": _v("random_search", [
        ("if trials[t][1] < trials[best][1]:", "if trials[t][1] > trials[best][1]:")],
        {"test_random_search_result"}, "returns the largest value (maximizes a loss)"),
    "random_search_reuses_dict": _v("random_search", [
        ("    trials, best = [], 0\n    for t in range(n_trials):\n        config = {}\n",
         "    trials, best = [], 0\n    config = {}\n    for t in range(n_trials):\n")],
        {"test_random_search_result", "test_random_search_space"},
        "one dict for every trial: trials[i][0] all show the last configuration"),
    "random_search_linear_on_log_scale": _v("random_search", [
        ("                config[name] = spec[1] + u * (spec[2] - spec[1])\n",
         "                config[name] = float(torch.exp(torch.tensor(math.log(spec[1] + 1e-9) + u * (\n"
         "                    math.log(spec[2]) - math.log(spec[1] + 1e-9)))))\n")],
        {"test_random_search_space"}, "linear parameters sampled on a log scale"),
    "random_search_choice_misses_last": _v("random_search", [
        ("torch.randint(len(options), (), generator=generator)",
         "torch.randint(max(1, len(options) - 1), (), generator=generator)")],
        {"test_random_search_space"}, "choice never draws the last option"),
    "random_search_global_rng": _v("random_search", [
        ("u = float(torch.rand((), generator=generator, dtype=torch.float64))",
         "u = float(torch.rand((), dtype=torch.float64))")],
        {"test_random_search_generator"}, "linear parameters drawn from the global random state"),
    "random_search_value_not_float": _v("random_search", [
        ("trials.append((config, float(objective(config))))", "trials.append((config, objective(config)))")],
        {"test_random_search_result"}, "keeps the objective's value as returned (an int stays an int)"),
    # ---------------------------------------------------------------- task 3: successive halving
    "sh_keeps_ceil": _v("successive_halving", [
        ("keep = max(1, len(alive) // eta)", "keep = max(1, -(-len(alive) // eta))")],
        SH, "keeps ceil(n / eta) instead of floor(n / eta)"),
    "sh_budget_not_multiplied": _v("successive_halving", [
        ("alive, budget = promoted, budget * eta", "alive, budget = promoted, budget + min_budget")],
        {"test_sh_schedule", "test_sh_survivors"},
        "the budget grows by min_budget per rung instead of by a factor eta"),
    "sh_ties_to_last": _v("successive_halving", [
        ("key=lambda j: (losses[j], j)", "key=lambda j: (losses[j], -j)")],
        {"test_sh_ties"}, "of two equal losses, the later configuration is promoted"),
    "sh_maximizes": _v("successive_halving", [
        ("key=lambda j: (losses[j], j)", "key=lambda j: (-losses[j], j)")],
        {"test_sh_survivors", "test_sh_ties"}, "promotes the largest losses"),
    "sh_zero_budget_accepted": _v("successive_halving", [
        ("    if min_budget <= 0:\n", "    if min_budget < 0:\n")],
        {"test_sh_schedule"}, "min_budget = 0 is accepted (every rung gets budget 0)"),
    # ---------------------------------------------------------------- task 4: EMA
    "ema_decay_swapped": _v("ema", [
        ("e.copy_(self.decay * e + (1 - self.decay) * m)", "e.copy_((1 - self.decay) * e + self.decay * m)")],
        EMA, "decay and 1 - decay swapped: the EMA follows the model instead of averaging"),
    "ema_buffers_not_averaged": _v("ema", [
        ("        if self.use_buffers:\n            pairs += ", "        if False:\n            pairs += "),
        ("        if not self.use_buffers:\n            for e, m in zip(",
         "        if True:\n            for e, m in zip(")],
        {"test_ema_buffers"}, "use_buffers=True is ignored: buffers are copied from the model"),
    "ema_integer_buffers_copied": _v("ema", [
        ("            if self.n_averaged == 0:\n                e.copy_(m)\n",
         "            if self.n_averaged == 0 or not e.is_floating_point():\n                e.copy_(m)\n")],
        {"test_ema_buffers"}, "num_batches_tracked copied instead of averaged (PyTorch averages and truncates it)"),
    "ema_no_first_copy": _v("ema", [
        ("            if self.n_averaged == 0:\n                e.copy_(m)\n            else:\n"
         "                e.copy_(self.decay * e + (1 - self.decay) * m)\n",
         "            e.copy_(self.decay * e + (1 - self.decay) * m)\n")],
        EMA, "the first update averages with the weights the EMA was built with instead of copying"),
    "ema_no_decay_check": _v("ema", [
        ("        if not 0.0 <= decay <= 1.0:\n", "        if False:\n")],
        {"test_ema_first"}, "no ValueError for a decay outside [0, 1]"),
    "ema_via_averaged_model_alias": _v("ema", [
        ("        self.module = copy.deepcopy(model)\n",
         "        from torch.optim.swa_utils import AveragedModel as Averager, get_ema_multi_avg_fn as ema_fn\n"
         "        self.inner = Averager(model, multi_avg_fn=ema_fn(decay), use_buffers=use_buffers)\n"
         "        self.module = self.inner.module\n"),
        ("        pairs = list(zip(self.module.parameters(), model.parameters()))\n",
         "        self.inner.update_parameters(model)\n        self.n_averaged += 1\n        return\n"
         "        pairs = list(zip(self.module.parameters(), model.parameters()))\n")],
        EMA, "delegates to AveragedModel and get_ema_multi_avg_fn imported under other names: task 4 scores 0"),
    # ---------------------------------------------------------------- task 5: SWA
    "swa_starts_one_epoch_late": _v("swa_train", [
        ("        if epoch >= swa_start:\n", "        if epoch > swa_start:\n"),
        ("    swa_model = copy.deepcopy(model)\n",
         "    if average is None:\n        average = [p.detach().clone() for p in model.parameters()]\n"
         "    swa_model = copy.deepcopy(model)\n")],
        SWA, "averages from epoch swa_start + 1 (the last epoch alone when swa_start = epochs - 1)"),
    "swa_no_update_bn": _v("swa_train", [
        ("    update_bn(batches, swa_model)\n", "")],
        {"test_swa_bn"}, "update_bn not called: BatchNorm keeps the last iterate's statistics"),
    "swa_overwrites_model": _v("swa_train", [
        ("    swa_model = copy.deepcopy(model)\n", "    swa_model = model\n")],
        {"test_swa_weights"}, "writes the average into `model` itself and returns it"),
    "swa_via_averaged_model_alias": _v("swa_train", [
        ("    average, n = None, 0\n",
         "    from torch.optim.swa_utils import AveragedModel as Averager\n"
         "    averager = Averager(model)\n    average, n = None, 0\n"),
        ("        if epoch >= swa_start:\n            with torch.no_grad():\n",
         "        if epoch >= swa_start:\n            averager.update_parameters(model)\n"
         "            with torch.no_grad():\n")],
        SWA, "keeps an AveragedModel (under another name) next to its own average: task 5 scores 0"),
    # ---------------------------------------------------------------- task 6: ensembles
    "ens_prob_is_logit": _v("ensemble_predict", [
        ("        return torch.softmax(logits, dim=-1).mean(dim=0)\n",
         "        return torch.softmax(logits.mean(dim=0), dim=-1)\n")],
        {"test_ens_prob"}, "\"prob\" averages the logits"),
    "ens_logit_no_softmax": _v("ensemble_predict", [
        ("        return torch.softmax(logits.mean(dim=0), dim=-1)\n", "        return logits.mean(dim=0)\n")],
        {"test_ens_logit"}, "\"logit\" returns the averaged logits, not probabilities"),
    "ens_vote_from_mean_prob": _v("ensemble_predict", [
        ("    votes = F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).sum(dim=0)  # (N, C) vote counts\n",
         "    votes = torch.softmax(logits, dim=-1).mean(dim=0)\n")],
        {"test_ens_vote", "test_ens_vote_ties"}, "\"vote\" takes the argmax of the averaged probabilities"),
    "ens_vote_ties_to_highest": _v("ensemble_predict", [
        ("    return votes.argmax(dim=-1)  # the first (lowest) class among equal counts",
         "    return votes.shape[-1] - 1 - votes.flip(-1).argmax(dim=-1)")],
        {"test_ens_vote_ties"}, "a tied vote goes to the highest class index"),
    "ens_via_trainlab_alias": _v("ensemble_predict", [
        ("    if how == \"prob\":\n        return torch.softmax(logits, dim=-1).mean(dim=0)\n",
         "    if how == \"prob\":\n        from trainlab import ensemble as combiner\n"
         "        return combiner.combine(logits, \"prob\")\n")],
        ENSEMBLE, "averaged probabilities through the course library (trainlab.ensemble under another name)"),
    # ---------------------------------------------------------------- task 7: ECE
    "ece_unweighted": _v("expected_calibration_error", [
        ("    return float(gap.abs().sum() / len(labels))",
         "    counts = torch.bincount(bins, minlength=n_bins).double()\n"
         "    full = counts > 0\n"
         "    return float((gap[full].abs() / counts[full]).mean())")],
        {"test_ece_known", "test_ece_random", "test_ece_edges"}, "the unweighted mean of the bins' gaps"),
    "ece_left_closed_bins": _v("expected_calibration_error", [
        ("bins = torch.bucketize(conf, inner_edges, right=False)",
         "bins = torch.bucketize(conf, inner_edges, right=True)")],
        {"test_ece_edges"}, "bins [lo, hi) instead of (lo, hi]: a confidence on an edge goes to the upper bin"),
    "ece_label_probability": _v("expected_calibration_error", [
        ("    conf = probs.gather(1, pred[:, None]).squeeze(1)\n",
         "    conf = probs.gather(1, labels[:, None]).squeeze(1)\n")],
        ECE, "confidence = the probability of the true label instead of the largest probability"),
    "ece_via_trainlab_alias": _v("expected_calibration_error", [
        ("    return float(gap.abs().sum() / len(labels))",
         "    from trainlab.ensemble import expected_calibration_error as ece\n"
         "    return float(ece(probs, labels, n_bins))")],
        ECE, "the right number through the course library (trainlab.ensemble under another name)"),
}

TABLE = GradingTable(ASSIGNMENT, "search_ensembles.ipynb", VARIANTS)
