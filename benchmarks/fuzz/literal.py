"""The blind converter: the plan's literal edit, independent of the tool's analysis.

It finds every grad-off site in a file by its spelling alone (`no_grad` and
`set_grad_enabled(False)` decorators and `with` items, however torch or
`no_grad` was imported) and turns the ones asked for into
`torch.inference_mode()`. It can also put `@torch.inference_mode()` on a
function. The fuzzer uses it for the `--baseline literal` run (every site) and
to measure what the tool leaves on the table (one site at a time).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

INFERENCE_MODE = '__import__("torch").inference_mode()'


@dataclass(frozen=True)
class LiteralSite:
    path: str  # relative to the project
    line: int  # of the decorator or the `with`
    col: int
    end_col: int  # the grad-off call (or bare decorator) spans [col, end_col) on that line


def _is_grad_off(node: ast.expr, decorator: bool) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    name = target.attr if isinstance(target, ast.Attribute) else target.id if isinstance(target, ast.Name) else ""
    if name in ("no_grad", "ng"):
        return isinstance(node, ast.Call) or decorator
    if name == "set_grad_enabled" and isinstance(node, ast.Call):
        flags = [*node.args, *(k.value for k in node.keywords if k.arg == "mode")]
        return len(flags) == 1 and isinstance(flags[0], ast.Constant) and flags[0].value is False
    return False


def find_sites(path: str, text: str) -> list[LiteralSite]:
    """Every grad-off decorator and `with` item in `text`, each on one line."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            candidates = [(d, True) for d in node.decorator_list]
        elif isinstance(node, ast.With):
            candidates = [(item.context_expr, False) for item in node.items]
        else:
            continue
        for expr, decorator in candidates:
            if _is_grad_off(expr, decorator) and expr.lineno == expr.end_lineno:
                found.append(LiteralSite(path, expr.lineno, expr.col_offset, expr.end_col_offset))
    return sorted(found, key=lambda s: (s.line, s.col))


def convert(text: str, sites: list[LiteralSite]) -> str:
    """`text` with each of `sites` (found in it) turned into inference mode."""
    lines = text.splitlines(keepends=True)
    for site in sorted(sites, key=lambda s: (s.line, -s.col)):
        line = lines[site.line - 1]
        lines[site.line - 1] = line[: site.col] + INFERENCE_MODE + line[site.end_col:]
    return "".join(lines)


def decorate(text: str, def_line: int) -> str:
    """`text` with `@torch.inference_mode()` as the innermost decorator of the function defined on `def_line`."""
    lines = text.splitlines(keepends=True)
    header = lines[def_line - 1]
    indent = header[: len(header) - len(header.lstrip())]
    lines.insert(def_line - 1, f"{indent}@{INFERENCE_MODE}\n")
    return "".join(lines)
