"""Every transform over large real trees: nothing crashes, nothing but the reported sites changes.

The corpus: the installed torch, transformers and diffusers sources and both chatterbox
wheels. For each, `apply --output` writes a rewritten copy, and the test checks that
- the run ends with per-file messages at most (no traceback), and the copy is complete;
- every output file parses, and a second run over the copy has nothing left to rewrite;
- a file the report does not list as rewritten is byte-identical;
- in a rewritten file, the module's AST is unchanged apart from what the transforms own
  (grad-mode decorators and `with` items, imports, channels-last boundaries).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest
from conftest import cli, download_wheel, unpack_wheel

pytestmark = pytest.mark.slow

GRAD_MODES = {"no_grad", "inference_mode", "set_grad_enabled", "enable_grad"}
ERROR_LINE = re.compile(r"^\S.*?:(\d+:)? error: .+$")


class _Normalize(ast.NodeTransformer):
    """Erase exactly what the transforms may change, so the rest must compare equal."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        node.body = [s for s in node.body if not _is_channels_last_helper(s)]
        return self.generic_visit(node)

    def visit_Import(self, node):
        return None

    visit_ImportFrom = visit_Import

    def visit_FunctionDef(self, node):
        node.decorator_list = [d for d in node.decorator_list if not _is_grad_mode(d)]
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_withitem(self, node):
        if _is_grad_mode(node.context_expr):
            node.context_expr = ast.Name("GRAD_MODE", ast.Load())
        return self.generic_visit(node)

    def visit_If(self, node):
        if isinstance(node.test, ast.Name) and node.test.id.startswith("_CHANNELS_LAST"):
            return None  # the one-time weight conversion at the end of __init__
        return self.generic_visit(node)

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Name) and func.id.startswith("_channels_last") and len(node.args) == 1:
            return node.args[0]  # entry boundary
        if isinstance(func, ast.Attribute) and func.attr == "contiguous" and not node.args and not node.keywords:
            return func.value  # exit boundary (erased on both sides alike)
        return node

    def visit_Assign(self, node):
        self.generic_visit(node)
        if len(node.targets) == 1 and ast.dump(node.targets[0]).replace("Store", "Load") == ast.dump(node.value):
            return None  # `y = y.contiguous()` once the boundary is erased
        return node


def _is_grad_mode(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name in GRAD_MODES


def _is_channels_last_helper(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.FunctionDef):
        return statement.name.startswith("_channels_last")
    if isinstance(statement, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id.startswith("_CHANNELS_LAST") for t in statement.targets)
    return False


def _normalized(source: bytes) -> str:
    return ast.dump(_Normalize().visit(ast.parse(source)))


def _installed(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        pytest.fail(f"{package} is not installed; the test extra installs it with chatterbox-tts")
    return Path(spec.origin).parent


def _corpus(name: str, wheel_cache: Path, tmp_path: Path) -> Path:
    if name.startswith("chatterbox"):
        return unpack_wheel(download_wheel(name, wheel_cache), tmp_path / "wheel")
    return _installed(name)


@pytest.mark.parametrize("name", ["chatterbox-tts", "chatterbox-streaming", "diffusers", "transformers", "torch"])
def test_corpus(name, wheel_cache, tmp_path):
    source = _corpus(name, wheel_cache, tmp_path)
    output = tmp_path / "out" / source.name
    report_path = tmp_path / "report.json"
    proc = cli("apply", "--output", output, "--report", report_path, source)
    assert proc.returncode in (0, 2), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    report = json.loads(report_path.read_text())
    for line in proc.stderr.splitlines():
        if " error: " in line:
            assert ERROR_LINE.match(line), line
    failed = {e["path"] for e in report["errors"]}

    originals = {p.relative_to(source).as_posix(): p for p in source.rglob("*.py") if "__pycache__" not in p.parts}
    copies = {p.relative_to(output).as_posix(): p for p in output.rglob("*.py")}
    assert set(copies) == set(originals)

    rewritten = {s["path"] for s in report["sites"] if s["rewritten"]}
    assert rewritten == {r for r in rewritten if r not in failed}
    changed = set()
    for rel, copy in copies.items():
        before, after = originals[rel].read_bytes(), copy.read_bytes()
        if rel not in rewritten:
            assert after == before, f"{rel} changed but the report lists no rewritten site in it"
            continue
        changed.add(rel)
        ast.parse(after)
        assert _normalized(after) == _normalized(before), f"{rel}: more changed than the reported sites"
    assert changed == rewritten

    again = cli("apply", "--check", output)
    assert again.returncode in (0, 2), again.stderr[-3000:]
    summary = re.search(r"(\d+) files? scanned, (\d+) would be rewritten", again.stderr)
    assert summary and summary.group(2) == "0", again.stderr[-3000:]
