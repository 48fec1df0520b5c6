"""What every transform is: an analysis over the project index, and a rewrite of one file.

A transform knows nothing about the command line or the file system. The
engine hands it the project index and the grad-off regions earlier
transforms added (`AnalysisContext`); the transform answers with `Site`s.
For each file that has sites to rewrite, the engine hands it the parsed
LibCST module and those sites; the transform returns the new module.

The module docstring of each transform is its documentation: a one-line
summary, then sections (`Rewrites`, `Refuses`, `Fix safety`) that
`list-transforms` and the docs page render.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import libcst as cst
from chatterbox_codemod.analysis import FunctionInfo, GradStates, ModuleInfo, ProjectIndex
from chatterbox_codemod.analysis.screen import GRAD_API_NAMES, ProjectFacts
from chatterbox_codemod.report import Site


@dataclass
class AnalysisContext:
    """What the engine gives a transform's analysis."""

    index: ProjectIndex
    targets: set[Path]  # files whose sites are reported (and may be rewritten)
    display: Callable[[Path], str]  # path as reasons show it
    unsafe_fixes: bool = False
    settings: dict[str, Any] = field(default_factory=dict)  # this transform's own configuration table
    stateless_libraries: tuple[str, ...] = ()  # `stateless-libraries`: see `analysis.effects`
    # Functions and `with` items that run under inference mode once this run's rewrites land.
    inference_regions: list = field(default_factory=list)
    # What a transform keeps for the rest of this run (the engine gives each transform one dict per run,
    # the same in every analysis round); transform instances hold no state of their own.
    memo: dict[str, Any] = field(default_factory=dict)
    jobs: int = 1  # processes that may judge candidates (0: one per CPU; `analysis.sharing`)
    _states: GradStates | None = None

    def grad_states(self) -> GradStates:
        if self._states is None:
            self._states = GradStates(self.index, self.inference_regions)
        return self._states

    def target_modules(self) -> Iterable[ModuleInfo]:
        for module in self.index.modules.values():
            if module.path in self.targets:
                yield module

    def where(self, fn: FunctionInfo, line: int) -> str:
        return f"{self.display(fn.module.path)}:{line}"


class Anchor:
    """Where a finding's rewrite happens, in terms that survive re-parsing the file with LibCST."""

    def locate(self, module: cst.Module) -> cst.CSTNode:
        """The node this anchor names in `module`; LookupError when it is not there."""
        raise NotImplementedError


@dataclass(frozen=True)
class DefinitionAnchor(Anchor):
    """A function or class, by its scope path (`Class.method`, as `local_qualname` gives it)."""

    scope: str

    def locate(self, module: cst.Module) -> cst.FunctionDef | cst.ClassDef:
        found: list = []
        edit_definition(module, self.scope, lambda node: found.append(node) or node)
        return found[0]


@dataclass
class Finding:
    """What a transform found: the site it reports, where to rewrite it, and what it means to the analysis.

    Only `site` reaches the report; the rest stays with the run (and `region` holds analysis objects).
    """

    site: Site
    anchor: Anchor | None = None  # None: nothing to rewrite
    suppress_lines: tuple[int, ...] = ()  # lines where a skip comment counts too (the decorator, the `def`)
    region: FunctionInfo | ast.expr | None = None  # what runs under inference mode once this is rewritten

    def portable(self) -> Finding:
        """A copy a worker process can receive: no analysis objects attached."""
        return Finding(self.site, self.anchor, self.suppress_lines)


@dataclass(frozen=True)
class Option:
    """A key a transform reads from `[tool.chatterbox-codemod.<transform-id>]` in the target's pyproject.toml."""

    name: str
    kind: type  # `list` (of strings) or `bool`
    help: str


