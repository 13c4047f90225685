"""The book builds, executed and offline, with no Sphinx warning, and the pages show what they should.

Reuses the execution cache of `make book` (`_build/.jupyter_cache`), so after a book build this test
takes seconds; on a fresh clone it executes every chapter once.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, TRAINLAB_BOOK_BUILD="1", TRAINLAB_OFFLINE="1")
    result = subprocess.run(
        [str(jb), "build", str(ROOT), "--path-output", str(out), "--warningiserror", "--nitpick", "--keep-going"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, "book build failed:\n" + "\n".join(
        line for line in log.splitlines() if "WARNING" in line or "ERROR" in line or "Error" in line
    )[-5000:]
    return out / "_build" / "html"


def _chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"]]


def test_intro_has_math_and_bibliography_served_offline(html):
    page = (html / "intro.html").read_text()
    assert (html / "index.html").exists()
    assert "math notranslate" in page  # display maths, typeset by MathJax
    assert 'src="_static/mathjax/tex-chtml.js"' in page and "cdn.jsdelivr" not in page  # no CDN: works offline
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert any((html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").iterdir())
    assert "Robbins" in page and 'class="citation' in page  # bibliography entries
    assert "github.com" in page  # repository link


@pytest.mark.parametrize("chapter", [c for c in _chapters() if "/0" in c])
def test_chapter_pages_are_executed_with_figures_and_no_errors(html, chapter):
    page = (html / f"{chapter}.html").read_text()
    figures = re.findall(r'<img[^>]+src="[^"]*\.png"', page)
    assert len(figures) >= 3, f"{chapter}: expected figures produced by code, found {len(figures)}"
    text = re.sub(r"<[^>]+>", "", page)
    assert "Traceback" not in text and "NotImplementedError" not in text, f"{chapter}: a cell failed"
    assert 'class="citation' in page, f"{chapter}: no references section"
    assert "colab.research.google.com" in page and "mybinder.org" in page, f"{chapter}: no launch buttons"
