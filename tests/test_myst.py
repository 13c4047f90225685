"""MyST -> plain-Jupyter Markdown for the chapters' notebooks (what Colab and Binder show)."""

import nbformat
import pytest

from trainlab import book, myst

SAMPLE = r"""(ch-probe)=
# Probe chapter

:::{admonition} Learning goals
:class: tip
Read {ref}`ch-probe` and {ref}`the notation <notation>`.
:::

The loss {cite:p}`robbins1951stochastic,goh2017why`, as {cite:t}`kingma2015adam` showed, is

$$
L(\theta) = \E\,\ell
$$ (eq-probe)

See {eq}`eq-probe` and {numref}`fig-probe`.

The run reached {glue:text}`acc:.1f` % after {glue:text}`epochs` epochs.

```{admonition} Answer
:class: dropdown
Because $x \in \R$.
```

## References

```{bibliography}
:filter: docname in docnames
```
"""


@pytest.fixture
def index():
    refs = myst.read_bibliography(myst.Path(__file__).resolve().parents[1] / "references.bib")
    labels = {"ch-probe": ("Probe chapter", "09-probe.ipynb"), "notation": ("Notation", "../notation.md")}
    return myst.BookIndex(labels=labels,
                          figures={"fig-probe": "Figure 9.1"}, equations={"eq-probe": "9.1"}, references=refs,
                          macros={"E": r"\mathbb{E}", "R": r"\mathbb{R}"})


def _cells(index, text=SAMPLE):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    return myst.convert_chapter(notebook, index)


def test_roles_directives_and_labels_become_plain_markdown(index):
    cells = _cells(index)
    markdown = "\n\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert myst.leftover_markup(markdown) == []
    assert '<a id="ch-probe"></a>' in markdown and "# Probe chapter" in markdown
    assert "> **Learning goals**" in markdown and "[the notation](../notation.md)" in markdown
    assert "(Robbins and Monro, 1951" in markdown and "Kingma and Ba (2015)" in markdown
    assert r"\tag{9.1}" in markdown and "See (9.1) and Figure 9.1." in markdown
    assert r"\mathbb{E}" in markdown and r"\mathbb{R}" in markdown and r"\E" not in markdown
    assert "<details><summary><b>Answer</b></summary>" in markdown  # answers stay collapsed
    references = cells[-1].source
    assert references.index("Goh") < references.index("Kingma") < references.index("Robbins")


def test_glued_numbers_are_filled_from_the_readers_run(index):
    runtime = [c for c in _cells(index) if c.cell_type == "code"]
    assert len(runtime) == 1 and runtime[0].metadata["jupyter"]["source_hidden"]
    assert "{glue" not in runtime[0].source and "show_text" in runtime[0].source
    paragraph = runtime[0].source.split('r"""')[1].split('"""')[0]
    book.glued.pop("acc", None)
    assert "run the cells above first" in book.fill(paragraph)
    book.glue("acc", 91.234)
    book.glue("epochs", 5)
    assert "The run reached 91.2 % after 5 epochs." in book.fill(paragraph)


@pytest.mark.parametrize("bad", ["{unknownrole}`x`", ":::{weird}\nx\n:::", "{cite:p}`no_such_key`",
                                 "{numref}`fig-missing`", ":::{note}\nnever closed"])
def test_unknown_markup_fails_loudly(index, bad):
    with pytest.raises(myst.MystConversionError):
        _cells(index, bad)
