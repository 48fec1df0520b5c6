"""Verdicts on the real chatterbox trees, unzipped from the wheels downloaded at test time."""

from __future__ import annotations

import py_compile
import subprocess

import pytest
from chatterbox_codemod.benchmarks.fuzz.project import screen_misses
from conftest import cli, download_wheel, load_json, report_sites, unpack_wheel

HIFIGAN = "models/s3gen/hifigan.py"
S3TOKENIZER = "models/s3tokenizer/s3tokenizer.py"
INTMEANFLOW = "models/s3gen/utils/intmeanflow.py"

# (path, line) of the no_grad sites in each wheel.
SITES = {
    "chatterbox-tts": {"sinegen": (HIFIGAN, 200), "source": (HIFIGAN, 275), "tokenizer": (S3TOKENIZER, 90),
                       "intmeanflow": (INTMEANFLOW, 11), "inplace_line": 163},
    "chatterbox-streaming": {"sinegen": (HIFIGAN, 200), "source": (HIFIGAN, 275), "tokenizer": (S3TOKENIZER, 90),
                             "inplace_line": 156},
}


def _report(tree, tmp_path, *args):
    report = tmp_path / "report.json"
    proc = cli("apply", "--check", "--report", report, *args, tree)
    assert proc.returncode in (0, 1), proc.stderr
    found = load_json(report)
    # A run targeting one file screens it first (`analysis.screen`): no site found here may be in a file the
    # screen says cannot hold one.
    assert not screen_misses(((s["transform"], tree / s["path"], s["line"]) for s in found["sites"]), tree)
    return proc, found


@pytest.mark.parametrize("wheel", sorted(SITES))
def test_inference_mode_verdicts(chatterbox_tree, tmp_path, wheel):
    tree = chatterbox_tree(wheel)
    expected = SITES[wheel]
    proc, report = _report(tree, tmp_path, "--select", "inference-mode")
    sites = report_sites(report, "inference-mode")
    assert proc.returncode == 0  # nothing safe to rewrite without the entry points
    assert not report["errors"]

    for key in ("sinegen", "source"):
        site = sites[expected[key]]
        assert (site["status"], site["fixable"]) == ("unsafe", True)
        assert "HiFTGenerator.forward -> SourceModuleHnNSF.forward" in site["reason"]
        assert "`self.l_linear(...)` (torch.nn.Linear, a module with parameters)" in site["reason"]
        assert "Inference tensors cannot be saved for backward" in site["reason"]

    tokenizer = sites[expected["tokenizer"]]
    assert (tokenizer["status"], tokenizer["fixable"]) == ("unsafe", True)
    assert (f"the in-place update `ref_speech_token_lens[0] = ...` at models/s3gen/s3gen.py:{expected['inplace_line']}"
            " in S3Token2Mel.embed_ref") in tokenizer["reason"]
    assert "Inplace update to inference tensor outside InferenceMode is not allowed" in tokenizer["reason"]

    if "intmeanflow" in expected:
        site = sites[expected["intmeanflow"]]
        assert (site["status"], site["fixable"]) == ("unsafe", False)
        assert "rebinds parameter data (`layer.weight.data = ...`)" in site["reason"]
    assert len(sites) == len([k for k in expected if k != "inplace_line"])


@pytest.mark.parametrize("wheel", sorted(SITES))
def test_unsafe_fixes_rewrites_the_fixable_sites_only(chatterbox_tree, tmp_path, wheel):
    tree = chatterbox_tree(wheel)
    expected = SITES[wheel]
    cli("apply", "--select", "inference-mode", "--unsafe-fixes", tree, check_rc=0)
    hifigan = (tree / HIFIGAN).read_text().splitlines()
    assert hifigan[expected["sinegen"][1] - 1].strip() == "@torch.inference_mode()"
    assert hifigan[expected["source"][1] - 1].strip() == "with torch.inference_mode():"
    tokenizer = (tree / S3TOKENIZER).read_text().splitlines()
    assert tokenizer[expected["tokenizer"][1] - 1].strip() == "@torch.inference_mode()"
    if "intmeanflow" in expected:
        intmeanflow = (tree / INTMEANFLOW).read_text().splitlines()
        assert intmeanflow[expected["intmeanflow"][1] - 1].strip() == "with torch.no_grad():"
    _assert_compiles(tree)
    cli("apply", "--check", "--select", "inference-mode", "--unsafe-fixes", tree, check_rc=0)


ENTRY_POINTS_APPLIED = {
    ("tts.py", "ChatterboxTTS.prepare_conditionals"),
    ("mtl_tts.py", "ChatterboxMultilingualTTS.prepare_conditionals"),
    ("tts_turbo.py", "ChatterboxTurboTTS.prepare_conditionals"),
    ("vc.py", "ChatterboxVC.set_target_voice"),
    ("models/s3gen/s3gen.py", "S3Token2Mel.embed_ref"),
}
NEVER_DECORATED = {"VoiceEncoder.inference", "T3.loss", "T3.prepare_conditioning", "T3.prepare_input_embeds",
                   "ConditionalCFM.compute_loss", "CausalMaskedDiffWithXvec.compute_loss"}


