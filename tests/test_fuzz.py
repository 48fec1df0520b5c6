"""The differential fuzzer (`python -m benchmarks.fuzz`): no false-safe on a seeded set, and an oracle with teeth.

The first test runs 200 generated programs (seed 0) through the tool and the
worker pool and fails on any false-safe: a site the tool rewrote whose
program then raises, computes other values or loses gradients. Its message
lists each one (shrink them with `python -m benchmarks.fuzz --programs 200 --seed 0
--keep DIR`). The second checks on
the same seed that blindly converting every `no_grad` (the plan's edit) is
caught: an oracle that cannot fail proves nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

pytest.importorskip("torch")


def _fuzz(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    figures = tmp_path / "fuzz.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.fuzz", "--seed", "0", "--jobs", "2", "--keep", str(tmp_path / "repro"),
         "--json", str(figures), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc, json.loads(figures.read_text())


def test_no_false_safe_on_200_seeded_programs(tmp_path):
    proc, figures = _fuzz(tmp_path, "--programs", "200", "--no-precision", "--shrink", "0")
    assert figures["programs"] == 200
    assert not figures["generator_errors"], figures["generator_errors"][:5]
    found = figures["tool"]["false_safes"]
    assert not found, f"{len(found)} false-safe sites:\n" + "\n".join(
        f"{f['class']}: {f['sites']} {f['failures'][0]}" for f in found[:20]
    ) + "\n" + proc.stdout[-4000:]
    assert proc.returncode == 0


def test_literal_baseline_is_caught(tmp_path):
    _, figures = _fuzz(tmp_path, "--programs", "25", "--baseline", "literal", "--no-precision", "--shrink", "0")
    assert figures["baseline_literal"]["false_safe_sites"] > 0
    assert figures["baseline_literal"]["false_safe_programs"] > 0
