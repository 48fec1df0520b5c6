"""What a target file can hold, read from its syntax alone, before the project is indexed.

A run reports sites only in its targets, and every transform finds its sites
in shapes that a file's own syntax shows: a grad-mode decorator or `with`
item, a class with a `forward` of its own, a public method. When no target
has any shape a selected transform looks for, the report has no site whatever
the rest of the project holds, so the engine skips parsing and indexing it
(a pre-commit hook on a file without models costs what reading the project
costs). Each transform says what it looks for (`Transform.may_find_sites`),
with the helpers here; each answer may be yes where the analysis finds
nothing, never no where it finds a site. Every fixture case is a one-file run
screened first, and tests/test_real_trees.py and the fuzzer ask the screen
about every site they find (`benchmarks.fuzz.project.screen_misses`).

A grad-mode site is a name the index resolves through imports alone
(`ProjectIndex.qualify`): a file refers to `torch.no_grad` either by spelling
one of the grad-mode functions' names (as a name, an attribute or an imported
name) or through an import that renames one (`from torch import no_grad as
ng`) somewhere in the project, which `renames_grad_api` looks for
(`ProjectFacts`: what the screen reads from the whole project).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .torchapi import ENABLE_GRAD, INFERENCE_MODE, NO_GRAD, SET_GRAD_ENABLED

GRAD_API_NAMES = frozenset(name.rpartition(".")[2]
                           for name in NO_GRAD | INFERENCE_MODE | ENABLE_GRAD | SET_GRAD_ENABLED)

# What follows a grad-mode function's name in an import that renames it: blanks, line continuations or whole
# comments (inside a parenthesised import), then `as`.
_THEN_AS = re.compile(r"(?:[\s\\]|#[^\n]*\n)*as\b")


@dataclass(frozen=True)
class ProjectFacts:
    """What the screen reads from the whole project (its files' text, unparsed)."""

    grad_api_renamed: Path | None  # the first file that imports a grad-mode function under another name

    @classmethod
    def of(cls, sources: Iterable[tuple[Path, str]]) -> ProjectFacts:
        return cls(grad_api_renamed=renames_grad_api(sources))


def may_refer_to_grad_api(tree: ast.Module, project: ProjectFacts) -> bool:
    """Whether a name in the module may resolve to a grad-mode function: it spells one, or the project renames
    one somewhere (then any module may import it)."""
    return project.grad_api_renamed is not None or names_grad_api(tree)


def names_grad_api(tree: ast.Module) -> bool:
    """Whether the module spells the name of a grad-mode function anywhere (`no_grad`, `torch.inference_mode`,
    `from torch import set_grad_enabled`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in GRAD_API_NAMES or \
                isinstance(node, ast.Attribute) and node.attr in GRAD_API_NAMES or \
                isinstance(node, ast.alias) and node.name.rpartition(".")[2] in GRAD_API_NAMES:
            return True
    return False


def renames_grad_api(sources: Iterable[tuple[Path, str]]) -> Path | None:
    """The first project file that imports a grad-mode function under another name, or None.

    A file that does not parse counts as one: the screen never guesses what it holds."""
    for path, text in sources:
        if not _may_rename(text):
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return path
        if any(isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                alias.asname and alias.name.rpartition(".")[2] in GRAD_API_NAMES for alias in node.names)
               for node in ast.walk(tree)):
            return path
    return None


def _may_rename(text: str) -> bool:
    """Whether a grad-mode function's name is followed by `as` (every renaming import, and some other text; the
    file is then parsed to be sure)."""
    for name in GRAD_API_NAMES:
        found = text.find(name)
        while found != -1:
            if _THEN_AS.match(text, found + len(name)):
                return True
            found = text.find(name, found + 1)
    return False


def methods(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function defined anywhere inside a class (the methods, and more)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield inner
