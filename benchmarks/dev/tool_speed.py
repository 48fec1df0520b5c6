"""How fast is chatterbox-codemod next to LibCST's own runner doing nothing, cold and with a warm run cache?

    python benchmarks/dev/tool_speed.py                      # chatterbox-tts 0.1.7 tree and the installed torch
    python benchmarks/dev/tool_speed.py --trees chatterbox,transformers --runs 7

Each measurement is a whole process, as a user runs it, from compiled bytecode
(as pip installs both tools). On each tree:
- `cold`: `chatterbox-codemod apply --diff --no-cache TREE`, every transform;
- `warm`: the same with the cache, after one run that filled it;
- `chatterbox` only, `one file changed`: the same with the cache, `tts.py`
  edited before each run (the cache is warm for the state before, so it misses);
- `transformers` only, `one file changed`: the pre-commit case, `apply --check
  models/llama/modeling_llama.py` in a git repository of the installed transformers
  sources, the file edited before each run (the cache is warm for the state before);
- `transformers` only, `one config file changed`: the same with
  `models/llama/configuration_llama.py`, a file with no shape any transform looks for
  (the screen skips the rest of the project: `analysis.screen`);
against `python -m libcst.tool codemod --no-format noop.NOOPCommand` on the same
tree (`--cases` measures only the cases named). Each round runs every case
once, ours then LibCST's, so machine drift hits every case and both tools
alike; the table gives the median wall time and peak RSS of each, their ratio,
and the goals set for the tool (issues 6 and 15).
"""

from __future__ import annotations

import argparse
import contextlib
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

# (tree, case) -> (seconds, ratio to LibCST no-op): the goals; for cold runs "no slower than before the soundness
# work" (issue 10: 0.80x and 0.68x, measured on 2026-11-28).
GOALS = {("chatterbox", "cold"): (1.0, 0.80), ("chatterbox", "warm"): (None, 0.3), ("torch", "cold"): (None, 0.68),
         ("transformers", "one file changed"): (1.5, None), ("transformers", "one config file changed"): (1.5, None)}
# (tree, case) -> the file edited before each run of the case (and checked alone, on transformers)
CHANGED_FILES = {("chatterbox", "one file changed"): "tts.py",
                 ("transformers", "one file changed"): "models/llama/modeling_llama.py",
                 ("transformers", "one config file changed"): "models/llama/configuration_llama.py"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default="chatterbox,torch", help="comma-separated: chatterbox, torch, transformers")
    parser.add_argument("--runs", type=int, default=5, help="runs of each tool and case on the chatterbox tree")
    parser.add_argument("--large-runs", type=int, default=2, help="runs of each on the torch and transformers trees")
    parser.add_argument("--cases", help="comma-separated: measure only these cases (default: every case of a tree)")
    args = parser.parse_args()
    wanted = {case.strip() for case in args.cases.split(",")} if args.cases else None

    print(machine())
    compile_bytecode()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tool-speed-") as scratch:
        workdir = Path(scratch)
        subprocess.run([sys.executable, "-m", "libcst.tool", "initialize", str(workdir)], check=True,
                       capture_output=True)
        for name in args.trees.split(","):
            name = name.strip()
            tree = prepare(name, workdir)
            runs = args.runs if name == "chatterbox" else args.large_runs
            for case, ours, libcst in measure(name, tree, workdir, runs, wanted):
                rows.append((name, count_lines(tree), case, ours, libcst))
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
    if name == "transformers":
        spec = importlib.util.find_spec("transformers")
        if spec is None or not spec.origin:
            raise SystemExit("transformers is not installed")
        destination = workdir / "transformers-repo" / "transformers"
        shutil.copytree(Path(spec.origin).parent, destination, ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
        # A git work tree, as pre-commit sees it: the project root the whole repository.
        for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=bench", "-c", "user.email=bench@localhost",
                                                        "commit", "-q", "-m", "sources"]):
            subprocess.run(["git", *command], cwd=destination.parent, check=True, capture_output=True)
        return destination
    raise SystemExit(f"unknown tree {name!r} (chatterbox, torch, transformers)")


