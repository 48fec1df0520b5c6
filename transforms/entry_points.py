"""Put `@torch.inference_mode()` on inference methods that still run their modules with autograd on.

Id: `entry-points`

Rewrites
--------
A *candidate* is a public method (not `forward`, `__call__`, `__init__`, a
property, a classmethod or a `from_*`/`load*` loader, and not already under a
grad decorator) that, entered with autograd on, reaches a call of a module
with parameters outside every grad-off region, in its own body or through the
functions it calls. Every such call records a graph and keeps activations for
a backward pass that never comes.

A candidate is reported where the grad-on region *starts*: it has no caller in
the project (public API) or is called on a grad-on path. Each one is judged
against the grad states of the code as it is, as if its whole body ran under
inference mode, through the same hazard analysis as a `no_grad` site; safe
ones get `@torch.inference_mode()` (the innermost decorator, spelled the way
the file refers to torch). Nesting is harmless: `prepare_conditionals` and the
`embed_ref` it calls can both be decorated, since each is called on its own.

The regions added here are seen by the `inference-mode` transform in the same
run (so a `no_grad` site whose tensors only flow into them can be converted).

Refuses
-------
- `unsafe`, never fixable: the method writes persistent state (builds modules,
  loads weights, rebinds parameter data, registers buffers, moves modules) or
  switches autograd back on; or it is training code, recognised by what it
  does, not by its name: it runs a backward pass (`.backward()`,
  `torch.autograd.grad`), steps an optimizer or grad scaler, calls a loss (a
  `torch.nn` loss module, a `torch.nn.functional` loss, or a callable bound to a
  name that says `loss` or `criterion`), or returns what such a function
  returns; or it is reached from training code (the reason names the path); or
  it is defined more than once (which definition runs is decided at run time).
  One such hazard is enough to refuse: the reason names the first the analysis
  finds, which looks no further.
- `unsafe`, fixable: a tensor it returns or stores meets, with autograd on, a
  value that may require grad in an operation that keeps it for backward, or an
  in-place update outside inference mode; or a value computed from its results
  with autograd on becomes the output of a `forward` that callers may train
  (the rewrite would silently cut the graph into the parameters the method
  uses); or something the analysis cannot resolve: a call it cannot follow, or
  the method itself referenced as a value (`model.forward = model.forward_dpo`,
  a callback, a `getattr` by a computed name), whose callers it cannot see; or
  library code it runs (or a call of a value of unknown type, which may be
  library code) that may keep a tensor it makes, as a cache does: outside
  torch, the libraries that make no torch tensors and those listed under
  `stateless-libraries` in `[tool.chatterbox-codemod]`, the analysis cannot
  see what a library keeps.
- `not-applicable`: covered (every caller in the project already runs it
  grad-off), or the method opens its own grad-off region (its author drew the
  boundary by hand; the tool judges the methods it calls on the grad-on side
  instead, e.g. `prepare_conditionals` rather than `generate`).
- `suppressed`: listed under `exclude` in `[tool.chatterbox-codemod.entry-points]`
  of the target project's `pyproject.toml` (or a skip comment on the `def` line).
  `include` there adds methods (qualified `pkg.mod.Class.method` or `Class.method`
  patterns) to the candidates even when the analysis would not pick them.

Fix safety
----------
`applied` methods keep the soundness contract (docs/soundness.md): nothing they
return or store meets autograd or an in-place update outside inference mode on
any path by which project code reaches them, no training code reaches them, and
nothing they touch on a grad-on path was left unresolved. Their return values
become inference tensors; when they go to callers outside the project the
reason says so, because such a caller must not modify them in place or feed
them to a backward pass.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Sequence

import libcst as cst
from chatterbox_codemod.analysis import (
    GRAD_OFF_MODES,
    TORCH_PREFIXES,
    CallSite,
    External,
    FlowAnalyzer,
    FunctionInfo,
    GradStates,
    HazardKind,
    ProjectIndex,
    Region,
    judge_all,
    screen,
)
from chatterbox_codemod.report import Site, Status

from .base import (
    AnalysisContext,
    DefinitionAnchor,
    EraseGradModes,
    Finding,
    Option,
    Transform,
    edit_definition,
    ensure_torch,
    inference_mode_call,
    local_qualname,
)

NEVER_CANDIDATES = frozenset({"forward", "__call__", "__init__"})
OPTIMIZER_HINTS = ("optim", "scaler", "opt")
FUNCTIONAL_LOSSES = frozenset({
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss", "cross_entropy",
    "ctc_loss", "gaussian_nll_loss", "hinge_embedding_loss", "huber_loss", "kl_div", "l1_loss", "margin_ranking_loss",
    "mse_loss", "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss", "nll_loss",
    "poisson_nll_loss", "smooth_l1_loss", "soft_margin_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
})


class EntryPoints(Transform):
    id = "entry-points"
    options = (
        Option("include", list, "methods to consider even when the analysis would not pick them "
                                "(`pkg.mod.Class.method` or `Class.method` patterns)"),
        Option("exclude", list, "methods never to decorate"),
    )
    analysis_order = 0
    rewrite_order = 1

    @classmethod
    def erase_owned(cls, tree: ast.Module, findings: Sequence[Finding] = ()) -> ast.Module:
        return EraseGradModes().visit(tree)

    @classmethod
    def may_find_sites(cls, tree: ast.Module, settings: dict, project: screen.ProjectFacts) -> bool:
        return bool(settings.get("include")) or any(_candidate_name(fn.name) for fn in screen.methods(tree))

    def analyze(self, context: AnalysisContext) -> list[Finding]:
        index = context.index
        include = context.settings.get("include", [])
        exclude = context.settings.get("exclude", [])
        reach = _WorkFinder(index, context.where)

        considered = [fn for fn in index.functions.values() if fn.module.path in context.targets and
                      fn.grad_decorator is None and (_is_candidate_shape(fn) or _matches(fn, include))]
        candidates = [fn for fn in considered if _matches(fn, include) or reach.work_of(fn) is not None]
        findings: dict[int, Finding] = {}
        undecided: dict[int, FunctionInfo] = {}
        for fn in candidates:
            findings[id(fn)] = _new_finding(self.id, fn)
            site = findings[id(fn)].site
            if _matches(fn, exclude):
                site.status = Status.SUPPRESSED
                site.reason = "listed under `exclude` in [tool.chatterbox-codemod.entry-points]"
            elif (own := _own_grad_region(index, fn)) is not None:
                site.status = Status.NOT_APPLICABLE
                site.reason = (f"{fn.short} opens its own grad-off region at line {own}; the tool keeps the "
                               "author's boundary and looks at the methods it calls on the grad-on side instead")
            else:
                undecided[id(fn)] = fn

        # Every start is judged against the grad states of the code as it is (plus the regions of
        # earlier transforms): a method whose every caller runs grad-off is covered already.
        states = GradStates(index, context.inference_regions)
        flow = FlowAnalyzer(index, states, context.where, follow_graph=True,
                            stateless_libraries=context.stateless_libraries)
        judged: list[FunctionInfo] = []
        for fn in undecided.values():
            if not states.entry(fn)[0] and not _matches(fn, include):
                site = findings[id(fn)].site
                site.status = Status.NOT_APPLICABLE
                site.reason = (f"covered: every caller in the project already runs {fn.short} grad-off "
                               f"({_covering_callers(index, states, fn)})")
            else:
                judged.append(fn)
        if not judged:  # the project-wide facts below are found only for candidates that need them
            return list(findings.values())
        training = _training_functions(index)
        trained_from = _reached_from(index, training)

        def judge(fn: FunctionInfo) -> tuple[Site, bool]:
            finding = findings[id(fn)]
            self._judge(finding, fn, states, flow, reach, training, trained_from)
            return finding.site, finding.region is fn

        for fn, (site, decorated) in zip(judged, judge_all(judge, judged, context.jobs), strict=True):
            findings[id(fn)].site = site
            findings[id(fn)].region = fn if decorated else None
        return list(findings.values())

    def _judge(self, finding: Finding, fn: FunctionInfo, states: GradStates, flow: FlowAnalyzer, reach: _WorkFinder,
               training: dict[int, str], trained_from: dict[int, list[str]]) -> None:
        site = finding.site
        work = reach.work_of(fn)
        what = (f"{fn.short} runs modules with autograd on ({work})" if work else
                f"{fn.short} is listed under `include` in [tool.chatterbox-codemod.entry-points]")
        escape = flow.index.escape_of(fn)
        if fn.qualname.partition("@")[0] in flow.index.redefined:
            site.status, site.fixable = Status.UNSAFE, False
            site.hazard, site.subject = HazardKind.UNRESOLVED, fn.short
            site.reason = (f"{what}, but {fn.short} is defined more than once in its module; which definition runs "
                           "is decided at run time, so the tool does not decorate it.")
            return
        if escape is not None:
            where, node = escape
            site.status = Status.UNSAFE
            site.hazard, site.subject = HazardKind.UNRESOLVED, ast.unparse(node)
            site.reason = (f"{what}, but cannot resolve its callers: it is referenced as a value "
                           f"(`{ast.unparse(node)}` at {flow.where(where, node.lineno)}), so it may be called from "
                           "training code the analysis cannot follow; check by hand.")
            return
        if id(fn) in training:
            site.status, site.fixable = Status.UNSAFE, False
            site.hazard, site.subject = HazardKind.TRAINING, fn.short
            site.reason = (f"{what}, but it is training code ({training[id(fn)]}); inference mode would break its "
                           "backward pass.")
            return
        report = flow.analyze(Region(fn))
        notes = f" Note: {'; '.join(report.notes)}." if report.notes else ""
        if report.safe and id(fn) not in trained_from:
            site.status = Status.APPLIED
            site.reason = (f"{what}, and nothing it returns or stores reaches autograd or an in-place update "
                           f"outside inference mode: decorated with @torch.inference_mode().{notes}")
            finding.region = fn
            return
        site.status = Status.UNSAFE
        problems = []
        if not report.safe:
            first = next((h for h in report.hazards if not h.fixable), report.hazards[0])
            # The first hazard no fix can make safe settles it; the analysis looks no further (EffectScanner.scan).
            more = f" (and {len(report.hazards) - 1} more hazard(s))" if first.fixable and len(report.hazards) > 1 \
                else ""
            subject = "it " if first.kind in (HazardKind.STATE, HazardKind.GRAD) else ""
            problems.append(f"{subject}{first.message}{more}")
            site.hazard, site.subject = first.kind, first.subject
        if id(fn) in trained_from:
            if report.safe:
                site.hazard, site.subject = HazardKind.TRAINING, trained_from[id(fn)][0]
            problems.append(f"it is reached from training code ({' -> '.join(trained_from[id(fn)])}), whose "
                            "graph inference mode would cut")
        site.fixable = report.fixable and id(fn) not in trained_from
        site.reason = f"{what}, but {'; and '.join(problems)}.{notes}"

    def rewrite(self, module: cst.Module, findings: Sequence[Finding]) -> cst.Module:
        module, torch = ensure_torch(module)

        def decorate(node: cst.FunctionDef) -> cst.FunctionDef:
            return node.with_changes(decorators=[*node.decorators, cst.Decorator(decorator=inference_mode_call(torch))])

        for finding in findings:
            module = edit_definition(module, finding.anchor.scope, decorate)
        return module


def _new_finding(transform_id: str, fn: FunctionInfo) -> Finding:
    site = Site(transform=transform_id, path=fn.module.path, line=fn.node.lineno, symbol=fn.short,
                status=Status.NOT_APPLICABLE, reason="")
    return Finding(site, DefinitionAnchor(local_qualname(fn.qualname, fn.module).split("@")[0]),
                   suppress_lines=tuple(sorted({fn.node.lineno, *(d.lineno for d in fn.node.decorator_list)})))


def _is_candidate_shape(fn: FunctionInfo) -> bool:
    """Public methods that could be inference entry points."""
    if not fn.is_method or not _candidate_name(fn.name):
        return False
    if fn.is_async or fn.is_jit or fn.is_classmethod or fn.grad_decorator is not None:
        return False
    return not any(d in ("property", "functools.cached_property") or (d or "").endswith(".setter")
                   for d in fn.decorators)


def _candidate_name(name: str) -> bool:
    """A public method's name, not one of the methods the module protocol or a loader runs."""
    return not name.startswith(("_", "from_", "load")) and name not in NEVER_CANDIDATES


