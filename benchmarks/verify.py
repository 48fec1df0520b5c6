"""Orchestration: prepare the two trees, drive the two workers, collect what they measured.

1. **Trees.** Either two given folders that each hold a `chatterbox` package,
   or a copy of the installed package (`original/chatterbox`) and a rewritten
   copy of it (`rewritten/chatterbox`), made with the codemod engine and its
   default transforms; the engine's report says what was rewritten.
2. **Workers.** One process per tree (`benchmarks.worker`), started once, and
   a short-lived third one on the original tree, the maker, which writes the
   weights (seeded random init, or `--ckpt-dir`) and the inputs to the work
   folder. Both workers load them: the two packages start from the same
   state_dict and see the same inputs.
3. **Components**, one after the other: an untimed first call in each worker
   whose outputs are compared (it also pays for lazy initialisation), untimed
   calls measured for memory (`benchmarks.memory`; a pipeline component,
   `tts` or `stream`, measures its tensor memory in the first call), then the timed rounds. The workers take
   turns, the first of the pair changing every round (A B, B A, A B, ...), so
   drift and warm caches favour neither. Every call starts from the same seed.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from chatterbox_codemod.engine import OUTPUT, Options, run

from .equivalence import OutputDiff, compare_outputs
from .memory import ALLOCATOR_ENV, RESIDENT, TENSORS
from .stats import SpeedRatio, speed_ratio
from .workload import COMPONENT_NAMES, STREAMING_PACKAGE, Size, component

ORIGINAL, REWRITTEN = "original", "rewritten"
LABELS = (ORIGINAL, REWRITTEN)
LOG_TAIL_LINES = 20

Progress = Callable[[str], None]


class SetupError(Exception):
    """The benchmark cannot run at all (exit status 2)."""


@dataclass
class BenchOptions:
    size: Size
    components: list[str] = field(default_factory=lambda: list(COMPONENT_NAMES))
    rounds: int = 3
    device: str = "auto"  # auto, cpu or cuda
    original: Path | None = None  # given trees; None: rewrite a copy of the installed chatterbox
    rewritten: Path | None = None
    ckpt_dir: Path | None = None
    fail_below: float | None = None
    seed: int = 0
    jobs: int = 0  # codemod engine workers (0: one per CPU)
    package: str = "chatterbox-tts"  # or chatterbox-streaming, run in its own environment
    streaming_env: Path | None = None  # where that environment lives (None: the cache folder)


@dataclass
class ComponentResult:
    name: str
    errors: dict[str, str] = field(default_factory=dict)  # label -> what it raised
    diffs: list[OutputDiff] = field(default_factory=list)  # one per output tensor
    graph: dict[str, dict] = field(default_factory=dict)  # label -> output name -> autograd facts
    times: dict[str, list[float]] = field(default_factory=lambda: {label: [] for label in LABELS})
    memory: dict[str, dict] = field(default_factory=dict)  # label -> what the memory calls measured
    audio_seconds: float | None = None
    # Pipeline components (`tts`, `stream`): label -> what the first call and each timed round did
    # (seconds per stage, speech tokens, chunk lengths, time to the first chunk).
    pipeline_first: dict[str, dict] = field(default_factory=dict)
    pipeline_rounds: dict[str, list[dict]] = field(default_factory=lambda: {label: [] for label in LABELS})
    speed: SpeedRatio | None = None  # once every round ran
    below_threshold: bool = False

    @property
    def equivalent(self) -> bool:
        return not self.errors and bool(self.diffs) and all(d.passed for d in self.diffs)

    @property
    def verdict(self) -> str:
        if self.errors:
            return "error"
        if not self.equivalent:
            return "diverged"
        if self.below_threshold:
            return "too slow"
        return "ok"

    @property
    def passed(self) -> bool:
        return self.verdict == "ok"


@dataclass
class BenchResult:
    options: BenchOptions
    trees: dict[str, str]
    environment: dict
    transforms: dict | None  # what the codemod rewrote; None for given trees
    codemod_errors: list[str]
    components: list[ComponentResult]
    started: str
    wall_seconds: float = 0.0
    setup_error: str | None = None  # the rewritten package failed to build or load

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.components)


def run_bench(options: BenchOptions, progress: Progress) -> BenchResult:
    started_at = time.perf_counter()
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="chatterbox-bench-") as temp:
        workdir = Path(temp)
        python = worker_python(options, progress)
        trees, transforms, codemod_errors = prepare_trees(options, workdir, progress, python)
        device = resolve_device(options.device)
        progress(f"starting the workers on {device}")
        result = BenchResult(options=options, trees={k: str(v) for k, v in trees.items()}, environment={},
                             transforms=transforms, codemod_errors=codemod_errors, components=[], started=started)
        workers = {label: WorkerProcess(label, trees[label], workdir, device, python) for label in LABELS}
        maker = WorkerProcess("maker", trees[ORIGINAL], workdir, device, python)
        try:
            _setup(workers, maker, options, result, progress)
            for name in options.components:
                result.components.append(_run_component(name, workers, options, workdir, result, progress))
        finally:
            for process in (maker, *workers.values()):
                process.close()
    result.wall_seconds = time.perf_counter() - started_at
    return result


# ---------------------------------------------------------------------------
# Trees


def worker_python(options: BenchOptions, progress: Progress) -> Path:
    """The Python the workers run: this one, or that of chatterbox-streaming's own environment."""
    if options.package != STREAMING_PACKAGE:
        return Path(sys.executable)
    from . import streaming_env

    try:
        return streaming_env.ensure(options.streaming_env, progress)
    except (streaming_env.StreamingEnvError, OSError) as exc:
        raise SetupError(f"cannot make the {STREAMING_PACKAGE} environment: {exc}") from exc


