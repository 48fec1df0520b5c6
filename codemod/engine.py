"""The pipeline, top to bottom.

1. **Discover** the target files (and the other Python files of the project
   they belong to).
2. **Read** them; a file that cannot be read or decoded becomes an error and
   the run goes on. With a run cache (`chatterbox_codemod.cache`), a run whose
   files, targets and options it has seen before replays steps 3-6 from it.
3. **Parse** them with `ast` (a file that does not parse is an error too) and
   **index** the whole project once (`chatterbox_codemod.analysis.index`).
   The targets are parsed first and screened (`chatterbox_codemod.analysis.screen`):
   when no selected transform may find a site in any of them, the report has
   none, and the rest of the project is neither parsed nor indexed.
4. **Analyse**: each selected transform, in dependency order, turns the
   index into sites with verdicts. Regions a transform will rewrite to
   inference mode are fed to the transforms after it, and each analysis is
   repeated until its verdicts stop changing, so one run reaches the state a
   second run would.
5. **Rewrite** only the files with sites to rewrite, with LibCST (in parallel
   with `--jobs`).
6. **Verify**: every rewritten file must parse, a second analysis over the
   rewritten sources must find nothing more to rewrite, and outside the nodes
   the transforms own (`Transform.erase_owned`) its AST must equal the
   original's; a file that fails a check is reported as an error and never
   written.
7. **Output**: write in place (atomically), print a diff, check, or write a
   complete copy of the tree.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import gc
import multiprocessing
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import libcst as cst
from chatterbox_codemod.transforms import TRANSFORMS, by_id
from chatterbox_codemod.transforms.base import AnalysisContext, Finding, Transform

from .analysis import BodyWalks, ProjectIndex, build_index
from .analysis.configs import CONFIG_SUFFIXES, read_configs
from .analysis.screen import ProjectFacts
from .cache import Outcome, RunCache
from .config import Config
from .report import FileError, FileResult, Report, Site, Status
from .sources import (
    SourceError,
    SourceFile,
    Target,
    check_writable,
    discover,
    make_target,
    read_source,
    write_atomic,
)

WRITE, DIFF, CHECK, OUTPUT = "write", "diff", "check", "output"
MAX_ANALYSIS_ROUNDS = 6


@dataclass
class Options:
    paths: list[str]
    mode: str = WRITE
    output: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    unsafe_fixes: bool = False
    jobs: int = 0  # 0: one per CPU
    project_root: Path | None = None
    exclude: list[str] = field(default_factory=list)
    config: Config | None = None
    cache_dir: Path | None = None  # the run cache's folder (`chatterbox_codemod.cache`); None: no cache


@dataclass
class Parsed:
    source: SourceFile
    tree: ast.Module


def run(options: Options) -> Report:
    with _cyclic_gc_paused():
        return _run(options)


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Pause CPython's cyclic garbage collector for one run.

    A run builds millions of long-lived AST and index objects and frees almost none of them before it
    ends, so each collection only re-traverses them: on torch's tree that was 40% of the run, with the
    same peak memory (1.65 GB) either way. Reference counting still frees everything else.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(options: Options) -> Report:
    report = Report()
    targets, errors = _targets(options.paths)
    report.errors.extend(errors)
    if not targets:
        return report
    config = options.config or Config()
    transforms = select_transforms(options.select or config.select, options.ignore or config.ignore)
    report.transforms = [t.id for t in transforms]
    project_root = options.project_root or find_project_root(targets[0].root)

    # 1. Discover.
    found = discover(targets, exclude=[*config.exclude, *options.exclude])
    report.errors.extend(FileError(e.path, e.message, e.line) for e in found.errors)
    target_files = {path: target for path, target in found.files}
    for path, target in found.files:
        report.rel_of[path] = _rel(path, target)
    project_python, config_files = _project_files(project_root, config.exclude)
    project_files = [p for p in project_python if p not in target_files]

    # 2. Read every file (a file that cannot be read or decoded is an error; the run goes on).
    sources, read_errors = _read_all(
        [(p, t) for p, t in found.files] + [(p, Target(p, project_root, False)) for p in project_files]
    )
    report.errors.extend(FileError(e.path, e.message, e.line) for e in read_errors if e.path in target_files)
    report.scanned = len(target_files)  # every target is read, or reported as unreadable
    configs_raw = [(path, _read_bytes(path)) for path in config_files]

    # 3-6. Parse, index, analyse, rewrite and verify: replayed from the run cache when it holds this run.
    run_cache = RunCache(options.cache_dir, project_root) if options.cache_dir is not None else None
    key = None
    outcome = None
    if run_cache is not None:
        key = run_cache.key(
            {"transforms": report.transforms, "unsafe_fixes": options.unsafe_fixes, "settings": config.settings,
             "stateless_libraries": sorted(config.stateless_libraries)},
            [(path, source.raw) for path, source in sources.items()] + configs_raw, set(target_files),
        )
        outcome = run_cache.load(key)
    if outcome is None:
        parsed, parse_errors = _parse_all([source for path, source in sources.items() if path in target_files])
        if _may_find_sites(parsed, sources, transforms, config):
            outcome = _analyse_and_rewrite(parsed, parse_errors, sources, target_files, configs_raw, project_root,
                                           transforms, options, config, report)
            if run_cache is not None:
                run_cache.store(key, outcome)
        else:  # as cheap to screen again as to replay: kept out of the cache, whose entries hold costly runs
            outcome = Outcome(sites=[], errors=[FileError(e.path, e.message, e.line) for e in parse_errors],
                              rewritten={}, notes=[])
    if run_cache is not None:
        report.notes.extend(run_cache.notes)
    report.sites = outcome.sites
    report.errors.extend(outcome.errors)
    report.notes.extend(outcome.notes)
    results = {path: FileResult(path=path, rel=report.rel(path), original=sources[path].raw, rewritten=data)
               for path, data in outcome.rewritten.items()}

    # 7. Output.
    for path in sorted(target_files):
        if path in sources:
            source = sources[path]
            result = results.get(path) or FileResult(path=path, rel=report.rel(path), original=source.raw)
            report.files.append(result)
    if options.mode == WRITE:
        _remove_leftovers(found.leftovers, report)
        _write_in_place(report, sources)
    elif options.mode == OUTPUT:
        _write_copy(report, options.output, targets, found, sources)
    return report


def _may_find_sites(parsed_targets: list[Parsed], sources: dict[Path, SourceFile], transforms: list[Transform],
                    config: Config) -> bool:
    """Step 3's screen: whether a selected transform may find a site in a target, by the targets' syntax alone
    (`analysis.screen`). When none may, the report holds no site whatever the rest of the project holds, and the
    run neither parses nor indexes it."""
    project = ProjectFacts.of((path, source.text) for path, source in sources.items())
    return any(transform.may_find_sites(p.tree, config.settings.get(transform.id, {}), project)
               for transform in transforms for p in parsed_targets)


def _analyse_and_rewrite(parsed: list[Parsed], parse_errors: list[SourceError], sources: dict[Path, SourceFile],
                         target_files: dict, config_files: list[tuple[Path, bytes | None]], project_root: Path,
                         transforms: list[Transform], options: Options, config: Config, report: Report) -> Outcome:
    """Steps 3-6 for one run, given its parsed targets: everything the run cache keeps."""
    errors_before = len(report.errors)
    report.errors.extend(FileError(e.path, e.message, e.line) for e in parse_errors)
    parsed_rest, _ = _parse_all([source for path, source in sources.items() if path not in target_files])
    parsed = parsed + parsed_rest

    # 3. Index (configuration files that build models count as constructor calls).
    configs = read_configs(config_files)
    walks = BodyWalks()  # the verification's index walks only the bodies the rewrite changed
    index = build_index(project_root, [(p.source.path, p.source.text, p.tree) for p in parsed], configs, walks)

    def display(path: Path) -> str:
        if path in report.rel_of:
            return report.rel_of[path]
        return _rel(path, Target(path, project_root, False))

    # 4. Analyse.
    targets_parsed = {p.source.path for p in parsed if p.source.path in target_files}
    findings = analyze(index, transforms, targets_parsed, display, options.unsafe_fixes, config, options.jobs)
    report.sites = [f.site for f in findings]

    # 5-6. Rewrite and verify.
    parsed_sources = {p.source.path: p.source for p in parsed}
    results, outside_owned = _rewrite_files(findings, parsed_sources, transforms, options.jobs, report)
    _verify(results, outside_owned, parsed, configs, walks, project_root, transforms, display, options, config,
            report)
    errors = report.errors[errors_before:]
    del report.errors[errors_before:]
    return Outcome(sites=report.sites, errors=errors,
                   rewritten={path: result.rewritten for path, result in sorted(results.items())},
                   notes=_lookup_notes(index, display) if report.sites else [])


def _lookup_notes(index: ProjectIndex, display) -> list[str]:
    """Every reflective lookup that may hand out any function of the project, at once: each one alone makes
    the callers of every function unknown, so a reason names only the first (told only beside a site: with
    none, nothing depends on the callers)."""
    lookups = [f"{path}:{line} `{text}`" for path, line, text in sorted(
        {(display(where.module.path), node.lineno, ast.unparse(node)) for where, node in index.unresolved_lookups})]
    if not lookups:
        return []
    shown = ", ".join(lookups[:6]) + (f" and {len(lookups) - 6} more" if len(lookups) > 6 else "")
    return [f"{len(lookups)} lookup{'s' if len(lookups) > 1 else ''} by a name computed at run time, on an object "
            f"of unknown type or through `eval`/`exec`, may hand out any function of the project, so no function's "
            f"callers can be followed: {shown}; mark such a line `# chatterbox-codemod: skip` if it hands out no "
            "function of the project (docs/soundness.md)"]


def select_transforms(select: Iterable[str] | None, ignore: Iterable[str]) -> list[Transform]:
    """Transforms in analysis order (default: those on by default); unknown ids raise KeyError naming the id."""
    chosen = list(select) if select else [t.id for t in TRANSFORMS if t.default]
    ignored = set(ignore)
    for name in [*chosen, *ignored]:
        by_id(name)
    return [t() for t in TRANSFORMS if t.id in chosen and t.id not in ignored]


def analyze(index: ProjectIndex, transforms: list[Transform], targets: set[Path], display, unsafe_fixes: bool,
            config: Config, jobs: int = 1) -> list[Finding]:
    """Every transform's findings (`jobs`: processes that may judge candidates, 0 for one per CPU; the findings
    are the same for every value).

    Each transform judges its sites with the regions the others rewrite already under inference mode, which is
    what the verification's second run reads: a transform whose view of those regions changed (one that ran
    before a later transform found its regions) is judged again, until no view changes.
    """
    regions: dict[str, list] = {t.id: [] for t in transforms}
    views: dict[str, set[int]] = {}
    findings_of: dict[str, list[Finding]] = {}
    for _ in range(MAX_ANALYSIS_ROUNDS):
        settled = True
        for transform in transforms:
            others = [r for t in transforms if t.id != transform.id for r in regions[t.id]]
            view = {id(r) for r in others}
            if views.get(transform.id) == view:
                continue
            views[transform.id] = view
            findings = findings_of[transform.id] = _analyze_one(
                index, transform, others, targets, display, unsafe_fixes, config, jobs)
            found = _regions_of(findings)
            if {id(r) for r in found} != {id(r) for r in regions[transform.id]}:
                settled = False
            regions[transform.id] = found
        if settled:
            break
    return [f for t in transforms for f in findings_of[t.id]]


def _analyze_one(index: ProjectIndex, transform: Transform, inference_regions: list, targets: set[Path], display,
                 unsafe_fixes: bool, config: Config, jobs: int) -> list[Finding]:
    """One transform's findings, its analysis repeated with its own rewritten regions until its verdicts stop
    changing (for transforms that ask for it)."""
    findings: list[Finding] = []
    previous: set = set()
    memo: dict = {}
    for _ in range(MAX_ANALYSIS_ROUNDS if transform.iterate else 1):
        context = AnalysisContext(
            index=index, targets=targets, display=display, unsafe_fixes=unsafe_fixes,
            settings=config.settings.get(transform.id, {}),
            stateless_libraries=tuple(config.stateless_libraries),
            inference_regions=[*inference_regions, *_regions_of(findings)], memo=memo, jobs=jobs,
        )
        findings = transform.analyze(context)
        _finalize(findings, index, unsafe_fixes)
        rewritten = {(f.site.path, f.site.line, f.anchor) for f in findings if f.site.rewritten}
        if rewritten == previous:
            break
        previous = rewritten
    return findings


def _regions_of(findings: list[Finding]) -> list:
    return [f.region for f in findings if f.site.rewritten and f.region is not None]


def _finalize(findings: list[Finding], index: ProjectIndex, unsafe_fixes: bool) -> None:
    """Apply suppression comments and decide which sites are rewritten."""
    for finding in findings:
        site = finding.site
        module = index.by_path.get(site.path)
        if module is not None and module.skip_file:
            site.status, site.reason = Status.SUPPRESSED, "the file carries `# chatterbox-codemod: skip-file`"
        elif module is not None and any(line in module.skip_lines for line in (site.line, *finding.suppress_lines)):
            site.status, site.reason = Status.SUPPRESSED, "marked `# chatterbox-codemod: skip`"
        if site.status in (Status.NOT_APPLICABLE, Status.SUPPRESSED):
            site.fixable = False
        fixed = site.status == Status.UNSAFE and site.fixable and unsafe_fixes
        site.rewritten = site.status == Status.APPLIED or fixed


# ---------------------------------------------------------------------------
# Discovery and parsing


def _targets(paths: list[str]) -> tuple[list[Target], list[FileError]]:
    targets, errors = [], []
    for given in paths:
        try:
            targets.append(make_target(given))
        except SourceError as exc:
            errors.append(FileError(exc.path, exc.message, exc.line))
    return targets, errors


def find_project_root(start: Path) -> Path:
    """The enclosing git work tree, else the nearest folder with a pyproject.toml, else `start`."""
    for folder in [start, *start.parents]:
        if (folder / ".git").exists():
            return folder
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def _project_files(root: Path, exclude: list[str]) -> tuple[list[Path], list[Path]]:
    """The project's Python files, and its configuration files (YAML)."""
    found = discover([Target(root, root, False)], exclude=exclude)
    return [path for path, _ in found.files], [path for path, _ in found.others if path.suffix in CONFIG_SUFFIXES]


