"""Peak memory of one call, each measured from a fresh start just before it.

Two measures, because on the CPU neither alone is both precise and what the
operating system sees:

- `tensor_peak`: the most tensor memory the call held at once, above what was
  allocated before it. CUDA: `max_memory_allocated` after
  `reset_peak_memory_stats`. CPU: the allocation and free events of torch's CPU
  allocator, recorded by `torch.profiler` with `profile_memory=True`; the
  profiler sees the calling thread, where ops allocate their outputs, and
  misses the few scratch buffers kernels allocate inside their worker
  threads. It does not depend on the allocator's history: identical code gives
  identical numbers in both workers.
- `resident_peak` (CPU only): the worker's peak resident memory during the
  call (VmHWM, reset through /proc/self/clear_refs) above its resident memory
  before it, with the C heap trimmed first (or the call reuses pages earlier
  calls left resident and seems to need nothing). It counts everything the
  process touches (numpy and librosa buffers, oneDNN scratch space), but it
  depends on the state of the C allocator, which the earlier calls of the
  worker shaped: identical code has measured over 100 MiB apart.
"""

from __future__ import annotations

import ctypes
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

TENSORS, RESIDENT = "tensors", "resident"

# glibc adapts its mmap threshold to what a process freed before, so two processes running the same code
# differed by up to 20% on the CPU (`hift`, unchanged by the rewrite: 0.92x measured alone, 1.21x after the
# other components). The same fixed settings in both workers take that history out of the comparison
# (then 1.00-1.02x, and faster in both); settings the user exported win.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(4 * 2**30)}


@contextmanager
def tensor_peak(device: torch.device, measured: dict) -> Iterator[None]:
    """Fills `measured["tensor_peak_bytes"]` with the peak tensor memory of the block."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield
        torch.cuda.synchronize(device)
        measured["tensor_peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
        return
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        yield
    # Memory events carry signed sizes (frees are negative); their running sum in time
    # order is what the block held, counting only what it allocated itself.
    events = sorted((e.start_ns(), e.nbytes()) for e in profiler.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    measured["tensor_peak_bytes"] = peak


@contextmanager
def resident_peak(measured: dict) -> Iterator[None]:
    """Fills `measured` with the resident memory of the block: base, peak, and the peak above the base."""
    if not _reset_resident_peak():
        yield  # no /proc/self/clear_refs: not measurable here
        return
    _trim_heap()
    _reset_resident_peak()
    base = _proc_status_bytes("VmRSS")
    yield
    peak = _proc_status_bytes("VmHWM")
    measured.update(resident_base_bytes=base, resident_peak_bytes=peak, resident_call_peak_bytes=peak - base)


def _proc_status_bytes(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1)) * 1024


def _reset_resident_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _trim_heap() -> None:
    """Hand free C-heap pages back to the system (glibc only; elsewhere the heap stays as it is)."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
