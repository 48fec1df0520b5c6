"""One program through the fuzzer: rewrite it, run every variant, judge, attribute, measure precision.

For each generated program the tool runs twice (the whole project; the
package alone). The original, both rewrites and, where asked, blind literal
conversions (every package site at once for `--baseline literal`; one site at
a time for precision and attribution) run in the worker pool; the oracle
compares each with the original. A failing rewrite is attributed to the
applied site that breaks the drivers when converted alone (a literal
conversion of that site; for `channels-last`, the tool's own rewrite with the
other sites suppressed); when no single site does, to all of them together.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import literal
from .generator import PACKAGE, Program, generate
from .oracle import Failure, compare, original_errors
from .project import Layout, SiteInfo, ToolRun, apply_tool, layouts, suppress, write
from .runner import Pool

TIME_LIMIT = 10.0
LEFT_ALONE = ("unsafe", "not-applicable")


@dataclass
class FalseSafe:
    program_seed: int
    layout: str
    sites: list[SiteInfo]  # one culprit, or every applied site when only their combination fails
    failures: list[Failure]
    program: Program = field(repr=False)
    reproducer: str | None = None

    @property
    def kind(self) -> str:
        """Its class: transform, the generated symbol's shape (`Attn.forward`) and the failure's first sentence."""
        transform = self.sites[0].transform if len(self.sites) == 1 else "combination"
        shape = re.sub(r"\d+(?=\.|$)", "", self.sites[0].symbol) if len(self.sites) == 1 else ""
        return f"{transform} {shape} / {self.failures[0].signature.split('. ')[0]}"


@dataclass
class Result:
    seed: int
    sites: list[SiteInfo] = field(default_factory=list)  # run 1 (whole project)
    package_sites: list[SiteInfo] = field(default_factory=list)  # run 2
    tool_errors: list[str] = field(default_factory=list)
    generator_errors: list[str] = field(default_factory=list)
    false_safes: list[FalseSafe] = field(default_factory=list)
    left_alone: int = 0
    left_passing: int = 0
    literal_sites: int = 0
    baseline_failed: bool = False
    baseline_false_safe_sites: int = 0


class Campaign:
    """Runs programs through the pool; `submit` starts one, `finish` judges it (in submission order)."""

    def __init__(self, pool: Pool, work: Path, precision: bool, baseline: bool):
        self.pool = pool
        self.work = work
        self.precision = precision
        self.baseline = baseline

    # -- variants ---------------------------------------------------------

    def _variant(self, state: dict, name: str, files: dict[str, str], layout: Layout):
        """Submit a literal variant (deduplicated by content); returns a key into state['pending']."""
        digest = hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest()
        key = (digest, layout.drivers)
        if key not in state["pending"]:
            folder = write(files, state["dir"] / name)
            task = layout.task(folder, TIME_LIMIT)
            state["pending"][key] = (self.pool.submit(task), task)
        return key

    def _tool_variant(self, state: dict, run: ToolRun, layout: Layout):
        files = {p.relative_to(run.variant).as_posix(): p.read_text() for p in run.variant.rglob("*.py")}
        return self._variant(state, run.variant.name + "-run", files, layout)

    def _outcome(self, state: dict, key) -> dict:
        value = state["pending"][key]
        if isinstance(value, tuple):
            pending, task = value
            value = state["pending"][key] = self.pool.result(pending, task)
        return value

    def _single(self, state: dict, site: SiteInfo):
        """The project with only `site` converted by the blind converter (None: nothing to convert)."""
        files = dict(state["files"])
        if site.transform == "entry-points":
            files[site.path] = literal.decorate(files[site.path], site.line)
        else:
            found = [s for s in state["literal"] if (s.path, s.line) == (site.path, site.line)]
            if not found:
                return None
            files[site.path] = literal.convert(files[site.path], found)
        return self._variant(state, f"single-{site.path.replace('/', '_')}-{site.line}", files, state["whole"])

    # -- one program ------------------------------------------------------

    def submit(self, seed: int) -> dict:
        program = generate(seed)
        files = program.files()
        folder = self.work / f"p{seed}"
        shutil.rmtree(folder, ignore_errors=True)
        original = write(files, folder / "original")
        whole, package = layouts(program)
        state = {"seed": seed, "program": program, "files": files, "dir": folder, "pending": {},
                 "whole": whole, "package": package, "result": Result(seed)}
        state["literal"] = [s for path, text in files.items() for s in literal.find_sites(path, text)]
        state["original"] = self._variant(state, "original-run", files, whole)
        runs = {}
        for layout in (whole, package):
            runs[layout.name] = apply_tool(original, layout, folder / layout.name)
            state[f"key-{layout.name}"] = self._tool_variant(state, runs[layout.name], layout)
        state["runs"] = runs
        result = state["result"]
        result.sites, result.package_sites = runs["whole"].sites, runs["package"].sites
        result.tool_errors = [f"{name}: {e}" for name, run in runs.items() for e in run.errors]
        package_sites = [s for s in state["literal"] if s.path.startswith(PACKAGE + "/")]
        if self.baseline:
            converted = dict(files)
            for path in {s.path for s in package_sites}:
                converted[path] = literal.convert(files[path], [s for s in package_sites if s.path == path])
            state["baseline"] = self._variant(state, "baseline", converted, whole)
            for site in package_sites:
                self._single(state, _as_site(site))
        if self.precision:
            for site in self._left_alone(state):
                self._single(state, site)
        return state

    def _left_alone(self, state: dict) -> list[SiteInfo]:
        literal_lines = {(s.path, s.line) for s in state["literal"]}
        return [s for s in state["runs"]["whole"].sites if s.status in LEFT_ALONE and (
            (s.transform == "inference-mode" and (s.path, s.line) in literal_lines)
            or (s.transform == "entry-points" and s.status == "unsafe"))]

    def finish(self, state: dict) -> Result:
        result: Result = state["result"]
        original = self._outcome(state, state["original"])
        result.generator_errors = original_errors(original)
        for layout in (state["whole"], state["package"]):
            failures = compare(original, self._outcome(state, state[f"key-{layout.name}"]), set(layout.counted))
            if failures:
                result.false_safes += self._attribute(state, layout, failures, original)
        if self.precision:
            for site in self._left_alone(state):
                key = self._single(state, site)
                result.left_alone += 1
                result.left_passing += not compare(original, self._outcome(state, key), set(state["whole"].counted))
        if self.baseline:
            package_sites = [s for s in state["literal"] if s.path.startswith(PACKAGE + "/")]
            result.literal_sites = len(package_sites)
            everyone = set(state["whole"].counted)
            result.baseline_failed = bool(compare(original, self._outcome(state, state["baseline"]), everyone))
            broken = sum(bool(compare(original, self._outcome(state, self._single(state, _as_site(s))), everyone))
                         for s in package_sites)
            result.baseline_false_safe_sites = broken or int(result.baseline_failed)
        if not result.false_safes:
            shutil.rmtree(state["dir"], ignore_errors=True)
        return result

    def _attribute(self, state: dict, layout: Layout, failures: list[Failure], original: dict) -> list[FalseSafe]:
        applied = state["runs"][layout.name].applied
        seed = state["seed"]
        if len(applied) <= 1:
            return [FalseSafe(seed, layout.name, applied, failures, state['program'])]
        culprits = []
        for site in applied:
            if site.transform == "channels-last":
                others = [s for s in applied if s != site]
                files = suppress(state["files"], others)
                folder = write(files, state["dir"] / f"alone-{layout.name}-{site.line}")
                run = apply_tool(folder, layout, state["dir"] / f"alone-{layout.name}-{site.line}-out")
                key = self._tool_variant(state, run, layout)
            else:
                key = self._single(state, site)
            if key is None:
                continue
            alone = compare(original, self._outcome(state, key), set(layout.counted))
            if alone:
                culprits.append(FalseSafe(seed, layout.name, [site], alone, state['program']))
        return culprits or [FalseSafe(seed, layout.name, applied, failures, state['program'])]


def _as_site(site: literal.LiteralSite) -> SiteInfo:
    return SiteInfo("inference-mode", site.path, site.line, "", "literal", True, "")
