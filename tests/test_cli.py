"""The command line as a user drives it: exit codes, output modes, reports and bad input."""

from __future__ import annotations

import codecs
import json
import os
import stat
import subprocess

from conftest import cli

SAFE = ("import torch\n\n\n@torch.no_grad()\ndef predict(model: torch.nn.Linear, x):\n"
        "    return model(x).argmax().item()\n")
SAFE_REWRITTEN = SAFE.replace("@torch.no_grad()", "@torch.inference_mode()")
UNSAFE = (
    "import torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n    def __init__(self):\n"
    "        super().__init__()\n        self.fc = nn.Linear(2, 2)\n\n    def forward(self, x):\n"
    "        with torch.no_grad():\n            y = x * 2\n        return self.fc(y)\n"
)


def make_project(tmp_path, files: dict[str, str | bytes]):
    root = tmp_path / "project"
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_apply_rewrites_in_place_and_reports(tmp_path):
    root = make_project(tmp_path, {"pkg/infer.py": SAFE, "pkg/model.py": UNSAFE, "pkg/__init__.py": ""})
    report = tmp_path / "report.json"
    proc = cli("apply", "--select", "inference-mode", "--report", report, root / "pkg", check_rc=0)
    assert (root / "pkg/infer.py").read_text() == SAFE_REWRITTEN
    assert (root / "pkg/model.py").read_text() == UNSAFE
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-2:] == [
        "chatterbox-codemod: 3 files scanned, 1 rewritten, 0 errors",
        "  inference-mode: 1 applied, 1 unsafe, 0 not-applicable, 0 suppressed; 1 site rewritten",
    ]
    assert "model.py:11: inference-mode unsafe: `with torch.no_grad()` in M.forward" in proc.stderr
    data = json.loads(report.read_text())
    assert data["tool_version"] == "0.1.0"
    assert data["errors"] == []
    assert [(s["path"], s["line"], s["transform"], s["status"], s["fixable"], s["rewritten"]) for s in
            data["sites"]] == [("infer.py", 4, "inference-mode", "applied", True, True),
                               ("model.py", 11, "inference-mode", "unsafe", True, False)]


def test_check_prints_only_the_summary_and_exits_1_when_pending(tmp_path):
    root = make_project(tmp_path, {"infer.py": SAFE, "model.py": UNSAFE})
    proc = cli("apply", "--check", "--select", "inference-mode", root, check_rc=1)
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "chatterbox-codemod: 2 files scanned, 1 would be rewritten, 0 errors",
        "  inference-mode: 1 applied, 1 unsafe, 0 not-applicable, 0 suppressed; 1 site would be rewritten",
    ]
    assert (root / "infer.py").read_text() == SAFE
    cli("apply", "--select", "inference-mode", root, check_rc=0)
    cli("apply", "--check", "--select", "inference-mode", root, check_rc=0)


def test_diff_is_git_style_relative_to_the_current_directory(tmp_path):
    root = make_project(tmp_path, {"src/infer.py": SAFE})
    proc = cli("apply", "--diff", "src", cwd=root, check_rc=1)
    assert proc.stdout == (
        "diff --git a/src/infer.py b/src/infer.py\n--- a/src/infer.py\n+++ b/src/infer.py\n"
        "@@ -1,6 +1,6 @@\n import torch\n \n \n-@torch.no_grad()\n+@torch.inference_mode()\n"
        " def predict(model: torch.nn.Linear, x):\n     return model(x).argmax().item()\n"
    )
    assert (root / "src/infer.py").read_text() == SAFE


def test_diff_of_a_target_outside_the_current_directory_applies_from_the_root(tmp_path):
    root = make_project(tmp_path, {"src/infer.py": SAFE})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli("apply", "--diff", root / "src", cwd=elsewhere, check_rc=1)
    shown = (root / "src/infer.py").as_posix().lstrip("/")
    assert proc.stdout.startswith(f"diff --git a/{shown} b/{shown}\n--- a/{shown}\n+++ b/{shown}\n@@ -1,6 +1,6 @@\n")
    patch = tmp_path / "change.patch"
    patch.write_text(proc.stdout)
    subprocess.run(["git", "apply", str(patch)], cwd="/", check=True)
    assert (root / "src/infer.py").read_text() == SAFE_REWRITTEN


