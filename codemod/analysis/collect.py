"""Collection of one module: its imports, definitions and calls, in one walk per function."""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .project import MODULE_CODE, CallSite, ClassInfo, FunctionInfo, ModuleInfo

if TYPE_CHECKING:
    from .index import ProjectIndex


@dataclass
class BodyWalk:
    """What one walk of a function body found, in walk order."""

    nodes: list[ast.AST]  # every node, not descending into nested functions or classes
    calls: list[tuple[ast.Call, tuple[ast.expr, ...]]]  # each call, with the `with` items around it
    loads: list[tuple[str, ast.AST]]  # each read of a name or an attribute, by that name


class BodyWalks:
    """The walks of function bodies, kept by the identity of the body.

    A walk depends on nothing but the body's nodes, and `ast` trees are never changed once parsed, so an
    index built again over the same trees (the engine's verification, where only the rewritten files have
    new trees) replays the walk of every unchanged body instead of walking it again. The body is kept
    with its walk, so its `id` cannot be reused by another list while the walk is held.
    """

    def __init__(self) -> None:
        self._walks: dict[int, tuple[list[ast.stmt], BodyWalk]] = {}

    def __len__(self) -> int:
        """How many bodies have been walked."""
        return len(self._walks)

    def walk(self, body: list[ast.stmt]) -> BodyWalk:
        held = self._walks.get(id(body))
        if held is not None and held[0] is body:
            return held[1]
        found = _walk_body(body)
        self._walks[id(body)] = (body, found)
        return found


class Collector:
    def __init__(self, index: ProjectIndex, module: ModuleInfo):
        self.index = index
        self.module = module

    def collect(self) -> None:
        for node in self.module.tree.body:
            self._top_level(node)
        self._scan_body(self.module.tree.body, prefix=self.module.name, cls=None, parent=None)
        self._module_level_code()

    def _module_level_code(self) -> None:
        """Statements at module level (scripts, `if __name__ == "__main__":`) as one pseudo-function."""
        tree = self.module.tree
        if not any(not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import,
                                      ast.ImportFrom)) for n in tree.body):
            return
        node = ast.FunctionDef(
            name=MODULE_CODE, args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                                 kw_defaults=[], kwarg=None, defaults=[]),
            body=tree.body, decorator_list=[], returns=None, type_comment=None, lineno=1, col_offset=0,
            end_lineno=max((getattr(n, "end_lineno", 1) or 1) for n in tree.body), end_col_offset=0,
        )
        fn = FunctionInfo(qualname=f"{self.module.name}.{MODULE_CODE}", name=MODULE_CODE, module=self.module,
                          node=node)
        self.index.functions[fn.qualname] = fn
        self.module.functions.append(fn)
        self._collect_calls(fn)

    def _top_level(self, node: ast.stmt) -> None:
        module = self.module
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    module.imports[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    module.imports.setdefault(head, head)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(module, node)
            for alias in node.names:
                if alias.name != "*":
                    module.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    module.assigns.setdefault(target.id, []).append(node.value)
        elif isinstance(node, (ast.If, ast.Try)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self._top_level(child)
                elif isinstance(child, ast.ExceptHandler):
                    for stmt in child.body:
                        self._top_level(stmt)

    def _scan_body(self, body: list[ast.stmt], prefix: str, cls: ClassInfo | None, parent: FunctionInfo | None) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                info = ClassInfo(qualname=f"{prefix}.{node.name}", name=node.name, module=self.module, node=node)
                self.index.classes.setdefault(info.qualname, info)
                if parent is None and cls is None:
                    self.module.defs[node.name] = info
                self._scan_body(node.body, info.qualname, info, None)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if parent is not None:
                    qual = f"{parent.qualname}.<locals>.{node.name}"
                else:
                    qual = f"{prefix}.{node.name}"
                fn = FunctionInfo(qualname=qual, name=node.name, module=self.module, node=node,
                                  cls=cls if parent is None else (parent.cls), parent=parent)
                if qual in self.index.functions:  # redefinition (e.g. under `if`): keep the first
                    self.index.redefined.add(qual)
                    qual = f"{qual}@{node.lineno}"
                    fn.qualname = qual
                self.index.functions[qual] = fn
                self.module.functions.append(fn)
                if parent is not None:
                    parent.local_defs[node.name] = fn
                elif cls is not None:
                    cls.methods.setdefault(node.name, fn)
                else:
                    self.module.defs.setdefault(node.name, fn)
                self._collect_calls(fn)
                self._scan_body(_nested_defs(node), prefix, None, fn)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)) and parent is None:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        self._scan_body([child], prefix, cls, parent)
                    elif isinstance(child, ast.ExceptHandler):
                        self._scan_body(child.body, prefix, cls, parent)

    def _collect_calls(self, fn: FunctionInfo) -> None:
        """Every node of the body (kept as `fn.nodes`), every call with the `with` items around it (their grad
        modes are resolved in `finish`), and every read of a name, from one walk of the body."""
        body = fn.node.body
        found = self.index.walks.walk(body) if self.index.walks is not None else _walk_body(body)
        fn.calls.extend(CallSite(caller=fn, node=node, items=items) for node, items in found.calls)
        loads = self.index.load_table
        for name, node in found.loads:
            loads.setdefault(name, []).append((fn, node))
        fn._nodes = found.nodes