def _rel(path: Path, target: Target) -> str:
    if target.is_file:
        return path.name
    try:
        return path.relative_to(target.root).as_posix()
    except ValueError:
        return path.as_posix()


def _read_all(items: list[tuple[Path, Target]]) -> tuple[dict[Path, SourceFile], list[SourceError]]:
    sources: dict[Path, SourceFile] = {}
    errors: list[SourceError] = []
    for path, target in items:
        try:
            sources[path] = read_source(path, target)
        except SourceError as exc:
            errors.append(exc)
    return sources, errors


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _parse_one(source: SourceFile) -> Parsed | SourceError:
    try:
        tree = ast.parse(source.text, filename=str(source.path))
    except SyntaxError as exc:
        return SourceError(source.path, f"syntax error: {exc.msg}", exc.lineno)
    except (ValueError, RecursionError, MemoryError) as exc:
        return SourceError(source.path, f"cannot parse: {type(exc).__name__}: {exc}")
    return Parsed(source=source, tree=tree)


def _parse_all(sources: list[SourceFile]) -> tuple[list[Parsed], list[SourceError]]:
    # In this process: an AST costs as much to unpickle as to parse, so worker processes do not pay here.
    results = [_parse_one(source) for source in sources]
    parsed = [r for r in results if isinstance(r, Parsed)]
    errors = [r for r in results if isinstance(r, SourceError)]
    return parsed, errors


