"""Grad modes along call paths, and where tensors made in a grad-off region end up.

Two questions decide whether a region may run under `torch.inference_mode()`
instead of `torch.no_grad()` (or be wrapped in it at all):

1. *What does the region itself do?* Writing persistent state (parameter
   data, buffers, module construction, weight loading, moving modules) or
   switching autograd back on cannot work under inference mode at all; those
   hazards are never fixable.
2. *Where do the tensors it makes go?* Every tensor created under inference
   mode is an inference tensor, and so is every view of one. Outside the
   mode such a tensor raises when it reaches an operation that records
   autograd (a module with parameters, an op with a parameter operand, the
   output of a `forward` that runs with autograd on) or when it is modified
   in place. The analysis follows the tensors through assignments, returns,
   tuple/dict packing, calls and attribute state across the whole project,
   and reports the first such use on a path that can run with autograd on
   (or outside inference mode), with that path.

`GradStates` answers, for every function, whether it may run with autograd
on and whether it may run outside inference mode, from decorators, `with`
blocks and callers. A function with no caller in the project is assumed to
be called with autograd on.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .index import (
    CallSite,
    ClassInfo,
    Container,
    External,
    FunctionInfo,
    Instance,
    ProjectIndex,
    own_nodes,
)

ERR_SAVED = "Inference tensors cannot be saved for backward"
ERR_INPLACE = "Inplace update to inference tensor outside InferenceMode is not allowed"
ERR_REQUIRES_GRAD = "Setting requires_grad=True on inference tensor outside InferenceMode is not allowed"

State = tuple[bool, bool]  # (may run with autograd on, may run outside inference mode)
GRAD_OFF: State = (False, False)
PUBLIC: State = (True, True)


def transfer(state: State, mode: str | None) -> State:
    """The state inside a region opened by `mode` (see ProjectIndex.grad_mode_of)."""
    grad_on, outside = state
    if mode == "no_grad":
        return (False, outside)
    if mode == "inference":
        return (False, False)
    if mode in ("enable_grad", "maybe_grad"):
        return (grad_on or outside, outside)  # enable_grad has no effect inside inference mode
    if mode == "exit_inference":
        return (grad_on, True)
    return state


class GradStates:
    """May-states of every function, with the caller path that shows each one."""

    def __init__(self, index: ProjectIndex, inference_regions: Iterable[FunctionInfo | ast.expr] = ()):
        """`inference_regions`: functions and `with` items that will run under inference mode once rewritten."""
        self.index = index
        regions = list(inference_regions)
        self.overlay = {id(r) for r in regions if isinstance(r, FunctionInfo)}
        self.overlay_items = {id(r) for r in regions if isinstance(r, ast.expr)}
        self._incoming: dict[int, list[bool]] = {}
        self._why: dict[tuple[int, int], CallSite | None] = {}
        self._compute()

    def decorator_mode(self, fn: FunctionInfo) -> str | None:
        return "inference" if id(fn) in self.overlay else fn.grad_decorator

    def _compute(self) -> None:
        index = self.index
        work: list[FunctionInfo] = []
        for fn in index.functions.values():
            incoming = [False, False]
            if not index.callers_of(fn):
                incoming = [True, True]
                self._why[(id(fn), 0)] = None
                self._why[(id(fn), 1)] = None
                work.append(fn)
            self._incoming[id(fn)] = incoming
        while work:
            fn = work.pop()
            entry = self.entry(fn)
            for site in fn.calls:
                if not site.callees:
                    continue
                state = self.at_site(site, entry)
                for callee in site.callees:
                    incoming = self._incoming[id(callee)]
                    changed = False
                    for slot in (0, 1):
                        if state[slot] and not incoming[slot]:
                            incoming[slot] = True
                            self._why[(id(callee), slot)] = site
                            changed = True
                    if changed:
                        work.append(callee)

    def entry(self, fn: FunctionInfo) -> State:
        """The state a function's body starts in (callers' states, then its own decorator)."""
        incoming = self._incoming.get(id(fn), [True, True])
        return transfer((incoming[0], incoming[1]), self.decorator_mode(fn))

    def at_site(self, site: CallSite, entry: State | None = None) -> State:
        state = self.entry(site.caller) if entry is None else entry
        for item, mode in zip(site.items, site.modes):
            state = transfer(state, "inference" if id(item) in self.overlay_items else mode)
        return state

    def item_mode(self, module, item: ast.expr, fn: FunctionInfo) -> str | None:
        if id(item) in self.overlay_items:
            return "inference"
        return self.index.grad_mode_of(module, item, fn)

    def path_to(self, fn: FunctionInfo, slot: int) -> list[str]:
        """Caller chain (outermost first) that makes `fn` run with autograd on (slot 0) / outside inference mode (1)."""
        chain = [fn.short]
        seen = {id(fn)}
        current = fn
        while len(chain) < 8:
            site = self._why.get((id(current), slot))
            if site is None:
                break
            current = site.caller
            if id(current) in seen:
                break
            seen.add(id(current))
            chain.append(current.short)
        return list(reversed(chain))

    def is_root(self, fn: FunctionInfo) -> bool:
        return not self.index.callers_of(fn)


# ---------------------------------------------------------------------------
# Findings


@dataclass
class Hazard:
    kind: str  # "state", "grad", "record", "inplace", "unresolved", "budget"
    fixable: bool
    message: str


@dataclass
class RegionReport:
    hazards: list[Hazard] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.hazards

    @property
    def fixable(self) -> bool:
        return all(h.fixable for h in self.hazards)

    def add(self, hazard: Hazard) -> None:
        if all(h.message != hazard.message for h in self.hazards):
            self.hazards.append(hazard)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass(frozen=True)
class Region:
    """Code that would run under inference mode: a whole function, or one `with` block in it."""

    fn: FunctionInfo
    block: ast.With | None = None  # None: the whole body (decorator / entry point)
    item: int = 0  # which `with` item is the grad-off one

    def contains(self, node: ast.AST) -> bool:
        if self.block is None:
            return True
        first = self.block.body[0]
        last = self.block.body[-1]
        start = (first.lineno, first.col_offset)
        end = (last.end_lineno or last.lineno, last.end_col_offset or 0)
        return start <= (node.lineno, node.col_offset) <= end

    def statements(self) -> list[ast.stmt]:
        return list(self.block.body) if self.block is not None else list(self.fn.node.body)


# ---------------------------------------------------------------------------
# Persistent effects of a region (hazards 1 and 2): never fixable

STATE_METHODS = frozenset({"load_state_dict", "register_buffer", "register_parameter", "register_module",
                           "add_module", "set_"})
PARAM_INPLACE_METHODS = frozenset({"copy_", "fill_", "zero_", "normal_", "uniform_", "data_ptr_"})
MODULE_MOVES = frozenset({"to", "cuda", "cpu", "half", "float", "double", "bfloat16", "to_empty", "type"})
GRAD_ON_CALLS = frozenset({"torch.enable_grad", "torch.autograd.enable_grad", "torch.autograd.grad",
                           "torch.autograd.backward", "torch.autograd.grad_mode.enable_grad"})
LOADERS = frozenset({"torch.load", "torch.hub.load", "torch.hub.load_state_dict_from_url",
                     "safetensors.torch.load_file", "safetensors.torch.load_model"})


class EffectScanner:
    """Finds writes to persistent state and autograd switches in a region and in what it calls."""

    def __init__(self, index: ProjectIndex, where: Callable[[FunctionInfo, int], str]):
        self.index = index
        self.where = where
        self._memo: dict[int, list[Hazard]] = {}

    def scan(self, region: Region) -> list[Hazard]:
        hazards: list[Hazard] = []
        nodes = [n for stmt in region.statements() for n in [stmt, *own_nodes(stmt)]]
        hazards.extend(self._lexical(region.fn, nodes, direct=True))
        seen: set[int] = set()
        for site in region.fn.calls:
            if region.block is not None and not region.contains(site.node):
                continue
            for callee in site.callees:
                for hazard in self._transitive(callee, seen, depth=0):
                    hazards.append(Hazard(hazard.kind, False, f"{hazard.message} (called from {region.fn.short} "
                                                              f"at {self.where(region.fn, site.line)})"))
        unique: dict[str, Hazard] = {}
        for hazard in hazards:
            unique.setdefault(hazard.message, hazard)
        return list(unique.values())

    def _transitive(self, fn: FunctionInfo, seen: set[int], depth: int) -> list[Hazard]:
        if id(fn) in seen or depth > 6:
            return []
        seen.add(id(fn))
        if id(fn) not in self._memo:
            nodes = list(own_nodes(fn.node))
            self._memo[id(fn)] = self._lexical(fn, nodes, direct=False)
        found = list(self._memo[id(fn)])
        for site in fn.calls:
            for callee in site.callees:
                if callee.name == "__init__" and site.constructs:
                    continue  # building an object: its __init__ is checked as module construction
                found.extend(self._transitive(callee, seen, depth + 1))
        return found

    def _lexical(self, fn: FunctionInfo, nodes: list[ast.AST], direct: bool) -> list[Hazard]:
        index = self.index
        out: list[Hazard] = []

        def add(kind: str, node: ast.AST, what: str) -> None:
            out.append(Hazard(kind, False, f"{what} at {self.where(fn, node.lineno)} in {fn.short}"))

        sites = {id(site.node): site for site in fn.calls}
        for node in nodes:
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                            if sub.attr == "data":
                                add("state", node, f"writes parameter data (`{ast.unparse(sub)} = ...`)")
                            elif sub.attr == "requires_grad":
                                add("grad", node, f"sets `{ast.unparse(sub)}`")
                            elif direct is False and _is_module_value(index, fn, node):
                                add("state", node, f"builds a submodule (`{ast.unparse(sub)} = ...`)")
            if not isinstance(node, ast.Call):
                continue
            site = sites.get(id(node))
            func = node.func
            name = site.external if site else None
            method = func.attr if isinstance(func, ast.Attribute) else None
            if name in GRAD_ON_CALLS or (name and name.endswith("set_grad_enabled") and not _is_false(node)):
                add("grad", node, f"turns autograd back on (`{ast.unparse(func)}(...)`)")
            elif method in ("backward", "requires_grad_"):
                add("grad", node, f"calls `{ast.unparse(func)}()`")
            elif name in LOADERS:
                add("state", node, f"loads weights (`{name}`)")
            elif method in STATE_METHODS:
                add("state", node, f"writes module state (`{ast.unparse(func)}(...)`)")
            elif method in PARAM_INPLACE_METHODS and _is_persistent_receiver(func.value, fn):
                add("state", node, f"writes parameter or buffer data in place (`{ast.unparse(func)}(...)`)")
            elif name and name.startswith("torch.nn.init."):
                add("state", node, f"initialises parameters (`{name}`)")
            elif method in MODULE_MOVES and site is not None and _receiver_is_module(index, fn, func.value):
                add("state", node, f"moves or casts a module (`{ast.unparse(func)}(...)`)")
            elif direct and site is not None and _constructs_module(index, site):
                add("state", node, f"builds a module (`{ast.unparse(func)}(...)`)")
        return out


def _is_false(call: ast.Call) -> bool:
    return bool(call.args) and isinstance(call.args[0], ast.Constant) and call.args[0].value is False


def _is_persistent_receiver(expr: ast.expr, fn: FunctionInfo) -> bool:
    """`self.w`, `layer.weight`, `p` from `for p in m.parameters()`: data that outlives the call."""
    if isinstance(expr, ast.Attribute):
        return True
    if isinstance(expr, ast.Subscript):
        return _is_persistent_receiver(expr.value, fn)
    if isinstance(expr, ast.Name):
        for node in own_nodes(fn.node):
            if isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, (ast.Name, ast.Tuple)):
                names = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
                if expr.id in names and isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Attribute):
                    if node.iter.func.attr in ("parameters", "named_parameters", "buffers", "named_buffers"):
                        return True
    return False


def _receiver_is_module(index: ProjectIndex, fn: FunctionInfo, expr: ast.expr) -> bool:
    for t in index.infer(expr, fn):
        if isinstance(t, Instance) and index.is_module(t.cls):
            return True
        if isinstance(t, External) and t.instance and t.name.startswith("torch.nn."):
            return True
        if isinstance(t, Container) and t.module:
            return True
    return False


def _constructs_module(index: ProjectIndex, site: CallSite) -> bool:
    if any(index.is_module(cls) for cls in site.constructs):
        return True
    name = site.external or ""
    return name.startswith("torch.nn.") and name.rpartition(".")[2][:1].isupper() and name not in (
        "torch.nn.Parameter",
    )


def _is_module_value(index: ProjectIndex, fn: FunctionInfo, node: ast.AST) -> bool:
    value = getattr(node, "value", None)
    if not isinstance(value, ast.Call):
        return False
    return any(
        (isinstance(t, Instance) and index.is_module(t.cls))
        or (isinstance(t, External) and t.instance and t.name.startswith("torch.nn."))
        for t in index.infer(value, fn)
    )


# ---------------------------------------------------------------------------
# Value flow (hazards 3 and 4)

# Tensor methods whose result may share storage with (or be) the receiver:
# the result of such a call on an inference tensor is still one.
VIEW_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "transpose", "permute", "squeeze", "unsqueeze", "t", "expand",
    "expand_as", "narrow", "select", "unfold", "split", "chunk", "unbind", "tensor_split", "movedim", "moveaxis",
    "swapaxes", "swapdims", "flatten", "unflatten", "detach", "to", "type", "float", "double", "half", "long",
    "int", "bool", "bfloat16", "short", "byte", "char", "cpu", "cuda", "contiguous", "as_strided", "diagonal",
    "split_with_sizes", "hsplit", "vsplit", "dsplit", "type_as", "get", "values", "items", "keys", "pop", "copy",
})
VIEW_ATTRS = frozenset({"T", "mT", "H", "mH", "real", "imag", "data"})
NON_TENSOR_ATTRS = frozenset({"shape", "device", "dtype", "ndim", "is_cuda", "requires_grad", "grad_fn", "layout",
                              "is_leaf", "names"})
NON_TENSOR_METHODS = frozenset({"size", "dim", "numel", "item", "tolist", "numpy", "stride", "data_ptr",
                                "is_contiguous", "element_size", "nelement", "storage_offset", "is_inference",
                                "get_device", "__len__", "dim_order"})
VIEW_FUNCTIONS = frozenset(
    f"torch.{n}" for n in (
        "atleast_1d", "atleast_2d", "atleast_3d", "squeeze", "unsqueeze", "transpose", "permute", "reshape",
        "flatten", "narrow", "select", "chunk", "split", "unbind", "movedim", "moveaxis", "swapaxes", "swapdims",
        "t", "view_as_real", "view_as_complex", "detach", "as_strided", "diagonal", "broadcast_to",
        "tensor_split", "hsplit", "vsplit", "dsplit", "broadcast_tensors", "unflatten",
    )
)
# Ops that keep an input for backward when the other operand requires grad.
SAVING_BINOPS = (ast.Mult, ast.Div, ast.MatMult, ast.Pow, ast.FloorDiv, ast.Mod)
PARAMETER_FUNCTIONS = frozenset({
    "torch.nn.functional.linear", "torch.nn.functional.conv1d", "torch.nn.functional.conv2d",
    "torch.nn.functional.conv3d", "torch.nn.functional.conv_transpose1d", "torch.nn.functional.conv_transpose2d",
    "torch.nn.functional.conv_transpose3d", "torch.nn.functional.embedding", "torch.nn.functional.layer_norm",
    "torch.nn.functional.group_norm", "torch.nn.functional.batch_norm", "torch.matmul", "torch.mm", "torch.bmm",
    "torch.einsum", "torch.mul", "torch.addmm", "torch.baddbmm", "torch.nn.functional.bilinear",
})
CONTAINER_STORE_METHODS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "appendleft"})
CONTAINER_BUILDERS = frozenset({"dict", "list", "tuple", "set", "zip", "enumerate", "reversed", "sorted", "iter",
                                "next", "map", "filter"})
NON_TENSOR_BUILTINS = frozenset({"len", "isinstance", "print", "int", "float", "str", "bool", "repr", "hash", "id",
                                 "type", "hasattr", "getattr", "callable", "format", "issubclass", "range", "round",
                                 "abs", "min", "max", "sum", "any", "all", "setattr", "delattr", "vars", "dir"})


@dataclass(frozen=True)
class Taint:
    """A value that is (or holds, or views) an inference tensor made in the region."""

    container: bool = False
    parts: tuple | None = None  # per-position taint of a literal tuple (None entries are clean)
    origin: str = ""  # how it got here, for the reason

    def part(self, i: int) -> "Taint | None":
        if self.parts is None:
            return self
        return self.parts[i] if i < len(self.parts) else None


def _merge(a: Taint | None, b: Taint | None) -> Taint | None:
    if a is None:
        return b
    if b is None:
        return a
    if a.parts is not None and b.parts is not None and len(a.parts) == len(b.parts):
        return Taint(parts=tuple(_merge(x, y) for x, y in zip(a.parts, b.parts)), origin=a.origin)
    return Taint(container=a.container or b.container, origin=a.origin or b.origin)


class _Budget(Exception):
    pass


@dataclass
class _Frame:
    fn: FunctionInfo
    state: State
    params: dict[str, Taint]
    calls: dict[int, Taint]  # id(ast.Call) -> taint of its result
    region: Region | None
    path: tuple[str, ...]  # how the taint got into this function, for reasons


class FlowAnalyzer:
    """Follows the tensors a region makes, across the project, to their first hazardous use."""

    MAX_FRAMES = 4000

    def __init__(self, index: ProjectIndex, states: GradStates, where: Callable[[FunctionInfo, int], str]):
        self.index = index
        self.states = states
        self.where = where

    def analyze(self, region: Region) -> RegionReport:
        report = RegionReport()
        for hazard in EffectScanner(self.index, self.where).scan(region):
            report.add(hazard)
        self._report = report
        self._frames = 0
        self._memo: dict[tuple, Taint | None] = {}
        self._attr_taint: dict[tuple[int, str], Taint] = {}
        self._global_taint: dict[tuple[int, str], Taint] = {}
        self._pending: list[_Frame] = []
        self._attr_readers_done: set[tuple] = set()
        self._returned_to_callers: set[tuple] = set()
        self._region = region
        fn = region.fn
        origin = f"made under inference mode in {fn.short}"
        start = _Frame(fn=fn, state=self.states.entry(fn), params={}, calls={}, region=region, path=(fn.short,))
        try:
            self._run(start, origin, from_region=True)
            while self._pending:
                frame = self._pending.pop(0)
                self._run(frame, frame.path[-1], from_region=False)
        except _Budget:
            report.add(Hazard("budget", True, "the value flow is too large to follow completely "
                                              f"(over {self.MAX_FRAMES} function visits); not converted"))
        return report

    # -- frames --------------------------------------------------------------

    def _run(self, frame: _Frame, origin: str, from_region: bool) -> Taint | None:
        key = (id(frame.fn), frame.state, tuple(sorted(frame.params)), tuple(sorted(frame.calls)),
               frame.region is not None)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None
        self._frames += 1
        if self._frames > self.MAX_FRAMES:
            raise _Budget()
        walker = _Walker(self, frame, origin)
        result = walker.walk()
        self._memo[key] = result
        if result is not None and (not frame.params or frame.calls or frame.region is not None):
            self._return_to_callers(frame.fn, result, frame.path)
        return result

    def _return_to_callers(self, fn: FunctionInfo, taint: Taint, path: tuple[str, ...]) -> None:
        key = (id(fn), taint.parts is not None)
        if key in self._returned_to_callers:
            return
        self._returned_to_callers.add(key)
        callers = self.index.callers_of(fn)
        if not callers:
            self._report.note(f"{fn.short} hands inference tensors to callers outside the project")
            if fn.name in ("forward", "__call__") and self.states.entry(fn)[0]:
                self._report.add(Hazard(
                    "record", True,
                    f"they become the output of {fn.short}, a module's forward that callers outside the project "
                    f"may run with autograd on (a training step would fail with `{ERR_SAVED}` or get no "
                    f"gradient)"))
            return
        for site in callers:
            if self._region.block is None and site.caller is fn:
                continue
            state = self.states.at_site(site)
            caller_state = self.states.entry(site.caller)
            self._pending.append(_Frame(
                fn=site.caller, state=caller_state, params={}, calls={id(site.node): taint}, region=None,
                path=(*path, f"returned by {fn.short} to {site.caller.short} ({self.where(site.caller, site.line)})"),
            ))
            del state

    def call_into(self, frame: _Frame, callee: FunctionInfo, params: dict[str, Taint], state: State,
                  site_line: int) -> Taint | None:
        state = transfer(state, self.states.decorator_mode(callee))
        path = (*frame.path, f"passed to {callee.short} ({self.where(frame.fn, site_line)})")
        return self._run(_Frame(fn=callee, state=state, params=params, calls={}, region=None, path=path),
                         path[-1], from_region=False)

    def tainted_attr(self, cls: ClassInfo, attr: str) -> Taint | None:
        for owner in cls.mro():
            found = self._attr_taint.get((id(owner), attr))
            if found is not None:
                return found
        return None

    def store_attr(self, classes: Iterable[ClassInfo], attr: str, taint: Taint, frame: _Frame, line: int) -> None:
        for cls in classes:
            key = (id(cls), attr)
            if key in self._attr_taint:
                continue
            self._attr_taint[key] = Taint(container=taint.container,
                                          origin=f"stored on `{cls.name}.{attr}` ({self.where(frame.fn, line)})")
            self._schedule_attr_readers(cls, attr, frame)

    def _schedule_attr_readers(self, cls: ClassInfo, attr: str, frame: _Frame) -> None:
        """Every function that reads `<instance of cls>.<attr>` sees the stored tensors."""
        related = {id(c) for c in [cls, *cls.all_subclasses()]}
        for fn in self.index.functions.values():
            if fn is frame.fn and frame.region is not None:
                continue
            if not any(isinstance(n, ast.Attribute) and n.attr == attr and isinstance(n.ctx, ast.Load)
                       for n in own_nodes(fn.node)):
                continue
            reads = False
            for node in own_nodes(fn.node):
                if isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.ctx, ast.Load):
                    if any(isinstance(t, Instance) and id(t.cls) in related for t in self.index.infer(node.value, fn)):
                        reads = True
                        break
            if reads:
                self._pending.append(_Frame(
                    fn=fn, state=self.states.entry(fn), params={}, calls={}, region=None,
                    path=(*frame.path, f"stored on `{cls.name}.{attr}` and read by {fn.short}"),
                ))

    def store_global(self, module_key: tuple[int, str], taint: Taint, frame: _Frame, name: str) -> None:
        if module_key in self._global_taint:
            return
        self._global_taint[module_key] = taint
        module = frame.fn.module
        for fn in self.index.functions_of(module):
            if fn is frame.fn:
                continue
            if any(isinstance(n, ast.Name) and n.id == name for n in own_nodes(fn.node)):
                self._pending.append(_Frame(
                    fn=fn, state=self.states.entry(fn), params={}, calls={}, region=None,
                    path=(*frame.path, f"kept in the module-level `{name}` and read by {fn.short}"),
                ))

    def tainted_global(self, module_key: tuple[int, str]) -> Taint | None:
        return self._global_taint.get(module_key)

    def hazard(self, kind: str, frame: _Frame, node: ast.AST, use: str, state_slot: int, error: str) -> None:
        fn = frame.fn
        context = "runs with autograd on" if state_slot == 0 else "runs outside inference mode"
        self._report.add(Hazard(
            kind, True,
            f"{self._flow(frame)} reach {use} at {self.where(fn, node.lineno)} in {fn.short}, which {context} "
            f"{self._via(fn, state_slot)}; converted, that raises `{error}`",
        ))

    def _flow(self, frame: _Frame) -> str:
        steps = frame.path[1:]
        return "tensors made in the region" + (f" ({'; '.join(steps)})" if steps else "")

    def _via(self, fn: FunctionInfo, slot: int) -> str:
        """`when called through A -> B (A has no caller in the project, ...)`."""
        chain = self.states.path_to(fn, slot)
        text = f"when called through {' -> '.join(chain)}" if len(chain) > 1 else ""
        root = next((f for f in self.index.functions.values() if f.short == chain[0] and self.states.is_root(f)),
                    None)
        if root is not None:
            assumed = "run with autograd on" if slot == 0 else "run outside inference mode"
            text += f"{' (' if text else '('}{chain[0]} has no caller in the project, so it is assumed to {assumed})"
        return text

    def note_unresolved(self, frame: _Frame, node: ast.Call) -> None:
        fn = frame.fn
        self._report.add(Hazard(
            "unresolved", True,
            f"{self._flow(frame)} are passed to `{ast.unparse(node.func)}(...)` at {self.where(fn, node.lineno)} "
            f"in {fn.short}, a call the analysis cannot resolve, which runs with autograd on "
            f"{self._via(fn, 0)}; check that call by hand",
        ))


class _Walker:
    """Walks one function body for one frame, tracking which local names hold region tensors."""

    def __init__(self, analyzer: FlowAnalyzer, frame: _Frame, origin: str):
        self.a = analyzer
        self.index = analyzer.index
        self.frame = frame
        self.fn = frame.fn
        self.origin = origin
        self.names: dict[str, Taint] = dict(frame.params)
        self.returned: Taint | None = None
        self.sites = {id(site.node): site for site in self.fn.calls}
        self.globals = _global_names(self.fn)

    def walk(self) -> Taint | None:
        # Twice, so that values flowing around a loop reach their uses.
        for _ in range(2):
            self._block(self.fn.node.body, self.frame.state, in_region=self.frame.region is not None
                        and self.frame.region.block is None)
        return self.returned

    # -- statements ------------------------------------------------------------

    def _block(self, body: list[ast.stmt], state: State, in_region: bool) -> None:
        for stmt in body:
            self._stmt(stmt, state, in_region)

    def _stmt(self, stmt: ast.stmt, state: State, in_region: bool) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            inner = state
            opens_region = False
            region = self.frame.region
            for position, item in enumerate(stmt.items):
                self._expr(item.context_expr, state, in_region)
                mode = self.a.states.item_mode(self.fn.module, item.context_expr, self.fn)
                if region is not None and region.block is stmt and position == region.item:
                    opens_region = True
                    mode = "inference"
                inner = _apply(inner, mode)
                if item.optional_vars is not None and in_region:
                    self._bind(item.optional_vars, Taint(origin=self.origin), inner, in_region, stmt)
            self._block(stmt.body, inner, in_region or opens_region)
            return
        if isinstance(stmt, ast.Assign):
            value = self._expr(stmt.value, state, in_region)
            if in_region:
                value = value or Taint(origin=self.origin)
            for target in stmt.targets:
                self._store(target, value, state, in_region, stmt)
            return
        if isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                value = self._expr(stmt.value, state, in_region)
                if in_region:
                    value = value or Taint(origin=self.origin)
                self._store(stmt.target, value, state, in_region, stmt)
            return
        if isinstance(stmt, ast.AugAssign):
            target_taint = self._expr(_as_load(stmt.target), state, in_region)
            value = self._expr(stmt.value, state, in_region)
            if not in_region and target_taint is not None and not target_taint.container and state[1]:
                self.a.hazard("inplace", self.frame, stmt, f"the in-place update `{_short(stmt)}`", 1, ERR_INPLACE)
            if not in_region and isinstance(stmt.op, SAVING_BINOPS) and state[0]:
                if value is not None and self._is_parameter(stmt.target):
                    self.a.hazard("record", self.frame, stmt, f"`{_short(stmt)}` with a parameter", 0, ERR_SAVED)
            if in_region:
                self._store(stmt.target, Taint(origin=self.origin), state, in_region, stmt, augmented=True)
            elif value is not None and isinstance(stmt.target, ast.Name) and stmt.target.id not in self.names:
                pass  # a normal tensor updated with an inference one stays normal
            return
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                value = self._expr(stmt.value, state, in_region)
                if in_region:
                    value = self._region_value(stmt.value, value)
                if value is not None:
                    self.returned = _merge(self.returned, value)
            return
        if isinstance(stmt, ast.Expr):
            value = self._expr(stmt.value, state, in_region)
            if isinstance(stmt.value, (ast.Yield, ast.YieldFrom)) and value is not None:
                self.returned = _merge(self.returned, value)
            return
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            iterated = self._expr(stmt.iter, state, in_region)
            if iterated is not None or in_region:
                self._bind(stmt.target, Taint(origin=self.origin) if in_region else
                           Taint(container=False, origin=iterated.origin), state, in_region, stmt)
            self._block(stmt.body, state, in_region)
            self._block(stmt.orelse, state, in_region)
            return
        if isinstance(stmt, ast.While):
            self._expr(stmt.test, state, in_region)
            self._block(stmt.body, state, in_region)
            self._block(stmt.orelse, state, in_region)
            return
        if isinstance(stmt, ast.If):
            self._expr(stmt.test, state, in_region)
            self._block(stmt.body, state, in_region)
            self._block(stmt.orelse, state, in_region)
            return
        if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            self._block(stmt.body, state, in_region)
            for handler in stmt.handlers:
                self._block(handler.body, state, in_region)
            self._block(stmt.orelse, state, in_region)
            self._block(stmt.finalbody, state, in_region)
            return
        if isinstance(stmt, ast.Match):
            self._expr(stmt.subject, state, in_region)
            for case in stmt.cases:
                self._block(case.body, state, in_region)
            return
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.expr):
                self._expr(child, state, in_region)

    def _region_value(self, expr: ast.expr, value: Taint | None) -> Taint:
        """Everything a region returns is made under inference mode; keep tuple structure for unpacking."""
        if isinstance(expr, ast.Tuple):
            return Taint(parts=tuple(Taint(origin=self.origin) for _ in expr.elts), origin=self.origin)
        if value is not None:
            return value
        return Taint(container=isinstance(expr, (ast.Dict, ast.List)), origin=self.origin)

    def _bind(self, target: ast.expr, value: Taint | None, state: State, in_region: bool, stmt: ast.stmt) -> None:
        self._store(target, value, state, in_region, stmt)

    def _store(self, target: ast.expr, value: Taint | None, state: State, in_region: bool, stmt: ast.stmt,
               augmented: bool = False) -> None:
        if isinstance(target, ast.Name):
            if value is not None:
                self.names[target.id] = value
                if target.id in self.globals:
                    self.a.store_global((id(self.fn.module), target.id), value, self.frame, target.id)
            elif not in_region and target.id in self.names and self.frame.region is not None and \
                    self.frame.region.block is not None:
                pass  # keep: flow-insensitive, a later clean assignment does not clear it
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            for position, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    element = element.value
                self._store(element, value.part(position) if value is not None else None, state, in_region, stmt)
            return
        if isinstance(target, ast.Starred):
            self._store(target.value, value, state, in_region, stmt)
            return
        if isinstance(target, ast.Subscript):
            container = self._expr(target.value, state, in_region)
            self._expr(target.slice, state, in_region)
            if container is not None and not container.container and not in_region and state[1]:
                self.a.hazard("inplace", self.frame, stmt, f"the in-place update `{_short(stmt)}`", 1, ERR_INPLACE)
            if value is not None:
                self._store_into(target.value, value, state, in_region, stmt)
            return
        if isinstance(target, ast.Attribute):
            owner = self._expr(target.value, state, in_region)
            if target.attr == "requires_grad" and owner is not None and not in_region and state[1]:
                self.a.hazard("inplace", self.frame, stmt, f"`{_short(stmt)}`", 1, ERR_REQUIRES_GRAD)
            if value is not None:
                self._store_attribute(target, value, stmt)
            return

    def _store_into(self, container: ast.expr, value: Taint, state: State, in_region: bool, stmt: ast.stmt) -> None:
        """`c[k] = v`, `c.append(v)`: the container now holds region tensors."""
        held = Taint(container=True, origin=value.origin)
        if isinstance(container, ast.Name):
            self.names[container.id] = _merge(self.names.get(container.id), held)
            module_level = container.id in self.globals or (
                container.id not in self.index.local_types(self.fn) and container.id in self.fn.module.assigns
                and not any(arg.arg == container.id for arg in self.fn.params())
            )
            if module_level:
                self.a.store_global((id(self.fn.module), container.id), held, self.frame, container.id)
        elif isinstance(container, ast.Attribute):
            self._store_attribute(container, held, stmt)
        elif isinstance(container, ast.Subscript):
            self._store_into(container.value, value, state, in_region, stmt)

    def _store_attribute(self, target: ast.Attribute, value: Taint, stmt: ast.stmt) -> None:
        classes = [t.cls for t in self.index.infer(target.value, self.fn) if isinstance(t, Instance)]
        if classes:
            self.a.store_attr(classes, target.attr, value, self.frame, stmt.lineno)
        elif isinstance(target.value, ast.Name):
            self.names[target.value.id] = _merge(self.names.get(target.value.id), Taint(container=True,
                                                                                          origin=value.origin))
        elif isinstance(target.value, ast.Attribute):
            self._store_attribute(target.value, Taint(container=True, origin=value.origin), stmt)

    # -- expressions -----------------------------------------------------------

    def _expr(self, expr: ast.expr | None, state: State, in_region: bool) -> Taint | None:
        if expr is None:
            return None
        if isinstance(expr, ast.Name):
            if expr.id in self.names:
                return self.names[expr.id]
            if expr.id in self.fn.module.assigns or expr.id in self.globals:
                return self.a.tainted_global((id(self.fn.module), expr.id))
            return None
        if isinstance(expr, ast.Attribute):
            base = self._expr(expr.value, state, in_region)
            if expr.attr in NON_TENSOR_ATTRS:
                return None
            if base is not None:
                return base if not base.parts else Taint(container=True, origin=base.origin)
            for t in self.index.infer(expr.value, self.fn):
                if isinstance(t, Instance):
                    found = self.a.tainted_attr(t.cls, expr.attr)
                    if found is not None:
                        return found
            return None
        if isinstance(expr, ast.Subscript):
            base = self._expr(expr.value, state, in_region)
            self._expr(expr.slice, state, in_region)
            if base is None:
                return None
            if base.parts is not None and isinstance(expr.slice, ast.Constant) and isinstance(expr.slice.value, int):
                return base.part(expr.slice.value)
            return Taint(container=False, origin=base.origin) if not base.container else base
        if isinstance(expr, ast.Call):
            return self._call(expr, state, in_region)
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            parts = [self._expr(e.value if isinstance(e, ast.Starred) else e, state, in_region) for e in expr.elts]
            if not any(parts):
                return None
            origin = next(p.origin for p in parts if p)
            if isinstance(expr, ast.Tuple) and not any(isinstance(e, ast.Starred) for e in expr.elts):
                return Taint(parts=tuple(parts), origin=origin)
            return Taint(container=True, origin=origin)
        if isinstance(expr, ast.Dict):
            parts = [self._expr(v, state, in_region) for v in expr.values]
            for k in expr.keys:
                self._expr(k, state, in_region)
            found = [p for p in parts if p]
            return Taint(container=True, origin=found[0].origin) if found else None
        if isinstance(expr, ast.BinOp):
            left = self._expr(expr.left, state, in_region)
            right = self._expr(expr.right, state, in_region)
            if not in_region and state[0] and isinstance(expr.op, SAVING_BINOPS):
                if (left is not None and not left.container and self._is_parameter(expr.right)) or (
                        right is not None and not right.container and self._is_parameter(expr.left)):
                    self.a.hazard("record", self.frame, expr, f"`{_short(expr)}` with a parameter", 0, ERR_SAVED)
            return None  # a computing op outside the mode makes a normal tensor
        if isinstance(expr, ast.UnaryOp):
            self._expr(expr.operand, state, in_region)
            return None
        if isinstance(expr, (ast.BoolOp,)):
            results = [self._expr(v, state, in_region) for v in expr.values]
            out = None
            for r in results:
                out = _merge(out, r)
            return out
        if isinstance(expr, ast.IfExp):
            self._expr(expr.test, state, in_region)
            return _merge(self._expr(expr.body, state, in_region), self._expr(expr.orelse, state, in_region))
        if isinstance(expr, ast.Compare):
            self._expr(expr.left, state, in_region)
            for c in expr.comparators:
                self._expr(c, state, in_region)
            return None
        if isinstance(expr, ast.NamedExpr):
            value = self._expr(expr.value, state, in_region)
            if in_region:
                value = value or Taint(origin=self.origin)
            if value is not None:
                self.names[expr.target.id] = value
            return value
        if isinstance(expr, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for generator in expr.generators:
                iterated = self._expr(generator.iter, state, in_region)
                if iterated is not None:
                    for name in ast.walk(generator.target):
                        if isinstance(name, ast.Name):
                            self.names[name.id] = Taint(origin=iterated.origin)
            elt = expr.value if isinstance(expr, ast.DictComp) else expr.elt
            inner = self._expr(elt, state, in_region)
            return Taint(container=True, origin=inner.origin) if inner is not None else None
        if isinstance(expr, (ast.Yield, ast.YieldFrom, ast.Await)):
            return self._expr(expr.value, state, in_region)
        if isinstance(expr, ast.Starred):
            return self._expr(expr.value, state, in_region)
        if isinstance(expr, ast.JoinedStr):
            for v in expr.values:
                self._expr(v, state, in_region)
            return None
        if isinstance(expr, ast.FormattedValue):
            self._expr(expr.value, state, in_region)
            return None
        return None

    def _call(self, call: ast.Call, state: State, in_region: bool) -> Taint | None:
        site = self.sites.get(id(call))
        func = call.func
        receiver = self._expr(func.value, state, in_region) if isinstance(func, ast.Attribute) else None
        if not isinstance(func, ast.Attribute):
            callee_value = self._expr(func, state, in_region) if not isinstance(func, ast.Name) else None
            del callee_value
        args = [self._expr(a.value if isinstance(a, ast.Starred) else a, state, in_region) for a in call.args]
        kwargs = {kw.arg: self._expr(kw.value, state, in_region) for kw in call.keywords}
        seeded = self.frame.calls.get(id(call))
        if seeded is not None:
            return seeded
        tainted_args = any(args) or any(kwargs.values())
        method = func.attr if isinstance(func, ast.Attribute) else None
        in_place = method is not None and method.endswith("_") and not method.endswith("__")

        # Methods called on a region tensor (or container of them).
        if receiver is not None and (site is None or not site.callees):
            if in_place and not in_region and state[1] and not receiver.container:
                if method == "requires_grad_":
                    self.a.hazard("inplace", self.frame, call, f"`{_short(call)}`", 1, ERR_REQUIRES_GRAD)
                else:
                    self.a.hazard("inplace", self.frame, call, f"the in-place `{_short(call)}`", 1, ERR_INPLACE)
            if method in CONTAINER_STORE_METHODS:
                value = next((a for a in args if a), None) or next((v for v in kwargs.values() if v), None)
                if value is not None:
                    self._store_into(func.value, value, state, in_region, call)  # type: ignore[arg-type]
                return None
            if method in NON_TENSOR_METHODS:
                return None
            if method in VIEW_METHODS or in_place:
                return Taint(container=receiver.container and method in ("get", "values", "items", "pop", "copy",
                                                                         "keys"), origin=receiver.origin) \
                    if method not in ("get", "pop") else Taint(origin=receiver.origin)
            if in_region:
                return Taint(origin=self.origin)
            return None

        if method in CONTAINER_STORE_METHODS and site is not None and not site.callees and tainted_args:
            value = next((a for a in args if a), None) or next((v for v in kwargs.values() if v), None)
            self._store_into(func.value, value, state, in_region, call)  # type: ignore[arg-type]
            return None

        if site is None:
            return Taint(origin=self.origin) if in_region else None

        # Calls that record autograd: a module with parameters, or an op with a parameter operand.
        if not in_region and tainted_args:
            recording = [t for t in site.module_types if self.index.has_parameters(t) and not (
                isinstance(t, Instance) and t.cls.lookup("forward") is not None)]
            if recording and state[0]:
                what = _describe_module(recording[0])
                self.a.hazard("record", self.frame, call, f"`{_short(call)}` ({what}, a module with parameters)",
                              0, ERR_SAVED)
            if site.external in PARAMETER_FUNCTIONS and state[0] and any(
                    self._is_parameter(a) for a in [*call.args, *(kw.value for kw in call.keywords)]):
                self.a.hazard("record", self.frame, call, f"`{_short(call)}` with a parameter operand", 0, ERR_SAVED)

        # Project functions and methods: follow the tensors into them.
        result: Taint | None = None
        if site.callees and (tainted_args or receiver is not None):
            call_state = state
            for callee in site.callees:
                if callee.name == "__init__" and site.constructs:
                    continue
                params = _map_arguments(callee, call, args, kwargs, receiver, site)
                if not params:
                    continue
                if callee.is_async or callee.is_jit:
                    continue
                returned = self.a.call_into(self.frame, callee, params, call_state, call.lineno)
                result = _merge(result, returned)
        if site.constructs and (tainted_args or receiver is not None):
            origin = next((a.origin for a in [*args, *kwargs.values()] if a), self.origin)
            result = _merge(result, Taint(container=True, origin=origin))

        if in_region:
            # Everything computed under the mode is an inference tensor.
            if site.external and site.external.startswith("torch.") or site.callees or site.module_types:
                return result or Taint(origin=self.origin)
            return result or (Taint(origin=self.origin) if tainted_args else None)

        if site.external is not None:
            name = site.external
            if name in VIEW_FUNCTIONS and tainted_args:
                origin = next(a.origin for a in [*args, *kwargs.values()] if a)
                return Taint(origin=origin)
            if name.rpartition(".")[2] in CONTAINER_BUILDERS or (
                    name in ("builtins.dict", "builtins.list", "builtins.tuple")):
                return _first_container(args, kwargs)
            return None
        if isinstance(func, ast.Name) and func.id in CONTAINER_BUILDERS:
            return _first_container(args, kwargs)
        if isinstance(func, ast.Name) and func.id in NON_TENSOR_BUILTINS:
            return None
        if site.unresolved and tainted_args and state[0]:
            self.a.note_unresolved(self.frame, call)
        return result

    def _is_parameter(self, expr: ast.expr) -> bool:
        """`self.w` where `w` is an `nn.Parameter` of the class, or `<module>.weight`/`.bias`."""
        if not isinstance(expr, ast.Attribute):
            return False
        for t in self.index.infer(expr.value, self.fn):
            if isinstance(t, Instance) and expr.attr in self.index.parameter_attrs(t.cls):
                return True
            if expr.attr in ("weight", "bias") and (
                    (isinstance(t, External) and t.instance) or (isinstance(t, Instance) and self.index.is_module(t.cls))):
                return True
        return False


def _apply(state: State, mode: str | None) -> State:
    return transfer(state, mode)


def _global_names(fn: FunctionInfo) -> set[str]:
    names: set[str] = set()
    for node in own_nodes(fn.node):
        if isinstance(node, ast.Global):
            names.update(node.names)
    return names


def _as_load(target: ast.expr) -> ast.expr:
    return target


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        head = ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target)
        op = "=" if isinstance(node, ast.Assign) else _AUG.get(type(node.op), "?=")
        return f"{head} {op} ..."
    if isinstance(node, ast.Call):
        return f"{ast.unparse(node.func)}(...)"
    return text if len(text) <= 60 else text[:57] + "..."


_AUG = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.MatMult: "@=", ast.Pow: "**=",
        ast.Mod: "%=", ast.FloorDiv: "//=", ast.BitAnd: "&=", ast.BitOr: "|=", ast.BitXor: "^=",
        ast.LShift: "<<=", ast.RShift: ">>="}


def _describe_module(t) -> str:
    if isinstance(t, Instance):
        return t.cls.name
    if isinstance(t, External):
        return t.name
    if isinstance(t, Container):
        return t.module or "container"
    return "module"


def _first_container(args: list, kwargs: dict) -> Taint | None:
    for value in [*args, *kwargs.values()]:
        if value is not None:
            return Taint(container=True, origin=value.origin)
    return None


def _map_arguments(callee: FunctionInfo, call: ast.Call, args: list, kwargs: dict, receiver: Taint | None,
                   site: CallSite) -> dict[str, Taint]:
    """Which of the callee's parameters receive region tensors."""
    params: dict[str, Taint] = {}
    node = callee.node.args
    positional = [a.arg for a in [*node.posonlyargs, *node.args]]
    bound_receiver = callee.receiver is not None and (
        isinstance(call.func, ast.Attribute) or site.module_types or callee.name in ("forward", "__call__")
    )
    if bound_receiver and positional:
        if receiver is not None:
            params[positional[0]] = receiver
        positional = positional[1:]
    starred = False
    for position, (expr, taint) in enumerate(zip(call.args, args)):
        if isinstance(expr, ast.Starred):
            starred = True
            if taint is not None:
                for name in positional[position:]:
                    params[name] = Taint(origin=taint.origin)
                if node.vararg:
                    params[node.vararg.arg] = Taint(container=True, origin=taint.origin)
            continue
        if taint is None or starred:
            continue
        if position < len(positional):
            params[positional[position]] = taint
        elif node.vararg:
            params[node.vararg.arg] = Taint(container=True, origin=taint.origin)
    names = {a.arg for a in [*node.posonlyargs, *node.args, *node.kwonlyargs]}
    for kw in call.keywords:
        taint = kwargs.get(kw.arg)
        if taint is None:
            continue
        if kw.arg is None:  # **mapping: every keyword parameter may receive one
            for name in names:
                if name != callee.receiver:
                    params[name] = Taint(origin=taint.origin)
            if node.kwarg:
                params[node.kwarg.arg] = Taint(container=True, origin=taint.origin)
        elif kw.arg in names:
            params[kw.arg] = taint
        elif node.kwarg:
            params[node.kwarg.arg] = Taint(container=True, origin=taint.origin)
    return params


def make_where(display: Callable[[Path], str]) -> Callable[[FunctionInfo, int], str]:
    """A `file:line` formatter for reasons, with paths as the report shows them."""

    def where(fn: FunctionInfo, line: int) -> str:
        return f"{display(fn.module.path)}:{line}"

    return where
