"""MyST markup -> Markdown that plain Jupyter renders (Colab, Binder, a JupyterLab without the book).

The chapters are written for Jupyter Book: citations (``{cite:p}``), cross-references (``{ref}``,
``{numref}``, ``{eq}``), admonitions (``:::{admonition}``) and numbers glued from the run
(``{glue:text}``). Jupyter shows all of these as literal markup. This module rewrites them for the
chapters' `.ipynb` twins (see :mod:`trainlab.notebooks`):

* citations become "(Robbins and Monro, 1951)" links, and ``{bibliography}`` the list of the page's
  references, from ``references.bib``;
* cross-references become "Figure 2.3", "equation (1.1)" or a link to the chapter's notebook;
* admonitions become block quotes, dropdowns ``<details>`` (exercise answers stay collapsed);
* a paragraph that quotes glued numbers becomes a collapsed code cell that shows the paragraph with the
  numbers of the reader's own run (:func:`trainlab.book.show_text`), so text and run cannot disagree there
  either; a glued table or figure (``{glue:figure}``) is shown by :func:`trainlab.book.show_glued`.

Anything this module does not know raises :class:`MystConversionError`, so a new construct in a chapter
fails ``make notebooks`` instead of leaking raw markup to students.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

# Where a glued value goes in a runtime paragraph: ⟪key:format⟫ (no braces: LaTeX uses those).
PLACEHOLDER_OPEN, PLACEHOLDER_CLOSE = "\u27ea", "\u27eb"

ROLE = re.compile(r"\{(?P<name>[a-z][a-z0-9:-]*)\}`(?P<content>[^`]*)`")
LABEL_LINE = re.compile(r"^\((?P<label>[A-Za-z0-9_.:-]+)\)=\s*$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*$")
COLON_FENCE = re.compile(r"^(?P<fence>:{3,})\{(?P<name>[a-z][a-z0-9:-]*)\}\s*(?P<args>.*)$")
TICK_FENCE = re.compile(r"^(?P<fence>`{3,})\{(?P<name>[a-z][a-z0-9:-]*)\}\s*(?P<args>.*)$")
EQUATION_END = re.compile(r"^(?P<indent>\s*)\$\$\s*\((?P<label>[A-Za-z0-9_.:-]+)\)\s*$")
TARGET = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)

ADMONITIONS = {"admonition", "note", "tip", "warning", "important", "hint", "caution", "attention", "danger",
               "error", "seealso", "margin"}


class MystConversionError(ValueError):
    """A chapter uses MyST markup the notebook converter does not handle (yet)."""


@dataclass(frozen=True)
class Reference:
    key: str
    authors: str  # "Robbins and Monro", "Goyal et al."
    year: str
    url: str
    full: str  # the entry as one line for a reference list


@dataclass
class BookIndex:
    """What cross-references and citations resolve to, collected from the whole book."""

    labels: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (title, link from chapters/)
    figures: dict[str, str] = field(default_factory=dict)  # figure name -> "Figure 2.3"
    equations: dict[str, str] = field(default_factory=dict)  # equation label -> "2.1"
    references: dict[str, Reference] = field(default_factory=dict)
    macros: dict[str, str] = field(default_factory=dict)  # MathJax macros of _config.yml: "R" -> "\\mathbb{R}"


def _author_names(persons) -> str:
    last = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in persons]
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al."


def _clean(text: str) -> str:
    """BibTeX/LaTeX text as plain Unicode (``L{\\'e}on`` -> Léon, ``--`` -> –)."""
    import codecs

    import latexcodec  # noqa: F401  (registers the "ulatex" codec; a pybtex dependency)

    text = re.sub(r"-{2,3}", "–", text)
    return re.sub(r"[{}]", "", codecs.decode(text, "ulatex"))


def read_bibliography(path: Path) -> dict[str, Reference]:
    from pybtex.database import parse_file

    refs = {}
    for key, entry in parse_file(str(path)).entries.items():
        fields = entry.fields
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        authors = _author_names(persons) if persons else _clean(fields.get("author", key))
        url = fields.get("url", "") or (f"https://doi.org/{fields['doi']}" if fields.get("doi") else "")
        if not url:
            found = re.search(r"\\url\{([^}]+)\}", fields.get("howpublished", ""))
            url = found.group(1) if found else ""
        names = _clean(", ".join(" ".join(p.first_names + p.middle_names + p.last_names) for p in persons))
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("publisher") or ""
        venue = _clean(venue or re.sub(r",?\s*\\url\{[^}]*\}", "", fields.get("howpublished", "")))
        title = _clean(fields.get("title", key))
        year = fields.get("year", "n.d.")
        linked = f"[{title}]({url})" if url else title
        full = f"{names or authors} ({year}). {linked}." + (f" {venue}." if venue else "")
        refs[key] = Reference(key=key, authors=authors, year=year, url=url, full=full)
    return refs


def _chapter_numbers(root: Path) -> dict[str, int]:
    """Doc path (``chapters/01-sgd-learning-rate``) -> chapter number, counted over the numbered parts."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    numbers, n = {}, 0
    for part in toc.get("parts", []):
        if not part.get("numbered"):
            continue
        for chapter in part.get("chapters", []):
            n += 1
            numbers[chapter["file"]] = n
    return numbers


def _toc_files(root: Path) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def _link_from_chapters(doc: str) -> str:
    """A relative link from ``chapters/`` to a book document: chapter notebooks, other pages as Markdown."""
    path = Path(doc)
    if path.parent.name == "chapters":
        return f"{path.name}.ipynb" if path.name[:2].isdigit() else f"{path.name}.md"
    return f"../{path.name}.md"


def build_index(root: Path) -> BookIndex:
    import jupytext

    config = yaml.safe_load((root / "_config.yml").read_text())
    macros = config.get("sphinx", {}).get("config", {}).get("mathjax3_config", {}).get("tex", {}).get("macros", {})
    index = BookIndex(references=read_bibliography(root / "references.bib"), macros=dict(macros))
    numbers = _chapter_numbers(root)
    for doc in _toc_files(root):
        source = root / f"{doc}.md"
        if not source.exists():
            continue
        text = source.read_text()
        link = _link_from_chapters(doc)
        lines = text.splitlines()
        for i, line in enumerate(lines):
            found = LABEL_LINE.match(line)
            if found:
                heading = next((HEADING.match(x) for x in lines[i + 1:] if x.strip()), None)
                title = heading.group("title") if heading else found.group("label")
                anchor = "" if heading and heading.group("hashes") == "#" else "#" + found.group("label")
                index.labels[found.group("label")] = (title, link + anchor)
        number = numbers.get(doc)
        if number is None:
            continue
        figure_count = equation_count = 0
        cells = jupytext.read(source).cells if "kernelspec:" in text[:1000] else []
        for cell in cells:
            if cell.cell_type == "code":
                figure = cell.metadata.get("mystnb", {}).get("figure", {})
                if figure.get("caption"):
                    figure_count += 1
                    if figure.get("name"):
                        index.figures[figure["name"]] = f"Figure {number}.{figure_count}"
                continue
            cell_lines = cell.source.splitlines()
            for j, line in enumerate(cell_lines):
                fence = COLON_FENCE.match(line) or TICK_FENCE.match(line)
                if fence and fence.group("name") in ("figure", "glue:figure"):
                    figure_count += 1
                    name = next((x.split(":", 2)[2].strip() for x in cell_lines[j + 1:j + 6]
                                 if x.startswith(":name:")), None)
                    if name:
                        index.figures[name] = f"Figure {number}.{figure_count}"
                end = EQUATION_END.match(line)
                if end:
                    equation_count += 1
                    index.equations[end.group("label")] = f"{number}.{equation_count}"
    return index


@dataclass
class Converted:
    """One chapter's markdown cell, converted: a list of ('markdown', text) / ('runtime', text) pieces."""

    pieces: list[tuple[str, str]]


class Converter:
    def __init__(self, index: BookIndex) -> None:
        self.index = index
        self.cited: list[str] = []

    # ---- inline roles -------------------------------------------------------------------------
    def _cite(self, name: str, content: str) -> str:
        keys = [k.strip() for k in content.split(",") if k.strip()]
        refs = []
        for key in keys:
            if key not in self.index.references:
                raise MystConversionError(f"unknown citation key {key!r}: add it to references.bib")
            if key not in self.cited:
                self.cited.append(key)
            refs.append(self.index.references[key])

        def link(text: str, ref: Reference) -> str:
            return f"[{text}]({ref.url})" if ref.url else text

        if name == "cite:t":
            return "; ".join(link(f"{r.authors} ({r.year})", r) for r in refs)
        return "(" + "; ".join(link(f"{r.authors}, {r.year}", r) for r in refs) + ")"

    def _split_target(self, content: str) -> tuple[str | None, str]:
        found = TARGET.match(content)
        return (found.group("text"), found.group("target").strip()) if found else (None, content.strip())

    def role(self, found: re.Match) -> str:
        name, content = found.group("name"), found.group("content")
        if name in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts"):
            return self._cite("cite:t" if name.startswith("cite:t") else "cite:p", content)
        if name in ("glue:text", "glue"):
            return PLACEHOLDER_OPEN + content + PLACEHOLDER_CLOSE
        if name == "math":
            return f"${content}$"
        if name == "eq":
            label = content.strip()
            if label not in self.index.equations:
                raise MystConversionError(f"{{eq}} to unknown equation label {label!r}")
            return f"({self.index.equations[label]})"
        if name == "numref":
            text, label = self._split_target(content)
            if label not in self.index.figures:
                raise MystConversionError(f"{{numref}} to unknown figure {label!r}")
            number = self.index.figures[label]
            return text.replace("%s", number.split()[-1]) if text else number
        if name in ("ref", "doc"):
            text, target = self._split_target(content)
            if name == "doc":
                doc = (Path("chapters") / target).as_posix() if not target.startswith("/") else target.lstrip("/")
                return f"[{text or Path(target).name}]({_link_from_chapters(doc)})"
            if target not in self.index.labels:
                raise MystConversionError(f"{{ref}} to unknown label {target!r}")
            title, link = self.index.labels[target]
            return f"[{text or title}]({link})"
        raise MystConversionError(f"the notebook converter does not know the role {{{name}}}`{content}`")

    def inline(self, text: str) -> str:
        text = ROLE.sub(self.role, text)
        for name, expansion in self.index.macros.items():  # Jupyter's MathJax knows no book macros
            text = re.sub(rf"\\{name}(?![A-Za-z])", lambda _, e=expansion: e, text)
        return text

    # ---- block structure ----------------------------------------------------------------------
    def _directive(self, name: str, args: str, body: list[str]) -> list[str]:
        options, start = {}, 0
        while start < len(body) and re.match(r"^:[a-z-]+:", body[start]):
            key, _, value = body[start][1:].partition(":")
            options[key] = value.strip()
            start += 1
        content = body[start:]
        if name in ADMONITIONS:
            title = self.inline(args) or name.capitalize()
            inner = self.blocks(content)
            if "dropdown" in options.get("class", ""):
                return [f"<details><summary><b>{title}</b></summary>", "", *inner, "", "</details>"]
            while inner and not inner[0].strip():
                inner = inner[1:]
            return [f"> **{title}**", ">", *[f"> {x}" if x.strip() else ">" for x in inner]]
        if name == "bibliography":
            return ["__BIBLIOGRAPHY__"]
        if name == "glue:figure":
            caption = " ".join(x.strip() for x in content if x.strip())
            return [f"__GLUE_FIGURE__{args.strip()}__{self.inline(caption)}"]
        if name == "math":
            return ["$$", *content, "$$"]
        if name in ("code-block", "code"):
            return ["```" + args.strip(), *content, "```"]
        if name == "figure":
            caption = self.inline(" ".join(x.strip() for x in content if x.strip()))
            return [f"![{options.get('alt', caption)}]({args.strip()})", "", f"*{caption}*"]
        raise MystConversionError(f"the notebook converter does not know the directive {{{name}}}")

    def blocks(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            fence = COLON_FENCE.match(line) or TICK_FENCE.match(line)
            if fence:
                marker = fence.group("fence")
                end = i + 1
                while end < len(lines) and lines[end].strip() != marker:
                    end += 1
                if end == len(lines):
                    raise MystConversionError(f"unclosed directive {{{fence.group('name')}}} ({line!r})")
                out += self._directive(fence.group("name"), fence.group("args"), lines[i + 1:end])
                i = end + 1
                continue
            label = LABEL_LINE.match(line)
            if label:
                out.append(f'<a id="{label.group("label")}"></a>')
                i += 1
                continue
            equation = EQUATION_END.match(line)
            if equation:
                number = self.index.equations.get(equation.group("label"))
                if number is None:
                    raise MystConversionError(f"unnumbered equation label {equation.group('label')!r}")
                indent = equation.group("indent")
                out += [indent + rf"\tag{{{number}}}", indent + "$$"]
                i += 1
                continue
            out.append(self.inline(line))
            i += 1
        return out

    def convert(self, markdown: str) -> Converted:
        lines = self.blocks(markdown.splitlines())
        pieces: list[tuple[str, str]] = []
        for kind, text in _paragraphs(lines):
            if text.startswith("__GLUE_FIGURE__"):
                name, _, caption = text[len("__GLUE_FIGURE__"):].partition("__")
                pieces.append(("glue_figure", f"{name}\n{caption}"))
            elif text == "__BIBLIOGRAPHY__":
                pieces.append(("bibliography", ""))
            else:
                pieces.append(("runtime" if PLACEHOLDER_OPEN in text else kind, text))
        merged: list[tuple[str, str]] = []
        for kind, text in pieces:
            if merged and merged[-1][0] == kind and kind in ("markdown", "runtime"):
                merged[-1] = (kind, merged[-1][1] + "\n\n" + text)
            else:
                merged.append((kind, text))
        return Converted(merged)


def _paragraphs(lines: list[str]) -> list[tuple[str, str]]:
    """Split at blank lines outside display maths, ``<details>`` and code fences; headings stand alone."""
    paragraphs, current = [], []
    in_math = in_code = False
    details = 0

    def flush() -> None:
        if any(x.strip() for x in current):
            paragraphs.append(("markdown", "\n".join(current).strip("\n")))
        current.clear()

    for line in lines:
        stripped = line.strip()
        top = not (in_math or in_code or details)
        if top and HEADING.match(line):
            flush()
            paragraphs.append(("markdown", line))
            continue
        if top and not stripped:
            flush()
            continue
        current.append(line)
        if stripped.startswith("```"):
            in_code = not in_code
        elif not in_code and stripped.lstrip("> ").startswith("$$"):
            body = stripped.lstrip("> ")
            if not (body.endswith("$$") and len(body) > 2):
                in_math = not in_math
        details += stripped.count("<details>") - stripped.count("</details>")
    flush()
    return paragraphs


def _wrap_prose(text: str, width: int = 100) -> str:
    """Re-wrap long prose lines (citations and links expand them) so the code cell stays lint-clean;
    Markdown joins the lines of a paragraph, so the rendered text is the same. Tables and maths are kept."""
    import textwrap

    lines, in_math = [], False
    for line in text.split("\n"):
        if line.strip().startswith("$$"):
            in_math = not in_math or line.strip().endswith("$$") and len(line.strip()) > 2
        if len(line) <= width or in_math or line.lstrip().startswith(("|", "$$", "<", "\\")):
            lines.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        item = re.match(r"(\s*(?:[-*]|\d+\.)\s+)", line)
        follow = " " * len(item.group(1)) if item else indent
        lines += textwrap.wrap(line, width=width, initial_indent="", subsequent_indent=follow,
                               break_long_words=False, break_on_hyphens=False) or [line]
    return "\n".join(lines)


def runtime_cell(text: str) -> nbformat.NotebookNode:
    """A collapsed code cell that shows ``text`` with the run's glued numbers filled in."""
    text = _wrap_prose(text)
    if '"""' in text:
        raise MystConversionError('a paragraph with glued values contains """')
    first = re.sub(f"{PLACEHOLDER_OPEN}[^{PLACEHOLDER_CLOSE}]*{PLACEHOLDER_CLOSE}", "…", text.split("\n")[0])
    first = re.sub(r"\$[^$]*\$|\(http[^)]*\)|[*_`\[\]\\]", "", first)
    first = re.sub(r"\s+", " ", first).strip()
    title = (first[:50].rsplit(" ", 1)[0] + " …") if len(first) > 50 else first
    source = (f"# @title {title} — run to show this run's numbers\n"
              "from trainlab.book import show_text\n\n"
              f'show_text(r"""\n{text}\n""")')
    return _collapsed(nbformat.v4.new_code_cell(source))


def glue_figure_cell(name: str, caption: str) -> nbformat.NotebookNode:
    source = (f"# @title {name} (run to show)\nfrom trainlab.book import show_glued\n\n"
              f'show_glued("{name}", caption=r"""{caption}""")')
    return _collapsed(nbformat.v4.new_code_cell(source))


def _collapsed(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell.metadata["cellView"] = "form"  # Colab: show the title and the output, hide the code
    cell.metadata["jupyter"] = {"source_hidden": True}  # JupyterLab: collapse the code
    return cell


def convert_chapter(notebook: nbformat.NotebookNode, index: BookIndex) -> list:
    """The chapter's cells for plain Jupyter: code cells unchanged, markdown converted."""
    converter = Converter(index)
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            tags = cell.metadata.get("tags", [])
            if any(t in tags for t in ("hide-input", "remove-cell", "remove-input", "hide-cell")):
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
            cells.append(cell)
            continue
        for kind, text in converter.convert(cell.source).pieces:
            if kind == "markdown":
                cells.append(nbformat.v4.new_markdown_cell(text))
            elif kind == "runtime":
                cells.append(runtime_cell(text))
            elif kind == "glue_figure":
                name, caption = text.split("\n", 1)
                cells.append(glue_figure_cell(name, caption))
            else:
                cited = sorted(converter.cited, key=lambda k: (index.references[k].authors, index.references[k].year))
                lines = [f"- {index.references[key].full}" for key in cited]
                cells.append(nbformat.v4.new_markdown_cell("\n".join(lines) if lines else "*(no references)*"))
    return cells


def leftover_markup(text: str) -> list[str]:
    """MyST constructs still present in converted Markdown (for tests and ``--check``)."""
    found = [m.group(0) for m in ROLE.finditer(text)]
    for line in text.splitlines():
        if COLON_FENCE.match(line) or TICK_FENCE.match(line) or LABEL_LINE.match(line) or EQUATION_END.match(line):
            found.append(line)
    return found
