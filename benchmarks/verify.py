"""Orchestration: prepare the two trees, drive the two workers, collect what they measured.

1. **Trees.** Either two given folders that each hold a `chatterbox` package,
   or a copy of the installed package (`original/chatterbox`) and a rewritten
   copy of it (`rewritten/chatterbox`), made with the codemod engine and its
   default transforms (with `--autocast`, the opt-in `autocast` transform as
   well), declaring the libraries in `STATELESS_LIBRARIES` stateless as a user
   would; the engine's report says what was rewritten.
2. **Workers.** One process per side (`benchmarks.worker`), started once:
   the original, the rewritten tree with CHATTERBOX_AUTOCAST=off (fp32), and
   with `--autocast`, the rewritten tree again with CHATTERBOX_AUTOCAST=bf16
   or fp16. A short-lived extra one on the original tree, the maker, writes the
   weights (seeded random init, or `--ckpt-dir`) and the inputs to the work
   folder. Every side loads them: the packages start from the same
   state_dict and see the same inputs.
3. **Components**, one after the other: an untimed first call in each worker
   whose outputs are compared (it also pays for lazy initialisation), untimed
   calls measured for memory (`benchmarks.memory`; a long component,
   `t3`, `tts` or `stream`, measures its tensor memory in the first call), then the timed rounds. The workers take
   turns, the first changing every round (A B, B A, ...; with three sides
   A B C, B C A, C A B), so drift and warm caches favour none. Every call starts from the same seed.
4. **Quality** (`benchmarks.quality`): each rewritten side's outputs measured
   against the original's. The fp32 rewrite is judged by equivalence within
   1e-5; the autocast side by its quality gates with `--ckpt-dir`, and with
   random weights only for what no tolerance excuses (an error, NaN, another
   dtype or shape). Where T3 samples, a side whose tokens differ from the
   original's makes one more call that samples the original's tokens
   (teacher forcing), and is measured on that.
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
from chatterbox_codemod.config import Config
from chatterbox_codemod.engine import OUTPUT, Options, run

from .equivalence import OutputDiff, compare_outputs
from .memory import ALLOCATOR_ENV, RESIDENT, TENSORS
from .quality import QualityResult, cfg_logits, evaluate
from .stats import SpeedRatio, speed_ratio
from .workload import (
    AUTOCAST_ENV,
    AUTOCAST_TRANSFORM,
    COMPONENT_NAMES,
    QUALITY,
    STREAMING_PACKAGE,
    T3_LOGITS,
    T3_SETTINGS,
    Size,
    component,
    quality_gates,
)

# The sides: the original, the fp32 rewrite, and with --autocast the rewrite with its autocast switch on.
ORIGINAL, REWRITTEN, AUTOCAST = "original", "rewritten", "autocast"
LABELS = (ORIGINAL, REWRITTEN)
LOG_TAIL_LINES = 20
# chatterbox-tts's libraries the bench lists under `stateless-libraries`, as a user does after checking them:
# s3tokenizer's `padding` and `S3TokenizerV2` keep no tensor between calls (tests/test_torchapi.py runs them under
# inference mode and finds none kept). Without it, the entry points that tokenize are `unsafe` (library code).
STATELESS_LIBRARIES = ("s3tokenizer",)

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
    autocast: str = "off"  # off, bf16 or fp16: the value of CHATTERBOX_AUTOCAST on the third side
    quality_gates: dict[str, float] = field(default_factory=dict)  # --quality-gate: measure or comp.measure

    @property
    def labels(self) -> tuple[str, ...]:
        return (*LABELS, AUTOCAST) if self.autocast != "off" else LABELS

    def switch(self, label: str) -> str:
        """The CHATTERBOX_AUTOCAST a side's worker gets: off everywhere but on the autocast side, so
        that a value exported by the user reaches no side by accident."""
        return self.autocast if label == AUTOCAST else "off"


@dataclass
class ComponentResult:
    name: str
    labels: tuple[str, ...] = LABELS  # the sides run
    errors: dict[str, str] = field(default_factory=dict)  # label -> what it raised
    diffs: list[OutputDiff] = field(default_factory=list)  # the fp32 rewrite's, one per output tensor
    # The autocast side's differences (first call): reported; judged only for a component with no
    # quality measures (autocast should not reach it), which must then be equivalent too.
    autocast_diffs: list[OutputDiff] = field(default_factory=list)
    quality: dict[str, QualityResult] = field(default_factory=dict)  # label (not the original) -> figures
    graph: dict[str, dict] = field(default_factory=dict)  # label -> output name -> autograd facts
    times: dict[str, list[float]] = field(default_factory=dict)  # label -> seconds per round
    memory: dict[str, dict] = field(default_factory=dict)  # label -> what the memory calls measured
    audio_seconds: float | None = None
    # Pipeline components (`tts`, `stream`): label -> what the first call and each timed round did
    # (seconds per stage, speech tokens, chunk lengths, time to the first chunk).
    pipeline_first: dict[str, dict] = field(default_factory=dict)
    pipeline_rounds: dict[str, list[dict]] = field(default_factory=dict)
    speeds: dict[str, SpeedRatio] = field(default_factory=dict)  # label (not the original) -> ratio
    too_slow: list[str] = field(default_factory=list)  # the sides below --fail-below

    def __post_init__(self) -> None:
        for label in self.labels:
            self.times.setdefault(label, [])
            self.pipeline_rounds.setdefault(label, [])

    @property
    def speed(self) -> SpeedRatio | None:
        """The fp32 rewrite's speed ratio, once every round ran."""
        return self.speeds.get(REWRITTEN)

    @property
    def below_threshold(self) -> bool:
        return bool(self.too_slow)

    @property
    def equivalent(self) -> bool:
        """The fp32 rewrite computes what the original computes (within 1e-5)."""
        return REWRITTEN not in self.errors and _all_passed(self.diffs)

    @property
    def autocast_judged_by_equivalence(self) -> bool:
        return AUTOCAST in self.labels and self.name not in QUALITY

    @property
    def verdict(self) -> str:
        if self.errors:
            return "error"
        if not self.equivalent:
            return "diverged"
        if self.autocast_judged_by_equivalence and not _all_passed(self.autocast_diffs):
            return "diverged"
        autocast = self.quality.get(AUTOCAST)
        if autocast is not None and autocast.problems:
            return "bad output"
        if autocast is not None and autocast.failed:
            return "below gate"
        if self.below_threshold:
            return "too slow"
        return "ok"

    @property
    def passed(self) -> bool:
        return self.verdict == "ok"

    def side_passed(self, label: str) -> bool:
        """Whether one rewritten side got through its own checks (the verdict covers them all)."""
        if label in self.errors or label in self.too_slow:
            return False
        if label == REWRITTEN:
            return self.equivalent
        if self.autocast_judged_by_equivalence:
            return _all_passed(self.autocast_diffs)
        quality = self.quality.get(label)
        return quality is not None and quality.passed


