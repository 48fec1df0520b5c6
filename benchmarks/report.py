"""What a benchmark run found, as a text table, as JSON and as a PNG."""

from __future__ import annotations

import statistics
from pathlib import Path

from codemod import __version__

from .equivalence import ATOL, RTOL
from .verify import LABELS, ORIGINAL, REWRITTEN, BenchResult, ComponentResult
from .workload import S3GEN_SR, component

MIB = 1024 * 1024
MEMORY_MEASURES = {
    "tensor_peak_bytes": {
        "cuda": "peak CUDA memory allocated during one call (torch.cuda peak stats reset before it), above what "
                "was allocated before it",
        "cpu": "peak tensor memory one call held at once, above what was allocated before it (torch's CPU "
               "allocator events on the calling thread, recorded by torch.profiler)",
    },
    "resident_call_peak_bytes": {
        "cpu": "peak resident memory of the worker during one call (VmHWM reset, C heap trimmed before it), above "
               "its resident memory before it; it depends on the C allocator's state, so compare it with care",
    },
}


def format_report(result: BenchResult) -> str:
    lines = [*_header(result), ""]
    resident = _has_resident(result)
    columns = ["component", "orig median", "rewr median", "ratio [95% CI]", "RTF orig/rewr", "peak mem orig/rewr",
               *(["peak RSS orig/rewr"] if resident else []), "max abs / rel diff", "graph orig/rewr", "verdict"]
    rows = [columns, *(_row(c, resident) for c in result.components)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    details = [line for c in result.components for line in _details(c)]
    if details:
        lines += ["", *details]
    lines += ["", _verdict_line(result)]
    return "\n".join(lines) + "\n"


def _allocator_line(settings: dict[str, str]) -> str:
    if not settings:
        return "defaults"
    return ", ".join(f"{key}={value}" for key, value in sorted(settings.items()))


def _header(result: BenchResult) -> list[str]:
    options, env, size = result.options, result.environment, result.options.size
    device = env.get("device_name", "?")
    if env.get("device") == "cpu":
        device = f"CPU {device}, {env.get('cpu_count')} cores, {env.get('torch_threads')} torch threads"
    weights = f"checkpoint {options.ckpt_dir}" if options.ckpt_dir else f"random init (seed {options.seed})"
    lines = [
        f"chatterbox-codemod {__version__} bench, {result.started}, {result.wall_seconds:.0f} s in all",
        f"device: {device}",
        f"torch {env.get('torch', '?')}, float32 (TF32 off), weights: {weights}",
        f"C allocator in both workers: {_allocator_line(env.get('allocator') or {})}",
        (f"size {size.name}: speech clip {size.speech_seconds:g} s, reference {size.ref_samples} samples "
         f"({size.ref_samples / S3GEN_SR:.2f} s), mel of {size.mel_seconds:g} s, {size.speech_tokens} speech tokens "
         f"({size.output_seconds:g} s of audio); {options.rounds} timed round{'s' * (options.rounds != 1)} "
         "after untimed calls for the outputs and for memory"),
        f"original:  {result.trees[ORIGINAL]}",
        f"rewritten: {result.trees[REWRITTEN]}",
        f"transforms applied: {_transforms_line(result.transforms)}",
        f"equivalent: every output within {ATOL:g} + {RTOL:g}·|x| of the original's, NaN in the same places",
        ("ratio: original time / rewritten time per round (above 1: the rewrite is faster); "
         "median and 95% bootstrap interval"),
    ]
    device_type = env.get("device", "cpu")
    lines.append(f"peak mem: {MEMORY_MEASURES['tensor_peak_bytes'][device_type]}")
    if _has_resident(result):
        lines.append(f"peak RSS: {MEMORY_MEASURES['resident_call_peak_bytes']['cpu']}")
    lines += [f"codemod error: {error}" for error in result.codemod_errors]
    return lines


def _transforms_line(transforms: dict | None) -> str:
    if transforms is None:
        return "not known (trees given with --original/--rewritten)"
    parts = []
    for transform, info in transforms.items():
        symbols = sorted({site["symbol"] for site in info["sites"]})
        parts.append(f"{transform}: {info['count']} site{'s' * (info['count'] != 1)}"
                     + (f" ({', '.join(symbols)})" if symbols else ""))
    return "; ".join(parts) or "none selected"


def _has_resident(result: BenchResult) -> bool:
    return any("resident_call_peak_bytes" in m for c in result.components for m in c.memory.values())


def _row(outcome: ComponentResult, resident: bool) -> list[str]:
    medians = _medians(outcome)
    speed = outcome.speed
    ratio = f"{speed.median:.3f} [{speed.low:.3f}, {speed.high:.3f}]" if speed else "-"
    rtf = _rtf(outcome, medians)
    memory_cells = [_memory_cell(outcome, "tensor_peak_bytes")]
    if resident:
        memory_cells.append(_memory_cell(outcome, "resident_call_peak_bytes"))
    return [outcome.name, _seconds(medians.get(ORIGINAL)), _seconds(medians.get(REWRITTEN)), ratio,
            _pair(rtf, "{:.3f}") if rtf else "-", *memory_cells, _diff_cell(outcome), _graph_cell(outcome),
            outcome.verdict]


def _medians(outcome: ComponentResult) -> dict[str, float]:
    if not all(outcome.times[label] for label in LABELS):
        return {}
    return {label: statistics.median(outcome.times[label]) for label in LABELS}


def _rtf(outcome: ComponentResult, medians: dict[str, float]) -> dict[str, float]:
    """Seconds of compute per second of audio produced, for the components that produce audio."""
    if not outcome.audio_seconds or not medians:
        return {}
    return {label: medians[label] / outcome.audio_seconds for label in medians}


def _memory_cell(outcome: ComponentResult, measure: str) -> str:
    peaks = {label: outcome.memory.get(label, {}).get(measure) for label in LABELS}
    if None in peaks.values():
        return "-"
    return _pair({label: value / MIB for label, value in peaks.items()}, "{:.1f}") + " MiB"


def _pair(values: dict[str, float], fmt: str) -> str:
    return " / ".join(fmt.format(values[label]) for label in LABELS)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.3f} s"


