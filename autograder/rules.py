"""Forbidden-call rules and suspicious constructs, found in the submitted *source* outside the kernel.

The source is parsed with ``ast`` and never executed. A rule is declared by the instructor in a hidden test
block of the solution notebook (read from there by the grader, a no-op when the kernel runs it)::

    rules(
        code=["cross_entropy"],                        # the student's functions/classes the rule is about
        forbid=["*log_softmax", "*logsumexp"],         # any reference: this cell scores 0
        forbid_for_task=["torch.*cross_entropy*"],     # any reference: every cell in `task` scores 0
        task=["test_ce_values", "test_ce_stable", "test_ce_rules"],
        requires=["test_ce_values"],                   # this cell scores only if these cells score
    )

Patterns are ``fnmatch`` patterns over *resolved* names: imports and assignments are followed
(``import torch.nn.functional as G``; ``from torch.nn.functional import cross_entropy as ce``; ``ls = torch.
log_softmax``; the names the locked setup cells bind, such as ``F``), ``getattr(obj, "literal")`` is an attribute,
and an attribute of any other object is ``<expr>.name`` (so ``logits.log_softmax(1)`` is ``<expr>.log_softmax``
and matches ``*log_softmax``). The code searched is the rule's functions/classes and every function or class of
the student's that they reference, transitively. Names the student defines are never matched themselves.

Everything that could reach a forbidden function by a route this cannot follow (``getattr`` with a computed
name, ``eval``/``exec``, ``__import__``/``importlib``, ``__dict__``/``vars``, frame inspection, patching library
attributes, IPython input transformers, pickle, ...) is reported as *suspicious*: the submission is flagged for
review, its score is left to the trusted checks.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
import re
from dataclasses import dataclass, field

from .checks import split_hidden
from .model import RuleSpec, StaticContext, cell_key

RULE_KEYS = ("code", "forbid", "forbid_for_task", "task", "requires")

SUSPICIOUS_NAMES = {"eval", "exec", "compile", "__import__", "globals", "locals", "vars", "breakpoint",
                    "get_ipython", "__builtins__", "__loader__", "__spec__"}
SUSPICIOUS_REFS = ("builtins*", "importlib*", "inspect*", "ctypes*", "gc", "gc.*", "IPython*", "pickle*",
                   "_pickle*", "marshal*", "dill*", "cloudpickle*", "shelve*", "copyreg*", "subprocess*",
                   "multiprocessing*", "threading*", "_thread*", "concurrent*", "socket*", "signal*", "atexit*",
                   "code", "code.*", "codeop*", "runpy*", "pty*", "sys.modules*", "sys.settrace", "sys.setprofile",
                   "sys._getframe", "sys.addaudithook", "sys.meta_path*", "sys.path_hooks*", "sys.displayhook",
                   "sys.excepthook", "os.system", "os.fork*", "os.kill*", "os.exec*", "os.spawn*", "os.popen",
                   "os.dup*", "torch._C*", "torch.ops*", "types.CodeType", "types.FunctionType",
                   "operator.attrgetter", "operator.methodcaller")
SUSPICIOUS_ATTRS = {"__dict__", "__globals__", "__code__", "__closure__", "__builtins__", "__subclasses__",
                    "__getattribute__", "__bases__", "__mro__", "__import__", "__loader__", "__spec__", "f_globals",
                    "f_locals", "f_back", "f_code", "tb_frame", "gi_frame", "cr_frame", "input_transformers_cleanup",
                    "input_transformers_post", "ast_transformers", "run_cell", "register_magic_function"}
SUSPICIOUS_METHODS = {"__eq__", "__ne__", "__torch_function__", "__torch_dispatch__", "__instancecheck__",
                      "__subclasscheck__", "__array_function__", "__array_ufunc__"}
INTERNALS = re.compile(r"autograder|BEGIN HIDDEN|END HIDDEN")
HELPER_MODULES = ("trainlab.checking.",)  # what a setup cell imports from these is a test helper, like its own defs


# ------------------------------------------------------------------------------------------- instructor side


def parse_context(notebooks: dict[str, dict], *, error) -> StaticContext:
    """Rules, names bound by locked cells and the ids nbgrader restores, from the instructor's source notebooks
    (``notebook name -> notebook JSON``). ``error(message)`` raises the caller's exception type."""
    names = sorted(notebooks)
    ctx = StaticContext()
    grade_ids: dict[str, set[str]] = {}
    for nb_name in names:
        locked: list[str] = []
        grade_ids[nb_name] = set()
        for cell in notebooks[nb_name].get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            gid = meta.get("grade_id")
            if meta.get("grade") and gid:
                grade_ids[nb_name].add(gid)
            if gid and not meta.get("solution") and (meta.get("grade") or meta.get("locked")):
                locked.append(gid)
            if cell.get("cell_type") == "code" and meta.get("locked") and not meta.get("grade"):
                tree = _parse(_source(cell))
                if tree is not None:
                    table = _Table(ctx.aliases)
                    table.add_module(tree)
                    for name, binding in table.globals.items():
                        if binding.kind == "alias":
                            ctx.aliases[name] = binding.target
                            if binding.target.startswith(HELPER_MODULES):  # from trainlab.checking import forbid
                                ctx.helpers.append(name)
                        elif binding.kind == "def":
                            ctx.helpers.append(name)
        ctx.locked[nb_name] = locked
    for nb_name in names:
        for cell in notebooks[nb_name].get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade") or cell.get("cell_type") != "code":
                continue
            gid = meta["grade_id"]
            for hidden, text in split_hidden(_source(cell)):
                if not hidden:
                    continue
                tree = _parse(text)
                if tree is None:
                    error(f"{nb_name}.ipynb, cell {gid}: the hidden test block is not valid Python")
                for stmt in tree.body:
                    call = stmt.value if isinstance(stmt, ast.Expr) else None
                    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "rules":
                        ctx.rules.append(_rule(call, names, nb_name, gid, grade_ids, error))
    ctx.helpers = sorted(set(ctx.helpers))
    _check_cycles(ctx.rules, error)
    return ctx


