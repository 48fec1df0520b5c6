"""Running generated drivers: worker processes that import torch once and load each project variant fresh.

A *variant* is one copy of a generated project on disk (the original, the
tool's rewrite, a blind conversion). A task runs some of its drivers: before
each driver the worker drops every module of the generated package from
`sys.modules` and loads the package again from the variant's folder under the
name the drivers import, and loads the driver file under a unique name, so
nothing is shared between variants or drivers (the library the programs may
import, `library/fzlib.py`, is on the path and is loaded afresh for each driver
too). Each driver's `run()` (or the
named function of a one-file reproducer) returns a dict of named tensors; the
worker sends back plain Python values (shape, dtype, flat float list), so the
parent never needs torch.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import signal
import sys
import warnings
from dataclasses import dataclass
from itertools import count
from pathlib import Path

_loaded = count()
# The library generated projects may import (`library/fzlib.py`): outside every project the tool analyses.
LIBRARY_PATH = Path(__file__).parent / "library"
LIBRARY = "fzlib"


@dataclass(frozen=True)
class DriverRef:
    label: str  # unique within the program, e.g. "drive_2"
    file: str  # relative to the variant folder
    function: str = "run"


@dataclass(frozen=True)
class Task:
    root: str  # the variant folder
    package: str | None  # the name the drivers import (None: one-file project)
    drivers: tuple[DriverRef, ...]
    time_limit: float


class DriverTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise DriverTimeout("driver ran past the time limit")


def init_worker() -> None:
    import torch
    import torch._dynamo  # noqa: F401 - imported lazily by `inference_mode` otherwise, under the low limit below

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)  # layout changes must not show up as rounding differences
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(LIBRARY_PATH))
    # Generated recursion is bounded, but a defect there must fail fast. Torch's own lazy imports need
    # more depth than that: they happen above (a partly imported module would fail every later driver).
    sys.setrecursionlimit(2000)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _alarm)


def _purge(package: str | None) -> None:
    """Drop the package's modules and the library's, whose caches must not outlive one driver."""
    for name in [n for n in sys.modules if n == LIBRARY or (package and (n == package or n.startswith(package + ".")))]:
        del sys.modules[name]


def _load(name: str, path: Path, package_dir: Path | None = None):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _plain(value):
    import torch

    if isinstance(value, torch.Tensor):
        flat = value.detach().to("cpu", torch.float64).flatten().tolist()
        return ("tensor", tuple(value.shape), str(value.dtype), flat)
    if isinstance(value, int | float | bool):
        return ("tensor", (), "scalar", [float(value)])
    if value is None:
        return None
    return ("other", repr(value)[:200])


def _run_driver(task: Task, driver: DriverRef) -> dict:
    import torch

    root = Path(task.root)
    _purge(task.package)
    module_name = f"_fuzz_driver_{next(_loaded)}"
    torch.set_grad_enabled(True)
    torch.manual_seed(0)
    signal.setitimer(signal.ITIMER_REAL, task.time_limit)
    try:
        if task.package:
            _load(task.package, root / task.package / "__init__.py", root / task.package)
        function = getattr(_load(module_name, root / driver.file), driver.function)
        values = function()
        return {"values": {str(k): _plain(v) for k, v in values.items()}}
    except DriverTimeout:
        return {"error": "timeout", "timeout": True}
    except BaseException as exc:  # noqa: BLE001 - a driver's failure is the data
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"error": f"{type(exc).__name__}: {message}"[:300]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.modules.pop(module_name, None)
        _purge(task.package)


def run_task(task: Task) -> dict[str, dict]:
    """Each driver's outcome: {"values": {name: plain value}} or {"error": "Type: message"}."""
    return {driver.label: _run_driver(task, driver) for driver in task.drivers}


class Pool:
    """A pool of torch workers; a task that hangs a worker costs that task, and the pool is rebuilt."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._pool = self._make()

    def _make(self):
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        return context.Pool(self.jobs, initializer=init_worker, maxtasksperchild=400)

    def submit(self, task: Task):
        return self._pool.apply_async(run_task, (task,))

    def result(self, pending, task: Task) -> dict[str, dict]:
        try:
            return pending.get(timeout=60 + task.time_limit * len(task.drivers))
        except multiprocessing.TimeoutError:
            self._pool.terminate()
            self._pool = self._make()
            return {d.label: {"error": "timeout", "timeout": True} for d in task.drivers}

    def run(self, task: Task) -> dict[str, dict]:
        return self.result(self.submit(task), task)

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
