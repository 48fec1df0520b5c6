"""What a benchmark run found, as a text table, as JSON and as a PNG."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

from chatterbox_codemod import __version__

from .equivalence import ATOL, RTOL
from .quality import LSD_FLOOR_DB, LSD_HOP, LSD_N_FFT, QualityResult
from .stats import SpeedRatio
from .verify import AUTOCAST, ORIGINAL, REWRITTEN, BenchResult, ComponentResult
from .workload import (
    AUTOCAST_ENV,
    MEASURES,
    QUALITY,
    S3GEN_SR,
    T3_SETTINGS,
    TTS_SETTINGS,
    TTS_TEXT,
    component,
    quality_gates,
)

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


def _short(label: str, result: BenchResult) -> str:
    """A side's name in the table: orig, rewr, and the autocast side by its dtype (bf16, fp16)."""
    return {ORIGINAL: "orig", REWRITTEN: "rewr"}.get(label, result.options.autocast)


def format_report(result: BenchResult) -> str:
    lines = [*_header(result), ""]
    resident = _has_resident(result)
    labels = result.labels
    sides = "/".join(_short(label, result) for label in labels)
    judged_side = labels[-1]
    columns = ["component", *(f"{_short(label, result)} median" for label in labels),
               *(f"ratio{'' if label == REWRITTEN else ' ' + _short(label, result)} [95% CI]" for label in labels[1:]),
               f"RTF {sides}", f"peak mem {sides}", *([f"peak RSS {sides}"] if resident else []),
               "max abs / rel diff" + (" (rewr)" if AUTOCAST in labels else ""),
               f"quality ({_short(judged_side, result)})", f"graph {sides}", "verdict"]
    rows = [columns, *(_row(c, resident, result) for c in result.components)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines += _quality_lines(result)
    for outcome in result.components:
        lines += _pipeline_lines(outcome)
    details = [line for c in result.components for line in _details(c, result)]
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
        f"package: {options.package}",
        f"device: {device}",
        f"torch {env.get('torch', '?')}, float32 (TF32 off), weights: {weights}",
        *_autocast_header(result),
        f"C allocator in every worker: {_allocator_line(env.get('allocator') or {})}",
        (f"size {size.name}: speech clip {size.speech_seconds:g} s, reference {size.ref_samples} samples "
         f"({size.ref_samples / S3GEN_SR:.2f} s), mel of {size.mel_seconds:g} s, {size.speech_tokens} speech tokens "
         f"({size.output_seconds:g} s of audio); {options.rounds} timed round{'s' * (options.rounds != 1)} "
         "after untimed calls for the outputs and for memory"),
        *_pipeline_header(result),
        f"original:  {result.trees[ORIGINAL]}",
        f"rewritten: {result.trees[REWRITTEN]}",
        f"transforms applied: {_transforms_line(result.transforms)}",
        f"equivalent: every output within {ATOL:g} + {RTOL:g}·|x| of the original's, NaN in the same places",
        *_quality_header(result),
        ("ratio: original time / rewritten time per round (above 1: the rewrite is faster); "
         "median and 95% bootstrap interval"),
    ]
    device_type = env.get("device", "cpu")
    lines.append(f"peak mem: {MEMORY_MEASURES['tensor_peak_bytes'][device_type]}")
    if _has_resident(result):
        lines.append(f"peak RSS: {MEMORY_MEASURES['resident_call_peak_bytes']['cpu']}")
    lines += [f"codemod error: {error}" for error in result.codemod_errors]
    return lines


def _autocast_header(result: BenchResult) -> list[str]:
    mode = result.options.autocast
    if mode == "off":
        return []
    return [f"autocast: a third side runs the rewritten tree with {AUTOCAST_ENV}={mode}; the fp32 rewrite runs it "
            f"with {AUTOCAST_ENV}=off (and must still be equivalent)"]


