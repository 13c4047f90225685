"""Helpers for the visible tests of the assignments (imported by their setup cells).

These give students quick, readable feedback in Jupyter. They are not what grades: the grader decides every
score outside the student's kernel (see ``autograder/README.md``), and reads forbidden calls from the source.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:-1], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj, parts[-1]


@contextlib.contextmanager
def forbid(*names: str) -> Iterator[None]:
    """While the block runs, calling any of the named functions (e.g. ``"torch.logsumexp"``) raises
    ``AssertionError`` naming it; names that do not exist in this torch version are ignored."""
    patched = []

    def forbidden(name):
        def raiser(*args, **kwargs):
            raise AssertionError(f"{name} is not allowed in this task: compute it from basic tensor operations")

        return raiser

    try:
        for name in names:
            try:
                owner, attr = _resolve(name)
            except (ImportError, AttributeError):
                continue
            if not hasattr(owner, attr):
                continue
            patched.append((owner, attr, attr in vars(owner), getattr(owner, attr)))
            setattr(owner, attr, forbidden(name))
        yield
    finally:
        for owner, attr, own, original in reversed(patched):
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)


# ------------------------------------------------------------------------------- optimizers, step by step


class OptimizerProblem(NamedTuple):
    """A random test problem for optimizers (see :func:`optimizer_problem`)."""

    init: list[torch.Tensor]  # initial values of the parameters (float64)
    loss: Callable[..., torch.Tensor]  # loss(params, skip=(), step=None): a differentiable scalar
    grads: Callable[..., list]  # grads(params, skip=(), step=None): its gradient, None for skipped parameters


def optimizer_problem(seed: int, shapes: list[tuple[int, ...]] | None = None, *, spread: bool = True,
                      noise: bool = True) -> OptimizerProblem:
    """Random float64 parameters and a smooth, coupled loss of them, with its gradient in closed form.

    Each parameter tensor has its own gradient scale, drawn between about 1e-4 and 1e2 (a factor
    ``10**U(-3, 1)`` per tensor times ``10**U(-1, 1)`` per element), so that an adaptive optimizer's
    ``eps`` and the scale of its denominator matter. ``loss(params, skip=(), step=None)`` leaves out the
    parameters whose indices are in ``skip`` (after ``backward()`` their ``.grad`` stays ``None``); with a
    ``step``, it adds a linear term whose gradient is Gaussian noise of the parameter's scale, the same for the
    same ``(seed, step)``: like mini-batch noise, it keeps adaptive optimizers from the chaotic oscillation of a
    noise-free optimum, so two correct implementations stay equal to rounding over hundreds of steps.
    ``grads(...)`` (same arguments) is the gradient of ``loss``, without autograd (fast; fresh tensors).

    ``spread=False``: every element's scale in [0.5, 1.5) instead (plain SGD's learning rates stay stable);
    ``noise=False``: no noise term whatever the ``step``.
    """
    g = torch.Generator().manual_seed(seed)
    if shapes is None:
        count = int(torch.randint(2, 5, (1,), generator=g))
        shapes = [tuple(torch.randint(1, 6, (int(torch.randint(1, 3, (1,), generator=g)),), generator=g).tolist())
                  for _ in range(count)]
    init = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    centre = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    if spread:
        magnitude = [10.0 ** (4 * float(torch.rand((), generator=g, dtype=torch.float64)) - 3) for _ in shapes]
        scale = [m * 10.0 ** (2 * torch.rand(s, generator=g, dtype=torch.float64) - 1)
                 for m, s in zip(magnitude, shapes, strict=True)]
    else:
        magnitude = [1.0] * len(shapes)
        scale = [torch.rand(s, generator=g, dtype=torch.float64) + 0.5 for s in shapes]
    noise_cache: dict[int, list[torch.Tensor]] = {}

    def noise_at(step):
        if step not in noise_cache:
            noise_cache.clear()
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
            noise_cache[step] = [scale[i] * torch.randn(s, generator=gen, dtype=torch.float64)
                                 for i, s in enumerate(shapes)]
        return noise_cache[step]

    def loss(params, skip=(), step=None):
        used = [i for i in range(len(params)) if i not in skip]
        value = sum((scale[i] * torch.log(torch.cosh(params[i] - centre[i]))).sum() for i in used)
        value = value + 0.1 * sum(magnitude[i] * params[i].sum() for i in used) ** 2
        if step is not None and noise:
            value = value + sum((noise_at(step)[i] * params[i]).sum() for i in used)
        return value

    def grads(params, skip=(), step=None):
        used = [i for i in range(len(params)) if i not in skip]
        with torch.no_grad():
            coupling = 0.2 * sum(magnitude[i] * params[i].sum() for i in used)
            out = [None] * len(params)
            for i in used:
                out[i] = scale[i] * torch.tanh(params[i] - centre[i]) + coupling * magnitude[i]
                if step is not None and noise:
                    out[i] = out[i] + noise_at(step)[i]
        return out

    return OptimizerProblem(init, loss, grads)


def compare_optimizers(optimizer_class, reference_class, *, seed: int = 0, steps: int = 100, groups=None, skip=(),
                       on_step=None, resume=None, shapes=None, rtol: float = 1e-9, atol: float = 1e-12,
                       spread: bool = True, noise: bool = True, **options):
    """Run ``optimizer_class`` and ``reference_class`` (say ``torch.optim.Adam``) side by side on
    :func:`optimizer_problem` ``(seed)`` (with its gradient noise), both built with the same ``options``; raise
    ``AssertionError`` at the first step where the parameters differ. Return your optimizer's parameters.

    - ``groups``: a list of dicts ``{"params": [indices], option: value, ...}`` (parameter groups);
    - ``skip``: indices of parameters that never get a gradient, or a function ``step -> indices``
      (``step`` = 1, 2, ...) for parameters that miss some steps (their ``.grad`` is ``None`` in that step);
    - ``on_step(step, index, parameter)``, if given, sees your optimizer's parameters after every step;
    - ``resume=(k, make_optimizer)``: after step ``k``, save ``state_dict()``, copy the parameters into fresh
      tensors, build ``make_optimizer(params_or_groups)`` (your class with other defaults, or the reference
      class) and ``load_state_dict`` the saved state into it; it makes the remaining steps;
    - ``shapes``: the parameters' shapes (default: 2 to 4 random small shapes, drawn from ``seed``);
    - ``spread``, ``noise``: the problem's options (see :func:`optimizer_problem`).
    """
    problem = optimizer_problem(seed, shapes, spread=spread, noise=noise)
    ours = [x.clone().requires_grad_(True) for x in problem.init]
    ref = [x.clone().requires_grad_(True) for x in problem.init]

    def build(make, params):
        if groups is None:
            return make(params)
        return make([{**grp, "params": [params[i] for i in grp["params"]]} for grp in groups])

    opt_ours = build(lambda p: optimizer_class(p, **options), ours)
    opt_ref = build(lambda p: reference_class(p, **options), ref)
    for step in range(1, steps + 1):
        skipped = tuple(skip(step)) if callable(skip) else tuple(skip)
        for params, opt in ((ours, opt_ours), (ref, opt_ref)):
            for p, grad in zip(params, problem.grads(params, skipped, step), strict=True):
                p.grad = grad
            opt.step()
        if on_step is not None:
            for i, a in enumerate(ours):
                on_step(step, i, a.detach().clone())
        for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
            if not torch.allclose(a, b, rtol=rtol, atol=atol):
                raise AssertionError(
                    f"after step {step}, parameter {i} differs from {reference_class.__name__} by up to "
                    f"{(a - b).abs().max().item():.3g} (options {options}, groups {groups}, seed {seed}"
                    + (f", resumed after step {resume[0]}" if resume and step > resume[0] else "") + ")"
                )
        if resume is not None and step == resume[0]:
            saved = opt_ours.state_dict()
            ours = [a.detach().clone().requires_grad_(True) for a in ours]
            opt_ours = build(resume[1], ours)
            opt_ours.load_state_dict(saved)
    return ours
