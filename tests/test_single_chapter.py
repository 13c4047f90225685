"""`make chapter CH=...` builds one chapter alone, even when it links to chapters it does not contain,
and still fails on every other warning."""

import shutil
import subprocess
from pathlib import Path

import pytest

from trainlab.single_chapter import single_chapter_config

ROOT = Path(__file__).resolve().parents[1]
HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def test_config_keeps_other_settings_and_adds_only_missing_target_warnings():
    config = single_chapter_config((ROOT / "_config.yml").read_text())
    suppressed = config["sphinx"]["config"]["suppress_warnings"]
    assert "ref.ref" in suppressed and "mystnb.unknown_mime_type" in suppressed
    assert config["execute"]["execute_notebooks"] == "cache" and config["bibtex_bibfiles"] == ["references.bib"]


def _make_chapter(tmp_path: Path, name: str, body: str) -> subprocess.CompletedProcess:
    chapter = tmp_path / f"{name}.md"
    chapter.write_text(HEADER + body)
    try:
        return subprocess.run(["make", "chapter", f"CH={chapter}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
    finally:
        shutil.rmtree(ROOT / "_build" / "single" / name, ignore_errors=True)


@pytest.mark.slow
def test_chapter_linking_other_chapters_builds_alone(tmp_path):
    body = """(ch-zz-probe)=
# Probe

See {ref}`ch-sgd`, {numref}`fig-bs-variance`, {doc}`02-batch-size` and {ref}`notation`
{cite:p}`robbins1951stochastic`. The answer is {glue:text}`answer`.

```{code-cell} ipython3
from trainlab.book import glue
glue("answer", 42)
```

```{bibliography}
:filter: docname in docnames
```
"""
    result = _make_chapter(tmp_path, "zz-probe-links", body)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "built in" in result.stdout


@pytest.mark.slow
def test_other_warnings_still_fail_the_single_chapter_build(tmp_path):
    body = "# Broken\n\nThis value was never glued: {glue:text}`missing_key`.\n"
    result = _make_chapter(tmp_path, "zz-probe-broken", body)
    assert result.returncode != 0
