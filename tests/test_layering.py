"""One direction of dependency, checked on the sources: cli -> engine -> transforms -> analysis, and the bench
only when its command runs."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import ROOT

# The import name of each folder, and what each layer may import from this project.
PACKAGES = {"codemod": "chatterbox_codemod", "codemod/analysis": "chatterbox_codemod.analysis",
            "transforms": "chatterbox_codemod.transforms", "benchmarks": "chatterbox_codemod.benchmarks"}
ALLOWED = {
    "codemod/analysis": {"chatterbox_codemod.analysis"},
    "transforms": {"chatterbox_codemod.analysis", "chatterbox_codemod.report", "chatterbox_codemod.transforms"},
}


def _project_imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = PACKAGES[path.parent.relative_to(ROOT).as_posix()].split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "chatterbox_codemod"}


def test_lower_layers_do_not_import_upper_ones():
    for folder, allowed in ALLOWED.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            for name in _project_imports(path):
                assert any(name == a or name.startswith(a + ".") for a in allowed), f"{path.name} imports {name}"


def test_apply_loads_neither_torch_nor_the_bench(tmp_path):
    (tmp_path / "m.py").write_text("import torch\n\n\n@torch.no_grad()\ndef f(x):\n    return x.sum().item()\n")
    probe = ("import sys\nfrom chatterbox_codemod.cli import main\ntry:\n    main(['apply', '--check', sys.argv[1]])\n"
             "except SystemExit:\n    pass\nloaded = ('torch', 'matplotlib', 'chatterbox_codemod.benchmarks.cli')\n"
             "print(sorted(m for m in loaded if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "m.py")], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr
