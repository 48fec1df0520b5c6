"""The verification benchmark, run for real on the installed chatterbox-tts (CPU)."""

from __future__ import annotations

import math
import os
import shutil

import pytest
import torch
from chatterbox_codemod.benchmarks.cli import bench
from chatterbox_codemod.benchmarks.equivalence import compare_outputs, compare_tensor
from chatterbox_codemod.benchmarks.memory import ALLOCATOR_ENV
from chatterbox_codemod.benchmarks.quality import (
    agreement,
    cfg_logits,
    cosine_similarity,
    evaluate,
    log_spectral_distance_db,
    mean_kl_divergence,
    output_problems,
    relative_l1,
    snr_db,
    top1_agreement,
)
from chatterbox_codemod.benchmarks.report import QUALITY_DESCRIPTIONS
from chatterbox_codemod.benchmarks.stats import speed_ratio
from chatterbox_codemod.benchmarks.verify import AUTOCAST, ComponentResult, rewrite_copy
from chatterbox_codemod.benchmarks.worker import forced_sampling
from chatterbox_codemod.benchmarks.workload import (
    ALL_COMPONENT_NAMES,
    COMPONENT_NAMES,
    MEASURES,
    QUALITY,
    parse_quality_gates,
    quality_gates,
)
from click.testing import CliRunner
from conftest import cli, installed_chatterbox, load_json


@pytest.fixture(scope="session")
def tree_pair(tmp_path_factory):
    """A copy of the installed chatterbox and its rewrite by the codemod: (original, rewritten) folders."""
    root = tmp_path_factory.mktemp("bench-trees")
    original = root / "original"
    shutil.copytree(installed_chatterbox(), original / "chatterbox", ignore=shutil.ignore_patterns("__pycache__"))
    rewrite_copy(original, root / "rewritten", jobs=1)
    return original, root / "rewritten"


def broken_copy(rewritten, destination, relative_path: str, old: str, new: str):
    """A copy of the rewritten tree with one edit made by hand."""
    shutil.copytree(rewritten, destination)
    source = destination / "chatterbox" / relative_path
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found once in {relative_path}"
    source.write_text(text.replace(old, new), encoding="utf-8")
    return destination


@pytest.mark.slow
def test_smoke_bench_passes_on_the_installed_chatterbox(tmp_path):
    report_path, plot_path = tmp_path / "bench.json", tmp_path / "bench.png"
    # Two timed rounds, not the default three: the suite checks that a ratio and its interval come out, and
    # keeps its time for the other checks (the README's main command runs the default).
    proc = cli("bench", "--size", "smoke", "--device", "cpu", "--rounds", "2", "--json", report_path,
               "--plot", plot_path, check_rc=0)
    report = load_json(report_path)
    assert [c["name"] for c in report["components"]] == list(COMPONENT_NAMES)
    for component in report["components"]:
        assert component["equivalent"] and component["verdict"] == "ok", component
        ratio = component["ratio"]
        assert all(math.isfinite(ratio[key]) for key in ("median", "low", "high")), ratio
        assert ratio["low"] <= ratio["median"] <= ratio["high"]
        assert len(component["times"]["original"]) == len(component["times"]["rewritten"]) == report["rounds"] == 2
        for label in ("original", "rewritten"):
            assert component["memory"][label]["tensor_peak_bytes"] >= 0
            assert component["graph"][label]
    assert report["transforms"] is not None and "inference-mode" in report["transforms"]
    assert report["environment"]["torch"] == torch.__version__
    allocator = {key: os.environ.get(key, value) for key, value in ALLOCATOR_ENV.items()}
    assert report["environment"]["allocator"] == allocator
    settings = ", ".join(f"{key}={value}" for key, value in sorted(allocator.items()))
    assert f"C allocator in every worker: {settings}\n" in proc.stdout
    assert "PASS" in proc.stdout and "verdict" in proc.stdout
    assert plot_path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_a_changed_vocoder_constant_fails_equivalence(tree_pair, tmp_path):
    original, rewritten = tree_pair
    broken = broken_copy(rewritten, tmp_path / "broken", "models/s3gen/hifigan.py",
                         "lrelu_slope: float = 0.1,", "lrelu_slope: float = 0.11,")
    report_path = tmp_path / "bench.json"
    proc = cli("bench", "--original", original, "--rewritten", broken, "--device", "cpu",
               "--components", "hift,voice_encoder", "--rounds", "1", "--json", report_path, check_rc=1)
    report = load_json(report_path)
    hift, voice_encoder = report["components"]
    assert hift["verdict"] == "diverged" and not all(output["passed"] for output in hift["outputs"]), hift
    assert voice_encoder["verdict"] == "ok", voice_encoder  # a divergence fails its component, not the others
    assert "hift: output `0`" in proc.stdout and "differs" in proc.stdout
    assert "FAIL: hift (diverged)\n" in proc.stdout


