"""`chatterbox-codemod bench`: verify a rewritten chatterbox against the original, side by side.

Exit codes: 0 every component gives the same outputs (and is not slower than
--fail-below; with --autocast, its autocast side also gave usable outputs within
the quality gates); 1 a component diverged, raised, fell below --fail-below, or
its autocast side gave NaN, another dtype or shape, or missed a quality gate;
2 usage or setup error (no chatterbox installed, a tree without a `chatterbox`
package, an original package that cannot run, an --autocast tree that never
reads CHATTERBOX_AUTOCAST).

Only click and plain data are imported here: `codemod.cli` imports this module
on every run, and torch loads only when `bench` itself runs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import click

from .workload import (
    ALL_COMPONENT_NAMES,
    AUTOCAST_ENV,
    AUTOCAST_MODES,
    AUTOCAST_TRANSFORM,
    CHECKPOINT_FILES,
    MEASURES,
    PACKAGES,
    QUALITY,
    SIZES,
    component,
    parse_quality_gates,
)


def _gate_help() -> str:
    parts = []
    for measure in MEASURES.values():
        default = "no default" if measure.gate is None else f"default {measure.gate:g}"
        unit = f" in {measure.unit}" if measure.unit else ""
        parts.append(f"{measure.name} ({measure.label}{unit}, {'>=' if measure.higher_is_better else '<='}; "
                     f"{default})")
    owners = "; ".join(f"{name}: {', '.join(quality.measures)}" for name, quality in QUALITY.items())
    return ", ".join(parts) + f". Measured per component: {owners}"


@click.command()
@click.option("--original", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A folder holding the original `chatterbox` package (with --rewritten).")
@click.option("--rewritten", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A folder holding the rewritten `chatterbox` package (with --original).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: cuda when torch sees a GPU, else cpu.")
@click.option("--size", type=click.Choice(list(SIZES)), default="smoke", show_default=True,
              help="smoke: a few minutes on 2 CPU cores; full: a 10 s reference and 20 s of output audio.")
@click.option("--package", type=click.Choice(list(PACKAGES)), default="chatterbox-tts", show_default=True,
              help="The package to verify. chatterbox-streaming (0.1.2) runs in a virtual environment of its own, "
                   "made on first use under the cache folder (see --streaming-env).")
@click.option("--streaming-env", type=click.Path(file_okay=False, path_type=Path),
              help="Where chatterbox-streaming's virtual environment lives (default: "
                   "$XDG_CACHE_HOME/chatterbox-codemod/venv-chatterbox-streaming-0.1.2-pyX.Y).")
@click.option("--components", metavar="A,B,...",
              help="Components to run. chatterbox-tts: " + ", ".join(PACKAGES["chatterbox-tts"].components) +
                   " (default: all but t3 and tts); chatterbox-streaming: " +
                   ", ".join(PACKAGES["chatterbox-streaming"].components) + " (default: stream).")
@click.option("--rounds", type=click.IntRange(min=1),
              help="Timed rounds per component (default: " +
                   ", ".join(f"{s.rounds} for {s.name}" for s in SIZES.values()) + ").")
@click.option("--ckpt-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Real chatterbox weights (s3gen.safetensors, ve.safetensors) instead of seeded random ones.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write everything in the table, and the raw per-round times, to FILE.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG of the speed ratios to FILE.")
@click.option("--fail-below", type=click.FloatRange(min=0, min_open=True), metavar="RATIO",
              help="Fail when a component's median speed ratio (original/rewritten) is below RATIO.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights, inputs and every call.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes for the codemod's rewrite (0: one per CPU).")
@click.option("--autocast", type=click.Choice(AUTOCAST_MODES), default="off", show_default=True,
              help=f"Also run the rewrite in reduced precision: the copy is rewritten with the opt-in "
                   f"`{AUTOCAST_TRANSFORM}` transform as well (given trees: --rewritten must have it), and a "
                   f"third side runs it with {AUTOCAST_ENV}=bf16 or fp16, timed next to the fp32 rewrite "
                   f"({AUTOCAST_ENV}=off), which must still be equivalent. The autocast side is judged on "
                   "quality figures against the original (see --quality-gate): against the gates with "
                   "--ckpt-dir; with random weights they are printed, not judged, and only an error, NaN or "
                   "infinity, or an output of another dtype or shape fails it.")
@click.option("--quality-gate", "quality_gate", metavar="NAME=VALUE,...",
              help="Thresholds for the autocast side's quality figures (with --autocast and --ckpt-dir), "
                   "replacing the defaults. NAME is a measure, or COMPONENT.MEASURE for one component only: "
                   + _gate_help() + ".")
def bench(original, rewritten, device, size, package, streaming_env, components, rounds, ckpt_dir, json_path,
          plot_path, fail_below, seed, jobs, autocast, quality_gate) -> None:
    """Verify the rewritten chatterbox: same outputs, and how much faster.

    Without --original/--rewritten, a copy of the installed chatterbox is
    rewritten with the codemod's default transforms and checked against an
    untouched copy. With --autocast, the rewrite also runs in bf16 or fp16 and
    is judged on how close its outputs come. Progress goes to stderr, the
    table to stdout.
    """
    if (original is None) != (rewritten is None):
        raise click.UsageError("--original and --rewritten go together")
    selected = _components(components, package)
    if ckpt_dir is not None:
        _check_checkpoints(ckpt_dir, selected)
    gates = _quality_gates(quality_gate, autocast, ckpt_dir, selected)
    if plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.UsageError("--plot needs matplotlib: pip install 'chatterbox-codemod[bench]'")

    from .report import format_report, to_json, write_plot
    from .verify import BenchOptions, SetupError, run_bench

    chosen_size = SIZES[size]
    options = BenchOptions(size=chosen_size, components=selected, rounds=rounds or chosen_size.rounds,
                           device=device, original=original, rewritten=rewritten, ckpt_dir=ckpt_dir,
                           fail_below=fail_below, seed=seed, jobs=jobs, package=package,
                           streaming_env=streaming_env, autocast=autocast, quality_gates=gates)
    started = time.perf_counter()

    def progress(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f} s] {message}", err=True)

    try:
        result = run_bench(options, progress)
    except SetupError as exc:
        click.echo(f"chatterbox-codemod bench: error: {exc}", err=True)
        sys.exit(2)
    click.echo(format_report(result), nl=False)
    if json_path is not None:
        json_path.write_text(json.dumps(to_json(result), indent=2) + "\n", encoding="utf-8")
    if plot_path is not None:
        write_plot(result, plot_path)
    sys.exit(0 if result.passed else 1)


def _components(value: str | None, package: str = "chatterbox-tts") -> list[str]:
    known = PACKAGES[package].components
    if not value:
        return list(PACKAGES[package].default)
    asked = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(asked - set(known))
    if unknown or not asked:
        elsewhere = [name for name in unknown if name in ALL_COMPONENT_NAMES]
        hint = f"; {', '.join(elsewhere)} not with --package {package}" if elsewhere else ""
        raise click.UsageError(f"--components: unknown {', '.join(unknown) or '(none given)'} "
                               f"(known: {', '.join(known)}{hint})")
    return [name for name in known if name in asked]


def _quality_gates(value: str | None, autocast: str, ckpt_dir: Path | None, components: list[str]) -> dict:
    if value is None:
        return {}
    if autocast == "off":
        raise click.UsageError("--quality-gate needs --autocast: without it, every output must be equivalent "
                               "within 1e-5")
    if ckpt_dir is None:
        raise click.UsageError("--quality-gate needs --ckpt-dir: with random weights the quality figures are "
                               "printed, not judged")
    try:
        return parse_quality_gates(value, components)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--quality-gate'") from None


def _check_checkpoints(ckpt_dir: Path, components: list[str]) -> None:
    needed = {CHECKPOINT_FILES[model] for name in components for model in component(name).models}
    missing = sorted(name for name in needed if not (ckpt_dir / name).is_file())
    if missing:
        raise click.UsageError(f"--ckpt-dir {ckpt_dir}: missing {', '.join(missing)}")
