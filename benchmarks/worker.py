"""One side of the benchmark: a process that imports `chatterbox` from one tree and runs components on request.

    python -m benchmarks.worker --tree TREE --workdir DIR --device cpu

Requests arrive as one JSON object per line on stdin, answers leave the same
way on the process's original stdout; tensors (weights, inputs, outputs) travel
as files in the shared DIR. Everything the models print goes to stderr, which
the orchestrator sends to a log file, so it cannot corrupt the answers.

Requests, in the order the orchestrator sends them:
  {"op": "build", "models": [...], "seed": S}            construct the models (random init, seeded)
  {"op": "share", "ckpt_dir": D|null, "size": {...},
   "components": [...], "seed": S}                      the maker only: write weights and inputs to DIR
  {"op": "load"}                                        load the shared weights and inputs
  {"op": "call", "component": C, "seed": S,
   "outputs": FILE|null, "memory": null|"tensors"|"resident",
   "probes": FILE|null, "force_tokens": FILE|null}
                                                        one call, timed, with the RNG re-seeded; `probes`:
                                                        also save T3's next-token logits (`t3`);
                                                        `force_tokens`: T3 samples the speech tokens
                                                        of that outputs file (teacher forcing)
  {"op": "exit"}
Every answer has "ok"; a failed request answers {"ok": false, "error": ..., "traceback": ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import workload
from .memory import ALLOCATOR_ENV, RESIDENT, TENSORS, resident_peak, tensor_peak
from .workload import CHECKPOINT_FILES, S3GEN_SR, SPEECH_SR, SPEECH_TOKEN_LIMIT, T3_SETTINGS, TTS_SETTINGS, TTS_TEXT

WEIGHTS_FILE = "weights-{model}.pt"
INPUTS_FILE = "inputs.pt"
REFERENCE_WAV = "reference.wav"  # the pipeline components' audio prompt (float32 WAV, 24 kHz)
TOKENIZER_FILE = "tokenizer.json"  # the text tokenizer the bench makes (or the checkpoint's)
# How much sharper the seeded random T3 is made (its final norm's scale): see `shape_random_t3`.
T3_SHARPEN = 6.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, required=True, help="folder holding the `chatterbox` package to import")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--device", required=True, choices=["cpu", "cuda"])
    args = parser.parse_args(argv)

    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    sys.path.insert(0, str(args.tree.resolve()))
    worker = Worker(args.tree.resolve(), args.workdir, torch.device(args.device))
    for line in iter(sys.stdin.readline, ""):
        request = json.loads(line)
        if request["op"] == "exit":
            break
        try:
            answer = {"ok": True, **worker.handle(request)}
        except Exception as exc:  # noqa: BLE001 - a failure of the code under test is a result to report
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")


class Worker:
    def __init__(self, tree: Path, workdir: Path, device: torch.device) -> None:
        self.tree = tree
        self.workdir = workdir
        self.device = device
        self.models: dict[str, torch.nn.Module] = {}
        self.inputs: dict[str, Any] = {}
        self.pipeline: PipelineProbe | None = None  # the ChatterboxTTS of `tts` and `stream`, instrumented
        # Real fp32: TF32 convolutions would put both packages ~1e-3 apart, far outside the tolerance.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def handle(self, request: dict) -> dict:
        handler = {"build": self.build, "share": self.share, "load": self.load, "call": self.call}[request["op"]]
        return handler(**{k: v for k, v in request.items() if k != "op"})

    def build(self, models: list[str], seed: int, t3_layers: int | None) -> dict:
        started = time.perf_counter()
        import chatterbox

        location = Path(chatterbox.__file__).resolve()
        if self.tree not in location.parents:
            raise RuntimeError(f"imported chatterbox from {location}, not from {self.tree}")
        from chatterbox.models.s3gen import S3Gen
        from chatterbox.models.voice_encoder import VoiceEncoder

        constructors = {"s3gen": S3Gen, "voice_encoder": VoiceEncoder}
        if "t3" in models:
            constructors["t3"] = functools.partial(make_t3, t3_layers)
        torch.manual_seed(seed)
        for name in models:
            self.models[name] = constructors[name]().to(self.device).eval()
        seconds = time.perf_counter() - started
        return {"chatterbox": str(location.parent), "seconds": seconds, **environment(self.device)}

    def share(self, ckpt_dir: str | None, size: dict, components: list[str], seed: int) -> dict:
        """Write the weights the workers load, and the inputs every call gets; answers the weight files."""
        weights = []
        for name, model in self.models.items():
            if ckpt_dir is not None:
                load_checkpoint(name, model, Path(ckpt_dir))
            elif name == "t3":
                shape_random_t3(model)
            # The full state_dict, not the checkpoint file: it also carries whatever the
            # checkpoint leaves at its (seeded) initial value.
            weights.append(self.workdir / WEIGHTS_FILE.format(model=name))
            torch.save(model.state_dict(), weights[-1])
        inputs = self.make_inputs(size, components, seed)
        if "t3" in self.models:
            import soundfile

            soundfile.write(self.workdir / REFERENCE_WAV, inputs["ref_24k"].numpy(), S3GEN_SR, subtype="FLOAT")
            tokenizer = Path(ckpt_dir, TOKENIZER_FILE) if ckpt_dir is not None else None
            if tokenizer is not None and tokenizer.is_file():
                (self.workdir / TOKENIZER_FILE).write_bytes(tokenizer.read_bytes())
            else:
                write_tokenizer(self.workdir / TOKENIZER_FILE)
            if any(workload.component(name).pipeline for name in components):
                inputs["pipeline"] = {"tokens": size["tts_tokens"], "chunk": size["stream_chunk_tokens"],
                                      "context": size["stream_context_tokens"]}
            if "t3" in components:
                inputs["t3"] = self.make_t3_inputs(size, seed)
        torch.save(inputs, self.workdir / INPUTS_FILE)
        return {"weights": [str(path) for path in weights]}

    def make_inputs(self, size: dict, components: list[str], seed: int) -> dict[str, Any]:
        generator = torch.Generator().manual_seed(seed)
        inputs: dict[str, Any] = {
            "speech_16k": synthetic_speech(round(size["speech_seconds"] * SPEECH_SR), SPEECH_SR, generator),
            "ref_24k": synthetic_speech(size["ref_samples"], S3GEN_SR, generator),
        }
        if "s3gen" in self.models:
            s3gen = self.models["s3gen"]
            mel_clip = synthetic_speech(round(size["mel_seconds"] * S3GEN_SR), S3GEN_SR, generator)
            inputs["mel"] = s3gen.mel_extractor(mel_clip[None].to(self.device)).cpu()
            from chatterbox.models.s3tokenizer import SPEECH_VOCAB_SIZE

            token_shape = (1, size["speech_tokens"])
            inputs["speech_tokens"] = torch.randint(0, SPEECH_VOCAB_SIZE, token_shape, generator=generator)
            if {"flow", "s3gen"} & set(components):
                ref_dict = s3gen.embed_ref(inputs["ref_24k"].to(self.device), S3GEN_SR)
                inputs["ref_dict"] = {k: v.detach().cpu().clone() if torch.is_tensor(v) else v
                                      for k, v in ref_dict.items()}
        return inputs

    def make_t3_inputs(self, size: dict, seed: int) -> dict[str, Any]:
        """The `t3` component's call: the pipeline's text, tokenized as `generate` tokenizes it (with the
        tokenizer the pipeline gets), and a seeded random conditioning: a unit speaker embedding and
        a prompt of random speech tokens as long as T3's config asks (no voice encoder, no S3 tokenizer)."""
        from chatterbox.models.tokenizers import EnTokenizer
        from chatterbox.tts import punc_norm

        t3 = self.models["t3"]
        text_tokens = EnTokenizer(str(self.workdir / TOKENIZER_FILE)).text_to_tokens(punc_norm(TTS_TEXT))
        if T3_SETTINGS["cfg_weight"] > 0:
            text_tokens = torch.cat([text_tokens, text_tokens], dim=0)  # conditional and unconditional rows
        text_tokens = torch.nn.functional.pad(text_tokens, (1, 0), value=t3.hp.start_text_token)
        text_tokens = torch.nn.functional.pad(text_tokens, (0, 1), value=t3.hp.stop_text_token)
        generator = torch.Generator().manual_seed(seed + 3)
        speaker = torch.randn(1, t3.hp.speaker_embed_size, generator=generator)
        prompt = torch.randint(0, SPEECH_TOKEN_LIMIT, (1, t3.hp.speech_cond_prompt_len), generator=generator)
        return {"text_tokens": text_tokens, "speaker_emb": speaker / speaker.norm(), "prompt_tokens": prompt,
                "emotion_adv": TTS_SETTINGS["exaggeration"] * torch.ones(1, 1, 1), "budget": size["t3_tokens"]}

    def load(self) -> dict:
        for name, model in self.models.items():
            state = torch.load(self.workdir / WEIGHTS_FILE.format(model=name), map_location="cpu", mmap=True,
                               weights_only=True)
            model.load_state_dict(state)
        self.inputs = to_device(torch.load(self.workdir / INPUTS_FILE, weights_only=True), self.device)
        if "pipeline" in self.inputs:
            from chatterbox.models.tokenizers import EnTokenizer
            from chatterbox.tts import ChatterboxTTS

            tts = ChatterboxTTS(self.models["t3"], self.models["s3gen"], self.models["voice_encoder"],
                                EnTokenizer(str(self.workdir / TOKENIZER_FILE)), self.device.type)
            self.pipeline = PipelineProbe(tts, self.inputs["pipeline"], self.synchronize)
        return {}

    def call(self, component: str, seed: int, outputs: str | None = None, memory: str | None = None,
             probes: str | None = None, force_tokens: str | None = None) -> dict:
        """One call with the RNG re-seeded, timed; with `memory`, measured by that measure (`benchmarks.memory`).

        `probes`: record T3's next-token logits during the call and save them there. `force_tokens`:
        T3 samples the speech tokens of that outputs file instead of its own (see `forced_sampling`)."""
        run = self.prepare_call(component)
        measured: dict = {}
        head: list[torch.Tensor] = []
        forced = None
        if force_tokens is not None:
            forced = torch.load(force_tokens, weights_only=True)["speech_tokens"]
        with contextlib.ExitStack() as stack:
            if probes is not None:
                stack.enter_context(record_head(self.models["t3"], head))
            sampled = stack.enter_context(forced_sampling(forced)) if forced is not None else None
            with self.memory_window(memory, measured):
                reseed(seed)
                self.synchronize()
                started = time.perf_counter()
                result = run()
                self.synchronize()
                seconds = time.perf_counter() - started
        if sampled is not None and sampled[0] != forced.numel():
            raise RuntimeError(f"teacher forcing: T3 sampled {sampled[0]} tokens, the original {forced.numel()}")
        tensors = flatten_outputs(result)
        answer = {"seconds": seconds,
                  "graph": {name: {"requires_grad": t.requires_grad, "inference": t.is_inference()}
                            for name, t in tensors.items()}}
        if workload.component(component).pipeline:
            answer["pipeline"] = self.pipeline.facts(seconds)
        if memory is not None:
            answer["memory"] = measured
        if workload.component(component).produces_audio:
            answer["audio_seconds"] = next(iter(tensors.values())).shape[-1] / S3GEN_SR
        if outputs is not None:
            torch.save({name: t.detach().cpu().clone() for name, t in tensors.items()}, outputs)
        if probes is not None:
            # One row per forward pass of the head: the prefill, then one per sampled token (and one after
            # the last, unless T3 stopped on its stop token). Each row: (batch: conditional, unconditional;
            # vocabulary).
            torch.save({"head": torch.stack(head) if head else torch.zeros(0)}, probes)
        return answer

    def memory_window(self, memory: str | None, measured: dict) -> contextlib.AbstractContextManager:
        if memory == TENSORS:
            return tensor_peak(self.device, measured)
        if memory == RESIDENT:
            return resident_peak(measured)
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def prepare_call(self, name: str) -> Callable[[], Any]:
        """The call to time, everything it needs made beforehand."""
        inputs = self.inputs
        s3gen = self.models.get("s3gen")
        # A fresh dict per call: S3Gen casts the ref_dict's entries in place.
        ref_dict = dict(inputs.get("ref_dict", {}))
        # embeds_from_wavs takes numpy clips on the host and moves them to the model's device itself.
        speech_clip = inputs["speech_16k"].cpu().numpy()
        t3_inputs = inputs.get("t3")
        calls: dict[str, Callable[[], Any]] = {
            "campplus": lambda: s3gen.speaker_encoder.inference([inputs["speech_16k"]]),
            "embed_ref": lambda: s3gen.embed_ref(inputs["ref_24k"], S3GEN_SR),
            "hift": lambda: s3gen.hift_inference(inputs["mel"]),
            "flow": lambda: s3gen.flow_inference(inputs["speech_tokens"], ref_dict=ref_dict, finalize=True),
            "s3gen": lambda: s3gen.inference(inputs["speech_tokens"], ref_dict=ref_dict),
            "voice_encoder": lambda: self.models["voice_encoder"].embeds_from_wavs([speech_clip],
                                                                                    sample_rate=SPEECH_SR),
            "t3": lambda: {"speech_tokens": self.models["t3"].inference(
                t3_cond=fresh_t3_cond(t3_inputs), text_tokens=t3_inputs["text_tokens"],
                max_new_tokens=t3_inputs["budget"], **T3_SETTINGS)},
        }
        if name in ("tts", "stream"):
            return self.pipeline.prepare(name, str(self.workdir / REFERENCE_WAV))
        return calls[name]