def _map(function, items: list, jobs: int) -> list:
    """`function` over `items`, in worker processes when there is enough work to pay for them.

    Items go out one at a time, in the order given: a caller that lists the longest first keeps every worker
    busy until the end (a few large files dominate a rewrite).
    """
    workers = min(jobs or os.cpu_count() or 1, len(items))
    if workers <= 1 or len(items) < 4:
        return [function(item) for item in items]
    # Forked workers start in milliseconds and share what is already imported.
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(function, items))


# ---------------------------------------------------------------------------
# Rewriting and verification


class Rewritten(NamedTuple):
    """What a worker sends back for one file."""

    path: Path
    data: bytes | None  # the new bytes; None: unchanged, or not written (then `error` says why)
    error: str | None = None
    line: int | None = None
    outside_owned: bool = False  # the rewrite changed code no selected transform owns (checked in the worker)


def _rewrite_one(job: tuple[SourceFile, list[tuple[str, list[Finding]]], tuple[str, ...]]) -> Rewritten:
    """Rewrite one file with LibCST, re-parse the result, and compare it with the original outside what the
    selected transforms own (`selected`: their ids). The comparison's verdict waits for the verification,
    which reports an unstable file first."""
    source, plan, selected = job
    try:
        module = cst.parse_module(source.raw)
    except cst.ParserSyntaxError as exc:
        return Rewritten(source.path, None, f"LibCST cannot parse it: {exc.message}", exc.raw_line)
    except (RecursionError, MemoryError) as exc:
        return Rewritten(source.path, None, f"LibCST cannot parse it: {type(exc).__name__}")
    try:
        for transform_id, findings in plan:
            module = by_id(transform_id)().rewrite(module, findings)
        data = module.bytes
    except RecursionError:
        return Rewritten(source.path, None, "nested too deeply for LibCST to rewrite; not written")
    except Exception as exc:  # a transform's bug costs this file, never the run
        return Rewritten(source.path, None,
                         f"internal error while rewriting ({type(exc).__name__}: {exc}); not written")
    if data == source.raw:
        return Rewritten(source.path, None)
    transforms = [by_id(transform_id)() for transform_id in selected]
    try:  # the comparison re-parses the rewrite; the original parsed already, for the analysis
        outside_owned = changes_outside_owned(source.text, data.decode(module.encoding).lstrip("\ufeff"), transforms,
                                              dict(plan))
    except SyntaxError as exc:
        return Rewritten(source.path, None, f"the rewrite does not parse ({exc.msg}); not written", exc.lineno)
    except (RecursionError, MemoryError) as exc:
        return Rewritten(source.path, None, f"the rewrite cannot be re-parsed ({type(exc).__name__}); not written")
    return Rewritten(source.path, data, outside_owned=outside_owned)