@pytest.mark.slow
def test_a_component_that_raises_fails_the_run(tree_pair, tmp_path):
    original, rewritten = tree_pair
    broken = broken_copy(rewritten, tmp_path / "broken", "models/s3gen/xvector.py",
                         "    def inference(self, audio_list):\n",
                         "    def inference(self, audio_list):\n        raise RuntimeError('boom')\n")
    proc = cli("bench", "--original", original, "--rewritten", broken, "--device", "cpu",
               "--components", "campplus", "--rounds", "1", check_rc=1)
    assert "campplus: the rewritten package raised RuntimeError: boom" in proc.stdout
    assert "FAIL: campplus (error)" in proc.stdout
    assert "RuntimeError: boom" in proc.stderr  # the traceback, in the progress


def test_a_tree_without_chatterbox_is_a_usage_error(tmp_path):
    proc = cli("bench", "--original", tmp_path, "--rewritten", tmp_path, check_rc=2)
    assert "no `chatterbox` package" in proc.stderr


def test_nan_positions_must_agree():
    nan = float("nan")
    same = compare_tensor("x", torch.tensor([1.0, nan]), torch.tensor([1.0 + 1e-7, nan]))
    moved = compare_tensor("x", torch.tensor([1.0, nan]), torch.tensor([nan, 1.0]))
    assert same.passed and same.max_abs == pytest.approx(1e-7, rel=0.2)
    assert not moved.passed and "NaN" in moved.problem


def test_speed_ratio_interval_brackets_the_median():
    speed = speed_ratio([1.0, 1.2, 0.9, 1.1, 1.0], [1.0, 1.0, 1.0, 1.0, 0.5])
    assert speed.per_round == [1.0, 1.2, 0.9, 1.1, 2.0]
    assert speed.median == 1.1
    assert speed.low <= speed.median <= speed.high
    assert speed == speed_ratio([1.0, 1.2, 0.9, 1.1, 1.0], [1.0, 1.0, 1.0, 1.0, 0.5])  # seeded


# ---------------------------------------------------------------------------
# --autocast: the quality measures on known signals


def tone(seconds: float = 1.0, sample_rate: int = 24_000) -> torch.Tensor:
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return torch.sin(2 * math.pi * 220 * t) + 0.3 * torch.sin(2 * math.pi * 660 * t)