def fresh_t3_cond(inputs: dict[str, Any]) -> Any:
    """A new `T3Cond` per call: `T3.prepare_conditioning` stores the prompt's embedding in the one it gets."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    return T3Cond(speaker_emb=inputs["speaker_emb"], cond_prompt_speech_tokens=inputs["prompt_tokens"],
                  emotion_adv=inputs["emotion_adv"])


@contextlib.contextmanager
def record_head(t3: torch.nn.Module, rows: list[torch.Tensor]) -> Any:
    """Append the last position of every output of T3's speech head (the logits the next token is
    sampled from, before CFG) to `rows`, in the dtype the head gave them."""

    def hook(_module, _inputs, output):
        rows.append(output[:, -1, :].detach().cpu().clone())

    handle = t3.speech_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def forced_sampling(tokens: torch.Tensor) -> Any:
    """Teacher forcing: every `torch.multinomial` call in the block draws as usual, which advances the
    RNG exactly as the original's draw did (one exponential per probability, whatever their values),
    and then returns the next of `tokens` instead. T3 then computes each step's distribution after
    the original's tokens, and whatever follows T3 (S3Gen's noise) sees the same RNG state.
    Yields a one-element list: how many tokens were handed out."""
    real = torch.multinomial
    sequence = iter(tokens.reshape(-1).tolist())
    handed = [0]

    def multinomial(probabilities, num_samples, *args, **kwargs):
        drawn = real(probabilities, num_samples, *args, **kwargs)
        token = next(sequence, None)
        if token is None:
            raise RuntimeError(f"teacher forcing: T3 samples more than the original's {tokens.numel()} tokens")
        handed[0] += 1
        return torch.full_like(drawn, token)

    torch.multinomial = multinomial
    try:
        yield handed
    finally:
        torch.multinomial = real


class PipelineProbe:
    """A `ChatterboxTTS` whose stages are timed, with T3's token budget set.

    The package's own methods run; the probe wraps, on this one object, the
    calls `generate` and `generate_stream` make (`prepare_conditionals`,
    `t3.inference`, `inference_stream`, `s3gen.inference`) to time them, to
    keep the speech tokens T3 gave, and to pass the size's token budget
    where the package passes its fixed `max_new_tokens=1000`.
    """

    STAGES = ("conditioning", "t3", "s3gen")

    def __init__(self, tts: Any, settings: dict, synchronize: Callable[[], None]) -> None:
        self.tts = tts
        self.budget = settings["tokens"]
        self.chunk = settings["chunk"]
        self.context = settings["context"]
        self.synchronize = synchronize
        self.stages = dict.fromkeys(self.STAGES, 0.0)
        self.tokens: list[torch.Tensor] = []
        self.first_chunk: float | None = None
        self.chunk_samples: list[int] = []
        tts.prepare_conditionals = self._timed("conditioning", tts.prepare_conditionals)
        tts.s3gen.inference = self._timed("s3gen", tts.s3gen.inference)
        tts.t3.inference = self._timed("t3", tts.t3.inference, keep_tokens=True)
        if hasattr(tts, "inference_stream"):  # chatterbox-streaming
            tts.inference_stream = self._timed_stream(tts.inference_stream)

    def _timed(self, stage: str, method: Callable, keep_tokens: bool = False) -> Callable:
        def timed(*args, **kwargs):
            if keep_tokens:
                kwargs["max_new_tokens"] = self.budget
            self.synchronize()
            started = time.perf_counter()
            result = method(*args, **kwargs)
            self.synchronize()
            self.stages[stage] += time.perf_counter() - started
            if keep_tokens:
                self.tokens.append(result.detach().clone())
            return result

        return timed

    def _timed_stream(self, method: Callable) -> Callable:
        """T3's streaming generator: the time spent inside it is T3's, the time between its chunks is not."""

        def timed(*args, **kwargs):
            kwargs["max_new_tokens"] = self.budget
            chunks = method(*args, **kwargs)
            while True:
                self.synchronize()
                started = time.perf_counter()
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                finally:
                    self.synchronize()
                    self.stages["t3"] += time.perf_counter() - started
                self.tokens.append(chunk.detach().clone())
                yield chunk

        return timed

    def prepare(self, name: str, reference: str) -> Callable[[], Any]:
        def generate():
            self._reset()
            waveform = self.tts.generate(TTS_TEXT, audio_prompt_path=reference, **TTS_SETTINGS)
            return {"waveform": waveform, "speech_tokens": torch.cat(self.tokens, dim=-1)}

        def generate_stream():
            self._reset()
            started = time.perf_counter()
            chunks = []
            for audio, _metrics in self.tts.generate_stream(TTS_TEXT, audio_prompt_path=reference,
                                                            chunk_size=self.chunk, context_window=self.context,
                                                            print_metrics=False, **TTS_SETTINGS):
                if self.first_chunk is None:
                    self.synchronize()
                    self.first_chunk = time.perf_counter() - started
                chunks.append(audio)
            self.chunk_samples = [chunk.shape[-1] for chunk in chunks]
            outputs = {"concatenated": torch.cat(chunks, dim=-1) if chunks else torch.zeros(1, 0)}
            outputs.update({f"chunk.{index:03d}": chunk for index, chunk in enumerate(chunks)})
            outputs["speech_tokens"] = torch.cat(self.tokens, dim=-1)
            return outputs

        return {"tts": generate, "stream": generate_stream}[name]

    def _reset(self) -> None:
        self.stages = dict.fromkeys(self.STAGES, 0.0)
        self.tokens = []
        self.first_chunk = None
        self.chunk_samples = []

    def facts(self, seconds: float) -> dict:
        """What the last call did: seconds per stage (the rest: tokenizing, watermarking, ...), chunks."""
        stages = dict(self.stages)
        stages["other"] = max(seconds - sum(stages.values()), 0.0)
        facts = {"stages": stages, "speech_tokens": int(sum(t.shape[-1] for t in self.tokens))}
        if self.first_chunk is not None or self.chunk_samples:
            facts.update(first_chunk_seconds=self.first_chunk, chunk_samples=self.chunk_samples)
        return facts


def make_t3(layers: int | None) -> torch.nn.Module:
    """T3 in its default config (English, Llama 520M), random init, no download; with `layers`, only
    that many of its transformer layers (a config of that name is added to the package's own table)."""
    from chatterbox.models.t3 import T3  # imports transformers: only when the pipeline runs
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS
    from chatterbox.models.t3.modules.t3_config import T3Config

    config = T3Config()
    if layers is not None:
        name = f"{config.llama_config_name}_{layers}_layers"
        LLAMA_CONFIGS[name] = {**LLAMA_CONFIGS[config.llama_config_name], "num_hidden_layers": layers}
        config.llama_config_name = name
    return T3(config)


def shape_random_t3(t3: torch.nn.Module) -> None:
    """Make the seeded random T3 sample speech tokens only, as the trained one does.

    A random head gives the ids that are not speech tokens (6561 and up:
    start and stop of speech, and 1,631 unused ids) a fifth of the
    probability; chatterbox-tts filters them out after T3, but
    chatterbox-streaming hands them to S3Gen, whose embedding then fails
    (`index out of range`). Their rows of the head are zeroed, and the final
    norm is scaled so that the speech-token logits spread wide enough for
    top-p and min-p to drop the zeroed ones. With no stop token, T3 runs to
    the token budget. Done once, in the maker: both packages load the result.
    """
    with torch.no_grad():
        t3.speech_head.weight[SPEECH_TOKEN_LIMIT:] = 0.0
        t3.tfmr.norm.weight.mul_(T3_SHARPEN)


def write_tokenizer(path: Path) -> None:
    """A character-level text tokenizer in the `tokenizers` JSON format `EnTokenizer` loads.

    The real one (`tokenizer.json` of the checkpoint) comes from a hub this
    bench does not reach. Ids stay below T3's text vocabulary (704).
    """
    specials = ["[START]", "[STOP]", "[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]"]
    characters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-"
    vocab = {token: index for index, token in enumerate([*specials, *characters])}
    spec = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab[token], "content": token, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for token in specials],
        "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": []},
    }
    path.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")


