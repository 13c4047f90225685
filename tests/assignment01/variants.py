"""Submissions for grading tests of assignment 01-optimizers, generated from the nbgrader source notebook
(the harness: ``tests/gradingtable.py``). Each buggy variant patches one answer cell and names the test cells
that must lose their points."""

from __future__ import annotations

from gradingtable import REPO, GradingTable, Variant, grade_id, read

__all__ = ["REPO", "ASSIGNMENT", "SOURCE", "RELEASE", "VARIANTS", "TABLE", "read", "grade_id", "points",
           "solution_code", "submission", "write_submissions"]

ASSIGNMENT = "01-optimizers"

VARIANTS: dict[str, Variant] = {
    "ce_no_max_shift": Variant(
        "cross_entropy",
        "m = logits.max(dim=1, keepdim=True).values.detach()",
        "m = torch.zeros_like(logits[:, :1])",
        frozenset({"test_ce_stable"}),
        "log-sum-exp without the max shift: overflows for large logits",
    ),
    "ce_uses_log_softmax": Variant(
        "cross_entropy",
        "    m = logits.max(dim=1, keepdim=True).values.detach()\n",
        "    return -torch.log_softmax(logits, dim=1).gather(1, targets[:, None]).mean()\n",
        frozenset({"test_ce_rules"}),
        "correct values, but calls the forbidden log_softmax",
    ),
    "minibatch_not_shuffled": Variant(
        "minibatch_indices",
        "order = torch.randperm(n, generator=generator)",
        "order = torch.arange(n)",
        frozenset({"test_minibatch_shuffle"}),
        "batches in the original order, no permutation",
    ),
    "minibatch_ignores_drop_last": Variant(
        "minibatch_indices",
        "if drop_last and len(batches[-1]) < batch_size:",
        "if False and len(batches[-1]) < batch_size:",
        frozenset({"test_minibatch_partition"}),
        "drop_last=True keeps the smaller last batch",
    ),
    "sgd_momentum_buffer_zero_init": Variant(
        "sgd",
        "                        buf = torch.clone(g).detach()\n"
        "                        state[\"momentum_buffer\"] = buf\n"
        "                    else:\n"
        "                        buf.mul_(mu).add_(g, alpha=1 - tau)\n",
        "                        buf = torch.zeros_like(g)\n"
        "                        state[\"momentum_buffer\"] = buf\n"
        "                    buf.mul_(mu).add_(g, alpha=1 - tau)\n",
        frozenset({"test_sgd_dampening"}),
        "momentum buffer started at 0 instead of the first gradient (shows only with dampening > 0)",
    ),
    "sgd_nesterov_wrong": Variant(
        "sgd",
        'g = g + mu * buf if group["nesterov"] else buf',
        'g = buf + mu * g if group["nesterov"] else buf',
        frozenset({"test_sgd_nesterov"}),
        "Nesterov step buf + mu*g instead of g + mu*buf",
    ),
    "sgd_weight_decay_after_momentum": Variant(
        "sgd",
        "                g = p.grad\n"
        "                if group[\"weight_decay\"] != 0:\n"
        "                    g = g + group[\"weight_decay\"] * p\n",
        "                g = p.grad\n",
        frozenset({"test_sgd_weight_decay"}),
        "weight decay added to the step after momentum instead of to the gradient before it",
    ),
    "sgd_grad_modified_in_place": Variant(
        "sgd",
        'g = g + group["weight_decay"] * p',
        'g = g.add_(p, alpha=group["weight_decay"])',
        frozenset({"test_sgd_rules"}),
        "weight decay added to p.grad in place (right trajectory, but the caller's gradient changes)",
    ),
    "sgd_calls_torch_functional": Variant(
        "sgd",
        "        for group in self.param_groups:\n            lr, mu, tau",
        "        for group in self.param_groups:\n"
        "            params = [p for p in group[\"params\"] if p.grad is not None]\n"
        "            bufs = [self.state[p].get(\"momentum_buffer\") for p in params]\n"
        "            torch.optim._functional.sgd(\n"
        "                params, [p.grad for p in params], bufs, weight_decay=group[\"weight_decay\"],\n"
        "                momentum=group[\"momentum\"], lr=group[\"lr\"], dampening=group[\"dampening\"],\n"
        "                nesterov=group[\"nesterov\"], maximize=False)\n"
        "            if group[\"momentum\"] != 0:\n"
        "                for p, b in zip(params, bufs):\n"
        "                    self.state[p][\"momentum_buffer\"] = b\n"
        "            continue\n"
        "            lr, mu, tau",
        frozenset({"test_sgd_rules"}),
        "delegates the update to torch.optim's functional sgd",
    ),
    "ce_calls_f_cross_entropy": Variant(
        "cross_entropy",
        "    m = logits.max(dim=1, keepdim=True).values.detach()\n",
        "    return F.cross_entropy(logits, targets)\n",
        frozenset({"test_ce_values", "test_ce_stable", "test_ce_grad", "test_ce_rules"}),
        "hands the whole task to F.cross_entropy: every cell of task 1 scores 0",
    ),
    "ce_sum_not_mean": Variant(
        "cross_entropy",
        "return (log_sum_exp - picked).mean()",
        "return (log_sum_exp - picked).sum()",
        frozenset({"test_ce_values", "test_ce_stable", "test_ce_grad", "test_ce_rules"}),
        "sums instead of averaging: task 1 fails, task 5 (which uses its own loss) keeps its points",
    ),
    "sgd_reads_defaults": Variant(
        "sgd",
        'lr, mu, tau = group["lr"], group["momentum"], group["dampening"]',
        'lr, mu, tau = group["lr"], group["momentum"], self.defaults["dampening"]',
        frozenset({"test_sgd_groups"}),
        "reads weight_decay, dampening and nesterov from self.defaults instead of the parameter group",
    ),
    "sgd_step_does_nothing": Variant(
        "sgd",
        "        loss = None\n",
        "        return None  # never updates anything, never calls anything forbidden\n        loss = None\n",
        frozenset({"test_sgd_plain", "test_sgd_momentum", "test_sgd_dampening", "test_sgd_nesterov",
                   "test_sgd_weight_decay", "test_sgd_groups", "test_sgd_state_dict", "test_sgd_rules"}),
        "step() returns at once: the rules cell must not award points to it",
    ),
    "train_ignores_make_optimizer": Variant(
        "experiment",
        "optimizer = make_optimizer(model.parameters())",
        "optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)",
        frozenset({"test_experiment"}),
        "trains torch's SGD whatever make_optimizer is given (the two curves agree trivially)",
    ),
    "schedule_step_decay_off_by_one": Variant(
        "schedules",
        "gamma ** (step // step_size)",
        "gamma ** ((step + 1) // step_size)",
        frozenset({"test_step_decay"}),
        "step decay decays one step early",
    ),
    "schedule_exponential_off_by_one": Variant(
        "schedules",
        "return float(lr0 * gamma ** step)",
        "return float(lr0 * gamma ** (step + 1))",
        frozenset({"test_exponential_decay"}),
        "exponential decay starts one step late (eta_0 * gamma at step 0)",
    ),
    "schedule_inverse_time_squared": Variant(
        "schedules",
        "return float(lr0 / (1 + k * step))",
        "return float(lr0 / (1 + k * step) ** 2)",
        frozenset({"test_inverse_time_decay"}),
        "1/t decay squared: right at step 0, too fast afterwards",
    ),
    "schedule_warmup_off_by_one": Variant(
        "schedules",
        "lr0 * (step + 1) / warmup_steps",
        "lr0 * step / warmup_steps",
        frozenset({"test_warmup_cosine"}),
        "warm-up starts at 0 (one step late)",
    ),
}

