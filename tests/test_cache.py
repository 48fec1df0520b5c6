"""The run cache: a cached run reports and rewrites exactly what an uncached run does, and faults in the
cache cost a recomputation, never a verdict."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from chatterbox_codemod.cache import DEFAULT_DIR
from conftest import FIXTURES, cli, installed_chatterbox, load_json, run_engine

DEFAULT_TRANSFORMS = ["entry-points", "inference-mode", "channels-last"]


def outcome(report) -> tuple:
    """What a user gets from a run: the JSON report, every rewritten file's bytes, the errors."""
    return (json.dumps(report.to_json(), sort_keys=True),
            {r.path: r.rewritten for r in report.changed},
            [(e.path, e.message, e.line) for e in report.errors])


# A few cases with rewrites of each default transform: the project the fault and CLI tests run on.
SMALL = ("inference-mode/aliased_no_grad", "inference-mode/crlf_tabs_and_comments", "channels-last/conv3d",
         "entry-points/runs_modules_with_grad_on")


def fixture_project(folder: Path, cases: tuple[str, ...] | None = None) -> Path:
    """One project whose package holds fixture inputs as modules (default: every case of the default
    transforms)."""
    package = folder / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if cases is None:
        sources = [case for transform in DEFAULT_TRANSFORMS for case in sorted((FIXTURES / transform).glob("*.in.py"))]
    else:
        sources = [FIXTURES / f"{case}.in.py" for case in cases]
    for case in sources:
        shutil.copyfile(case, package / f"{case.parent.name.replace('-', '_')}__{case.name[:-len('.in.py')]}.py")
    (folder / "pyproject.toml").write_text("")
    return folder


def engine_run(project: Path, cache: Path | None):
    return run_engine([project / "pkg"], project_root=project, cache_dir=cache)


def test_cached_runs_equal_uncached_runs_through_edits_deletions_and_renames(tmp_path):
    project = fixture_project(tmp_path / "project")
    cache = tmp_path / "cache"
    rng = random.Random(20261202)
    for step in range(3):
        plain, cold_or_warm, warm = engine_run(project, None), engine_run(project, cache), engine_run(project, cache)
        uncached = outcome(plain)
        assert outcome(cold_or_warm) == uncached, f"step {step}"
        assert outcome(warm) == uncached, f"step {step}"
        # The analysis's notes too (here: the lookups by name of `handed_out_by_getattr`,
        # `parameter_of_function_handed_out_by_getattr` and `region_calls_function_looked_up_by_name`, while they
        # stay).
        assert cold_or_warm.notes == warm.notes == plain.notes, f"step {step}"
        assert step or plain.notes[0].startswith("3 lookups by a name computed at run time")
        files = sorted((project / "pkg").glob("*__*.py"))
        victim = rng.choice(files)
        change = step % 3
        if change == 0:  # an edit: a new grad-off helper, which the analysis sees as a new site
            with victim.open("a", encoding="utf-8") as handle:
                handle.write("\n\nimport torch\n\n\n@torch.no_grad()\ndef added_helper(x):\n    return x * 2\n")
        elif change == 1:
            victim.unlink()
        else:
            victim.rename(victim.with_name(f"renamed_{step}_{victim.name}"))
    assert len(list(cache.glob("*.json"))) == 3  # one entry per state of the project


def test_a_warm_run_replays_the_stored_outcome_and_an_edit_is_a_miss(tmp_path):
    project = fixture_project(tmp_path / "project", SMALL)
    cache = tmp_path / "cache"
    first = engine_run(project, cache)
    (entry,) = cache.glob("*.json")
    # Mark the stored reasons: a run that replays the entry shows the mark, a recomputed one does not.
    data = json.loads(entry.read_text())
    for site in data["sites"]:
        site[5] = "REPLAYED " + site[5]
    entry.write_text(json.dumps(data))
    replayed = engine_run(project, cache)
    assert replayed.sites and all(s.reason.startswith("REPLAYED ") for s in replayed.sites)
    assert [s.reason for s in replayed.sites] == ["REPLAYED " + s.reason for s in first.sites]
    some_file = sorted((project / "pkg").glob("*__*.py"))[0]
    some_file.write_text(some_file.read_text() + "\n# an edit\n")
    recomputed = engine_run(project, cache)
    assert not any(s.reason.startswith("REPLAYED ") for s in recomputed.sites)


