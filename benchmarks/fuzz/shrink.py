"""Shrinking a false-safe to a minimal reproducer, written out as a ready-to-add fixture case.

The failing program is first flattened into one file (the package's code and
each driver as a function), the shape of a fixture case; when the tool no
longer marks the site `applied` there (a run-2 failure, whose drivers the tool
must not see), the multi-file project is shrunk instead. The other applied
sites get skip comments, the other drivers go, and then statements are
dropped, outermost and last first, for as long as the tool still marks the
culprit site applied and the driver still fails the same way. The result is
written as `<case>.in.py`, `<case>.report.json` (the culprit expected
`unsafe`; its reason is left for the fix to fill in) and a runtime test.
"""

from __future__ import annotations

import ast
import json
import re
import time
from itertools import count
from pathlib import Path

from chatterbox_codemod.engine import DIFF, Options, run

from .campaign import TIME_LIMIT, FalseSafe
from .generator import PACKAGE
from .oracle import compare_driver
from .project import SKIP, Layout, SiteInfo, apply_tool, file_layout, layouts, package_file_layout, suppress, write
from .runner import Pool


class Shrinker:
    def __init__(self, pool: Pool, work: Path, budget_s: float):
        self.pool = pool
        self.work = work
        self.budget_s = budget_s
        self._tries = count()

    def _check(self, files: dict[str, str], layout: Layout, culprit: SiteInfo, driver: str,
               signature: str) -> tuple[bool, list[SiteInfo]]:
        """Does the tool still mark the culprit applied, and does `driver` still fail the same way?"""
        folder = self.work / f"try{next(self._tries)}"
        try:
            tool = apply_tool(write(files, folder / "original"), layout, folder / "rewritten")
        except SyntaxError:
            return False, []
        if tool.errors or not any((s.transform, s.symbol) == (culprit.transform, culprit.symbol) for s in tool.applied):
            return False, tool.applied
        original = self.pool.run(layout.task(folder / "original", TIME_LIMIT))[driver]
        rewritten = self.pool.run(layout.task(tool.variant, TIME_LIMIT))[driver]
        failure = None if "error" in original else compare_driver(driver, original, rewritten)
        return failure is not None and failure.signature == signature, tool.applied

    def shrink(self, false_safe: FalseSafe, out: Path) -> Path:
        """Write the reproducer of `false_safe` under `out`; returns its folder."""
        culprit, failure = false_safe.sites[0], false_safe.failures[0]
        program = false_safe.program
        whole, package = layouts(program)
        keep = {failure.driver}
        starts = []
        if len(false_safe.sites) == 1 and false_safe.layout == "whole":
            starts.append(({"repro.py": program.flat()}, file_layout(program).only(keep)))
        elif len(false_safe.sites) == 1:
            flat = {p: t for p, t in program.flat_package().items() if "/" in p or p[:-3] in keep}
            starts.append((flat, package_file_layout(program).only(keep)))
        layout = (whole if false_safe.layout == "whole" else package).only(keep)
        files = {p: t for p, t in program.files().items() if "/" in p or p[:-3] in keep}
        starts.append((files, layout))
        deadline = time.monotonic() + self.budget_s
        for files, layout in starts:
            files = self._isolate(files, layout, culprit, failure.driver, failure.signature)
            if files is not None:
                files = self._minimize(files, layout, culprit, failure.driver, failure.signature, deadline)
                return self._write(false_safe, files, layout, culprit, out)
        return self._write(false_safe, program.files(), (whole if false_safe.layout == "whole" else package),
                           culprit, out)

    def _isolate(self, files, layout, culprit, driver, signature):
        """`files` with every applied site but the culprit suppressed, if it still fails; else None."""
        ok, applied = self._check(files, layout, culprit, driver, signature)
        others = [s for s in applied if (s.transform, s.symbol) != (culprit.transform, culprit.symbol)]
        if others:
            files = suppress(files, others)
            ok, _ = self._check(files, layout, culprit, driver, signature)
        return files if ok else None

    def _minimize(self, files, layout, culprit, driver, signature, deadline):
        changed = True
        while changed:
            changed = False
            for path in sorted(files):
                tried: set[str] = set()
                progress = True
                while progress:
                    progress = False
                    for start, end in _spans(files[path]):
                        chunk = "\n".join(files[path].split("\n")[start - 1:end])
                        if chunk in tried:
                            continue
                        if time.monotonic() > deadline:
                            return _unsuppressed(files, self, layout, culprit, driver, signature)
                        tried.add(chunk)
                        candidate = _drop(files[path], start, end)
                        trial = {**files, path: candidate}
                        if candidate is not None and self._check(trial, layout, culprit, driver, signature)[0]:
                            files, changed, progress = trial, True, True
                            break
        return _unsuppressed(files, self, layout, culprit, driver, signature)

    def _write(self, false_safe: FalseSafe, files, layout: Layout, culprit: SiteInfo, out: Path) -> Path:
        failure = false_safe.failures[0]
        transform = culprit.transform
        files = {p: _tidy(t) for p, t in files.items() if t.strip() or p.endswith("__init__.py")}
        name = f"fuzz_{false_safe.program_seed}_{culprit.symbol.replace('.', '_').lower() or 'site'}"
        folder = out / name
        if layout.name in ("file", "package-file"):
            case = folder / f"{name}.in.py"
            write({case.name: files[layout.target]}, folder)
            sites = _expected_report(case, transform, culprit)
            (folder / f"{name}.report.json").write_text(json.dumps(sites, indent=2) + "\n")
            driver = None if layout.name == "file" else _driver_source(files[f"{failure.driver}.py"])
            (folder / f"test_{name}.py").write_text(_runtime_test(name, transform, failure.driver, driver))
        else:
            write(files, folder / "project")
        (folder / "FAILURE.txt").write_text(
            f"program seed {false_safe.program_seed}, tool run on the {false_safe.layout} project\n"
            f"site: {culprit.where} ({culprit.status})\n"
            + "".join(f"{f.render()}\n" for f in false_safe.failures)
            + f"tool's reason: {culprit.reason}\n")
        return folder