@pytest.mark.parametrize("level_db", [0.0, 20.0, 40.0])
def test_snr_of_a_signal_and_noise_added_at_a_known_level(level_db):
    signal = tone()
    noise = torch.randn(signal.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise *= signal.norm() / noise.norm() / 10 ** (level_db / 20)  # exactly level_db below the signal
    assert snr_db(signal, signal + noise) == pytest.approx(level_db, abs=1e-6)
    assert snr_db(signal.float(), (signal + noise).float()) == pytest.approx(level_db, abs=0.01)
    assert snr_db(signal, signal) == math.inf


def test_log_spectral_distance_of_known_signals():
    noise = torch.randn(24_000, generator=torch.Generator().manual_seed(1))
    assert log_spectral_distance_db(noise, noise) == 0.0
    assert log_spectral_distance_db(tone(), tone()) == 0.0
    # Twice the amplitude: every bin 20·log10(2) dB up (the floor is far below white noise's bins).
    assert log_spectral_distance_db(noise, 2 * noise) == pytest.approx(20 * math.log10(2), rel=1e-6)
    # The further the noise added, the smaller the distance; silence compares equal to silence.
    distances = [log_spectral_distance_db(tone(), tone() + 10 ** (-level / 20) * noise.double())
                 for level in (20, 40, 60)]
    assert distances == sorted(distances, reverse=True) and distances[-1] > 0
    assert log_spectral_distance_db(torch.zeros(4800), torch.zeros(4800)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        log_spectral_distance_db(noise, noise[:-1])


def test_relative_l1_cosine_similarity_and_token_agreement():
    mel = torch.tensor([[1.0, -2.0], [3.0, -4.0]])
    assert relative_l1(mel, mel) == 0.0 and cosine_similarity(mel, mel) == pytest.approx(1.0)
    assert relative_l1(mel, mel + torch.tensor([[0.1, 0.0], [0.0, -0.1]])) == pytest.approx(0.02)
    assert cosine_similarity(mel, 3 * mel) == pytest.approx(1.0)
    assert cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == pytest.approx(0.0)
    assert cosine_similarity(mel, -mel) == pytest.approx(-1.0)
    tokens = torch.tensor([[4, 8, 15, 16, 23, 42, 7, 9]])
    assert agreement(tokens, tokens) == 1.0
    assert agreement(tokens, torch.tensor([[4, 8, 15, 16, 23, 42, 0, 0]])) == 0.75


def test_next_token_measures():
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(2))
    assert mean_kl_divergence(logits, logits) == 0.0 and top1_agreement(logits, logits) == 1.0
    # p = (1/2, 1/2), q = (9/10, 1/10): KL(p || q) = 1/2 ln(5/9) + 1/2 ln 5.
    p, q = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(9.0), 0.0]])
    assert mean_kl_divergence(p, q) == pytest.approx(0.5 * math.log(5 / 9) + 0.5 * math.log(5))
    assert mean_kl_divergence(q, q + 7.0) == pytest.approx(0.0, abs=1e-12)  # a shift is the same distribution
    reference = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    flipped = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 5.0], [0.0, 1.0, 0.0]])
    assert top1_agreement(reference, flipped) == 0.75
    # T3's classifier-free guidance: cond + w·(cond − uncond), rows (conditional, unconditional).
    head = torch.tensor([[[2.0, 0.0], [1.0, 1.0]]])
    assert cfg_logits(head, 0.5).tolist() == [[2.5, -0.5]]


def test_output_problems_name_what_no_tolerance_excuses():
    original = {"wav": torch.ones(1, 8), "tokens": torch.arange(4), "gone": torch.zeros(2)}
    side = {"wav": torch.ones(1, 8, dtype=torch.bfloat16), "tokens": torch.arange(5)}
    assert output_problems(original, side) == [
        "`wav`: dtype bfloat16, the original's is float32",
        "`tokens`: shape [5], the original's is [4]",
        "`gone`: missing",
    ]
    nan = torch.ones(1, 8)
    nan[0, 3] = math.nan
    assert output_problems({"wav": torch.ones(1, 8)}, {"wav": nan}) == [
        "`wav`: 1 NaN or infinite values where the original's are finite"]
    assert output_problems({"wav": nan}, {"wav": nan}) == []  # NaN where the original has NaN too


def test_quality_is_judged_against_gates_only_when_asked():
    reference = {"0": tone(0.5).float()}
    noisy = {"0": reference["0"] + 0.05 * torch.randn(12_000, generator=torch.Generator().manual_seed(3))}
    gates = quality_gates("hift", {"hift.snr_db": 30.0})
    assert gates == {"snr_db": 30.0, "lsd_db": MEASURES["lsd_db"].gate}
    judged = evaluate("hift", reference, noisy, gates, judged=True)
    assert judged.measures["snr_db"] < 30 and "snr_db" in judged.failed and not judged.passed
    unjudged = evaluate("hift", reference, noisy, gates, judged=False, note="not judged: random weights")
    assert unjudged.passed and not unjudged.failed and unjudged.note == "not judged: random weights"
    assert unjudged.to_json()["measures"] == {k: v for k, v in judged.measures.items()}
    same = evaluate("hift", reference, reference, gates, judged=True)
    assert same.passed and same.to_json()["measures"]["snr_db"] == "inf"  # JSON has no infinity
    bad = evaluate("hift", reference, {"0": reference["0"].half()}, gates, judged=False)
    assert bad.problems == ["`0`: dtype float16, the original's is float32"] and not bad.passed
    assert math.isfinite(bad.measures["snr_db"])  # still measured, on the values
    misnamed = evaluate("hift", {"output": reference["0"]}, {"output": reference["0"]}, gates, judged=False)
    assert misnamed.problems == ["`0`: the original has no such output to measure"]
    assert math.isnan(misnamed.measures["snr_db"])