def _rule(call: ast.Call, names: list[str], nb_name: str, gid: str, grade_ids, error) -> RuleSpec:
    where = f"{nb_name}.ipynb, cell {gid}: rules(...)"
    if call.args:
        error(f"{where} takes keyword arguments only ({', '.join(RULE_KEYS)})")
    values: dict[str, list[str]] = {}
    for kw in call.keywords:
        if kw.arg not in RULE_KEYS:
            error(f"{where}: unknown argument {kw.arg!r} (use {', '.join(RULE_KEYS)})")
        try:
            value = ast.literal_eval(kw.value)
        except ValueError:
            error(f"{where}: {kw.arg}= must be a literal list of strings")
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            error(f"{where}: {kw.arg}= must be a list of non-empty strings")
        values[kw.arg] = list(value)

    def keys(ids: list[str], arg: str) -> list[str]:
        out = []
        for ref in ids:
            nb, _, g = ref.rpartition("/")
            nb = nb or nb_name
            if nb not in grade_ids or g not in grade_ids[nb]:
                error(f"{where}: {arg}= names {ref!r}, which is not a graded cell")
            out.append(cell_key(names, nb, g))
        return out

    me = cell_key(names, nb_name, gid)
    task = keys(values.get("task", []), "task")
    if values.get("forbid_for_task") and me not in task:
        task.append(me)
    if values.get("forbid_for_task") and not values.get("task"):
        error(f"{where}: forbid_for_task= needs task= (the graded cells of the task)")
    if (values.get("forbid") or values.get("forbid_for_task")) and not values.get("code"):
        error(f"{where}: forbid= needs code= (the functions or classes the rule applies to)")
    return RuleSpec(cell=me, code=values.get("code", []), forbid=values.get("forbid", []),
                    forbid_for_task=values.get("forbid_for_task", []), task=task,
                    requires=keys(values.get("requires", []), "requires"))


def _check_cycles(rules: list[RuleSpec], error) -> None:
    needs: dict[str, set[str]] = {}
    for r in rules:
        needs.setdefault(r.cell, set()).update(r.requires)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            error("rules(requires=...) form a cycle: " + " -> ".join(path + [node]))
        state[node] = 1
        for nxt in sorted(needs.get(node, ())):
            visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(needs):
        visit(node, [])


# ------------------------------------------------------------------------------------------- analysis


@dataclass
class _Binding:
    kind: str  # "alias" (target: a dotted name), "def" (node), "other"
    target: str = ""
    node: ast.AST | None = None
    where: str = ""