def test_output_writes_a_complete_copy_and_leaves_the_source_alone(tmp_path):
    root = make_project(tmp_path, {"pkg/infer.py": SAFE, "pkg/model.py": UNSAFE, "pkg/data/notes.txt": "notes\n"})
    before = {p: p.read_bytes() for p in (root / "pkg").rglob("*") if p.is_file()}
    out = tmp_path / "out"
    cli("apply", "--output", out, root / "pkg", check_rc=0)
    assert {p: p.read_bytes() for p in (root / "pkg").rglob("*") if p.is_file()} == before
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "data/notes.txt", "infer.py", "model.py"]
    assert (out / "infer.py").read_text() == SAFE_REWRITTEN
    assert (out / "model.py").read_text() == UNSAFE
    assert (out / "data/notes.txt").read_text() == "notes\n"


def test_usage_errors_exit_2(tmp_path):
    root = make_project(tmp_path, {"infer.py": SAFE})
    proc = cli("apply", "--select", "no-such-transform", root, check_rc=2)
    assert "unknown transform `no-such-transform`" in proc.stderr
    proc = cli("apply", "--diff", "--check", root, check_rc=2)
    assert "mutually exclusive" in proc.stderr
    proc = cli("apply", tmp_path / "missing", check_rc=2)
    assert "no such file or directory" in proc.stderr
    (root / "pyproject.toml").write_text("[tool.chatterbox-codemod]\nselekt = ['inference-mode']\n")
    proc = cli("apply", root, check_rc=2)
    assert "unknown key `selekt`" in proc.stderr
    assert (root / "infer.py").read_text() == SAFE
    (root / "pyproject.toml").write_text("[tool.chatterbox-codemod.entry-points]\nincludes = ['A.b']\n")
    proc = cli("apply", root, check_rc=2)
    assert "unknown key `includes` in [tool.chatterbox-codemod.entry-points] (known: exclude, include)" in proc.stderr


def test_bad_files_are_reported_and_the_rest_is_processed(tmp_path):
    root = make_project(tmp_path, {
        "broken.py": "def f(:\n    pass\n",
        "binary.py": b"x = 1\ny = '\xff\xfe'\n",
        "empty.py": "",
        "good.py": SAFE,
    })
    proc = cli("apply", root, check_rc=2)
    lines = proc.stderr.splitlines()
    assert f"{root / 'broken.py'}:1: error: syntax error: invalid syntax" in lines
    assert any(line.startswith(f"{root / 'binary.py'}:2: error: cannot decode as utf-8: byte 0xff at line 2")
               for line in lines)
    assert "chatterbox-codemod: 4 files scanned, 1 rewritten, 2 errors" in lines
    assert (root / "good.py").read_text() == SAFE_REWRITTEN
    assert (root / "empty.py").read_bytes() == b""


def test_read_only_file_is_not_replaced(tmp_path):
    root = make_project(tmp_path, {"locked.py": SAFE, "open.py": SAFE})
    locked = root / "locked.py"
    locked.chmod(0o444)
    proc = cli("apply", root, check_rc=2)
    assert f"{locked}: error: file is read-only; not rewritten" in proc.stderr
    assert locked.read_text() == SAFE
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444
    assert (root / "open.py").read_text() == SAFE_REWRITTEN


def test_mode_encoding_bom_and_line_endings_are_kept(tmp_path):
    latin = ("# -*- coding: latin-1 -*-\n" + SAFE + "NAME = 'caf\xe9'\n").encode("latin-1")
    crlf = SAFE.replace("\n", "\r\n").encode()
    bom = codecs.BOM_UTF8 + SAFE.encode()
    root = make_project(tmp_path, {"latin.py": latin, "crlf.py": crlf, "bom.py": bom, "script.py": SAFE})
    (root / "script.py").chmod(0o755)
    cli("apply", root, check_rc=0)
    assert (root / "latin.py").read_bytes() == latin.replace(b"no_grad", b"inference_mode")
    assert (root / "crlf.py").read_bytes() == crlf.replace(b"no_grad", b"inference_mode")
    assert (root / "bom.py").read_bytes() == bom.replace(b"no_grad", b"inference_mode")
    assert stat.S_IMODE((root / "script.py").stat().st_mode) == 0o755
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]