def prepare_trees(options: BenchOptions, workdir: Path, progress: Progress,
                  python: Path | None = None) -> tuple[dict[str, Path], dict | None, list[str]]:
    """The folders each worker puts first on sys.path, and what the codemod did to make the rewritten one."""
    if options.original is not None and options.rewritten is not None:
        trees = {ORIGINAL: options.original.resolve(), REWRITTEN: options.rewritten.resolve()}
        for label, tree in trees.items():
            if not (tree / "chatterbox" / "__init__.py").is_file():
                raise SetupError(f"--{label} {tree}: no `chatterbox` package in it (expected {tree}/chatterbox/)")
        return trees, None, []

    if options.package == STREAMING_PACKAGE:
        from . import streaming_env

        try:
            installed = streaming_env.installed_package(python).resolve()
        except streaming_env.StreamingEnvError as exc:
            raise SetupError(str(exc)) from exc
    else:
        spec = importlib.util.find_spec("chatterbox")
        if spec is None or not spec.submodule_search_locations:
            raise SetupError("chatterbox is not installed; pip install 'chatterbox-codemod[bench]', "
                             "or give two trees with --original and --rewritten")
        installed = Path(next(iter(spec.submodule_search_locations))).resolve()
    original = workdir / ORIGINAL
    shutil.copytree(installed, original / "chatterbox", ignore=shutil.ignore_patterns("__pycache__"))
    progress(f"rewriting a copy of {installed}")
    transforms, errors = rewrite_copy(original, workdir / REWRITTEN, options.jobs)
    for error in errors:
        progress(f"codemod error (that file is left as it was): {error}")
    applied = "; ".join(f"{t}: {info['count']} site{'s' * (info['count'] != 1)}" for t, info in transforms.items())
    progress(f"transforms applied: {applied or 'none selected'}")
    return {ORIGINAL: original, REWRITTEN: workdir / REWRITTEN}, transforms, errors


