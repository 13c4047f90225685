"""The set-up promises: pinned versions that agree everywhere, and imports that work."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", d).groups() for d in deps)


def test_every_dependency_is_pinned_exactly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert all("==" in d for d in deps), [d for d in deps if "==" not in d]


def test_environment_yml_lists_the_same_pins_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = dict(re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", d).groups() for d in pip_section if "==" in d)
    assert conda_pins == _pyproject_pins()
    assert "python=3.11" in env["dependencies"]


def test_installed_versions_are_the_pinned_ones():
    for name, pinned in _pyproject_pins().items():
        installed = version(name)
        assert installed.split("+")[0] == pinned, f"{name}: installed {installed}, pinned {pinned}"


def test_torchvision_imports_with_the_pinned_torch():
    import torch
    import torchvision
    from torchvision.ops import nms  # the operator a mismatched torch (2.13) fails to register

    assert torch.__version__.startswith("2.14.1") and torchvision.__version__.startswith("0.29.2")
    boxes = torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1]])
    assert nms(boxes, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0]


def test_jupyter_book_is_1_0_and_nbgrader_0_9():
    assert version("jupyter-book").startswith("1.0.")
    assert version("nbgrader").startswith("0.9.")


def test_make_targets_and_ci_entry_point():
    makefile = (ROOT / "Makefile").read_text()
    assert "sha256sum pyproject.toml" in makefile  # the venv stamp is keyed on the pins
    for target in ("book:", "test:", "lab:", "chapter:"):
        assert f"\n{target}" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme


def test_toc_lists_only_existing_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.md").exists() or (ROOT / f"{f}.ipynb").exists(), f