class Transform:
    """Base class; subclasses set `id` and document themselves in their module docstring."""

    id: ClassVar[str]
    # The keys of its own configuration table; the engine validates them and hands the values over as
    # `AnalysisContext.settings`.
    options: ClassVar[tuple[Option, ...]] = ()
    # Off by default (opt-in with `--select`): a transform whose rewrite changes numerics, say.
    default: ClassVar[bool] = True
    # Analyses run in this order: a transform sees the inference regions the ones before it add.
    analysis_order: ClassVar[int] = 0
    # Rewrites run in this order within a file. Transforms that find their sites by line
    # number go first; later ones find theirs by qualified name, which edits do not move.
    rewrite_order: ClassVar[int] = 0
    # Repeat the analysis with this transform's own rewritten regions until verdicts settle
    # (only for analyses that more inference regions can make safer, never less safe).
    iterate: ClassVar[bool] = False

    def analyze(self, context: AnalysisContext) -> list[Finding]:
        raise NotImplementedError

    @classmethod
    def may_find_sites(cls, tree: ast.Module, settings: dict[str, Any], project: ProjectFacts) -> bool:
        """Whether `analyze` may find a site in a file with this syntax tree, whatever else the project holds
        beside what `project` says (`settings`: this transform's configuration table). Yes where the file
        alone cannot tell: an answer may be yes for a file with no site, never no for one with a site
        (`analysis.screen`)."""
        return True

    @classmethod
    def erase_owned(cls, tree: ast.Module, findings: Sequence[Finding] = ()) -> ast.Module:
        """`tree` with the nodes this transform owns erased (those its rewrite may add, change or remove;
        `findings`: what it rewrites in this file, which it owns whatever they are spelled like).

        The engine erases the owned nodes of every selected transform from the original and the rewritten
        file; what is left must be identical (black's `assert_equivalent`, limited to what is not ours),
        or the file is not written.
        """
        return tree

    def rewrite(self, module: cst.Module, findings: Sequence[Finding]) -> cst.Module:
        raise NotImplementedError

    # -- documentation -------------------------------------------------------

    @classmethod
    def doc(cls) -> str:
        module = inspect.getmodule(cls)
        return inspect.cleandoc(module.__doc__ or "") if module else ""

    @classmethod
    def summary(cls) -> str:
        return cls.doc().split("\n", 1)[0].strip()

    @classmethod
    def section(cls, title: str) -> str:
        """The text of a `Title` section of the docstring (underlined with dashes)."""
        match = re.search(rf"^{re.escape(title)}\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", cls.doc(), re.M | re.S)
        return inspect.cleandoc(match.group(1)) if match else ""

    @classmethod
    def fix_safety(cls) -> str:
        return cls.section("Fix safety")


# ---------------------------------------------------------------------------
# Helpers the rewrites share