def rewrite_copy(original: Path, rewritten: Path, jobs: int) -> tuple[dict, list[str]]:
    """Rewrite `original/chatterbox` into `rewritten/chatterbox` with the engine's default transforms."""
    report = run(Options(paths=[str(original / "chatterbox")], mode=OUTPUT, output=rewritten / "chatterbox",
                         jobs=jobs, project_root=original))
    if not (rewritten / "chatterbox" / "__init__.py").is_file():
        messages = "; ".join(error.render(report.rel(error.path)) for error in report.errors)
        raise SetupError(f"the codemod did not produce a rewritten copy: {messages or 'no output'}")
    applied = {transform: {"count": 0, "sites": []} for transform in report.transforms}
    for site in sorted(report.sites, key=lambda s: (s.transform, report.rel(s.path), s.line)):
        if site.rewritten:
            applied[site.transform]["count"] += 1
            applied[site.transform]["sites"].append(
                {"path": report.rel(site.path), "line": site.line, "symbol": site.symbol})
    return applied, [error.render(report.rel(error.path)) for error in report.errors]


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise SetupError("--device cuda: torch sees no CUDA device")
    return requested


# ---------------------------------------------------------------------------
# Workers


class WorkerProcess:
    """A `benchmarks.worker` process: one JSON request in, one JSON answer out."""

    def __init__(self, label: str, tree: Path, workdir: Path, device: str, python: Path | None = None) -> None:
        self.label = label
        self.log_path = workdir / f"worker-{label}.log"
        # The package that holds `benchmarks` goes on the path so the worker imports this very
        # code; the tree goes first inside the worker. No bytecode is written into given trees.
        package_root = Path(__file__).resolve().parent.parent
        env = {**ALLOCATOR_ENV, **os.environ, "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(package_root), os.environ.get("PYTHONPATH")]))}
        with self.log_path.open("w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [str(python or sys.executable), "-m", "benchmarks.worker", "--tree", str(tree),
                 "--workdir", str(workdir), "--device", device],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=workdir, env=env,
            )

    def send(self, op: str, **fields) -> None:
        try:
            self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the worker is gone (or closed); receive() says how it ended

    def receive(self) -> dict:
        line = self.process.stdout.readline()
        if line:
            return json.loads(line)
        code = self.process.wait()
        return {"ok": False, "error": f"the {self.label} worker exited with status {code}",
                "traceback": self.log_tail()}

    def request(self, op: str, **fields) -> dict:
        self.send(op, **fields)
        return self.receive()

    def log_tail(self) -> str:
        with self.log_path.open(encoding="utf-8", errors="replace") as log:
            return "".join(deque(log, maxlen=LOG_TAIL_LINES))

    def close(self) -> None:
        try:
            self.send("exit")
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _setup(workers: dict[str, WorkerProcess], maker: WorkerProcess, options: BenchOptions, result: BenchResult,
           progress: Progress) -> None:
    """Build the models everywhere at once; the maker writes weights and inputs, both workers load them.

    The maker is a third process on the original tree, so the two measured
    workers have the same history: build, load, then the same calls. The
    original must get through this, or there is nothing to compare against
    (SetupError); a rewritten package that cannot is a result: every
    component fails with its error.
    """
    models = sorted({model for name in options.components for model in component(name).models})
    progress(f"building {', '.join(models)} in both workers")
    t3_layers = None if options.ckpt_dir else options.size.t3_layers  # real weights need the shipped T3
    for process in (maker, *workers.values()):
        process.send("build", models=models, seed=options.seed, t3_layers=t3_layers)
    _require_original(maker.receive(), "build the models")
    shared = maker.request("share", ckpt_dir=str(options.ckpt_dir) if options.ckpt_dir else None,
                           size=options.size.to_json(), components=options.components, seed=options.seed)
    _require_original(shared, "write the shared weights and inputs")
    maker.close()
    built = {label: worker.receive() for label, worker in workers.items()}
    _require_original(built[ORIGINAL], "build the models")
    result.environment = {k: v for k, v in built[ORIGINAL].items() if k not in ("ok", "seconds", "chatterbox")}
    result.trees = {label: answer.get("chatterbox", result.trees[label]) for label, answer in built.items()}
    progress("built in " + ", ".join(f"{answer['seconds']:.1f} s ({label})" for label, answer in built.items()
                                     if answer["ok"]) + "; weights and inputs written once, loading them in both")

    loaded = {label: worker.request("load") if built[label]["ok"] else built[label]
              for label, worker in workers.items()}
    # Loaded: the weights (a GiB for S3Gen) need not outlive a run that gets killed.
    for path in shared["weights"]:
        Path(path).unlink()
    _require_original(loaded[ORIGINAL], "load the shared weights and inputs")
    if not loaded[REWRITTEN]["ok"]:
        result.setup_error = loaded[REWRITTEN]["error"]
        progress(f"the rewritten package failed to set up: {result.setup_error}")


