"""What the benchmark runs: the components and the input sizes.

Plain data, so the command line can validate options without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

S3GEN_SR = 24_000  # S3Gen's reference and output sample rate
SPEECH_SR = 16_000  # CAMPPlus, the S3 tokenizer and the voice encoder
TOKENS_PER_SECOND = 25  # S3 speech tokens (each becomes two mel frames)
# Sample offset that keeps the reference clip off the 40 ms (960-sample) grid of
# the tokenizer, where `S3Gen.embed_ref` trims the tokens in place.
REF_OFFSET_SAMPLES = 500


@dataclass(frozen=True)
class Component:
    name: str
    call: str  # what one timed call is, for the report
    models: tuple[str, ...]  # models the worker must build
    produces_audio: bool  # its first output is a 24 kHz waveform (it has a real-time factor)
    pipeline: bool = False  # a whole `ChatterboxTTS` call: timed by stage
    # A long call (T3 samples token by token): its first, untimed call also measures the peak tensor
    # memory, and it gets no resident-memory call.
    long: bool = False


COMPONENTS: tuple[Component, ...] = (
    Component("campplus", "CAMPPlus.inference(speech clip)", ("s3gen",), False),
    Component("embed_ref", "S3Gen.embed_ref(reference clip)", ("s3gen",), False),
    Component("hift", "S3Gen.hift_inference(mel)", ("s3gen",), True),
    Component("flow", "S3Gen.flow_inference(speech tokens, ref_dict)", ("s3gen",), False),
    Component("s3gen", "S3Gen.inference(speech tokens, ref_dict)", ("s3gen",), True),
    Component("voice_encoder", "VoiceEncoder.embeds_from_wavs(speech clip)", ("voice_encoder",), False),
    Component("t3", "T3.inference(text tokens, T3Cond, max_new_tokens=budget)", ("t3",), False, long=True),
    Component("tts", "ChatterboxTTS.generate(text, audio_prompt_path=reference clip)",
              ("t3", "s3gen", "voice_encoder"), True, pipeline=True, long=True),
    Component("stream", "ChatterboxTTS.generate_stream(text, audio_prompt_path=reference clip, chunk_size=...)",
              ("t3", "s3gen", "voice_encoder"), True, pipeline=True, long=True),
)
ALL_COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)
# What a plain `bench` runs (chatterbox-tts): the six components, neither T3 nor the pipeline.
COMPONENT_NAMES = ALL_COMPONENT_NAMES[:6]

# The packages `bench --package` knows: the components each can run, and those it runs by default.
# `t3` and `tts` are opt-in for chatterbox-tts: they build T3, which samples token by token (at smoke
# size, 10 layers: about 0.25 s a token on 2 idle CPU cores; the shipped 30 layers, three times that),
# and take longer than the six components together. chatterbox-streaming runs in a virtual environment
# of its own (`benchmarks.streaming_env`), which it needs for its pins (transformers 4.46.3, ...).
STREAMING_PACKAGE = "chatterbox-streaming"
STREAMING_VERSION = "0.1.2"


@dataclass(frozen=True)
class Package:
    name: str
    components: tuple[str, ...]
    default: tuple[str, ...]


PACKAGES = {
    "chatterbox-tts": Package("chatterbox-tts", (*COMPONENT_NAMES, "t3", "tts"), COMPONENT_NAMES),
    STREAMING_PACKAGE: Package(STREAMING_PACKAGE, ("tts", "stream"), ("stream",)),
}

# What the pipeline components say, and how they sample: the settings of `generate` and
# `generate_stream` as shipped, with the token budget (`Size.tts_tokens`) in place of their 1000.
TTS_TEXT = "Hello there, this is a test of the rewritten pipeline, with a comma and a question?"
TTS_SETTINGS = {"exaggeration": 0.5, "cfg_weight": 0.5, "temperature": 0.8}
# How the `t3` component samples: `generate`'s call of `T3.inference` as shipped (its defaults for
# repetition_penalty, min_p and top_p; TTS_SETTINGS' cfg_weight and temperature), with the size's budget.
T3_SETTINGS = {"temperature": 0.8, "cfg_weight": 0.5, "repetition_penalty": 1.2, "min_p": 0.05, "top_p": 1.0}
# The ids the T3 head may give that are not speech tokens (start/stop of speech and unused ids).
SPEECH_TOKEN_LIMIT = 6561


# The files of the real weights in a chatterbox checkpoint folder, per model.
CHECKPOINT_FILES = {"s3gen": "s3gen.safetensors", "voice_encoder": "ve.safetensors", "t3": "t3_cfg.safetensors"}


def component(name: str) -> Component:
    return next(c for c in COMPONENTS if c.name == name)


@dataclass(frozen=True)
class Size:
    name: str
    speech_seconds: float  # 16 kHz clip for CAMPPlus and the voice encoder
    ref_seconds: float  # 24 kHz reference for embed_ref, REF_OFFSET_SAMPLES short of this
    mel_seconds: float  # audio the HiFT mel stands for
    output_seconds: float  # audio the flow and S3Gen produce from speech tokens
    rounds: int  # default number of timed rounds
    tts_tokens: int  # speech-token budget of T3 in `tts` and `stream` (generate's max_new_tokens)
    t3_tokens: int  # speech-token budget of the `t3` component (T3.inference's max_new_tokens)
    stream_chunk_tokens: int  # generate_stream's chunk_size
    stream_context_tokens: int  # generate_stream's context_window
    # Transformer layers of the seeded random T3 (None: the shipped 30). Real weights (`--ckpt-dir`)
    # always get the shipped T3.
    t3_layers: int | None

    @property
    def ref_samples(self) -> int:
        return round(self.ref_seconds * S3GEN_SR) - REF_OFFSET_SAMPLES

    @property
    def speech_tokens(self) -> int:
        return round(self.output_seconds * TOKENS_PER_SECOND)

    def to_json(self) -> dict:
        return {**asdict(self), "ref_samples": self.ref_samples, "speech_tokens": self.speech_tokens}


SIZES = {
    # The whole run, both packages and model construction included, fits in
    # 4 minutes on 2 CPU cores.
    # `tts`, `stream` and `t3` at this size: 25 speech tokens (1 s of audio; `stream` in chunks of 10),
    # by a T3 of 10 layers: a third of the time, and chatterbox-streaming's alignment analyzer watches
    # layer 9, so every code path of the shipped T3 still runs. One `t3` call took 6.4 s here (idle).
    "smoke": Size("smoke", speech_seconds=2.0, ref_seconds=2.0, mel_seconds=1.0, output_seconds=1.0, rounds=3,
                  tts_tokens=25, t3_tokens=25, stream_chunk_tokens=10, stream_context_tokens=50, t3_layers=10),
    # What chatterbox does for real: a 10 s reference (its DEC_COND_LEN) and 20 s of speech;
    # generate_stream's own chunk size and context window.
    "full": Size("full", speech_seconds=10.0, ref_seconds=10.0, mel_seconds=20.0, output_seconds=20.0, rounds=5,
                 tts_tokens=500, t3_tokens=500, stream_chunk_tokens=25, stream_context_tokens=50, t3_layers=None),
}


# ---------------------------------------------------------------------------
# --autocast: the rewritten tree also gets the opt-in `autocast` transform, whose code reads
# AUTOCAST_ENV when it is imported. A third worker runs that tree with the switch on; the fp32
# rewrite is the same tree with the switch off.

AUTOCAST_TRANSFORM = "autocast"
AUTOCAST_ENV = "CHATTERBOX_AUTOCAST"
AUTOCAST_MODES = ("off", "bf16", "fp16")


@dataclass(frozen=True)
class Measure:
    """A quality figure of one side's outputs against the original's: what --quality-gate names."""

    name: str  # the id --quality-gate takes
    label: str  # in the report
    unit: str
    higher_is_better: bool
    gate: float | None  # the default threshold with --ckpt-dir; None: reported, gated only when asked
    low: float = -math.inf  # the values a gate may take
    high: float = math.inf
    fmt: str = "{:.3g}"

    def passes(self, value: float, threshold: float) -> bool:
        """Whether `value` meets `threshold` (NaN never does)."""
        return value >= threshold if self.higher_is_better else value <= threshold

    def describe_gate(self, threshold: float) -> str:
        return f"{self.name} {'>=' if self.higher_is_better else '<='} {threshold:g}"


# The default gates, for the real weights (--ckpt-dir). None could be calibrated on chatterbox's own
# weights here (no checkpoint was available); each comes from published practice:
MEASURES = {measure.name: measure for measure in (
    # T3 is a Llama LM over speech tokens; an LM's precision loss is measured as llama.cpp measures
    # quantization (tools/perplexity/README.md, LLaMA 3 8B against FP16, teacher-forced on the same
    # tokens): mean KL divergence of the next-token distributions q8_0 0.0014, q6_K 0.0055, q5_K_M
    # 0.0108, q4_K_M 0.031 nats; top-1 ("same top p") q8_0 97.7%, q6_K 96.0%, q4_K_M 91.9%. The gates
    # ask for no more loss than a 5-bit quantization (KL) and a 4-bit one (top-1: T3's speech-token
    # distributions are flatter than a text LM's, so near-ties flip more often).
    Measure("top1", "top-1 agreement", "", True, 0.90, 0.0, 1.0, "{:.3f}"),
    Measure("kl", "mean KL divergence", "nats", False, 0.01, 0.0, fmt="{:.2g}"),
    # The flow (conditional flow matching) to a log-mel. Its bf16 autocast on CosyVoice3, the same
    # architecture, measured a mel SNR of 30 dB (about 3% relative error) and a correlation of 0.9986
    # (sglang-omni PR #1715); the gates leave headroom over that: 5% relative L1, cosine 0.999
    # (1 - cosine ~ relative error^2 / 2).
    Measure("mel_rel_l1", "mel relative L1", "", False, 0.05, 0.0, fmt="{:.2g}"),
    Measure("mel_cosine", "mel cosine similarity", "", True, 0.999, -1.0, 1.0, "{:.5f}"),
    # Waveforms (HiFT, S3Gen, the pipeline). Log-spectral distance: 1 dB is the classic transparency
    # threshold of spectral distortion in speech coding (Paliwal & Atal, 1993, "Efficient vector
    # quantization of LPC parameters at 24 bits/frame"). Sample-level SNR has no default gate: vocoder
    # evaluation does not use it (HiFi-GAN, BigVGAN report MCD, PESQ, multi-resolution STFT), because
    # a harmonic source integrates its f0 into a phase, so any numerical change drifts the phase; a
    # bf16 HiFT on CosyVoice3 kept its mel at 30 dB SNR while the spectral magnitude fell to 13 dB and
    # the waveform decorrelated (sglang-omni PR #1715). It is reported, and --quality-gate snr_db=X sets one.
    Measure("snr_db", "SNR", "dB", True, None, fmt="{:.1f}"),
    Measure("lsd_db", "log-spectral distance", "dB", False, 1.0, 0.0, fmt="{:.2f}"),
    # Speaker embeddings (CAMPPlus, the voice encoder): TTS evaluation compares voices by the cosine
    # similarity of speaker embeddings (SIM in VALL-E, NaturalSpeech 3, CosyVoice) and reports it to two
    # decimals; 0.99 keeps the autocast embedding within that resolution of the fp32 one.
    Measure("embedding_cosine", "speaker-embedding cosine similarity", "", True, 0.99, -1.0, 1.0, "{:.5f}"),
    # Discrete tokens computed from audio (the S3 tokenizer in embed_ref): a quantizer's decision, like an
    # LM's top-1; the same bar as top1 (llama.cpp: 4-bit quantization keeps 91.9% of the top-1 choices).
    Measure("token_agreement", "token agreement", "", True, 0.90, 0.0, 1.0, "{:.3f}"),
)}


@dataclass(frozen=True)
class Quality:
    """What a component is judged on when it cannot be equivalent within 1e-5 (the autocast side)."""

    # (measure, the output it measures); "next-token logits": T3's, captured during the call.
    pairs: tuple[tuple[str, str], ...]
    # Sampled speech tokens: the side is measured on a call that samples the original's tokens
    # (teacher forcing), or its own sampling would compare different sentences.
    teacher_forced: bool = False

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(measure for measure, _ in self.pairs)


T3_LOGITS = "next-token logits"
_WAVEFORM = ("snr_db", "lsd_db")
QUALITY = {
    "campplus": Quality((("embedding_cosine", "output"),)),
    "embed_ref": Quality((("token_agreement", "prompt_token"), ("mel_rel_l1", "prompt_feat"),
                          ("mel_cosine", "prompt_feat"), ("embedding_cosine", "embedding"))),
    "hift": Quality(tuple((m, "0") for m in _WAVEFORM)),  # hift_inference: (waveform, source)
    "flow": Quality((("mel_rel_l1", "output"), ("mel_cosine", "output"))),
    "s3gen": Quality(tuple((m, "0") for m in _WAVEFORM)),  # S3Gen.inference: (waveform, source)
    "voice_encoder": Quality((("embedding_cosine", "output"),)),
    "t3": Quality((("top1", T3_LOGITS), ("kl", T3_LOGITS)), teacher_forced=True),
    "tts": Quality(tuple((m, "waveform") for m in _WAVEFORM), teacher_forced=True),
    "stream": Quality(tuple((m, "concatenated") for m in _WAVEFORM), teacher_forced=True),
}


def parse_quality_gates(value: str, components: list[str]) -> dict[str, float]:
    """`NAME=VALUE,...` to {name: threshold}; NAME is a measure (`lsd_db`) or `component.measure`
    (`hift.lsd_db`). Raises ValueError with a message that names what is wrong."""
    gates: dict[str, float] = {}
    measured = {name for c in components if c in QUALITY for name in QUALITY[c].measures}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, number = part.partition("=")
        key, number = key.strip(), number.strip()
        if not sep or not key or not number:
            raise ValueError(f"`{part}`: expected NAME=VALUE")
        scope, _, name = key.rpartition(".")
        if name not in MEASURES:
            raise ValueError(f"`{key}`: unknown measure {name!r} (known: {', '.join(MEASURES)})")
        if scope:
            if scope not in QUALITY or name not in QUALITY[scope].measures:
                owners = [c for c, quality in QUALITY.items() if name in quality.measures]
                raise ValueError(f"`{key}`: component {scope!r} has no {name} (measured for: {', '.join(owners)})")
            if scope not in components:
                raise ValueError(f"`{key}`: {scope} is not among the components run ({', '.join(components)})")
        elif name not in measured:
            owners = [c for c, quality in QUALITY.items() if name in quality.measures]
            raise ValueError(f"`{key}`: no component run measures {name} (it is measured for: {', '.join(owners)})")
        try:
            threshold = float(number)
        except ValueError:
            threshold = math.nan
        if not math.isfinite(threshold):
            raise ValueError(f"`{part}`: {number!r} is not a finite number")
        measure = MEASURES[name]
        if not measure.low <= threshold <= measure.high:
            raise ValueError(f"`{part}`: {name} lies in [{measure.low:g}, {measure.high:g}]")
        if key in gates:
            raise ValueError(f"`{key}` given twice")
        gates[key] = threshold
    if not gates:
        raise ValueError("no NAME=VALUE given")
    return gates


def quality_gates(component_name: str, overrides: dict[str, float]) -> dict[str, float | None]:
    """The thresholds a component is judged against: its own override, else the measure's, else the default."""
    measures = QUALITY[component_name].measures
    return {name: overrides.get(f"{component_name}.{name}", overrides.get(name, MEASURES[name].gate))
            for name in measures}
