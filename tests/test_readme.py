"""The README's quick start is what CI runs: two commands, and `.ci/run` runs the second one verbatim."""

from __future__ import annotations

import re

from conftest import ROOT


def _quick_start() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_has_the_main_job_and_the_test_command():
    main_job, tests = _quick_start()
    assert main_job.endswith("chatterbox-codemod bench")
    assert tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    _, tests = _quick_start()
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in script