@dataclass
class _Table:
    """Top-level bindings of the student's code (flow-insensitive: the last binding of a name wins)."""

    aliases: dict[str, str]
    globals: dict[str, _Binding] = field(default_factory=dict)
    defs: dict[str, list[tuple[ast.AST, str]]] = field(default_factory=dict)  # every def/lambda of a name
    stars: list[str] = field(default_factory=list)  # modules of `from M import *`, latest last

    def add_module(self, tree: ast.Module, where: str = "") -> None:
        for stmt in tree.body:
            self._bind_stmt(stmt, where, self.globals, top=True)

    def _bind_stmt(self, stmt: ast.AST, where: str, into: dict[str, _Binding], top: bool) -> None:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.asname:
                    into[a.asname] = _Binding("alias", a.name, where=where)
                else:
                    root = a.name.split(".")[0]
                    into[root] = _Binding("alias", root, where=where)
        elif isinstance(stmt, ast.ImportFrom):
            mod = "." * stmt.level + (stmt.module or "")
            for a in stmt.names:
                if a.name != "*":
                    into[a.asname or a.name] = _Binding("alias", f"{mod}.{a.name}", where=where)
                elif mod not in self.stars:
                    self.stars.append(mod)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            into[stmt.name] = _Binding("def", node=stmt, where=where)
            if top:
                self.defs.setdefault(stmt.name, []).append((stmt, where))
        elif isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    if isinstance(stmt.value, ast.Lambda):
                        into[t.id] = _Binding("def", node=stmt.value, where=where)
                        if top:
                            self.defs.setdefault(t.id, []).append((stmt.value, where))
                    else:
                        ref = self.resolve(stmt.value, into if not top else None)
                        into[t.id] = (_Binding("alias", ref, where=where) if ref and not ref.startswith("<")
                                      else _Binding("other", where=where))
        elif top and isinstance(stmt, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.stmt):
                    self._bind_stmt(child, where, into, top)
            for handler in getattr(stmt, "handlers", []):
                for child in handler.body:
                    self._bind_stmt(child, where, into, top)

    def lookup(self, name: str, local: dict[str, _Binding] | None) -> str:
        for scope in (local or {}, self.globals):
            if name in scope:
                b = scope[name]
                return b.target if b.kind == "alias" else (f"@{name}" if b.kind == "def" else "<expr>")
        if name in self.aliases:
            return self.aliases[name]
        if self.stars:  # `from torch.nn.functional import *` then `layer_norm(...)`: a name from the module
            return f"{self.stars[-1]}.{name}"
        return f"builtins.{name}" if name in _BUILTINS else "<expr>"

    def resolve(self, node: ast.AST, local: dict[str, _Binding] | None = None) -> str:
        """A dotted name for a Name/Attribute chain (``torch.nn.functional.x``), ``@name`` for the student's
        own functions/classes, ``<expr>.attr`` for an attribute of anything else, ``<expr>`` otherwise."""
        if isinstance(node, ast.Name):
            return self.lookup(node.id, local)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value, local)
            if base.startswith("@") or base.startswith("<"):
                return f"<expr>.{node.attr}"
            return f"{base}.{node.attr}"
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            base = self.resolve(node.args[0], local)
            attr = node.args[1].value
            return f"<expr>.{attr}" if base.startswith(("@", "<")) else f"{base}.{attr}"
        return "<expr>"


_BUILTINS = set(dir(builtins))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _ipython_free(src: str) -> str | None:
    """The cell's Python with IPython-only lines blanked (line numbers kept); None for a non-Python cell magic."""
    lines = src.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].split()[0]
        if magic not in ("%%time", "%%timeit", "%%capture"):
            return None
        lines[0] = ""
    out = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or (stripped.endswith("?") and not stripped.startswith("#")):
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def _parse(src: str) -> ast.Module | None:
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


@dataclass
class _Cell:
    label: str
    tree: ast.Module


def student_cells(nb: dict, notebook: str, locked: list[str]) -> tuple[list[_Cell], list[str]]:
    """The code cells whose source the student controls (every code cell nbgrader does not restore)."""
    cells, notes = [], []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in locked:
            continue
        label = f"{notebook}: cell '{gid}'" if gid else f"{notebook}: cell {i}"
        text = _ipython_free(_source(cell))
        if text is None:
            notes.append(f"{label} is a cell magic and was not analysed")
            continue
        tree = _parse(text)
        if tree is None:
            notes.append(f"{label} is not valid Python and was not analysed")
            continue
        cells.append(_Cell(label, tree))
    return cells, notes


def analyse(notebooks: dict[str, dict], ctx: StaticContext) -> dict:
    """Findings for a submission (``notebook name -> notebook JSON``): ``violations`` of the rules (each with
    the rule's index, the tier ``cell``/``task``, the forbidden name and where), ``suspicious`` constructs and
    ``notes`` (cells that could not be analysed)."""
    cells: list[_Cell] = []
    notes: list[str] = []
    for name in sorted(notebooks):
        found, n = student_cells(notebooks[name], name, ctx.locked.get(name, []))
        cells += found
        notes += n
    table = _Table(dict(ctx.aliases))
    for cell in cells:
        table.add_module(cell.tree, cell.label)
    violations = []
    for index, rule in enumerate(ctx.rules):
        for tier, patterns in (("task", rule.forbid_for_task), ("cell", rule.forbid)):
            if not patterns:
                continue
            for name, where in _references(table, rule.code):
                pat = next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)
                if pat:
                    violations.append({"rule": index, "tier": tier, "name": name, "where": where})
    suspicious = _suspicious(cells, table, ctx)
    return {"violations": violations, "suspicious": suspicious, "notes": notes}


