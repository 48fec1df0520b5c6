"""Grad modes along call paths: may a function run with autograd on, and outside inference mode?

From decorators, `with` blocks and callers, over the call graph's strongly
connected components: a function with no caller in the project, every
function of a call cycle nothing outside calls, every function referenced
as a value, every generator and coroutine function (their bodies run as they
are iterated or awaited), every function called from a lambda or a
generator expression (which run when called or iterated), every `forward`,
`__call__` and `__init__` a call of a value of unknown type may run, and
every special method and property (Python calls them where the code does not
name them) are entered from outside the project, with autograd on and
outside inference mode. Each may-state comes with the caller path that shows
it.
"""

from __future__ import annotations

import ast
import weakref
from collections.abc import Iterable

from .gradfacts import GradFacts
from .graphs import strongly_connected
from .index import ProjectIndex
from .project import CallSite, FunctionInfo, is_implicitly_called
from .torchapi import GradMode

State = tuple[bool, bool]  # (may run with autograd on, may run outside inference mode)
GRAD_OFF: State = (False, False)
PUBLIC: State = (True, True)
UNSEEN_CALLER = "may be called by"  # how the reason for a function a call of unknown type may run starts
IMPLICIT_CALLERS = "is called by Python where the code does not name it (an operator, a subscript, `with`, `for`, " \
                   "a property read)"


def transfer(state: State, mode: str | None) -> State:
    """The state inside a region opened by `mode` (see ProjectIndex.grad_mode_of)."""
    grad_on, outside = state
    if mode == GradMode.NO_GRAD:
        return (False, outside)
    if mode == GradMode.INFERENCE:
        return (False, False)
    if mode in (GradMode.ENABLE_GRAD, GradMode.MAYBE_GRAD):
        return (grad_on or outside, outside)  # enable_grad has no effect inside inference mode
    if mode == GradMode.EXIT_INFERENCE:
        return (grad_on, True)
    return state


class GradStates:
    """May-states of every function, with the caller path that shows each one.

    The states are propagated over the whole call graph when the first one is asked for, not before: an
    analysis whose every verdict a hazard no fix can make safe settles (`FlowAnalyzer`'s `settled_by_effects`)
    never asks.
    """

    def __init__(self, index: ProjectIndex, inference_regions: Iterable[FunctionInfo | ast.expr] = ()):
        """`inference_regions`: functions and `with` items that will run under inference mode once rewritten."""
        self.index = index
        self.facts = GradFacts.of(index)
        regions = list(inference_regions)
        self.overlay = {id(r) for r in regions if isinstance(r, FunctionInfo)}
        self.overlay_items = {id(r) for r in regions if isinstance(r, ast.expr)}
        self._incoming: dict[int, list[bool]] = {}
        self._propagated = False
        self._why: dict[tuple[int, int], CallSite | None] = {}
        self._outside_why: dict[int, str] = {}  # why a function counts as entered from outside the project

    def decorator_mode(self, fn: FunctionInfo) -> str | None:
        return GradMode.INFERENCE if id(fn) in self.overlay else fn.grad_decorator

    def _propagate(self) -> None:
        if self._propagated:
            return
        self._propagated = True
        index = self.index
        for fn in index.functions.values():
            self._incoming[id(fn)] = [False, False]
        entered = _entered_from_outside(index)
        self._outside_why = {key: why for key, (_, why) in entered.items()}
        work = [fn for fn, _ in entered.values()]
        for fn in work:
            self._incoming[id(fn)] = [True, True]
            self._why[(id(fn), 0)] = self._why[(id(fn), 1)] = None
        while work:
            fn = work.pop()
            entry = self.entry(fn)
            for site in fn.calls:
                if not site.targets:
                    continue
                state = self.at_site(site, entry)
                for callee in site.targets:
                    incoming = self._incoming[id(callee)]
                    changed = False
                    for slot in (0, 1):
                        if state[slot] and not incoming[slot]:
                            incoming[slot] = True
                            self._why[(id(callee), slot)] = site
                            changed = True
                        elif state[slot] and self._why.get((id(callee), slot), site) is None:
                            # Entered from outside, and by a caller the project shows: the reason names that.
                            self._why[(id(callee), slot)] = site
                    if changed:
                        work.append(callee)

    def entry(self, fn: FunctionInfo) -> State:
        """The state a function's body starts in (callers' states, then its own decorator)."""
        self._propagate()
        incoming = self._incoming.get(id(fn), [True, True])
        return transfer((incoming[0], incoming[1]), self.decorator_mode(fn))

    def at_site(self, site: CallSite, entry: State | None = None) -> State:
        if site.deferred:
            return PUBLIC
        state = self.entry(site.caller) if entry is None else entry
        for item, mode in zip(site.items, site.modes, strict=True):
            state = transfer(state, GradMode.INFERENCE if id(item) in self.overlay_items else mode)
        return state

    def item_mode(self, module, item: ast.expr, fn: FunctionInfo) -> str | None:
        if id(item) in self.overlay_items:
            return GradMode.INFERENCE
        return self.index.grad_mode_of(module, item, fn)

    def path_to(self, fn: FunctionInfo, slot: int) -> list[FunctionInfo]:
        """Caller chain (outermost first) that makes `fn` run with autograd on (slot 0) / outside inference mode (1)."""
        self._propagate()
        chain = [fn]
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
            chain.append(current)
        return list(reversed(chain))

    def outside_entry(self, fn: FunctionInfo) -> str | None:
        """Why code the index cannot see may enter `fn` ("has no caller in the project", ...), or None."""
        self._propagate()
        return self._outside_why.get(id(fn))