def test_the_autocast_side_sets_the_verdict():
    same = compare_outputs({"0": torch.ones(3)}, {"0": torch.ones(3)})
    outcome = ComponentResult("hift", ("original", "rewritten", AUTOCAST), diffs=same, autocast_diffs=same)
    reference = {"0": tone(0.1).float()}
    outcome.quality[AUTOCAST] = evaluate("hift", reference, reference, {}, judged=False)
    assert outcome.verdict == "ok"
    broken = reference["0"].clone()
    broken[5] = math.inf
    outcome.quality[AUTOCAST] = evaluate("hift", reference, {"0": broken}, {}, judged=False)
    assert outcome.verdict == "bad output" and outcome.side_passed("rewritten")
    assert not outcome.side_passed(AUTOCAST)
    outcome.quality[AUTOCAST] = evaluate("hift", reference, {"0": reference["0"] * 0.5}, {"snr_db": 20.0},
                                         judged=True)
    assert outcome.verdict == "below gate"
    # A component that declares no quality measures must stay equivalent under autocast.
    other = ComponentResult("unmeasured", ("original", "rewritten", AUTOCAST), diffs=same,
                            autocast_diffs=compare_outputs({"0": torch.ones(3)}, {"0": torch.ones(3) + 1e-3}))
    assert other.verdict == "diverged" and not other.side_passed(AUTOCAST)


# ---------------------------------------------------------------------------
# --quality-gate


def test_quality_gates_parse_measures_and_component_measures():
    assert parse_quality_gates(" lsd_db=1.5, hift.snr_db=-3 ", ["hift", "s3gen"]) == {
        "lsd_db": 1.5, "hift.snr_db": -3.0}
    overrides = {"lsd_db": 1.5, "hift.lsd_db": 2.0}
    assert quality_gates("hift", overrides)["lsd_db"] == 2.0  # the component's own wins
    assert quality_gates("s3gen", overrides) == {"snr_db": None, "lsd_db": 1.5}


@pytest.mark.parametrize(("value", "message"), [
    ("lsd_db", "`lsd_db`: expected NAME=VALUE"),
    ("lsd_db=", "`lsd_db=`: expected NAME=VALUE"),
    ("snr=20", "`snr`: unknown measure 'snr' (known: top1, kl, mel_rel_l1, mel_cosine, snr_db, lsd_db, "
               "embedding_cosine, token_agreement)"),
    ("kl=0.1", "`kl`: no component run measures kl (it is measured for: t3)"),
    ("hift.kl=0.1", "`hift.kl`: component 'hift' has no kl (measured for: t3)"),
    ("flow.mel_cosine=0.99", "`flow.mel_cosine`: flow is not among the components run (hift, s3gen)"),
    ("token_agreement=0.9", "`token_agreement`: no component run measures token_agreement (it is measured for: "
                            "embed_ref)"),
    ("lsd_db=low", "`lsd_db=low`: 'low' is not a finite number"),
    ("snr_db=nan", "`snr_db=nan`: 'nan' is not a finite number"),
    ("lsd_db=-1", "`lsd_db=-1`: lsd_db lies in [0, inf]"),
    ("lsd_db=1,lsd_db=2", "`lsd_db` given twice"),
    (" , ", "no NAME=VALUE given"),
])
def test_quality_gate_errors_name_what_is_wrong(value, message):
    with pytest.raises(ValueError) as caught:
        parse_quality_gates(value, ["hift", "s3gen"])
    assert str(caught.value) == message


def run_bench_command(*args) -> tuple[int, str]:
    """`bench` in this process (for what fails before any worker starts): exit code, stderr."""
    result = CliRunner().invoke(bench, [str(arg) for arg in args])
    return result.exit_code, result.stderr


def test_autocast_options_are_checked_before_anything_runs(tmp_path):
    code, stderr = run_bench_command("--components", "hift", "--quality-gate", "lsd_db=2")
    assert code == 2 and "--quality-gate needs --autocast" in stderr
    code, stderr = run_bench_command("--components", "hift", "--autocast", "bf16", "--quality-gate", "lsd_db=2")
    assert code == 2 and "--quality-gate needs --ckpt-dir" in stderr
    (tmp_path / "s3gen.safetensors").touch()
    code, stderr = run_bench_command("--components", "hift", "--autocast", "bf16", "--ckpt-dir", tmp_path,
                                     "--quality-gate", "top1=0.9")
    assert code == 2 and "Invalid value for '--quality-gate': `top1`: no component run measures top1" in stderr
    code, stderr = run_bench_command("--autocast", "fp32")
    assert code == 2 and "Invalid value for '--autocast'" in stderr and "'off', 'bf16', 'fp16'" in stderr