def torch_name(module: cst.Module) -> str | None:
    """The name this file already uses for the `torch` module, if any (`torch`, `th`, ...)."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if not isinstance(small, cst.Import):
                continue
            for alias in small.names:
                dotted = _dotted_name(alias.name)
                if alias.asname is not None and dotted == "torch":
                    asname = alias.asname.name
                    if isinstance(asname, cst.Name):
                        return asname.value
                elif alias.asname is None and (dotted == "torch" or dotted.startswith("torch.")):
                    return "torch"
    return None


def ensure_torch(module: cst.Module) -> tuple[cst.Module, str]:
    """Make sure the file can refer to `torch`; returns the module and the name to use.

    A missing `import torch` goes right before the first import from torch (else
    before the first import, else after the docstring), taking over the comments
    above that statement so a license header stays on top.
    """
    name = torch_name(module)
    if name is not None:
        return module, name
    body = list(module.body)
    position = _import_position(body)
    new = cst.SimpleStatementLine(body=[cst.Import(names=[cst.ImportAlias(name=cst.Name("torch"))])])
    if position < len(body):
        anchor = body[position]
        new = new.with_changes(leading_lines=anchor.leading_lines)
        body[position] = anchor.with_changes(leading_lines=[])
    body.insert(position, new)
    return module.with_changes(body=body), "torch"


def _import_position(body: list[cst.BaseStatement]) -> int:
    first_import = None
    after_header = 0
    for position, statement in enumerate(body):
        smalls = statement.body if isinstance(statement, cst.SimpleStatementLine) else []
        is_docstring = position == 0 and len(smalls) == 1 and isinstance(smalls[0], cst.Expr) and isinstance(
            smalls[0].value, (cst.SimpleString, cst.ConcatenatedString))
        is_future = any(isinstance(s, cst.ImportFrom) and s.module is not None and not s.relative
                        and _dotted_name(s.module) == "__future__" for s in smalls)
        if is_docstring or is_future:
            after_header = position + 1
            continue
        for small in smalls:
            if isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None and \
                    _dotted_name(small.module).split(".")[0] == "torch":
                return position
            if isinstance(small, (cst.Import, cst.ImportFrom)) and first_import is None:
                first_import = position
    return first_import if first_import is not None else after_header


def remove_unused_imports(module: cst.Module, sources: frozenset[str], names: frozenset[str]) -> cst.Module:
    """Drop `from <source> import <name> [as <alias>]` at module level where `<alias>` is no longer used.

    Use is counted on the tokens of the whole file (a name in a string or comment does not count, one
    anywhere else does), so a name still referred to is always kept. A statement left with no name is
    removed, and the comments above it move to the statement that follows.
    """
    bound = {}
    for statement in module.body:
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
            if _is_import_from(small, sources):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value in names:
                        bound[alias.evaluated_alias or alias.name.value] = 0
    if not bound:
        return module
    for token in tokenize.generate_tokens(io.StringIO(module.code).readline):
        if token.type == tokenize.NAME and token.string in bound:
            bound[token.string] += 1
    unused = {name for name, uses in bound.items() if uses == 1}  # its one use is the import itself
    if not unused:
        return module
    body: list[cst.BaseStatement] = []
    carried: Sequence[cst.EmptyLine] = ()
    for statement in module.body:
        if carried:
            statement = statement.with_changes(leading_lines=[*carried, *statement.leading_lines])
            carried = ()
        if isinstance(statement, cst.SimpleStatementLine):
            smalls = []
            for small in statement.body:
                if _is_import_from(small, sources):
                    kept = [a for a in small.names if (a.evaluated_alias or a.evaluated_name) not in unused]
                    if not kept:
                        continue
                    if len(kept) != len(small.names):
                        kept[-1] = kept[-1].with_changes(comma=small.names[-1].comma)
                        small = small.with_changes(names=kept)
                smalls.append(small)
            if not smalls:
                carried = statement.leading_lines
                continue
            statement = statement.with_changes(body=smalls)
        body.append(statement)
    return module.with_changes(body=body)


def _is_import_from(small: cst.BaseSmallStatement, sources: frozenset[str]) -> bool:
    return isinstance(small, cst.ImportFrom) and not small.relative and small.module is not None and \
        not isinstance(small.names, cst.ImportStar) and _dotted_name(small.module) in sources


class EraseGradModes(ast.NodeTransformer):
    """Erases grad-mode decorators and `with` items and the imports of torch and its grad switches: what the
    grad-mode transforms own. `rewritten`: the expressions a rewrite replaces, as `ast.dump` shows them, owned
    however they are spelled (`@off()` where another module renames `no_grad`)."""

    NAMES = GRAD_API_NAMES  # `no_grad`, `inference_mode`, `set_grad_enabled`, `enable_grad`

    def __init__(self, rewritten: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.rewritten = rewritten

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self.names = set(self.NAMES)  # and what `from torch import no_grad as ng` binds
        for statement in ast.walk(node):
            if isinstance(statement, ast.ImportFrom) and (statement.module or "").startswith("torch"):
                self.names.update(a.asname for a in statement.names if a.asname and a.name in self.NAMES)
        return self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> ast.Import | None:
        node.names = [a for a in node.names if a.name != "torch" or a.asname]
        return node if node.names else None

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom | None:
        if node.level == 0 and (node.module or "").startswith("torch"):
            node.names = [a for a in node.names if a.name not in self.NAMES]
        return node if node.names else None

    def visit_FunctionDef(self, node):
        node.decorator_list = [d for d in node.decorator_list if not self._is_grad_mode(d)]
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_withitem(self, node: ast.withitem) -> ast.withitem:
        if self._is_grad_mode(node.context_expr):
            node.context_expr = ast.Name("GRAD_MODE", ast.Load())
        return self.generic_visit(node)

    def _is_grad_mode(self, node: ast.expr) -> bool:
        target = node.func if isinstance(node, ast.Call) else node
        return (target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")) in self.names or \
            ast.dump(node) in self.rewritten


def inference_mode_call(torch: str) -> cst.Call:
    """`<torch>.inference_mode()`, always called (a bare decorator needs torch >= 2.1)."""
    return cst.Call(func=cst.Attribute(value=cst.Name(torch), attr=cst.Name("inference_mode")))


def _dotted_name(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted_name(node.value)}.{node.attr.value}"
    return ""


def edit_definition(module: cst.Module, scope: str,
                    edit: Callable[[cst.FunctionDef | cst.ClassDef], cst.CSTNode]) -> cst.Module:
    """Replace the class or function at `scope` (`Class.method`, as `local_qualname` gives) by `edit(node)`.

    Navigates the definitions directly (through class bodies and the bodies of `if`/`try`/`with`
    blocks) instead of visiting every node of the file. Raises LookupError when it is not there.
    """
    body = _edit_in(list(module.body), scope.split("."), edit)
    if body is None:
        raise LookupError(f"`{scope}` not found in the parsed file")
    return module.with_changes(body=body)


def _edit_in(body: list, parts: list[str], edit) -> list | None:
    for position, statement in enumerate(body):
        if isinstance(statement, (cst.ClassDef, cst.FunctionDef)):
            if statement.name.value != parts[0]:
                continue
            if len(parts) == 1:
                body[position] = edit(statement)
                return body
            if parts[1] == "<locals>" or not isinstance(statement.body, cst.IndentedBlock):
                return None
            inner = _edit_in(list(statement.body.body), parts[1:], edit)
            if inner is not None:
                body[position] = statement.with_changes(body=statement.body.with_changes(body=inner))
                return body
        elif isinstance(getattr(statement, "body", None), cst.IndentedBlock):  # if / try / with / for / while
            inner = _edit_in(list(statement.body.body), parts, edit)
            if inner is not None:
                body[position] = statement.with_changes(body=statement.body.with_changes(body=inner))
                return body
            orelse = getattr(statement, "orelse", None)
            if orelse is not None and isinstance(getattr(orelse, "body", None), cst.IndentedBlock):
                inner = _edit_in(list(orelse.body.body), parts, edit)
                if inner is not None:
                    new_orelse = orelse.with_changes(body=orelse.body.with_changes(body=inner))
                    body[position] = statement.with_changes(orelse=new_orelse)
                    return body
    return None


class StatementTransformer(cst.CSTTransformer):
    """A transformer that visits statements, decorators and `with` items, and passes over what holds none.

    No statement, decorator or `with` can sit inside an expression, a simple statement or a parameter list,
    so a rewrite that edits only those never descends there: on the files that change on torch's tree, the
    descent was more than half of the rewrite's time. The nodes passed over still reach `leave_*` unchanged.
    """

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, _HOLD_NO_STATEMENTS):
            return False
        return super().on_visit(node)


_HOLD_NO_STATEMENTS = (cst.BaseExpression, cst.SimpleStatementLine, cst.SimpleStatementSuite, cst.Parameters)


class ScopeTracker(StatementTransformer):
    """Keeps the `Class.method` path of the node being visited, as the index names it."""

    def __init__(self) -> None:
        super().__init__()
        self.scope: list[str] = []
        self._function_depth = 0

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.scope.append(node.name.value)
        return True

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.CSTNode:
        self.scope.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if self._function_depth:
            self.scope.append("<locals>")
        self.scope.append(node.name.value)
        self._function_depth += 1
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.CSTNode:
        self._function_depth -= 1
        self.scope.pop()
        if self._function_depth:
            self.scope.pop()
        return updated_node

    @property
    def path(self) -> str:
        return ".".join(self.scope)


def local_qualname(fn_or_cls_qualname: str, module: ModuleInfo) -> str:
    """`pkg.mod.Class.method` -> `Class.method` (the path ScopeTracker builds)."""
    prefix = module.name + "."
    return fn_or_cls_qualname[len(prefix):] if fn_or_cls_qualname.startswith(prefix) else fn_or_cls_qualname