def _diff_cell(outcome: ComponentResult) -> str:
    if not outcome.diffs:
        return "-"
    if any(d.max_abs is None for d in outcome.diffs):
        return "mismatch"
    return f"{max(d.max_abs for d in outcome.diffs):.2g} / {max(d.max_rel for d in outcome.diffs):.2g}"


def _graph_cell(outcome: ComponentResult) -> str:
    if len(outcome.graph) != len(LABELS):
        return "-"
    return "/".join("yes" if any(o["requires_grad"] for o in outcome.graph[label].values()) else "no"
                    for label in LABELS)


def _details(outcome: ComponentResult) -> list[str]:
    lines = [f"{outcome.name}: the {label} package raised {error}" for label, error in outcome.errors.items()]
    for diff in outcome.diffs:
        if not diff.passed:
            numbers = "" if diff.max_abs is None else f" (max abs diff {diff.max_abs:.3g}, max rel {diff.max_rel:.3g})"
            lines.append(f"{outcome.name}: output `{diff.name}` {diff.shape} {diff.dtype} differs: "
                         f"{diff.problem}{numbers}")
    if outcome.below_threshold:
        lines.append(f"{outcome.name}: median ratio {outcome.speed.median:.3f} is below --fail-below")
    return lines


def _verdict_line(result: BenchResult) -> str:
    failed = [c for c in result.components if not c.passed]
    if not failed:
        return f"PASS: {len(result.components)} component{'s' * (len(result.components) != 1)} equivalent"
    return "FAIL: " + ", ".join(f"{c.name} ({c.verdict})" for c in failed)


def to_json(result: BenchResult) -> dict:
    options = result.options
    return {
        "tool_version": __version__,
        "started": result.started,
        "wall_seconds": result.wall_seconds,
        "passed": result.passed,
        "environment": {**result.environment, "dtype": "float32", "tf32": False},
        "size": options.size.to_json(),
        "rounds": options.rounds,
        "seed": options.seed,
        "weights": str(options.ckpt_dir) if options.ckpt_dir else "random",
        "fail_below": options.fail_below,
        "tolerance": {"atol": ATOL, "rtol": RTOL},
        "trees": result.trees,
        "transforms": result.transforms,
        "codemod_errors": result.codemod_errors,
        "setup_error": result.setup_error,
        "memory_measures": {measure: devices[result.environment.get("device", "cpu")]
                            for measure, devices in MEMORY_MEASURES.items()
                            if result.environment.get("device", "cpu") in devices},
        "components": [_component_json(c) for c in result.components],
    }


def _component_json(outcome: ComponentResult) -> dict:
    medians = _medians(outcome)
    speed = outcome.speed
    return {
        "name": outcome.name,
        "call": component(outcome.name).call,
        "verdict": outcome.verdict,
        "passed": outcome.passed,
        "equivalent": outcome.equivalent,
        "errors": outcome.errors,
        "outputs": [d.to_json() for d in outcome.diffs],
        "graph": outcome.graph,
        "times": outcome.times,
        "median_seconds": medians or None,
        "ratio": None if speed is None else
        {"median": speed.median, "low": speed.low, "high": speed.high, "per_round": speed.per_round},
        "audio_seconds": outcome.audio_seconds,
        "rtf": _rtf(outcome, medians) or None,
        "memory": outcome.memory or None,
    }


def write_plot(result: BenchResult, path: Path) -> None:
    """One bar per component from 1.0 (no change) to its median speed ratio, with the ratio's interval.

    The axis is logarithmic, so 2x faster and 2x slower are bars of the same length.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    names = [c.name for c in result.components]
    figure, axes = plt.subplots(figsize=(1.2 * len(names) + 3, 4.5))
    for x, outcome in enumerate(result.components):
        speed = outcome.speed
        if speed is None:
            axes.annotate(outcome.verdict, (x, 1.0), ha="center", va="bottom", color="tab:red")
            continue
        axes.bar(x, speed.median - 1.0, bottom=1.0, color="tab:blue" if outcome.passed else "tab:red", alpha=0.8)
        axes.errorbar(x, speed.median, yerr=[[speed.median - speed.low], [speed.high - speed.median]],
                      color="black", capsize=5)
        axes.annotate(f"{speed.median:.2f}", (x, speed.high), ha="center", va="bottom", fontsize=8,
                      xytext=(0, 3), textcoords="offset points")
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_formatter(ScalarFormatter())
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("original time / rewritten time (above 1: faster)")
    env = result.environment
    axes.set_title(f"chatterbox-codemod bench: {env.get('device_name', '?')}, torch {env.get('torch', '?')}, "
                   f"size {result.options.size.name}, {result.options.rounds} rounds", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