# What each quality measure is, for the header.
QUALITY_DESCRIPTIONS = {
    "top1": "the fraction of steps whose most likely next token is the same",
    "kl": "mean KL(original || side) of the next-token distributions, in nats",
    "mel_rel_l1": "sum |error| / sum |original| over the mel",
    "mel_cosine": "cosine similarity of the two mels",
    "snr_db": "10·log10(signal energy / error energy) of the waveform",
    "lsd_db": f"log-spectral distance of the waveform ({LSD_N_FFT}-point frames, hop {LSD_HOP}, floor "
              f"{LSD_FLOOR_DB:g} dB below the original's peak)",
    "embedding_cosine": "cosine similarity of the speaker embeddings",
    "token_agreement": "the fraction of the reference's S3 tokens that are the same",
}


def _quality_header(result: BenchResult) -> list[str]:
    names = [c.name for c in result.components if c.name in QUALITY]
    if not names:
        return []
    measures = dict.fromkeys(m for c in names for m in QUALITY[c].measures)
    lines = ["quality: " + "; ".join(f"{name}: {QUALITY_DESCRIPTIONS[name]}" for name in measures)]
    if "t3" in names:
        lines.append("quality of t3: its logits cond + " + f"{T3_SETTINGS['cfg_weight']:g}" + "·(cond - uncond) "
                     "before the repetition penalty, temperature and min-p, teacher-forced on the original's tokens")
    if result.options.autocast != "off":
        if result.options.ckpt_dir is None:
            lines.append("quality gates: not judged (random weights); an error, NaN or infinity, or another dtype "
                         "or shape still fails")
        else:
            lines.append("quality gates: " + _gates_line(result, names))
    return lines


def _gates_line(result: BenchResult, names: list[str]) -> str:
    parts = []
    for name in names:
        gates = quality_gates(name, result.options.quality_gates)
        described = [MEASURES[m].describe_gate(t) for m, t in gates.items() if t is not None]
        parts.append(f"{name} " + (", ".join(described) or "none"))
    return "; ".join(parts)


def _pipeline_header(result: BenchResult) -> list[str]:
    if not any(component(c.name).pipeline for c in result.components):
        return []
    size = result.options.size
    settings = ", ".join(f"{key}={value}" for key, value in TTS_SETTINGS.items())
    layers = "" if size.t3_layers is None else f", {size.t3_layers} of its 30 layers"
    t3 = ("T3 from the checkpoint" if result.options.ckpt_dir else
          f"T3 random init{layers}, its head sharpened to sample speech tokens only")
    return [f"pipeline (tts, stream): text {TTS_TEXT!r}, audio prompt: the reference clip, {settings}; "
            f"T3 budget {size.tts_tokens} speech tokens (in place of max_new_tokens=1000); stream: chunk_size "
            f"{size.stream_chunk_tokens}, context_window {size.stream_context_tokens}; {t3}"]


def pipeline_summary(outcome: ComponentResult) -> dict | None:
    """Per tree: median seconds of each stage over the timed rounds and its share of the whole call;
    for `stream`, the chunks and the time to the first one. None for other components."""
    if not outcome.pipeline_first:
        return None
    summary: dict = {"trees": {}}
    for label in outcome.labels:
        rounds = outcome.pipeline_rounds.get(label) or []
        first = outcome.pipeline_first.get(label)
        if first is None:
            continue
        tree: dict = {"speech_tokens": first["speech_tokens"]}
        if rounds:
            total = statistics.median(outcome.times[label])
            stages = {stage: statistics.median(r["stages"][stage] for r in rounds) for stage in rounds[0]["stages"]}
            tree["stage_seconds"] = stages
            tree["stage_shares"] = {stage: seconds / total for stage, seconds in stages.items()}
            firsts = [r["first_chunk_seconds"] for r in rounds if r.get("first_chunk_seconds") is not None]
            if firsts:
                tree["first_chunk_seconds"] = statistics.median(firsts)
        if "chunk_samples" in first:
            tree["chunk_samples"] = first["chunk_samples"]
            tree["chunk_boundaries"] = list(itertools.accumulate(first["chunk_samples"]))
        summary["trees"][label] = tree
    if any("chunk_samples" in tree for tree in summary["trees"].values()):
        chunk_diffs = [d for d in outcome.diffs if d.name.startswith("chunk.")]
        fp32 = [tree for label, tree in summary["trees"].items() if label != AUTOCAST]  # the equivalent ones
        summary["chunks_equal"] = {
            "count": len({len(t.get("chunk_samples", [])) for t in fp32}) == 1,
            "boundaries": len({tuple(t.get("chunk_boundaries", [])) for t in fp32}) == 1,
            "samples": bool(chunk_diffs) and all(d.passed for d in chunk_diffs),
            "concatenation": any(d.name == "concatenated" and d.passed for d in outcome.diffs),
        }
        numbers = [d.max_abs for d in chunk_diffs if d.max_abs is not None]
        summary["chunk_max_abs_diff"] = max(numbers) if numbers else None
    return summary