def _matches(fn: FunctionInfo, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(fn.qualname, p) or fnmatch.fnmatchcase(fn.short, p) for p in patterns)


def _own_grad_region(index: ProjectIndex, fn: FunctionInfo) -> int | None:
    for node in fn.nodes:
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if index.grad_mode_of(fn.module, item.context_expr, fn) in GRAD_OFF_MODES:
                    return node.lineno
    return None


def _covering_callers(index: ProjectIndex, states: GradStates, fn: FunctionInfo) -> str:
    names = []
    for site in index.callers_of(fn):
        caller = site.caller
        how = ("decorated by an earlier transform" if id(caller) in states.overlay else
               "under its decorator" if states.decorator_mode(caller) in GRAD_OFF_MODES else
               "inside a grad-off block" if site.modes else "itself called grad-off")
        names.append(f"{caller.short}, {how}")
    return "; ".join(dict.fromkeys(names)) or "no callers"


class _WorkFinder:
    """Whether a function, entered with autograd on, reaches a module call that records autograd."""

    def __init__(self, index: ProjectIndex, where):
        self.index = index
        self.where = where
        self._memo: dict[int, list[str] | None] = {}
        self._cycle_hits: set[int] = set()

    def work_of(self, fn: FunctionInfo) -> str | None:
        """The call chain to the first grad-on module call `fn` reaches (`A -> B -> self.conv(...)`), or None."""
        chain = self._search(fn, [])
        return " -> ".join(chain) if chain else None

    def _search(self, fn: FunctionInfo, active: list[int]) -> list[str] | None:
        """Depth-first; a "no work" answer is kept only when no open call cycle could still change it,
        so the answer does not depend on which function was asked first."""
        if id(fn) in self._memo:
            return self._memo[id(fn)]
        if id(fn) in active:
            self._cycle_hits.add(id(fn))
            return None
        if fn.grad_decorator in GRAD_OFF_MODES:
            return None
        active.append(id(fn))
        hits_before = set(self._cycle_hits)
        found = None
        for site in fn.calls:
            if any(mode in GRAD_OFF_MODES for mode in site.modes):
                continue
            if any(self._records(t) for t in site.module_types):
                found = [f"`{site.describe()}(...)` ({self.where(fn, site.line)})"]
                break
            for callee in site.callees:
                if callee.name == "__init__":
                    continue
                inner = self._search(callee, active)
                if inner is not None:
                    found = [callee.short, *inner]
                    break
            if found:
                break
        active.pop()
        open_cycle = any(key in active for key in self._cycle_hits - hits_before)
        if found is not None or not open_cycle:
            self._memo[id(fn)] = found
        return found

    def _records(self, t) -> bool:
        """A module known to hold parameters; an object of an unknown library class is no evidence of work."""
        if isinstance(t, External):
            return t.name.startswith(TORCH_PREFIXES) and self.index.has_parameters(t)
        return self.index.has_parameters(t)


