"""What reviewers and CI use: annotations, pre-commit hooks, configuration, interruption."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli
from test_cli import SAFE, SAFE_REWRITTEN, UNSAFE, make_project


def test_github_annotations(tmp_path):
    root = make_project(tmp_path, {"infer.py": SAFE, "model.py": UNSAFE})
    proc = cli("apply", "--check", "--format", "github", "--select", "inference-mode", root, cwd=root,
               check_rc=1)
    lines = proc.stdout.splitlines()
    assert lines[0] == ("::notice file=infer.py,line=4,title=chatterbox-codemod::inference-mode applied: "
                        "`@torch.no_grad()` on predict: no tensor made in the region reaches an autograd-recording "
                        "operation or an in-place update outside inference mode. Note: predict hands inference "
                        "tensors to callers outside the project.")
    assert lines[1].startswith("::warning file=model.py,line=11,title=chatterbox-codemod::inference-mode unsafe: ")
    assert len(lines) == 2


def test_configuration_and_command_line_precedence(tmp_path):
    root = make_project(tmp_path, {"model.py": UNSAFE, "infer.py": SAFE, "legacy/old.py": SAFE})
    (root / "pyproject.toml").write_text(
        '[tool.chatterbox-codemod]\nselect = ["inference-mode"]\nunsafe-fixes = true\nexclude = ["legacy"]\n')
    cli("apply", "--no-unsafe-fixes", root, check_rc=0)
    assert (root / "model.py").read_text() == UNSAFE  # the flag overrides `unsafe-fixes = true`
    assert (root / "infer.py").read_text() == SAFE_REWRITTEN
    assert (root / "legacy/old.py").read_text() == SAFE  # excluded by the config
    cli("apply", root, check_rc=0)
    assert "torch.inference_mode()" in (root / "model.py").read_text()  # config's unsafe-fixes
    proc = cli("apply", "--check", "--select", "entry-points", root, check_rc=0)
    assert "entry-points:" in proc.stderr and "inference-mode:" not in proc.stderr


def test_pre_commit_hooks(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "infer.py").write_text(SAFE)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)

    def hook(name):
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), name, "--all-files"],
                              cwd=repo, capture_output=True, text=True, env=env)

    check = hook("chatterbox-codemod-check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "1 would be rewritten" in check.stdout
    applied = hook("chatterbox-codemod-apply")
    assert applied.returncode == 1 and "files were modified by this hook" in applied.stdout
    assert (repo / "infer.py").read_text() == SAFE_REWRITTEN
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    assert hook("chatterbox-codemod-check").returncode == 0


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_runs_leave_every_file_whole(tmp_path, how):
    files = {f"pkg/m{i:03}.py": SAFE.replace("predict", f"predict{i}") for i in range(300)}
    root = make_project(tmp_path, files)
    originals = {name: text.encode() for name, text in files.items()}
    rewritten = {name: text.replace("@torch.no_grad()", "@torch.inference_mode()").encode()
                 for name, text in files.items()}
    started = time.monotonic()
    cli("apply", "--check", root)
    duration = time.monotonic() - started
    rng = random.Random(how)
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "chatterbox_codemod", "apply", "--jobs", "1", str(root / "pkg")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.2, duration * 1.2))
        proc.send_signal(how)
        _, stderr = proc.communicate(timeout=60)
        if how == signal.SIGINT and proc.returncode == 130:
            assert "interrupted; files already written are complete" in stderr
        for name in files:
            data = (root / name).read_bytes()
            assert data in (originals[name], rewritten[name]), f"{name} is partial after attempt {attempt}"
    cli("apply", root / "pkg", check_rc=0)
    assert all((root / name).read_bytes() == rewritten[name] for name in files)
    assert not [p for p in (root / "pkg").iterdir() if not p.name.endswith(".py")]


def test_targets_symlinked_folder_and_several_paths(tmp_path):
    root = make_project(tmp_path, {"a/one.py": SAFE, "b/two.py": SAFE, "c/three.py": SAFE})
    link = tmp_path / "linked"
    link.symlink_to(root / "c", target_is_directory=True)
    cli("apply", root / "a", root / "b" / "two.py", link, check_rc=0)
    for name in ("a/one.py", "b/two.py", "c/three.py"):
        assert (root / name).read_text() == SAFE_REWRITTEN, name


def test_file_changed_during_the_run_is_not_overwritten(tmp_path):
    """A file edited after it was read keeps the user's edit: exit 2, nothing written over it."""
    root = make_project(tmp_path, {"infer.py": SAFE})
    script = (
        "import sys\nfrom pathlib import Path\nimport chatterbox_codemod.engine as engine\n"
        "original = engine._write_in_place\n"
        "def edit_then_write(report, sources):\n"
        "    Path(sys.argv[1]).write_text('# edited meanwhile\\n')\n"
        "    original(report, sources)\n"
        "engine._write_in_place = edit_then_write\n"
        "from chatterbox_codemod.cli import main\nmain(['apply', sys.argv[1]])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(root / "infer.py")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "file changed on disk during the run; not rewritten" in proc.stderr
    assert (root / "infer.py").read_text() == "# edited meanwhile\n"


def test_deeply_nested_file_is_reported_without_stopping_the_run(tmp_path):
    chain = " + ".join(["1"] * 20000)
    root = make_project(tmp_path, {"deep.py": f"import torch\n\nX = {chain}\n", "infer.py": SAFE})
    proc = cli("apply", root, check_rc=2)
    assert f"{Path(root) / 'deep.py'}: error: cannot parse: RecursionError" in proc.stderr
    assert (root / "infer.py").read_text() == SAFE_REWRITTEN