def _references(table: _Table, entries: list[str]) -> list[tuple[str, str]]:
    """Every resolved name referenced by the entry points and the student code they reach."""
    out: list[tuple[str, str]] = []
    seen: set[int] = set()
    todo: list[tuple[ast.AST, str]] = []
    for name in entries:
        b = table.globals.get(name)
        if b is not None and b.kind == "alias":
            out.append((b.target, b.where))
        for node, where in table.defs.get(name, []):
            todo.append((node, where))
    while todo:
        node, where = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        local = _locals(table, node)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name | ast.Attribute | ast.Call):
                ref = table.resolve(sub, local)
                if ref.startswith("@"):
                    for d in table.defs.get(ref[1:], []):
                        todo.append(d)
                elif ref != "<expr>" and not (isinstance(sub, ast.Name) and ref == f"builtins.{sub.id}"):
                    out.append((ref, f"{where}, line {getattr(sub, 'lineno', '?')}"))
            if isinstance(sub, ast.Import | ast.ImportFrom):
                for a in sub.names:
                    mod = a.name if isinstance(sub, ast.Import) else f"{sub.module or ''}.{a.name}"
                    out.append((mod, f"{where}, line {sub.lineno}"))
    return out


def _locals(table: _Table, node: ast.AST) -> dict[str, _Binding]:
    local: dict[str, _Binding] = {}
    for sub in ast.walk(node):
        if sub is node:
            continue
        if isinstance(sub, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign):
            table._bind_stmt(sub, "", local, top=False)
    return local


def _suspicious(cells: list[_Cell], table: _Table, ctx: StaticContext) -> list[dict]:
    found: list[dict] = []

    def add(what: str, where: str) -> None:
        if any(f["what"] == what or f["what"].startswith(what + ".") for f in found) or len(found) >= 50:
            return
        found.append({"what": what, "where": where})

    for cell in cells:
        for stmt in cell.tree.body:
            names = []
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = [stmt.name]
            elif isinstance(stmt, ast.Assign):
                names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                names = [(a.asname or a.name).split(".")[0] for a in stmt.names]
            for n in names:
                if n in ctx.helpers:
                    add(f"redefines the test helper `{n}`", f"{cell.label}, line {stmt.lineno}")
                elif n in ctx.aliases and isinstance(stmt, ast.Assign):
                    add(f"rebinds `{n}`, which the setup cell defines", f"{cell.label}, line {stmt.lineno}")
        for node in ast.walk(cell.tree):
            where = f"{cell.label}, line {getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Name) and node.id in SUSPICIOUS_NAMES:
                add(f"uses {node.id}", where)
            elif isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS_ATTRS:
                add(f"uses .{node.attr}", where)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                    "getattr", "setattr", "delattr", "hasattr"):
                if len(node.args) < 2 or not (isinstance(node.args[1], ast.Constant)
                                              and isinstance(node.args[1].value, str)):
                    add(f"{node.func.id} with a computed attribute name", where)
                elif node.func.id in ("setattr", "delattr"):
                    base = table.resolve(node.args[0])
                    if not base.startswith(("<", "@")):
                        add(f"patches {base}.{node.args[1].value}", where)
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                add(f"imports * from {node.module or '.'} (names it brings in are resolved to that module)", where)
            if isinstance(node, ast.Import | ast.ImportFrom):
                for a in node.names:
                    mod = a.name if isinstance(node, ast.Import) else f"{node.module or ''}.{a.name}"
                    if any(fnmatch.fnmatchcase(mod, p) for p in SUSPICIOUS_REFS):
                        add(f"imports {mod}", where)
            if isinstance(node, ast.Attribute | ast.Name):
                ref = table.resolve(node)
                if any(fnmatch.fnmatchcase(ref, p) for p in SUSPICIOUS_REFS) and not ref.startswith("builtins."):
                    add(f"uses {ref}", where)
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Delete):
                targets = node.targets
            for t in targets:
                if isinstance(t, ast.Attribute):
                    base = table.resolve(t.value)
                    if not base.startswith(("<", "@")):
                        add(f"patches {base}.{t.attr}", where)
            if isinstance(node, ast.FunctionDef) and node.name in SUSPICIOUS_METHODS:
                add(f"defines {node.name}", where)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and INTERNALS.search(node.value):
                add("refers to the grader's internals", where)
    return found
