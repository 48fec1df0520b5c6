"""What the benchmark runs: the components and the input sizes.

Plain data, so the command line can validate options without importing torch.
"""

from __future__ import annotations

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
    pipeline: bool = False  # a whole `ChatterboxTTS` call: timed by stage, peak tensor memory only


COMPONENTS: tuple[Component, ...] = (
    Component("campplus", "CAMPPlus.inference(speech clip)", ("s3gen",), False),
    Component("embed_ref", "S3Gen.embed_ref(reference clip)", ("s3gen",), False),
    Component("hift", "S3Gen.hift_inference(mel)", ("s3gen",), True),
    Component("flow", "S3Gen.flow_inference(speech tokens, ref_dict)", ("s3gen",), False),
    Component("s3gen", "S3Gen.inference(speech tokens, ref_dict)", ("s3gen",), True),
    Component("voice_encoder", "VoiceEncoder.embeds_from_wavs(speech clip)", ("voice_encoder",), False),
    Component("tts", "ChatterboxTTS.generate(text, audio_prompt_path=reference clip)",
              ("t3", "s3gen", "voice_encoder"), True, pipeline=True),
    Component("stream", "ChatterboxTTS.generate_stream(text, audio_prompt_path=reference clip, chunk_size=...)",
              ("t3", "s3gen", "voice_encoder"), True, pipeline=True),
)
ALL_COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)
# What a plain `bench` runs (chatterbox-tts): the six components, not the pipeline.
COMPONENT_NAMES = ALL_COMPONENT_NAMES[:6]

# The packages `bench --package` knows: the components each can run, and those it runs by default.
# `tts` (the whole pipeline, T3 included) is opt-in for chatterbox-tts: it builds the 0.5 B T3 and
# takes longer than the six components together. chatterbox-streaming runs in a virtual environment
# of its own (`benchmarks.streaming_env`), which it needs for its pins (transformers 4.46.3, ...).
STREAMING_PACKAGE = "chatterbox-streaming"
STREAMING_VERSION = "0.1.2"


@dataclass(frozen=True)
class Package:
    name: str
    components: tuple[str, ...]
    default: tuple[str, ...]


PACKAGES = {
    "chatterbox-tts": Package("chatterbox-tts", (*COMPONENT_NAMES, "tts"), COMPONENT_NAMES),
    STREAMING_PACKAGE: Package(STREAMING_PACKAGE, ("tts", "stream"), ("stream",)),
}

# What the pipeline components say, and how they sample: the settings of `generate` and
# `generate_stream` as shipped, with the token budget (`Size.tts_tokens`) in place of their 1000.
TTS_TEXT = "Hello there, this is a test of the rewritten pipeline, with a comma and a question?"
TTS_SETTINGS = {"exaggeration": 0.5, "cfg_weight": 0.5, "temperature": 0.8}
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
    # `tts` and `stream` at this size: 25 speech tokens (1 s of audio), streamed in chunks of 10, by a
    # T3 of 10 layers: a third of the time, and chatterbox-streaming's alignment analyzer watches
    # layer 9, so every code path of the shipped T3 still runs.
    "smoke": Size("smoke", speech_seconds=2.0, ref_seconds=2.0, mel_seconds=1.0, output_seconds=1.0, rounds=3,
                  tts_tokens=25, stream_chunk_tokens=10, stream_context_tokens=50, t3_layers=10),
    # What chatterbox does for real: a 10 s reference (its DEC_COND_LEN) and 20 s of speech;
    # generate_stream's own chunk size and context window.
    "full": Size("full", speech_seconds=10.0, ref_seconds=10.0, mel_seconds=20.0, output_seconds=20.0, rounds=5,
                 tts_tokens=500, stream_chunk_tokens=25, stream_context_tokens=50, t3_layers=None),
}
