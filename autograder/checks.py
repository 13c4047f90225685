"""Trusted hidden checks: the student's kernel *records* what the code produces, the grader compares outside.

How it works (see "Writing hidden checks" in autograder/README.md for the author's view):

1. A hidden test block (``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``) calls
   ``record(key, value, rtol=..., atol=..., label=...)`` for every result it wants compared.
2. When grading, the worker sends a test cell's visible part and its hidden block to the kernel as separate
   requests. Before the hidden block it sends a prelude that defines the recorder with a fresh random nonce and
   a record file named after it (``.autograder-<nonce>.jsonl`` in the notebook's folder); in the hidden source
   the names ``record``/``raises``/``rules`` are rewritten to private names, so they never collide with the
   student's own names. Right after the hidden block finishes, the worker (outside the sandbox) reads that file
   and deletes it: records are attributed to the cell whose hidden block issued the nonce, and a file written
   ahead of time, by another cell, or under another name is never read.
3. The record format cannot carry code: one JSON object per line; tensors and arrays as dtype + shape + raw
   little-endian bytes (base64), decoded with ``numpy.frombuffer`` from an allow-list of dtypes; numbers,
   strings, booleans, ``None``, lists and dicts as JSON. Nothing is ever unpickled.
4. The instructor's solution is run through the same checks (``reference``); the grader compares each student
   record with the reference record of the same key, with the tolerance the *reference* declared. A missing,
   malformed, duplicated, wrong-type, wrong-dtype or wrong-shape record fails its check with a reason that
   names what was compared, never the reference value.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import secrets
import stat
import tokenize
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
RECORD_PREFIX = ".autograder-"
API_NAMES = ("record", "raises", "rules")  # what a hidden block may call; rewritten to private names
PRIVATE = {name: f"__autograder_{name}__" for name in API_NAMES}
DEFAULT_RTOL, DEFAULT_ATOL = 1e-7, 0.0
DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
          "float64"}
MAX_DEPTH = 32


class RecordError(ValueError):
    """A record that cannot be decoded (malformed, unknown dtype, inconsistent size, ...)."""


# ------------------------------------------------------------------------------------------- authoring side


def split_hidden(source: str) -> list[tuple[bool, str]]:
    """``[(is_hidden, text), ...]`` in order; marker lines are dropped (nbgrader's own rule: a line containing
    the marker). Lines keep their position relative to their own part."""
    parts: list[tuple[bool, list[str]]] = [(False, [])]
    for line in source.split("\n"):
        if BEGIN in line:
            parts.append((True, []))
        elif END in line:
            parts.append((False, []))
        else:
            parts[-1][1].append(line)
    return [(hidden, "\n".join(lines)) for hidden, lines in parts if "\n".join(lines).strip()]


def has_hidden(source: str) -> bool:
    return BEGIN in source


def privatize(source: str) -> str:
    """Rewrite calls of the hidden-check API (``record``, ``raises``, ``rules``) to private names, token by
    token (strings, comments, attributes ``x.record`` and keyword arguments ``f(record=...)`` are left alone)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source  # not valid Python: the kernel reports the syntax error itself
    edits: list[tuple[int, int, int, str]] = []
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or tok.string not in PRIVATE:
            continue
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if prev is not None and prev.type == tokenize.OP and prev.string == ".":
            continue
        if nxt is not None and nxt.type == tokenize.OP and nxt.string == "=" and _inside_call(tokens, i):
            continue
        edits.append((tok.start[0], tok.start[1], tok.end[1], PRIVATE[tok.string]))
    lines = source.split("\n")
    for row, start, end, new in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + new + line[end:]
    return "\n".join(lines)