@pytest.mark.parametrize("damage", ["truncated", "not json", "another format", "wrong types"])
def test_a_damaged_entry_is_recomputed_with_a_note(tmp_path, damage):
    project = fixture_project(tmp_path / "project", SMALL)
    cache = tmp_path / "cache"
    expected = outcome(engine_run(project, None))
    engine_run(project, cache)
    (entry,) = cache.glob("*.json")
    text = entry.read_text()
    data = json.loads(text)
    if damage == "truncated":
        entry.write_text(text[: len(text) // 2])
    elif damage == "not json":
        entry.write_bytes(b"\x00\xff" * 10)
    elif damage == "another format":
        entry.write_text(json.dumps({**data, "format": 0}))
    else:
        data["sites"][0][1] = "line one"
        entry.write_text(json.dumps(data))
    report = engine_run(project, cache)
    assert outcome(report) == expected
    (note,) = report.notes
    assert note.startswith(f"cache entry {entry} is unusable (") and note.endswith("); recomputed")
    # The recomputed outcome replaced the entry: the next run replays it without a note.
    again = engine_run(project, cache)
    assert outcome(again) == expected and again.notes == []


def test_a_cache_path_that_is_a_file_costs_the_store_not_the_run(tmp_path):
    project = fixture_project(tmp_path / "project", SMALL)
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    report = engine_run(project, blocker)
    assert outcome(report) == outcome(engine_run(project, None))
    (note,) = report.notes
    assert note.startswith(f"cannot write the cache in {blocker} (")


def _apply(project: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chatterbox_codemod", "apply", "--diff", "pkg", *extra],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_runs_at_once_share_the_cache_folder(tmp_path):
    project = fixture_project(tmp_path / "project", SMALL)
    runs = [_apply(project) for _ in range(2)]
    results = [(run.wait(), *run.communicate()) for run in runs]
    warm = cli("apply", "--diff", "pkg", cwd=project)
    uncached = cli("apply", "--diff", "--no-cache", "pkg", cwd=project)
    assert uncached.returncode == 1 and "would be rewritten" in uncached.stderr
    for rc, out, err in [*results, (warm.returncode, warm.stdout, warm.stderr)]:
        assert (rc, out, err) == (uncached.returncode, uncached.stdout, uncached.stderr)
    assert len(list((project / DEFAULT_DIR).glob("*.json"))) == 1
    assert not list((project / DEFAULT_DIR).glob(".entry-*"))  # no temporary file left behind


def test_the_cache_folder_and_the_flags(tmp_path):
    project = fixture_project(tmp_path / "project", SMALL)
    cli("apply", "--check", "--no-cache", "pkg", cwd=project, check_rc=1)
    assert not (project / DEFAULT_DIR).exists()
    cli("apply", "--check", "pkg", cwd=project, check_rc=1)
    folder = project / DEFAULT_DIR
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert len(list(folder.glob("*.json"))) == 1
    elsewhere = tmp_path / "elsewhere"
    cli("apply", "--check", "--cache-dir", elsewhere, "pkg", cwd=project, check_rc=1)
    assert len(list(elsewhere.glob("*.json"))) == 1
    # Its folder is never part of the project: `--output` copies do not carry it.
    cli("apply", "--output", tmp_path / "copy", ".", cwd=project, check_rc=0)
    assert (tmp_path / "copy" / "pkg").is_dir() and not (tmp_path / "copy" / DEFAULT_DIR).exists()


def test_the_installed_chatterbox_replays_byte_for_byte(tmp_path):
    tree = tmp_path / "chatterbox"
    shutil.copytree(installed_chatterbox(), tree, ignore=shutil.ignore_patterns("__pycache__"))
    uncached = cli("apply", "--diff", "--no-cache", "--report", tmp_path / "uncached.json", ".", cwd=tree)
    runs = [cli("apply", "--diff", "--report", tmp_path / f"cached{i}.json", ".", cwd=tree) for i in (1, 2)]
    for run in runs:
        assert (run.returncode, run.stdout, run.stderr) == (uncached.returncode, uncached.stdout, uncached.stderr)
    reports = [load_json(tmp_path / name) for name in ("uncached.json", "cached1.json", "cached2.json")]
    assert reports[0]["files_rewritten"] > 0 and reports[0] == reports[1] == reports[2]
