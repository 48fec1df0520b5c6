"""Fixture cases: `fixtures/<transform-id>/<case>.in.py` -> `<case>.out.py` (+ `<case>.report.json`).

Each case is a one-file project. The test runs the engine with only that
transform selected and checks the rewritten text, the verdicts (when a
report file exists: status, fixability, the hazard's kind and the code it
names, not the reason's wording) and idempotence: running again over the expected output
changes nothing. A case without `.out.py` must come back unchanged (refusals);
cases named `noop_*` are the patterns the transform never touches.

A case may carry options on its first line (`# fixture-options: --unsafe-fixes`)
and a `<case>.pyproject.toml` that becomes the project's pyproject.toml.
Set UPDATE_FIXTURES=1 to rewrite the expected files from the current output.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from chatterbox_codemod.config import load_config
from conftest import FIXTURES, run_engine

UPDATE = os.environ.get("UPDATE_FIXTURES") == "1"


def _cases():
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for source in sorted(folder.glob("*.in.py")):
            yield pytest.param(folder.name, source, id=f"{folder.name}/{source.name[:-6]}")


def _options(text: str) -> dict:
    first = text.splitlines()[0] if text else ""
    return {"unsafe_fixes": "--unsafe-fixes" in first} if first.startswith("# fixture-options:") else {}


def _run(transform: str, folder: Path, name: str, text: bytes, options: dict, pyproject: Path):
    project = folder / "project"
    if project.exists():
        shutil.rmtree(project)
    project.mkdir()
    (project / "pyproject.toml").write_text(pyproject.read_text() if pyproject.exists() else "")
    path = project / f"{name}.py"
    path.write_bytes(text)
    report = run_engine([path], select=[transform], project_root=project, config=load_config(project), **options)
    assert not report.errors, [e.render(str(e.path)) for e in report.errors]
    rewritten = report.changed[0].rewritten if report.changed else text
    return report, rewritten


@pytest.mark.parametrize("transform,source", list(_cases()))
def test_fixture(transform, source, tmp_path):
    name = source.name[: -len(".in.py")]
    expected_path = source.with_name(f"{name}.out.py")
    report_path = source.with_name(f"{name}.report.json")
    text = source.read_bytes()
    options = _options(text.decode("utf-8", "replace"))

    pyproject = source.with_name(f"{name}.pyproject.toml")
    report, rewritten = _run(transform, tmp_path, name, text, options, pyproject)
    ordered = sorted(report.sites, key=lambda s: s.line)  # a `with`'s items stay in their order
    # The verdict, the hazard's kind and the code it names: a reworded reason rewrites no fixture (the
    # reasons' wording is checked where it matters, in test_soundness.py and test_real_trees.py).
    sites = [{k: v for k, v in site.to_json(report.rel(site.path)).items() if k != "reason"} for site in ordered]
    if UPDATE:
        if rewritten != text:
            expected_path.write_bytes(rewritten)
        elif expected_path.exists():
            expected_path.unlink()
        report_path.write_text(json.dumps(sites, indent=2) + "\n")

    if name.startswith("noop_"):
        assert not expected_path.exists(), "a no-op case has no .out.py"
    if expected_path.exists():
        assert rewritten.decode("utf-8") == expected_path.read_bytes().decode("utf-8")
    else:
        assert rewritten == text, "no .out.py: the input must come back unchanged"
    if report_path.exists():
        assert sites == json.loads(report_path.read_text())

    # Idempotence: a second run over the result changes nothing.
    again, rewritten_again = _run(transform, tmp_path, name, rewritten, options, pyproject)
    assert rewritten_again == rewritten
    assert not again.changed