def _training_functions(index: ProjectIndex) -> dict[int, str]:
    """Functions that are training code, recognised by what they do, with what shows it.

    A function that runs a backward pass (`.backward()`, `torch.autograd.grad`), steps an optimizer or a
    grad scaler, or calls a loss (a `torch.nn` loss module, a `torch.nn.functional` loss, or a callable
    bound to a name that says `loss` or `criterion`); and a function that returns what such a function
    returns (`return self.compute_loss(...)`), to a fixed point.
    """
    found: dict[int, str] = {}
    for fn in index.functions.values():
        why = _training_evidence(index, fn)
        if why:
            found[id(fn)] = why
    # Only a function that calls training code can return what it returns; the shape of its calls and
    # returns is read once, the first time it does.
    shapes: dict[int, _ResultShape] = {}
    called = {id(fn): {id(c) for site in fn.calls for c in site.targets} for fn in index.functions.values()}
    changed = True
    while changed:
        changed = False
        for fn in index.functions.values():
            if id(fn) in found or found.keys().isdisjoint(called[id(fn)]):  # iterates the smaller side
                continue
            if id(fn) not in shapes:
                shapes[id(fn)] = _ResultShape(fn)
            why = shapes[id(fn)].returns_training_result(found)
            if why:
                found[id(fn)] = why
                changed = True
    return found


