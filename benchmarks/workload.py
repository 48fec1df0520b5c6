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


COMPONENTS: tuple[Component, ...] = (
    Component("campplus", "CAMPPlus.inference(speech clip)", ("s3gen",), False),
    Component("embed_ref", "S3Gen.embed_ref(reference clip)", ("s3gen",), False),
    Component("hift", "S3Gen.hift_inference(mel)", ("s3gen",), True),
    Component("flow", "S3Gen.flow_inference(speech tokens, ref_dict)", ("s3gen",), False),
    Component("s3gen", "S3Gen.inference(speech tokens, ref_dict)", ("s3gen",), True),
    Component("voice_encoder", "VoiceEncoder.embeds_from_wavs(speech clip)", ("voice_encoder",), False),
)
COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)


# The files of the real weights in a chatterbox checkpoint folder, per model.
CHECKPOINT_FILES = {"s3gen": "s3gen.safetensors", "voice_encoder": "ve.safetensors"}


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
    "smoke": Size("smoke", speech_seconds=2.0, ref_seconds=2.0, mel_seconds=1.0, output_seconds=1.0, rounds=3),
    # What chatterbox does for real: a 10 s reference (its DEC_COND_LEN) and 20 s of speech.
    "full": Size("full", speech_seconds=10.0, ref_seconds=10.0, mel_seconds=20.0, output_seconds=20.0, rounds=5),
}