def test_symlinks_are_never_followed_out_of_the_target(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text(SAFE)
    root = make_project(tmp_path, {"inside.py": SAFE})
    (root / "link.py").symlink_to(outside)
    (root / "alias.py").symlink_to(root / "inside.py")
    proc = cli("apply", root, check_rc=2)
    assert f"{root / 'link.py'}: error: symlink points outside the target ({outside}); not followed" in proc.stderr
    assert outside.read_text() == SAFE
    assert (root / "inside.py").read_text() == SAFE_REWRITTEN
    assert (root / "alias.py").is_symlink()


def test_explicit_non_python_file_is_an_error(tmp_path):
    root = make_project(tmp_path, {"notes.txt": "hello\n", "infer.py": SAFE})
    proc = cli("apply", root / "notes.txt", root / "infer.py", check_rc=2)
    assert f"{root / 'notes.txt'}: error: not a Python file (expected a .py file)" in proc.stderr
    assert (root / "infer.py").read_text() == SAFE_REWRITTEN


def test_suppression_comments(tmp_path):
    source = SAFE.replace("@torch.no_grad()", "@torch.no_grad()  # chatterbox-codemod: skip")
    root = make_project(tmp_path, {"skipped.py": source, "whole.py": "# chatterbox-codemod: skip-file\n" + SAFE})
    report = tmp_path / "r.json"
    cli("apply", "--report", report, root, check_rc=0)
    assert (root / "skipped.py").read_text() == source
    assert [(s["path"], s["status"], s["reason"]) for s in json.loads(report.read_text())["sites"]] == [
        ("skipped.py", "suppressed", "marked `# chatterbox-codemod: skip`"),
        ("whole.py", "suppressed", "the file carries `# chatterbox-codemod: skip-file`"),
    ]


def test_list_transforms_names_every_transform_with_its_fix_safety():
    proc = cli("list-transforms", check_rc=0)
    from chatterbox_codemod.transforms import TRANSFORMS

    for transform in TRANSFORMS:
        assert f"{transform.id}\n    {transform.summary()}\n" in proc.stdout
        assert transform.fix_safety().splitlines()[0] in proc.stdout


def test_file_target_and_paths_with_spaces(tmp_path):
    root = make_project(tmp_path, {"my folder/infer one.py": SAFE})
    report = tmp_path / "r.json"
    cli("apply", "--report", report, root / "my folder" / "infer one.py", check_rc=0)
    assert (root / "my folder" / "infer one.py").read_text() == SAFE_REWRITTEN
    assert json.loads(report.read_text())["sites"][0]["path"] == "infer one.py"


def test_jobs_give_the_same_result(tmp_path):
    files = {f"m{i}.py": SAFE.replace("predict", f"predict{i}") for i in range(70)}
    serial = make_project(tmp_path / "a", files)
    parallel = make_project(tmp_path / "b", files)
    cli("apply", "--jobs", "1", serial, check_rc=0)
    cli("apply", "--jobs", "2", parallel, check_rc=0)
    assert {p.name: p.read_bytes() for p in serial.glob("*.py")} == {
        p.name: p.read_bytes() for p in parallel.glob("*.py")}
    assert all(b"inference_mode" in p.read_bytes() for p in parallel.glob("*.py"))


def test_unreadable_entry_is_reported(tmp_path):
    root = make_project(tmp_path, {"good.py": SAFE})
    (root / "folder.py").mkdir()  # a directory with a .py name cannot be read as a file
    (root / "folder.py" / "inner.py").write_text(SAFE)
    fifo = root / "pipe.py"
    os.mkfifo(fifo)
    proc = cli("apply", root, check_rc=2)
    assert f"{fifo}: error: not a regular file; skipped" in proc.stderr
    assert (root / "good.py").read_text() == SAFE_REWRITTEN
    assert (root / "folder.py" / "inner.py").read_text() == SAFE_REWRITTEN
