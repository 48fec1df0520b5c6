"""Git-style unified diffs that `git apply` accepts as they are."""

from __future__ import annotations

import difflib

NO_NEWLINE = "\\ No newline at end of file\n"


def unified_diff(path: str, before: str, after: str) -> str:
    """A `diff --git` section for one file; `path` is relative to where `git apply` runs."""
    old = before.splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    lines = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(old, new, fromfile=f"a/{path}", tofile=f"b/{path}", n=3):
        if line.startswith(("---", "+++")):
            lines.append(line.rstrip("\r\n") + "\n")
            continue
        lines.append(line)
        if not line.endswith("\n"):
            lines.append("\n" + NO_NEWLINE)
    return "".join(lines)
