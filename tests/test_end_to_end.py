"""End to end: the whole `ChatterboxTTS.generate` pipeline (`tts`), and chatterbox-streaming's
`generate_stream` (`stream`), original against rewritten, run for real on the CPU.

The streaming test makes (or reuses) chatterbox-streaming's own virtual environment under the
cache folder; on a fresh machine that is a pip install of the fork and the pins that differ
from this environment's (about a minute), never a skip.
"""

from __future__ import annotations

import math

import pytest
from chatterbox_codemod.benchmarks.workload import SIZES, TTS_TEXT
from conftest import cli, load_json

SMOKE = SIZES["smoke"]


def check_pipeline_report(report: dict, name: str, tokens_expected: int) -> dict:
    (outcome,) = report["components"]
    assert outcome["name"] == name
    assert outcome["verdict"] == "ok" and outcome["equivalent"], outcome
    outputs = {output["name"]: output for output in outcome["outputs"]}
    # fp32 rewrite: the waveform within 1e-5 of the original's, the T3 tokens identical.
    tokens = outputs["speech_tokens"]
    assert tokens["passed"] and tokens["max_abs"] == 0 and tokens["dtype"] == "int64", tokens
    assert tokens["shape"][-1] == tokens_expected  # the sharpened random T3 never stops early
    for output in outputs.values():
        assert output["passed"] and output["max_abs"] <= 1e-5, output
    ratio = outcome["ratio"]
    assert all(math.isfinite(ratio[key]) and ratio[key] > 0 for key in ("median", "low", "high"))
    for label in ("original", "rewritten"):
        assert outcome["rtf"][label] > 0
        assert outcome["memory"][label]["tensor_peak_bytes"] > 0
        tree = outcome["pipeline"]["trees"][label]
        assert tree["speech_tokens"] == tokens_expected
        shares = tree["stage_shares"]
        assert set(shares) == {"conditioning", "t3", "s3gen", "other"}
        assert all(share >= 0 for share in shares.values())
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)
        # Conditioning, T3 and S3Gen are where the time goes.
        assert shares["other"] < 0.5
    # 24 kHz audio: two mel frames of 480 samples per speech token, with the reference's
    # tokens cut off again.
    assert outcome["audio_seconds"] == pytest.approx(tokens_expected / 25, rel=0.1)
    return outcome


@pytest.mark.slow
def test_tts_pipeline_is_equivalent_end_to_end(tmp_path):
    report_path = tmp_path / "tts.json"
    proc = cli("bench", "--components", "tts", "--device", "cpu", "--rounds", "1", "--json", report_path,
               check_rc=0)
    report = load_json(report_path)
    assert report["package"] == "chatterbox-tts"
    check_pipeline_report(report, "tts", SMOKE.tts_tokens)
    assert "tts: stages, median seconds over the rounds" in proc.stdout
    assert f"text {TTS_TEXT!r}" in proc.stdout
    assert "PASS: 1 component equivalent" in proc.stdout


@pytest.mark.slow
def test_streaming_chunks_are_equivalent_one_by_one(tmp_path):
    report_path = tmp_path / "stream.json"
    proc = cli("bench", "--package", "chatterbox-streaming", "--device", "cpu", "--rounds", "1",
               "--json", report_path, check_rc=0)
    report = load_json(report_path)
    assert report["package"] == "chatterbox-streaming"
    assert "/venv-chatterbox-streaming-0.1.2-" in proc.stderr  # its own environment, made or reused
    # A budget of 25 tokens in chunks of 10: two chunks, the same in both trees, sample for sample.
    # The fork hands out a last, shorter chunk only when T3 gives its stop token; at the budget
    # (the sharpened random T3 never stops) the 5 tokens after the last full chunk are dropped.
    expected_chunks = SMOKE.tts_tokens // SMOKE.stream_chunk_tokens
    outcome = check_pipeline_report(report, "stream", expected_chunks * SMOKE.stream_chunk_tokens)
    pipeline = outcome["pipeline"]
    trees = pipeline["trees"]
    assert len(trees["original"]["chunk_samples"]) == expected_chunks
    assert trees["original"]["chunk_boundaries"] == trees["rewritten"]["chunk_boundaries"]
    assert pipeline["chunks_equal"] == {"count": True, "boundaries": True, "samples": True, "concatenation": True}
    assert pipeline["chunk_max_abs_diff"] <= 1e-5
    chunk_outputs = [o for o in outcome["outputs"] if o["name"].startswith("chunk.")]
    assert [o["shape"][-1] for o in chunk_outputs] == trees["original"]["chunk_samples"]
    concatenated = next(o for o in outcome["outputs"] if o["name"] == "concatenated")
    assert concatenated["shape"][-1] == trees["original"]["chunk_boundaries"][-1]
    for label in ("original", "rewritten"):
        first = trees[label]["first_chunk_seconds"]
        assert 0 < first < outcome["times"][label][0]
    assert "chunks: count same, boundaries same, samples same, concatenation same" in proc.stdout
    assert "PASS: 1 component equivalent" in proc.stdout


def test_pipeline_components_belong_to_their_package():
    proc = cli("bench", "--components", "stream", check_rc=2)
    assert "stream not with --package chatterbox-tts" in proc.stderr
    proc = cli("bench", "--package", "chatterbox-streaming", "--components", "hift", check_rc=2)
    assert "hift not with --package chatterbox-streaming" in proc.stderr
