"""Submissions for grading tests of assignment 04-initialization, generated from the nbgrader source notebook
(the harness: ``tests/gradingtable.py``). Each buggy variant patches one answer cell and names the test cells
that must lose their points."""

from __future__ import annotations

from gradingtable import GradingTable, Variant

ASSIGNMENT = "04-initialization"

TASK1 = frozenset({"test_fans", "test_gain", "test_xavier_uniform", "test_xavier_normal", "test_kaiming_uniform",
                   "test_kaiming_normal", "test_init_inplace", "test_init_rules"})
TASK2 = frozenset({"test_stats_closed_acts", "test_stats_closed_grads", "test_stats_random", "test_stats_conv",
                   "test_stats_side_effects", "test_stats_rules"})
TASK3 = frozenset({"test_numgrad", "test_relerr", "test_gradcheck", "test_gradcheck_rules"})
TASK4 = frozenset({"test_initial_loss_value", "test_initial_loss_verdict", "test_overfit_healthy",
                   "test_overfit_broken", "test_sanity_rules"})

_XAVIER_STD = "std = gain * math.sqrt(2.0 / (fan_in + fan_out))\n"
_KAIMING_UNIFORM = ('def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):\n'
                    '    if mode not in ("fan_in", "fan_out"):\n'
                    '        raise ValueError(f"mode must be \'fan_in\' or \'fan_out\', got {mode!r}")\n'
                    '    fan_in, fan_out = fan_in_and_fan_out(tensor)\n'
                    '    fan = fan_in if mode == "fan_in" else fan_out\n'
                    '    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)\n'
                    '    bound = math.sqrt(3.0) * std\n')

