"""Gradients as objects of study: mini-batch noise, a finite-difference gradient-norm penalty, throughput.

* :func:`minibatch_gradient_variance` measures E‖g_B − ∇L‖² by drawing mini-batches, and
  :func:`per_example_gradient_variance` gives the σ² that theory predicts it from
  (σ²/B with replacement, σ²/B · (n − B)/(n − 1) without, see :func:`predicted_variance`).
* :func:`grad_norm_penalty_grads` returns a ``compute_grads`` for :func:`trainlab.fit` that follows
  the gradient of L + (τ/4)‖∇L‖², i.e. ∇L + (τ/2)·H∇L, with the Hessian-vector product taken by
  finite differences of gradients as in Geiping et al. (2022): two backward passes, no double backward.
* :func:`measure_throughput` times forward + backward at several batch sizes (samples per second).
* :func:`hessian_vector_product` (exact, by double backward) and :func:`top_hessian_eigenvalue` (power
  iteration on it) measure the *sharpness* λ_max of the training loss; :class:`SharpnessTracker` records
  it during :func:`trainlab.fit`, to compare with the stability limit 2/γ (2(1 + ρ)/γ with momentum).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import Split, check_pair
from .timing import best_time, device_sync
from .train import Callback, LossFn, TrainState

Data = Split | tuple[torch.Tensor, torch.Tensor]


def _xy(data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = (data.x, data.y) if isinstance(data, Split) else data
    check_pair(x, y)
    return x, y


def _params(model: nn.Module) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    return params


def flat_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy
) -> torch.Tensor:
    """∇ of the mean loss on ``(x, y)`` as one flat vector (``p.grad`` is left untouched)."""
    params = _params(model)
    grads = torch.autograd.grad(loss_fn(model(x), y), params)
    return torch.cat([g.reshape(-1) for g in grads])


def full_gradient(model: nn.Module, data: Data, loss_fn: LossFn = F.cross_entropy, chunk: int = 4096) -> torch.Tensor:
    """∇L over the whole data set (mean loss), computed in chunks to bound memory."""
    x, y = _xy(data)
    total = None
    for start in range(0, x.shape[0], chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        g = flat_gradient(model, xb, yb, loss_fn) * (xb.shape[0] / x.shape[0])
        total = g if total is None else total + g
    return total


def per_example_gradient_variance(
    model: nn.Module, data: Data, loss_fn: LossFn = F.cross_entropy, chunk: int = 256
) -> float:
    """σ² = (1/n) Σᵢ ‖∇ℓᵢ − ∇L‖², the total variance of one example's gradient (population form).

    Uses ``torch.func`` (vmap over per-example gradients); ``loss_fn`` must accept a batch of one.
    """
    from torch.func import functional_call, grad, vmap

    x, y = _xy(data)
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def one_loss(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0))

    per_example = vmap(grad(one_loss), in_dims=(None, 0, 0))
    sum_sq = torch.zeros((), dtype=torch.float64, device=x.device)
    mean = None
    for start in range(0, x.shape[0], chunk):
        g = per_example(params, x[start : start + chunk], y[start : start + chunk])
        flat = torch.cat([g[name].reshape(g[name].shape[0], -1) for name in names], dim=1).double()
        sum_sq += flat.pow(2).sum()
        s = flat.sum(0)
        mean = s if mean is None else mean + s
    n = x.shape[0]
    mean = mean / n
    return float(sum_sq / n - mean.pow(2).sum())


def predicted_variance(sigma2: float, n: int, batch_size: int, replacement: bool) -> float:
    """E‖g_B − ∇L‖² for a mean over B examples drawn from n with per-example variance σ²."""
    if not 1 <= batch_size <= n and not replacement:
        raise ValueError(f"without replacement the batch size must be in 1..{n}, got {batch_size}")
    if replacement:
        return sigma2 / batch_size
    return sigma2 / batch_size * (n - batch_size) / max(n - 1, 1)


def minibatch_gradient_errors(
    model: nn.Module,
    data: Data,
    batch_sizes: Sequence[int],
    n_samples: int = 32,
    *,
    replacement: bool = False,
    loss_fn: LossFn = F.cross_entropy,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """‖g_B − ∇L‖² for ``n_samples`` random mini-batches of each size B (one value per draw).

    ``replacement=False`` draws each batch as SGD does within an epoch (distinct examples);
    ``True`` draws B indices independently. The model's parameters are not changed. The mean over
    draws estimates E‖g_B − ∇L‖²; their spread gives its standard error (std / √n_samples).
    """
    x, y = _xy(data)
    n = x.shape[0]
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    gen = torch.Generator().manual_seed(seed)
    full = full_gradient(model, (x, y), loss_fn)
    out = {}
    for b in batch_sizes:
        if not replacement and not 1 <= b <= n:
            raise ValueError(f"batch size {b} is not in 1..{n} (sampling without replacement)")
        errors = torch.empty(n_samples, dtype=torch.float64, device=x.device)  # on the device, read once
        for k in range(n_samples):
            if replacement:
                idx = torch.randint(n, (b,), generator=gen)
            else:
                idx = torch.randperm(n, generator=gen)[:b]
            idx = idx.to(x.device)
            g = flat_gradient(model, x[idx], y[idx], loss_fn)
            errors[k] = (g - full).double().pow(2).sum()
        out[int(b)] = errors.cpu().numpy()
    return out


def minibatch_gradient_variance(
    model: nn.Module,
    data: Data,
    batch_sizes: Sequence[int],
    n_samples: int = 32,
    *,
    replacement: bool = False,
    loss_fn: LossFn = F.cross_entropy,
    seed: int = 0,
) -> dict[int, float]:
    """Measured E‖g_B − ∇L‖² for each batch size B, averaged over ``n_samples`` random mini-batches.

    The mean of :func:`minibatch_gradient_errors` (use that for error bars).
    """
    errors = minibatch_gradient_errors(model, data, batch_sizes, n_samples, replacement=replacement,
                                       loss_fn=loss_fn, seed=seed)
    return {b: float(e.mean()) for b, e in errors.items()}


def noise_scale(model: nn.Module, data: Data, loss_fn: LossFn = F.cross_entropy) -> float:
    """The "simple noise scale" B_noise = σ² / ‖∇L‖² of McCandlish et al. (2018).

    σ² is the total per-example gradient variance (:func:`per_example_gradient_variance`). At
    B = B_noise the noise of g_B (σ²/B with replacement) is as large as the squared gradient itself;
    it estimates the *critical batch size*, beyond which doubling B no longer halves the steps needed.
    """
    g = full_gradient(model, data, loss_fn)
    return per_example_gradient_variance(model, data, loss_fn) / float(g.double().pow(2).sum())


def grad_norm_penalty_grads(
    tau: float,
    eps: float = 0.01,
    *,
    loss_fn: LossFn = F.cross_entropy,
    block_size: int | None = None,
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A ``compute_grads`` for :func:`trainlab.fit` that leaves ∇[L + (τ/4)‖∇L‖²] in ``p.grad``.

    ∇[(τ/4)‖∇L‖²] = (τ/2)·H∇L, and the Hessian-vector product is a forward difference of gradients,

        H g ≈ (∇L(θ + h·g) − ∇L(θ)) / h,   h = eps / ‖g‖,

    so the parameters move by a fixed length ``eps`` along the gradient direction (the step is
    scaled by the gradient norm, as in Geiping et al., 2022). Cost: two forward/backward passes.

    ``block_size``: split the batch into blocks of this many examples and penalise the mean of the
    blocks' squared gradient norms, (τ/4)·mean_k ‖∇L_k‖² (Geiping et al.'s "bs32" regulariser);
    the loss term is still the mean over the whole batch.
    """
    if tau < 0 or eps <= 0:
        raise ValueError(f"need tau >= 0 and eps > 0, got tau={tau}, eps={eps}")
    if block_size is not None and block_size < 1:
        raise ValueError(f"block_size must be a positive int or None, got {block_size}")

    def penalised(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = _params(model)
        size = xb.shape[0] if block_size is None else block_size
        total = [torch.zeros_like(p) for p in params]
        losses, all_logits = [], []
        for start in range(0, xb.shape[0], size):
            xk, yk = xb[start : start + size], yb[start : start + size]
            weight = xk.shape[0] / xb.shape[0]
            logits = model(xk)
            loss = loss_fn(logits, yk)
            g = torch.autograd.grad(loss, params)
            gnorm = torch.sqrt(sum(gi.pow(2).sum() for gi in g))
            h = eps / gnorm.clamp_min(1e-12)
            saved = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, gi in zip(params, g, strict=True):
                    p.add_(gi * h)
            g_shift = torch.autograd.grad(loss_fn(model(xk), yk), params)
            with torch.no_grad():
                for p, s in zip(params, saved, strict=True):
                    p.copy_(s)
                for acc, gi, gs in zip(total, g, g_shift, strict=True):
                    acc.add_(weight * (gi + (tau / 2) * (gs - gi) / h))
            losses.append(loss.detach() * weight)
            all_logits.append(logits.detach())
        for p, acc in zip(params, total, strict=True):
            p.grad = acc
        return torch.stack(losses).sum(), torch.cat(all_logits)

    return penalised


def measure_throughput(
    model: nn.Module,
    x: torch.Tensor,
    batch_sizes: Sequence[int],
    device: torch.device | str | None = None,
    *,
    num_classes: int | None = None,
    min_time: float = 0.05,
    warmup: int = 2,
) -> dict[int, float]:
    """Training throughput (examples per second of forward + backward) at each batch size.

    ``x`` holds example inputs (one is repeated when a batch needs more than ``len(x)``); labels are
    random. Each batch size is warmed up, then repeated (at least 3 times) until ``min_time`` seconds
    have passed; the rate uses the fastest repetition, which is robust to a busy machine.
    On a GPU the clock waits for the device (``torch.cuda.synchronize``).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device)
    with torch.no_grad():
        out_dim = num_classes or model(x[:1].to(device)).shape[1]
    sync = device_sync(device)
    result = {}
    for b in batch_sizes:
        if b < 1:
            raise ValueError(f"batch sizes must be positive, got {b}")
        idx = torch.arange(b) % x.shape[0]
        xb = x[idx].to(device)
        yb = torch.randint(out_dim, (b,), device=device)

        def step(xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> None:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()

        result[int(b)] = b / best_time(step, sync, min_time, warmup)
    model.zero_grad(set_to_none=True)
    return result


def hessian_vector_product(
    model: nn.Module, data: Data, v: Sequence[torch.Tensor], loss_fn: LossFn = F.cross_entropy
) -> list[torch.Tensor]:
    """H v for the Hessian H of the mean loss on ``data``, exactly, by double backward.

    Pearlmutter's trick: H v = ∇_θ ⟨∇_θ L(θ), v⟩, the gradient of a scalar, so it costs about two
    gradients and never forms H. ``v`` has one tensor per trainable parameter; ``p.grad`` is untouched.
    """
    x, y = _xy(data)
    params = _params(model)
    if len(v) != len(params) or any(vi.shape != p.shape for vi, p in zip(v, params, strict=False)):
        raise ValueError("v needs one tensor per trainable parameter, with the parameter's shape")
    grads = torch.autograd.grad(loss_fn(model(x), y), params, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(grads, v, strict=True))
    return [h.detach() for h in torch.autograd.grad(dot, params)]


def top_hessian_eigenvalue(
    model: nn.Module,
    data: Data,
    iters: int = 20,
    *,
    v0: Sequence[torch.Tensor] | None = None,
    loss_fn: LossFn = F.cross_entropy,
    seed: int = 0,
) -> tuple[float, list[torch.Tensor]]:
    """Sharpness: the eigenvalue of largest magnitude of the training-loss Hessian, by power iteration.

    Repeats v ← Hv / ‖Hv‖ ``iters`` times from ``v0`` (default: a random direction drawn from
    ``seed``; pass the previous eigenvector to warm-start a tracker) and returns (vᵀHv, v). Near a
    minimum the top eigenvalue is positive and largest in magnitude, so this is λ_max.
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    params = _params(model)
    if v0 is None:
        gen = torch.Generator().manual_seed(seed)
        v0 = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.sqrt(sum(vi.pow(2).sum() for vi in v0))
    v = [vi / norm for vi in v0]
    eig = 0.0
    for _ in range(iters):
        hv = hessian_vector_product(model, data, v, loss_fn)
        eig = float(sum((h * vi).sum() for h, vi in zip(hv, v, strict=True)))  # Rayleigh quotient vᵀHv
        norm = torch.sqrt(sum(h.pow(2).sum() for h in hv))
        v = [h / norm for h in hv]
    return eig, v


class SharpnessTracker(Callback):
    """Records the sharpness λ_max of the loss on ``data`` every ``every`` optimizer steps in ``fit``.

    ``steps[i]`` (optimizer steps taken) and ``values[i]`` (λ_max there); each measurement is
    ``iters`` power iterations warm-started from the previous eigenvector, plus ``first_iters`` at
    step 0. ``last_step`` stops measuring after that step (the early phase is often what matters).
    Each power iteration costs about two gradients of the loss on ``data``.
    """

    def __init__(self, data: Data, every: int = 1, iters: int = 5, first_iters: int = 20,
                 last_step: int | None = None, loss_fn: LossFn = F.cross_entropy) -> None:
        if every < 1 or iters < 1 or first_iters < 1:
            raise ValueError("every, iters and first_iters must be >= 1")
        self.data, self.every, self.iters, self.first_iters, self.loss_fn = data, every, iters, first_iters, loss_fn
        self.last_step = last_step
        self.steps: list[int] = []
        self.values: list[float] = []
        self._v: list[torch.Tensor] | None = None

    def _measure(self, state: TrainState, iters: int) -> None:
        value, self._v = top_hessian_eigenvalue(state.model, self.data, iters, v0=self._v, loss_fn=self.loss_fn)
        self.steps.append(state.step)
        self.values.append(value)

    def on_train_begin(self, state: TrainState) -> None:
        self._measure(state, self.first_iters)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0 and (self.last_step is None or state.step <= self.last_step):
            self._measure(state, self.iters)
