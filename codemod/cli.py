"""The command line: a thin layer over `chatterbox_codemod.engine`.

Exit codes: 0 nothing pending (or everything written); 1 `--diff`/`--check`
found pending rewrites; 2 an error (usage, or a file that could not be read,
parsed or written).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from pathlib import Path

import click

from . import __version__
from .cache import DEFAULT_DIR
from .config import ConfigError, load_config
from .diffing import unified_diff
from .engine import CHECK, DIFF, OUTPUT, WRITE, Options, exit_code, find_project_root, run, select_transforms
from .report import Report, Status
from .sources import SourceError, make_target


def _split_ids(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class _LazyGroup(click.Group):
    """A group whose `bench` command is imported only when click asks for it: it needs torch and
    matplotlib, and a plain `apply` must not load them."""

    LAZY = {"bench": ("chatterbox_codemod.benchmarks.cli", "bench")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY:
            module, attribute = self.LAZY[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatterbox-codemod")
def main() -> None:
    """Safe codemods for PyTorch inference code (chatterbox and beyond)."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--diff", "diff", is_flag=True, help="Print a unified diff on stdout; write nothing.")
@click.option("--check", "check", is_flag=True, help="Print only the summary; exit 1 if a rewrite is pending.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Write a complete copy of the target to DIR, rewritten where needed; the source is untouched.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a JSON report of every site and error to FILE.")
@click.option("--select", multiple=True, metavar="IDS", help="Only these transforms (comma-separated ids).")
@click.option("--ignore", multiple=True, metavar="IDS", help="Skip these transforms (comma-separated ids).")
@click.option("--unsafe-fixes/--no-unsafe-fixes", default=None,
              help="Also rewrite sites marked unsafe whose hazard is fixable by hand.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes that judge sites and rewrite files with LibCST (0: one per CPU).")
