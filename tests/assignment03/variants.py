"""Submissions for grading tests of assignment 03-regularization, generated from the nbgrader source notebook
(the harness: ``tests/gradingtable.py``). Each buggy variant patches one answer cell and names the test cells
that must lose their points; every other cell must keep full marks."""

from __future__ import annotations

from gradingtable import GradingTable, Variant

ASSIGNMENT = "03-regularization"

DROPOUT = frozenset({"test_dropout_stats", "test_dropout_mask", "test_dropout_eval", "test_dropout_edge",
                     "test_dropout_grad", "test_dropout_rules"})
BN = frozenset({"test_bn1d_train", "test_bn2d_train", "test_bn_running", "test_bn_eval", "test_bn_cumulative",
                "test_bn_options", "test_bn_state_dict", "test_bn_rules"})
BACKWARD = frozenset({"test_bn_backward_dx", "test_bn_backward_params", "test_bn_backward_rules"})
LN = frozenset({"test_ln_values", "test_ln_multidim", "test_ln_grad", "test_ln_rules"})
CROP = frozenset({"test_crop_values", "test_crop_edges"})
ES = frozenset({"test_es_stop", "test_es_restore", "test_es_protocol", "test_es_rules"})


def _v(cell: str, patches: list[tuple[str, str]], loses: set[str] | frozenset[str], what: str) -> Variant:
    (old, new), *extra = patches
    return Variant(cell, old, new, frozenset(loses), what, tuple(extra))


