"""Collection of one module: its imports, definitions and calls, in one walk per function."""

from __future__ import annotations

import ast
import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .project import MODULE_CODE, CallSite, ClassInfo, FunctionInfo, ModuleInfo, defaults

if TYPE_CHECKING:
    from .index import ProjectIndex


@dataclass
class BodyWalk:
    """What one walk of a function body found, in walk order.

    Besides the body's own statements it reads the code a definition in it runs where it stands: decorators,
    default values, and the bodies of classes (their calls and reads, not their nodes, whose names are the
    class's, not the function's). Calls inside a lambda, or inside a generator expression past its first
    iterable, run when the lambda is called or the generator is iterated, wherever that is: they are
    `deferred`, and the `with` items around them do not apply.
    """

    nodes: list[ast.AST]  # every node of the body, lambdas included, not descending into nested functions or classes
    calls: list[tuple[ast.Call, tuple[ast.expr, ...], bool]]  # each call, the `with` items around it, deferred
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
        """Code that runs at import (statements at module level, `if __name__ == "__main__":`, decorators,
        default values, class bodies) as one pseudo-function."""
        tree = self.module.tree
        found = self._walk(tree.body)
        if not found.calls and not found.loads and not any(
                not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
                for n in tree.body):
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
        self._collect_calls(fn, found)

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
                # A class defined in a function is indexed too (its methods' calls are calls); nothing resolves
                # its name, so its methods count as entered from outside.
                qual = f"{parent.qualname}.<locals>.{node.name}" if parent is not None else f"{prefix}.{node.name}"
                info = ClassInfo(qualname=qual, name=node.name, module=self.module, node=node)
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
                self._collect_calls(fn, self._walk(node.body))
                self._scan_body(_nested_defs(node), prefix, None, fn)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)) and parent is None:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        self._scan_body([child], prefix, cls, parent)
                    elif isinstance(child, ast.ExceptHandler):
                        self._scan_body(child.body, prefix, cls, parent)

    def _walk(self, body: list[ast.stmt]) -> BodyWalk:
        return self.index.walks.walk(body) if self.index.walks is not None else _walk_body(body)

    def _collect_calls(self, fn: FunctionInfo, found: BodyWalk) -> None:
        """Every node of the body (kept as `fn.nodes`), every call with the `with` items around it (their grad
        modes are resolved in `finish`), and every read of a name, from one walk of the body."""
        fn.calls.extend(CallSite(caller=fn, node=node, items=items, deferred=deferred)
                        for node, items, deferred in found.calls)
        loads = self.index.load_table
        for name, node in found.loads:
            loads.setdefault(name, []).append((fn, node))
        fn._nodes = found.nodes


# How the walk reaches a node (flags, see BodyWalk): code a definition runs where it stands is not the body's own
# (its nodes are not kept); deferred code runs later; a consumed generator expression is one a call runs to its
# end where it stands (`consumed_generators`).
_BODY, _DEFINITION_TIME, _DEFERRED, _CONSUMED = 0, 1, 2, 4


def _walk_body(body: list[ast.stmt]) -> BodyWalk:
    """One walk of a function body; iterative, so deep nesting cannot overflow."""
    found = BodyWalk(nodes=[], calls=[], loads=[])
    nodes, calls, loads = found.nodes, found.calls, found.loads
    stack: list[tuple[ast.AST, tuple[ast.expr, ...], int]] = [(stmt, (), _BODY) for stmt in reversed(body)]
    push, pop = stack.append, stack.pop
    while stack:
        node, items, how = pop()
        kind = type(node)
        if kind is ast.Name:  # the commonest node, and a leaf: its only child is its context
            if not how & _DEFINITION_TIME:
                nodes.append(node)
            if type(node.ctx) is ast.Load:
                loads.append((node.id, node))
            continue
        if kind in _DEFINITIONS:
            stack += [(child, items, how | _DEFINITION_TIME) for child in reversed(_definition_time(node))]
            continue
        own = not how & _DEFINITION_TIME
        if own:
            nodes.append(node)
        if kind is ast.Lambda:  # its defaults are evaluated here, its body when it is called
            push((node.body, (), how | _DEFERRED))
            push((node.args, items, how))
            continue
        if kind is ast.GeneratorExp and how & _CONSUMED:  # iterated to the end right here: walked as written
            how &= ~_CONSUMED
        elif kind is ast.GeneratorExp:  # its first iterable is evaluated here, the rest as it is iterated
            first = node.generators[0]
            if own:
                nodes.append(first)
            later = [*first.ifs, *node.generators[1:]]
            stack += [(child, (), how | _DEFERRED) for child in reversed(later)]
            push((first.iter, items, how))
            push((first.target, (), how | _DEFERRED))
            push((node.elt, (), how | _DEFERRED))
            continue
        if kind is ast.With or kind is ast.AsyncWith:
            inner = items + tuple(item.context_expr for item in node.items)
            stack += [(stmt, inner, how) for stmt in reversed(node.body)]
            for item in reversed(node.items):
                if item.optional_vars is not None:
                    push((item.optional_vars, items, how))
                push((item.context_expr, items, how))
                if own:
                    nodes.append(item)
            continue
        if kind is ast.Call:
            calls.append((node, items, bool(how & _DEFERRED)))
        elif kind is ast.Attribute and type(node.ctx) is ast.Load:
            loads.append((node.attr, node))
        fields = _CHILD_FIELDS.get(kind)
        if fields is None:
            fields = _CHILD_FIELDS[kind] = _child_fields(kind)
        children = []
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                children += [item for item in value if isinstance(item, ast.AST) and type(item) not in _LEAVES]
            elif isinstance(value, ast.AST) and type(value) not in _LEAVES:
                children.append(value)
        children.reverse()
        if kind is ast.Call:
            consumed = {id(g) for g in consumed_generators(node)}
            stack += [(child, items, how | _CONSUMED if id(child) in consumed or (
                type(child) is ast.Starred and id(child.value) in consumed) else how & ~_CONSUMED)
                for child in children]
        elif kind is ast.Starred:  # `f(*(... for ...))`: a mark from the call passes on to the generator
            stack += [(child, items, how) for child in children]
        else:
            how &= ~_CONSUMED
            stack += [(child, items, how) for child in children]
    return found


