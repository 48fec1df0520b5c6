"""Documentation that must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from chatterbox_codemod.docs import PAGE, render
from chatterbox_codemod.transforms import TRANSFORMS

ROOT = Path(__file__).resolve().parent.parent


def test_transform_docs_page_matches_the_docstrings():
    assert PAGE.read_text(encoding="utf-8") == render(), \
        "run `python -m chatterbox_codemod.docs` and commit docs/transforms.md"


def test_every_transform_documents_its_id_and_sections():
    for transform in TRANSFORMS:
        doc = transform.doc()
        assert f"Id: `{transform.id}`" in doc
        for section in ("Rewrites", "Refuses", "Fix safety"):
            assert transform.section(section), f"{transform.id} lacks a `{section}` section"


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = ci.strip().splitlines()[-1]
    assert command in readme
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^python -m pip install .*$", quick_start, re.M)[-1] == command
