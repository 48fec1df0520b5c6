"""The virtual environment chatterbox-streaming runs in: made once, then reused.

chatterbox-streaming 0.1.2 pins its own dependencies (transformers 4.46.3,
tokenizers 0.20, librosa 0.10.0, omegaconf 2.3.0, ...), and it imports as
`chatterbox`, as chatterbox-tts does: the two cannot share an environment.
The bench makes a virtual environment of its own for the fork, under the
cache folder (`$XDG_CACHE_HOME/chatterbox-codemod/`, or `--streaming-env`),
and runs both workers of a streaming bench with its Python.

The environment is layered on the one the bench runs in: a `.pth` file puts
the running environment's site-packages *after* the venv's own. pip then
counts what the running environment already has that meets the fork's pins
(torch 2.6.0, torchaudio 2.6.0, diffusers 0.29.0: gigabytes) and installs
into the venv only what differs, which shadows the running environment's
versions there. Nothing is installed into the running environment. When
the running environment's torch does not meet the pin, pip installs the
pinned torch into the venv like everything else.

A marker file, written last, records what the venv was made for; a venv
without it (an interrupted install), or made for another base environment,
is made again. A lock file keeps two benches from making it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .workload import STREAMING_PACKAGE, STREAMING_VERSION

MARKER = "chatterbox-codemod-env.json"
BASE_PTH = "_chatterbox_codemod_base.pth"


class StreamingEnvError(Exception):
    """The environment could not be made (pip failed, no network, ...)."""


def default_location() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    return cache / "chatterbox-codemod" / f"venv-{STREAMING_PACKAGE}-{STREAMING_VERSION}-{python}"


def venv_python(location: Path) -> Path:
    return location / "bin" / "python"


def _wanted() -> dict:
    return {"package": f"{STREAMING_PACKAGE}=={STREAMING_VERSION}", "python": sys.version,
            "base": sysconfig.get_paths()["purelib"]}


def ensure(location: Path | None, progress: Callable[[str], None]) -> Path:
    """The Python of a ready environment with chatterbox-streaming installed; made here if needed."""
    location = (location or default_location()).resolve()
    location.parent.mkdir(parents=True, exist_ok=True)
    with _locked(location.with_name(location.name + ".lock")):
        if _ready(location):
            progress(f"{STREAMING_PACKAGE} {STREAMING_VERSION}: reusing the environment {location}")
            return venv_python(location)
        started = time.perf_counter()
        progress(f"{STREAMING_PACKAGE} {STREAMING_VERSION}: making its environment {location} "
                 "(once; about a minute when this environment already has torch 2.6.0)")
        building = location.with_name(location.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(location, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(building)], "python -m venv")
        python = venv_python(building)
        purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        Path(purelib, BASE_PTH).write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
        _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
              f"{STREAMING_PACKAGE}=={STREAMING_VERSION}"], f"pip install {STREAMING_PACKAGE}=={STREAMING_VERSION}")
        (building / MARKER).write_text(json.dumps(_wanted(), indent=2) + "\n", encoding="utf-8")
        # A venv's scripts name its folder; the interpreter itself does not, so `bin/python` of the
        # renamed folder still finds its site-packages (pyvenv.cfg sits next to it).
        building.rename(location)
        progress(f"{STREAMING_PACKAGE}: environment made in {time.perf_counter() - started:.0f} s")
        return venv_python(location)


def installed_package(python: Path) -> Path:
    """The `chatterbox` package folder the environment's Python imports."""
    code = ("import importlib.util; spec = importlib.util.find_spec('chatterbox'); "
            "print(next(iter(spec.submodule_search_locations)))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise StreamingEnvError(f"{python} cannot find chatterbox: {out.stderr.strip()[-2000:]}")
    return Path(out.stdout.strip())


def _ready(location: Path) -> bool:
    try:
        made_for = json.loads((location / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return made_for == _wanted() and venv_python(location).exists()


def _run(command: list[str], what: str) -> None:
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-25:])
        raise StreamingEnvError(f"{what} failed (exit status {out.returncode}):\n{tail}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