# Calls that iterate a generator argument to its end before they return: builtins, and torch's module
# containers (`nn.ModuleList(Block() for _ in range(n))`), by the name they are called by.
_CONTAINER_MODULES = ("ModuleList", "Sequential", "ModuleDict", "ParameterList", "ParameterDict")
_CONSUMERS = frozenset({"tuple", "list", "set", "frozenset", "dict", "sum", "min", "max", "any", "all", "sorted",
                        *_CONTAINER_MODULES})
_CONSUMING_ATTRIBUTES = frozenset({"join", "extend", *_CONTAINER_MODULES})


def consumed_generators(call: ast.Call) -> list[ast.GeneratorExp]:
    """The generator expressions `call` runs to their end where it stands (`tuple(f(x) for x in xs)`,
    `", ".join(...)`, `zip(*(f(x) for x in xs))`): their code runs there, not later."""
    found = [arg.value for arg in call.args if isinstance(arg, ast.Starred) and isinstance(arg.value, ast.GeneratorExp)]
    func = call.func
    if (isinstance(func, ast.Name) and func.id in _CONSUMERS) or (
            isinstance(func, ast.Attribute) and func.attr in _CONSUMING_ATTRIBUTES):
        found += [arg for arg in call.args if isinstance(arg, ast.GeneratorExp)]
    return found


def _definition_time(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.AST]:
    """What a `def` or `class` statement runs where it stands: decorators, defaults, bases, the class body."""
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords), *node.body]
    return [*node.decorator_list, *defaults(node.args)]


_DEFINITIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef})
# Contexts and operators (`Load`, `Add`, `Eq`, ...): shared leaves no analysis reads from a body's nodes.
_LEAF_KINDS = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
_LEAVES = frozenset(leaf for base in _LEAF_KINDS for leaf in base.__subclasses__())
# The fields of each node type that may hold a node to walk into (`_child_fields`), found on its first node.
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
# ASDL types of fields that never do: names, numbers, strings, constants, and the leaves above.
_SCALAR_TYPES = frozenset({"identifier", "int", "string", "constant", *(base.__name__ for base in _LEAF_KINDS)})


def _child_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node type that may hold nodes, by the ASDL signature `ast` gives as each node type's
    docstring (`BinOp(expr left, operator op, expr right)`: `left` and `right`)."""
    signature = re.fullmatch(r"\w+\((.*)\)", kind.__doc__ or "")
    if signature is None:
        return kind._fields
    declared = (field.split(" ") for field in signature.group(1).split(", "))
    return tuple(name for asdl_type, name in declared if asdl_type.rstrip("?*") not in _SCALAR_TYPES)


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
    """Function and class definitions nested anywhere in a function body (not inside those), breadth first."""
    found = []
    queue = deque(_blocks(node))
    while queue:
        child = queue.popleft()
        if type(child) in _DEFINITIONS:
            found.append(child)
        else:
            queue.extend(_blocks(child))
    return found


# The fields that hold statements, or the handlers and cases that do: a definition stands only there.
_BLOCK_FIELDS = frozenset({"body", "handlers", "orelse", "finalbody", "cases"})


def _blocks(node: ast.AST) -> list[ast.AST]:
    return [child for name in node._fields if name in _BLOCK_FIELDS for child in getattr(node, name)]
