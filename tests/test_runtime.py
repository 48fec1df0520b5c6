"""The rewritten chatterbox-tts runs, next to the original, with the same seeded weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, installed_chatterbox

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow

PROBE = Path(__file__).parent / "probes" / "embed_ref.py"
NON_ROUND = 24000 * 5 + 500  # 5 s + 500 samples at 24 kHz: not a multiple of 40 ms
ROUND = 24000 * 5
INPLACE_ERROR = "Inplace update to inference tensor outside InferenceMode is not allowed"


def _probe(tree: Path | None, tmp_path: Path, name: str, samples: int) -> dict:
    """Run the probe against `tree` (a folder holding `chatterbox`), or the installed package."""
    out = tmp_path / f"{name}.pt"
    env = {**os.environ, "PYTHONPATH": str(tree) if tree else ""}
    subprocess.run([sys.executable, str(PROBE), str(out), str(samples)], check=True, env=env, cwd=tmp_path,
                   capture_output=True)
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """The installed package copied three ways: blindly converted, and through the tool (default, inference-mode)."""
    base = tmp_path_factory.mktemp("trees")
    source = base / "source" / "chatterbox"
    shutil.copytree(installed_chatterbox(), source, ignore=shutil.ignore_patterns("__pycache__"))
    blind = base / "blind"
    shutil.copytree(source.parent, blind)
    tokenizer = blind / "chatterbox/models/s3tokenizer/s3tokenizer.py"
    text = tokenizer.read_text()
    assert text.count("@torch.no_grad()") == 1
    tokenizer.write_text(text.replace("@torch.no_grad()", "@torch.inference_mode()"))
    tool = base / "tool"
    cli("apply", "--output", tool / "chatterbox", source, check_rc=0)
    only_inference_mode = base / "only-inference-mode"
    cli("apply", "--select", "inference-mode", "--output", only_inference_mode / "chatterbox", source, check_rc=0)
    return {"blind": blind, "tool": tool, "inference-mode": only_inference_mode}


def test_blind_conversion_crashes_embed_ref_on_non_round_clips(trees, tmp_path):
    crashed = _probe(trees["blind"], tmp_path, "blind", NON_ROUND)
    assert INPLACE_ERROR in crashed["error"]
    round_clip = _probe(trees["blind"], tmp_path, "blind-round", ROUND)
    assert "error" not in round_clip  # a test with round lengths only would miss the crash


def test_tool_output_runs_embed_ref_with_the_same_values_and_no_graph(trees, tmp_path):
    original = _probe(None, tmp_path, "original", NON_ROUND)
    rewritten = _probe(trees["tool"], tmp_path, "tool", NON_ROUND)
    assert "error" not in rewritten
    assert rewritten["checksum"] == original["checksum"]  # identical seeded weights
    assert original["outputs"].keys() == rewritten["outputs"].keys()
    for name, expected in original["outputs"].items():
        actual = rewritten["outputs"][name]
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, name
        assert torch.allclose(actual.double(), expected.double(), rtol=0, atol=1e-5), name
    assert original["graph"]["embedding"] is True
    assert not any(rewritten["graph"].values())


def test_inference_mode_alone_leaves_the_tokenizer_site_and_runs(trees, tmp_path):
    result = _probe(trees["inference-mode"], tmp_path, "inference-mode", NON_ROUND)
    assert "error" not in result
    tokenizer = trees["inference-mode"] / "chatterbox/models/s3tokenizer/s3tokenizer.py"
    assert "@torch.no_grad()" in tokenizer.read_text()
