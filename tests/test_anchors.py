"""Every anchor a transform hands the engine finds its node in the file LibCST parses."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import libcst as cst
from chatterbox_codemod.analysis import build_index
from chatterbox_codemod.config import Config
from chatterbox_codemod.engine import analyze, select_transforms

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.conv(x)

        @torch.no_grad()
        def score(self, x):
            return self.lin(x).argmax(-1).tolist()

        def embed(self, x):
            with open("log") as log, torch.no_grad():
                y = self.lin(x).softmax(-1)
            return y.sum().item()

        def features(self, x):
            return self.lin(x)
''')


def test_anchors_locate_their_nodes(tmp_path: Path):
    path = tmp_path / "head.py"
    path.write_text(SOURCE)
    index = build_index(tmp_path, [(path, SOURCE, ast.parse(SOURCE))])
    findings = analyze(index, select_transforms(None, []), {path}, lambda p: p.name, False, Config())
    module = cst.parse_module(SOURCE)
    located = {}
    for finding in findings:
        if finding.site.rewritten:
            node = finding.anchor.locate(module)
            located[(finding.site.transform, finding.site.symbol)] = module.code_for_node(node).strip()
    assert located[("inference-mode", "Head.score")] == "@torch.no_grad()"
    assert located[("inference-mode", "Head.embed")] == "torch.no_grad()"
    assert located[("entry-points", "Head.features")].startswith("def features(self, x):")
    assert located[("channels-last", "Head")].startswith("class Head(nn.Module):")
