"""Serve MathJax 3 from the built book instead of a CDN, so maths renders offline.

MathJax comes from the `django-static-mathjax` wheel (plain static files, no Django needed). Only the
TeX→CHTML component and its fonts are copied into `_static/mathjax/` (about 2 MB, not the 35 MB tree).
"""

from __future__ import annotations

import shutil
from pathlib import Path

COMPONENT = "tex-chtml.js"
FONTS = Path("output") / "chtml" / "fonts" / "woff-v2"


def _mathjax_es5() -> Path:
    import mathjax  # the django-static-mathjax package

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / COMPONENT).exists():
        raise FileNotFoundError(f"MathJax component {COMPONENT} not found in {es5}; reinstall django-static-mathjax")
    return es5


def _config_inited(app, config) -> None:
    config.mathjax_path = f"mathjax/{COMPONENT}"  # relative to _static/


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    es5 = _mathjax_es5()
    target = Path(app.outdir) / "_static" / "mathjax"
    (target / FONTS).mkdir(parents=True, exist_ok=True)
    shutil.copy2(es5 / COMPONENT, target / COMPONENT)
    shutil.copytree(es5 / FONTS, target / FONTS, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