@click.option("--project-root", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Index this folder for cross-file facts (default: the git work tree, else the folder with "
                   "pyproject.toml, else the target).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching GLOB (relative to the target).")
@click.option("--format", "output_format", type=click.Choice(["text", "github"]), default="text",
              show_default=True, help="How sites are printed: text, or GitHub Actions annotations.")
@click.option("--verbose", "-v", is_flag=True, help="Also list applied sites.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help=f"Keep the run cache in DIR (default: {DEFAULT_DIR}/ in the project root).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the run cache.")
def apply(paths, diff, check, output, report_path, select, ignore, unsafe_fixes, jobs, project_root, exclude,
          output_format, verbose, cache_dir, no_cache) -> None:
    """Rewrite PATHS (files or folders) in place, or show what would change."""
    if sum(bool(x) for x in (diff, check, output)) > 1:
        raise click.UsageError("--diff, --check and --output are mutually exclusive")
    mode = DIFF if diff else CHECK if check else OUTPUT if output else WRITE
    try:
        root = project_root or find_project_root(make_target(paths[0]).root)
        config = load_config(root)
        selected = _split_ids(select) or config.select
        ignored = _split_ids(ignore) or config.ignore
        select_transforms(selected, ignored)
    except SourceError as exc:
        raise click.UsageError(f"{exc.path}: {exc.message}") from None
    except (ConfigError, KeyError) as exc:
        raise click.UsageError(str(exc.args[0]) if exc.args else str(exc)) from None
    options = Options(
        paths=list(paths), mode=mode, output=output, select=selected, ignore=ignored,
        unsafe_fixes=config.unsafe_fixes if unsafe_fixes is None else unsafe_fixes, jobs=jobs,
        project_root=project_root, exclude=list(exclude), config=config,
        cache_dir=None if no_cache else (cache_dir or root / DEFAULT_DIR).resolve(),
    )
    try:
        report = run(options)
    except KeyboardInterrupt:
        # Writes are atomic renames: every file is either as it was or fully rewritten.
        click.echo("chatterbox-codemod: interrupted; files already written are complete, the rest untouched",
                   err=True)
        sys.exit(130)
    for note in report.notes:
        click.echo(f"chatterbox-codemod: {note}", err=True)
    if mode == DIFF:
        _print_diff(report)
    _print_sites(report, mode, output_format, verbose)
    for error in report.errors:
        click.echo(error.render(_shown(error.path)), err=True)
    _print_summary(report, mode)
    if report_path is not None:
        report.write_json(report_path)
    sys.exit(exit_code(report, mode))




@main.command("list-transforms")
def list_transforms() -> None:
    """List the transforms: id, what they do, and how safe their fixes are."""
    from chatterbox_codemod.transforms import TRANSFORMS

    for transform in TRANSFORMS:
        click.echo(f"{transform.id}\n    {transform.summary()}")
        if not transform.default:
            click.echo(f"    opt-in: runs only when selected (`--select {transform.id}`)")
        for line in transform.fix_safety().splitlines():
            click.echo(f"    {line}" if line else "")
        for option in transform.options:
            click.echo(f"    [tool.chatterbox-codemod.{transform.id}] {option.name}: {option.help}")
        click.echo("")


def _shown(path: Path) -> str:
    """A path as the user should see it: relative to the current directory when below it."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(absolute)


def _print_diff(report: Report) -> None:
    out = sys.stdout.buffer
    for result in report.changed:
        encoding = _encoding_of(result.original)
        before = result.original.decode(encoding)
        after = result.rewritten.decode(encoding)
        # A file outside the current directory keeps its absolute path without the leading `/`, as
        # `git diff --no-index` writes it (`a/tmp/x.py`), so `git apply` run from `/` applies it.
        path = _shown(result.path).lstrip("/")
        text = unified_diff(path, before.lstrip("\ufeff"), after.lstrip("\ufeff"))
        out.write(text.encode(encoding))
    out.flush()


def _encoding_of(raw: bytes) -> str:
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError:
        encoding = "utf-8"
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _print_sites(report: Report, mode: str, output_format: str, verbose: bool) -> None:
    if mode == CHECK and output_format == "text":
        return
    for site in sorted(report.sites, key=lambda s: (str(s.path), s.line)):
        shown = _shown(site.path)
        if output_format == "github":
            if site.status == "unsafe":
                level = "warning"
            elif site.rewritten and mode in (DIFF, CHECK):
                level = "notice"
            else:
                continue
            message = f"{site.transform} {site.status}: {site.reason}".replace("%", "%25").replace("\n", "%0A")
            click.echo(f"::{level} file={shown},line={site.line},title=chatterbox-codemod::{message}")
            continue
        if site.status == Status.APPLIED and not verbose:
            continue
        state = site.status + (" (rewritten with --unsafe-fixes)" if site.rewritten and site.status != Status.APPLIED
                               else "")
        click.echo(f"{shown}:{site.line}: {site.transform} {state}: {site.reason}", err=True)


def _print_summary(report: Report, mode: str) -> None:
    verb = {WRITE: "rewritten", OUTPUT: "rewritten in the copy", DIFF: "would be rewritten",
            CHECK: "would be rewritten"}[mode]
    errors = len(report.errors)
    # In write modes count what was written: a rewrite refused at write time is an error, not a change.
    changed = len([f for f in report.changed if f.written]) if mode in (WRITE, OUTPUT) else len(report.changed)
    click.echo(
        f"chatterbox-codemod: {report.scanned} file{'s' * (report.scanned != 1)} scanned, "
        f"{changed} {verb}, {errors} error{'s' * (errors != 1)}",
        err=True,
    )
    for transform, row in report.counts().items():
        counts = ", ".join(f"{row[s]} {s}" for s in list(Status))
        click.echo(f"  {transform}: {counts}; {row['rewritten']} site{'s' * (row['rewritten'] != 1)} {verb}",
                   err=True)


def console_main() -> None:
    """The `chatterbox-codemod` script: `main`, then an immediate exit.

    Everything is written, flushed and closed by then; a normal interpreter shutdown would still free a
    large tree's index object by object (6 s of a 41 s run on torch's tree), so the process ends at once,
    as mypy's does. For the same reason the cyclic garbage collector stays off in this process (the
    engine turns it off only during a run): a run leaves millions of records behind, and the first
    collection after it, while the diff is printed, traversed all of them (7% of a run on torch's tree)
    to free what the exit frees anyway. The bench's models run in processes of their own.
    """
    gc.disable()
    try:
        main(prog_name="chatterbox-codemod")
        code = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # a reader that went away, a closed stream
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    console_main()
