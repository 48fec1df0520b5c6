"""How fast is chatterbox-codemod next to LibCST's own runner doing nothing?

    python benchmarks/dev/tool_speed.py                      # chatterbox-tts 0.1.7 tree and the installed torch
    python benchmarks/dev/tool_speed.py --trees chatterbox --runs 7

Each measurement is a whole process, as a user runs it:
`chatterbox-codemod apply --diff TREE` with every transform, against
`python -m libcst.tool codemod --no-format noop.NOOPCommand TREE` on the same
tree. The two alternate (ours, LibCST, ours, ...) so machine drift hits both
alike; the table gives the median wall time of each and their ratio, next to
the goals of issue 6 (chatterbox: under 1 s and at most 0.3x; torch: at most
0.1x).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

GOALS = {"chatterbox": (1.0, 0.3), "torch": (None, 0.1)}  # (seconds, ratio to LibCST no-op)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default="chatterbox,torch", help="comma-separated: chatterbox, torch")
    parser.add_argument("--runs", type=int, default=5, help="runs of each tool on the chatterbox tree")
    parser.add_argument("--torch-runs", type=int, default=2, help="runs of each tool on the torch tree")
    args = parser.parse_args()

    print(machine())
    rows = []
    with tempfile.TemporaryDirectory(prefix="tool-speed-") as scratch:
        workdir = Path(scratch)
        subprocess.run([sys.executable, "-m", "libcst.tool", "initialize", str(workdir)], check=True,
                       capture_output=True)
        for name in args.trees.split(","):
            tree = prepare(name.strip(), workdir)
            runs = args.runs if name == "chatterbox" else args.torch_runs
            ours, libcst = measure(tree, workdir, runs)
            rows.append((name, count_lines(tree), ours, libcst))
    print(table(rows))


def prepare(name: str, workdir: Path) -> Path:
    if name == "chatterbox":
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "chatterbox-tts==0.1.7",
                        "-d", str(workdir / "wheel")], check=True)
        wheel = next((workdir / "wheel").glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(workdir / "chatterbox-tts")
        return workdir / "chatterbox-tts" / "chatterbox"
    if name == "torch":
        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.origin:
            raise SystemExit("torch is not installed")
        destination = workdir / "torch-tree" / "torch"
        shutil.copytree(Path(spec.origin).parent, destination, ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
        return destination
    raise SystemExit(f"unknown tree {name!r} (chatterbox, torch)")


def measure(tree: Path, workdir: Path, runs: int) -> tuple[list[float], list[float]]:
    ours_command = [sys.executable, "-m", "chatterbox_codemod", "apply", "--diff", str(tree)]
    libcst_command = [sys.executable, "-m", "libcst.tool", "codemod", "--no-format", "noop.NOOPCommand", str(tree)]
    ours: list[float] = []
    libcst: list[float] = []
    for run in range(runs):
        ours.append(timed(ours_command, workdir, ok=(0, 1)))
        libcst.append(timed(libcst_command, workdir, ok=(0,)))
        print(f"  {tree.name} run {run + 1}/{runs}: ours {ours[-1]:.2f} s, LibCST no-op {libcst[-1]:.2f} s",
              file=sys.stderr)
    return ours, libcst


def timed(command: list[str], cwd: Path, ok: tuple[int, ...]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def count_lines(tree: Path) -> tuple[int, int]:
    files = list(tree.rglob("*.py"))
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    return len(files), lines


def table(rows) -> str:
    out = ["", "| tree | files | lines | ours (median) | LibCST no-op (median) | ratio | goal |",
           "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, (files, lines), ours, libcst in rows:
        ours_median, libcst_median = statistics.median(ours), statistics.median(libcst)
        ratio = ours_median / libcst_median
        seconds, target = GOALS.get(name, (None, None))
        goal = []
        if seconds is not None:
            goal.append(f"< {seconds:g} s: {'met' if ours_median < seconds else 'missed'}")
        if target is not None:
            goal.append(f"<= {target:g}x: {'met' if ratio <= target else 'missed'}")
        out.append(f"| {name} | {files} | {lines} | {ours_median:.2f} s | {libcst_median:.2f} s | {ratio:.2f}x | "
                   f"{'; '.join(goal)} |")
    out.append(f"\nruns: ours {', '.join(f'{t:.2f}' for t in rows[-1][2])} s (last tree)")
    return "\n".join(out)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {name: importlib.metadata.version(name) for name in ("libcst", "chatterbox-codemod")}
    return (f"machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
            f"libcst {versions['libcst']}; chatterbox-codemod {versions['chatterbox-codemod']}")


if __name__ == "__main__":
    main()
