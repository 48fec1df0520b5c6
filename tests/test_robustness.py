"""Every transform over large real trees: nothing crashes, nothing but the reported sites changes.

The corpus: the installed torch, transformers and diffusers sources and both chatterbox
wheels (transformers and torch are marked `large`, out of the default suite: `python -m pytest -m large`).
For each, `apply --output` writes a rewritten copy, and the test checks that
- the run ends with per-file messages at most (no traceback), and the copy is complete;
- every output file parses, and nothing is left to rewrite: the run's own verification (a second
  analysis of every rewritten file) reported nothing unstable, and, on the three smaller trees, a
  second run over the whole copy rewrites nothing (on transformers and torch that second run would
  double the suite's two longest tests, for what the engine's verification and the smaller trees check);
- a file the report does not list as rewritten is byte-identical;
- in a rewritten file, the module's AST is unchanged apart from what the transforms own
  (`Transform.erase_owned`, the check the engine also runs before it writes).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest
from chatterbox_codemod.engine import changes_outside_owned
from chatterbox_codemod.transforms import TRANSFORMS
from conftest import cli, download_wheel, unpack_wheel

pytestmark = pytest.mark.slow

ERROR_LINE = re.compile(r"^\S.*?:(\d+:)? error: .+$")


def _installed(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        pytest.fail(f"{package} is not installed; the test extra installs it with chatterbox-tts")
    return Path(spec.origin).parent


def _corpus(name: str, wheel_cache: Path, tmp_path: Path) -> Path:
    if name.startswith("chatterbox"):
        return unpack_wheel(download_wheel(name, wheel_cache), tmp_path / "wheel")
    return _installed(name)


@pytest.mark.parametrize("name,second_run", [
    pytest.param("chatterbox-tts", True, id="chatterbox-tts"),
    pytest.param("chatterbox-streaming", True, id="chatterbox-streaming"),
    pytest.param("diffusers", True, id="diffusers"),
    # Five and three minutes on the project's 2-core machine: out of the default suite, whose time goes
    # to the end-to-end comparisons (tests/test_end_to_end.py).
    pytest.param("transformers", False, id="transformers", marks=pytest.mark.large),
    pytest.param("torch", False, id="torch", marks=pytest.mark.large),
])
def test_corpus(name, second_run, wheel_cache, tmp_path):
    source = _corpus(name, wheel_cache, tmp_path)
    output = tmp_path / "out" / source.name
    report_path = tmp_path / "report.json"
    # No run cache: the sources are installed packages, and the second run must analyse the copy afresh.
    proc = cli("apply", "--no-cache", "--output", output, "--report", report_path, source)
    assert proc.returncode in (0, 2), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    report = json.loads(report_path.read_text())
    for line in proc.stderr.splitlines():
        if " error: " in line:
            assert ERROR_LINE.match(line), line
    failed = {e["path"] for e in report["errors"]}
    # The engine's verification refuses a file whose rewrite is unstable or reaches code no transform owns.
    assert not [e for e in report["errors"] if e["message"].startswith(("not stable", "the rewrite changed"))], \
        report["errors"]

    originals = {p.relative_to(source).as_posix(): p for p in source.rglob("*.py") if "__pycache__" not in p.parts}
    copies = {p.relative_to(output).as_posix(): p for p in output.rglob("*.py")}
    assert set(copies) == set(originals)

    rewritten = {s["path"] for s in report["sites"] if s["rewritten"]}
    assert rewritten == {r for r in rewritten if r not in failed}
    changed = set()
    for rel, copy in copies.items():
        before, after = originals[rel].read_bytes(), copy.read_bytes()
        if rel not in rewritten:
            assert after == before, f"{rel} changed but the report lists no rewritten site in it"
            continue
        changed.add(rel)
        ast.parse(after)
        assert not changes_outside_owned(before.decode(), after.decode(), TRANSFORMS), \
            f"{rel}: more changed than the reported sites"
    assert changed == rewritten

    if not second_run:
        return
    again = cli("apply", "--no-cache", "--check", output)
    assert again.returncode in (0, 2), again.stderr[-3000:]
    summary = re.search(r"(\d+) files? scanned, (\d+) would be rewritten", again.stderr)
    assert summary and summary.group(2) == "0", again.stderr[-3000:]
