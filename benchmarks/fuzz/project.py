"""Generated projects on disk, and the tool run on them through the engine API.

A `Layout` says what the tool is pointed at and how the drivers load the
code: the whole project (every caller visible), the package alone (its
folder is the project root, so the drivers are invisible), or a one-file
reproducer. `apply_tool` runs `codemod.engine.run` in OUTPUT mode and builds
the rewritten variant: the original project with the tool's output copied
over the target. Only the engine's report and rewritten files are used.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from chatterbox_codemod.analysis.screen import ProjectFacts
from chatterbox_codemod.engine import OUTPUT, Options, run
from chatterbox_codemod.transforms import by_id

from .generator import PACKAGE, Program
from .runner import DriverRef, Task

SKIP = "  # chatterbox-codemod: skip"


@dataclass(frozen=True)
class Layout:
    name: str  # "whole", "package", "file", "package-file"
    target: str  # given to the engine, relative to the project
    root: str  # the engine's project root, relative to the project
    package: str | None
    drivers: tuple[DriverRef, ...]
    counted: frozenset[str]  # the drivers whose failures count

    def only(self, labels: set[str]) -> Layout:
        drivers = tuple(d for d in self.drivers if d.label in labels)
        return Layout(self.name, self.target, self.root, self.package, drivers, frozenset(labels & self.counted))

    def task(self, folder: Path, time_limit: float) -> Task:
        return Task(str(folder), self.package, self.drivers, time_limit)


def layouts(program: Program) -> tuple[Layout, Layout]:
    """Run 1 (the whole project) and run 2 (the package alone, drivers unseen and external ones not counted)."""
    drivers = tuple(DriverRef(d.label, f"{d.label}.py") for d in program.drivers)
    everyone = frozenset(d.label for d in program.drivers)
    internal = frozenset(d.label for d in program.drivers if not d.external)
    return (Layout("whole", ".", ".", PACKAGE, drivers, everyone),
            Layout("package", PACKAGE, PACKAGE, PACKAGE, drivers, internal))


def package_file_layout(program: Program) -> Layout:
    """The package as one file, its folder the project root (run 2 on `Program.flat_package`)."""
    drivers = tuple(DriverRef(d.label, f"{d.label}.py") for d in program.drivers)
    return Layout("package-file", f"{PACKAGE}/__init__.py", PACKAGE, PACKAGE, drivers,
                  frozenset(d.label for d in program.drivers if not d.external))


def file_layout(program: Program) -> Layout:
    drivers = tuple(DriverRef(d.label, "repro.py", d.label) for d in program.drivers)
    return Layout("file", "repro.py", ".", None, drivers, frozenset(d.label for d in program.drivers))


@dataclass(frozen=True)
class SiteInfo:
    transform: str
    path: str  # relative to the project
    line: int
    symbol: str
    status: str
    rewritten: bool
    reason: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line} {self.transform} {self.symbol}"


@dataclass
class ToolRun:
    sites: list[SiteInfo]
    errors: list[str]
    variant: Path  # the project with the tool's output in place

    @property
    def applied(self) -> list[SiteInfo]:
        return [s for s in self.sites if s.rewritten]


def write(files: dict[str, str], folder: Path) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def apply_tool(project: Path, layout: Layout, variant: Path) -> ToolRun:
    """Rewrite `project` as `layout` says; the rewritten project is built in `variant`."""
    target = project / layout.target
    output = variant / (layout.target if target.is_dir() else Path(layout.target).parent)
    report = run(Options(paths=[str(target)], mode=OUTPUT, output=output, project_root=project / layout.root, jobs=1))
    for path in project.rglob("*.py"):
        rel = path.relative_to(project)
        destination = variant / rel
        if not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
    sites = [SiteInfo(s.transform, s.path.relative_to(project).as_posix(), s.line, s.symbol, s.status, s.rewritten,
                      s.reason) for s in report.sites]
    errors = [e.render(str(e.path)) for e in report.errors]
    errors += screen_misses([(s.transform, s.path, s.line) for s in report.sites], project / layout.root)
    return ToolRun(sorted(sites, key=lambda s: (s.path, s.line, s.transform)), errors, variant)


def screen_misses(sites: Iterable[tuple[str, Path, int]], root: Path) -> list[str]:
    """The sites (transform id, file, line) of a project under `root`, with default settings, in a file that
    the engine's screen says cannot hold one of that transform's sites (`Transform.may_find_sites`): a run
    targeting that file alone would have missed each of them."""
    project = ProjectFacts.of((path, path.read_bytes().decode("utf-8", "replace")) for path in root.rglob("*.py"))
    trees: dict[Path, ast.Module] = {}
    missed = []
    for transform, path, line in sites:
        if path not in trees:
            trees[path] = ast.parse(path.read_bytes())
        if not by_id(transform).may_find_sites(trees[path], {}, project):
            missed.append(f"{path}:{line}: a {transform} site in a file its screen says can hold none")
    return missed


def suppress(files: dict[str, str], sites: list[SiteInfo]) -> dict[str, str]:
    """`files` with a skip comment on the line of each of `sites`."""
    result = dict(files)
    for path in {s.path for s in sites}:
        lines = result[path].split("\n")
        for site in sites:
            if site.path == path and not lines[site.line - 1].endswith(SKIP):
                lines[site.line - 1] += SKIP
        result[path] = "\n".join(lines)
    return result
