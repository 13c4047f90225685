"""Fixes to the book's page shell (sphinx-book-theme 1.3 on pydata-sphinx-theme 0.17) that a reader hits.

* The sidebar and "Contents" buttons did nothing: both themes bind to a hidden duplicate toggle;
  ``static/sidebar-toggles.js`` forwards the visible buttons' clicks to it.
* ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared``: sphinx-thebe registers its inline
  configuration script once per read pass; identical scripts are de-duplicated per page.
* "Got invalid theme mode": the theme's ``default_mode`` is empty unless set; the book is light.
* ``favicon.ico`` 404: the book ships a favicon.
* Code cells, long inline code, wide equations and tables (``static/page-shell.css``): code fits the
  column on a desktop, nothing widens the page on a phone, equations scroll instead of being clipped.
* Figures had their file path as alt text: a figure's image gets its caption as alt text.
* The launch buttons point at ``repository.url`` in ``_config.yml``, the one setting to change before
  publishing; while it is the placeholder, the build says so (a note, not a warning: CI builds it).

The browser tests (``tests/test_browser.py``) check each of these in Chromium.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)
PLACEHOLDER_REPOSITORY = "trainlab-course/training-neural-networks"
STATIC = Path(__file__).parent / "static"


def _config_inited(app, config) -> None:
    config.html_context = {**config.html_context, "default_mode": "light"}
    config.html_static_path = [*config.html_static_path, str(STATIC)]
    config.html_favicon = str(STATIC / "favicon.svg")


def _note_placeholders(app, config) -> None:
    url = config.html_theme_options.get("repository_url", "") or ""
    if PLACEHOLDER_REPOSITORY in url:
        logger.info(f"NOTE: repository.url in _config.yml is still the placeholder {url}: the Colab/Binder "
                    "launch buttons and the chapters' install cell point there. Set it before publishing.")


def _figure_alt_text(app, doctree, docname) -> None:
    for figure in doctree.findall(nodes.figure):
        captions = list(figure.findall(nodes.caption))
        if not captions:
            continue
        text = " ".join(captions[0].astext().split())
        for image in figure.findall(nodes.image):
            if not image.get("alt") or image.get("alt") == image.get("uri"):
                image["alt"] = text if len(text) <= 300 else text[:297] + "..."


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # Same file and attributes (an inline script's body is an attribute); priorities may differ.
        key = (getattr(script, "filename", None) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("config-inited", _note_placeholders, priority=900)
    app.connect("doctree-resolved", _figure_alt_text)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.add_js_file("sidebar-toggles.js")
    app.add_css_file("page-shell.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}

