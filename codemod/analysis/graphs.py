"""Strongly connected components of a directed graph whose nodes are any objects, kept by identity."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def strongly_connected(roots: Iterable, successors: Callable[[object], list],
                       finished: Callable[[object], bool] = lambda node: False) -> list[list]:
    """The components reachable from `roots` (Tarjan's algorithm, iterative, so no depth overflows), each a
    list, in the order they complete: each after every component it reaches. A node for which `finished`
    holds (one a previous call returned) is not entered again."""
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list = []
    components: list[list] = []
    for root in roots:
        if id(root) in order or finished(root):
            continue
        work = [(root, iter(successors(root)))]
        order[id(root)] = low[id(root)] = len(order)
        stack.append(root)
        on_stack.add(id(root))
        while work:
            node, pending = work[-1]
            advanced = False
            for succ in pending:
                if id(succ) not in order:
                    if finished(succ):
                        continue
                    order[id(succ)] = low[id(succ)] = len(order)
                    stack.append(succ)
                    on_stack.add(id(succ))
                    work.append((succ, iter(successors(succ))))
                    advanced = True
                    break
                if id(succ) in on_stack:
                    low[id(node)] = min(low[id(node)], order[id(succ)])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[id(parent)] = min(low[id(parent)], low[id(node)])
            if low[id(node)] == order[id(node)]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(id(member))
                    component.append(member)
                    if member is node:
                        break
                components.append(component)
    return components
