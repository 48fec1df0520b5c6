"""What a region does to persistent state: hazards that no fix can make safe.

Putting new tensors into a module (rebinding `.data`, building modules or
parameters, registering buffers, `load_state_dict(assign=True)`, loading or
moving weights) or switching autograd back on, in the region or in what it
calls. Under inference mode these make parameters that silently stop
training, buffers that raise on their next update, or do nothing at all.
A `with` region that yields hands its mode to the code iterating the
generator: that is a hazard of its own. So is library code the region runs
(or a call of a value of unknown type, which may be library code), which may
keep a tensor it makes there: the analysis cannot see into it, so that hazard
is one to check by hand (fixable), named after what the flow finds.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator

from .graphs import strongly_connected
from .implicit import Use, describe
from .index import BUILTIN_NAMES, MAX_UNSEEN_FUNCTIONS, ProjectIndex, enclosing_class, literal_arg
from .project import CallSite, Container, External, FunctionInfo, Instance
from .regions import Hazard, HazardKind, Region
from .torchapi import (
    GRAD_ON_CALLS,
    KEEPS_NO_TENSORS_METHODS,
    KEEPS_NO_TENSORS_PREFIXES,
    LOADERS,
    MODULE_ACCESSORS,
    MODULE_MOVES,
    SET_GRAD_ENABLED,
    STATE_METHODS,
)


class EffectScanner:
    """Finds writes to persistent state, autograd switches and library code that may keep what it makes, in a
    region and in what it calls."""

    def __init__(self, index: ProjectIndex, where: Callable[[FunctionInfo, int], str],
                 stateless_libraries: tuple[str, ...] = ()):
        self.index = index
        self.where = where
        # Library code known, or declared by the user (`stateless-libraries`), to keep no tensor it makes.
        self._stateless = (*KEEPS_NO_TENSORS_PREFIXES, *(f"{name}." for name in stateless_libraries))
        self._memo: dict[int, list[Hazard]] = {}  # id(function) -> its own hazards
        self._bits: dict[int, int] = {}  # id(function or group) -> `_reach`
        self._hazardous: list[FunctionInfo] = []  # the functions with hazards of their own, by bit
        self._settling = 0  # the bits of those with a hazard no fix can make safe

    def scan(self, region: Region) -> list[Hazard]:
        """The region's hazards: its own, in order, else the first of what it runs (see `_run_from`).

        Every hazard this scan finds but a yield and library code is one no fix can make safe, so the first
        one settles the verdict: the region is unsafe and never rewritten, and its reason names that hazard.
        The rest of what the region runs could only add more of the same and is not scanned: on transformers'
        pre-commit case that was half of the run, counting 27,804 hazards. What the region runs is searched
        for such a hazard past library code, whose hazard is reported (the first, in the order the region
        runs it) only when none settles the verdict.
        """
        hazards: list[Hazard] = []
        # The function's nodes include lambda bodies, so a `with` region and a decorated body see the same.
        nodes = region.fn.nodes if region.block is None else [
            n for n in region.fn.nodes if hasattr(n, "lineno") and region.contains(n)]
        hazards.extend(self._lexical(region.fn, nodes, direct=True))
        if region.block is not None:
            # A grad-mode decorator re-enters its mode around each step of a generator; a `with` block stays
            # entered while the generator is suspended at a `yield` in it.
            for node in nodes:
                if isinstance(node, (ast.Yield, ast.YieldFrom)):
                    hazards.append(Hazard(
                        HazardKind.UNRESOLVED, True,
                        f"it yields at {self.where(region.fn, node.lineno)}: while {region.fn.short} is suspended "
                        "there, the code iterating it runs in the region's mode, and once converted the tensors it "
                        "makes are inference tensors; check that code by hand", "yield"))
                    break
        if all(hazard.fixable for hazard in hazards):
            first_fixable = None
            for target, how in self._run_from(region):
                found = self._reach(target)
                if found & self._settling:
                    hazards.extend(self._reached(found & self._settling, how))
                    break
                if found and first_fixable is None:
                    first_fixable = (found, how)
            else:
                if first_fixable is not None:
                    hazards.extend(self._reached(*first_fixable))
        unique: dict[str, Hazard] = {}
        for hazard in hazards:
            unique.setdefault(hazard.message, hazard)
        return list(unique.values())

    def _run_from(self, region: Region) -> Iterator[tuple[FunctionInfo | tuple, Callable[[], str]]]:
        """What the region runs, in order: what its calls may run, then what Python runs in it where the code
        does not name it (`ProjectIndex.implicit_calls`); each with how a reason says it is reached."""
        fn = region.fn
        for site in fn.calls:
            if region.block is None or region.contains(site.node):
                for callee in self.index.possible_targets(site):
                    yield callee, functools.partial(self._called, fn, site, callee)
        for implicit in self.index.implicit_calls(fn):
            if region.block is None or region.contains(implicit.use.anchor):
                for part in implicit.parts:
                    yield part, functools.partial(self._run_by, fn, implicit.use)

    def _called(self, fn: FunctionInfo, site: CallSite, callee: FunctionInfo) -> str:
        if callee in site.callees:
            return f"called from {fn.short} at {self.where(fn, site.line)}"
        return (f"which `{site.describe()}(...)` at {self.where(fn, site.line)} in {fn.short} may run: the analysis "
                "cannot resolve what it calls")

    def _run_by(self, fn: FunctionInfo, use: Use) -> str:
        return f"run by {describe(use)} at {self.where(fn, use.anchor.lineno)} in {fn.short}"

    def _reached(self, bits: int, how: Callable[[], str]) -> list[Hazard]:
        reached = how()
        return [Hazard(hazard.kind, hazard.fixable, f"{hazard.message} ({reached})", hazard.subject)
                for hazard in self._first_hazards(bits)]

    def _first_hazards(self, bits: int) -> list[Hazard]:
        """The hazards of the function that comes first, in the order of files and lines, of those `bits`
        names."""
        functions = []
        while bits:
            low = bits & -bits
            functions.append(self._hazardous[low.bit_length() - 1])
            bits ^= low
        return self._own(min(functions, key=lambda fn: (fn.module.path.as_posix(), fn.node.lineno,
                                                        fn.node.col_offset, fn.qualname)))

    def _own(self, fn: FunctionInfo) -> list[Hazard]:
        if id(fn) not in self._memo:
            self._memo[id(fn)] = self._lexical(fn, fn.nodes, direct=False)
        return self._memo[id(fn)]

    def _reach(self, fn: FunctionInfo | tuple) -> int:
        """The functions with hazards of their own that `fn` may run, itself included, however deep, as bits
        (bit i: `self._hazardous[i]`): what its calls resolve to, what a call of a value of unknown type
        may reach (`ProjectIndex.unseen_targets`, whose parts and groups are nodes of their own), and what
        Python may run where the code does not name it (`ProjectIndex.implicit_calls`: special methods,
        properties, generator bodies), all of it in the region's mode. Computed once per
        strongly connected component of that graph (Tarjan's algorithm, iterative), since a function and
        everything in its cycle may run the same."""
        key = id(fn)
        if key not in self._bits:
            self._tarjan(fn)
        return self._bits[key]

    def _successors(self, node) -> list:
        if isinstance(node, tuple):  # what a call of unknown type may run: a part (of groups), a group (of functions)
            return list(node)
        out: list = []
        for site in node.calls:
            # Building an object: its __init__ is checked as module construction.
            out += [callee for callee in site.targets if not (callee.name == "__init__" and site.constructs and
                                                               callee in site.callees)]
            out += self.index.unseen_targets(site)
        for implicit in self.index.implicit_calls(node):  # `t[i]`, `a + b`, a generator's body as it is iterated
            out += implicit.parts
        return out

    def _tarjan(self, root: FunctionInfo) -> None:
        successors_of: dict[int, list] = {}

        def successors(node) -> list:
            if id(node) not in successors_of:
                successors_of[id(node)] = self._successors(node)
            return successors_of[id(node)]

        for component in strongly_connected([root], successors, lambda node: id(node) in self._bits):
            bits = 0
            members = {id(member) for member in component}
            for member in component:
                own = self._own(member) if not isinstance(member, tuple) else ()
                if own:
                    self._hazardous.append(member)
                    bit = 1 << (len(self._hazardous) - 1)
                    bits |= bit
                    if not all(hazard.fixable for hazard in own):
                        self._settling |= bit
                for succ in successors(member):
                    if id(succ) not in members:
                        bits |= self._bits[id(succ)]
            for member in component:
                self._bits[id(member)] = bits

    def _lexical(self, fn: FunctionInfo, nodes: list[ast.AST], direct: bool) -> list[Hazard]:
        index = self.index
        out: list[Hazard] = []

        def add(kind: HazardKind, node: ast.AST, what: str) -> None:
            subject = what[what.index("`") + 1:what.index("`", what.index("`") + 1)] if "`" in what else ""
            out.append(Hazard(kind, False, f"{what} at {self.where(fn, node.lineno)} in {fn.short}", subject))

        sites = index.sites_of(fn)
        overflowing = {id(implicit.use.anchor): implicit.use for implicit in index.implicit_calls(fn)
                       if implicit.overflow}
        for node in nodes:
            if id(node) in overflowing:
                add(HazardKind.UNRESOLVED, node,
                    f"may run any of more than {MAX_UNSEEN_FUNCTIONS} functions of the project by "
                    f"{describe(overflowing[id(node)])} (special methods, properties, generator bodies; too many to "
                    "follow; check by hand)")
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store):
                            if sub.attr == "data":
                                add(HazardKind.STATE, node,
                                    f"rebinds parameter data (`{ast.unparse(sub)} = ...`): under "
                                    "inference mode the parameter would hold an inference tensor and silently stop "
                                    "receiving gradients (`.grad` stays None after `backward()`)")
                            elif sub.attr == "requires_grad":
                                add(HazardKind.GRAD, node, f"sets `{ast.unparse(sub)}`")
                            elif direct is False and _is_module_value(index, fn, node):
                                add(HazardKind.STATE, node, f"builds a submodule (`{ast.unparse(sub)} = ...`)")
            if not isinstance(node, ast.Call):
                continue
            site = sites.get(id(node))
            func = node.func
            name = site.external if site else None
            method = func.attr if isinstance(func, ast.Attribute) else None
            if site is not None and index.unseen_overflow(site):
                add(HazardKind.UNRESOLVED, node,
                    f"calls `{site.describe()}(...)`, a value of unknown type that may be any of more than "
                    f"{MAX_UNSEEN_FUNCTIONS} functions of the project (too many to follow; check by hand)")
            if name in GRAD_ON_CALLS or (name in SET_GRAD_ENABLED and literal_arg(node, 0, "mode") is not False):
                add(HazardKind.GRAD, node, f"turns autograd back on (`{ast.unparse(func)}(...)`)")
            elif method in ("backward", "requires_grad_"):
                add(HazardKind.GRAD, node, f"calls `{ast.unparse(func)}()`")
            elif name in LOADERS:
                add(HazardKind.STATE, node, f"loads weights (`{name}`)")
            elif method in STATE_METHODS or (method == "load_state_dict" and _assigns(node)):
                add(HazardKind.STATE, node, f"writes module state (`{ast.unparse(func)}(...)`)")
            elif method in MODULE_MOVES and site is not None and _receiver_is_module(index, fn, func.value):
                add(HazardKind.STATE, node, f"moves or casts a module (`{ast.unparse(func)}(...)`)")
            elif direct and site is not None and _constructs_module(index, site):
                add(HazardKind.STATE, node, f"builds a module (`{ast.unparse(func)}(...)`)")
            library = _unseen_library_code(index, fn, site, self._stateless) if site is not None else None
            if library is not None:
                out.append(Hazard(
                    HazardKind.LIBRARY, True,
                    f"runs `{ast.unparse(func)}(...)` at {self.where(fn, node.lineno)} in {fn.short}, {library} "
                    "the analysis cannot see into: it may keep tensors it makes there (a cache, a buffer it extends on "
                    "demand), and converted, those are inference tensors wherever that code uses them again "
                    "outside inference mode; check it by hand", f"{ast.unparse(func)}(...)"))
        return out


def _unseen_library_code(index: ProjectIndex, fn: FunctionInfo, site: CallSite,
                         stateless: tuple[str, ...]) -> str | None:
    """What a call may run of code the analysis cannot see into that may keep a tensor it makes, in words (None
    when it runs none): a library callable outside those known to keep none (`stateless`: prefixes such as
    `torch.`; nn.Module's accessors), or a call of a value of unknown type, which may be one, unless the method
    is named as a tensor's, a module's or a value type's (`KEEPS_NO_TENSORS_METHODS`) or the value is a
    parameter that is None wherever the function runs."""
    func = site.node.func
    method = func.attr if isinstance(func, ast.Attribute) else None
    if method in MODULE_ACCESSORS:
        return None
    names = [*site.library_callables, *(t.name for t in site.module_types if isinstance(t, External))]
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name) \
            and func.value.func.id == "super":  # a library base's method, whatever the index names
        owner = enclosing_class(fn)
        names += [f"{base}.{method}" for cls in (owner.mro() if owner else ()) for base in cls.external_bases]
    for name in names:
        if not f"{name}.".startswith(stateless) and name.partition(".")[0] not in BUILTIN_NAMES:
            return f"library code (`{name}`)"
    if not (site.unresolved or site.opaque or site.calls_unknown):
        return None  # it runs what the index resolved it to: project code, or the library callables above
    if method in KEEPS_NO_TENSORS_METHODS or (isinstance(func, ast.Name) and func.id in BUILTIN_NAMES):
        return None
    called = func.value if isinstance(func, ast.Attribute) else func
    if isinstance(called, ast.Name) and index.holds_only_none(fn, called.id):
        return None  # `None.m()` raises before any code runs
    return "a value of unknown type, which may be library code"


def _assigns(call: ast.Call) -> bool:
    """`load_state_dict(..., assign=True)` rebinds parameters instead of copying into them."""
    return any(kw.arg == "assign" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)
               for kw in call.keywords)


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
