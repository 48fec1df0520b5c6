"""The verification benchmark, run for real on the installed chatterbox-tts (CPU)."""

from __future__ import annotations

import math
import os
import shutil

import pytest
import torch
from chatterbox_codemod.benchmarks.equivalence import compare_tensor
from chatterbox_codemod.benchmarks.memory import ALLOCATOR_ENV
from chatterbox_codemod.benchmarks.stats import speed_ratio
from chatterbox_codemod.benchmarks.verify import rewrite_copy
from chatterbox_codemod.benchmarks.workload import COMPONENT_NAMES
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
    assert f"C allocator in both workers: {settings}\n" in proc.stdout
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
