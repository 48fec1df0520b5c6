"""Where Python runs a method the code does not name, read off the syntax.

`t[i]` runs `__getitem__`, `a + b` runs `a`'s `__add__` or `b`'s `__radd__`,
`with x:` runs `__enter__` and `__exit__`, `if x:` runs `__bool__` or
`__len__`, `len(x)` runs `__len__`, `x.p` runs the property `p` (or a
`__getattr__`), and iterating a value runs a generator's body or an
`__iter__`. Each such use names the value whose type picks the method and the
names the method may have; `ProjectIndex.implicit_calls` resolves them to the
project's functions.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import NamedTuple

_OPERATORS = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.MatMult: "matmul", ast.Div: "truediv",
    ast.FloorDiv: "floordiv", ast.Mod: "mod", ast.Pow: "pow", ast.LShift: "lshift", ast.RShift: "rshift",
    ast.BitOr: "or", ast.BitXor: "xor", ast.BitAnd: "and",
}
_UNARY = {ast.USub: "__neg__", ast.UAdd: "__pos__", ast.Invert: "__invert__"}
# `a < b` runs `a.__lt__(b)`, then `b.__gt__(a)` when that is not implemented.
_COMPARISONS = {
    ast.Eq: ("__eq__", "__eq__"), ast.NotEq: ("__ne__", "__ne__"), ast.Lt: ("__lt__", "__gt__"),
    ast.LtE: ("__le__", "__ge__"), ast.Gt: ("__gt__", "__lt__"), ast.GtE: ("__ge__", "__le__"),
}
TRUTH = ("__bool__", "__len__")
ITERATION_METHODS = ("__iter__", "__next__", "__getitem__", "__aiter__", "__anext__")  # what iterating may run
TEXT = ("__format__", "__str__", "__repr__")
# Builtins that run a special method of their argument.
_BUILTINS = {
    "len": ("__len__",), "bool": TRUTH, "str": TEXT, "repr": ("__repr__",), "format": TEXT, "print": TEXT,
    "hash": ("__hash__",), "abs": ("__abs__",), "int": ("__int__", "__index__", "__trunc__"),
    "float": ("__float__", "__index__"), "complex": ("__complex__", "__float__", "__index__"),
    "round": ("__round__",), "reversed": ("__reversed__", "__len__", "__getitem__"), "dir": ("__dir__",),
}
_CONTEXTS = {ast.Load: ("__getattr__", "__getattribute__"), ast.Store: ("__setattr__",), ast.Del: ("__delattr__",)}
_ITEMS = {ast.Load: ("__getitem__",), ast.Store: ("__setitem__",), ast.Del: ("__delitem__",)}


class Use(NamedTuple):
    """One place Python may run a method the code does not name."""

    anchor: ast.AST  # the node where it runs: its line is the reason's, and the flow walk meets it there
    operand: ast.expr  # the value whose type picks the method
    names: tuple[str, ...]  # the special methods (or, for an attribute, the property) it may run
    kind: str  # how the reason says it: see `describe`
    iterates: bool = False  # it iterates `operand` (which may also run a generator's body)


def uses(node: ast.AST, library: Callable[[ast.Call], str | None], iterating: frozenset[str]) -> list[Use]:
    """The uses at `node`, one of a function's nodes. `library` names the library callable (a builtin's bare
    name) a call runs, if it runs one; `iterating`: those that iterate their arguments."""
    if type(node) is ast.Call:
        return _call(node, library, iterating)
    read = _READERS.get(type(node))
    return read(node) if read is not None else []


def _attribute(node: ast.Attribute) -> list[Use]:
    context = type(node.ctx)
    return [Use(node, node.value, (node.attr, *_CONTEXTS[context]), _VERBS[context])]


def _subscript(node: ast.Subscript) -> list[Use]:
    return [Use(node, node.value, _ITEMS[type(node.ctx)], "operator")]


def _binary(node: ast.BinOp) -> list[Use]:
    name = _OPERATORS[type(node.op)]
    return [Use(node, node.left, (f"__{name}__",), "operator"), Use(node, node.right, (f"__r{name}__",), "operator")]


def _update(node: ast.AugAssign) -> list[Use]:
    name = _OPERATORS[type(node.op)]
    return [Use(node.target, node.target, (f"__i{name}__", f"__{name}__"), "update"),
            Use(node.target, node.value, (f"__r{name}__",), "update")]


def _unary(node: ast.UnaryOp) -> list[Use]:
    if isinstance(node.op, ast.Not):
        return _truth(node.operand)
    return [Use(node, node.operand, (_UNARY[type(node.op)],), "operator")]


def _compare(node: ast.Compare) -> list[Use]:
    found = []
    left = node.left
    for op, right in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, (ast.In, ast.NotIn)):  # `__contains__`, else iterating
            found.append(Use(node, right, ("__contains__",), "operator", iterates=True))
        elif type(op) in _COMPARISONS:
            forward, reflected = _COMPARISONS[type(op)]
            found += [Use(node, left, (forward,), "operator"), Use(node, right, (reflected,), "operator")]
        left = right
    return found


def _with(node: ast.With | ast.AsyncWith) -> list[Use]:
    names = ("__aenter__", "__aexit__") if isinstance(node, ast.AsyncWith) else ("__enter__", "__exit__")
    return [Use(item.context_expr, item.context_expr, names, "with") for item in node.items]


def _test(node: ast.If | ast.While | ast.Assert | ast.IfExp) -> list[Use]:
    return _truth(node.test)


def _boolean(node: ast.BoolOp) -> list[Use]:
    return [use for value in node.values for use in _truth(value)]


def _formatted(node: ast.FormattedValue) -> list[Use]:
    return [Use(node.value, node.value, TEXT, "formatting")]


def _loop(node: ast.For | ast.AsyncFor | ast.comprehension) -> list[Use]:
    found = [Use(node.iter, node.iter, (), "iterating", iterates=True)]
    if isinstance(node, ast.comprehension):
        found += [use for test in node.ifs for use in _truth(test)]
    return found


def _iterated(node: ast.YieldFrom | ast.Starred) -> list[Use]:
    if isinstance(node, ast.Starred) and not isinstance(node.ctx, ast.Load):
        return []
    return [Use(node.value, node.value, (), "iterating", iterates=True)]


def _unpacked(node: ast.Assign) -> list[Use]:
    if any(isinstance(target, (ast.Tuple, ast.List)) for target in node.targets):
        return [Use(node.value, node.value, (), "iterating", iterates=True)]
    return []


def _call(node: ast.Call, library: Callable[[ast.Call], str | None], iterating: frozenset[str]) -> list[Use]:
    name = library(node)
    if name in iterating:
        return [Use(arg, arg, (), "iterating", iterates=True) for arg in node.args if not isinstance(arg, ast.Starred)]
    if name in _BUILTINS:
        arguments = node.args if name == "print" else node.args[:1]
        return [Use(node, arg.value if isinstance(arg, ast.Starred) else arg, _BUILTINS[name], "operator")
                for arg in arguments]
    return []


_VERBS = {ast.Load: "reading", ast.Store: "setting", ast.Del: "deleting"}
_READERS: dict[type, Callable] = {
    ast.Attribute: _attribute, ast.Subscript: _subscript, ast.BinOp: _binary, ast.AugAssign: _update,
    ast.UnaryOp: _unary, ast.Compare: _compare, ast.With: _with, ast.AsyncWith: _with, ast.If: _test,
    ast.While: _test, ast.Assert: _test, ast.IfExp: _test, ast.BoolOp: _boolean, ast.FormattedValue: _formatted,
    ast.For: _loop, ast.AsyncFor: _loop, ast.comprehension: _loop, ast.YieldFrom: _iterated, ast.Starred: _iterated,
    ast.Assign: _unpacked,
}


def _truth(test: ast.expr) -> list[Use]:
    """Testing a value's truth runs its `__bool__` (or `__len__`); a comparison, `not`, `and`/`or` and a
    literal give their own answer (their operands are uses of their own)."""
    if isinstance(test, (ast.Compare, ast.BoolOp, ast.Constant)) or (
            isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)):
        return []
    return [Use(test, test, TRUTH, "testing")]


def describe(use: Use) -> str:
    """How a reason names a use: "iterating `xs`", "`t[i]`", "reading `x.p`", "`with lock`", ..."""
    if use.kind in ("operator", "update"):
        return f"`{_source(use.anchor)}`" if use.kind == "operator" else f"updating `{_source(use.anchor)}`"
    if use.kind == "with":
        return f"`with {_source(use.operand)}`"
    if use.kind in ("reading", "setting", "deleting"):
        return f"{use.kind} `{_source(use.anchor)}`"
    return f"{use.kind} `{_source(use.operand)}`"


def _source(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."
