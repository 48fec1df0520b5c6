"""How close a side's outputs come to the original's when they cannot be the same within 1e-5 (--autocast).

Small functions of two tensors, the original's first (the reference), each in
float64 so that the figure itself adds no rounding. Which component is judged
on which output and measure, and the default gates, are plain data in
`workload` (`QUALITY`, `MEASURES`), so the command line checks --quality-gate
without importing torch.

- Waveforms: `snr_db` (signal energy over error energy, dB) and
  `log_spectral_distance_db` (RMS over frequency of the difference of the two
  power spectra in dB, averaged over STFT frames).
- Mels: `relative_l1` (sum |error| / sum |reference|) and `cosine_similarity`;
  speaker embeddings: `cosine_similarity`; discrete tokens computed from audio:
  `agreement` (the fraction that are equal).
- Next-token distributions (T3): `top1_agreement` and `mean_kl_divergence`
  (KL(reference || side) of the softmax of the logits, in nats, averaged over
  the steps), as llama.cpp measures a quantized model against its base.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from .workload import MEASURES, QUALITY, T3_LOGITS

# STFT of the log-spectral distance: 1024-point Hann frames (43 ms at 24 kHz), hop 256.
LSD_N_FFT = 1024
LSD_HOP = 256
# Power below this, relative to the reference's peak bin, counts as this: silence and the
# empty top octave would otherwise dominate the distance with the logarithm of rounding noise.
LSD_FLOOR_DB = -80.0


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """10·log10(Σ reference² / Σ (estimate − reference)²): inf for identical signals."""
    reference, estimate = _same_shape(reference, estimate)
    error = (estimate - reference).square().sum().item()
    signal = reference.square().sum().item()
    if error == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / error)


def log_spectral_distance_db(reference: torch.Tensor, estimate: torch.Tensor, n_fft: int = LSD_N_FFT,
                             hop: int = LSD_HOP, floor_db: float = LSD_FLOOR_DB) -> float:
    """Mean over frames of the RMS over frequency of 10·log10(P_reference) − 10·log10(P_estimate), in dB.

    P is the STFT power of each signal (flattened to one channel), floored at
    `floor_db` below the reference's peak bin. 0 for identical signals.
    """
    reference, estimate = _same_shape(reference, estimate)
    reference, estimate = reference.reshape(-1), estimate.reshape(-1)
    if reference.numel() < 2:
        raise ValueError(f"a log-spectral distance needs at least 2 samples, not {reference.numel()}")
    if reference.numel() <= n_fft:  # a short signal: one frame of the largest power of two that fits
        n_fft = 1 << (reference.numel().bit_length() - 1)
        hop = max(n_fft // 4, 1)
    window = torch.hann_window(n_fft, dtype=torch.float64)

    def power(signal: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(signal, n_fft, hop, window=window, center=False, return_complex=True)
        return spectrum.abs().square()  # (frequency, frame)

    p_reference, p_estimate = power(reference), power(estimate)
    floor = max(p_reference.max().item() * 10 ** (floor_db / 10), torch.finfo(torch.float64).tiny)
    difference = 10 * (p_reference.clamp_min(floor).log10() - p_estimate.clamp_min(floor).log10())
    return difference.square().mean(dim=0).sqrt().mean().item()


def relative_l1(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """Σ |estimate − reference| / Σ |reference|: 0 for identical tensors."""
    reference, estimate = _same_shape(reference, estimate)
    error = (estimate - reference).abs().sum().item()
    return error / reference.abs().sum().item() if error else 0.0


def cosine_similarity(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """⟨reference, estimate⟩ / (‖reference‖·‖estimate‖) over all elements: 1 for identical tensors."""
    reference, estimate = _same_shape(reference, estimate)
    reference, estimate = reference.reshape(-1), estimate.reshape(-1)
    return (reference @ estimate / (reference.norm() * estimate.norm())).item()


def agreement(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    """The fraction of elements that are equal (discrete tokens): 1 for identical tensors."""
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: {list(reference.shape)} and {list(estimate.shape)}")
    return (reference == estimate).double().mean().item() if reference.numel() else 1.0


def top1_agreement(reference_logits: torch.Tensor, estimate_logits: torch.Tensor) -> float:
    """The fraction of steps (rows) whose most likely token is the same in both."""
    reference, estimate = _same_shape(reference_logits, estimate_logits)
    return (reference.argmax(dim=-1) == estimate.argmax(dim=-1)).double().mean().item()


def mean_kl_divergence(reference_logits: torch.Tensor, estimate_logits: torch.Tensor) -> float:
    """Mean over steps (rows) of KL(softmax(reference) || softmax(estimate)), in nats."""
    reference, estimate = _same_shape(reference_logits, estimate_logits)
    log_p, log_q = reference.log_softmax(dim=-1), estimate.log_softmax(dim=-1)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), 0.0)  # 0·log 0 = 0
    return terms.sum(dim=-1).mean().item()


def cfg_logits(head: torch.Tensor, cfg_weight: float) -> torch.Tensor:
    """T3's next-token logits from its speech head's last position at each step, (steps, 2, vocabulary)
    with the conditional row first: cond + cfg_weight · (cond − uncond), as `T3.inference` combines them
    before its repetition penalty, temperature and min-p / top-p filters."""
    head = head.double()
    cond, uncond = head[:, 0], head[:, 1]
    return cond + cfg_weight * (cond - uncond)


FUNCTIONS = {
    "top1": top1_agreement,
    "kl": mean_kl_divergence,
    "mel_rel_l1": relative_l1,
    "mel_cosine": cosine_similarity,
    "snr_db": snr_db,
    "lsd_db": log_spectral_distance_db,
    "embedding_cosine": cosine_similarity,
    "token_agreement": agreement,
}


def _same_shape(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: {list(reference.shape)} and {list(estimate.shape)}")
    return reference.detach().double(), estimate.detach().double()


# ---------------------------------------------------------------------------
# One side of one component, measured and judged


@dataclass
class QualityResult:
    measures: dict[str, float]  # measure name -> value (NaN when it could not be measured)
    gates: dict[str, float | None]  # measure name -> threshold it is judged against (None: not gated)
    judged: bool  # False with random weights: the figures are reported, only problems fail
    problems: list[str] = field(default_factory=list)  # a wrong dtype or shape, NaN/inf, a missing output
    failed: list[str] = field(default_factory=list)  # the gates missed (only when judged)
    note: str = ""  # why it is not judged
    sampling: str | None = None  # where T3 samples: which tokens the measured call sampled

    @property
    def passed(self) -> bool:
        return not self.problems and not self.failed

    def to_json(self) -> dict:
        return {**asdict(self), "passed": self.passed,
                "measures": {name: _json_number(value) for name, value in self.measures.items()}}


def _json_number(value: float) -> float | str:
    """JSON has no infinities or NaN: those become the strings "inf", "-inf", "nan"."""
    return value if math.isfinite(value) else str(value)


def output_problems(original: dict[str, torch.Tensor], side: dict[str, torch.Tensor]) -> list[str]:
    """What makes a side's outputs unusable whatever the tolerance: a missing output, another dtype
    or shape, NaN or infinity where the original's values are finite."""
    problems = []
    for name, reference in original.items():
        if name not in side:
            problems.append(f"`{name}`: missing")
            continue
        value = side[name]
        if value.dtype != reference.dtype:
            problems.append(f"`{name}`: dtype {_dtype(value)}, the original's is {_dtype(reference)}")
        elif value.shape != reference.shape:
            problems.append(f"`{name}`: shape {list(value.shape)}, the original's is {list(reference.shape)}")
        elif value.is_floating_point() or value.is_complex():
            broken = int((~value.isfinite() & reference.isfinite()).sum())
            if broken:
                problems.append(f"`{name}`: {broken} NaN or infinite values where the original's are finite")
    return problems


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def evaluate(component: str, original: dict[str, torch.Tensor], side: dict[str, torch.Tensor],
             gates: dict[str, float | None], judged: bool, note: str = "") -> QualityResult:
    """The component's measures of `side` against `original` (outputs by name; a T3 component also
    carries its CFG-combined next-token logits under `T3_LOGITS`), judged against `gates` when `judged`
    (otherwise `note` says why not). Problems (`output_problems`) count either way."""
    spec = QUALITY[component]
    result = QualityResult(measures={}, gates=dict(gates), judged=judged, note="" if judged else note)
    result.problems = output_problems({k: v for k, v in original.items() if k != T3_LOGITS},
                                      {k: v for k, v in side.items() if k != T3_LOGITS})
    if T3_LOGITS in dict(spec.pairs).values():
        if T3_LOGITS not in side or T3_LOGITS not in original:
            result.problems.append(f"{T3_LOGITS}: not captured")
        elif side[T3_LOGITS].shape != original[T3_LOGITS].shape:
            result.problems.append(f"{T3_LOGITS}: shape {list(side[T3_LOGITS].shape)}, the original's is "
                                   f"{list(original[T3_LOGITS].shape)}")
        else:
            broken = int((~side[T3_LOGITS].isfinite() & original[T3_LOGITS].isfinite()).sum())
            if broken:
                result.problems.append(f"{T3_LOGITS}: {broken} NaN or infinite values where the original's "
                                       "are finite")
    for output in dict.fromkeys(output for _, output in spec.pairs):
        if output != T3_LOGITS and output not in original:
            result.problems.append(f"`{output}`: the original has no such output to measure")
    for name, output in spec.pairs:
        try:
            result.measures[name] = FUNCTIONS[name](original[output], side[output])
        except (KeyError, ValueError, RuntimeError):  # a missing or misshapen output: a problem already
            result.measures[name] = math.nan
    if not judged:
        return result
    for name, value in result.measures.items():
        threshold = gates.get(name)
        if threshold is not None and not MEASURES[name].passes(value, threshold):
            result.failed.append(name)
    return result