def _all_passed(diffs: list[OutputDiff]) -> bool:
    """Some outputs were compared, and every one is within the tolerance."""
    return bool(diffs) and all(diff.passed for diff in diffs)


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
    setup_errors: dict[str, str] = field(default_factory=dict)  # label -> how that side failed to build or load

    @property
    def setup_error(self) -> str | None:
        """How the rewritten package failed to build or load, if it did."""
        return "; ".join(f"{label}: {error}" for label, error in self.setup_errors.items()) or None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.options.labels

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
        workers = {label: WorkerProcess(label, trees[label], workdir, device, python,
                                        {AUTOCAST_ENV: options.switch(label)}) for label in options.labels}
        maker = WorkerProcess("maker", trees[ORIGINAL], workdir, device, python, {AUTOCAST_ENV: "off"})
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
        _check_autocast_switch(options, trees[REWRITTEN], f"--rewritten {trees[REWRITTEN]}")
        return {**trees, AUTOCAST: trees[REWRITTEN]}, None, []

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
    extra = (AUTOCAST_TRANSFORM,) if options.autocast != "off" else ()
    progress(f"rewriting a copy of {installed}" + (f" (default transforms and {AUTOCAST_TRANSFORM})" if extra else "")
             + f", declaring stateless: {', '.join(STATELESS_LIBRARIES)}")
    transforms, errors = rewrite_copy(original, workdir / REWRITTEN, options.jobs, extra)
    for error in errors:
        progress(f"codemod error (that file is left as it was): {error}")
    applied = "; ".join(f"{t}: {info['count']} site{'s' * (info['count'] != 1)}" for t, info in transforms.items())
    progress(f"transforms applied: {applied or 'none selected'}")
    _check_autocast_switch(options, workdir / REWRITTEN, "the rewritten copy")
    return {ORIGINAL: original, REWRITTEN: workdir / REWRITTEN, AUTOCAST: workdir / REWRITTEN}, transforms, errors