def _pipeline_lines(outcome: ComponentResult) -> list[str]:
    summary = pipeline_summary(outcome)
    if summary is None or not summary["trees"]:
        return []
    lines = ["", f"{outcome.name}: stages, median seconds over the rounds (share of the call)"]
    for label, tree in summary["trees"].items():
        parts = [f"{tree['speech_tokens']} speech tokens"]
        if "stage_seconds" in tree:
            parts += [f"{stage} {_seconds(seconds)} ({tree['stage_shares'][stage]:.0%})"
                      for stage, seconds in tree["stage_seconds"].items()]
        if "first_chunk_seconds" in tree:
            parts.append(f"first chunk after {_seconds(tree['first_chunk_seconds'])}")
        lines.append(f"  {label:<9}  " + ", ".join(parts))
    if "chunks_equal" in summary:
        for label, tree in summary["trees"].items():
            lines.append(f"  {label:<9}  {len(tree['chunk_samples'])} chunks, ending at samples "
                         + ", ".join(str(b) for b in tree["chunk_boundaries"]))
        same = summary["chunks_equal"]
        diff = summary["chunk_max_abs_diff"]
        lines.append("  chunks: " + ", ".join(f"{what} {'same' if ok else 'DIFFERENT'}" for what, ok in same.items())
                     + (f"; max abs diff over the chunks {diff:.2g}" if diff is not None else ""))
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


def _row(outcome: ComponentResult, resident: bool, result: BenchResult) -> list[str]:
    labels = outcome.labels
    medians = _medians(outcome)
    ratios = []
    for label in labels[1:]:
        speed = outcome.speeds.get(label)
        ratios.append(f"{speed.median:.3f} [{speed.low:.3f}, {speed.high:.3f}]" if speed else "-")
    rtf = _rtf(outcome, medians)
    memory_cells = [_memory_cell(outcome, "tensor_peak_bytes")]
    if resident:
        memory_cells.append(_memory_cell(outcome, "resident_call_peak_bytes"))
    return [outcome.name, *(_seconds(medians.get(label)) for label in labels), *ratios,
            _pair(rtf, "{:.3f}", labels) if rtf else "-", *memory_cells, _diff_cell(outcome),
            _quality_cell(outcome.quality.get(labels[-1])), _graph_cell(outcome), outcome.verdict]


def _quality_cell(quality: QualityResult | None) -> str:
    if quality is None:
        return "-"
    return ", ".join(_figure(name, value) for name, value in quality.measures.items())


def _figure(name: str, value: float) -> str:
    measure = MEASURES[name]
    unit = f" {measure.unit}" if measure.unit in ("dB",) else ""
    return f"{name} {measure.fmt.format(value)}{unit}"


def _quality_lines(result: BenchResult) -> list[str]:
    """Below the table, with --autocast: each measured component's figures and how they were judged."""
    if AUTOCAST not in result.labels:
        return []
    measured = [c for c in result.components if AUTOCAST in c.quality]
    if not measured:
        return []
    mode = result.options.autocast
    lines = ["", f"quality of the {mode} rewrite against the original:"]
    width = max(len(c.name) for c in measured)
    for outcome in measured:
        quality = outcome.quality[AUTOCAST]
        if quality.problems:
            judgement = "FAIL: " + "; ".join(quality.problems)
        elif not quality.judged:
            judgement = quality.note
        elif quality.failed:
            judgement = "FAIL: " + ", ".join(
                f"{name} {MEASURES[name].fmt.format(quality.measures[name])} misses "
                f"{MEASURES[name].describe_gate(quality.gates[name])}" for name in quality.failed)
        else:
            gated = [MEASURES[n].describe_gate(t) for n, t in quality.gates.items() if t is not None]
            judgement = "pass (" + (", ".join(gated) or "no gate") + ")"
        lines.append(f"  {outcome.name:<{width}}  {_quality_cell(quality)}  {judgement}")
        if quality.sampling:
            lines.append(f"  {'':<{width}}  T3 {quality.sampling}")
    return lines


