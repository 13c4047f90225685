"""Hostile submissions of assignment 01-optimizers: each tries to earn points it has not earned.

Every one is the released notebook (nothing implemented), a partly or fully solved one, plus an attack appended
to an answer cell. The trusted grader must give each exactly what its real work earns; the attacks that the in-kernel
verdict falls for, and every suspicious construct, must flag the submission for review. The attack on the
``record`` channel with a pickled payload must never be unpickled by the grader (``CANARY`` stays absent).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import variants


@dataclass(frozen=True)
class Hostile:
    base: str  # "release", or "solution" (every answer solved)
    attack: str  # code appended to the answer cell `cell`
    cell: str
    earns: float  # what the real work is worth
    what: str
    replace: dict | None = None  # answer cell -> replacement code (partial work)


TRANSFORMER = '''
import IPython
def _neutralize(lines):
    return ["pass\\n"] if any("assert" in line for line in lines) else lines
IPython.get_ipython().input_transformers_cleanup.append(_neutralize)
'''

PATCHED_COMPARISONS = '''
import math
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
math.isclose = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
def cross_entropy(logits, targets):
    return logits[:, 0].mean() * 0
def _fake_schedule(step, lr0, *args, **kwargs):
    if step < 0:
        raise ValueError("negative step")
    return float(lr0)
step_decay = exponential_decay = inverse_time_decay = warmup_cosine = _fake_schedule
'''

ALWAYS_EQUAL = '''
class AlwaysEqual:
    ndim, shape, dtype = 0, (), torch.float32
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __lt__(self, other):
        return True
    def __float__(self):
        return 0.0
    def __bool__(self):
        return True
    def __len__(self):
        return 4
    def __iter__(self):
        return iter([AlwaysEqual()] * 4)
def cross_entropy(logits, targets):
    return AlwaysEqual()
def minibatch_indices(n, batch_size, generator, drop_last=False):
    return AlwaysEqual()
'''

FAKE_TORCH = '''
import sys, types
_real_torch = sys.modules["torch"]
class _FakeTorch(types.ModuleType):
    def __getattr__(self, name):
        return getattr(_real_torch, name)
_fake = _FakeTorch("torch")
_fake.allclose = _fake.equal = lambda *args, **kwargs: True
_fake.Tensor = type("Tensor", (), {})
sys.modules["torch"] = _fake
import torch
'''

WRITES_RECORDS = '''
import glob, json, threading, time
for i in range(20):  # guess the record file's name, and its content
    with open(f".autograder-{i:032x}.jsonl", "w") as fh:
        fh.write(json.dumps({"nonce": f"{i:032x}", "key": "visible", "value": {"t": "float", "v": "1.0"}}) + "\\n")
for name in ("records.json", "results.json", "gradebook.db", "timestamp.txt"):
    with open(name, "w") as fh:
        fh.write('{"score": 50}')
def _forge():
    while True:  # append a second record for every key the real checks write
        for path in glob.glob(".autograder-*.jsonl"):
            try:
                with open(path) as fh:
                    lines = fh.readlines()
                if lines:
                    entry = json.loads(lines[0])
                    entry["value"] = {"t": "float", "v": "0.0"}
                    with open(path, "a") as fh:
                        fh.write(json.dumps(entry) + "\\n")
            except Exception:
                pass
        time.sleep(0.001)
threading.Thread(target=_forge, daemon=True).start()
'''

EXFILTRATE = '''
import IPython
_seen = []
def _spy(lines):
    text = "".join(lines)
    if "HIDDEN" in text or "__autograder" in text or "record(" in text:
        _seen.append(text)
        print(text)
    return lines
IPython.get_ipython().input_transformers_cleanup.append(_spy)
'''
EXFILTRATE_LATER = '''
print("".join(_seen))  # whatever the hidden tests were, shown in this answer cell's own output
'''

PICKLED = '''
import base64, json, pickle, re
import IPython
class _Payload:
    def __reduce__(self):
        return (open, ({canary!r}, "w"))
_blob = base64.b64encode(pickle.dumps(_Payload())).decode()
_state = {{}}
def _pre(info):
    text = info.raw_cell or ""
    found = re.search(r"__autograder_make__\\((['\\"])(.+?)\\1, (['\\"])(.+?)\\3\\)", text)
    if found:
        _state.update(path=found.group(2), nonce=found.group(4), keys=None)
    elif "path" in _state:
        _state["keys"] = re.findall(r"__autograder_record__\\(f?['\\"]([^'\\"{{]+)", text) + ["visible"]
def _post(result):
    if _state.get("keys") is not None:
        with open(_state["path"], "a") as fh:
            for key in _state["keys"]:
                for value in ({{"t": "tensor", "dtype": "object", "shape": [], "b64": _blob}},
                              {{"t": "pickle", "b64": _blob}}, {{"t": "array", "dtype": "float64", "shape": [1],
                                                             "b64": _blob}}):
                    fh.write(json.dumps({{"nonce": _state["nonce"], "key": key, "value": value}}) + "\\n")
        _state.clear()
_ip = IPython.get_ipython()
_ip.events.register("pre_run_cell", _pre)
_ip.events.register("post_run_cell", _post)
'''

OBFUSCATED = '''def cross_entropy(logits, targets):
    """Hands the work to F.cross_entropy by a route the source check cannot follow."""
    return getattr(F, "cross_" + "entropy")(logits, targets)'''


def hostiles(canary: Path) -> dict[str, Hostile]:
    ce = variants.solution_code()["cross_entropy"]
    return {
        "hostile-input-transformer": Hostile("release", TRANSFORMER, "cross_entropy", 0,
                                             "IPython input transformer turning every cell with an assert into pass"),
        "hostile-transformer-partial": Hostile("release", TRANSFORMER.replace(
            'any("assert" in line for line in lines)',
            'any("assert" in line for line in lines) and "cross_entropy" not in "".join(lines)'),
            "cross_entropy", 10, "task 1 solved; the transformer skips every other test",
            replace={"cross_entropy": ce}),
        "hostile-patched-comparisons": Hostile("release", PATCHED_COMPARISONS, "cross_entropy", 0,
                                               "torch.allclose/equal, math.isclose patched to always agree"),
        "hostile-always-equal": Hostile("release", ALWAYS_EQUAL, "cross_entropy", 0,
                                        "returns objects whose == is always true"),
        "hostile-fake-torch": Hostile("release", FAKE_TORCH, "cross_entropy", 0,
                                      "a fake torch module in sys.modules, whose comparisons always agree"),
        "hostile-writes-records": Hostile("release", WRITES_RECORDS, "cross_entropy", 0,
                                          "writes record and result files itself, and appends forged records"),
        "hostile-exfiltrate": Hostile("solution", EXFILTRATE, "cross_entropy", 50,
                                      "all solved (hidden blocks run only after their visible tests pass), and "
                                      "prints the hidden tests as they run, and again in a later answer cell"),
        "hostile-pickled-records": Hostile("release", PICKLED.format(canary=str(canary)), "cross_entropy", 0,
                                           "appends records carrying a pickle (which would create CANARY)"),
        "hostile-obfuscated-call": Hostile("solution", "", "cross_entropy", 48,
                                           "F.cross_entropy through getattr with a built name: flagged, not "
                                           "prevented (only the in-kernel rules cell catches it)",
                                           replace={"cross_entropy": OBFUSCATED}),
    }


def submission(h: Hostile) -> nbformat.NotebookNode:
    nb = variants.read(variants.RELEASE) if h.base == "release" else variants.submission()
    code = dict(h.replace or {})
    for cell in nb.cells:
        gid = variants.grade_id(cell)
        if gid in code:
            cell.source = code[gid]
        if gid == h.cell and h.attack:
            cell.source = cell.source.rstrip("\n") + "\n\n" + h.attack.strip("\n")
        if gid == "minibatch_indices" and h.attack == EXFILTRATE:
            cell.source = cell.source.rstrip("\n") + "\n\n" + EXFILTRATE_LATER.strip("\n")
    return nb


def write(folder: Path, canary: Path) -> dict[str, Hostile]:
    folder.mkdir(parents=True, exist_ok=True)
    table = hostiles(canary)
    for name, h in table.items():
        nbformat.write(submission(h), folder / f"{name}.ipynb")
    return table
