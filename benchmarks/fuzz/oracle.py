"""The oracle: does a variant compute what the original computed?

For every counted driver: no exception the original did not raise; the same
output names, shapes and values (within 1e-6, absolute plus relative); and
a gradient wherever the original had one (`grad.*` outputs that the original
computed and the variant left `None` are a broken training step even when no
error was raised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TOLERANCE = 1e-6


@dataclass(frozen=True)
class Failure:
    driver: str
    kind: str  # "raised", "timeout", "value", "gradient", "missing"
    detail: str

    @property
    def signature(self) -> str:
        """What `same failure` means while shrinking: the kind and, for errors, the exception text."""
        return f"{self.kind}: {self.detail}" if self.kind in ("raised", "timeout") else self.kind

    def render(self) -> str:
        return f"{self.driver}: {self.kind}: {self.detail}"


def _close(a: list[float], b: list[float]) -> bool:
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return False
        elif abs(x - y) > TOLERANCE + TOLERANCE * abs(x):
            return False
    return True


def compare_driver(label: str, original: dict, variant: dict) -> Failure | None:
    if "error" in original:
        if "error" in variant and variant["error"].split(":")[0] == original["error"].split(":")[0]:
            return None
        return None if "error" not in variant else Failure(label, "raised", variant["error"])
    if "error" in variant:
        return Failure(label, "timeout" if variant.get("timeout") else "raised", variant["error"])
    for name, expected in original["values"].items():
        actual = variant["values"].get(name, "absent")
        if actual == "absent":
            return Failure(label, "missing", name)
        if expected is None:
            continue
        if actual is None:
            return Failure(label, "gradient" if "grad" in name else "value", f"{name} is None in the variant")
        if expected[0] != "tensor" or actual[0] != "tensor":
            if expected != actual:
                return Failure(label, "value", f"{name}: {actual!r} != {expected!r}")
            continue
        if expected[1] != actual[1]:
            return Failure(label, "value", f"{name}: shape {actual[1]} != {expected[1]}")
        if not _close(expected[3], actual[3]):
            diff = max((abs(x - y) for x, y in zip(expected[3], actual[3], strict=True)), default=0.0)
            return Failure(label, "value", f"{name}: max abs diff {diff:.3g}")
    return None


def compare(original: dict[str, dict], variant: dict[str, dict], counted: set[str]) -> list[Failure]:
    """The failures of `variant` against `original`, over the `counted` drivers."""
    failures = []
    for label in sorted(counted):
        failure = compare_driver(label, original[label], variant[label])
        if failure is not None:
            failures.append(failure)
    return failures


def original_errors(original: dict[str, dict]) -> list[str]:
    """Drivers the original itself could not run: a generator defect, reported, never a false-safe."""
    return [f"{label}: {outcome['error']}" for label, outcome in sorted(original.items()) if "error" in outcome]
