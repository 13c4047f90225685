"""trainlab.checking: the visible tests' `forbid` blocks a call for the duration of the block only."""

import pytest
import torch

from trainlab.checking import forbid


def test_forbid_blocks_module_functions_and_tensor_methods_then_restores():
    x = torch.randn(3, 4)
    with forbid("torch.logsumexp", "torch.Tensor.logsumexp", "torch.does_not_exist"):
        with pytest.raises(AssertionError, match="torch.logsumexp is not allowed"):
            torch.logsumexp(x, dim=1)
        with pytest.raises(AssertionError, match="Tensor.logsumexp"):
            x.logsumexp(dim=1)
        assert torch.exp(x).sum() > 0  # everything else still works
    torch.testing.assert_close(x.logsumexp(dim=1), torch.logsumexp(x, dim=1))


def test_forbid_restores_after_an_error():
    with pytest.raises(RuntimeError), forbid("torch.nn.functional.relu"):
        raise RuntimeError
    assert torch.nn.functional.relu(torch.tensor(-1.0)) == 0


def test_optimizer_problem_gradient_is_the_autograd_gradient_and_skip_leaves_none():
    from trainlab.checking import optimizer_problem

    problem = optimizer_problem(3, shapes=[(3,), (2, 2), (4,)])
    params = [x.clone().requires_grad_(True) for x in problem.init]
    for skip, step in [((), None), ((1,), 7)]:
        for p in params:
            p.grad = None
        problem.loss(params, skip, step).backward()
        grads = problem.grads(params, skip, step)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if i in skip:
                assert p.grad is None and g is None
            else:
                torch.testing.assert_close(g, p.grad, rtol=1e-12, atol=1e-14)
    # the same (seed, step) gives the same noise; another step, another
    a, b, c = (problem.grads(params, (), s)[0] for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_compare_optimizers_accepts_equal_optimizers_and_names_the_first_differing_step():
    from trainlab.checking import compare_optimizers

    seen = []
    compare_optimizers(torch.optim.Adam, torch.optim.Adam, seed=1, steps=20, lr=0.01,
                       groups=[{"params": [0], "lr": 0.1}, {"params": [1]}], shapes=[(2,), (3,)],
                       skip=lambda t: (1,) if t % 2 else (), on_step=lambda s, i, p: seen.append((s, i)),
                       resume=(10, lambda p: torch.optim.Adam(p, lr=5.0)))
    assert seen[:2] == [(1, 0), (1, 1)] and len(seen) == 40

    class Slower(torch.optim.SGD):
        def step(self, closure=None):
            if self.state.setdefault("count", {"n": 0})["n"] >= 3:
                for group in self.param_groups:
                    group["lr"] = 0.05
            self.state["count"]["n"] += 1
            return super().step(closure)

    with pytest.raises(AssertionError, match="after step 4, parameter 0 differs from SGD"):
        compare_optimizers(Slower, torch.optim.SGD, seed=2, steps=10, lr=0.1)