def _training_evidence(index: ProjectIndex, fn: FunctionInfo) -> str | None:
    for site in fn.calls:
        func = site.node.func
        if isinstance(func, ast.Attribute):
            if func.attr == "backward":
                return f"calls `{ast.unparse(func)}()` at line {site.line}"
            if func.attr == "step" and _looks_like_optimizer(index, fn, func.value):
                return f"calls `{ast.unparse(func)}()` at line {site.line}"
        if site.external in ("torch.autograd.grad", "torch.autograd.backward"):
            return f"calls `{site.external}` at line {site.line}"
        loss = _loss_called(site)
        if loss:
            return f"calls the loss `{loss}` at line {site.line}"
    return None


def _loss_called(site) -> str | None:
    """The loss a call computes: a torch loss function or module, or a callable named like one."""
    name = site.external or ""
    last = name.rpartition(".")[2]
    if name.startswith("torch.nn.functional.") and last in FUNCTIONAL_LOSSES:
        return name
    if any(isinstance(t, External) and t.name.startswith("torch.nn.") and t.name.endswith("Loss")
           for t in site.module_types):
        return ast.unparse(site.node.func)
    called = site.node.func
    spelled = called.attr if isinstance(called, ast.Attribute) else called.id if isinstance(called, ast.Name) else ""
    if "loss" in spelled.lower() or "criterion" in spelled.lower():
        return ast.unparse(called)
    return None


