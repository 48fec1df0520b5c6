"""Do two calls give the same outputs? Every output tensor, compared elementwise."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

# Within this of each other, fp32 outputs count as the same: |a - b| <= ATOL + RTOL * |b|
# (b: the original's value), the test `torch.allclose` makes.
ATOL = 1e-5
RTOL = 1e-5


@dataclass
class OutputDiff:
    name: str
    shape: list[int]
    dtype: str
    max_abs: float | None  # None when the outputs cannot be compared elementwise
    max_rel: float | None
    passed: bool
    problem: str | None = None  # why it failed, in words

    def to_json(self) -> dict:
        return asdict(self)


def compare_outputs(original: dict[str, torch.Tensor], rewritten: dict[str, torch.Tensor]) -> list[OutputDiff]:
    diffs = [compare_tensor(name, original[name], rewritten[name]) for name in original if name in rewritten]
    for name in original.keys() - rewritten.keys():
        diffs.append(_mismatch(name, original[name], "only the original returns it"))
    for name in rewritten.keys() - original.keys():
        diffs.append(_mismatch(name, rewritten[name], "only the rewrite returns it"))
    return diffs


def compare_tensor(name: str, original: torch.Tensor, rewritten: torch.Tensor) -> OutputDiff:
    if original.shape != rewritten.shape:
        return _mismatch(name, original, f"shape {list(rewritten.shape)} in the rewrite")
    if original.dtype != rewritten.dtype:
        return _mismatch(name, original, f"dtype {rewritten.dtype} in the rewrite")
    # In float64, so the differences themselves are exact; integers compare exactly too.
    expected, actual = original.double(), rewritten.double()
    nan_expected, nan_actual = expected.isnan(), actual.isnan()
    same = (expected == actual) | (nan_expected & nan_actual)  # equal infinities count as equal
    abs_diff = torch.where(same, 0.0, (actual - expected).abs().nan_to_num(nan=torch.inf))
    rel_diff = torch.where(abs_diff == 0, 0.0, abs_diff / expected.abs())  # x / 0 -> inf
    close = abs_diff <= ATOL + RTOL * expected.abs().nan_to_num(nan=0.0)
    max_abs = abs_diff.max().item() if abs_diff.numel() else 0.0
    max_rel = rel_diff.max().item() if rel_diff.numel() else 0.0
    problem = None
    if not torch.equal(nan_expected, nan_actual):
        problem = f"NaN at {int((nan_expected != nan_actual).sum())} positions in only one of them"
    elif not bool(close.all()):
        problem = f"{int((~close).sum())} of {close.numel()} elements differ by more than {ATOL:g} + {RTOL:g}·|x|"
    return OutputDiff(name, list(original.shape), str(original.dtype).removeprefix("torch."), max_abs, max_rel,
                      problem is None, problem)


def _mismatch(name: str, tensor: torch.Tensor, problem: str) -> OutputDiff:
    return OutputDiff(name, list(tensor.shape), str(tensor.dtype).removeprefix("torch."), None, None, False, problem)
