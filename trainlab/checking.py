"""Helpers for the visible tests of the assignments (imported by their setup cells).

These give students quick, readable feedback in Jupyter. They are not what grades: the grader decides every
score outside the student's kernel (see ``autograder/README.md``), and reads forbidden calls from the source.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:-1], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj, parts[-1]


@contextlib.contextmanager
def forbid(*names: str) -> Iterator[None]:
    """While the block runs, calling any of the named functions (e.g. ``"torch.logsumexp"``) raises
    ``AssertionError`` naming it; names that do not exist in this torch version are ignored."""
    patched = []

    def forbidden(name):
        def raiser(*args, **kwargs):
            raise AssertionError(f"{name} is not allowed in this task: compute it from basic tensor operations")

        return raiser

    try:
        for name in names:
            try:
                owner, attr = _resolve(name)
            except (ImportError, AttributeError):
                continue
            if not hasattr(owner, attr):
                continue
            patched.append((owner, attr, attr in vars(owner), getattr(owner, attr)))
            setattr(owner, attr, forbidden(name))
        yield
    finally:
        for owner, attr, own, original in reversed(patched):
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)