def test_autocast_needs_a_rewritten_tree_that_reads_the_switch():
    # The installed package, given as both trees: nothing in it reads CHATTERBOX_AUTOCAST.
    site_packages = installed_chatterbox().parent
    code, stderr = run_bench_command("--original", site_packages, "--rewritten", site_packages, "--components",
                                     "hift", "--autocast", "bf16")
    assert code == 2 and f"no file of --rewritten {site_packages} reads CHATTERBOX_AUTOCAST" in stderr


def test_teacher_forcing_hands_out_the_given_tokens_and_draws_as_the_original_did():
    """`forced_sampling`: T3's sampling call returns the original's tokens, and the RNG ends where the
    original's own draws left it, whatever probabilities the side computed."""
    original_probs = torch.softmax(torch.randn(2, 50, generator=torch.Generator().manual_seed(1)), dim=-1)
    side_probs = torch.softmax(torch.randn(2, 50, generator=torch.Generator().manual_seed(2)), dim=-1)
    torch.manual_seed(0)
    original = [torch.multinomial(original_probs, num_samples=1) for _ in range(3)]
    after_original = torch.rand(4)
    tokens = torch.cat([token[:1] for token in original], dim=1)  # the conditional row's, as T3 keeps them
    torch.manual_seed(0)
    real = torch.multinomial
    with forced_sampling(tokens) as handed:
        forced = [torch.multinomial(side_probs, num_samples=1) for _ in range(3)]
        with pytest.raises(RuntimeError, match="samples more than the original's 3 tokens"):
            torch.multinomial(side_probs, num_samples=1)
    assert torch.multinomial is real and handed == [3]
    assert [token.tolist() for token in forced] == [[[t], [t]] for t in tokens[0].tolist()]
    torch.manual_seed(0)
    for _ in range(3):
        torch.multinomial(side_probs, num_samples=1)
    assert torch.equal(torch.rand(4), after_original)  # the draws advance the RNG by shape, not by values


@pytest.mark.slow
def test_autocast_bench_on_the_installed_t3(tmp_path):
    """Three sides on the real T3 (10 layers at smoke size, random weights): the fp32 rewrite gives the original's
    tokens exactly; the bf16 side is measured on its next-token distributions and not judged."""
    report_path, plot_path = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = cli("bench", "--components", "t3", "--autocast", "bf16", "--rounds", "1", "--device", "cpu",
               "--json", report_path, "--plot", plot_path, check_rc=0)
    report = load_json(report_path)
    assert report["sides"] == ["original", "rewritten", "autocast"] and report["quality_judged"] is False
    assert report["transforms"]["autocast"]["count"] > 0
    (t3,) = report["components"]
    assert t3["verdict"] == "ok" and t3["equivalent"], t3
    (tokens,) = t3["outputs"]
    assert tokens["name"] == "speech_tokens" and tokens["max_abs"] == 0 and tokens["shape"] == [1, 25]
    assert set(t3["ratios"]) == {"rewritten", "autocast"} and set(t3["times"]) == {"original", "rewritten", "autocast"}
    quality = t3["quality"]["autocast"]
    assert quality["note"] == "not judged: random weights" and not quality["problems"]
    assert 0 <= quality["measures"]["top1"] <= 1 and 0 <= quality["measures"]["kl"] < math.inf
    assert t3["quality"]["rewritten"]["measures"] == {"top1": 1.0, "kl": 0.0}
    assert "speech tokens" in quality["sampling"]
    assert "  t3  top1 " in proc.stdout and "not judged: random weights" in proc.stdout
    assert "PASS: 1 component equivalent in fp32; bf16: 1 not judged (random weights)" in proc.stdout
    assert plot_path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.large