def _medians(outcome: ComponentResult) -> dict[str, float]:
    """Per side that ran every round (an autocast side that raised stops, the fp32 sides go on)."""
    if not (outcome.times[ORIGINAL] and outcome.times[REWRITTEN]):
        return {}
    rounds = len(outcome.times[ORIGINAL])
    return {label: statistics.median(times) for label, times in outcome.times.items() if len(times) == rounds}


def _rtf(outcome: ComponentResult, medians: dict[str, float]) -> dict[str, float]:
    """Seconds of compute per second of audio produced, for the components that produce audio."""
    if not outcome.audio_seconds or not medians:
        return {}
    return {label: medians[label] / outcome.audio_seconds for label in medians}


def _memory_cell(outcome: ComponentResult, measure: str) -> str:
    peaks = {label: outcome.memory.get(label, {}).get(measure) for label in outcome.labels}
    if peaks[ORIGINAL] is None:
        return "-"
    return _pair({label: value / MIB for label, value in peaks.items() if value is not None}, "{:.1f}",
                 outcome.labels) + " MiB"


def _pair(values: dict[str, float], fmt: str, labels: tuple[str, ...]) -> str:
    """One value per side, `-` for a side that has none."""
    return " / ".join(fmt.format(values[label]) if label in values else "-" for label in labels)


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
    if len(outcome.graph) != len(outcome.labels):
        return "-"
    return "/".join("yes" if any(o["requires_grad"] for o in outcome.graph[label].values()) else "no"
                    for label in outcome.labels)


def _details(outcome: ComponentResult, result: BenchResult) -> list[str]:
    lines = [f"{outcome.name}: the {_side(label, result)} raised {error}" for label, error in outcome.errors.items()]
    diffs = [(REWRITTEN, diff) for diff in outcome.diffs]
    if outcome.autocast_judged_by_equivalence:
        diffs += [(AUTOCAST, diff) for diff in outcome.autocast_diffs]
    for label, diff in diffs:
        if not diff.passed:
            numbers = "" if diff.max_abs is None else f" (max abs diff {diff.max_abs:.3g}, max rel {diff.max_rel:.3g})"
            side = "" if label == REWRITTEN else f" of the {_side(label, result)}"
            lines.append(f"{outcome.name}: output `{diff.name}`{side} {diff.shape} {diff.dtype} differs: "
                         f"{diff.problem}{numbers}")
    for label, quality in outcome.quality.items():
        if label != AUTOCAST:
            continue
        lines += [f"{outcome.name}: the {_side(label, result)}'s {problem}" for problem in quality.problems]
        lines += [f"{outcome.name}: the {_side(label, result)}'s {name} "
                  f"{MEASURES[name].fmt.format(quality.measures[name])} misses the gate "
                  f"{MEASURES[name].describe_gate(quality.gates[name])}" for name in quality.failed]
    for label in outcome.too_slow:
        lines.append(f"{outcome.name}: the {_side(label, result)}'s median ratio {outcome.speeds[label].median:.3f} "
                     "is below --fail-below")
    return lines


def _side(label: str, result: BenchResult) -> str:
    if label == AUTOCAST:
        return f"{result.options.autocast} autocast side"
    return f"{label} package"