def compile_bytecode() -> None:
    """Compile chatterbox-codemod's sources, so both tools run from bytecode as after `pip install`.

    pip compiles what it installs, so LibCST's bytecode is there; an editable checkout has none until a
    run writes it, and with PYTHONDONTWRITEBYTECODE set (as on this project's machines) no run does, so
    every measured process would compile the tool's 9,000 lines again (0.1 s of a 1.5 s run here).
    """
    import compileall

    import chatterbox_codemod.analysis
    import chatterbox_codemod.transforms

    for package in (chatterbox_codemod, chatterbox_codemod.analysis, chatterbox_codemod.transforms):
        for folder in package.__path__:
            compileall.compile_dir(folder, maxlevels=0, quiet=1)


Run = tuple[float, int]  # wall seconds, peak RSS in bytes


def measure(name: str, tree: Path, workdir: Path, runs: int,
            wanted: set[str] | None) -> list[tuple[str, list[Run], list[Run]]]:
    """(case, our runs, LibCST's runs) for each case measured on this tree (`wanted`: only those)."""
    libcst_command = [sys.executable, "-m", "libcst.tool", "codemod", "--no-format", "noop.NOOPCommand", str(tree)]
    ours_command = [sys.executable, "-m", "chatterbox_codemod", "apply", "--diff"]
    cache = workdir / f"cache-{name}"
    cases: dict[str, tuple[list[str], Path]] = {
        "cold": ([*ours_command, "--no-cache", str(tree)], workdir),
        "warm": ([*ours_command, "--cache-dir", str(cache), str(tree)], workdir),
    }
    if name == "chatterbox":
        cases["one file changed"] = cases["warm"]
    elif name == "transformers":
        check = [*ours_command[:-1], "--check", "--cache-dir", str(cache)]
        cases = {"cold": cases["cold"]} | {
            case: ([*check, f"transformers/{CHANGED_FILES[name, case]}"], tree.parent)
            for case in ("one file changed", "one config file changed")}
    cases = {case: run for case, run in cases.items() if wanted is None or case in wanted}
    filling = next((case for case in ("warm", "one file changed") if case in cases), None)
    if filling is not None:  # the cache, for the unedited tree
        timed(*cases[filling], ok=(0, 1))
    # Round by round, every case once in each, so drift over the rounds hits every case alike.
    results: dict[str, tuple[list[Run], list[Run]]] = {case: ([], []) for case in cases}
    for run in range(runs):
        for case, (command, cwd) in cases.items():
            ours, libcst = results[case]
            if (name, case) in CHANGED_FILES:
                with (tree / CHANGED_FILES[name, case]).open("a", encoding="utf-8") as handle:
                    handle.write(f"\n# edit {case} {run}\n")
            ours.append(timed(command, cwd, ok=(0, 1)))
            libcst.append(timed(libcst_command, workdir, ok=(0,)))
            print(f"  {name} {case} run {run + 1}/{runs}: ours {ours[-1][0]:.2f} s, "
                  f"LibCST no-op {libcst[-1][0]:.2f} s", file=sys.stderr)
    return [(case, ours, libcst) for case, (ours, libcst) in results.items()]


def timed(command: list[str], cwd: Path, ok: tuple[int, ...]) -> Run:
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with contextlib.closing(proc.stderr):
        stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{stderr[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024  # Linux reports kilobytes


def count_lines(tree: Path) -> tuple[int, int]:
    files = list(tree.rglob("*.py"))
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    return len(files), lines


def table(rows) -> str:
    out = ["", "| tree | files | lines | case | ours (median) | peak RSS | LibCST no-op (median) | ratio | goal |",
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for name, (files, lines), case, ours, libcst in rows:
        ours_median = statistics.median(t for t, _ in ours)
        libcst_median = statistics.median(t for t, _ in libcst)
        peak = max(rss for _, rss in ours)
        ratio = ours_median / libcst_median
        seconds, target = GOALS.get((name, case), (None, None))
        goal = []
        if seconds is not None:
            goal.append(f"< {seconds:g} s: {'met' if ours_median < seconds else 'missed'}")
        if target is not None:
            goal.append(f"<= {target:g}x: {'met' if ratio <= target else 'missed'}")
        out.append(f"| {name} | {files} | {lines} | {case} | {ours_median:.2f} s | {peak / 2**20:.0f} MiB | "
                   f"{libcst_median:.2f} s | {ratio:.2f}x | {'; '.join(goal)} |")
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