def test_autocast_bench_on_the_installed_chatterbox(tmp_path):
    """The real package, rewritten with the autocast transform, hift in bf16 (minutes on a CPU without bfloat16:
    out of the default suite, `python -m pytest -m large`)."""
    report_path = tmp_path / "bench.json"
    proc = cli("bench", "--components", "hift", "--autocast", "bf16", "--rounds", "1", "--device", "cpu",
               "--json", report_path, check_rc=0)
    (outcome,) = load_json(report_path)["components"]
    assert outcome["verdict"] == "ok" and outcome["equivalent"]
    assert all(math.isfinite(value) for value in outcome["quality"]["autocast"]["measures"].values())
    assert "hift  snr_db" in proc.stdout and "not judged: random weights" in proc.stdout


def test_every_component_declares_quality_measures_the_report_describes():
    assert set(QUALITY) == set(ALL_COMPONENT_NAMES)
    assert set(QUALITY_DESCRIPTIONS) == set(MEASURES)
    assert all(measure in MEASURES for quality in QUALITY.values() for measure in quality.measures)


def test_the_report_shows_three_sides_and_the_quality_figures(tmp_path):
    """format_report, to_json and write_plot on a made-up three-side result (no worker runs)."""
    from chatterbox_codemod.benchmarks.report import format_report, to_json, write_plot
    from chatterbox_codemod.benchmarks.verify import BenchOptions, BenchResult
    from chatterbox_codemod.benchmarks.workload import SIZES

    sides = ("original", "rewritten", AUTOCAST)
    options = BenchOptions(size=SIZES["smoke"], components=["hift", "t3"], rounds=3, autocast="bf16")
    same = compare_outputs({"0": torch.ones(4)}, {"0": torch.ones(4)})
    reference = {"0": tone(0.2).float()}
    hift = ComponentResult("hift", sides, diffs=same, autocast_diffs=same, audio_seconds=1.0,
                           times={"original": [1.0, 1.1, 0.9], "rewritten": [0.9, 1.0, 0.8],
                                  AUTOCAST: [0.5, 0.6, 0.5]},
                           memory={label: {"tensor_peak_bytes": 2**20} for label in sides})
    hift.quality[AUTOCAST] = evaluate("hift", reference, {"0": reference["0"] * 1.01}, {}, judged=False,
                                      note="not judged: random weights")
    for label in sides[1:]:
        hift.speeds[label] = speed_ratio(hift.times["original"], hift.times[label])
    # An autocast side that raised: dropped, the fp32 sides keep their figures.
    t3 = ComponentResult("t3", sides, diffs=same, errors={AUTOCAST: "RuntimeError: no bf16 kernel"},
                         times={"original": [2.0, 2.0, 2.0], "rewritten": [1.0, 1.0, 1.0], AUTOCAST: []})
    t3.speeds["rewritten"] = speed_ratio(t3.times["original"], t3.times["rewritten"])
    result = BenchResult(options=options, trees={label: "/tree" for label in sides},
                         environment={"device": "cuda", "device_name": "GPU", "torch": "2.6.0"}, transforms=None,
                         codemod_errors=[], components=[hift, t3], started="today")
    text = format_report(result)
    assert "hift median" not in text and "bf16 median" in text and "ratio bf16 [95% CI]" in text
    assert "max abs / rel diff (rewr)" in text and "quality (bf16)" in text
    hift_row = next(line for line in text.splitlines() if line.startswith("hift "))
    assert "1.111 [1.100, 1.125]" in hift_row and "1.833 [1.800, 2.000]" in hift_row
    assert "1.0 / 1.0 / 1.0 MiB" in hift_row and "snr_db 40.0 dB" in hift_row
    t3_row = next(line for line in text.splitlines() if line.startswith("t3 "))
    assert "2.000 s" in t3_row and "1.000 s" in t3_row and t3_row.rstrip().endswith("error")
    assert "t3: the bf16 autocast side raised RuntimeError: no bf16 kernel" in text
    assert "  hift  snr_db 40.0 dB, lsd_db " in text and "not judged: random weights" in text
    assert text.rstrip().endswith("FAIL: t3 (error)")
    report = to_json(result)
    assert report["sides"] == list(sides) and report["autocast"] == "bf16"
    hift_json, t3_json = report["components"]
    assert hift_json["quality"]["autocast"]["measures"]["snr_db"] == pytest.approx(40.0, abs=0.01)
    assert set(hift_json["ratios"]) == {"rewritten", AUTOCAST}
    assert t3_json["ratios"] == {"rewritten": t3_json["ratio"]} and t3_json["median_seconds"] == {
        "original": 2.0, "rewritten": 1.0}
    write_plot(result, tmp_path / "bench.png")
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")