def _verdict_line(result: BenchResult) -> str:
    failed = [c for c in result.components if not c.passed]
    if failed:
        return "FAIL: " + ", ".join(f"{c.name} ({c.verdict})" for c in failed)
    count = len(result.components)
    line = f"PASS: {count} component{'s' * (count != 1)} equivalent"
    if AUTOCAST not in result.labels:
        return line
    mode = result.options.autocast
    measured = sum(1 for c in result.components if AUTOCAST in c.quality)
    if result.options.ckpt_dir is None:
        how = f"{measured} not judged (random weights), none with NaN or another dtype or shape"
    else:
        how = f"{measured} within the quality gates"
    unmeasured = count - measured
    return f"{line} in fp32; {mode}: {how}" + (f"; {unmeasured} with no quality measures equivalent" if unmeasured
                                               else "")


def to_json(result: BenchResult) -> dict:
    options = result.options
    return {
        "tool_version": __version__,
        "started": result.started,
        "wall_seconds": result.wall_seconds,
        "passed": result.passed,
        "environment": {**result.environment, "dtype": "float32", "tf32": False},
        "autocast": options.autocast,
        "sides": list(result.labels),
        "quality_gates": options.quality_gates,
        "quality_judged": options.autocast != "off" and options.ckpt_dir is not None,
        "size": options.size.to_json(),
        "rounds": options.rounds,
        "seed": options.seed,
        "package": options.package,
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


def _ratio_json(speed: SpeedRatio | None) -> dict | None:
    if speed is None:
        return None
    return {"median": speed.median, "low": speed.low, "high": speed.high, "per_round": speed.per_round}


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
        "ratio": _ratio_json(speed),  # the fp32 rewrite's
        "ratios": {label: _ratio_json(s) for label, s in outcome.speeds.items()} or None,
        "autocast_outputs": [d.to_json() for d in outcome.autocast_diffs] or None,
        "quality": {label: q.to_json() for label, q in outcome.quality.items()} or None,
        "audio_seconds": outcome.audio_seconds,
        "rtf": _rtf(outcome, medians) or None,
        "pipeline": pipeline_summary(outcome),
        "pipeline_calls": {"first": outcome.pipeline_first, "rounds": outcome.pipeline_rounds}
        if outcome.pipeline_first else None,
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
    sides = result.labels[1:]
    width = 0.8 / len(sides)
    colours = {REWRITTEN: "tab:blue", AUTOCAST: "tab:orange"}
    figure, axes = plt.subplots(figsize=(1.2 * len(sides) * len(names) + 3, 4.5))
    labelled: set[str] = set()
    failed_any = False
    for x, outcome in enumerate(result.components):
        if not outcome.speeds:
            axes.annotate(outcome.verdict, (x, 1.0), ha="center", va="bottom", color="tab:red")
            continue
        for index, label in enumerate(sides):
            speed = outcome.speeds.get(label)
            if speed is None:
                continue
            position = x + (index - (len(sides) - 1) / 2) * width
            legend = "fp32 rewrite" if label == REWRITTEN else f"{result.options.autocast} autocast rewrite"
            passed = outcome.side_passed(label)
            failed_any = failed_any or not passed
            axes.bar(position, speed.median - 1.0, bottom=1.0, width=width * 0.9, color=colours[label], alpha=0.8,
                     hatch=None if passed else "//", edgecolor="black" if passed else "tab:red",
                     linewidth=0.5 if passed else 1.5, label=None if label in labelled else legend)
            labelled.add(label)
            axes.errorbar(position, speed.median, yerr=[[speed.median - speed.low], [speed.high - speed.median]],
                          color="black", capsize=4)
            axes.annotate(f"{speed.median:.2f}", (position, speed.high), ha="center", va="bottom", fontsize=8,
                          xytext=(0, 3), textcoords="offset points")
    if failed_any:
        axes.bar(0, 0, bottom=1.0, width=0, color="white", hatch="//", edgecolor="tab:red",
                 label="failed its checks (see the table)")
    if len(sides) > 1 or failed_any:
        axes.legend(fontsize=8)
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_formatter(ScalarFormatter())
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("original time / rewritten time (above 1: faster)")
    env = result.environment
    axes.set_title(f"chatterbox-codemod bench: {env.get('device_name', '?')}, torch {env.get('torch', '?')}\n"
                   f"size {result.options.size.name}, {result.options.rounds} round{'s' * (result.options.rounds != 1)}"
                   + (f", autocast {result.options.autocast}" if AUTOCAST in result.labels else ""), fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