def rewrite_copy(original: Path, rewritten: Path, jobs: int, extra: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    """Rewrite `original/chatterbox` into `rewritten/chatterbox` with the engine's default transforms,
    and the opt-in ones named in `extra`, with `STATELESS_LIBRARIES` declared stateless."""
    select = None
    if extra:
        from chatterbox_codemod.transforms import TRANSFORMS

        select = [transform.id for transform in TRANSFORMS if transform.default and transform.id not in extra]
        select += list(extra)
    report = run(Options(paths=[str(original / "chatterbox")], mode=OUTPUT, output=rewritten / "chatterbox",
                         jobs=jobs, project_root=original, select=select,
                         config=Config(stateless_libraries=list(STATELESS_LIBRARIES))))
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


def _check_autocast_switch(options: BenchOptions, tree: Path, what: str) -> None:
    """With --autocast, the rewritten tree must read the switch, or its autocast side is just fp32 again."""
    if options.autocast == "off":
        return
    for path in sorted((tree / "chatterbox").rglob("*.py")):
        if AUTOCAST_ENV in path.read_text(encoding="utf-8", errors="replace"):
            return
    raise SetupError(f"--autocast {options.autocast}: no file of {what} reads {AUTOCAST_ENV}, so switching it "
                     f"on would change nothing (rewrite it with the `{AUTOCAST_TRANSFORM}` transform selected)")


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

    def __init__(self, label: str, tree: Path, workdir: Path, device: str, python: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.label = label
        self.log_path = workdir / f"worker-{label}.log"
        # The package that holds `benchmarks` goes on the path so the worker imports this very
        # code; the tree goes first inside the worker. No bytecode is written into given trees.
        package_root = Path(__file__).resolve().parent.parent
        env = {**ALLOCATOR_ENV, **os.environ, **(env or {}), "PYTHONDONTWRITEBYTECODE": "1",
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

    The maker is an extra process on the original tree, so the measured
    workers have the same history: build, load, then the same calls. The
    original must get through this, or there is nothing to compare against
    (SetupError); a rewritten side that cannot is a result: every
    component fails with its error.
    """
    models = sorted({model for name in options.components for model in component(name).models})
    progress(f"building {', '.join(models)} in the {len(workers)} workers")
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
                                     if answer["ok"]) + "; weights and inputs written once, loading them in each")

    loaded = {label: worker.request("load") if built[label]["ok"] else built[label]
              for label, worker in workers.items()}
    # Loaded: the weights (a GiB for S3Gen) need not outlive a run that gets killed.
    for path in shared["weights"]:
        Path(path).unlink()
    _require_original(loaded[ORIGINAL], "load the shared weights and inputs")
    for label, answer in loaded.items():
        if not answer["ok"]:
            result.setup_errors[label] = answer["error"]
            progress(f"the {label} side failed to set up: {answer['error']}")


def _require_original(answer: dict, what: str) -> None:
    if not answer["ok"]:
        raise SetupError(f"the original package could not {what}: {answer['error']}\n{answer['traceback']}")


def _run_component(name: str, workers: dict[str, WorkerProcess], options: BenchOptions, workdir: Path,
                   result: BenchResult, progress: Progress) -> ComponentResult:
    labels = options.labels
    outcome = ComponentResult(name, labels)
    if result.setup_errors:
        for label, error in result.setup_errors.items():
            outcome.errors[label] = f"setup failed: {error}"
        return outcome

    # A long call (T3 samples token by token): its first call, untimed, also measures the peak tensor
    # memory (the profiler slows it but cannot change what it computes); it gets no resident-memory call.
    long = component(name).long
    probes = name == "t3"  # T3's next-token logits, for its quality measures
    # The sides still running: an autocast side that raises is dropped, and the fp32 ones go on.
    active = dict(workers)

    def files(label: str, kind: str = "") -> tuple[Path, Path | None]:
        stem = workdir / f"{name}-{label}{kind}"
        return stem.with_suffix(".pt"), stem.with_suffix(".probes.pt") if probes else None

    def failed(label: str, answer: dict, when: str = "") -> bool:
        """Record a side's error; True when the component cannot go on (an fp32 side raised)."""
        outcome.errors[label] = f"{when}{answer['error']}"
        progress(f"{name}: the {label} package raised {answer['error']}\n{answer.get('traceback', '')}")
        active.pop(label, None)
        return label != AUTOCAST

    first = {}
    for label, worker in workers.items():
        answer = worker.request("call", component=name, seed=options.seed, outputs=str(files(label)[0]),
                                memory=TENSORS if long else None, probes=_optional(files(label)[1]))
        if answer["ok"]:
            first[label] = answer
            outcome.graph[label] = answer["graph"]
        else:
            failed(label, answer)
    if ORIGINAL in outcome.errors or REWRITTEN in outcome.errors:
        return outcome
    outputs = {label: torch.load(files(label)[0], weights_only=True) for label in active}
    outcome.diffs = compare_outputs(outputs[ORIGINAL], outputs[REWRITTEN])
    if AUTOCAST in active:
        outcome.autocast_diffs = compare_outputs(outputs[ORIGINAL], outputs[AUTOCAST])
    outcome.audio_seconds = first[ORIGINAL].get("audio_seconds")
    outcome.pipeline_first = {label: answer["pipeline"] for label, answer in first.items() if "pipeline" in answer}
    diverged = [d for d in outcome.diffs if not d.passed]
    progress(f"{name}: outputs " + ("equivalent" if not diverged else
                                    "DIVERGE: " + "; ".join(f"{d.name}: {d.problem}" for d in diverged)))
    if name in QUALITY and not _measure_quality(name, active, options, outputs, files, outcome, failed, progress):
        return outcome

    # Each memory measure gets a call of its own, so neither disturbs the other or the timed calls.
    if long:
        outcome.memory = {label: answer["memory"] for label, answer in first.items()}
    measures = [] if long else [TENSORS] if result.environment["device"] == "cuda" else [TENSORS, RESIDENT]
    for measure in measures:
        for label, worker in list(active.items()):
            answer = worker.request("call", component=name, seed=options.seed, memory=measure)
            if not answer["ok"]:
                if failed(label, answer, "in the memory call: "):
                    return outcome
                continue
            outcome.memory.setdefault(label, {}).update(answer["memory"])

    for round_index in range(options.rounds):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            if label not in active:
                continue
            answer = active[label].request("call", component=name, seed=options.seed, outputs=None)
            if not answer["ok"]:
                if failed(label, answer, f"in round {round_index + 1}: "):
                    return outcome
                continue
            outcome.times[label].append(answer["seconds"])
            if "pipeline" in answer:
                outcome.pipeline_rounds[label].append(answer["pipeline"])
        times = {label: outcome.times[label][-1] for label in active}
        progress(f"{name}: round {round_index + 1}/{options.rounds}: original {times[ORIGINAL]:.4f} s, "
                 + ", ".join(f"{label} {times[label]:.4f} s (ratio {times[ORIGINAL] / times[label]:.3f})"
                             for label in labels[1:] if label in times))
    if options.rounds:
        for label in labels[1:]:
            if label in active:
                outcome.speeds[label] = speed_ratio(outcome.times[ORIGINAL], outcome.times[label], options.seed)
        if options.fail_below is not None:
            outcome.too_slow = [label for label, speed in outcome.speeds.items() if speed.median < options.fail_below]
    return outcome


def _measure_quality(name: str, active: dict[str, WorkerProcess], options: BenchOptions,
                     outputs: dict[str, dict[str, torch.Tensor]], files: Callable[..., tuple[Path, Path | None]],
                     outcome: ComponentResult, failed: Callable[..., bool], progress: Progress) -> bool:
    """Each rewritten side's quality figures against the original's; False when an fp32 side raised.

    Where T3 samples (`Quality.teacher_forced`), a side whose speech tokens differ from the original's
    is measured on one more call that samples the original's tokens; the comparison is then between
    the same sentences, and T3's distributions follow the same prefixes."""
    spec = QUALITY[name]
    gates = quality_gates(name, options.quality_gates)
    reference = _with_logits(outputs[ORIGINAL], files(ORIGINAL)[1])
    for label in [label for label in options.labels[1:] if label in active]:
        side, probe, sampling = outputs[label], files(label)[1], None
        if spec.teacher_forced:
            own, original = side.get("speech_tokens"), outputs[ORIGINAL]["speech_tokens"]
            total = original.numel()
            if own is not None and own.shape == original.shape and torch.equal(own, original):
                sampling = f"sampled the original's {total} speech tokens itself"
            else:
                step = _first_difference(original, own)
                sampling = (f"its own speech tokens differ from step {step + 1} of {total}: measured on a call "
                            "that samples the original's (teacher forcing)")
                forced_outputs, probe = files(label, ".forced")
                answer = active[label].request("call", component=name, seed=options.seed,
                                               outputs=str(forced_outputs), probes=_optional(probe),
                                               force_tokens=str(files(ORIGINAL)[0]))
                if not answer["ok"]:
                    if failed(label, answer, "in the teacher-forced call: "):
                        return False
                    continue
                side = torch.load(forced_outputs, weights_only=True)
        judged = label == AUTOCAST and options.ckpt_dir is not None
        note = ("" if judged else "not judged: random weights" if label == AUTOCAST else
                "fp32: judged by equivalence within 1e-5")
        quality = evaluate(name, reference, _with_logits(side, probe), gates if label == AUTOCAST else {}, judged,
                           note)
        quality.sampling = sampling
        outcome.quality[label] = quality
        figures = ", ".join(f"{measure} {value:.4g}" for measure, value in quality.measures.items())
        progress(f"{name}: {label} quality: {figures}" + (f" ({sampling})" if sampling else "")
                 + "".join(f"; {problem}" for problem in quality.problems))
    return True


def _optional(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _with_logits(outputs: dict[str, torch.Tensor], probe: Path | None) -> dict[str, torch.Tensor]:
    """The outputs, and with T3's probe, its next-token logits for each token it sampled."""
    if probe is None:
        return outputs
    head = torch.load(probe, weights_only=True)["head"]
    steps = outputs["speech_tokens"].shape[-1]
    # The head's last forward pass (after the last token) gave no token; fewer rows than tokens
    # leave the logits misshapen, which the quality measures report.
    return {**outputs, T3_LOGITS: cfg_logits(head[:steps], T3_SETTINGS["cfg_weight"]) if head.numel() else head}


def _first_difference(original: torch.Tensor, own: torch.Tensor | None) -> int:
    if own is None:
        return 0
    a, b = original.reshape(-1).tolist(), own.reshape(-1).tolist()
    return next((index for index, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