def _walk_body(body: list[ast.stmt]) -> BodyWalk:
    """One walk of a function body; iterative, so deep nesting cannot overflow."""
    found = BodyWalk(nodes=[], calls=[], loads=[])
    nodes, calls, loads = found.nodes, found.calls, found.loads
    stack: list[tuple[ast.AST, tuple[ast.expr, ...]]] = [(stmt, ()) for stmt in reversed(body)]
    while stack:
        node, items = stack.pop()
        kind = type(node)
        if kind in _DEFINITIONS:
            continue
        nodes.append(node)
        if kind is ast.With or kind is ast.AsyncWith:
            inner = items + tuple(item.context_expr for item in node.items)
            stack.extend((stmt, inner) for stmt in reversed(node.body))
            for item in reversed(node.items):
                if item.optional_vars is not None:
                    stack.append((item.optional_vars, items))
                stack.append((item.context_expr, items))
                nodes.append(item)
            continue
        if kind is ast.Call:
            calls.append((node, items))
        elif kind is ast.Attribute and type(node.ctx) is ast.Load:
            loads.append((node.attr, node))
        elif kind is ast.Name:
            if type(node.ctx) is ast.Load:
                loads.append((node.id, node))
            continue  # a Name's only child is its context
        children = []
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                children.extend(item for item in value if isinstance(item, ast.AST) and type(item) not in _LEAVES)
            elif isinstance(value, ast.AST) and type(value) not in _LEAVES:
                children.append(value)
        stack.extend((child, items) for child in reversed(children))
    return found


_DEFINITIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef})
# Contexts and operators (`Load`, `Add`, `Eq`, ...): shared leaves no analysis reads from a body's nodes.
_LEAVES = frozenset(leaf for base in (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
                    for leaf in base.__subclasses__())


def _resolve_relative(module: ModuleInfo, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.package.split(".") if module.package else []
    if node.level > 1:
        package = package[: len(package) - (node.level - 1)]
    base = ".".join(package)
    if node.module:
        base = f"{base}.{node.module}" if base else node.module
    return base


def _nested_defs(node: ast.AST) -> list[ast.stmt]:
    """Function definitions nested anywhere in a function body (not inside nested classes)."""
    found = []
    queue = deque(ast.iter_child_nodes(node))
    while queue:
        child = queue.popleft()
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(child)
        elif not isinstance(child, (ast.ClassDef, ast.Lambda)) and not isinstance(child, ast.expr):
            queue.extend(ast.iter_child_nodes(child))
    return found
