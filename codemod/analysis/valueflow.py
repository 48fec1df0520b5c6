"""Where the tensors a region makes end up, and what they meet there.

Every tensor created under inference mode is an inference tensor, and so is
every view of one. Outside the mode such a tensor raises when an operation
that keeps its inputs for backward records it next to a value that requires
grad (a module with parameters; `*`, `@`, `matmul`, indexing, `masked_fill`
with a parameter or with any activation computed from one), or when it is
modified in place. `FlowAnalyzer` follows the region's tensors through
assignments, returns, tuple and dict packing, calls, attributes and
module-level state across the whole project, and reports the first such use
on a path that can run with autograd on (or outside inference mode), with that
path (`gradstates`). Whether the other operand may require grad is a fact
from `gradfacts`. A call it cannot resolve that the region's values reach on
such a path is a hazard that names the call: what the analysis cannot resolve
is never assumed harmless.

With `follow_graph` (entry points), values computed from the region's outputs
with autograd on are followed too: if one becomes the output of a `forward`
that runs with autograd on, wrapping the region in inference mode would cut
the graph a training step differentiates.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .collect import consumed_generators
from .effects import EffectScanner
from .gradstates import GRAD_OFF, PUBLIC, UNSEEN_CALLER, GradStates, State, transfer
from .implicit import describe
from .index import BUILTIN_NAMES, ProjectIndex, argument_for
from .project import (
    UNRESOLVED,
    CallSite,
    ClassInfo,
    Container,
    External,
    FunctionInfo,
    Instance,
    ModuleInfo,
    defaults,
    is_implicitly_called,
    parameters,
)
from .regions import Hazard, HazardKind, Region, RegionReport
from .torchapi import (
    CONTAINER_BUILDERS,
    CONTAINER_STORE_METHODS,
    ERR_INPLACE,
    ERR_REQUIRES_GRAD,
    ERR_SAVED,
    GRAD_FREE_FACTORIES,
    KNOWN_HARMLESS_METHODS,
    MODULE_STORES,
    NON_AUTOGRAD_PREFIXES,
    NON_SAVING_BINOPS,
    NON_SAVING_FUNCTIONS,
    NON_TENSOR_ATTRS,
    NON_TENSOR_BUILTINS,
    NON_TENSOR_METHODS,
    PARAMETER_CLASSES,
    SAVING_METHODS,
    TENSOR_VIEWS,
    TORCH_PREFIXES,
    VIEW_FUNCTIONS,
    VIEW_METHODS,
    GradMode,
    is_in_place,
)


@dataclass(frozen=True)
class Taint:
    """A value that carries something of the region.

    `inference`: it is (or views, or holds) an inference tensor made in the region.
    `graph`: the original code would have recorded autograd through the region
    into it (only tracked for entry points, where adding a region cuts that graph).
    """

    inference: bool = True
    graph: bool = False
    container: bool = False
    parts: tuple | None = None  # per-position taint of a literal tuple (None entries are clean)

    def part(self, i: int) -> Taint | None:
        if self.parts is None:
            return self
        return self.parts[i] if i < len(self.parts) else None

    def whole(self) -> Taint:
        """The taint of the value as one object (a tuple's parts folded together)."""
        if self.parts is None:
            return self
        parts = [p for p in self.parts if p is not None]
        return Taint(inference=any(p.inference for p in parts), graph=any(p.graph for p in parts), container=True)

    def as_element(self) -> Taint:
        """What reading one element out of this value gives."""
        whole = self.whole()
        return Taint(inference=whole.inference, graph=whole.graph)

    def held(self) -> Taint:
        """A container that holds this value."""
        whole = self.whole()
        return Taint(inference=whole.inference, graph=whole.graph, container=True)


def _merge(a: Taint | None, b: Taint | None) -> Taint | None:
    if a is None:
        return b
    if b is None:
        return a
    if a.parts is not None and b.parts is not None and len(a.parts) == len(b.parts):
        return Taint(parts=tuple(_merge(x, y) for x, y in zip(a.parts, b.parts, strict=True)),
                     inference=a.inference or b.inference, graph=a.graph or b.graph)
    a, b = a.whole(), b.whole()
    return Taint(inference=a.inference or b.inference, graph=a.graph or b.graph,
                 container=a.container or b.container)


def _any(values: Iterable[Taint | None]) -> Taint | None:
    out = None
    for value in values:
        out = _merge(out, value)
    return out


class _Budget(Exception):
    """Too many function visits for one region."""


class _Found(Exception):
    """The first hazardous use was found: the verdict cannot change, so the walk stops."""


@dataclass
class _Frame:
    """One walk of a function body, with what it knows on entry."""

    fn: FunctionInfo
    state: State
    params: dict[str, Taint] = field(default_factory=dict)
    calls: dict[int, Taint] = field(default_factory=dict)  # id(ast.Call) -> taint of its result
    region: Region | None = None  # set for the function holding the region
    inside: bool = False  # called from inside the region: all of it runs under inference mode
    entered_by_call: bool = False  # its return value goes back to the one call that entered it
    # Parameters whose argument at the entering call cannot require grad (an inference tensor, a constant).
    grad_free_params: frozenset = frozenset()
    path: tuple[str, ...] = ()  # how the region's values got here, for reasons


@dataclass
class _Summary:
    """One walk of a function called from inside the region: what it asked the analyzer, what it did, and what
    it returned. The walk is a function of its frame and of those answers alone, so a later region whose
    analyzer gives the same answers gets the same effects and result without walking the body again."""

    result: Taint | None
    # ("call", callee, params, state, line, inside, grad_free, how, result) | ("attr", classes, attr, taint, line) |
    # ("global", module, name, taint, line) | ("cached", fn) | ("closure", fn, captured, line) |
    # ("read-attr", cls, attr, taint) | ("read-global", module, name, taint), in the order the walk made them.
    events: list[tuple] = field(default_factory=list)


_NOT_REPLAYED = object()
_STORES = (ast.Store, ast.Del)


class FlowAnalyzer:
    """Follows the values a region makes, across the project, to their first hazardous use."""

    MAX_FRAMES = 4000

    def __init__(self, index: ProjectIndex, states: GradStates, where: Callable[[FunctionInfo, int], str],
                 follow_graph: bool = False, settled_by_effects: bool = False,
                 stateless_libraries: tuple[str, ...] = ()):
        """`settled_by_effects`: a hazard no fix can make safe in what the region runs ends its analysis, for a
        caller whose verdict that settles and whose reason names that hazard alone (`inference-mode`); the
        values' flow is then not followed, and the grad states it reads are never propagated.
        `stateless_libraries`: libraries the user has checked keep no tensor they make (`EffectScanner`)."""
        self.index = index
        self.states = states
        self.facts = states.facts
        self.where = where
        self.follow_graph = follow_graph
        self.settled_by_effects = settled_by_effects
        # Walks of functions called from inside a region, by (function, arguments' taints, grad-free
        # parameters); kept across regions: most regions call into the same code.
        self._summaries: dict[tuple, _Summary] = {}
        self._recording: list[_Summary | None] = []  # the walks under way; None: one that is not recorded
        # Keeps each function's effects across regions.
        self._effects = EffectScanner(index, where, stateless_libraries)

    def analyze(self, region: Region) -> RegionReport:
        report = RegionReport()
        effects = self._effects.scan(region)
        for hazard in effects:
            if hazard.kind != HazardKind.LIBRARY:
                report.add(hazard)
        if self.settled_by_effects and not report.fixable:
            return report
        self._report = report
        self._region = region
        self._frames = 0
        self._memo: dict[tuple, Taint | None] = {}
        self._open: set[tuple] = set()  # frames being walked
        self._read_open: set[tuple] = set()  # ... whose result a recursive call read before it was known
        self._attr_taint: dict[tuple[int | None, str], Taint] = {}  # (id(class), or None: any object; attr)
        self._attr_taint_by_name: dict[str, Taint] = {}  # attr -> what was stored on it, on any object
        self._global_taint: dict[tuple[int, str], Taint] = {}
        self._returned: set[int] = set()
        self._pending: list[_Frame] = []
        self._unseen: Hazard | None = None  # the first output handed to callers the analysis cannot see
        start = _Frame(fn=region.fn, state=self.states.entry(region.fn), region=region, path=(region.fn.short,))
        try:
            self.run(start)
            while self._pending:
                self.run(self._pending.pop(0))
            if self._unseen is not None:
                report.add(self._unseen)
        except _Found:
            pass
        except _Budget:
            report.add(self._unseen or Hazard(
                HazardKind.BUDGET, True, f"the values it makes flow too far to follow completely (over "
                f"{self.MAX_FRAMES} function visits); treat it as unsafe"))
        except RecursionError:
            report.add(Hazard(HazardKind.BUDGET, True,
                              "the code it reaches is nested too deeply to analyse; treat it as unsafe"))
        # Library code that may keep what it makes comes after what the flow found of the region's own tensors,
        # which a reason names first.
        for hazard in effects:
            if hazard.kind == HazardKind.LIBRARY:
                report.add(hazard)
        return report

    def region_value(self) -> Taint:
        return Taint(inference=True, graph=self.follow_graph)

    # -- frames --------------------------------------------------------------

    def run(self, frame: _Frame) -> Taint | None:
        if frame.inside:
            key: tuple = (id(frame.fn), "inside")
        else:
            key = (id(frame.fn), frame.state, tuple(sorted((k, v) for k, v in frame.params.items())),
                   tuple(sorted(frame.calls.items())), frame.region is not None, frame.grad_free_params)
        if key in self._memo:
            if key in self._open:
                self._read_open.add(key)
            return self._memo[key]
        self._memo[key] = None
        self._open.add(key)
        summary_key = (id(frame.fn), tuple(sorted(frame.params.items())), frame.grad_free_params) \
            if frame.inside else None
        while True:  # a recursive call read this frame's result before it was known: walk it again
            self._frames += 1
            if self._frames > self.MAX_FRAMES:
                raise _Budget()
            self._read_open.discard(key)
            result = self._replay(frame, summary_key)
            if result is _NOT_REPLAYED:
                result = self._walk(frame, summary_key)
            settled = key not in self._read_open or result == self._memo[key]
            self._memo[key] = result
            if settled:
                break
            summary_key = None
        self._open.discard(key)
        if result is not None and not frame.entered_by_call:
            self._return_to_callers(frame.fn, result, frame.path)
        return result

    def _walk(self, frame: _Frame, summary_key: tuple | None) -> Taint | None:
        summary = _Summary(None) if summary_key is not None else None
        self._recording.append(summary)
        try:
            result = _Walker(self, frame).walk()
        finally:
            self._recording.pop()
        if summary is not None:
            summary.result = result
            self._summaries[summary_key] = summary
        return result

    def _replay(self, frame: _Frame, summary_key: tuple | None):
        """A recorded walk's effects and result, asking the analyzer each question again: at the first
        different answer it stops (the effects made so far are the ones a walk makes too) and the frame
        is walked."""
        summary = self._summaries.get(summary_key) if summary_key is not None else None
        if summary is None:
            return _NOT_REPLAYED
        self._recording.append(None)
        try:
            for event in summary.events:
                kind = event[0]
                if kind == "call":
                    _, callee, params, state, line, inside, grad_free, how, result = event
                    if self.call_into(frame, callee, params, state, line, inside, grad_free, how) != result:
                        return _NOT_REPLAYED
                elif kind == "attr":
                    self.store_attr(event[1], event[2], event[3], frame, event[4])
                elif kind == "global":
                    self.store_global(event[1], event[2], event[3], frame, event[4])
                elif kind == "cached":
                    self.schedule_callers_of_cached(event[1], frame)
                elif kind == "closure":
                    self.run_closure(frame, event[1], event[2], event[3])
                elif kind == "read-attr":
                    if self.tainted_attr(event[1], event[2]) != event[3]:
                        return _NOT_REPLAYED
                elif kind == "read-attr-any":
                    if self.tainted_attr_of_any(event[1]) != event[2]:
                        return _NOT_REPLAYED
                elif self.tainted_global(event[1], event[2]) != event[3]:  # "read-global"
                    return _NOT_REPLAYED
        finally:
            self._recording.pop()
        return summary.result

    def _record(self, *event) -> None:
        if self._recording and self._recording[-1] is not None:
            self._recording[-1].events.append(event)

    def call_into(self, frame: _Frame, callee: FunctionInfo, params: dict[str, Taint], state: State,
                  line: int, inside: bool, grad_free: frozenset = frozenset(), how: str = "passed to") -> Taint | None:
        entered = transfer(state, self.states.decorator_mode(callee))
        step = f"{how} {callee.short} ({self.where(frame.fn, line)})"
        result = self.run(_Frame(fn=callee, state=entered, params=params, inside=inside, entered_by_call=True,
                                 grad_free_params=grad_free, path=(*frame.path, step)))
        self._record("call", callee, params, state, line, inside, grad_free, how, result)
        return result

    def run_closure(self, frame: _Frame, nested: FunctionInfo, captured: dict[str, Taint], line: int) -> None:
        """A nested function reading the region's values, walked in the state its callers may run it in (with
        autograd on and outside inference mode when it is handed out): whenever it runs, it reads them."""
        step = f"read by {nested.short}, defined at {self.where(frame.fn, line)}"
        self._record("closure", nested, captured, line)
        sites = self.index.callers_of(nested)
        if sites and self.index.escape_of(nested) is None and all(site.caller is frame.fn for site in sites):
            # Called only here, in this walk: in the states of those calls.
            base = GRAD_OFF if frame.inside or (frame.region is not None and frame.region.block is None) \
                else frame.state
            states = [self.states.at_site(site, base) for site in sites]
            state = (any(s[0] for s in states), any(s[1] for s in states))
        else:
            state = self.states.entry(nested)
        self.run(_Frame(fn=nested, state=transfer(state, self.states.decorator_mode(nested)), params=captured,
                        path=(*frame.path, step)))

    def _return_to_callers(self, fn: FunctionInfo, taint: Taint, path: tuple[str, ...]) -> None:
        if id(fn) in self._returned:
            return
        self._returned.add(id(fn))
        escape = self.index.escape_of(fn)
        if escape is not None:
            where, node = escape
            self._report.add(Hazard(
                HazardKind.UNRESOLVED, True,
                f"cannot resolve the callers of {fn.short}: it is referenced as a value (`{ast.unparse(node)}` at "
                f"{self.where(where, node.lineno)}) and returns {self._flow(_Frame(fn=fn, state=PUBLIC, path=path))}"
                "; check where it is called by hand", subject=ast.unparse(node)))
            raise _Found()
        if self.states.outside_entry(fn) is not None:
            self._external_return(fn, taint, path)
        for site in self.index.callers_of(fn):
            if site.caller is self._region.fn and self._region.block is None:
                continue  # recursion into the region itself
            step = f"returned by {fn.short} to {site.caller.short} ({self.where(site.caller, site.line)})"
            self._pending.append(_Frame(fn=site.caller, state=self.states.entry(site.caller),
                                        calls={id(site.node): taint}, path=(*path, step)))

    def _external_return(self, fn: FunctionInfo, taint: Taint, path: tuple[str, ...]) -> None:
        """What a function entered from outside the project returns: noted, and a hazard from a `forward` or
        `__call__` (a module's output) or a special method or property (its callers are in the project, unseen)."""
        taint = taint.whole()
        why = self.states.outside_entry(fn) or ""
        if fn.name in ("forward", "__call__") and why.startswith(UNSEEN_CALLER):
            unseen = f"{fn.short}, a module forward whose callers cannot all be followed (it {why})"
            used, trained = f"{unseen}: one may use it with autograd on", f"{unseen}: one may train"
        elif fn.name in ("forward", "__call__"):
            used = f"{fn.short}, a module forward whose callers outside the project may use it with autograd on " \
                   "(a frozen module feeding a trained one, say)"
            trained = f"{fn.short}, a module forward that callers outside the project may train"
        elif is_implicitly_called(fn):
            used = trained = (f"{fn.short}, which Python calls where the code does not name it (`t[i]`, an "
                              "operator, a property read), so its callers cannot be followed and may train with it")
        else:
            if taint.inference:
                self._report.note(f"{fn.short} hands inference tensors to callers outside the project")
            return
        # Reported once every caller in the project is followed, unless one shows a hazard first: what the
        # code does is a better reason than what unseen code may do.
        flow = self._flow(_Frame(fn=fn, state=PUBLIC, path=path))
        if self._unseen is not None:
            return
        if taint.inference:
            self._unseen = Hazard(
                HazardKind.RECORD, True,
                f"{flow} become the output of {used}: that fails with `{ERR_SAVED}`", subject=fn.short)
        elif taint.graph:
            self._unseen = Hazard(
                HazardKind.GRAPH, True,
                f"values computed from {flow} with autograd on become the output of {trained}: under inference "
                "mode no gradient would reach the parameters the region uses (training breaks silently)",
                subject=fn.short)

    def schedule_callers_of_cached(self, fn: FunctionInfo, frame: _Frame) -> None:
        """A cached function's result made in the region is what every later call returns."""
        self._record("cached", fn)
        for site in self.index.callers_of(fn):
            if site.caller is self._region.fn and self._region.block is None:
                continue
            self._pending.append(_Frame(
                fn=site.caller, state=self.states.entry(site.caller), calls={id(site.node): self.region_value()},
                path=(*frame.path, f"cached by {fn.short} and returned to {site.caller.short} "
                                   f"({self.where(site.caller, site.line)})")))

    # -- state outside the frames ----------------------------------------------

    def tainted_attr(self, cls: ClassInfo | None, attr: str) -> Taint | None:
        """What `<object>.attr` holds of the region's values for an object of class `cls`; `None`: what was
        stored on `.attr` of objects whose types the index does not resolve."""
        found = None
        # An object of class `cls` may be one of a subclass: what was stored on `.attr` there may be read here.
        for owner in cls.family() if cls is not None else ():
            found = _merge(found, self._attr_taint.get((id(owner), attr)))
        if found is None:
            found = self._attr_taint.get((None, attr))
        self._record("read-attr", cls, attr, found)
        return found

    def tainted_attr_of_any(self, attr: str) -> Taint | None:
        """What `<object>.attr` holds of the region's values for an object whose type the index does not
        resolve: whatever was stored on `.attr` of any object."""
        found = self._attr_taint_by_name.get(attr)
        self._record("read-attr-any", attr, found)
        return found

    def store_attr(self, classes: Iterable[ClassInfo] | None, attr: str, taint: Taint, frame: _Frame,
                   line: int) -> None:
        """The region's values stored on `.attr` of objects of `classes`; `None`: of an object whose types the
        index does not resolve, which may be any object: every read of `.attr` may see them."""
        classes = tuple(classes) if classes is not None else None
        self._record("attr", classes, attr, taint, line)
        self._attr_taint_by_name[attr] = _merge(self._attr_taint_by_name.get(attr), taint.whole())
        if classes is None:
            if (None, attr) not in self._attr_taint:
                self._attr_taint[(None, attr)] = taint.whole()
                self._schedule_readers(frame, f"stored on `.{attr}` of an object of unresolved type "
                                              f"({self.where(frame.fn, line)})",
                                       [fn for fn, _ in self.index.attribute_readers(attr)])
            return
        for cls in classes:
            key = (id(cls), attr)
            if key in self._attr_taint:
                continue
            self._attr_taint[key] = taint.whole()
            related = {id(c) for c in cls.family()}  # an object of a base may be one of it
            readers = [fn for fn, classes in self.index.attribute_readers(attr)
                       if classes is None or not related.isdisjoint(classes)]
            self._schedule_readers(frame, f"stored on `{cls.name}.{attr}` ({self.where(frame.fn, line)})", readers)

    def store_global(self, module: ModuleInfo, name: str, taint: Taint, frame: _Frame, line: int) -> None:
        self._record("global", module, name, taint, line)
        key = (id(module), name)
        if key in self._global_taint:
            return
        self._global_taint[key] = taint.whole()
        readers = [fn for fn, node in self.index.loads(name) if fn.module is module and isinstance(node, ast.Name)]
        self._schedule_readers(frame, f"kept in the module-level `{name}` ({self.where(frame.fn, line)})", readers)

    def tainted_global(self, module: ModuleInfo, name: str) -> Taint | None:
        found = self._global_taint.get((id(module), name))
        self._record("read-global", module, name, found)
        return found

    def _schedule_readers(self, frame: _Frame, step: str, readers: Iterable[FunctionInfo]) -> None:
        """Every function that reads the stored value sees it, under its own grad state."""
        for fn in dict.fromkeys(readers):
            if fn is self._region.fn and self._region.block is None:
                continue  # reads inside the region run under inference mode
            self._pending.append(_Frame(fn=fn, state=self.states.entry(fn), path=(*frame.path, step,
                                                                                  f"read by {fn.short}")))

    # -- findings --------------------------------------------------------------

    def hazard(self, kind: HazardKind, frame: _Frame, node: ast.AST, use: str, slot: int, error: str) -> None:
        fn = frame.fn
        context = "runs with autograd on" if slot == 0 else "runs outside inference mode"
        self._report.add(Hazard(
            kind, True,
            f"{self._flow(frame)} reach {use} at {self.where(fn, node.lineno)} in {fn.short}, which {context} "
            f"{self._via(fn, slot)}; converted, that raises `{error}`", subject=_short(node),
        ))
        raise _Found()

    def deferred_result(self, frame: _Frame, node: ast.Lambda) -> None:
        fn = frame.fn
        self._report.add(Hazard(
            HazardKind.UNRESOLVED, True,
            f"{self._flow(frame)} become the result of the lambda at {self.where(fn, node.lineno)} in {fn.short}, "
            "which may be called anywhere, with autograd on; check where it is called by hand",
            subject=_short(node),
        ))
        raise _Found()

    def note_unresolved(self, frame: _Frame, node: ast.Call) -> None:
        fn = frame.fn
        self._report.add(Hazard(
            HazardKind.UNRESOLVED, True,
            f"cannot resolve `{ast.unparse(node.func)}(...)` at {self.where(fn, node.lineno)} in {fn.short}; "
            f"{self._flow(frame)} reach it, and it runs with autograd on {self._via(fn, 0)}; check that call by "
            "hand", subject=_short(node),
        ))
        raise _Found()

    @staticmethod
    def _flow(frame: _Frame) -> str:
        steps = frame.path[1:]
        return "tensors made in the region" + (f" ({'; '.join(steps)})" if steps else "")

    def _via(self, fn: FunctionInfo, slot: int) -> str:
        """`when called through A -> B (A has no caller in the project, ...)`."""
        chain = self.states.path_to(fn, slot)
        text = f"when called through {' -> '.join(f.short for f in chain)}" if len(chain) > 1 else ""
        outside = self.states.outside_entry(chain[0])
        if outside is not None:
            assumed = "run with autograd on" if slot == 0 else "run outside inference mode"
            text += f"{' (' if text else '('}{chain[0].short} {outside}, so it is assumed to {assumed})"
        return text


class _Walker:
    """Walks one function body for one frame, tracking which local names carry the region's values."""

    def __init__(self, analyzer: FlowAnalyzer, frame: _Frame):
        self.a = analyzer
        self.index = analyzer.index
        self.frame = frame
        self.fn = frame.fn
        self.names: dict[str, Taint] = dict(frame.params)
        # Local names that may hold a tensor requiring grad (a may-fact, joined over every assignment).
        self.grad: dict[str, bool] = {}
        self.returned: Taint | None = None
        self.sites = self.index.sites_of(self.fn)
        self.globals = _global_names(self.fn)
        self.consumed: set[int] = set()  # generator expressions a call iterates to their end where it stands
        self.straight = False  # walking statements that run in order, none skipped (see `_block`)
        # Where Python runs project code the body does not name (`t[i]`, `a + b`, iterating a generator).
        self.implicit = {id(call.use.anchor): call for call in self.index.implicit_calls(self.fn) if call.parts}

    def walk(self) -> Taint | None:
        whole = self.frame.inside or (self.frame.region is not None and self.frame.region.block is None)
        state = GRAD_OFF if whole else self.frame.state
        for _ in range(2):  # twice, so that values flowing around a loop reach their uses
            self._block(self.fn.node.body, state, in_region=whole, straight=True)
        return self.returned

    # -- statements ------------------------------------------------------------

    def _block(self, body: list[ast.stmt], state: State, in_region: bool, straight: bool = False) -> None:
        """Walk statements; `straight`: each runs whenever the one before it did (the function's own body, and
        grad-mode `with` blocks in it), so a name assigned there holds only what is assigned."""
        outer, self.straight = self.straight, straight
        for stmt in body:
            self._stmt(stmt, state, in_region)
        self.straight = outer

    def _stmt(self, stmt: ast.stmt, state: State, in_region: bool) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._closure(stmt)
            return
        if isinstance(stmt, ast.ClassDef):
            return
        if in_region and isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete)):
            targets = stmt.targets if isinstance(stmt, (ast.Assign, ast.Delete)) else [stmt.target]
            for node in (node for target in targets for node in ast.walk(target)):
                if id(node) in self.implicit and isinstance(getattr(node, "ctx", None), _STORES):
                    self._run_implicit(node, state)  # `x.p = v` runs a property's setter, `t[i] = v` `__setitem__`
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            self._with(stmt, state, in_region)
        elif isinstance(stmt, ast.Assign):
            value = self._value(stmt.value, state, in_region)
            for target in stmt.targets:
                self._note_grad(target, stmt.value, in_region)
                self._store(target, value, state, in_region, stmt, replace=self.straight)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self._note_grad(stmt.target, stmt.value, in_region)
                self._store(stmt.target, self._value(stmt.value, state, in_region), state, in_region, stmt,
                            replace=self.straight)
        elif isinstance(stmt, ast.AugAssign):
            self._aug_assign(stmt, state, in_region)
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self.returned = _merge(self.returned, self._value(stmt.value, state, in_region))
        elif isinstance(stmt, ast.Expr):
            self._expr(stmt.value, state, in_region)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._note_grad(stmt.target, stmt.iter, in_region)
            iterated = self._expr(stmt.iter, state, in_region)
            element = self.a.region_value() if in_region else (iterated.as_element() if iterated else None)
            self._store(stmt.target, element, state, in_region, stmt)
            self._block(stmt.body, state, in_region)
            self._block(stmt.orelse, state, in_region)
        elif isinstance(stmt, (ast.While, ast.If)):
            self._expr(stmt.test, state, in_region)
            self._block(stmt.body, state, in_region)
            self._block(stmt.orelse, state, in_region)
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            self._block(stmt.body, state, in_region)
            for handler in stmt.handlers:
                self._block(handler.body, state, in_region)
            self._block(stmt.orelse, state, in_region)
            self._block(stmt.finalbody, state, in_region)
        elif isinstance(stmt, ast.Match):
            self._expr(stmt.subject, state, in_region)
            for case in stmt.cases:
                self._block(case.body, state, in_region)
        else:
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self._expr(child, state, in_region)

    def _closure(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """A nested function that reads names holding the region's values reads them whenever it runs, called
        from here or handed out: its body is walked with them."""
        nested = self.fn.local_defs.get(stmt.name)
        if nested is None or nested.node is not stmt:
            nested = next((f for f in self.fn.module.functions if f.node is stmt), None)
        if nested is None or not self.names:
            return
        own = self.index.local_names(nested)
        captured = {node.id: self.names[node.id] for node in nested.nodes
                    if isinstance(node, ast.Name) and node.id in self.names and node.id not in own}
        if captured:
            self.a.run_closure(self.frame, nested, captured, stmt.lineno)

    def _with(self, stmt: ast.With | ast.AsyncWith, state: State, in_region: bool) -> None:
        inner = state
        opens_region = False
        grad_modes_only = True  # a grad-mode context manager never suppresses an exception: its body runs through
        region = self.frame.region
        for position, item in enumerate(stmt.items):
            self._expr(item.context_expr, state, in_region)
            mode = self.a.states.item_mode(self.fn.module, item.context_expr, self.fn)
            grad_modes_only = grad_modes_only and mode is not None
            if region is not None and region.block is stmt and position == region.item:
                opens_region, mode = True, GradMode.INFERENCE
            inner = transfer(inner, mode)
            if item.optional_vars is not None:
                self._note_grad(item.optional_vars, item.context_expr, in_region)
                if in_region:
                    self._store(item.optional_vars, self.a.region_value(), inner, in_region, stmt)
        self._block(stmt.body, inner, in_region or opens_region, straight=self.straight and grad_modes_only)

    def _aug_assign(self, stmt: ast.AugAssign, state: State, in_region: bool) -> None:
        target = self._expr(stmt.target, state, in_region) if not isinstance(stmt.target, ast.Name) else \
            self.names.get(stmt.target.id)
        value = self._expr(stmt.value, state, in_region)
        if in_region:
            self._store(stmt.target, self.a.region_value(), state, in_region, stmt)
            return
        if target is not None and target.inference and not target.container and state[1]:
            self.a.hazard(HazardKind.INPLACE, self.frame, stmt, f"the in-place update `{_short(stmt)}`", 1, ERR_INPLACE)
        if state[0] and not isinstance(stmt.op, NON_SAVING_BINOPS) and \
                self._mixes([(stmt.target, target), (stmt.value, value)]):
            self.a.hazard(HazardKind.RECORD, self.frame, stmt, f"`{_short(stmt)}` (an operand may require grad)", 0,
                          ERR_SAVED)
        self._note_grad(stmt.target, stmt.value, in_region)
        derived = self._computed([target, value], state)
        if derived is not None:
            self._store(stmt.target, derived, state, in_region, stmt)

    def _value(self, expr: ast.expr, state: State, in_region: bool) -> Taint | None:
        """The taint an assignment stores: everything assigned inside the region is the region's."""
        value = self._expr(expr, state, in_region)
        if in_region:
            if isinstance(expr, ast.Tuple):
                return Taint(parts=tuple(self.a.region_value() for _ in expr.elts))
            return _merge(value, self._region_shaped(expr))
        return value

    def _region_shaped(self, expr: ast.expr) -> Taint:
        """A region value, as a container when the expression visibly builds one (`dict(...)`, `[...]`)."""
        builds = isinstance(expr, (ast.Dict, ast.List, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)) or (
            isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in CONTAINER_BUILDERS)
        return self.a.region_value().held() if builds else self.a.region_value()

    def _store(self, target: ast.expr, value: Taint | None, state: State, in_region: bool, stmt: ast.AST,
               replace: bool = False) -> None:
        """Bind what an assignment stores. A name keeps what it held before (a branch or a loop may not have
        run the assignment), unless `replace`: the assignment surely ran, and the name holds only `value`."""
        if isinstance(target, ast.Name):
            if value is not None:
                self.names[target.id] = value
                if target.id in self.globals:
                    self.a.store_global(self.fn.module, target.id, value, self.frame, stmt.lineno)
            elif replace:
                self.names.pop(target.id, None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for position, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    self._store(element.value, value.held() if value else None, state, in_region, stmt, replace)
                else:
                    self._store(element, value.part(position) if value else None, state, in_region, stmt,
                                replace)
        elif isinstance(target, ast.Starred):
            self._store(target.value, value, state, in_region, stmt, replace)
        elif isinstance(target, ast.Subscript):
            container = self._expr(target.value, state, in_region)
            self._expr(target.slice, state, in_region)
            if container is not None and container.inference and not container.container and not in_region \
                    and state[1]:
                self.a.hazard(HazardKind.INPLACE, self.frame, stmt,
                              f"the in-place update `{_short(stmt)}`", 1, ERR_INPLACE)
            if value is not None and not self._fresh_tensor(target.value, set()):
                self._store_into(target.value, value, stmt)
        elif isinstance(target, ast.Attribute):
            owner = self._expr(target.value, state, in_region)
            if target.attr == "requires_grad" and owner is not None and owner.inference and not in_region \
                    and state[1]:
                self.a.hazard(HazardKind.INPLACE, self.frame, stmt, f"`{_short(stmt)}`", 1, ERR_REQUIRES_GRAD)
            if value is not None:
                self._store_attribute(target, value, stmt)

    def _fresh_tensor(self, expr: ast.expr, seen: set[str]) -> bool:
        """Whether `expr` is a tensor a torch factory made in this function (`torch.zeros(...)`, its views and
        casts, a name bound only to such): `t[i] = v` copies `v` into it, and it holds no reference to `v`."""
        while isinstance(expr, ast.Subscript) or (
                isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in TENSOR_VIEWS):
            expr = expr.value if isinstance(expr, ast.Subscript) else expr.func.value
        if isinstance(expr, ast.Call):
            return self.index.qualify(self.fn.module, expr.func, self.fn) in GRAD_FREE_FACTORIES
        if not isinstance(expr, ast.Name) or expr.id in self.globals:
            return False
        if expr.id in seen:  # `conds = conds.transpose(1, 2)`: its other bindings decide
            return True
        sources = self.index.local_names(self.fn).get(expr.id, ())
        seen.add(expr.id)
        return bool(sources) and all(kind == "expr" and self._fresh_tensor(value, seen) for kind, value in sources)

    def _store_into(self, container: ast.expr, value: Taint, stmt: ast.AST) -> None:
        """`c[k] = v`, `c.append(v)`: the container now holds the region's values."""
        held = value.held()
        if isinstance(container, ast.Name):
            self.names[container.id] = _merge(self.names.get(container.id), held)
            if self._is_module_level(container.id):
                self.a.store_global(self.fn.module, container.id, held, self.frame, stmt.lineno)
        elif isinstance(container, ast.Attribute):
            self._store_attribute(container, held, stmt)
        elif isinstance(container, ast.Subscript):
            self._store_into(container.value, value, stmt)

    def _is_module_level(self, name: str) -> bool:
        if name in self.globals:
            return True
        if name in self.index.local_names(self.fn):
            return False
        return name in self.fn.module.assigns

    def _store_attribute(self, target: ast.Attribute, value: Taint, stmt: ast.AST) -> None:
        types = self.index.infer(target.value, self.fn)
        classes = [t.cls for t in types if isinstance(t, Instance)]
        if len(classes) < len(types) or not types:  # (in part) an object of no class of the project's, or unknown
            self.a.store_attr(None, target.attr, value, self.frame, stmt.lineno)
        if classes:
            self.a.store_attr(classes, target.attr, value, self.frame, stmt.lineno)
        elif isinstance(target.value, ast.Name):
            self.names[target.value.id] = _merge(self.names.get(target.value.id), value.held())
        elif isinstance(target.value, ast.Attribute):
            self._store_attribute(target.value, value.held(), stmt)

    # -- expressions -----------------------------------------------------------

    def _computed(self, operands: Iterable[Taint | None], state: State) -> Taint | None:
        """A new tensor computed outside the region: it carries the graph only when autograd is on."""
        if not (self.a.follow_graph and state[0]):
            return None
        if any(t is not None and (t.inference or t.graph) for t in operands):
            return Taint(inference=False, graph=True)
        return None

    def _expr(self, expr: ast.expr | None, state: State, in_region: bool) -> Taint | None:
        if expr is None:
            return None
        if in_region and id(expr) in self.implicit and not isinstance(getattr(expr, "ctx", None), _STORES):
            self._run_implicit(expr, state)
        if isinstance(expr, ast.Name):
            if expr.id in self.names:
                return self.names[expr.id]
            if self._is_module_level(expr.id):
                return self.a.tainted_global(self.fn.module, expr.id)
            return None
        if isinstance(expr, ast.Attribute):
            return self._attribute(expr, state, in_region)
        if isinstance(expr, ast.Subscript):
            base = self._expr(expr.value, state, in_region)
            index = self._expr(expr.slice, state, in_region)
            if not in_region and state[0] and _is_inference(index) and not (base is not None and base.container) \
                    and self._may_grad(expr.value):
                self.a.hazard(HazardKind.RECORD, self.frame, expr, f"the indexing `{_short(expr)}` of a value that may "
                                                          "require grad", 0, ERR_SAVED)
            if base is None:
                return None
            if base.parts is not None and isinstance(expr.slice, ast.Constant) and isinstance(expr.slice.value, int):
                return base.part(expr.slice.value)
            return base.as_element() if base.container else base
        if isinstance(expr, ast.Call):
            return self._call(expr, state, in_region)
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            parts = [self._expr(e.value if isinstance(e, ast.Starred) else e, state, in_region) for e in expr.elts]
            if not any(parts):
                return None
            if isinstance(expr, ast.Tuple) and not any(isinstance(e, ast.Starred) for e in expr.elts):
                return Taint(parts=tuple(parts))
            return _any(parts).held()
        if isinstance(expr, ast.Dict):
            for key in expr.keys:
                self._expr(key, state, in_region)
            found = _any(self._expr(v, state, in_region) for v in expr.values)
            return found.held() if found else None
        if isinstance(expr, ast.BinOp):
            left = self._expr(expr.left, state, in_region)
            right = self._expr(expr.right, state, in_region)
            if not in_region and state[0] and not isinstance(expr.op, NON_SAVING_BINOPS) and \
                    self._mixes([(expr.left, left), (expr.right, right)]):
                self.a.hazard(HazardKind.RECORD, self.frame, expr, f"`{_short(expr)}` (an operand may require grad)", 0,
                              ERR_SAVED)
            return self._computed([left, right], state)
        if isinstance(expr, ast.UnaryOp):
            return self._computed([self._expr(expr.operand, state, in_region)], state)
        if isinstance(expr, ast.BoolOp):
            return _any(self._expr(v, state, in_region) for v in expr.values)
        if isinstance(expr, ast.IfExp):
            self._expr(expr.test, state, in_region)
            return _merge(self._expr(expr.body, state, in_region), self._expr(expr.orelse, state, in_region))
        if isinstance(expr, ast.Compare):
            _any([self._expr(expr.left, state, in_region),
                  *(self._expr(c, state, in_region) for c in expr.comparators)])
            return None  # a boolean mask carries no graph
        if isinstance(expr, ast.NamedExpr):
            value = self._value(expr.value, state, in_region)
            if value is not None:
                self.names[expr.target.id] = value
            return value
        if isinstance(expr, ast.Lambda):
            for default in defaults(expr.args):
                self._expr(default, state, in_region)
            bound = {arg.arg for arg in parameters(expr.args)}
            result = self._deferred(lambda: self._expr(expr.body, PUBLIC, False), bound)
            if result is not None and result.inference:
                self.a.deferred_result(self.frame, expr)
            return result.held() if result is not None else None
        if isinstance(expr, ast.GeneratorExp) and id(expr) not in self.consumed:
            first = expr.generators[0]
            iterated = self._expr(first.iter, state, in_region)

            def elements() -> Taint | None:
                self._bind(first.target, iterated)
                for test in first.ifs:
                    self._expr(test, PUBLIC, False)
                for generator in expr.generators[1:]:
                    self._bind(generator.target, self._expr(generator.iter, PUBLIC, False))
                    for test in generator.ifs:
                        self._expr(test, PUBLIC, False)
                return self._expr(expr.elt, PUBLIC, False)

            inner = self._deferred(elements, set())
            return inner.held() if inner is not None else None
        if isinstance(expr, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for generator in expr.generators:
                self._bind(generator.target, self._expr(generator.iter, state, in_region))
            elt = expr.value if isinstance(expr, ast.DictComp) else expr.elt
            inner = self._expr(elt, state, in_region)
            return inner.held() if inner is not None else None
        if isinstance(expr, (ast.Yield, ast.YieldFrom)):  # what it yields goes to whoever iterates it
            value = self._expr(expr.value, state, in_region)
            self.returned = _merge(self.returned, self.a.region_value() if in_region else value)
            return None
        if isinstance(expr, (ast.Await, ast.Starred)):
            return self._expr(expr.value, state, in_region)
        for child in ast.iter_child_nodes(expr):
            if isinstance(child, ast.expr):
                self._expr(child, state, in_region)
        return None

    def _bind(self, target: ast.expr, iterated: Taint | None) -> None:
        """A loop variable of a comprehension takes the elements of what it iterates."""
        if iterated is not None:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    self.names[name.id] = iterated.as_element()

    def _deferred(self, walk: Callable[[], Taint | None], bound: set[str]) -> Taint | None:
        """Code that runs later, wherever it is called or iterated (a lambda's body, a generator's elements):
        walked outside the region, with autograd on and outside inference mode, with the names it reads from
        here; `bound` are its own (its parameters), which hide those."""
        outer = self.names
        self.names = {name: taint for name, taint in outer.items() if name not in bound}
        try:
            return walk()
        finally:
            self.names = outer

    def _attribute(self, expr: ast.Attribute, state: State, in_region: bool) -> Taint | None:
        base = self._expr(expr.value, state, in_region)
        if expr.attr in NON_TENSOR_ATTRS:
            return None
        if base is not None:
            return base.as_element() if base.container or base.parts else base
        types = self.index.infer(expr.value, self.fn)
        if not types or UNRESOLVED in types:  # (in part) an object of unresolved type: it may be any object
            return self.a.tainted_attr_of_any(expr.attr)
        for t in types:
            if isinstance(t, Instance):
                found = self.a.tainted_attr(t.cls, expr.attr)
                if found is not None:
                    return found
        return self.a.tainted_attr(None, expr.attr)

    def _run_implicit(self, anchor: ast.AST, state: State) -> None:
        """What Python runs at `anchor` in the region without the code naming it (a special method, a
        property, a generator's body: `ProjectIndex.implicit_calls`) runs in the region's mode: what that makes
        and keeps is the region's."""
        implicit = self.implicit[id(anchor)]
        for callee in self.index.implicit_functions(implicit.parts):
            if callee.is_async or callee.is_jit or self.a.states.decorator_mode(callee) == GradMode.INFERENCE:
                continue
            self.a.call_into(self.frame, callee, {}, state, anchor.lineno, inside=True,
                             how=f"run by {describe(implicit.use)} in")

    def _call(self, call: ast.Call, state: State, in_region: bool) -> Taint | None:
        site = self.sites.get(id(call))
        func = call.func
        method = func.attr if isinstance(func, ast.Attribute) else None
        receiver = self._expr(func.value, state, in_region) if isinstance(func, ast.Attribute) else (
            self._expr(func, state, in_region) if not isinstance(func, ast.Name) else None)
        self.consumed.update(id(g) for g in consumed_generators(call))
        args = [self._expr(a.value if isinstance(a, ast.Starred) else a, state, in_region) for a in call.args]
        kwargs = {kw.arg: self._expr(kw.value, state, in_region) for kw in call.keywords}
        seeded = self.frame.calls.get(id(call))
        if seeded is not None:
            return seeded
        passed = [*args, *kwargs.values()]
        tainted = _any(passed)
        resolved = site is not None and (site.callees or site.constructs)
        if isinstance(func, ast.Name) and func.id in self.names:  # a function value made in the region
            receiver = self.names[func.id]
        if site is not None and not in_region and state[0]:
            operands = [(func.value if isinstance(func, ast.Attribute) else func, receiver)]
            operands += [(a.value if isinstance(a, ast.Starred) else a, t)
                         for a, t in zip(call.args, args, strict=True)]
            operands += [(kw.value, kwargs.get(kw.arg)) for kw in call.keywords]
            self._check_unresolved(call, site, operands)

        stores = method in MODULE_STORES or (site is not None and site.external in PARAMETER_CLASSES)
        if stores and not in_region and state[1] and _is_inference(tainted):
            self.a.hazard(HazardKind.INPLACE, self.frame, call,
                          f"`{_short(call)}`, which keeps them in a module, where a "
                                                       "later `load_state_dict` updates them in place", 1, ERR_INPLACE)
        if method is not None and not resolved and (method in CONTAINER_STORE_METHODS or is_in_place(method)):
            self._note_stored(func.value, call, in_region)  # `acts.append(a)`, `x.add_(w)`: it holds `a`, `w` now
        if method in CONTAINER_STORE_METHODS and not resolved:
            if tainted is not None:
                self._store_into(func.value, tainted, call)
            return None
        if receiver is not None and not resolved:
            return self._tensor_method(call, method, receiver, tainted, state, in_region)
        if site is None:
            return self.a.region_value() if in_region else None

        if not in_region and tainted is not None and tainted.inference and state[0]:
            self._check_recording(call, site, passed)

        result = None
        # What runs in the region runs in its mode: there, a call of a value of unknown type is followed into
        # every project function it may reach.
        followed = self.index.possible_targets(site) if in_region else site.callees
        if followed and (tainted is not None or receiver is not None or in_region):
            for callee in followed:
                if callee.name == "__init__" and site.constructs and callee in site.callees or callee.is_async or \
                        callee.is_jit:
                    continue
                params = _map_arguments(callee, call, args, kwargs, receiver, site)
                # A callee that already runs under inference mode made inference tensors before the
                # rewrite too: only the region's own values are followed into it.
                inside = in_region and self.a.states.decorator_mode(callee) != GradMode.INFERENCE
                if not params and not inside:
                    continue
                result = _merge(result, self.a.call_into(self.frame, callee, params, state, call.lineno,
                                                         inside=inside,
                                                         grad_free=self._grad_free_params(callee, site)))
                if in_region and callee.is_cached:
                    self.a.schedule_callers_of_cached(callee, self.frame)
        if site.constructs and (tainted is not None or receiver is not None):
            result = _merge(result, (tainted or receiver).held())

        if in_region:
            return _merge(result, self._region_shaped(call))
        if site.external is not None:
            if site.external in VIEW_FUNCTIONS and tainted is not None:
                return tainted.as_element() if tainted.container else tainted
            if site.external.rpartition(".")[2] in CONTAINER_BUILDERS:
                return tainted.held() if tainted is not None else None
            return _merge(result, self._computed(passed, state) if site.external.startswith("torch.") else None)
        if isinstance(func, ast.Name) and func.id in CONTAINER_BUILDERS:
            return tainted.held() if tainted is not None else None
        if isinstance(func, ast.Name) and func.id in NON_TENSOR_BUILTINS:
            return None
        if site.module_types and not site.callees:
            return _merge(result, self._computed(passed, state))
        return result

    def _tensor_method(self, call: ast.Call, method: str | None, receiver: Taint, tainted: Taint | None,
                       state: State, in_region: bool) -> Taint | None:
        """A method the index cannot resolve, called on a region value: a tensor (or dict/list) method."""
        in_place = method is not None and is_in_place(method)
        if in_place and not in_region and state[1] and receiver.inference and not receiver.container:
            if method == "requires_grad_":
                self.a.hazard(HazardKind.INPLACE, self.frame, call, f"`{_short(call)}`", 1, ERR_REQUIRES_GRAD)
            else:
                self.a.hazard(HazardKind.INPLACE, self.frame, call, f"the in-place `{_short(call)}`", 1, ERR_INPLACE)
        if in_region:
            return self.a.region_value()
        if method in NON_TENSOR_METHODS:
            return None
        if method in ("get", "pop", "values", "items", "keys", "copy") and receiver.container:
            return receiver.as_element() if method in ("get", "pop") else receiver
        if method in VIEW_METHODS or in_place:
            return receiver
        return self._computed([receiver, tainted], state)

    def _check_unresolved(self, call: ast.Call, site: CallSite,
                          operands: list[tuple[ast.expr, Taint | None]]) -> None:
        """A call the index could not resolve, reached by the region's values on a grad-on path.

        Torch functions are judged by what they keep for backward: a region tensor and another operand that
        may require grad. Libraries that cannot record autograd pass. A method of a value of unknown type is
        judged the same way, as a tensor method whose receiver is one more operand (an object of unknown
        type may hold parameters, so it may require grad). Everything else may record autograd: a hazard
        that names the call.
        """
        carried = _any(taint for _, taint in operands)
        if carried is None or not (carried.inference or carried.graph):
            return
        if site.callees or site.constructs or site.module_types:
            return  # followed into, or judged as a module call
        func = call.func
        name = site.external
        if name is not None:
            if name.startswith(NON_AUTOGRAD_PREFIXES) or name in NON_SAVING_FUNCTIONS or name in VIEW_FUNCTIONS \
                    or name in GRAD_FREE_FACTORIES:
                return
            if name.startswith(TORCH_PREFIXES):
                if self._mixes(operands):
                    self.a.hazard(HazardKind.RECORD, self.frame, call,
                                  f"`{_short(call)}` (an operand may require grad)",
                                  0, ERR_SAVED)
                return
            self.a.note_unresolved(self.frame, call)
        if isinstance(func, ast.Name) and func.id in BUILTIN_NAMES and func.id not in self.names:
            return
        if isinstance(func, ast.Attribute) and all(isinstance(t, Container) or t is UNRESOLVED
                                                    for t in self.index.infer(func.value, self.fn)):
            # The receiver may be a tensor (or a container): judge it as a tensor method. An object of a
            # known class without that method is calling an attribute of unknown type instead.
            if func.attr in KNOWN_HARMLESS_METHODS:
                return
            if not carried.inference:
                if site.unresolved:  # only the graph is carried: it matters where a project method may take it
                    self.a.note_unresolved(self.frame, call)
                return
            if not self._mixes(operands):
                return  # no region tensor meets a value that may require grad: nothing is recorded with it
            if func.attr in SAVING_METHODS:
                self.a.hazard(HazardKind.RECORD, self.frame, call, f"`{_short(call)}` (an operand may require grad)",
                              0, ERR_SAVED)
        self.a.note_unresolved(self.frame, call)

    def _mixes(self, operands: list[tuple[ast.expr, Taint | None]]) -> bool:
        """Whether a region tensor may meet another operand that may require grad."""
        for position, (_, taint) in enumerate(operands):
            if taint is not None and taint.inference and any(
                    self._may_grad(expr) for other, (expr, _) in enumerate(operands) if other != position):
                return True
        return False

    def _check_recording(self, call: ast.Call, site: CallSite, passed: list) -> None:
        """A module with parameters, or an op with a parameter operand, on a grad-on path."""
        recording = [t for t in site.module_types if self.index.has_parameters(t) and not (
            isinstance(t, Instance) and t.cls.lookup("forward") is not None)]
        if recording:
            what = _describe_module(recording[0])
            self.a.hazard(HazardKind.RECORD, self.frame, call,
                          f"`{_short(call)}` ({what}, a module with parameters)", 0,
                          ERR_SAVED)

    # -- may a value require grad? ------------------------------------------------

    def _note_grad(self, target: ast.expr, value: ast.expr, in_region: bool) -> None:
        """Record whether the names an assignment binds may require grad afterwards."""
        if isinstance(target, ast.Name):
            names = [target.id]
        elif isinstance(target, (ast.Tuple, ast.List, ast.Starred)):
            names = [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
        else:  # `x[i] = v`: `x` now holds `v` (attributes are read as "may require grad" anyway)
            base = target
            while isinstance(base, ast.Subscript):
                base = base.value
            if not isinstance(base, ast.Name):
                return
            names = [base.id]
        grad = self._made_in_region_grad(value) if in_region else self._may_grad(value)
        for name in names:
            self.grad[name] = self.grad.get(name, False) or grad

    def _note_stored(self, receiver: ast.expr, call: ast.Call, in_region: bool) -> None:
        """A container or tensor that a call stores values into may require grad if one of them may."""
        base = receiver
        while isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name):
            grad = self._made_in_region_grad if in_region else self._may_grad
            operands = [*call.args, *(kw.value for kw in call.keywords)]
            self.grad[base.id] = self.grad.get(base.id, False) or any(grad(o) for o in operands)

    def _made_in_region_grad(self, expr: ast.expr) -> bool:
        """Under a grad-off mode a computed tensor never requires grad; an alias or a view of one may."""
        if isinstance(expr, (ast.Tuple, ast.List)):
            return any(self._made_in_region_grad(e.value if isinstance(e, ast.Starred) else e) for e in expr.elts)
        if isinstance(expr, ast.IfExp):
            return self._made_in_region_grad(expr.body) or self._made_in_region_grad(expr.orelse)
        if isinstance(expr, ast.Call):
            site = self.sites.get(id(expr))
            func = expr.func
            if site is not None and site.external is not None and site.external.startswith("torch."):
                return site.external in VIEW_FUNCTIONS and any(self._may_grad(a) for a in expr.args)
            if isinstance(func, ast.Attribute) and site is not None and not (site.callees or site.module_types):
                return func.attr in VIEW_METHODS and self._may_grad(func.value)
        if isinstance(expr, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.Constant)):
            return False
        return self._may_grad(expr)

    def _may_grad(self, expr: ast.expr | None) -> bool:
        """Whether `expr` may be a tensor that requires grad at this point of this frame."""
        return self.a.facts.may_grad(expr, self.fn, self._grad_lookup)

    def _grad_lookup(self, name: str) -> bool | None:
        if name in self.grad:
            return self.grad[name]
        if name in self.frame.grad_free_params:
            return False
        sources = self.index.local_names(self.fn).get(name)
        if sources and all(kind != "param" for kind, _ in sources):
            return False  # bound later in the body: the second pass sees that binding
        return None

    def _grad_free_params(self, callee: FunctionInfo, site: CallSite) -> frozenset:
        """The callee's parameters that this call passes values that cannot require grad."""
        call = site.node
        if any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords):
            return frozenset()
        free = set()
        for name in (a.arg for a in callee.params()):
            expr = argument_for(callee, site, name)
            if expr is not None and not self._may_grad(expr):
                free.add(name)
        return frozenset(free)


def _is_inference(*values: Taint | None) -> bool:
    """Whether one of the values is (or views) an inference tensor, not a container of them."""
    return any(v is not None and v.inference and not v.container for v in values)


def _global_names(fn: FunctionInfo) -> set[str]:
    names: set[str] = set()
    for node in fn.nodes:
        if isinstance(node, ast.Global):
            names.update(node.names)
    return names


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


def _map_arguments(callee: FunctionInfo, call: ast.Call, args: list, kwargs: dict, receiver: Taint | None,
                   site: CallSite) -> dict[str, Taint]:
    """Which of the callee's parameters receive region tensors."""
    params: dict[str, Taint] = {}
    node = callee.node.args
    positional = [a.arg for a in [*node.posonlyargs, *node.args]]
    bound_receiver = callee.receiver is not None and (
        isinstance(call.func, ast.Attribute) or site.module_types or callee.name in ("forward", "__call__", "__init__")
    )
    if bound_receiver and positional:
        if receiver is not None:
            params[positional[0]] = receiver
        positional = positional[1:]
    starred = False
    for position, (expr, taint) in enumerate(zip(call.args, args, strict=True)):
        if isinstance(expr, ast.Starred):
            starred = True
            if taint is not None:
                for name in positional[position:]:
                    params[name] = taint.as_element()
                if node.vararg:
                    params[node.vararg.arg] = taint.held()
            continue
        if taint is None or starred:
            continue
        if position < len(positional):
            params[positional[position]] = taint
        elif node.vararg:
            params[node.vararg.arg] = taint.held()
    names = {a.arg for a in [*node.posonlyargs, *node.args, *node.kwonlyargs]}
    for kw in call.keywords:
        taint = kwargs.get(kw.arg)
        if taint is None:
            continue
        if kw.arg is None:  # **mapping: every keyword parameter may receive one
            for name in names:
                if name != callee.receiver:
                    params[name] = taint.as_element()
            if node.kwarg:
                params[node.kwarg.arg] = taint.held()
        elif kw.arg in names:
            params[kw.arg] = taint
        elif node.kwarg:
            params[node.kwarg.arg] = taint.held()
    return params
