"""What `pip install chatterbox-codemod` puts into an environment: one import name, and no development tools."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "-w", str(out), str(ROOT)], check=True)
    (found,) = out.glob("chatterbox_codemod-*.whl")
    return found


def test_one_top_level_name_and_no_development_tools(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"chatterbox_codemod"}
    modules = {n for n in names if n.endswith(".py")}
    assert "chatterbox_codemod/transforms/inference_mode.py" in modules
    assert "chatterbox_codemod/analysis/valueflow.py" in modules
    assert "chatterbox_codemod/benchmarks/verify.py" in modules
    assert not [n for n in modules if "/fuzz/" in n or n.endswith(("tool_speed.py", "channels_last_campplus.py"))]


def test_a_regular_install_runs_in_a_fresh_environment(wheel, tmp_path):
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel], check=True)
    version = subprocess.run([python, "-m", "chatterbox_codemod", "--version"], capture_output=True, text=True,
                             cwd=tmp_path, check=True)
    assert version.stdout.startswith("chatterbox-codemod, version ")
    listed = subprocess.run([env / "bin" / "chatterbox-codemod", "list-transforms"], capture_output=True, text=True,
                            cwd=tmp_path, check=True)
    assert [line for line in listed.stdout.splitlines() if line and not line.startswith(" ")] == [
        "entry-points", "inference-mode", "channels-last", "autocast"]
    for foreign in ("codemod", "transforms", "benchmarks"):
        probe = subprocess.run([python, "-c", f"import {foreign}"], capture_output=True, text=True, cwd=tmp_path)
        assert "ModuleNotFoundError" in probe.stderr, foreign
