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
