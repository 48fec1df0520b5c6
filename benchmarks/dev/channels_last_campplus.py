"""CAMPPlus with and without the channels-last rewrite, side by side in one process.

    python -m benchmarks.dev.channels_last_campplus [--seconds 10] [--rounds 20] [--device cpu|cuda|all] [--threads N]

The installed chatterbox-tts `models/s3gen/xvector.py` and its channels-last
rewrite (made by the tool, in a temporary folder) are loaded as two modules;
`CAMPPlus` is built in both with the same seeded weights. Each round times both
variants back to back, alternating which goes first, on the same clip: the `FCM`
head (the rank-4 stack the rewrite changes) and the whole `CAMPPlus.inference`
(fbank features, FCM, the Conv1d TDNN trunk), under `torch.inference_mode` and
with autograd on (as the shipped `embed_ref` runs it). The ratio is the median
of the per-round ratios original/rewritten (above 1: the rewrite is faster),
with its 95% bootstrap interval.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType

import click
import torch
from chatterbox_codemod.benchmarks.stats import speed_ratio
from chatterbox_codemod.engine import Options, run

SAMPLE_RATE = 16_000  # CAMPPlus takes 16 kHz speech
WARMUP_ROUNDS = 3
GRAD_MODES = {"inference_mode": torch.inference_mode, "autograd on": contextlib.nullcontext}
COMPONENTS = ("FCM", "CAMPPlus.inference")


def rewritten_xvector(original: Path, folder: Path) -> Path:
    """The channels-last rewrite of `original`, written into `folder`."""
    copy = folder / original.name
    shutil.copyfile(original, copy)
    report = run(Options(paths=[str(copy)], select=["channels-last"], jobs=1))
    if report.errors or not report.changed:
        raise click.ClickException(f"the tool did not rewrite {original}: {report.errors}")
    return copy


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    return f"{model}, {torch.get_num_threads()} torch threads"


def _cpuinfo() -> list[str]:
    path = Path("/proc/cpuinfo")
    return path.read_text().splitlines() if path.exists() else []


def timed(call, device: str) -> tuple[float, torch.Tensor]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    output = call()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, output


def call(component: str, model, context, features: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    with context():
        output = model.head(features) if component == "FCM" else model.inference([clip])
    return output.detach()


def compare(name: str, calls: dict, device: str, rounds: int) -> None:
    """Time `calls["original"]` and `calls["rewritten"]` alternately; print medians, ratio and output difference."""
    order = list(calls)
    for _ in range(WARMUP_ROUNDS):
        for variant in order:
            calls[variant]()
    times: dict[str, list[float]] = {variant: [] for variant in order}
    outputs = {}
    for round_number in range(rounds):
        for variant in order if round_number % 2 == 0 else reversed(order):
            elapsed, outputs[variant] = timed(calls[variant], device)
            times[variant].append(elapsed)
    ratio = speed_ratio(times["original"], times["rewritten"])
    difference = (outputs["original"] - outputs["rewritten"]).abs().max().item()
    click.echo(f"  {name:<34} {statistics.median(times['original']) * 1e3:9.1f} ms "
               f"{statistics.median(times['rewritten']) * 1e3:9.1f} ms   {ratio.median:.3f} "
               f"({ratio.low:.3f}-{ratio.high:.3f})   {difference:.1e}")


@click.command()
@click.option("--seconds", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Length of the 16 kHz clip (10 s: about 1000 fbank frames).")
@click.option("--rounds", type=click.IntRange(min=3), default=20, show_default=True, help="Timed rounds.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "all"]), default="auto", show_default=True,
              help="auto: cuda when torch sees a GPU, else cpu; all: cpu, then cuda when present.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights and the clip.")
@click.option("--threads", type=click.IntRange(min=1),
              help="CPU threads for torch (default: torch's choice). 1 keeps figures steady on a shared machine.")
def main(seconds: float, rounds: int, device: str, seed: int, threads: int | None) -> None:
    import chatterbox.models.s3gen.xvector as installed

    if threads is not None:
        torch.set_num_threads(threads)
    devices = {"auto": ["cuda" if torch.cuda.is_available() else "cpu"], "cpu": ["cpu"], "cuda": ["cuda"],
               "all": ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]}[device]
    with tempfile.TemporaryDirectory() as folder:
        xvector = {"original": load_module("xvector_original", Path(installed.__file__)),
                   "rewritten": load_module("xvector_channels_last", rewritten_xvector(Path(installed.__file__),
                                                                                       Path(folder)))}
    torch.manual_seed(seed)
    weights = xvector["original"].CAMPPlus().state_dict()
    clip = torch.randn(int(seconds * SAMPLE_RATE), generator=torch.Generator().manual_seed(seed))
    speech, _, _ = xvector["original"].extract_feature([clip])
    click.echo(f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, "
               f"torch {torch.__version__}; a {seconds:g} s clip ({speech.shape[1]} fbank frames), fp32, "
               f"{rounds} rounds after {WARMUP_ROUNDS} warm-up rounds")
    for name in devices:
        models = {}
        for variant, module in xvector.items():
            model = module.CAMPPlus().eval()
            model.load_state_dict(weights)
            models[variant] = model.to(name)
        features = speech.to(name).permute(0, 2, 1)  # what CAMPPlus.forward hands FCM
        click.echo(f"\n{name}: {machine(name)}")
        click.echo(f"  {'call':<34} {'original':>12} {'channels-last':>12}   ratio (95% CI)   max |diff|")
        for mode, context in GRAD_MODES.items():
            for component in COMPONENTS:
                calls = {variant: functools.partial(call, component, model, context, features, clip.to(name))
                         for variant, model in models.items()}
                compare(f"{component}, {mode}", calls, name, rounds)

if __name__ == "__main__":
    main()
