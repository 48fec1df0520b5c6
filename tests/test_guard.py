"""The engine's run-time guard: outside what the transforms own, a rewritten file's AST equals the original's."""

from __future__ import annotations

import ast

from chatterbox_codemod.analysis import build_index
from chatterbox_codemod.config import Config
from chatterbox_codemod.engine import _rewrite_one, analyze, changes_outside_owned, select_transforms
from chatterbox_codemod.report import Site, Status
from chatterbox_codemod.sources import make_target, read_source
from chatterbox_codemod.transforms import TRANSFORMS
from chatterbox_codemod.transforms.base import Finding
from chatterbox_codemod.transforms.inference_mode import GradSwitchAnchor

ORIGINAL = """
import torch
from torch import no_grad as ng


@ng()
def score(x):
    with torch.no_grad(), open("log") as log:
        y = x.softmax(-1)
    return y
"""


def test_what_the_transforms_own_may_change():
    rewritten = ORIGINAL.replace("from torch import no_grad as ng\n", "").replace("@ng()", "@torch.inference_mode()")
    rewritten = rewritten.replace("with torch.no_grad(),", "with torch.inference_mode(),")
    assert not changes_outside_owned(ORIGINAL, rewritten, TRANSFORMS)


def test_anything_else_is_caught():
    for edit in (("x.softmax(-1)", "x.softmax(0)"), ('open("log")', 'open("log2")'), ("def score", "def scored"),
                 ("return y", "return y.clone()")):
        assert changes_outside_owned(ORIGINAL, ORIGINAL.replace(*edit), TRANSFORMS), edit


def test_a_transform_owns_only_its_own_nodes():
    """Boundary calls belong to channels-last: with only the grad-mode transforms selected they count."""
    boundary = ORIGINAL.replace("return y", "return _channels_last(y)")
    assert not changes_outside_owned(ORIGINAL, boundary, TRANSFORMS)
    grad_only = [t for t in TRANSFORMS if t.id != "channels-last"]
    assert changes_outside_owned(ORIGINAL, boundary, grad_only)


def test_the_rewriting_worker_judges_against_the_selected_transforms(tmp_path):
    """The comparison runs in the worker that rewrote the file: a transform that is not selected owns nothing."""
    path = tmp_path / "score.py"
    path.write_text(ORIGINAL)
    source = read_source(path, make_target(tmp_path))
    index = build_index(tmp_path, [(path, source.text, ast.parse(source.text))])
    findings = [f.portable() for f in analyze(index, select_transforms(["inference-mode"], []), {path}, str, False,
                                              Config()) if f.site.rewritten]
    assert [f.site.line for f in findings] == [6, 8]
    plan = [("inference-mode", findings)]

    done = _rewrite_one((source, plan, ("entry-points", "inference-mode", "channels-last")))
    assert done.error is None and not done.outside_owned
    assert b"@torch.inference_mode()" in done.data and b"from torch import no_grad" not in done.data

    done = _rewrite_one((source, plan, ("channels-last",)))
    assert done.error is None and done.outside_owned


def test_a_rewritten_node_is_owned_however_it_is_spelled(tmp_path):
    """`@off()` calls a grad-mode function that another module renames: the file alone cannot tell, but the
    site's anchor says which node the rewrite replaces, and only that node is owned so."""
    original = "from .helpers import off\n\n\n@off()\ndef score(x):\n    return x\n"
    rewritten = "import torch\nfrom .helpers import off\n\n\n@torch.inference_mode()\ndef score(x):\n    return x\n"
    anchor = GradSwitchAnchor("decorator", 0, ast.dump(ast.parse("off()", mode="eval").body), 4)
    site = Site(transform="inference-mode", path=tmp_path / "score.py", line=4, symbol="score",
                status=Status.APPLIED, reason="")
    rewrites = {"inference-mode": [Finding(site, anchor)]}
    assert changes_outside_owned(original, rewritten, TRANSFORMS)
    assert not changes_outside_owned(original, rewritten, TRANSFORMS, rewrites)
    other = original.replace("@off()", "@off(False)")
    assert changes_outside_owned(other, rewritten, TRANSFORMS, rewrites)