def _unsuppressed(files, shrinker: Shrinker, layout, culprit, driver, signature):
    """Drop the skip comments when the reproducer still fails without them."""
    clean = {p: t.replace(SKIP, "") for p, t in files.items()}
    return clean if clean != files and shrinker._check(clean, layout, culprit, driver, signature)[0] else files


def _tidy(text: str) -> str:
    """At most two blank lines in a row, none at the end (what statement dropping leaves behind)."""
    text = re.sub(r"\n{3,}(?=[ \t])", "\n\n", re.sub(r"\n{4,}", "\n\n\n", text))
    return text.strip("\n") + "\n"


def _spans(text: str) -> list[tuple[int, int]]:
    """Line ranges of statements (decorators included), outermost first, last first within a level."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    levels: list[list[tuple[int, int]]] = []

    def visit(body: list[ast.stmt], depth: int) -> None:
        while len(levels) <= depth:
            levels.append([])
        for node in body:
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            levels[depth].append((start, node.end_lineno))
            for name in ("body", "orelse", "finalbody"):
                child = getattr(node, name, None)
                if isinstance(child, list) and child and isinstance(child[0], ast.stmt):
                    visit(child, depth + 1)

    visit(tree.body, 0)
    return [span for level in levels for span in sorted(level, reverse=True)]


def _drop(text: str, start: int, end: int) -> str | None:
    """`text` without lines start..end (or with `pass` there when the block would be empty)."""
    lines = text.split("\n")
    indent = lines[start - 1][: len(lines[start - 1]) - len(lines[start - 1].lstrip())]
    for replacement in ([], [indent + "pass"]):
        candidate = "\n".join(lines[: start - 1] + replacement + lines[end:])
        try:
            ast.parse(candidate)
        except SyntaxError:
            continue
        return candidate if candidate != text else None
    return None


def _expected_report(case: Path, transform: str, culprit: SiteInfo) -> list[dict]:
    """The fixture's report: the tool's sites on the case, the culprit expected `unsafe`."""
    project = case.parent / "project"
    project.mkdir(exist_ok=True)
    source = project / case.name.replace(".in.py", ".py")
    source.write_text(case.read_text())
    report = run(Options(paths=[str(source)], mode=DIFF, select=[transform], project_root=project, jobs=1))
    sites = []
    for site in sorted(report.sites, key=lambda s: s.line):  # stable: the items of one `with` keep their order
        entry = site.to_json(report.rel(site.path))
        if site.symbol == culprit.symbol and site.rewritten:
            entry.update(status="unsafe", rewritten=False,
                         reason=f"FILL IN after the fix (was applied: {site.reason})")
        sites.append(entry)
    source.unlink()
    project.rmdir()
    return sites


def _driver_source(text: str) -> str:
    """A driver script without its imports of the package (the runtime test runs it in the case's namespace)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(f"from {PACKAGE}"))


def _runtime_test(name: str, transform: str, driver: str, source: str | None) -> str:
    """A pytest module that runs `driver` on the case and on the tool's rewrite of it and compares."""
    if source is None:
        call = f"return module.{driver}()"
    else:
        call = "namespace = dict(vars(module))\n    exec(DRIVER, namespace)\n    return namespace['run']()"
        driver = "run"
    header = "" if source is None else f"\nDRIVER = {source!r}\n"
    return f'''"""Fuzz reproducer {name}: the `{transform}` rewrite must not change what `{driver}` computes."""

import importlib.util
import shutil

import pytest
from conftest import FIXTURES, run_engine

torch = pytest.importorskip("torch")

CASE = FIXTURES / "{transform}" / "{name}.in.py"
{header}

def _run(path, module_name):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    {call}


def test_{name}_runs_as_before(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    source = project / "{name}.py"
    shutil.copy(CASE, source)
    report = run_engine([source], project_root=project)
    rewritten = tmp_path / "rewritten.py"
    rewritten.write_bytes(report.changed[0].rewritten if report.changed else source.read_bytes())
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        expected = _run(source, "{name}_original")
        torch.manual_seed(0)
        actual = _run(rewritten, "{name}_rewritten")
    finally:
        torch.set_default_dtype(dtype)
    for key, value in expected.items():
        if value is None:
            continue
        assert actual[key] is not None, key
        assert torch.allclose(actual[key].double(), value.double(), rtol=1e-6, atol=1e-6), key
'''