def _rewrite_files(findings: list[Finding], sources: dict[Path, SourceFile], transforms: list[Transform], jobs: int,
                   report: Report) -> tuple[dict[Path, FileResult], set[Path]]:
    """The rewritten files, and those whose rewrite changed code outside what the transforms own."""
    order = sorted(transforms, key=lambda t: t.rewrite_order)
    selected = tuple(t.id for t in transforms)
    jobs_by_file: dict[Path, list[tuple[str, list[Finding]]]] = {}
    for transform in order:
        for finding in findings:
            site = finding.site
            if site.transform == transform.id and site.rewritten:
                plan = jobs_by_file.setdefault(site.path, [])
                if not plan or plan[-1][0] != transform.id:
                    plan.append((transform.id, []))
                plan[-1][1].append(finding.portable())
    work = sorted(((sources[path], plan, selected) for path, plan in jobs_by_file.items()),
                  key=lambda job: len(job[0].raw), reverse=True)
    results: dict[Path, FileResult] = {}
    outside_owned: set[Path] = set()
    for done in sorted(_map(_rewrite_one, work, jobs), key=lambda done: done.path):
        if done.error is not None:
            report.errors.append(FileError(done.path, done.error, done.line))
            _unmark(report.sites, done.path)
            continue
        results[done.path] = FileResult(path=done.path, rel=report.rel(done.path), original=sources[done.path].raw,
                                        rewritten=done.data)
        if done.outside_owned:
            outside_owned.add(done.path)
    return results, outside_owned


