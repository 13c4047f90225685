import pytest
import torch

import trainlab as tl
from trainlab.device import make_generator
from trainlab.profile import Profile


def test_get_device_defaults_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.delenv("TRAINLAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert tl.get_device() == torch.device("cpu")


def test_get_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("TRAINLAB_DEVICE", raising=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tl.get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert tl.get_device().type == "cuda"


def test_requesting_a_missing_or_unknown_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tl.get_device("cuda")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        tl.get_device("tpu")
    monkeypatch.setenv("TRAINLAB_DEVICE", "cpu")
    assert tl.get_device() == torch.device("cpu")


def test_seed_everything_makes_runs_repeatable():
    tl.seed_everything(3)
    a = torch.randn(5)
    tl.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError, match="non-negative int"):
        tl.seed_everything(-1)


def test_make_generator_lives_on_the_device():
    g = make_generator("cpu", 7)
    assert g.device.type == "cpu"
    assert torch.equal(torch.randperm(10, generator=g), torch.randperm(10, generator=make_generator("cpu", 7)))


def test_profile_is_automatic_and_overridable(monkeypatch):
    monkeypatch.delenv("TRAINLAB_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tl.get_profile().name == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert tl.get_profile().name == "full"
    monkeypatch.setenv("TRAINLAB_PROFILE", "QUICK")
    assert tl.get_profile().pick(quick=1, full=2) == 1
    monkeypatch.setenv("TRAINLAB_PROFILE", "huge")
    with pytest.raises(ValueError, match="Unknown profile 'huge'.*quick, full"):
        tl.get_profile()


def test_profile_pick():
    assert Profile("full").pick(quick="a", full="b") == "b"
    assert Profile("quick").pick(quick="a", full="b") == "a"


def test_dataset_setting_defaults_to_offline_mnist5k(monkeypatch):
    monkeypatch.delenv("TRAINLAB_DATASET", raising=False)
    assert tl.dataset_name() == "mnist5k"
    monkeypatch.setenv("TRAINLAB_DATASET", "Fashion-MNIST")
    assert tl.dataset_name() == "fashion-mnist"


def test_setup_reports_all_three_settings(monkeypatch):
    monkeypatch.setenv("TRAINLAB_PROFILE", "quick")
    monkeypatch.delenv("TRAINLAB_DATASET", raising=False)
    setup = tl.setup(seed=1)
    assert str(setup).endswith("profile=quick  dataset=mnist5k")