def _inside_call(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    depth = 0
    for tok in reversed(tokens[:index]):
        if tok.type == tokenize.OP and tok.string in ")]}":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in "([{":
            if depth == 0:
                return tok.string == "("
            depth -= 1
    return False


# The recorder sent to the kernel before each hidden block. Self-contained (it imports nothing from the
# course or from autograder, so a submission cannot shadow it with a file), never raises for odd values.
_PRELUDE = r'''
def __autograder_make__(path, nonce):
    import base64 as _b64, json as _json, sys as _sys
    _torch, _np = _sys.modules.get("torch"), _sys.modules.get("numpy")
    if _np is None and _torch is not None:
        try:
            import numpy as _np
        except ImportError:
            _np = None
    _count = [0]

    def _array(a, kind):
        return {"t": kind, "dtype": a.dtype.name, "shape": [int(s) for s in a.shape],
                "b64": _b64.b64encode(a.tobytes()).decode("ascii")}

    def _enc(v, depth=0):
        try:
            if depth > 32:
                return {"t": "unsupported", "type": "deeply nested value"}
            if v is None:
                return {"t": "none"}
            if isinstance(v, bool):
                return {"t": "bool", "v": bool(v)}
            if isinstance(v, int):
                return {"t": "int", "v": str(int(v))}
            if isinstance(v, float):
                return {"t": "float", "v": repr(float(v))}
            if isinstance(v, str):
                return {"t": "str", "v": str(v)}
            if _torch is not None and isinstance(v, _torch.Tensor):
                t = v.detach().to("cpu")
                if t.dtype == _torch.bfloat16:
                    return {"t": "unsupported", "type": "bfloat16 tensor"}
                return _array(_np.ascontiguousarray(t.resolve_conj().resolve_neg().numpy()), "tensor")
            if _np is not None and isinstance(v, (_np.ndarray, _np.generic)):
                return _array(_np.ascontiguousarray(v), "array")
            if isinstance(v, (list, tuple)):
                return {"t": "list", "items": [_enc(x, depth + 1) for x in v]}
            if isinstance(v, dict):
                return {"t": "dict", "items": {str(k): _enc(x, depth + 1) for k, x in v.items()}}
            return {"t": "unsupported", "type": type(v).__name__}
        except Exception as exc:  # a value that cannot even be inspected is recorded as such
            return {"t": "unsupported", "type": type(v).__name__, "error": repr(exc)[:200]}

    def record(key, value, *, rtol=None, atol=None, label=None):
        """Record `value` under `key` for the grader to compare with the instructor's solution."""
        if not isinstance(key, str) or not key:
            raise TypeError("record(key, value): key must be a non-empty str")
        for name, tol in (("rtol", rtol), ("atol", atol)):
            if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0):
                raise ValueError(f"record(): {name} must be a number >= 0, got {tol!r}")
        entry = {"nonce": nonce, "n": _count[0], "key": key, "value": _enc(value),
                 "rtol": None if rtol is None else float(rtol), "atol": None if atol is None else float(atol),
                 "label": None if label is None else str(label)}
        _count[0] += 1
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(_json.dumps(entry) + "\n")

    def raises(exc, fn, *args, **kwargs):
        """True if fn(*args, **kwargs) raises `exc`; False if it returns or raises something else."""
        try:
            fn(*args, **kwargs)
        except exc:
            return True
        except Exception:
            return False
        return False

    def rules(**kwargs):
        """Declares forbidden calls; read by the grader from the instructor's source, a no-op here."""
        return None

    return record, raises, rules


__autograder_record__, __autograder_raises__, __autograder_rules__ = __autograder_make__({path!r}, {nonce!r})
del __autograder_make__
'''


@dataclass
class HiddenPhase:
    """One hidden block about to run: what to send before it, and where its records will be."""

    nonce: str
    path: str
    prelude: str
    source: str


def prelude_source(path: str, nonce: str) -> str:
    """The code that defines the recorder (writing to ``path``, entries tagged with ``nonce``) in a kernel."""
    return _PRELUDE.replace("{path!r}", repr(path)).replace("{nonce!r}", repr(nonce))


def hidden_phase(folder: str, source: str) -> HiddenPhase:
    nonce = secrets.token_hex(16)
    path = os.path.join(folder, f"{RECORD_PREFIX}{nonce}.jsonl")
    return HiddenPhase(nonce=nonce, path=path, prelude=prelude_source(path, nonce), source=privatize(source))


def collect(phase: HiddenPhase, budget: int) -> tuple[list[dict], list[str], int]:
    """Read and delete the record file of ``phase`` (never following links, at most ``budget`` bytes).
    Returns (entries, problems, bytes read). Entries are parsed JSON objects carrying the phase's nonce."""
    problems: list[str] = []
    try:
        fd = os.open(phase.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return [], [], 0
    except OSError as exc:
        _unlink(phase.path)
        return [], [f"the record file could not be opened ({exc.strerror})"], 0
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return [], ["the record file is not a regular file"], 0
        if st.st_size > budget:
            return [], [f"more than {budget} bytes of records"], 0
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(budget + 1)
    finally:
        os.close(fd)
        _unlink(phase.path)
    entries = []
    for i, line in enumerate(raw.split(b"\n")):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(f"record line {i + 1} is not valid JSON")
            continue
        if not isinstance(entry, dict) or entry.get("nonce") != phase.nonce or not isinstance(entry.get("key"), str):
            problems.append(f"record line {i + 1} does not belong to this check")
            continue
        entries.append({k: entry.get(k) for k in ("key", "value", "rtol", "atol", "label")})
    return entries, problems, len(raw)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def stray_record_files(folder: str) -> list[str]:
    """Record-like files left in the notebook's folder (nobody reads them; their presence is suspicious)."""
    try:
        return sorted(n for n in os.listdir(folder) if n.startswith(RECORD_PREFIX))
    except OSError:
        return []


# ------------------------------------------------------------------------------------------- decoding


@dataclass
class Value:
    kind: str  # none, bool, int, float, str, tensor, array, list, dict, unsupported
    data: Any = None
    dtype: str = ""


def decode(obj: Any, depth: int = 0) -> Value:
    """A record's value from its JSON form; raises RecordError for anything malformed."""
    if depth > MAX_DEPTH:
        raise RecordError("nested too deeply")
    if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
        raise RecordError("not a record value")
    kind = obj["t"]
    if kind == "none":
        return Value("none")
    if kind == "bool":
        if not isinstance(obj.get("v"), bool):
            raise RecordError("bad bool")
        return Value("bool", obj["v"])
    if kind == "int":
        text = obj.get("v")
        if not isinstance(text, str) or not re.fullmatch(r"-?\d{1,400}", text):
            raise RecordError("bad int")
        return Value("int", int(text))
    if kind == "float":
        text = obj.get("v")
        if not isinstance(text, str) or len(text) > 40:
            raise RecordError("bad float")
        try:
            return Value("float", float(text))
        except ValueError:
            raise RecordError("bad float") from None
    if kind == "str":
        if not isinstance(obj.get("v"), str):
            raise RecordError("bad str")
        return Value("str", obj["v"])
    if kind in ("tensor", "array"):
        dtype, shape, b64 = obj.get("dtype"), obj.get("shape"), obj.get("b64")
        if dtype not in DTYPES:
            raise RecordError(f"dtype {str(dtype)[:40]!r} is not accepted")
        if (not isinstance(shape, list) or len(shape) > 32
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape)):
            raise RecordError("bad shape")
        if not isinstance(b64, str):
            raise RecordError("no data")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise RecordError("data is not base64") from None
        dt = np.dtype(dtype).newbyteorder("<")
        if math.prod(shape) * dt.itemsize != len(raw):
            raise RecordError("data size does not match dtype and shape")
        array = np.frombuffer(raw, dtype=dt).reshape(shape)
        return Value(kind, array, dtype)
    if kind == "list":
        items = obj.get("items")
        if not isinstance(items, list):
            raise RecordError("bad list")
        return Value("list", [decode(x, depth + 1) for x in items])
    if kind == "dict":
        items = obj.get("items")
        if not isinstance(items, dict):
            raise RecordError("bad dict")
        return Value("dict", {str(k): decode(v, depth + 1) for k, v in items.items()})
    if kind == "unsupported":
        return Value("unsupported", str(obj.get("type", "unknown"))[:60])
    raise RecordError(f"unknown kind {kind[:20]!r}")


_NAMES = {"none": "None", "bool": "a bool", "int": "an int", "float": "a float", "str": "a str",
          "tensor": "a tensor", "array": "a NumPy array", "list": "a list/tuple", "dict": "a dict"}


def _describe(v: Value) -> str:
    if v.kind == "unsupported":
        return f"an object of type {v.data}"
    return _NAMES.get(v.kind, v.kind)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def compare(ref: Value, got: Value, rtol: float, atol: float) -> str | None:
    """None if ``got`` matches ``ref`` within the tolerance; otherwise what differs, in words that never show
    the reference value (the student's own value, shapes and dtypes may be named)."""
    if ref.kind != got.kind:
        return f"is {_describe(got)}, expected {_describe(ref)}"
    if ref.kind == "none":
        return None
    if ref.kind in ("bool", "str"):
        if ref.data == got.data:
            return None
        shown = repr(got.data) if ref.kind == "bool" or len(got.data) <= 60 else repr(got.data[:60]) + "..."
        return f"is {shown}, not the expected value"
    if ref.kind == "int":
        return None if ref.data == got.data else f"is {got.data if abs(got.data) < 10**15 else 'a huge int'}, " \
                                                 "not the expected value"
    if ref.kind == "float":
        return _close_scalar(ref.data, got.data, rtol, atol)
    if ref.kind in ("tensor", "array"):
        if ref.dtype != got.dtype:
            return f"has dtype {got.dtype} instead of {ref.dtype}"
        if ref.data.shape != got.data.shape:
            return f"has shape {_shape(got.data.shape)}, not the expected shape"
        return _close_array(ref.data, got.data, rtol, atol)
    if ref.kind == "list":
        if len(ref.data) != len(got.data):
            return f"has {len(got.data)} items, not the expected number"
        for i, (r, g) in enumerate(zip(ref.data, got.data, strict=True)):
            msg = compare(r, g, rtol, atol)
            if msg:
                return f"item {i}: {msg}"
        return None
    if ref.kind == "dict":
        if set(ref.data) != set(got.data):
            missing = sorted(set(ref.data) - set(got.data))
            extra = sorted(set(got.data) - set(ref.data))
            return ("lacks key " + repr(missing[0])) if missing else f"has the unexpected key {extra[0]!r}"
        for k in ref.data:
            msg = compare(ref.data[k], got.data[k], rtol, atol)
            if msg:
                return f"[{k!r}]: {msg}"
        return None
    return f"cannot be compared ({_describe(ref)})"


def _close_scalar(r: float, g: float, rtol: float, atol: float) -> str | None:
    if math.isnan(r) or math.isnan(g):
        return None if math.isnan(r) and math.isnan(g) else ("is nan" if math.isnan(g) else
                                                            f"is {g!r} where nan was expected")
    if math.isinf(r) or math.isinf(g):
        return None if r == g else f"is {g!r}, not the expected value"
    diff = abs(g - r)
    return None if diff <= atol + rtol * abs(r) else f"differs by {diff:.2g}"


def _close_array(r: np.ndarray, g: np.ndarray, rtol: float, atol: float) -> str | None:
    if r.dtype.kind in "biu":
        bad = int(np.count_nonzero(r != g))
        return None if bad == 0 else f"differs in {bad} of {r.size} elements"
    r64, g64 = r.astype(np.float64), g.astype(np.float64)
    nan_r, nan_g = np.isnan(r64), np.isnan(g64)
    if (nan_r != nan_g).any():
        return "has nan where the expected result has a number" if (nan_g & ~nan_r).any() else \
            "has a number where nan was expected"
    inf_r, inf_g = np.isinf(r64), np.isinf(g64)
    if (inf_r != inf_g).any() or (r64[inf_r] != g64[inf_r]).any():
        return "has inf where the expected result is finite" if (inf_g & ~inf_r).any() else \
            "has a finite value where inf was expected"
    fin = ~(nan_r | inf_r)
    if not fin.any():
        return None
    diff = np.abs(g64[fin] - r64[fin])
    ok = diff <= atol + rtol * np.abs(r64[fin])
    return None if ok.all() else f"differs by up to {float(diff.max()):.2g}"


# ------------------------------------------------------------------------------------------- verdicts


@dataclass
class CellVerdict:
    """The trusted comparison of one test cell."""

    checks: int  # how many checks the reference declared
    failed: int = 0
    message: str = ""  # the first failure (label: what differs) and how many more failed
    unexpected: list[str] = field(default_factory=list)  # keys the reference never recorded
    problems: list[str] = field(default_factory=list)  # malformed/duplicate records, unreadable files

    @property
    def passed(self) -> bool:
        return self.failed == 0


def judge_cell(reference: list[dict], records: list[dict], problems: list[str] | None = None,
               started: bool = True) -> CellVerdict:
    """Compare a cell's student records with the reference records (both: raw entries from ``collect``).
    ``started``: whether the cell's hidden block was sent to the kernel at all."""
    problems = list(problems or [])
    by_key: dict[str, list[dict]] = {}
    for entry in records:
        by_key.setdefault(entry["key"], []).append(entry)
    ref_keys = [e["key"] for e in reference]
    verdict = CellVerdict(checks=len(reference), problems=problems)
    verdict.unexpected = sorted(set(by_key) - set(ref_keys))[:20]
    first = ""
    for ref in reference:
        label = ref.get("label") or ref["key"]
        got = by_key.get(ref["key"], [])
        if not got:
            msg = "was not recorded (the check did not get this far: an error, a timeout or a crash before it)"
        elif len(got) > 1:
            msg = "was recorded more than once"
        else:
            try:
                value = decode(got[0]["value"])
            except RecordError as exc:
                msg = f"the record is malformed ({exc})"
            else:
                rtol = ref["rtol"] if ref.get("rtol") is not None else DEFAULT_RTOL
                atol = ref["atol"] if ref.get("atol") is not None else DEFAULT_ATOL
                msg = compare(decode(ref["value"]), value, rtol, atol)
        if msg:
            verdict.failed += 1
            first = first or f"{label}: {msg}"
    if verdict.failed and not records and not problems:
        verdict.message = ("its hidden checks did not run: the visible tests of this cell failed, or the notebook "
                           "stopped before it" if not started else
                           "its hidden checks stopped with an error before recording anything")
        return verdict
    if verdict.failed:
        more = verdict.failed - 1
        verdict.message = first + (f" (and {more} more of {verdict.checks} checks failed)" if more else "")
    return verdict


def validate_reference(cell: str, entries: list[dict], problems: list[str]) -> list[str]:
    """Errors that make the instructor's own records unusable as a reference."""
    errors = [f"{cell}: {p}" for p in problems]
    seen: set[str] = set()
    for e in entries:
        if e["key"] in seen:
            errors.append(f"{cell}: record key {e['key']!r} is recorded more than once (keys must be unique)")
        seen.add(e["key"])
        try:
            v = decode(e["value"])
        except RecordError as exc:
            errors.append(f"{cell}: record {e['key']!r} is malformed ({exc})")
            continue
        if v.kind == "unsupported":
            errors.append(f"{cell}: record {e['key']!r} holds {_describe(v)}; record tensors, arrays, numbers, "
                          "strings, bools, None, or lists/dicts of them")
    return errors


# ------------------------------------------------------------------------------------------- by hand


def record(key: str, value: Any, *, rtol: float | None = None, atol: float | None = None,
           label: str | None = None) -> None:
    """Stand-in for running a solution notebook by hand (``from autograder.checks import record, raises,
    rules``): checks the arguments, records nothing. When grading, the grader provides the real one."""
    if not isinstance(key, str) or not key:
        raise TypeError("record(key, value): key must be a non-empty str")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, int | float) or not tol >= 0):
            raise ValueError(f"record(): {name} must be a number >= 0, got {tol!r}")


def raises(exc: type[BaseException] | tuple, fn, *args, **kwargs) -> bool:
    """True if ``fn(*args, **kwargs)`` raises ``exc``; False if it returns or raises something else."""
    try:
        fn(*args, **kwargs)
    except exc:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


def rules(**kwargs) -> None:
    """Stand-in: the grader reads ``rules(...)`` from the instructor's notebook; it does nothing when run."""
