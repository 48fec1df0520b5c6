"""The engine's run-time guard: outside what the transforms own, a rewritten file's AST equals the original's."""

from __future__ import annotations

from chatterbox_codemod.engine import changes_outside_owned
from chatterbox_codemod.transforms import TRANSFORMS

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