def test_default_transforms_on_chatterbox_tts(chatterbox_tree, tmp_path):
    tree = chatterbox_tree("chatterbox-tts")
    # The entry points that tokenize run s3tokenizer's code, which the analysis cannot see into: `unsafe`,
    # naming the call, until the user lists the library under `stateless-libraries` (it keeps no tensor
    # between calls: tests/test_libraries.py runs it), which also makes the run cache miss.
    (tmp_path / "undeclared").mkdir()
    _, undeclared = _report(tree, tmp_path / "undeclared")
    entry = {(s["path"], s["symbol"]): s for s in undeclared["sites"] if s["transform"] == "entry-points"}
    for key in ENTRY_POINTS_APPLIED:
        assert (entry[key]["status"], entry[key]["fixable"], entry[key]["hazard"]) == ("unsafe", True, "library")
        assert "runs `padding(...)` at models/s3tokenizer/s3tokenizer.py:116 in S3Tokenizer.forward, library " \
               "code (`s3tokenizer.utils.padding`) the analysis cannot see into" in entry[key]["reason"]
    (tree / "pyproject.toml").write_text('[tool.chatterbox-codemod]\nstateless-libraries = ["s3tokenizer"]\n')
    proc, report = _report(tree, tmp_path)
    assert proc.returncode == 1  # rewrites pending
    entry = {(s["path"], s["symbol"]): s for s in report["sites"] if s["transform"] == "entry-points"}
    applied = {key for key, s in entry.items() if s["status"] == "applied"}
    assert applied >= ENTRY_POINTS_APPLIED
    campplus = entry[("models/s3gen/xvector.py", "CAMPPlus.inference")]
    assert campplus["status"] == "applied" or campplus["reason"].startswith("covered:")
    decorated = {symbol for (_, symbol), s in entry.items() if s["rewritten"]}
    assert not decorated & NEVER_DECORATED
    assert not any(symbol.endswith((".forward", ".__init__", ".from_pretrained", ".from_local"))
                   for symbol in decorated)
    for symbol in NEVER_DECORATED:
        assert any(s == symbol for _, s in entry), f"{symbol} should be reported with its reason"

    # The turbo `generate` reaches the flow's encoder (typed from `S3Token2Mel`'s constructor call), whose
    # attention moves its positional biases in `forward` (the first of its hazards in file order; its positional
    # encoding also rebinds `self.pe`): under inference mode they would be inference tensors.
    turbo = entry[("tts_turbo.py", "ChatterboxTurboTTS.generate")]
    assert turbo["status"] == "unsafe"
    assert "it moves or casts a module (`self.pos_bias_u.to(...)`) at models/s3gen/transformer/attention.py:310 " \
           "in RelPositionMultiHeadedAttention.forward (called from ChatterboxTurboTTS.generate at tts_turbo.py:289)" \
           in turbo["reason"]

    sites = report_sites(report, "inference-mode")
    # `TransformerEncoderLayer`, which nothing in the package builds, calls `feed_forward: torch.nn.Module`: any
    # module of the project, the tokenizer too, may run there with autograd on.
    tokenizer = sites[(S3TOKENIZER, 90)]
    assert (tokenizer["status"], tokenizer["fixable"]) == ("unsafe", True)
    assert "(it may be called by `self.feed_forward(...)` (encoder_layer.py:101), a call of a value whose type " \
           "the analysis cannot resolve)" in tokenizer["reason"]
    assert sites[(HIFIGAN, 200)]["status"] == sites[(HIFIGAN, 275)]["status"] == "unsafe"

    cli("apply", tree, check_rc=0)
    _assert_compiles(tree)
    cli("apply", "--check", tree, check_rc=0)


def test_default_transforms_on_chatterbox_streaming(chatterbox_tree, tmp_path):
    tree = chatterbox_tree("chatterbox-streaming")
    cli("apply", tree, check_rc=0)
    _assert_compiles(tree)
    proc, report = _report(tree, tmp_path)
    assert proc.returncode == 0
    assert not any(s["rewritten"] for s in report["sites"])


def test_diff_output_applies_with_git(wheel_cache, tmp_path):
    """`git apply` of the --diff output gives exactly what `apply` writes."""
    wheel = download_wheel("chatterbox-tts", wheel_cache)
    patched_tree = unpack_wheel(wheel, tmp_path / "patched")
    written_tree = unpack_wheel(wheel, tmp_path / "written")
    repo = patched_tree.parent
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    diff = cli("apply", "--diff", "chatterbox", cwd=repo)
    assert diff.returncode == 1
    assert diff.stdout.startswith("diff --git a/chatterbox/")
    patch = tmp_path / "change.patch"
    patch.write_text(diff.stdout)
    subprocess.run(["git", "apply", str(patch)], cwd=repo, check=True)

    cli("apply", written_tree, check_rc=0)
    patched = {p.relative_to(patched_tree): p.read_bytes() for p in patched_tree.rglob("*.py")}
    written = {p.relative_to(written_tree): p.read_bytes() for p in written_tree.rglob("*.py")}
    assert patched == written
    original_tree = unpack_wheel(wheel, tmp_path / "original")
    assert patched != {p.relative_to(original_tree): p.read_bytes() for p in original_tree.rglob("*.py")}


def _assert_compiles(tree):
    for path in sorted(tree.rglob("*.py")):
        py_compile.compile(str(path), doraise=True, cfile=str(path) + "c")


def test_jobs_do_not_change_the_report(chatterbox_tree, tmp_path):
    """Candidates judged in two processes (`--jobs 2`) give the report one process gives, byte for byte."""
    tree = chatterbox_tree("chatterbox-tts")
    reports = []
    for jobs in ("1", "2"):
        report = tmp_path / f"report-{jobs}.json"
        proc = cli("apply", "--check", "--no-cache", "--jobs", jobs, "--report", report, tree)
        assert proc.returncode == 1, proc.stderr
        reports.append((proc.stdout, report.read_bytes()))
    assert reports[0] == reports[1]