def load_checkpoint(name: str, model: torch.nn.Module, ckpt_dir: Path) -> None:
    """Real chatterbox weights, loaded the way `ChatterboxTTS.from_local` loads them."""
    from safetensors.torch import load_file

    state = load_file(ckpt_dir / CHECKPOINT_FILES[name])
    if name == "t3" and "model" in state:
        state = state["model"][0]
    # from_local loads s3gen non-strictly: the checkpoint lacks buffers S3Gen computes itself.
    model.load_state_dict(state, strict=name != "s3gen")


def synthetic_speech(samples: int, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """A voiced, syllable-paced signal with a wandering pitch: deterministic and speech-like enough
    for the tokenizer, the speaker encoders and the trimming in the voice encoder."""
    t = torch.arange(samples, dtype=torch.float64) / sample_rate
    drift = torch.cumsum(torch.randn(samples, generator=generator, dtype=torch.float64), 0) / sample_rate ** 0.5
    f0 = 140 + 30 * torch.sin(2 * torch.pi * 0.7 * t) + 5 * drift
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / sample_rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 11))
    syllables = (0.55 + 0.45 * torch.sin(2 * torch.pi * 4 * t)) ** 2
    noise = 0.02 * torch.randn(samples, generator=generator, dtype=torch.float64)
    signal = syllables * voiced + noise
    return (0.5 * signal / signal.abs().max()).float()


def flatten_outputs(result: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a call's result, named by where it sits (`0`, `embedding`, ...)."""
    if isinstance(result, np.ndarray):
        result = torch.from_numpy(result)
    if torch.is_tensor(result):
        return {prefix or "output": result}
    if isinstance(result, dict):
        items = result.items()
    elif isinstance(result, (tuple, list)):
        items = enumerate(result)
    elif result is None:
        return {}
    else:
        raise TypeError(f"cannot compare an output of type {type(result).__name__}")
    flat: dict[str, torch.Tensor] = {}
    for key, value in items:
        flat.update(flatten_outputs(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def to_device(value: Any, device: torch.device) -> Any:
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def reseed(seed: int) -> None:
    """Same seed before every call: the vocoder's noise and the flow's initial noise then match."""
    torch.manual_seed(seed)  # also seeds every CUDA device
    np.random.seed(seed)
    random.seed(seed)


def environment(device: torch.device) -> dict:
    """What the numbers were measured on."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_model()
    allocator = {key: os.environ[key] for key in ALLOCATOR_ENV if key in os.environ}
    return {"device_name": name, "device": device.type, "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "allocator": allocator}


def _cpu_model() -> str:
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        match = None
    if match:
        return match.group(1).strip()
    import platform

    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
