"""Submissions for grading tests of assignment 02-adaptive (the harness: ``tests/gradingtable.py``). Each buggy
variant patches one answer cell of the solution and names the test cells that must lose their points (and only
those): every graded cell is lost by at least one variant, and the visible test of each lost cell fails too, so
an honest mistake is never flagged for review."""

from __future__ import annotations

from gradingtable import GradingTable, Variant

ASSIGNMENT = "02-adaptive"

ADAGRAD = frozenset({"test_adagrad_plain", "test_adagrad_options", "test_adagrad_groups", "test_adagrad_state_dict",
                     "test_adagrad_rules"})
RMSPROP = frozenset({"test_rmsprop_plain", "test_rmsprop_centered", "test_rmsprop_momentum",
                     "test_rmsprop_weight_decay", "test_rmsprop_groups", "test_rmsprop_state_dict",
                     "test_rmsprop_rules"})
ADAM = frozenset({"test_adam_plain", "test_adam_betas_eps", "test_adam_weight_decay", "test_adam_amsgrad",
                  "test_adam_groups", "test_adam_state_dict", "test_adam_rules"})
ADAMW = frozenset({"test_adamw_decay", "test_adamw_amsgrad", "test_adamw_groups", "test_adamw_state_dict",
                   "test_adamw_rules"})
BIAS = frozenset({"test_bias_corrected", "test_bias_uncorrected", "test_bias_peak"})
DECAY = frozenset({"test_decay_adamw", "test_decay_l2", "test_decay_first_step"})


def _v(cell, old, new, loses, what, *extra):
    return Variant(cell, old, new, frozenset(loses), what, tuple(extra))


