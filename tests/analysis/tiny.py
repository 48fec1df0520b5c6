"""Tiny projects built from strings, indexed the way the engine indexes a real one."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from chatterbox_codemod.analysis import FunctionInfo, ProjectIndex, build_index
from chatterbox_codemod.analysis.configs import read_configs
from chatterbox_codemod.analysis.project import CallSite

HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"


def index_of(root: Path, files: dict[str, str]) -> ProjectIndex:
    """Write `files` under `root` (a leading `HEADER` stays unindented) and index them."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        header = HEADER if text.startswith(HEADER) else ""
        path.write_text(header + textwrap.dedent(text[len(header):]).lstrip())
    modules = [(path, path.read_text(), ast.parse(path.read_text())) for path in sorted(root.rglob("*.py"))]
    return build_index(root, modules, read_configs([(p, p.read_bytes()) for p in sorted(root.rglob("*.yaml"))]))


def function(index: ProjectIndex, short: str) -> FunctionInfo:
    """The function a reviewer would call `Class.method` or `function`."""
    found = [fn for fn in index.functions.values() if fn.short == short]
    assert len(found) == 1, sorted(fn.short for fn in index.functions.values())
    return found[0]


def call(index: ProjectIndex, caller: str, spelled: str) -> CallSite:
    """The call in `caller` whose callee is spelled `spelled` (`self.enc`, `helper`)."""
    found = [site for site in function(index, caller).calls if ast.unparse(site.node.func) == spelled]
    assert found, [ast.unparse(site.node.func) for site in function(index, caller).calls]
    return found[0]


def expression(fn: FunctionInfo, text: str) -> ast.expr:
    """The expression of `fn` that unparses to `text`."""
    for node in fn.nodes:
        if isinstance(node, ast.expr) and ast.unparse(node) == text:
            return node
    raise AssertionError(f"`{text}` not in {fn.short}")
