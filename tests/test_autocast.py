"""The `autocast` transform at run time: rewritten code is imported and run under each CHATTERBOX_AUTOCAST value.

- `off` (and unset): the rewritten module computes bit for bit what the original computes, and a caller's own
  autocast region still reaches inside (no `autocast(enabled=False)` is entered);
- `bf16` / `fp16` on the CPU: modules run in the low precision, the fenced helpers run in float32 with autocast
  off, and HiFT-style code that raises under plain autocast (`torch.complex` on bfloat16) runs;
- the switch: accepted spellings, an unknown value raising at import, and the float32 fallback (with a warning)
  for `bf16` on a GPU without bfloat16.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import shutil
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from chatterbox_codemod.engine import WRITE
from conftest import run_engine

ENV = "CHATTERBOX_AUTOCAST"

SOURCE = textwrap.dedent('''
    import torch
    from torch import nn

    SEEN = []  # what the code saw: (where, dtypes...)


    class Vocoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(16, 18)
            self.register_buffer("window", torch.hann_window(16))

        def _phase(self, f0):
            SEEN.append(("phase", f0.dtype))
            return torch.cumsum(f0 / 24000, dim=-1) % 1

        def _istft(self, magnitude, phase):
            SEEN.append(("istft", magnitude.dtype, phase.dtype, torch.is_autocast_enabled("cpu")))
            spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
            return torch.istft(spec, 16, 4, 16, window=self.window)

        @torch.inference_mode()
        def inference(self, x):
            h = self.proj(x).transpose(1, 2)
            SEEN.append(("proj", h.dtype))
            magnitude = torch.exp(h[:, :9].clamp(max=3))
            phase = self._phase(h[:, 9:] * 100 + 200)
            return self._istft(magnitude, phase), h
''')

_names = itertools.count()


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> tuple[Path, Path]:
    """(original, rewritten) copies of the module."""
    root = tmp_path_factory.mktemp("autocast")
    original = root / "original" / "vocoder.py"
    original.parent.mkdir()
    original.write_text(SOURCE)
    project = root / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    rewritten = project / "vocoder.py"
    shutil.copy(original, rewritten)
    report = run_engine([rewritten], mode=WRITE, select=["autocast"], project_root=project)
    assert not report.errors
    assert {(s.symbol, s.status) for s in report.sites} == {
        ("Vocoder.inference", "applied"), ("Vocoder._phase", "applied"), ("Vocoder._istft", "applied")}
    text = rewritten.read_text()
    assert "with _autocast(self):" in text and "_autocast_fp32(torch.exp)(" in text
    assert text.count("@_autocast_fp32\n") == 2
    return original, rewritten


def load(path: Path, monkeypatch, value: str | None):
    """Import `path` as a fresh module with CHATTERBOX_AUTOCAST set to `value` (None: unset)."""
    if value is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, value)
    spec = importlib.util.spec_from_file_location(f"_autocast_case_{next(_names)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(module, state=None):
    torch.manual_seed(0)
    model = module.Vocoder().eval()
    if state is not None:
        model.load_state_dict(state)
    return model


def inputs():
    return torch.randn(2, 12, 16, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("value", [None, "off", "", " OFF "])
def test_off_is_bit_identical(trees, monkeypatch, value):
    original, rewritten = trees
    before = load(original, monkeypatch, None)
    after = load(rewritten, monkeypatch, value)
    assert after._AUTOCAST == "off"
    model = build(before)
    wav, h = model.inference(inputs())
    wav2, h2 = build(after, model.state_dict()).inference(inputs())
    assert wav.dtype == wav2.dtype == h2.dtype == torch.float32
    assert torch.equal(wav, wav2) and torch.equal(h, h2)
    assert [entry[0] for entry in after.SEEN] == ["proj", "phase", "istft"]
    assert after.SEEN == before.SEEN  # the helpers saw the same dtypes: every fence is the identity


def test_off_leaves_the_callers_own_autocast_alone(trees, monkeypatch):
    """`off` enters no autocast context at all: a region the caller opened reaches inside, as in the original."""
    original, rewritten = trees
    before, after = load(original, monkeypatch, None), load(rewritten, monkeypatch, "off")
    for module in (before, after):
        with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError, match="BFloat16"):
            build(module).inference(inputs())  # torch.complex on bfloat16, unfenced in both
        assert module.SEEN[0] == ("proj", torch.bfloat16)


@pytest.mark.parametrize("value,low", [("bf16", torch.bfloat16), ("fp16", torch.float16), ("BF16", torch.bfloat16)])
def test_low_precision_with_fences_in_float32(trees, monkeypatch, value, low):
    original, rewritten = trees
    before = load(original, monkeypatch, None)
    reference_wav, _ = build(before).inference(inputs())
    after = load(rewritten, monkeypatch, value)
    wav, h = build(after).inference(inputs())
    assert h.dtype == low  # the linear layer ran under autocast
    seen = after.SEEN
    assert seen == [("proj", low), ("phase", torch.float32), ("istft", torch.float32, torch.float32, False)]
    assert wav.dtype == torch.float32 and torch.isfinite(wav).all()
    assert torch.allclose(wav, reference_wav, rtol=0.1, atol=0.05 * reference_wav.abs().max().item())
    assert not torch.is_autocast_enabled("cpu")  # the context was left


def test_plain_autocast_breaks_the_original(trees, monkeypatch):
    """What the fences are for: the same code under autocast without them raises."""
    original, _ = trees
    before = load(original, monkeypatch, None)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError, match="BFloat16"):
        build(before).inference(inputs())


def test_fence_outside_autocast_runs_as_written(trees, monkeypatch):
    _, rewritten = trees
    after = load(rewritten, monkeypatch, "bf16")
    model = build(after)
    out = model._phase(torch.full((1, 4), 200.0, dtype=torch.bfloat16))
    seen = after.SEEN
    assert seen == [("phase", torch.bfloat16)] and out.dtype == torch.bfloat16
    assert after._autocast_fp32(torch.exp) is not torch.exp  # on: a wrapper, which passes through here


def test_unknown_value_raises_at_import(trees, monkeypatch):
    _, rewritten = trees
    with pytest.raises(ValueError, match=r"CHATTERBOX_AUTOCAST='bf61': expected off, bf16 or fp16"):
        load(rewritten, monkeypatch, "bf61")


def test_bf16_falls_back_to_float32_on_a_gpu_without_bfloat16(trees, monkeypatch):
    _, rewritten = trees
    after = load(rewritten, monkeypatch, "bf16")
    monkeypatch.setattr(after, "_autocast_device", lambda values: "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    with pytest.warns(UserWarning, match="does not support bfloat16; running in float32"):
        context = after._autocast(build(after))
    assert isinstance(context, contextlib.nullcontext)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that this machine has no CUDA when it has none
        assert isinstance(after._autocast(build(after)), torch.autocast)


def test_device_is_found_in_modules_then_tensors(trees, monkeypatch):
    _, rewritten = trees
    after = load(rewritten, monkeypatch, "bf16")
    meta = torch.empty(2, device="meta")
    assert after._autocast_device([torch.nn.ReLU(), meta, build(after)]) == "meta"  # a module without parameters
    assert after._autocast_device([build(after).to("meta"), torch.zeros(1)]) == "meta"
    assert after._autocast_device([3, "x"]) == "cpu"


@pytest.mark.slow
def test_chatterbox_hift_runs_in_bf16_and_is_identical_when_off(tmp_path, monkeypatch):
    """HiFT from the installed chatterbox, rewritten alone: `_istft` is fenced, so bf16 no longer raises."""
    chatterbox = pytest.importorskip("chatterbox")
    from chatterbox.models.s3gen.f0_predictor import ConvRNNF0Predictor

    source = Path(chatterbox.__file__).parent / "models" / "s3gen" / "hifigan.py"
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    rewritten = project / "hifigan.py"
    shutil.copy(source, rewritten)
    report = run_engine([rewritten], mode=WRITE, select=["autocast"], project_root=project)
    assert not report.errors
    assert {s.symbol for s in report.sites if s.status == "applied"} >= {
        "HiFTGenerator.inference", "HiFTGenerator._istft", "HiFTGenerator._stft", "SineGen.forward",
        "HiFTGenerator.decode"}

    def run(module):
        torch.manual_seed(0)
        hift = module.HiFTGenerator(sampling_rate=24000, upsample_rates=[8, 5, 3], upsample_kernel_sizes=[16, 11, 7],
                                    source_resblock_kernel_sizes=[7, 7, 11],
                                    source_resblock_dilation_sizes=[[1, 3, 5]] * 3,
                                    f0_predictor=ConvRNNF0Predictor()).eval()
        torch.manual_seed(1)
        mel = torch.randn(1, 80, 50) * 0.5 - 5
        return hift.inference(speech_feat=mel, cache_source=torch.zeros(1, 1, 0))

    reference, reference_source = run(load(source, monkeypatch, None))
    off, off_source = run(load(rewritten, monkeypatch, "off"))
    assert torch.equal(reference, off) and torch.equal(reference_source, off_source)
    bf16, _ = run(load(rewritten, monkeypatch, "bf16"))
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert (bf16 - reference).abs().max() < 0.05 * reference.abs().max()


def test_anchors_locate_their_nodes(tmp_path):
    import ast

    import libcst as cst
    from chatterbox_codemod.analysis import build_index
    from chatterbox_codemod.config import Config
    from chatterbox_codemod.engine import analyze, select_transforms

    path = tmp_path / "vocoder.py"
    path.write_text(SOURCE)
    index = build_index(tmp_path, [(path, SOURCE, ast.parse(SOURCE))])
    findings = analyze(index, select_transforms(["autocast"], []), {path}, lambda p: p.name, False, Config())
    module = cst.parse_module(SOURCE)
    located = {(f.anchor.kind, f.site.symbol): module.code_for_node(f.anchor.locate(module)).strip()
               for f in findings if f.site.rewritten}
    assert located[("wrap", "Vocoder.inference")].startswith("@torch.inference_mode()\ndef inference(self, x):")
    assert located[("method", "Vocoder._istft")].startswith("def _istft(self, magnitude, phase):")
    assert located[("call", "Vocoder.inference")] == "torch.exp(h[:, :9].clamp(max=3))"
