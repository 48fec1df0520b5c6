"""The differential fuzzer's command line: `python -m benchmarks.fuzz --programs N --seed S`.

Generates N random PyTorch projects from the seed, rewrites each with the
tool (whole project, then the package alone), runs every driver against the
original and the rewrite in torch worker processes, and counts false-safes:
sites the tool rewrote (`applied`) whose program then raises, computes other
values, or loses gradients. Prints a summary table (with `--baseline
literal`, the blind conversion of every `no_grad` beside it), shrinks each
distinct false-safe to a reproducer under --keep DIR (or a printed temporary
folder), and exits 1 if any false-safe was found, 0 if none, 2 on usage
errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

from .campaign import Campaign, Result
from .runner import Pool
from .shrink import Shrinker

TRANSFORMS = ("inference-mode", "entry-points", "channels-last")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=100, help="how many programs to generate (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="campaign seed; program i uses seed*1000000+i")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    parser.add_argument("--keep", type=Path, help="write reproducers (and failing programs) here")
    parser.add_argument("--baseline", choices=["literal"], help="also judge the blind conversion of every no_grad")
    parser.add_argument("--json", type=Path, help="write the figures to FILE")
    parser.add_argument("--no-precision", action="store_true",
                        help="skip converting left-alone sites one by one (the missed-safe upper bound)")
    parser.add_argument("--shrink", type=int, default=3, help="distinct false-safes to shrink (default 3)")
    parser.add_argument("--shrink-budget", type=float, default=120.0, help="seconds per reproducer (default 120)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.programs < 1 or args.jobs < 1 or args.shrink < 0:
        _parser().error("--programs and --jobs must be at least 1, --shrink at least 0")
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    keep = args.keep or work / "reproducers"
    pool = Pool(args.jobs)
    started = time.monotonic()
    try:
        campaign = Campaign(pool, work, precision=not args.no_precision, baseline=args.baseline == "literal")
        results: list[Result] = []
        in_flight: deque = deque()
        for i in range(args.programs):
            in_flight.append(campaign.submit(args.seed * 1_000_000 + i))
            if len(in_flight) > args.jobs:
                results.append(campaign.finish(in_flight.popleft()))
                _progress(results, args.programs)
        while in_flight:
            results.append(campaign.finish(in_flight.popleft()))
            _progress(results, args.programs)
        elapsed = time.monotonic() - started
        shrinker = Shrinker(pool, work / "shrink", args.shrink_budget)
        seen: set[str] = set()
        for result in results:
            for false_safe in result.false_safes:
                if false_safe.kind not in seen and len(seen) < args.shrink:
                    seen.add(false_safe.kind)
                    print(f"shrinking {false_safe.kind} (program {false_safe.program_seed})...", file=sys.stderr)
                    false_safe.reproducer = str(shrinker.shrink(false_safe, keep))
        for result in results:
            if result.false_safes:
                shutil.copytree(work / f"p{result.seed}" / "original", keep / "programs" / f"p{result.seed}",
                                dirs_exist_ok=True)
    finally:
        pool.close()
        for child in work.iterdir():
            if child != keep:
                shutil.rmtree(child, ignore_errors=True)
        if args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures = _figures(results, args, elapsed)
    print(_table(figures, args.baseline == "literal"))
    _print_reproducers(results)
    if any(r.false_safes for r in results):
        print(f"\nreproducers and failing programs: {keep}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if figures["tool"]["false_safe_sites"] else 0


def _progress(results: list[Result], total: int) -> None:
    if len(results) % 25 == 0 or len(results) == total:
        bad = sum(len(r.false_safes) for r in results)
        print(f"{len(results)}/{total} programs, {bad} false-safes", file=sys.stderr)


def _figures(results: list[Result], args, elapsed: float) -> dict:
    sites = Counter(s.transform for r in results for s in r.sites)
    applied = Counter(s.transform for r in results for s in r.sites if s.rewritten)
    applied_package = Counter(s.transform for r in results for s in r.package_sites if s.rewritten)
    left = sum(r.left_alone for r in results)
    passing = sum(r.left_passing for r in results)
    false_safes = [f for r in results for f in r.false_safes]
    figures = {
        "seed": args.seed,
        "programs": len(results),
        "seconds": round(elapsed, 2),
        "programs_per_second": round(len(results) / elapsed, 3),
        "sites_seen": {t: sites[t] for t in TRANSFORMS},
        "sites_applied": {t: applied[t] for t in TRANSFORMS},
        "sites_applied_package_run": {t: applied_package[t] for t in TRANSFORMS},
        "tool": {
            "false_safe_sites": len(false_safes),
            "false_safe_programs": sum(bool(r.false_safes) for r in results),
            "by_class": dict(Counter(f.kind for f in false_safes)),
            "false_safes": [{"program_seed": f.program_seed, "run": f.layout, "sites": [s.where for s in f.sites],
                             "failures": [x.render() for x in f.failures], "class": f.kind,
                             "reproducer": f.reproducer} for f in false_safes],
        },
        "tool_errors": [e for r in results for e in r.tool_errors],
        "generator_errors": [f"{r.seed} {e}" for r in results for e in r.generator_errors],
        "missed_safe_upper_bound": None if args.no_precision else {
            "left_alone": left, "pass_when_converted": passing, "share": round(passing / left, 3) if left else 0.0},
    }
    if args.baseline == "literal":
        figures["baseline_literal"] = {
            "sites_converted": sum(r.literal_sites for r in results),
            "false_safe_sites": sum(r.baseline_false_safe_sites for r in results),
            "false_safe_programs": sum(r.baseline_failed for r in results),
        }
    return figures


def _table(f: dict, baseline: bool) -> str:
    rows = [("programs", f["programs"], f["programs"])]
    for t in TRANSFORMS:
        rows.append((f"sites seen: {t}", f["sites_seen"][t], ""))
    for t in TRANSFORMS:
        literal = f["baseline_literal"]["sites_converted"] if baseline and t == "inference-mode" else ""
        rows.append((f"sites applied: {t}", f"{f['sites_applied'][t]} ({f['sites_applied_package_run'][t]} "
                     "package run)", literal))
    b = f.get("baseline_literal", {})
    rows += [("false-safe sites", f["tool"]["false_safe_sites"], b.get("false_safe_sites", "")),
             ("programs with a false-safe", f["tool"]["false_safe_programs"], b.get("false_safe_programs", "")),
             ("tool errors (exit 2)", len(f["tool_errors"]), ""),
             ("generator defects (original raised)", len(f["generator_errors"]), "")]
    missed = f["missed_safe_upper_bound"]
    if missed:
        rows.append(("missed-safe upper bound", f"{missed['pass_when_converted']}/{missed['left_alone']} "
                     f"({missed['share']:.0%})", ""))
    rows.append(("programs per second", f"{f['programs_per_second']:.2f} ({f['seconds']:.0f} s)", ""))
    header = ("", "tool", "literal" if baseline else "")
    width = max(len(str(r[0])) for r in rows) + 2
    lines = [f"{header[0]:<{width}}{header[1]:<28}{header[2]}"]
    lines += [f"{name:<{width}}{tool!s:<28}{lit if baseline else ''}" for name, tool, lit in rows]
    for kind, n in sorted(f["tool"]["by_class"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>5}  {kind}")
    return "\n".join(lines)


def _print_reproducers(results: list[Result]) -> None:
    for result in results:
        for false_safe in result.false_safes:
            if false_safe.reproducer:
                print(f"\nreproducer for {false_safe.kind}: {false_safe.reproducer}")
                for path in sorted(Path(false_safe.reproducer).glob("*.in.py")):
                    print(path.read_text())


if __name__ == "__main__":
    sys.exit(main())