VARIANTS: dict[str, Variant] = {
    # ------------------------------------------------------------------------------------------------ AdaGrad
    "adagrad_eps_inside_sqrt": _v(
        "adagrad", 'p.sub_(clr * g / (state["sum"].sqrt() + group["eps"]))',
        'p.sub_(clr * g / (state["sum"] + group["eps"]).sqrt())',
        ADAGRAD,
        "eps inside the square root"),
    "adagrad_lr_decay_off_by_one": _v(
        "adagrad", 'clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])',
        'clr = group["lr"] / (1 + t * group["lr_decay"])',
        {"test_adagrad_options", "test_adagrad_groups", "test_adagrad_state_dict", "test_adagrad_rules"},
        "learning-rate decay one step early: lr / (1 + t δ)"),
    "adagrad_reads_defaults": _v(
        "adagrad", 'clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])',
        'clr = group["lr"] / (1 + (t - 1) * self.defaults["lr_decay"])',
        {"test_adagrad_groups", "test_adagrad_state_dict"},
        "lr_decay, weight_decay and eps read from self.defaults instead of the group",
        ('p.sub_(clr * g / (state["sum"].sqrt() + group["eps"]))',
         'p.sub_(clr * g / (state["sum"].sqrt() + self.defaults["eps"]))'),
        ('if group["weight_decay"] != 0:\n                    g = g + group["weight_decay"] * p',
         'if self.defaults["weight_decay"] != 0:\n                    g = g + self.defaults["weight_decay"] * p')),
    "adagrad_lazy_state": _v(
        "adagrad",
        '        for group in self.param_groups:\n            for p in group["params"]:\n'
        '                self.state[p]["step"] = torch.tensor(0.0)\n'
        '                self.state[p]["sum"] = torch.full_like(p, initial_accumulator_value)\n',
        "",
        {"test_adagrad_groups"},
        "state created at the first update, as in the other optimizers, not in __init__",
        ('                state = self.state[p]\n                state["step"] += 1',
         '                state = self.state[p]\n                if not state:\n'
         '                    state["step"] = torch.tensor(0.0)\n'
         '                    state["sum"] = torch.full_like(p, self.defaults["initial_accumulator_value"])\n'
         '                state["step"] += 1')),
    "adagrad_state_misnamed": _v(
        "adagrad", 'self.state[p]["sum"] = torch.full_like(p, initial_accumulator_value)',
        'self.state[p]["sum_sq"] = torch.full_like(p, initial_accumulator_value)',
        {"test_adagrad_groups", "test_adagrad_state_dict"},
        "the accumulator saved as 'sum_sq' instead of PyTorch's 'sum'",
        ('state["sum"].add_(g * g)', 'state["sum_sq"].add_(g * g)'),
        ('state["sum"].sqrt()', 'state["sum_sq"].sqrt()')),
    "adagrad_grad_modified_in_place": _v(
        "adagrad", 'g = g + group["weight_decay"] * p', 'g = g.add_(p, alpha=group["weight_decay"])',
        {"test_adagrad_rules"},
        "weight decay added to p.grad in place (right trajectory, but the caller's gradient changes)"),
    "adagrad_calls_functional_kernel": _v(
        "adagrad",
        "        for group in self.param_groups:\n            for p in group[\"params\"]:\n"
        "                if p.grad is None:",
        "        from torch.optim import adagrad as kernel\n"
        "        for group in self.param_groups:\n"
        "            params = [p for p in group[\"params\"] if p.grad is not None]\n"
        "            kernel.adagrad(params, [p.grad for p in params], [self.state[p][\"sum\"] for p in params],\n"
        "                           [self.state[p][\"step\"] for p in params], lr=group[\"lr\"],\n"
        "                           weight_decay=group[\"weight_decay\"], lr_decay=group[\"lr_decay\"],\n"
        "                           eps=group[\"eps\"], maximize=False)\n"
        "        return loss\n"
        "        for group in self.param_groups:\n            for p in group[\"params\"]:\n"
        "                if p.grad is None:",
        ADAGRAD,
        "delegates the update to torch.optim.adagrad.adagrad through an alias: the whole task scores 0"),
    # ------------------------------------------------------------------------------------------------ RMSprop
    "rmsprop_eps_inside_sqrt": _v(
        "rmsprop", "denom = v.sqrt() + eps", "denom = (v + eps).sqrt()",
        {"test_rmsprop_plain", "test_rmsprop_momentum", "test_rmsprop_weight_decay", "test_rmsprop_groups",
         "test_rmsprop_state_dict", "test_rmsprop_rules"},
        "eps inside the square root (not centered)"),
    "rmsprop_alpha_inverted": _v(
        "rmsprop", "v.mul_(alpha).add_((1 - alpha) * g * g)", "v.mul_(1 - alpha).add_(alpha * g * g)",
        RMSPROP,
        "alpha weights the new g² instead of the old average"),
    "rmsprop_centered_sign": _v(
        "rmsprop", "denom = (v - avg * avg).sqrt() + eps", "denom = (v + avg * avg).sqrt() + eps",
        {"test_rmsprop_centered", "test_rmsprop_groups", "test_rmsprop_state_dict", "test_rmsprop_rules"},
        "centered: v + ḡ² instead of the variance v - ḡ²"),
    "rmsprop_momentum_inverted": _v(
        "rmsprop", "buf.mul_(mu).add_(g / denom)", "buf.mul_(1 - mu).add_(g / denom)",
        {"test_rmsprop_momentum", "test_rmsprop_groups", "test_rmsprop_state_dict", "test_rmsprop_rules"},
        "momentum keeps 1 - ρ of the buffer instead of ρ"),
    "rmsprop_momentum_on_raw_gradient": _v(
        "rmsprop", "buf.mul_(mu).add_(g / denom)\n                    p.sub_(lr * buf)",
        "buf.mul_(mu).add_(g)\n                    p.sub_(lr * buf / denom)",
        {"test_rmsprop_momentum", "test_rmsprop_groups", "test_rmsprop_state_dict", "test_rmsprop_rules"},
        "the buffer accumulates raw gradients, scaled afterwards by the current denominator"),
    "rmsprop_reads_defaults": _v(
        "rmsprop", 'lr, alpha, eps = group["lr"], group["alpha"], group["eps"]',
        'lr, alpha, eps = group["lr"], self.defaults["alpha"], self.defaults["eps"]',
        {"test_rmsprop_groups", "test_rmsprop_state_dict"},
        "alpha and eps read from self.defaults instead of the group (also after load_state_dict)"),
    "rmsprop_weight_decay_decoupled": _v(
        "rmsprop", 'g = g + group["weight_decay"] * p', 'p.mul_(1 - lr * group["weight_decay"])',
        {"test_rmsprop_weight_decay", "test_rmsprop_groups", "test_rmsprop_state_dict", "test_rmsprop_rules"},
        "weight decay applied to the parameter (AdamW-style) instead of added to the gradient"),
    "rmsprop_momentum_buffer_always": _v(
        "rmsprop", "                    if mu > 0:\n                        state[\"momentum_buffer\"]",
        "                    if True:\n                        state[\"momentum_buffer\"]",
        {"test_rmsprop_state_dict"},
        "creates a momentum buffer even without momentum: the state is not PyTorch's"),
    "rmsprop_state_misnamed": _v(
        "rmsprop", 'state["square_avg"] = torch.zeros_like(p)', 'state["v"] = torch.zeros_like(p)',
        {"test_rmsprop_state_dict"},
        "the squared-gradient average saved as 'v' instead of PyTorch's 'square_avg'",
        ('v = state["square_avg"]', 'v = state["v"]')),
    "rmsprop_calls_single_tensor_kernel": _v(
        "rmsprop", "                if mu > 0:\n                    buf = state[\"momentum_buffer\"]",
        "                rms._single_tensor_rmsprop(\n"
        "                    [p], [p.grad], [state[\"square_avg\"]], [state.get(\"grad_avg\")],\n"
        "                    [state.get(\"momentum_buffer\")], [torch.zeros(())], lr=lr, alpha=alpha, eps=eps,\n"
        "                    weight_decay=group[\"weight_decay\"], momentum=mu, centered=centered, maximize=False,\n"
        "                    differentiable=False, capturable=False, has_complex=False)\n"
        "                continue\n"
        "                if mu > 0:\n                    buf = state[\"momentum_buffer\"]",
        RMSPROP,
        "hands the update to torch.optim.rmsprop._single_tensor_rmsprop through an alias: the task scores 0",
        ("        loss = None\n", "        import torch.optim.rmsprop as rms\n        loss = None\n"),
        ('                v = state["square_avg"]\n                v.mul_(alpha).add_((1 - alpha) * g * g)\n',
         '                v = state["square_avg"].clone()\n                v.mul_(alpha).add_((1 - alpha) * g * g)\n')),
    # ------------------------------------------------------------------------------------------------ Adam
    "adam_bias_correction_t_plus_one": _v(
        "adam", 't = state["step"].item()', 't = state["step"].item() + 1',
        ADAM,
        "bias correction with t + 1 (the step counted twice)"),
    "adam_bias_correction_lecture_typo": _v(
        "adam", "m_hat = m / (1 - beta1 ** t)\n                v_hat = v / (1 - beta2 ** t)",
        "m_hat = m / (1 - beta1)\n                v_hat = v / (1 - beta2)",
        ADAM,
        "the lecture-note typo: divides by 1 - β instead of 1 - βᵗ"),
    "adam_eps_inside_sqrt": _v(
        "adam", "p.sub_(lr * m_hat / (v_hat.sqrt() + eps))", "p.sub_(lr * m_hat / (v_hat + eps).sqrt())",
        ADAM,
        "eps inside the square root"),
    "adam_amsgrad_max_of_corrected": _v(
        "adam",
        "                if group[\"amsgrad\"]:\n                    v_max = state[\"max_exp_avg_sq\"]\n"
        "                    v_max.copy_(torch.maximum(v_max, v))\n                    v = v_max\n"
        "                m_hat = m / (1 - beta1 ** t)\n                v_hat = v / (1 - beta2 ** t)\n",
        "                m_hat = m / (1 - beta1 ** t)\n                v_hat = v / (1 - beta2 ** t)\n"
        "                if group[\"amsgrad\"]:\n                    v_max = state[\"max_exp_avg_sq\"]\n"
        "                    v_max.copy_(torch.maximum(v_max, v_hat))\n                    v_hat = v_max\n",
        {"test_adam_amsgrad", "test_adam_groups", "test_adam_state_dict", "test_adam_rules"},
        "AMSGrad takes the maximum of the bias-corrected v̂ instead of v"),
    "adam_weight_decay_decoupled": _v(
        "adam", 'g = g + group["weight_decay"] * p', 'p.mul_(1 - lr * group["weight_decay"])',
        {"test_adam_weight_decay", "test_adam_groups", "test_adam_state_dict", "test_adam_rules"},
        "Adam's weight_decay applied as AdamW's decoupled decay instead of an L2 term"),
    "adam_reads_defaults": _v(
        "adam", 'lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]',
        'lr, (beta1, beta2), eps = group["lr"], self.defaults["betas"], self.defaults["eps"]',
        {"test_adam_groups", "test_adam_state_dict"},
        "betas and eps read from self.defaults instead of the group (also after load_state_dict)"),
    "adam_one_step_counter": _v(
        "adam", 't = state["step"].item()', 't = max(float(s["step"]) for s in self.state.values())',
        {"test_adam_groups", "test_adam_state_dict"},
        "one step count for all parameters (the largest), not each parameter's own"),
    "adam_state_misnamed": _v(
        "adam", 'state["exp_avg"] = torch.zeros_like(p)\n                    state["exp_avg_sq"] = torch.zeros_like(p)',
        'state["m"] = torch.zeros_like(p)\n                    state["v"] = torch.zeros_like(p)',
        {"test_adam_state_dict"},
        "moments saved as 'm' and 'v' instead of PyTorch's 'exp_avg' and 'exp_avg_sq'",
        ('m, v = state["exp_avg"], state["exp_avg_sq"]', 'm, v = state["m"], state["v"]')),
    "adam_step_python_number": _v(
        "adam", 'state["step"] = torch.tensor(0.0)', 'state["step"] = 0',
        {"test_adam_state_dict"},
        "state['step'] kept as a Python number instead of a 0-d tensor",
        ('t = state["step"].item()', 't = float(state["step"])')),
    "adam_calls_single_tensor_kernel": _v(
        "adam", "                m, v = state[\"exp_avg\"], state[\"exp_avg_sq\"]\n",
        "                step_t = torch.tensor(t - 1)\n"
        "                kernel._single_tensor_adam(\n"
        "                    [p], [p.grad], [state[\"exp_avg\"]], [state[\"exp_avg_sq\"]],\n"
        "                    [state.get(\"max_exp_avg_sq\", torch.zeros(()))], [step_t], None, None,\n"
        "                    amsgrad=group[\"amsgrad\"], has_complex=False, beta1=beta1, beta2=beta2, lr=lr,\n"
        "                    weight_decay=group[\"weight_decay\"], eps=eps, maximize=False, capturable=False,\n"
        "                    differentiable=False, decoupled_weight_decay=False)\n"
        "                continue\n"
        "                m, v = state[\"exp_avg\"], state[\"exp_avg_sq\"]\n",
        ADAM,
        "hands the update to torch.optim.adam._single_tensor_adam through an alias: the task scores 0",
        ("        loss = None\n", "        from torch.optim import adam as kernel\n        loss = None\n")),
    "adam_step_does_nothing": _v(
        "adam", "        loss = None\n",
        "        return None  # never updates anything, never calls anything forbidden\n        loss = None\n",
        ADAM,
        "step() returns at once: the rules cell must not award points to it"),
    # ------------------------------------------------------------------------------------------------ AdamW
    "adamw_decay_as_l2": _v(
        "adamw", "                p.mul_(1 - lr * group[\"weight_decay\"])\n                g = p.grad\n",
        "                g = p.grad + group[\"weight_decay\"] * p\n",
        ADAMW,
        "AdamW's decay added to the gradient (L2), as Adam does"),
    "adamw_decay_without_lr": _v(
        "adamw", 'p.mul_(1 - lr * group["weight_decay"])', 'p.mul_(1 - group["weight_decay"])',
        ADAMW,
        "the decay is not multiplied by the learning rate"),
    "adamw_decay_after_step": _v(
        "adamw", "                p.mul_(1 - lr * group[\"weight_decay\"])\n                g = p.grad\n",
        "                g = p.grad\n",
        ADAMW,
        "the decay applied after the Adam step instead of before it",
        ("                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))\n",
         "                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))\n"
         "                p.mul_(1 - lr * group[\"weight_decay\"])\n")),
    "adamw_default_weight_decay_zero": _v(
        "adamw", "eps=1e-8, weight_decay=1e-2, amsgrad=False", "eps=1e-8, weight_decay=0.0, amsgrad=False",
        {"test_adamw_decay", "test_adamw_rules"},
        "AdamW's default weight_decay 0 (Adam's) instead of 0.01 (the rules cell needs test_adamw_decay)"),
    "adamw_amsgrad_max_of_corrected": _v(
        "adamw",
        "                if group[\"amsgrad\"]:\n                    v_max = state[\"max_exp_avg_sq\"]\n"
        "                    v_max.copy_(torch.maximum(v_max, v))\n                    v = v_max\n"
        "                m_hat = m / (1 - beta1 ** t)\n                v_hat = v / (1 - beta2 ** t)\n",
        "                m_hat = m / (1 - beta1 ** t)\n                v_hat = v / (1 - beta2 ** t)\n"
        "                if group[\"amsgrad\"]:\n                    v_max = state[\"max_exp_avg_sq\"]\n"
        "                    v_max.copy_(torch.maximum(v_max, v_hat))\n                    v_hat = v_max\n",
        {"test_adamw_amsgrad", "test_adamw_groups", "test_adamw_state_dict", "test_adamw_rules"},
        "AMSGrad takes the maximum of the bias-corrected v̂ instead of v"),
    "adamw_reads_defaults": _v(
        "adamw", 'p.mul_(1 - lr * group["weight_decay"])', 'p.mul_(1 - lr * self.defaults["weight_decay"])',
        {"test_adamw_groups", "test_adamw_state_dict"},
        "weight_decay read from self.defaults instead of the group (also after load_state_dict)"),
    "adamw_state_misnamed": _v(
        "adamw",
        'state["exp_avg"] = torch.zeros_like(p)\n                    state["exp_avg_sq"] = torch.zeros_like(p)',
        'state["m"] = torch.zeros_like(p)\n                    state["v"] = torch.zeros_like(p)',
        {"test_adamw_state_dict"},
        "moments saved as 'm' and 'v' instead of PyTorch's names",
        ('m, v = state["exp_avg"], state["exp_avg_sq"]', 'm, v = state["m"], state["v"]')),
    "adamw_subclasses_torch_adamw": _v(
        "adamw", "class AdamW(torch.optim.Optimizer):",
        "from torch.optim import AdamW as Base\n\n\nclass AdamW(Base):",
        ADAMW,
        "subclasses torch.optim.AdamW (under another name) and calls its step: the task scores 0",
        ("        super().__init__(params, defaults)\n",
         "        super().__init__(params, **defaults)\n"),
        ("        loss = None\n", "        return super().step(closure)\n        loss = None\n")),
    # ------------------------------------------------------------------------------------------------ task 5
    "bias_correction_t_plus_one": _v(
        "bias_correction", "(m / (1 - beta1 ** t), v / (1 - beta2 ** t))",
        "(m / (1 - beta1 ** (t + 1)), v / (1 - beta2 ** (t + 1)))",
        {"test_bias_corrected", "test_bias_peak"},
        "bias correction with t + 1 (the peak's ratio divides by the corrected update)"),
    "bias_correction_lecture_typo": _v(
        "bias_correction", "(m / (1 - beta1 ** t), v / (1 - beta2 ** t))", "(m / (1 - beta1), v / (1 - beta2))",
        {"test_bias_corrected", "test_bias_peak"},
        "the lecture-note typo: divides by 1 - β (the peak's ratio divides by the corrected update)"),
    "bias_uncorrected_still_corrects_v": _v(
        "bias_correction", "if bias_correction else (m, v)", "if bias_correction else (m, v / (1 - beta2 ** t))",
        {"test_bias_uncorrected", "test_bias_peak"},
        "without bias correction, v is still corrected"),
    "bias_peak_zero_based": _v(
        "bias_correction", "return t + 1, float(ratio[t])", "return t, float(ratio[t])",
        {"test_bias_peak"},
        "the step of the peak counted from 0"),
    "bias_uses_torch_adam": _v(
        "bias_correction", "    beta1, beta2 = betas\n    m = v = 0.0\n",
        "    beta1, beta2 = betas\n    if bias_correction:\n"
        "        return updates_of(optim.Adam, grads, lr=lr, betas=betas, eps=eps)\n    m = v = 0.0\n",
        BIAS,
        "takes the corrected updates from torch.optim.Adam: the task scores 0"),
    # ------------------------------------------------------------------------------------------------ task 6
    "decay_adamw_without_lr": _v(
        "effective_decay", "adamw.append(-lr * lam * theta)", "adamw.append(-lam * theta)",
        {"test_decay_adamw", "test_decay_first_step"},
        "AdamW's decay part without the learning rate"),
    "decay_adamw_at_theta0": _v(
        "effective_decay", "adamw.append(-lr * lam * theta)", "adamw.append(-lr * lam * float(theta0))",
        {"test_decay_adamw"},
        "AdamW's decay part computed at θ₀ at every step, not along the path"),
    "decay_l2_without_momentum": _v(
        "effective_decay", "l2.append(-lr * m_decay / (1 - beta1 ** t) / denom)",
        "l2.append(-lr * lam * theta / denom)",
        {"test_decay_l2"},
        "the L2 decay part without the moving average (right at step 1 only)"),
    "decay_l2_v_without_penalty": _v(
        "effective_decay", "v = beta2 * v + (1 - beta2) * penalized * penalized", "v = beta2 * v + (1 - beta2) * g * g",
        {"test_decay_l2", "test_decay_first_step"},
        "Adam + L2's second moment from the loss gradients only"),
    "decay_uses_torch_adamw": _v(
        "effective_decay", "    theta, m, v = float(theta0), 0.0, 0.0\n",
        "    path = weight_path(optim.AdamW, grads, theta0, lr=lr, betas=betas, eps=eps, weight_decay=lam)\n"
        "    return torch.tensor(l2, dtype=grads.dtype), -lr * lam * path[:-1]\n"
        "    theta, m, v = float(theta0), 0.0, 0.0\n",
        DECAY,
        "takes AdamW's path from torch.optim.AdamW: the task scores 0"),
}

TABLE = GradingTable(ASSIGNMENT, "adaptive.ipynb", VARIANTS)