VARIANTS: dict[str, Variant] = {
    # ---------------------------------------------------------------- task 1: dropout
    "dropout_scaled_in_eval": _v("dropout", [
        ("    if not training:\n        return x\n", "    if not training:\n        return x * (1.0 - p)\n")],
        {"test_dropout_eval"}, "evaluation mode scales by 1 - p as well (the paper's test-time rule on top of "
                               "inverted dropout)"),
    "dropout_not_scaled": _v("dropout", [("    return x * keep / (1.0 - p)", "    return x * keep")],
                             {"test_dropout_stats", "test_dropout_mask", "test_dropout_grad", "test_dropout_rules"},
                             "the kept entries are not scaled by 1/(1 - p) (the rules cell requires the statistics)"),
    "dropout_p1_nan": _v("dropout", [
        ("    if p == 1.0:\n"
         "        return x * keep  # every entry dropped: zeros, and a zero gradient (not 0/0)\n", "")],
        {"test_dropout_edge"}, "p = 1 computes x * keep / 0: NaN instead of zeros"),
    "dropout_grad_unscaled": _v("dropout", [
        ("    return x * keep / (1.0 - p)",
         "    return (x * keep).detach() / (1.0 - p) + (x - x.detach()) * keep")],
        {"test_dropout_grad"}, "right values, but the gradient lacks the factor 1/(1 - p)"),
    "dropout_calls_f_dropout": _v("dropout", [
        ("    if not training:\n        return x\n",
         "    from torch.nn import functional as G\n    return G.dropout(x, p, training)\n")],
        DROPOUT, "hands the work to F.dropout through an alias: every cell of task 1 scores 0"),
    # ---------------------------------------------------------------- task 2: BatchNorm1d / BatchNorm2d
    "bn_variances_swapped": _v("batchnorm", [
        ("var = x.var(dim=dims, correction=0)  # biased: normalizes the batch", "var = x.var(dim=dims, correction=1)"),
        ("phi * var * n / (n - 1)", "phi * var * (n - 1) / n")],
        {"test_bn1d_train", "test_bn2d_train", "test_bn_running", "test_bn_cumulative", "test_bn_options",
         "test_bn_rules"}, "normalizes with the unbiased variance and stores the biased one"),
    "bn_updates_in_eval": _v("batchnorm", [
        ("        else:\n            mean, var = self.running_mean, self.running_var\n",
         "        else:\n"
         "            if self.track_running_stats:\n"
         "                with torch.no_grad():\n"
         "                    self.num_batches_tracked += 1\n"
         "                    self.running_mean.mul_(0.9).add_(0.1 * x.mean(dim=dims))\n"
         "            mean, var = self.running_mean, self.running_var\n")],
        {"test_bn_eval", "test_bn_options"}, "evaluation mode updates the running mean (and counts the batch)"),
    "bn_momentum_inverted": _v("batchnorm", [
        ("self.running_mean.mul_(1 - phi).add_(phi * mean)", "self.running_mean.mul_(phi).add_((1 - phi) * mean)"),
        ("self.running_var.mul_(1 - phi).add_(phi * var", "self.running_var.mul_(phi).add_((1 - phi) * var")],
        {"test_bn_running", "test_bn_cumulative"}, "momentum taken as the weight of the old value (Keras' convention)"),
    "bn_eps_outside_sqrt": _v("batchnorm", [
        ("torch.sqrt(var.view(shape) + self.eps)", "(torch.sqrt(var.view(shape)) + self.eps)")],
        {"test_bn1d_train", "test_bn2d_train", "test_bn_eval", "test_bn_options", "test_bn_rules"},
        "eps added outside the square root"),
    "bn_count_not_incremented": _v("batchnorm", [("                    self.num_batches_tracked += 1\n", "")],
                                   {"test_bn_running", "test_bn_cumulative"}, "num_batches_tracked stays 0"),
    "bn_statistics_detached": _v("batchnorm", [
        ("mean = x.mean(dim=dims)", "mean = x.detach().mean(dim=dims)"),
        ("var = x.var(dim=dims, correction=0)", "var = x.detach().var(dim=dims, correction=0)")],
        {"test_bn1d_train", "test_bn2d_train", "test_bn_rules"},
        "right values, but no gradient through the batch mean and variance (the rules cell requires test_bn1d_train)"),
    "bn_cumulative_off_by_one": _v("batchnorm", [
        ("1.0 / float(self.num_batches_tracked)", "1.0 / (float(self.num_batches_tracked) + 1)")],
        {"test_bn_cumulative"}, "momentum=None averages with 1/(t + 1)"),
    "bn_eval_uses_batch_statistics": _v("batchnorm", [
        ("if self.training or not self.track_running_stats:", "if True:")],
        {"test_bn_eval", "test_bn_options"}, "evaluation mode normalizes with the batch statistics"),
    "bn_count_not_saved": _v("batchnorm", [
        ('self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))',
         'self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long), persistent=False)')],
        {"test_bn_state_dict"}, "num_batches_tracked is not in the state_dict (load_state_dict fails)"),
    "bn_affine_false_has_parameters": _v("batchnorm", [
        ('            self.register_parameter("weight", None)\n            self.register_parameter("bias", None)\n',
         "            self.weight = nn.Parameter(torch.ones(num_features))\n"
         "            self.bias = nn.Parameter(torch.zeros(num_features))\n")],
        {"test_bn_options", "test_bn_state_dict"}, "affine=False still creates (trainable) weight and bias"),
    "bn_calls_native_batch_norm": _v("batchnorm", [
        ("        shape = [1, -1] + [1] * (x.ndim - 2)  # broadcasts a (C,) vector over x\n",
         "        bn = torch.nn.functional.batch_norm\n"
         "        if self.training and self.track_running_stats:\n"
         "            self.num_batches_tracked += 1\n"
         "        phi = 0.0 if not self.track_running_stats else (\n"
         "            1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)\n"
         "        if x.numel() // x.shape[1] <= 1 and (self.training or not self.track_running_stats):\n"
         "            raise ValueError('one value per channel')\n"
         "        return bn(x, self.running_mean, self.running_var, self.weight, self.bias,\n"
         "                  self.training or not self.track_running_stats, phi, self.eps)\n")],
        BN, "calls F.batch_norm through an alias: every cell of task 2 scores 0"),
    # ---------------------------------------------------------------- task 3: batchnorm_backward
    "backward_without_mean_term": _v("batchnorm_backward", [
        ("n * dx_hat - dx_hat.sum(dim=0) - x_hat", "n * dx_hat - x_hat")],
        {"test_bn_backward_dx", "test_bn_backward_rules"},
        "dx without the path through the batch mean (the rules cell requires dx)"),
    "backward_dgamma_wrong": _v("batchnorm_backward", [
        ("dgamma = (dout * x_hat).sum(dim=0)", "dgamma = dout.sum(dim=0)")],
        {"test_bn_backward_params"}, "dgamma sums dout instead of dout * x_hat"),
    "backward_uses_autograd": _v("batchnorm_backward", [
        ("    n = x.shape[0]\n",
         "    from torch import autograd as ag\n"
         "    xx, gg = x.clone().requires_grad_(True), gamma.clone().requires_grad_(True)\n"
         "    bb = torch.zeros_like(gg, requires_grad=True)\n"
         "    y = (xx - xx.mean(0)) / torch.sqrt(xx.var(0, correction=0) + eps) * gg + bb\n"
         "    return ag.grad(y, (xx, gg, bb), dout)\n"
         "    n = x.shape[0]\n")],
        BACKWARD, "right gradients from torch.autograd.grad (imported as ag): every cell of task 3 scores 0"),
    # ---------------------------------------------------------------- task 4: LayerNorm
    "ln_last_dimension_only": _v("layernorm", [
        ("dims = tuple(range(-len(self.normalized_shape), 0))", "dims = (-1,)")],
        {"test_ln_multidim"}, "normalizes over the last dimension even when normalized_shape has several"),
    "ln_unbiased_variance": _v("layernorm", [
        ("var = x.var(dim=dims, keepdim=True, correction=0)", "var = x.var(dim=dims, keepdim=True)")],
        LN, "normalizes with the unbiased variance"),
    "ln_statistics_detached": _v("layernorm", [
        ("mean = x.mean(dim=dims, keepdim=True)", "mean = x.detach().mean(dim=dims, keepdim=True)"),
        ("var = x.var(dim=dims, keepdim=True, correction=0)",
         "var = x.detach().var(dim=dims, keepdim=True, correction=0)")],
        {"test_ln_grad"}, "right values, but no gradient through the mean and variance"),
    "ln_bias_flag_ignored": _v("layernorm", [
        ("            if bias:\n                self.bias = nn.Parameter(torch.zeros(self.normalized_shape))\n"
         "            else:\n                self.register_parameter(\"bias\", None)\n",
         "            self.bias = nn.Parameter(torch.zeros(self.normalized_shape))\n")],
        {"test_ln_multidim"}, "bias=False still creates a bias"),
    "ln_calls_layer_norm": _v("layernorm", [
        ("        dims = tuple(range(-len(self.normalized_shape), 0))\n",
         "        ln = torch.layer_norm\n"
         "        return ln(x, self.normalized_shape, self.weight, self.bias, self.eps)\n")],
        LN, "calls torch.layer_norm through an alias: every cell of task 4 scores 0"),
    # ---------------------------------------------------------------- task 5: random_crop
    "crop_offsets_swapped": _v("random_crop", [
        ("rows = offsets[:, :1]", "rows = offsets[:, 1:]"), ("cols = offsets[:, 1:]", "cols = offsets[:, :1]")],
        {"test_crop_values"}, "column 0 of the offsets used as dx and column 1 as dy"),
    "crop_replicate_padding": _v("random_crop", [
        ("    padded = x.new_zeros(n, c, h + 2 * padding, w + 2 * padding)\n"
         "    padded[:, :, padding:padding + h, padding:padding + w] = x\n",
         "    padded = F.pad(x, (padding,) * 4, mode=\"replicate\")\n")],
        {"test_crop_values"}, "pads by repeating the border instead of zeros"),
    "crop_no_padding_check": _v("random_crop", [
        ('    if padding < 0:\n        raise ValueError(f"padding must be >= 0, got {padding}")\n', "")],
        {"test_crop_edges"}, "a negative padding raises RuntimeError from randint, not ValueError"),
    "crop_calls_trainlab": _v("random_crop", [
        ("    padded = x.new_zeros(",
         "    from trainlab import augment as A\n    return A.random_crop(x, padding, offsets=offsets)\n"
         "    padded = x.new_zeros(")],
        CROP, "right crops from trainlab's random_crop: every cell of task 5 scores 0"),
    # ---------------------------------------------------------------- task 6: mixup
    "mixup_targets_not_mixed": _v("mixup", [
        ("lam * targets + (1 - lam) * targets[perm]", "targets")],
        {"test_mixup_targets"}, "mixes the images but keeps the original targets"),
    "mixup_weights_swapped": _v("mixup", [
        ("return lam * x + (1 - lam) * x[perm]", "return (1 - lam) * x + lam * x[perm]")],
        {"test_mixup_inputs"}, "the images are mixed with 1 - lam on the original"),
    "mixup_uses_torchvision": _v("mixup", [
        ("    perm = torch.randperm(",
         "    from torchvision.transforms import v2 as T\n"
         "    assert T.MixUp(num_classes=num_classes) is not None  # only to compare conventions\n"
         "    perm = torch.randperm(")],
        {"test_mixup_inputs", "test_mixup_targets"},
        "right values, but refers to torchvision's MixUp (imported under another name): every cell of task 6 scores 0"),
    # ---------------------------------------------------------------- task 7: EarlyStopping
    "es_restores_last_weights": _v("early_stopping", [
        ("self.best_state = copy.deepcopy(state.model.state_dict())", "self.best_state = state.model.state_dict()")],
        {"test_es_restore"}, "keeps state_dict() without a copy: restores the last weights, not the best"),
    "es_ties_improve": _v("early_stopping", [
        ("if current < self.best - self.min_delta:", "if current <= self.best - self.min_delta:")],
        {"test_es_stop", "test_es_rules"},
        "an equal loss counts as an improvement (the rules cell requires test_es_stop)"),
    "es_patience_off_by_one": _v("early_stopping", [
        ("if self.wait >= self.patience:", "if self.wait > self.patience:")],
        {"test_es_stop", "test_es_rules"}, "stops one epoch late (the rules cell requires test_es_stop)"),
    "es_no_reset": _v("early_stopping", [
        ("        self._reset()\n\n    def on_epoch_end", "        pass\n\n    def on_epoch_end")],
        {"test_es_protocol"}, "on_train_begin does not reset: a second fit starts with the first one's best"),
    "es_subclasses_trainlab": _v("early_stopping", [
        ("class EarlyStopping(trainlab.Callback):",
         "from trainlab.train import EarlyStopping as _Stopper\n\n\nclass EarlyStopping(_Stopper):")],
        ES, "subclasses trainlab's EarlyStopping (imported under another name): every cell of task 7 scores 0"),
}

TABLE = GradingTable(ASSIGNMENT, "regularization.ipynb", VARIANTS)
