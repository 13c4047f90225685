"""The chapters' generated .ipynb twins (what Colab opens) match their .md sources."""

import json

import pytest

from trainlab import book, notebooks


def test_chapter_notebooks_are_up_to_date():
    assert notebooks.main(["--check"]) == 0, "run `make notebooks` after editing a chapter"


@pytest.mark.parametrize("md", notebooks.chapter_sources(), ids=lambda p: p.stem)
def test_twin_has_no_outputs_and_installs_trainlab_first(md):
    nb = json.loads(md.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["id"] == notebooks.INSTALL_CELL_ID and notebooks.repository_url() in first
    assert 'find_spec("trainlab") is None' in first  # installs only where trainlab is missing
    # Every code cell of the .md is there, in order, after the install cell; the added cells only show text.
    import jupytext

    source_code = [c.source for c in jupytext.read(md).cells if c.cell_type == "code"]
    twin_code = ["".join(c["source"]) for c in code[1:]]
    assert [c for c in twin_code if not c.startswith("# @title")] == source_code
    # What Colab / Jupyter show as Markdown has no raw MyST left (roles, directives, labels).
    from trainlab.myst import leftover_markup

    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert leftover_markup(markdown) == []
    assert "{glue:text}`" not in md.with_suffix(".ipynb").read_text()


def test_stale_notebook_is_detected(tmp_path, monkeypatch):
    chapter = tmp_path / "chapters" / "99-x.md"
    chapter.parent.mkdir()
    chapter.write_text("---\nkernelspec:\n  name: python3\n  display_name: Python 3\n  language: python\n---\n# X\n")
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://example.org/repo\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: chapters/99-x\n")
    (tmp_path / "references.bib").write_text("")
    monkeypatch.setattr(notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(notebooks, "chapter_sources", lambda root=tmp_path: [chapter])
    monkeypatch.setattr(notebooks, "repository_url", lambda root=tmp_path: "https://example.org/repo")
    assert notebooks.main(["--check"]) == 1
    assert notebooks.main([]) == 0 and notebooks.main(["--check"]) == 0
    chapter.write_text(chapter.read_text() + "\nmore text\n")
    assert notebooks.main(["--check"]) == 1


def test_glue_turns_numpy_and_torch_scalars_into_plain_numbers():
    import numpy as np
    import torch

    assert book.glue("a", np.float32(0.5)) is None  # no stray output box when it ends a cell
    book.glue("b", torch.tensor(3))
    book.glue("c", "text")
    assert type(book.glued["a"]) is float and type(book.glued["b"]) is int and book.glued["c"] == "text"
