"""The `autocast` transform at run time: rewritten code is imported and run under each CHATTERBOX_AUTOCAST value.

- `off` (and unset): the rewritten module computes bit for bit what the original computes and returns the very
  objects it returns, and a caller's own autocast region still reaches inside (no `autocast(enabled=False)` is
  entered);
- `bf16` / `fp16` on the CPU: modules run in the low precision, the fenced helpers run in float32 with autocast
  off, HiFT-style code that raises under plain autocast (`torch.complex` on bfloat16) runs, entry points return
  their tensors in the dtype they compute in without autocast, and fenced random draws are the float32 draws;
- the switch: accepted spellings, an unknown value raising at import, and the float32 fallback (with a warning)
  for `bf16` on a GPU without bfloat16.
"""

from __future__ import annotations

import collections
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
    from typing import NamedTuple

    import torch
    from torch import nn

    SEEN = []  # what the code saw: (where, dtypes...)


    class Frames(NamedTuple):
        features: torch.Tensor
        tokens: torch.Tensor


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

        @torch.inference_mode()
        def embed_ref(self, x):
            h = self.proj(x)
            SEEN.append(("embed_ref", h.dtype))
            self.last = dict(embedding=h.mean(1), frames=Frames(h, h.argmax(-1)), pair=[h[:, 0], "label"],
                             length=x.shape[1])
            return self.last

        @torch.inference_mode()
        def warm_up(self, x=None):
            if x is None:
                return
            self.proj(x)

        @torch.inference_mode()
        def noise(self, x):
            mu = self.proj(x)
            SEEN.append(("noise", mu.dtype))
            return torch.randn_like(mu), torch.rand_like(mu), torch.normal(torch.zeros_like(mu), 2.0)
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
        ("Vocoder.inference", "applied"), ("Vocoder._phase", "applied"), ("Vocoder._istft", "applied"),
        ("Vocoder.embed_ref", "applied"), ("Vocoder.warm_up", "applied"), ("Vocoder.noise", "applied")}
    text = rewritten.read_text()
    assert text.count("@_autocast\n") == 4 and "_autocast_fp32(torch.exp)(" in text
    assert "_autocast_fp32(torch.randn_like)(mu)" in text and "_autocast_fp32(torch.normal)(" in text
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


