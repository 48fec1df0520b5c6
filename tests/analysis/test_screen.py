"""The screen: what a target can hold, from its syntax alone (`analysis.screen`, `Transform.may_find_sites`).

That the screen never hides a site is checked where sites are found: every fixture case is a one-file run
screened first, tests/test_real_trees.py asks it about every site of the chatterbox trees, and the fuzzer
about every site of its programs (`screen_misses`).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from chatterbox_codemod.analysis.screen import ProjectFacts, methods, names_grad_api, renames_grad_api
from chatterbox_codemod.engine import CHECK
from chatterbox_codemod.report import Status
from chatterbox_codemod.transforms import by_id
from conftest import run_engine


def tree(text: str) -> ast.Module:
    return ast.parse(textwrap.dedent(text))


@pytest.mark.parametrize("text", [
    "import torch\n@torch.no_grad()\ndef f(x):\n    return x\n",
    "from torch import inference_mode\n",
    "import torch.autograd.grad_mode as gm\nwith gm.set_grad_enabled(False):\n    pass\n",
    "import torch.enable_grad as on\n",  # the import spells it (the rename is the project's concern too)
    "from .helpers import no_grad\n",
])
def test_a_file_that_names_a_grad_mode_function(text):
    assert names_grad_api(tree(text))


@pytest.mark.parametrize("text", [
    "import torch\ndef f(x):\n    return torch.autograd.grad(x, x)\n",
    "NOTE = 'wrap it in no_grad'\n# no_grad here would break training\n",
    "from .helpers import off\n@off()\ndef f(x):\n    return x\n",  # a rename elsewhere: `renames_grad_api`
])
def test_a_file_that_names_none(text):
    assert not names_grad_api(tree(text))


RENAMES = {
    "plain": "from torch import no_grad as off\n",
    "parenthesised, with a comment": "from torch import (\n    enable_grad,\n    no_grad  # grad off\n    as off,\n)\n",
    "continued line": "from torch import no_grad \\\n    as off\n",
    "a module path": "import torch.inference_mode as im\n",
    "nested in a function": "def f():\n    from torch.autograd.grad_mode import set_grad_enabled as switch\n",
    "in a file that does not parse": "from torch import no_grad as off\ndef broken(:\n",
}


@pytest.mark.parametrize("text", RENAMES.values(), ids=RENAMES.keys())
def test_an_import_that_renames_a_grad_mode_function(text):
    files = [(Path("a.py"), "import torch\n"), (Path("b.py"), text)]
    assert renames_grad_api(files) == Path("b.py")


def test_text_that_only_looks_like_a_rename():
    files = [(Path("a.py"), '"""Use no_grad as a decorator."""\nfrom torch import no_grad, enable_grad\n'),
             (Path("b.py"), "import torch\nwith torch.no_grad() as ctx:\n    pass\n")]
    assert renames_grad_api(files) is None


def test_what_each_transform_looks_for():
    module_functions = tree("def forward(x):\n    return x\ndef generate(x):\n    return x\n")
    protocol_only = tree("""
        class Config:
            def __init__(self):
                self.size = 2
            def forward(self, x):
                return x
            def from_file(self, path):
                pass
            def load_weights(self, path):
                pass
            def _private(self):
                pass
    """)
    public = tree("class Tts:\n    def generate(self, text):\n        return text\n")
    local_block = tree("def build():\n    class Block:\n        def forward(self, x):\n            return x\n")
    plain = ProjectFacts(grad_api_renamed=None)
    entry, channels = by_id("entry-points"), by_id("channels-last")
    assert [fn.name for fn in methods(protocol_only)] == ["__init__", "forward", "from_file", "load_weights",
                                                           "_private"]
    assert not entry.may_find_sites(module_functions, {}, plain) and not entry.may_find_sites(protocol_only, {}, plain)
    assert entry.may_find_sites(public, {}, plain)
    assert entry.may_find_sites(module_functions, {"include": ["generate"]}, plain)  # `include`: any function
    assert not channels.may_find_sites(module_functions, {}, plain) and not channels.may_find_sites(public, {}, plain)
    assert channels.may_find_sites(protocol_only, {}, plain) and channels.may_find_sites(local_block, {}, plain)
    autocast, inference = by_id("autocast"), by_id("inference-mode")
    assert not autocast.may_find_sites(public, {}, plain) and autocast.may_find_sites(public, {"include": ["*"]}, plain)
    # A project that renames a grad-mode function: any file may refer to it.
    renamed = ProjectFacts(grad_api_renamed=Path("helpers.py"))
    assert not inference.may_find_sites(public, {}, plain) and inference.may_find_sites(public, {}, renamed)
    assert autocast.may_find_sites(public, {}, renamed)


def _project(root: Path, files: dict[str, str]) -> Path:
    (root / "pyproject.toml").write_text("")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def test_a_grad_mode_function_renamed_in_another_file_keeps_the_target_screened_in(tmp_path):
    """And the rewrite owns the decorator it replaces, however it is spelled (the verification compares the rest)."""
    root = _project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/helpers.py": "from torch import no_grad as off\n",
        "pkg/infer.py": """
            from .helpers import off

            @off()
            def double(x):
                return x * 2
        """,
    })
    report = run_engine([root / "pkg" / "infer.py"], mode=CHECK, project_root=root)
    assert [(s.transform, s.line, s.symbol, s.status, s.rewritten) for s in report.sites] == [
        ("inference-mode", 3, "double", Status.APPLIED, True)]
    assert report.errors == []
    assert report.changed[0].rewritten.decode() == (
        "import torch\nfrom .helpers import off\n\n@torch.inference_mode()\ndef double(x):\n    return x * 2\n")


def test_a_target_that_can_hold_no_site_gets_an_empty_report(tmp_path):
    """`settings.py` has no shape any transform looks for: no site and no note, though the rest of the project
    has a site and a lookup that would make the run say that no function's callers can be followed."""
    root = _project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/settings.py": "from .infer import double\n\nSIZE = 2\n\ndef scaled(x):\n    return double(x) * SIZE\n",
        "pkg/infer.py": """
            import torch

            @torch.no_grad()
            def double(x):
                return x * 2

            def describe(obj, key):
                return getattr(obj, key)
        """,
    })
    screened = run_engine([root / "pkg" / "settings.py"], mode=CHECK, project_root=root)
    assert (screened.sites, screened.notes, screened.errors, screened.scanned) == ([], [], [], 1)
    whole = run_engine([root / "pkg"], mode=CHECK, project_root=root)
    assert [(s.transform, s.symbol) for s in whole.sites] == [("inference-mode", "double")]
    assert whole.notes[0].startswith("1 lookup by a name computed at run time")