class _ResultShape:
    """What a function returns, as far as training code is concerned: the calls whose results it binds to
    names, and the calls and names its `return` statements read (in the order they are read)."""

    def __init__(self, fn: FunctionInfo) -> None:
        self.calls = [site for site in fn.calls if site.targets]
        self.site_of: dict[int, CallSite] = {}
        for site in fn.calls:
            self.site_of.setdefault(id(site.node), site)
        self.bound: dict[int, list[str]] = {}  # id(call) -> the names `name = call(...)` binds
        self.returned: list[ast.Call | ast.Name] = []
        for node in fn.nodes:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                self.bound[id(node.value)] = [name.id for target in node.targets for name in ast.walk(target)
                                              if isinstance(name, ast.Name)]
            elif isinstance(node, ast.Return) and node.value is not None:
                self.returned.extend(sub for sub in ast.walk(node.value) if isinstance(sub, (ast.Call, ast.Name)))

    def returns_training_result(self, training: dict[int, str]) -> str | None:
        """`return f(...)` (or a name bound to it) where `f` is training code: the caller returns a loss too."""
        results: dict[str, str] = {}
        for site in self.calls:
            trained = next((c for c in site.targets if id(c) in training), None)
            if trained is not None:
                for name in self.bound.get(id(site.node), ()):
                    results[name] = trained.short
        for sub in self.returned:
            if isinstance(sub, ast.Call):
                site = self.site_of.get(id(sub))
                trained = next((c for c in site.targets if id(c) in training), None) if site else None
                if trained is not None:
                    return f"returns what {trained.short} returns, a loss"
            elif sub.id in results:
                return f"returns what {results[sub.id]} returns, a loss"
        return None


def _looks_like_optimizer(index: ProjectIndex, fn: FunctionInfo, receiver: ast.expr) -> bool:
    for t in index.infer(receiver, fn):
        if isinstance(t, External) and (t.name.startswith("torch.optim.") or "GradScaler" in t.name):
            return True
    text = ast.unparse(receiver).lower()
    return any(hint in text.rsplit(".", 1)[-1] for hint in OPTIMIZER_HINTS)


def _reached_from(index: ProjectIndex, training: dict[int, str]) -> dict[int, list[str]]:
    """Functions reachable from training code, with one path each (training function first)."""
    paths: dict[int, list[str]] = {}
    queue = [fn for fn in index.functions.values() if id(fn) in training]
    for fn in queue:
        paths.setdefault(id(fn), [fn.short])
    while queue:
        fn = queue.pop(0)
        for site in fn.calls:
            for callee in site.targets:
                if id(callee) not in paths:
                    paths[id(callee)] = [*paths[id(fn)], callee.short]
                    queue.append(callee)
    return {key: path for key, path in paths.items() if key not in training}