VARIANTS: dict[str, Variant] = {
    # ---------------------------------------------------------------- task 1: fans, gains, initializers
    "fans_receptive_field_ignored": Variant(
        "fans_gain",
        "    for size in tensor.shape[2:]:\n        receptive_field *= int(size)\n",
        "",
        frozenset({"test_fans", "test_xavier_uniform", "test_xavier_normal", "test_kaiming_uniform",
                   "test_kaiming_normal", "test_init_rules"}),
        "convolution fans without the receptive field (in_channels, out_channels only)",
    ),
    "fans_1d_no_value_error": Variant(
        "fans_gain",
        "if tensor.dim() < 2:",
        "if tensor.dim() < 1:",
        frozenset({"test_fans"}),
        "a 1-D tensor raises IndexError, not ValueError",
    ),
    "gain_relu_two": Variant(
        "fans_gain",
        "        return math.sqrt(2.0)\n",
        "        return 2.0\n",
        frozenset({"test_gain", "test_kaiming_uniform", "test_kaiming_normal", "test_init_rules"}),
        "ReLU gain 2 (the variance factor) instead of sqrt(2)",
    ),
    "gain_leaky_slope_not_squared": Variant(
        "fans_gain",
        "math.sqrt(2.0 / (1.0 + slope**2))",
        "math.sqrt(2.0 / (1.0 + slope))",
        frozenset({"test_gain", "test_kaiming_uniform", "test_kaiming_normal", "test_init_rules"}),
        "leaky ReLU gain sqrt(2/(1+a)) instead of sqrt(2/(1+a^2))",
    ),
    "gain_leaky_default_zero": Variant(
        "fans_gain",
        "slope = 0.01 if param is None else float(param)",
        "slope = 0.0 if param is None else float(param)",
        frozenset({"test_gain"}),
        "calculate_gain('leaky_relu') without param uses the slope 0, not 0.01",
    ),
    "xavier_uniform_bound_without_sqrt3": Variant(
        "initializers",
        _XAVIER_STD + "    bound = math.sqrt(3.0) * std\n",
        _XAVIER_STD + "    bound = std\n",
        frozenset({"test_xavier_uniform"}),
        "uniform bound = sigma: the samples' standard deviation is sigma/sqrt(3)",
    ),
    "xavier_normal_fan_in_only": Variant(
        "initializers",
        "    std = gain * math.sqrt(2.0 / (fan_in + fan_out))\n    with torch.no_grad():\n"
        "        tensor.normal_(0.0, std, generator=generator)",
        "    std = gain * math.sqrt(1.0 / fan_in)\n    with torch.no_grad():\n"
        "        tensor.normal_(0.0, std, generator=generator)",
        frozenset({"test_xavier_normal"}),
        "Xavier normal with 1/fan_in (LeCun) instead of 2/(fan_in + fan_out)",
    ),
    "xavier_normal_ignores_generator": Variant(
        "initializers",
        "    std = gain * math.sqrt(2.0 / (fan_in + fan_out))\n    with torch.no_grad():\n"
        "        tensor.normal_(0.0, std, generator=generator)",
        "    std = gain * math.sqrt(2.0 / (fan_in + fan_out))\n    with torch.no_grad():\n"
        "        tensor.normal_(0.0, std)",
        frozenset({"test_xavier_normal", "test_init_inplace"}),
        "xavier_normal_ draws from the global generator whatever generator it is given",
    ),
    "kaiming_uniform_modes_swapped": Variant(
        "initializers",
        _KAIMING_UNIFORM,
        _KAIMING_UNIFORM.replace('fan = fan_in if mode == "fan_in" else fan_out',
                                 'fan = fan_out if mode == "fan_in" else fan_in'),
        frozenset({"test_kaiming_uniform"}),
        "kaiming_uniform_ uses fan_out for mode='fan_in' and vice versa",
    ),
    "kaiming_uniform_bound_without_sqrt3": Variant(
        "initializers",
        _KAIMING_UNIFORM,
        _KAIMING_UNIFORM.replace("bound = math.sqrt(3.0) * std", "bound = std"),
        frozenset({"test_kaiming_uniform"}),
        "kaiming_uniform_ with the bound sigma instead of sqrt(3) sigma",
    ),
    "kaiming_normal_ignores_a": Variant(
        "initializers",
        '    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)\n    with torch.no_grad():\n'
        '        tensor.normal_(0.0, std, generator=generator)',
        '    std = calculate_gain(nonlinearity) / math.sqrt(fan)\n    with torch.no_grad():\n'
        '        tensor.normal_(0.0, std, generator=generator)',
        frozenset({"test_kaiming_normal", "test_init_rules"}),
        "kaiming_normal_ does not pass a to the gain (so the default leaky slope 0.01 is used)",
    ),
    "init_without_no_grad": Variant(
        "initializers",
        "    bound = math.sqrt(3.0) * std\n    with torch.no_grad():\n"
        "        tensor.uniform_(-bound, bound, generator=generator)\n    return tensor\n\n\ndef xavier_normal_",
        "    bound = math.sqrt(3.0) * std\n    tensor.uniform_(-bound, bound, generator=generator)\n"
        "    return tensor\n\n\ndef xavier_normal_",
        frozenset({"test_init_inplace"}),
        "xavier_uniform_ fills without torch.no_grad(): a parameter that requires grad raises RuntimeError",
    ),
    "init_returns_new_tensor": Variant(
        "initializers",
        '    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)\n    with torch.no_grad():\n'
        '        tensor.normal_(0.0, std, generator=generator)\n    return tensor',
        '    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)\n    with torch.no_grad():\n'
        '        tensor = torch.empty_like(tensor).normal_(0.0, std, generator=generator)\n    return tensor',
        frozenset({"test_init_inplace"}),
        "kaiming_normal_ draws into a new tensor and returns it: the parameter is never filled",
    ),
    "init_calls_nn_init_through_alias": Variant(
        "initializers",
        "def xavier_normal_(tensor, gain=1.0, generator=None):\n",
        "from torch.nn import init as _weights\n\n\ndef xavier_normal_(tensor, gain=1.0, generator=None):\n"
        "    return _weights.xavier_normal_(tensor, gain=gain, generator=generator)\n",
        TASK1,
        "xavier_normal_ hands the work to torch.nn.init under another name: every cell of task 1 scores 0",
    ),
    "gain_from_trainlab": Variant(
        "fans_gain",
        '    """The gain of the table above, as a Python float."""\n',
        '    """The gain of the table above, as a Python float."""\n'
        "    from trainlab.init import gain as _course_gain\n"
        "    return _course_gain(nonlinearity, param)\n",
        TASK1,
        "calculate_gain delegates to the course library's trainlab.init.gain (same values): task 1 scores 0",
    ),
    # ---------------------------------------------------------------- task 2: layer_stds
    "stats_unbiased_std": Variant(
        "layer_stds",
        "activation_stds = [float(out.detach().std(correction=0)) for out in outputs]\n"
        "    gradient_stds = [float(g.std(correction=0)) for g in grads]",
        "activation_stds = [float(out.detach().std()) for out in outputs]\n"
        "    gradient_stds = [float(g.std()) for g in grads]",
        TASK2 - {"test_stats_side_effects"},
        "the unbiased (n - 1) standard deviation instead of the population one",
    ),
    "stats_activation_std_per_feature": Variant(
        "layer_stds",
        "activation_stds = [float(out.detach().std(correction=0)) for out in outputs]",
        "activation_stds = [float(out.detach().std(dim=0, correction=0).mean()) for out in outputs]",
        frozenset({"test_stats_closed_acts", "test_stats_random", "test_stats_conv", "test_stats_rules"}),
        "activation std over the batch dimension per feature, then averaged (the wrong dimension)",
    ),
    "stats_gradient_std_per_example": Variant(
        "layer_stds",
        "gradient_stds = [float(g.std(correction=0)) for g in grads]",
        "gradient_stds = [float(g.flatten(1).std(dim=1, correction=0).mean()) for g in grads]",
        frozenset({"test_stats_closed_grads", "test_stats_random", "test_stats_conv", "test_stats_rules"}),
        "gradient std per example (over the features), then averaged over the batch",
    ),
    "stats_layer_inputs": Variant(
        "layer_stds",
        "activation_stds = [float(out.detach().std(correction=0)) for out in outputs]",
        "activation_stds = [float(out.detach().std(correction=0)) for out in [x] + outputs[:-1]]",
        frozenset({"test_stats_closed_acts", "test_stats_random", "test_stats_conv", "test_stats_rules"}),
        "the std of each layer's input instead of its output (shifted by one layer)",
    ),
    "stats_backward_sets_grad": Variant(
        "layer_stds",
        "        outputs.append(h)\n    loss = loss_fn(h, y)\n    grads = torch.autograd.grad(loss, outputs)\n",
        "        h.retain_grad()\n        outputs.append(h)\n    loss = loss_fn(h, y)\n    loss.backward()\n"
        "    grads = [out.grad for out in outputs]\n",
        frozenset({"test_stats_side_effects"}),
        "loss.backward() with retain_grad: right values, but the parameters' .grad are changed",
    ),
    "stats_peeks_at_trainlab_diagnostics": Variant(
        "layer_stds",
        "    outputs = []\n",
        "    from trainlab import diagnostics as _diag\n    _diag.layer_statistics(model, x, y, loss_fn=loss_fn)\n"
        "    outputs = []\n",
        TASK2,
        "right values, but it calls trainlab.diagnostics.layer_statistics (imported under another name)",
    ),
    # ---------------------------------------------------------------- task 3: gradient checking
    "numgrad_one_sided": Variant(
        "grad_check",
        "            flat[i] = old - eps\n            minus = f(x64).item()\n            flat[i] = old\n"
        "            gflat[i] = (plus - minus) / (2 * eps)",
        "            flat[i] = old\n            minus = f(x64).item()\n            gflat[i] = (plus - minus) / eps",
        frozenset({"test_numgrad", "test_gradcheck", "test_gradcheck_rules"}),
        "one-sided differences (f(x + eps) - f(x)) / eps: an error of order eps",
    ),
    "numgrad_in_input_dtype": Variant(
        "grad_check",
        "x64 = x.detach().to(torch.float64).clone(memory_format=torch.contiguous_format)",
        "x64 = x.detach().clone(memory_format=torch.contiguous_format)",
        frozenset({"test_numgrad", "test_gradcheck", "test_gradcheck_rules"}),
        "differences in the input's dtype: a float32 x gives float32 round-off",
    ),
    "relerr_without_abs": Variant(
        "grad_check",
        "return (a - n).abs() / torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)",
        "return (a - n) / torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)",
        frozenset({"test_relerr", "test_gradcheck", "test_gradcheck_rules"}),
        "relative error without the absolute value: a gradient too small everywhere looks perfect",
    ),
    "relerr_sum_denominator": Variant(
        "grad_check",
        "torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)",
        "(a.abs() + n.abs()).clamp_min(1e-12)",
        frozenset({"test_relerr", "test_gradcheck", "test_gradcheck_rules"}),
        "|a - n| / (|a| + |n|) (the CS231n assignments' form) instead of the max asked for",
    ),
    "relerr_without_floor": Variant(
        "grad_check",
        "torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)",
        "torch.maximum(a.abs(), n.abs())",
        frozenset({"test_relerr", "test_gradcheck_rules"}),
        "no floor: two zero gradients give 0/0 = nan",
    ),
    "gradcheck_mean_not_max": Variant(
        "grad_check",
        "return float(relative_error(analytic, numeric).max())",
        "return float(relative_error(analytic, numeric).mean())",
        frozenset({"test_gradcheck", "test_gradcheck_rules"}),
        "the mean relative error: one wrong entry among many goes unnoticed",
    ),
    "gradcheck_analytic_in_input_dtype": Variant(
        "grad_check",
        "x64 = x.detach().to(torch.float64).clone().requires_grad_(True)",
        "x64 = x.detach().clone().requires_grad_(True)",
        frozenset({"test_gradcheck", "test_gradcheck_rules"}),
        "the analytic gradient at a float32 x is computed in float32",
    ),
    "numgrad_from_trainlab_sanity": Variant(
        "grad_check",
        '    """Centered differences of f at a float64 copy of x, as a float64 tensor shaped like x."""\n',
        '    """Centered differences of f at a float64 copy of x, as a float64 tensor shaped like x."""\n'
        "    from trainlab import sanity as _checks\n"
        "    return _checks.numerical_gradient(f, x.detach().to(torch.float64).clone(), eps)\n",
        TASK3,
        "numerical_gradient delegates to trainlab.sanity (same values): every cell of the task scores 0",
    ),
    "find_bug_wrong_answer": Variant(
        "find_bug",
        'WRONG_GRADIENT = "b2"',
        'WRONG_GRADIENT = "b1"',
        frozenset({"test_find_bug"}),
        "names b1 instead of b2",
    ),
    # ---------------------------------------------------------------- task 4: sanity checks
    "initial_loss_log2": Variant(
        "sanity",
        "expected = math.log(n_classes)",
        "expected = math.log2(n_classes)",
        frozenset({"test_initial_loss_value", "test_initial_loss_verdict", "test_sanity_rules"}),
        "compares with log2 C instead of ln C",
    ),
    "initial_loss_absolute_tolerance": Variant(
        "sanity",
        "abs(loss - expected) <= rtol * expected",
        "abs(loss - expected) <= rtol",
        frozenset({"test_initial_loss_verdict"}),
        "an absolute tolerance rtol instead of rtol * ln C",
    ),
    "overfit_with_sgd": Variant(
        "sanity",
        "optimizer = torch.optim.Adam(model.parameters(), lr=lr)",
        "optimizer = torch.optim.SGD(model.parameters(), lr=lr)",
        frozenset({"test_overfit_healthy", "test_overfit_broken", "test_sanity_rules"}),
        "plain SGD instead of Adam: not the run specified",
    ),
    "overfit_without_zero_grad": Variant(
        "sanity",
        "        optimizer.zero_grad()\n",
        "",
        frozenset({"test_overfit_healthy", "test_overfit_broken", "test_sanity_rules"}),
        "gradients accumulate over the steps",
    ),
    "overfit_final_loss_before_last_step": Variant(
        "sanity",
        "final_loss = F.cross_entropy(logits, y).item()",
        "final_loss = losses[-1]",
        frozenset({"test_overfit_healthy", "test_overfit_broken", "test_sanity_rules"}),
        "the final loss is the last step's loss before its update",
    ),
    "overfit_ok_ignores_loss": Variant(
        "sanity",
        '"ok": final_accuracy == 1.0 and final_loss < tol}',
        '"ok": final_accuracy == 1.0}',
        frozenset({"test_overfit_broken"}),
        "ok from the accuracy alone: a softmax before the loss (loss stuck near 0.74) passes",
    ),
    "overfit_from_trainlab_sanity": Variant(
        "sanity",
        "    losses = []\n    for _ in range(steps):\n        optimizer.zero_grad()\n"
        "        loss = F.cross_entropy(model(x), y)\n        losses.append(loss.item())\n"
        "        loss.backward()\n        optimizer.step()\n",
        "    from trainlab.sanity import overfit as _memorize\n"
        "    losses = _memorize(model, x, y, steps=steps, lr=lr)\n",
        TASK4,
        "overfit_tiny_batch trains with trainlab.sanity.overfit (same run): every cell of task 4 scores 0",
    ),
}

TABLE = GradingTable(ASSIGNMENT, "initialization.ipynb", VARIANTS)
