"""Turn `torch.no_grad()` into `torch.inference_mode()` where no inference tensor can meet autograd.

Id: `inference-mode`

Rewrites
--------
Every form in which code switches grad off for a region:

- decorators `@torch.no_grad()`, `@torch.no_grad`, `@torch.autograd.no_grad()`,
  `@torch.autograd.grad_mode.no_grad()`, `@no_grad()` after `from torch import no_grad`
  (aliases too: `import torch as th`, `from torch import no_grad as ng`), and
  `@torch.set_grad_enabled(False)`;
- `with torch.no_grad():`, with `as`, as one item of a multi-item `with` (the other
  items are kept), nested, and `with torch.set_grad_enabled(False):`.

The result is always `torch.inference_mode()` with parentheses (a bare
`@torch.inference_mode` needs torch >= 2.1), spelled the way the file already
refers to torch (`th.inference_mode()` after `import torch as th`). `import torch`
is added when the file has no name for torch, and an import of `no_grad` that
becomes unused is removed. Nothing else in the file changes.

Refuses
-------
- `unsafe`, never fixable: the region puts new tensors into a module or
  switches autograd back on: rebinds `.data` (the parameter would hold an
  inference tensor and silently stop receiving gradients), builds modules or
  parameters, `register_buffer`/`register_parameter`, `load_state_dict(...,
  assign=True)`, `torch.load`, moves or casts a module, `torch.enable_grad`,
  `set_grad_enabled(True)`, `requires_grad_`, `.backward`,
  `torch.autograd.grad`. Writes into existing storage (`p.copy_(...)`,
  `p.data.copy_(...)`, `fill_`, `torch.nn.init.*`, `load_state_dict` without
  `assign=True`) are not hazards: the parameter stays a normal tensor that
  trains as before (checked at run time in tests/test_torchapi.py). One such
  hazard is enough to refuse, so the reason names the first (in the region's
  own code, else in the first thing it runs that has one) and the analysis
  looks no further.
- `unsafe`, fixable: a tensor made in the region escapes it (assigned and used
  after the `with`, returned, stored on `self` or another object, in a
  module-level cache or a container) and, on some call path where autograd is
  on, meets a value that may require grad in an operation that keeps its
  inputs for backward: a module with parameters, `*`, `/`, `@`, `matmul`,
  `einsum`, indexing, `masked_fill`/`where` with the region's mask, ... The
  value may be a parameter or any activation computed from one, or an argument
  a caller in the project passes (`+`, `-` and `cat` keep nothing and pass).
  Also: it is modified in place outside inference mode; or it reaches
  something the analysis cannot resolve (a call through a value of unknown
  type, a library function, a function referenced as a value: passed on under
  any name, looked up with `getattr`, handed to a decorator; a lambda that
  returns the region's tensors), which is named with "cannot resolve ...;
  check by hand". Code that runs later (a lambda's body, a generator's) counts
  as running with autograd on; a `with` region that yields is unsafe (the code
  iterating the generator runs in the region's mode while it is suspended).
  So does a function Python or a library may call where the code does not
  name it: a module's `forward` (or a `__call__`, an `__init__`) that a call
  of a value of unknown type or a library callable such as `map` or
  `checkpoint` may run, a special method (`t[i]`, operators) or a property.
  The reason names the use, the file and line, and the caller chain that runs
  with autograd on.
  A call in the region of a value of unknown type (`m(x)`, `m.remember(x)`)
  is followed into every project function it may run, in the region's mode:
  what those store and return is judged as the region's own. So is what
  Python runs in the region where the code does not name it: a special method
  (`t[i]`, `a + b`, `with x:`, `len(x)`), a property, and what iterating a
  value may run (a generator's body, made outside the region and iterated in
  it; a generator expression's elements; an `__iter__`).
  Library code the region runs, or a call of a value of unknown type, which
  may be library code, is a hazard of its own (`library`): it may keep a
  tensor it makes there (a cache, a buffer it extends on demand), which would
  be an inference tensor wherever it is used again outside inference mode.
  torch's own code, libraries that make no torch tensors (numpy, librosa,
  ...), einops, tqdm and those listed under `stateless-libraries` in the
  configuration are known to keep none; so are nn.Module's accessors
  (`parameters()`, `eval()`) and, on a value of unknown type, the methods of
  tensors, modules, strings, containers, files and loggers.
- `not-applicable`: `async def` bodies (neither mode reaches a coroutine's
  body), TorchScript (`torch.jit.script`, `@torch.jit.export`,
  `@torch.jit.script_method`: scripting rejects `inference_mode`),
  `set_grad_enabled` with a flag that is not the literal `False`, a bare
  `torch.set_grad_enabled(False)` statement, `no_grad` used as a value
  (`ctx = torch.no_grad()`), which the tool does not follow, and a grad-off
  item or decorator next to one that already is (or becomes) `inference_mode`,
  which would only repeat it.

Fix safety
----------
`applied` sites keep the soundness contract (docs/soundness.md): on every path
by which code in the project can reach the region, no tensor it makes reaches
an operation that records autograd, an in-place update outside inference mode,
a `requires_grad` change or a backward pass. Whatever the analysis cannot
resolve makes the site `unsafe`, never `applied`. Two boundary assumptions
about code outside the project are stated in the contract: a function with no
caller in the project is called with autograd on, with arguments that do not
require grad; tensors it returns to such callers are noted in the reason.
`--unsafe-fixes` also rewrites fixable `unsafe` sites; review them, because
each names a code path that raises once converted, or a call to check by hand.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst
from chatterbox_codemod.analysis import (
    NO_GRAD,
    SET_GRAD_ENABLED,
    FlowAnalyzer,
    FunctionInfo,
    GradMode,
    ModuleInfo,
    Region,
    judge_all,
    screen,
)
from chatterbox_codemod.report import Site, Status

from .base import (
    AnalysisContext,
    Anchor,
    EraseGradModes,
    Finding,
    StatementTransformer,
    Transform,
    ensure_torch,
    inference_mode_call,
    remove_unused_imports,
    torch_name,
)

ASYNC_REASON = (
    "inside an `async def`: neither no_grad nor inference_mode reaches the body of a coroutine "
    "(grad mode is thread-local and the body runs later)"
)
# `from torch import no_grad`-like imports that a rewrite may leave unused.
GRAD_SWITCH_MODULES = frozenset({"torch", "torch.autograd", "torch.autograd.grad_mode"})
GRAD_SWITCH_NAMES = frozenset({"no_grad", "set_grad_enabled"})
JIT_REASON = "in a TorchScript function: scripting rejects `inference_mode` (and drops decorators silently)"


class InferenceMode(Transform):
    id = "inference-mode"
    analysis_order = 1
    rewrite_order = 0
    iterate = True

    @classmethod
    def erase_owned(cls, tree: ast.Module, findings: Sequence[Finding] = ()) -> ast.Module:
        return EraseGradModes(frozenset(f.anchor.expr for f in findings if isinstance(f.anchor, GradSwitchAnchor))
                              ).visit(tree)

    @classmethod
    def may_find_sites(cls, tree: ast.Module, settings: dict, project: screen.ProjectFacts) -> bool:
        return screen.may_refer_to_grad_api(tree, project)  # every site is a grad-mode function the file refers to

    def analyze(self, context: AnalysisContext) -> list[Finding]:
        findings: list[Finding] = []
        regions: list[tuple[Finding, Region, str]] = []  # the sites to judge, with their regions
        for module in context.target_modules():
            for fn in context.index.functions_of(module):
                findings.extend(self._function_sites(context, fn, regions))
            findings.extend(self._value_uses(context, module))
        _judge_all(context, FlowAnalyzer(context.index, context.grad_states(), context.where, settled_by_effects=True,
                                           stateless_libraries=context.stateless_libraries),
                   regions)
        return findings

    def _function_sites(self, context: AnalysisContext, fn: FunctionInfo,
                        regions: list[tuple[Finding, Region, str]]) -> list[Finding]:
        index = context.index
        findings: list[Finding] = []
        blocked = ASYNC_REASON if fn.is_async or _inside_async(fn) else (
            JIT_REASON if _is_torchscript(fn) else None)
        for node in fn.node.decorator_list:
            mode = index.grad_mode_of(fn.module, node, fn)
            spelled = ast.unparse(node)
            if mode != GradMode.NO_GRAD and not _is_flag_grad_switch(index, fn.module, node, fn):
                continue
            site = Site(transform=self.id, path=fn.module.path, line=node.lineno, symbol=fn.short,
                        status=Status.APPLIED, reason="")
            finding = Finding(site, _anchor(context, fn.module, "decorator", node, node),
                              suppress_lines=(node.lineno, fn.node.lineno))
            if mode != GradMode.NO_GRAD:
                site.status, site.reason = Status.NOT_APPLICABLE, f"`@{spelled}`: the flag is not the literal False"
            elif _repeats(index, fn, fn.node.decorator_list, fn.node.decorator_list.index(node)):
                site.status, site.reason = Status.NOT_APPLICABLE, (
                    f"`@{spelled}`: {fn.short} already has an `inference_mode` decorator (or a grad-off one that "
                    "becomes it); converting this one would only repeat it")
            elif blocked:
                site.status, site.reason = Status.NOT_APPLICABLE, blocked
            else:
                regions.append((finding, Region(fn), f"`@{spelled}` on {fn.short}"))
                finding.region = fn
            findings.append(finding)
        for node in fn.nodes:
            if isinstance(node, (ast.With, ast.AsyncWith)):
                for position, item in enumerate(node.items):
                        findings.extend(self._with_site(context, fn, node, position, item, blocked, regions))
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and \
                    index.qualify(fn.module, node.value.func, fn) in SET_GRAD_ENABLED:
                findings.append(Finding(Site(
                    transform=self.id, path=fn.module.path, line=node.lineno, symbol=fn.short,
                    status=Status.NOT_APPLICABLE, fixable=False,
                    reason=f"`{ast.unparse(node.value)}` switches grad for the rest of the thread, not for a "
                           "region; only decorators and `with` blocks are rewritten",
                ), suppress_lines=(node.lineno,)))
        return findings

    def _with_site(self, context, fn, node, position, item, blocked, regions) -> list[Finding]:
        index = context.index
        expr = item.context_expr
        mode = index.grad_mode_of(fn.module, expr, fn)
        if mode != GradMode.NO_GRAD and not _is_flag_grad_switch(index, fn.module, expr, fn):
            return []
        spelled = ast.unparse(expr)
        site = Site(transform=self.id, path=fn.module.path, line=expr.lineno, symbol=fn.short, status=Status.APPLIED,
                    reason="")
        finding = Finding(site, _anchor(context, fn.module, "with", node, expr, position),
                          suppress_lines=tuple(sorted({node.lineno, expr.lineno})))
        if mode != GradMode.NO_GRAD:
            site.status, site.reason = Status.NOT_APPLICABLE, f"`with {spelled}`: the flag is not the literal False"
        elif _repeats(index, fn, [item.context_expr for item in node.items], position):
            site.status, site.reason = Status.NOT_APPLICABLE, (
                f"`with {spelled}`: the same `with` already enters `inference_mode` (or a grad-off item that becomes "
                "it); converting this item would only repeat it")
        elif isinstance(node, ast.AsyncWith) or blocked:
            site.status, site.reason = Status.NOT_APPLICABLE, blocked or ASYNC_REASON
        else:
            regions.append((finding, Region(fn, node, position), f"`with {spelled}` in {fn.short}"))
            finding.region = expr
        return [finding]

    def _value_uses(self, context: AnalysisContext, module: ModuleInfo) -> list[Finding]:
        """`no_grad` referenced other than as a decorator or `with` item: reported, never rewritten."""
        index = context.index
        names = {"no_grad"} | {name for name, target in module.imports.items() if index.canonical(target) in NO_GRAD}
        references = [(fn, node) for name in names for fn, node in index.loads(name) if fn.module is module
                      and (isinstance(node, ast.Attribute) or node.id in names)]
        if not references:
            return []
        handled: set[int] = set()
        for fn in index.functions_of(module):
            for node in fn.node.decorator_list:
                if index.grad_mode_of(module, node, fn):
                    handled.update(id(n) for n in ast.walk(node))
            for node in fn.nodes:
                if isinstance(node, (ast.With, ast.AsyncWith)):
                    for item in node.items:
                        if index.grad_mode_of(module, item.context_expr, fn):
                            handled.update(id(n) for n in ast.walk(item.context_expr))
        sites = []
        for fn, node in sorted(references, key=lambda pair: (pair[1].lineno, pair[1].col_offset)):
            if id(node) in handled or index.qualify(module, node, fn) not in NO_GRAD:
                continue
            sites.append(Finding(Site(
                transform=self.id, path=module.path, line=node.lineno, symbol=fn.short,
                status=Status.NOT_APPLICABLE, fixable=False,
                reason=f"`{ast.unparse(node)}` is used as a value here, not as a decorator or `with` item; the "
                       "tool does not follow where it is entered, so it is left alone",
            ), suppress_lines=(node.lineno,)))
        return sites

    # -- rewrite ---------------------------------------------------------------

    def rewrite(self, module: cst.Module, findings: Sequence[Finding]) -> cst.Module:
        torch = torch_name(module) or "torch"
        replacer = _Replacer([f.anchor for f in findings], torch)
        rewritten = module.visit(replacer)
        if replacer.pending:
            missing = min(replacer.pending.values(), key=lambda anchor: anchor.line)
            raise LookupError(f"site at line {missing.line} not found in the parsed file")
        rewritten, _ = ensure_torch(rewritten)
        return remove_unused_imports(rewritten, GRAD_SWITCH_MODULES, GRAD_SWITCH_NAMES)


@dataclass(frozen=True)
class GradSwitchAnchor(Anchor):
    """A grad-mode decorator, or one item of a `with`: its rank among the file's decorators or `with`
    statements (both ASTs list them in source order, outer before inner), and the expression as `ast.dump`
    shows it, so a rewrite never replaces anything but what the analysis saw."""

    kind: str  # "decorator" or "with"
    rank: int
    expr: str
    line: int
    item: int | None = None  # which item of the `with`

    def locate(self, module: cst.Module) -> cst.Decorator | cst.WithItem:
        finder = _Replacer([self], torch=None)
        module.visit(finder)
        if self not in finder.found:
            raise LookupError(f"site at line {self.line} not found in the parsed file")
        return finder.found[self]


class _Replacer(StatementTransformer):
    """Puts `<torch>.inference_mode()` in place of the anchored decorators and `with` items (with `torch`
    None, only finds them: `found`), and leaves an anchor pending when the expression there is not the one
    the analysis saw."""

    def __init__(self, anchors: Sequence[GradSwitchAnchor], torch: str | None):
        super().__init__()
        self.pending = {(a.kind, a.rank, a.item): a for a in anchors}
        self.found: dict[GradSwitchAnchor, cst.CSTNode] = {}
        self.torch = torch
        self.counts = {"decorator": 0, "with": 0}
        self.ranks: dict[int, int] = {}

    def _count(self, kind: str, node: cst.CSTNode) -> None:
        self.ranks[id(node)] = self.counts[kind]
        self.counts[kind] += 1

    def _take(self, kind: str, node: cst.CSTNode, item: int | None, found: cst.CSTNode,
              expr: cst.BaseExpression) -> bool:
        key = (kind, self.ranks[id(node)], item)
        anchor = self.pending.get(key)
        if anchor is None or _dump(expr) != anchor.expr:
            return False
        del self.pending[key]
        self.found[anchor] = found
        return self.torch is not None

    def visit_Decorator(self, node: cst.Decorator) -> None:
        self._count("decorator", node)

    def visit_With(self, node: cst.With) -> None:
        self._count("with", node)

    def leave_Decorator(self, original_node: cst.Decorator, updated_node: cst.Decorator) -> cst.Decorator:
        if self._take("decorator", original_node, None, original_node, original_node.decorator):
            return updated_node.with_changes(decorator=inference_mode_call(self.torch))
        return updated_node

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        items = [
            new.with_changes(item=inference_mode_call(self.torch))
            if self._take("with", original_node, position, old, old.item) else new
            for position, (old, new) in enumerate(zip(original_node.items, updated_node.items, strict=True))
        ]
        return updated_node.with_changes(items=items)


def _dump(expr: cst.BaseExpression) -> str | None:
    """The expression as `ast.dump` shows it, to compare with what the analysis saw."""
    try:
        return ast.dump(ast.parse(cst.Module([]).code_for_node(expr).strip(), mode="eval").body)
    except SyntaxError:
        return None


def _repeats(index, fn: FunctionInfo, exprs: list[ast.expr], position: int) -> bool:
    """Whether converting `exprs[position]` would repeat an `inference_mode` among `exprs` (decorators, or the
    items of one `with`): one is there already, or an earlier grad-off one becomes it."""
    modes = [index.grad_mode_of(fn.module, expr, fn) for expr in exprs]
    return GradMode.INFERENCE in modes or GradMode.NO_GRAD in modes[:position]


def _is_flag_grad_switch(index, module, node: ast.expr, fn) -> bool:
    """`set_grad_enabled(<not a literal>)`: reported as not applicable."""
    return isinstance(node, ast.Call) and index.qualify(module, node.func, fn) in SET_GRAD_ENABLED and \
        index.grad_mode_of(module, node, fn) == GradMode.MAYBE_GRAD


def _inside_async(fn: FunctionInfo) -> bool:
    parent = fn.parent
    while parent is not None:
        if parent.is_async:
            return True
        parent = parent.parent
    return False


def _is_torchscript(fn: FunctionInfo) -> bool:
    current: FunctionInfo | None = fn
    while current is not None:
        if current.is_jit:
            return True
        current = current.parent
    cls = fn.cls
    if cls is not None:
        for owner in cls.mro():
            if any(base in ("torch.jit.ScriptModule", "torch.jit._script.ScriptModule") for base in
                   owner.external_bases):
                return True
    return False


def _anchor(context: AnalysisContext, module: ModuleInfo, kind: str, node: ast.AST, expr: ast.expr,
            item: int | None = None) -> GradSwitchAnchor:
    """Where the rewrite finds the site: its rank among the file's decorators or `with` statements.

    Both ASTs list those in the order of the source, so the rank locates the LibCST node without
    computing positions for the whole file; `expr` lets the rewrite check it found the right one.
    """
    ordinals = context.memo.setdefault("ranks", {})
    if id(module) not in ordinals:
        found = []
        for n in ast.walk(module.tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.extend(("decorator", d.lineno, d.col_offset) for d in n.decorator_list)
            elif isinstance(n, (ast.With, ast.AsyncWith)):
                found.append(("with", n.lineno, n.col_offset))
        ranks: dict[tuple[str, int, int], int] = {}
        counts = {"decorator": 0, "with": 0}
        for key in sorted(found, key=lambda k: (k[1], k[2])):
            ranks[key] = counts[key[0]]
            counts[key[0]] += 1
        ordinals[id(module)] = ranks
    rank = ordinals[id(module)][(kind, node.lineno, node.col_offset)]
    return GradSwitchAnchor(kind, rank, ast.dump(expr), expr.lineno, item)


def _judge_all(context: AnalysisContext, flow: FlowAnalyzer, regions: list[tuple[Finding, Region, str]]) -> None:
    """Judge each site's region, on two processes where `--jobs` allows (`analysis.sharing`)."""
    # Verdicts that more inference regions cannot change (applied, never fixable) are kept across the
    # engine's analysis rounds, so only the fixable unsafe sites are judged again.
    settled = context.memo.setdefault("settled", {})

    def key(finding: Finding) -> tuple:
        return finding.site.path, finding.site.line, finding.anchor.item

    unsettled = []
    for finding, region, what in regions:
        if key(finding) in settled:
            site = finding.site
            site.status, site.reason, site.fixable, site.hazard, site.subject = settled[key(finding)]
        else:
            unsettled.append((finding, region, what))

    def judge(job: tuple[Finding, Region, str]) -> Site:
        finding, region, what = job
        _verdict(finding.site, flow.analyze(region), what)
        return finding.site

    for (finding, _, _), site in zip(unsettled, judge_all(judge, unsettled, context.jobs), strict=True):
        finding.site = site
        if site.status == Status.APPLIED or not site.fixable:
            settled[key(finding)] = (site.status, site.reason, site.fixable, site.hazard, site.subject)


def _verdict(site: Site, report, what: str) -> None:
    notes = f" Note: {'; '.join(report.notes)}." if report.notes else ""
    if report.safe:
        site.reason = (f"{what}: no tensor made in the region reaches an autograd-recording operation or an "
                       f"in-place update outside inference mode.{notes}")
        return
    site.status = Status.UNSAFE
    site.fixable = report.fixable
    first = report.hazards[0]
    if not report.fixable:
        # The first hazard no fix can make safe settles it; the analysis looks no further (EffectScanner.scan).
        first = next(h for h in report.hazards if not h.fixable)
        site.reason = f"{what} {first.message}; inference mode cannot do that, so it is never rewritten."
    else:
        more = f" (and {len(report.hazards) - 1} more hazard(s))" if len(report.hazards) > 1 else ""
        site.reason = f"{what}: {first.message}{more}.{notes}"
    site.hazard, site.subject = first.kind, first.subject
