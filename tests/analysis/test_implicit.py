"""Where Python runs a method the code does not name, read off the syntax (`analysis/implicit.py`)."""

from __future__ import annotations

import ast

import pytest
from chatterbox_codemod.analysis.implicit import describe, uses

ITERATING = frozenset({"list", "enumerate"})


def found(source: str) -> list[tuple[str, str, tuple[str, ...], bool]]:
    """Every use in `source`, as (how a reason names it, the operand, the names, whether it iterates)."""
    tree = ast.parse(source)

    def library(call: ast.Call) -> str | None:
        return call.func.id if isinstance(call.func, ast.Name) else None

    return [(describe(use), ast.unparse(use.operand), use.names, use.iterates)
            for node in ast.walk(tree) for use in uses(node, library, ITERATING)]


@pytest.mark.parametrize(("source", "expected"), [
    ("t[i]", [("`t[i]`", "t", ("__getitem__",), False)]),
    ("t[i] = v", [("`t[i]`", "t", ("__setitem__",), False)]),
    ("a @ b", [("`a @ b`", "a", ("__matmul__",), False), ("`a @ b`", "b", ("__rmatmul__",), False)]),
    ("a += b", [("updating `a`", "a", ("__iadd__", "__add__"), False), ("updating `a`", "b", ("__radd__",), False)]),
    ("-a", [("`-a`", "a", ("__neg__",), False)]),
    ("a < b", [("`a < b`", "a", ("__lt__",), False), ("`a < b`", "b", ("__gt__",), False)]),
    ("x in xs", [("`x in xs`", "xs", ("__contains__",), True)]),
    ("x is None", []),
    ("with lock:\n    pass", [("`with lock`", "lock", ("__enter__", "__exit__"), False)]),
    ("if ready:\n    pass", [("testing `ready`", "ready", ("__bool__", "__len__"), False)]),
    ("if a == b:\n    pass", [("`a == b`", "a", ("__eq__",), False), ("`a == b`", "b", ("__eq__",), False)]),
    ("len(xs)", [("`len(xs)`", "xs", ("__len__",), False)]),
    ("f'{x}'", [("formatting `x`", "x", ("__format__", "__str__", "__repr__"), False)]),
    ("x.p", [("reading `x.p`", "x", ("p", "__getattr__", "__getattribute__"), False)]),
    ("x.p = v", [("setting `x.p`", "x", ("p", "__setattr__"), False)]),
    ("for y in ys:\n    pass", [("iterating `ys`", "ys", (), True)]),
    ("a, b = pair", [("iterating `pair`", "pair", (), True)]),
    ("f(*args)", [("iterating `args`", "args", (), True)]),
    ("list(gen)", [("iterating `gen`", "gen", (), True)]),
    ("sorted(gen)", []),  # not one of the iterating callables this test names
])
def test_each_syntax_names_the_methods_python_may_run_and_the_value_that_picks_them(source, expected):
    assert found(source) == expected


def test_a_long_expression_is_cut_in_the_reason():
    source = "table[" + " + ".join(f"offset_{i}" for i in range(12)) + "]"
    (described, *_), *_ = found(source)
    assert described == "`table[offset_0 + offset_1 + offset_2 + offset_3 + offset_...`"  # 60 characters