# The functions entered from outside depend on the index alone: found once per index, for every analysis.
_ENTERED: weakref.WeakKeyDictionary[ProjectIndex, dict[int, tuple[FunctionInfo, str]]] = weakref.WeakKeyDictionary()


def _entered_from_outside(index: ProjectIndex) -> dict[int, tuple[FunctionInfo, str]]:
    """Functions that code the index cannot see may call, with autograd on, outside inference mode, with why.

    A function with no caller in the project; every function of a call cycle that nothing outside
    the cycle calls (its recursion has to start somewhere); a function referenced as a value; a generator
    or coroutine function; a function called from a lambda or a generator expression; a `forward`,
    `__call__` or `__init__` that a call of a value of unknown type may run; a special method or a property.
    """
    if index in _ENTERED:
        return _ENTERED[index]
    functions = list(index.functions.values())
    entered: dict[int, tuple[FunctionInfo, str]] = {}
    for component in strongly_connected(functions, _targets):
        members = {id(fn) for fn in component}
        if all(id(site.caller) in members for fn in component for site in index.callers_of(fn)):
            for fn in component:
                entered[id(fn)] = (fn, "has no caller in the project" if not index.callers_of(fn) else
                                   "is called only from its own call cycle")
    for fn in functions:
        if fn.is_async or fn.is_generator:
            entered[id(fn)] = (fn, "is a coroutine function: its body runs when it is awaited or scheduled"
                               if fn.is_async else "is a generator: its body runs as it is iterated, wherever that is")
        for site in fn.calls:
            if site.deferred:
                for target in site.targets:
                    entered.setdefault(id(target), (target, (
                        f"is called from a lambda or a generator expression in {fn.short} "
                        f"({fn.module.path.name}:{site.line}), which runs when it is called or iterated")))
    for fn in functions:
        if id(fn) in entered:
            continue
        site = index.opaque_caller(fn)
        if site is not None:
            where = f"`{site.describe()}(...)` ({site.caller.module.path.name}:{site.line})"
            how = "a call of a value whose type the analysis cannot resolve" if site.opaque else \
                "which calls what it is handed"
            entered[id(fn)] = (fn, f"{UNSEEN_CALLER} {where}, {how}")
        elif is_implicitly_called(fn):
            entered[id(fn)] = (fn, IMPLICIT_CALLERS)
    for fn in functions:
        escape = index.escape_of(fn)
        if escape is not None:
            where, node = escape
            entered[id(fn)] = (fn, f"is referenced as a value (`{ast.unparse(node)}`, "
                                   f"{where.module.path.name}:{node.lineno}), so its callers cannot be followed")
    _ENTERED[index] = entered
    return entered


def _targets(fn: FunctionInfo) -> list[FunctionInfo]:
    """Every project function `fn`'s calls may run, as the call graph's edges."""
    return [target for site in fn.calls for target in site.targets]