def leaves(value, path=()):
    """(path, leaf) for everything in nested tuples, lists and dicts."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from leaves(item, (*path, i))
    else:
        yield path, value


def assert_identical(result, expected):
    """Same structure, same types, tensors bit for bit in the same dtypes."""
    pairs = list(zip(leaves(result), leaves(expected), strict=True))
    for (path, got), (expected_path, want) in pairs:
        assert path == expected_path and type(got) is type(want), path
        if isinstance(want, torch.Tensor):
            assert got.dtype == want.dtype and torch.equal(got, want), path
        else:
            assert got == want, path


@pytest.mark.parametrize("value", [None, "off", "", " OFF "])
def test_off_is_bit_identical(trees, monkeypatch, value):
    original, rewritten = trees
    before = load(original, monkeypatch, None)
    after = load(rewritten, monkeypatch, value)
    assert after._AUTOCAST == "off"
    assert after._autocast(build) is build  # the decorator hands back the very function it is given
    model = build(before)
    model2 = build(after, model.state_dict())
    wav, h = model.inference(inputs())
    wav2, h2 = model2.inference(inputs())
    assert wav.dtype == wav2.dtype == h2.dtype == torch.float32
    assert torch.equal(wav, wav2) and torch.equal(h, h2)
    result = model2.embed_ref(inputs())
    assert result is model2.last  # the object the body returned, not a copy
    assert_identical(result, model.embed_ref(inputs()))
    torch.manual_seed(3)
    drawn = model2.noise(inputs())
    torch.manual_seed(3)
    assert_identical(drawn, model.noise(inputs()))
    assert [entry[0] for entry in after.SEEN] == ["proj", "phase", "istft", "embed_ref", "noise"]
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
    seen = after.SEEN
    assert seen == [("proj", low), ("phase", torch.float32), ("istft", torch.float32, torch.float32, False)]
    assert h.dtype == torch.float32  # computed in `low` (above), cast back on the way out
    assert wav.dtype == torch.float32 and torch.isfinite(wav).all()
    assert torch.allclose(wav, reference_wav, rtol=0.1, atol=0.05 * reference_wav.abs().max().item())
    assert not torch.is_autocast_enabled("cpu")  # the context was left


@pytest.mark.parametrize("value,low", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_entry_points_return_what_they_compute_in_without_autocast(trees, monkeypatch, value, low):
    _, rewritten = trees
    after = load(rewritten, monkeypatch, value)
    model = build(after)
    result = model.embed_ref(inputs())
    inside = model.last  # what the body returned, in `low`
    seen = after.SEEN
    assert seen == [("embed_ref", low)] and inside["embedding"].dtype == low
    assert type(result) is dict and result is not inside
    assert result["embedding"].dtype == torch.float32
    assert torch.equal(result["embedding"], inside["embedding"].float())
    frames = result["frames"]
    assert type(frames) is after.Frames and frames.features.dtype == torch.float32
    assert frames.tokens is inside["frames"].tokens  # int64 token ids: left alone, not copied
    assert result["pair"][0].dtype == torch.float32 and result["pair"][1:] == ["label"] and result["length"] == 12
    for _, leaf in leaves(result):
        if isinstance(leaf, torch.Tensor):
            leaf.numpy()  # bfloat16 would raise
    assert model.warm_up() is None and model.warm_up(inputs()) is None


@pytest.mark.parametrize("model_dtype,value", [(torch.bfloat16, "bf16"), (torch.float16, "fp16"),
                                               (torch.bfloat16, "fp16")])
def test_a_model_in_half_precision_keeps_its_dtype(trees, monkeypatch, model_dtype, value):
    """The reference dtype is the model's own: a bfloat16 model returns bfloat16, as it does without autocast."""
    original, rewritten = trees
    reference = build(load(original, monkeypatch, None)).to(model_dtype).embed_ref(inputs().to(model_dtype))
    after = load(rewritten, monkeypatch, value)
    model = build(after).to(model_dtype)
    result = model.embed_ref(inputs().to(model_dtype))
    assert result["embedding"].dtype == result["frames"].features.dtype == reference["embedding"].dtype == model_dtype
    computed_in = after.SEEN[0][1]
    assert (result is model.last) == (computed_in == model_dtype)  # nothing to cast: the very object returned


def test_the_boundary_walks_tuples_lists_and_dicts_and_leaves_other_objects(trees, monkeypatch):
    _, rewritten = trees
    after = load(rewritten, monkeypatch, "bf16")
    linear = torch.nn.Linear(4, 4)
    kept = collections.OrderedDict()  # a dict subclass: returned as it is, with what it holds
    untouched = ("label", torch.ones(2))  # nothing in it to cast: returned as it is

    @after._autocast
    def run(model, x):
        h = model(x)
        kept["h"] = h
        return [h, (h, {"h": h, "n": 3}), kept, torch.max(h, dim=-1), h.argmax(-1)], untouched

    (h, (h2, inner), same_kept, maximum, tokens), same_untouched = run(linear, torch.randn(2, 4))
    assert h.dtype == h2.dtype == inner["h"].dtype == torch.float32 and inner["n"] == 3
    assert same_kept is kept and kept["h"].dtype == torch.bfloat16
    assert maximum.values.dtype == torch.bfloat16  # torch.return_types: not rebuilt
    assert tokens.dtype == torch.int64 and same_untouched is untouched

    weight = torch.randn(4, 4)

    @after._autocast
    def project(tokens, x64, x):  # no module: the first floating-point tensor argument sets the dtype
        return x @ weight

    assert project(torch.arange(4), torch.zeros(1, dtype=torch.float64), torch.randn(2, 4)).dtype == torch.float64


