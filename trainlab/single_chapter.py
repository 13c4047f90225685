"""``make chapter``: the book's configuration for building one chapter alone.

A chapter links to other chapters ({ref}`ch-sgd`, {numref}, {doc}) that a single-chapter build does not
contain. Those links are checked by the full build (``make book``); here only the warnings for missing
cross-reference targets are silenced, every other warning still fails the build.

Usage: ``python -m trainlab.single_chapter _config.yml > build/src/_config.yml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

# Sphinx / MyST warning types raised only because the other chapters are absent.
MISSING_TARGET_WARNINGS = ("ref.ref", "ref.numref", "ref.doc", "ref.any", "myst.xref_missing", "toc.not_included")


def single_chapter_config(text: str) -> dict:
    config = yaml.safe_load(text)
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    suppressed = list(sphinx_config.get("suppress_warnings", []))
    sphinx_config["suppress_warnings"] = suppressed + [w for w in MISSING_TARGET_WARNINGS if w not in suppressed]
    return config


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m trainlab.single_chapter _config.yml", file=sys.stderr)
        return 2
    yaml.safe_dump(single_chapter_config(Path(args[0]).read_text()), sys.stdout, sort_keys=False, allow_unicode=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