def _unmark(sites: list[Site], path: Path) -> None:
    for site in sites:
        if site.path == path:
            site.rewritten = False


def _verify(results: dict[Path, FileResult], outside_owned: set[Path], parsed: list[Parsed], configs: list,
            walks: BodyWalks, root: Path, transforms: list[Transform], display, options: Options, config: Config,
            report: Report) -> None:
    """A second analysis over the rewritten sources must find nothing more to rewrite, and a rewrite must not
    change code outside what the transforms own (`outside_owned`, compared where the file was rewritten)."""
    changed = {path: r for path, r in results.items() if r.rewritten is not None}
    if not changed:
        return
    modules = []
    for item in parsed:
        path = item.source.path
        if path in changed:
            text = changed[path].rewritten.decode(item.source.encoding)
            if text.startswith("\ufeff"):
                text = text[1:]
            modules.append((path, text, ast.parse(text)))
        else:
            modules.append((path, item.source.text, item.tree))
    index = build_index(root, modules, configs, walks)
    again = analyze(index, [type(t)() for t in transforms], set(changed), display, options.unsafe_fixes, config,
                    options.jobs)
    for path in sorted({f.site.path for f in again if f.site.rewritten}):
        report.errors.append(FileError(path, "not stable: a second run would rewrite it again; not written"))
        changed.pop(path).rewritten = None
        _unmark(report.sites, path)
    for path, result in sorted(changed.items()):
        if path in outside_owned:
            report.errors.append(FileError(path, "the rewrite changed code that no transform owns; not written"))
            result.rewritten = None
            _unmark(report.sites, path)