def test_fenced_draws_are_the_float32_draws(trees, monkeypatch):
    """`torch.randn_like(mu)` of a bfloat16 `mu`, fenced, draws what the original draws in float32 with the same
    seed, bit for bit; under plain autocast it draws another sequence."""
    original, rewritten = trees
    before = load(original, monkeypatch, None)
    after = load(rewritten, monkeypatch, "bf16")
    reference, model = build(before), build(after)
    torch.manual_seed(3)
    expected = reference.noise(inputs())
    torch.manual_seed(3)
    drawn = model.noise(inputs())
    seen = after.SEEN
    assert seen == [("noise", torch.bfloat16)]  # `mu` was bfloat16
    for got, want in zip(drawn, expected, strict=True):
        assert got.dtype == want.dtype == torch.float32 and torch.equal(got, want)
    torch.manual_seed(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        unfenced = reference.noise(inputs())
    assert not torch.equal(unfenced[0].float(), expected[0])


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
    original, rewritten = trees
    expected = build(load(original, monkeypatch, None)).embed_ref(inputs())
    after = load(rewritten, monkeypatch, "bf16")
    monkeypatch.setattr(after, "_autocast_device", lambda values: "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    with pytest.warns(UserWarning, match="does not support bfloat16; running in float32"):
        result = build(after).embed_ref(inputs())
    seen = after.SEEN
    assert seen == [("embed_ref", torch.float32)]
    assert_identical(result, expected)
    entered = []
    monkeypatch.setattr(torch, "autocast", lambda **kwargs: entered.append(kwargs) or contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback, no warning
        build(after).embed_ref(inputs())
    assert entered == [{"device_type": "cuda", "dtype": torch.bfloat16}]


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
    bf16, bf16_source = run(load(rewritten, monkeypatch, "bf16"))
    assert bf16.dtype == bf16_source.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert (bf16 - reference).abs().max() < 0.05 * reference.abs().max()
    bf16_source.numpy()  # the source computed in bfloat16, cast back on the way out


@pytest.mark.slow
def test_chatterbox_campplus_embedding_comes_back_in_float32(tmp_path, monkeypatch):
    """CAMPPlus from the installed chatterbox, with `entry-points` making `inference` an entry point: under plain
    autocast its speaker embedding is bfloat16, which `.numpy()` rejects; rewritten, it comes back in float32."""
    chatterbox = pytest.importorskip("chatterbox")
    np = pytest.importorskip("numpy")

    source = Path(chatterbox.__file__).parent / "models" / "s3gen" / "xvector.py"
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    rewritten = project / "xvector.py"
    shutil.copy(source, rewritten)
    report = run_engine([rewritten], mode=WRITE, select=["entry-points", "autocast"], project_root=project)
    assert not report.errors
    assert ("autocast", "CAMPPlus.inference", "applied") in {(s.transform, s.symbol, s.status) for s in report.sites}

    def embed(module):
        torch.manual_seed(0)
        campplus = module.CAMPPlus().eval()
        wav = torch.randn(1, 16000, generator=torch.Generator().manual_seed(1)) * 0.1  # one second at 16 kHz
        return campplus.inference(wav)

    original = load(source, monkeypatch, None)
    reference = embed(original)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = embed(original)
    with pytest.raises(TypeError, match="BFloat16"):
        plain.detach().numpy()  # the original runs with autograd on: `entry-points` is what makes it grad-off
    assert torch.equal(embed(load(rewritten, monkeypatch, "off")), reference)
    bf16 = embed(load(rewritten, monkeypatch, "bf16"))
    assert bf16.dtype == torch.float32 and bf16.shape == reference.shape == (1, 192)
    assert np.isfinite(bf16.numpy()).all()
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