# The wrong variant for the weight-decay bug also needs the decay after momentum: insert it before the update.
_WD_AFTER = ("                p.add_(g, alpha=-lr)\n",
             "                if group[\"weight_decay\"] != 0:\n"
             "                    g = g + group[\"weight_decay\"] * p\n"
             "                p.add_(g, alpha=-lr)\n")
EXTRA_PATCHES: dict[str, list[tuple[str, str]]] = {
    "sgd_weight_decay_after_momentum": [_WD_AFTER],
    "sgd_reads_defaults": [
        ('if group["weight_decay"] != 0:\n                    g = g + group["weight_decay"] * p',
         'if self.defaults["weight_decay"] != 0:\n                    g = g + self.defaults["weight_decay"] * p'),
        ('g = g + mu * buf if group["nesterov"] else buf', 'g = g + mu * buf if self.defaults["nesterov"] else buf'),
    ],
}



for _name, _patches in EXTRA_PATCHES.items():
    _v = VARIANTS[_name]
    VARIANTS[_name] = Variant(_v.cell, _v.old, _v.new, _v.loses, _v.what, tuple(_patches))

TABLE = GradingTable(ASSIGNMENT, "optimizers.ipynb", VARIANTS)
SOURCE, RELEASE = TABLE.source, TABLE.release
points, solution_code, submission, write_submissions = (TABLE.points, TABLE.solution_code, TABLE.submission,
                                                        TABLE.write_submissions)
