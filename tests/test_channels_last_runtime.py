"""CAMPPlus from the channels-last rewrite of chatterbox-tts matches the original, with the switch on and off."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import cli, installed_chatterbox

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow

ATOL = 1e-5  # fp32

# Runs in a fresh interpreter against whichever `chatterbox` is first on PYTHONPATH. The first
# run saves its seeded CAMPPlus weights; the others load them, so all see the same weights.
PROBE = textwrap.dedent('''\
    import sys

    import torch

    import chatterbox.models.s3gen.xvector as xvector

    out, weights = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = xvector.CAMPPlus().eval()
    if sys.argv[3] == "save":
        torch.save(model.state_dict(), weights)
    else:
        model.load_state_dict(torch.load(weights))
    model = model.double().float()  # `.to(...)` keeps the layout of the weights
    conv = model.head.conv2.weight  # 32 in-channels: its layouts are told apart
    result = {"module": xvector.__file__, "weights_channels_last": conv.is_contiguous(memory_format=torch.channels_last)
              and not conv.is_contiguous()}
    generator = torch.Generator().manual_seed(1)
    clips = [torch.randn(16000 * 3, generator=generator), torch.randn(16000 * 2, generator=generator)]
    features = torch.randn(2, 200, 80, generator=generator)
    with torch.inference_mode():
        result["inference"] = model.inference(clips)
    result["forward"] = model(features).detach()  # autograd on, as embed_ref runs it
    try:  # FCM makes its input rank 4 with unsqueeze(1); an unbatched (F, T) input stays rank 3
        model.head(torch.randn(1, 200, generator=generator))
    except Exception as error:
        result["unbatched"] = f"{type(error).__name__}: {error}"
    torch.save(result, out)
''')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Probe results of the installed package, and of its rewrite with the switch on and off."""
    base = tmp_path_factory.mktemp("channels-last")
    source = base / "source" / "chatterbox"
    shutil.copytree(installed_chatterbox(), source, ignore=shutil.ignore_patterns("__pycache__"))
    rewritten = base / "rewritten"
    cli("apply", "--select", "channels-last", "--output", rewritten / "chatterbox", source, check_rc=0)
    probe = base / "probe.py"
    probe.write_text(PROBE)
    weights = base / "campplus.pt"

    def run(name: str, tree: Path | None, mode: str, **env: str) -> dict:
        out = base / f"{name}.pt"
        environment = {**os.environ, "PYTHONPATH": str(tree) if tree else "", **env}
        subprocess.run([sys.executable, str(probe), str(out), str(weights), mode], check=True, env=environment,
                       cwd=base, capture_output=True)
        return torch.load(out, weights_only=False)

    return {
        "rewritten": rewritten,
        "original": run("original", None, "save"),
        "channels_last": run("channels-last", rewritten, "load"),
        "switched_off": run("switched-off", rewritten, "load", CHATTERBOX_CHANNELS_LAST="0"),
    }


def test_each_run_imports_the_package_it_should(runs):
    assert Path(runs["original"]["module"]).parent == installed_chatterbox() / "models" / "s3gen"
    for name in ("channels_last", "switched_off"):
        assert Path(runs[name]["module"]).is_relative_to(runs["rewritten"])
    assert "_channels_last(x)" in (runs["rewritten"] / "chatterbox" / "models/s3gen/xvector.py").read_text()


def test_channels_last_gives_the_original_outputs(runs):
    original, rewritten = runs["original"], runs["channels_last"]
    assert rewritten["weights_channels_last"]  # after load_state_dict and .double().float()
    assert not original["weights_channels_last"]
    for output in ("inference", "forward"):
        torch.testing.assert_close(rewritten[output], original[output], atol=ATOL, rtol=0)


def test_switched_off_runs_exactly_as_the_original(runs):
    original, switched_off = runs["original"], runs["switched_off"]
    assert not switched_off["weights_channels_last"]
    for output in ("inference", "forward"):
        assert torch.equal(switched_off[output], original[output]), output


def test_an_unbatched_input_fails_as_it_did(runs):
    """The boundary lets a rank-3 input through, so FCM's BatchNorm2d raises its own error, not a layout error."""
    expected = "ValueError: expected 4D input (got 3D input)"
    assert runs["original"]["unbatched"] == expected
    assert runs["channels_last"]["unbatched"] == expected
    assert runs["switched_off"]["unbatched"] == expected
