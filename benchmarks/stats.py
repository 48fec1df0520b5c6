"""Summary statistics of paired timings: per-round speed ratios, their median and its bootstrap interval."""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class SpeedRatio:
    """original time / rewritten time: above 1 the rewrite is faster."""

    per_round: list[float]
    median: float
    low: float  # bounds of the CONFIDENCE bootstrap interval of the median
    high: float


def speed_ratio(original: list[float], rewritten: list[float], seed: int = 0) -> SpeedRatio:
    """Ratios of the calls of the same round, so drift between rounds cancels out."""
    ratios = [a / b for a, b in zip(original, rewritten, strict=True)]
    low, high = bootstrap_median_interval(ratios, seed)
    return SpeedRatio(ratios, statistics.median(ratios), low, high)


def bootstrap_median_interval(values: list[float], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                              confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of `values`, reproducible through `seed`.

    It can be no wider than the values are spread: with three rounds it lies
    between the smallest and the largest of them.
    """
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    tail = (1 - confidence) / 2
    return _quantile(medians, tail), _quantile(medians, 1 - tail)


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default method)."""
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