def changes_outside_owned(original: str, rewritten: str, transforms: list[Transform],
                          findings: dict[str, list[Finding]] | None = None) -> bool:
    """Whether the two sources differ anywhere but in the nodes the transforms own (and those `findings`, by
    transform id, rewrite).

    Statements whose text came through unchanged are left out (a class is compared statement by statement
    inside); the others, with every import of the file (the transforms own imports, and name their aliases
    there), are erased and compared as ASTs.
    """
    before, after = ast.parse(original), ast.parse(rewritten)
    changed_before: list[ast.stmt] = []
    changed_after: list[ast.stmt] = []
    _changed_statements(before.body, after.body, original.splitlines(), rewritten.splitlines(), changed_before,
                        changed_after)
    if not changed_before and not changed_after:
        return False

    def part(tree: ast.Module, changed: list[ast.stmt]) -> ast.Module:
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom)) and s not in changed]
        return ast.Module(body=[*imports, *changed], type_ignores=[])

    erased_before, erased_after = part(before, changed_before), part(after, changed_after)
    for transform in transforms:
        rewritten = (findings or {}).get(transform.id, ())
        erased_before = transform.erase_owned(erased_before, rewritten)
        erased_after = transform.erase_owned(erased_after, rewritten)
    return ast.dump(erased_before) != ast.dump(erased_after)


def _header(cls: ast.ClassDef) -> str:
    """A class's name, bases, keywords and decorators: what is not in its body."""
    return ast.dump(ast.ClassDef(name=cls.name, bases=cls.bases, keywords=cls.keywords, body=[],
                                 decorator_list=cls.decorator_list))


def _changed_statements(before: list[ast.stmt], after: list[ast.stmt], lines_before: list[str],
                        lines_after: list[str], changed_before: list[ast.stmt], changed_after: list[ast.stmt]) -> None:
    """Collect the statements whose source text differs, aligned as a diff aligns lines."""
    def text(statement: ast.stmt, lines: list[str]) -> str:
        start = min([statement.lineno, *(d.lineno for d in getattr(statement, "decorator_list", ()))])
        return "\n".join(lines[start - 1:statement.end_lineno])

    texts_before = [text(s, lines_before) for s in before]
    texts_after = [text(s, lines_after) for s in after]
    matcher = difflib.SequenceMatcher(a=texts_before, b=texts_after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old, new = before[i1:i2], after[j1:j2]
        if len(old) == len(new) == 1 and isinstance(old[0], ast.ClassDef) and isinstance(new[0], ast.ClassDef) \
                and old[0].name == new[0].name and _header(old[0]) == _header(new[0]):
            _changed_statements(old[0].body, new[0].body, lines_before, lines_after, changed_before, changed_after)
        else:
            changed_before += old
            changed_after += new


def _write_in_place(report: Report, sources: dict[Path, SourceFile]) -> None:
    for result in report.changed:
        source = sources[result.path]
        try:
            check_writable(source)
            current = source.path.read_bytes()
            if current != source.raw:
                raise SourceError(source.path, "file changed on disk during the run; not rewritten")
            write_atomic(source.path, result.rewritten, source.mode)
            result.written = True
        except SourceError as exc:
            report.errors.append(FileError(exc.path, exc.message, exc.line))
        except OSError as exc:
            report.errors.append(FileError(source.path, f"cannot write: {exc.strerror or exc}"))


def _remove_leftovers(leftovers: list[Path], report: Report) -> None:
    """Temporary files of an interrupted earlier run (ours by their suffix; never a user's file)."""
    for path in leftovers:
        try:
            path.unlink()
            report.notes.append(f"removed {path.name}, left by an interrupted run")
        except OSError as exc:
            report.errors.append(FileError(path, f"cannot remove a leftover temporary file: {exc.strerror or exc}"))


def _write_copy(report: Report, output: Path | None, targets: list[Target], found, sources) -> None:
    """A complete copy of each target under `output`, with the rewritten files in place."""
    assert output is not None
    output = output.resolve()
    for target in targets:
        base = output if len(targets) == 1 else output / target.root.name
        if target.root == output or output in target.root.parents or target.root in output.parents:
            report.errors.append(FileError(target.root, f"--output {output} overlaps the target; nothing written"))
            return
        files = [p for p, t in [*found.files, *found.others] if t is target]
        for path in files:
            rel = path.name if target.is_file else path.relative_to(target.root)
            destination = base / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            result = next((r for r in report.changed if r.path == path), None)
            try:
                if result is not None:
                    write_atomic(destination, result.rewritten, sources[path].mode)
                    result.written = True
                else:
                    shutil.copy2(path, destination, follow_symlinks=True)
            except OSError as exc:
                report.errors.append(FileError(path, f"cannot copy to {destination}: {exc.strerror or exc}"))


def exit_code(report: Report, mode: str) -> int:
    if report.errors:
        return 2
    if mode in (DIFF, CHECK) and report.changed:
        return 1
    return 0

