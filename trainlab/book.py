"""Helpers for the book's pages that must also work outside the book (Colab, a plain Jupyter).

`glue` stores a value computed on the page so the text can quote it (``{glue:text}`key:.3f` ``):
numbers in the prose come from the run. Outside a myst-nb build (no `myst_nb` installed, e.g. on
Colab) it just remembers the value, so a chapter runs the same everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

glued: dict[str, Any] = {}


def plain(value: Any) -> Any:
    """NumPy/torch scalars as Python numbers (myst-nb formats those with ``:.3f`` and friends)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make ``value`` available to the page's text under ``name`` (read it back from ``glued``).

    Returns None on purpose: a glue call as the last line of a cell must not leave an output box.
    """
    value = plain(value)
    glued[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab or a bare Jupyter: nothing renders {glue:text}, keep the value only
        return
    myst_glue(name, value, display=display)


def fill(text: str) -> str:
    """Replace each ``⟪key:format⟫`` in ``text`` by the glued value (the chapters' notebooks use this)."""
    import re

    from .myst import PLACEHOLDER_CLOSE, PLACEHOLDER_OPEN

    def value(found: re.Match) -> str:
        key, _, spec = found.group(1).partition(":")
        if key not in glued:
            return f"‹{key}: run the cells above first›"
        try:
            return format(glued[key], spec)
        except (TypeError, ValueError):
            return str(glued[key])

    return re.sub(f"{PLACEHOLDER_OPEN}([^{PLACEHOLDER_CLOSE}]+){PLACEHOLDER_CLOSE}", value, text)


def show_text(markdown: str) -> None:
    """Show a paragraph of the chapter with this run's numbers (outside the book, where {glue:text} is not
    rendered)."""
    from IPython.display import Markdown, display

    display(Markdown(fill(markdown)))


def show_glued(name: str, caption: str = "") -> None:
    """Show a glued table or figure with its caption (outside the book)."""
    from IPython.display import Markdown, display

    if name not in glued:
        display(Markdown(f"‹{name}: run the cells above first›"))
        return
    display(glued[name])
    if caption:
        display(Markdown(f"*{fill(caption)}*"))