def _require_original(answer: dict, what: str) -> None:
    if not answer["ok"]:
        raise SetupError(f"the original package could not {what}: {answer['error']}\n{answer['traceback']}")


def _run_component(name: str, workers: dict[str, WorkerProcess], options: BenchOptions, workdir: Path,
                   result: BenchResult, progress: Progress) -> ComponentResult:
    outcome = ComponentResult(name)
    if result.setup_error is not None:
        outcome.errors[REWRITTEN] = f"setup failed: {result.setup_error}"
        return outcome

    # A pipeline call is long: its first call, untimed, also measures the peak tensor memory
    # (the profiler slows it but cannot change what it computes); it gets no resident-memory call.
    pipeline = component(name).pipeline
    first = {label: worker.request("call", component=name, seed=options.seed,
                                   outputs=str(workdir / f"{name}-{label}.pt"), memory=TENSORS if pipeline else None)
             for label, worker in workers.items()}
    for label, answer in first.items():
        if answer["ok"]:
            outcome.graph[label] = answer["graph"]
        else:
            outcome.errors[label] = answer["error"]
            progress(f"{name}: the {label} package raised {answer['error']}\n{answer['traceback']}")
    if outcome.errors:
        return outcome
    outcome.diffs = compare_outputs(*(torch.load(workdir / f"{name}-{label}.pt", weights_only=True)
                                      for label in LABELS))
    outcome.audio_seconds = first[ORIGINAL].get("audio_seconds")
    outcome.pipeline_first = {label: answer["pipeline"] for label, answer in first.items() if "pipeline" in answer}
    failed = [d for d in outcome.diffs if not d.passed]
    progress(f"{name}: outputs " + ("equivalent" if not failed else
                                    "DIVERGE: " + "; ".join(f"{d.name}: {d.problem}" for d in failed)))

    # Each memory measure gets a call of its own, so neither disturbs the other or the timed calls.
    if pipeline:
        outcome.memory = {label: answer["memory"] for label, answer in first.items()}
    measures = [] if pipeline else [TENSORS] if result.environment["device"] == "cuda" else [TENSORS, RESIDENT]
    for measure in measures:
        for label, worker in workers.items():
            answer = worker.request("call", component=name, seed=options.seed, memory=measure)
            if not answer["ok"]:
                outcome.errors[label] = f"in the memory call: {answer['error']}"
                progress(f"{name}: the {label} package raised {answer['error']}")
                return outcome
            outcome.memory.setdefault(label, {}).update(answer["memory"])

    for round_index in range(options.rounds):
        order = LABELS if round_index % 2 == 0 else LABELS[::-1]
        for label in order:
            answer = workers[label].request("call", component=name, seed=options.seed, outputs=None)
            if not answer["ok"]:
                outcome.errors[label] = f"in round {round_index + 1}: {answer['error']}"
                progress(f"{name}: the {label} package raised {answer['error']}")
                return outcome
            outcome.times[label].append(answer["seconds"])
            if "pipeline" in answer:
                outcome.pipeline_rounds[label].append(answer["pipeline"])
        times = {label: outcome.times[label][-1] for label in LABELS}
        progress(f"{name}: round {round_index + 1}/{options.rounds}: original {times[ORIGINAL]:.4f} s, "
                 f"rewritten {times[REWRITTEN]:.4f} s (ratio {times[ORIGINAL] / times[REWRITTEN]:.3f})")
    if options.rounds:
        outcome.speed = speed_ratio(outcome.times[ORIGINAL], outcome.times[REWRITTEN], options.seed)
        outcome.below_threshold = options.fail_below is not None and outcome.speed.median < options.fail_below
    return outcome
