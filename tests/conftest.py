"""Shared test helpers: running the engine and the CLI, and the real chatterbox sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from chatterbox_codemod.engine import DIFF, Options, run

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
WHEELS = {"chatterbox-tts": "0.1.7", "chatterbox-streaming": "0.1.2"}


def run_engine(paths, mode=DIFF, **kwargs):
    return run(Options(paths=[str(p) for p in paths], mode=mode, jobs=1, **kwargs))


def cli(*args, cwd=None, check_rc=None, env=None):
    """Run the installed CLI as a user would; returns the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-m", "chatterbox_codemod", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})},
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def download_wheel(name: str, cache: Path) -> Path:
    """The wheel of a chatterbox release, fetched once per test session with `pip download --no-deps`."""
    version = WHEELS[name]
    stem = name.replace("-", "_")
    found = sorted(cache.glob(f"{stem}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
             f"{name}=={version}", "-d", str(cache)],
            check=True,
        )
        found = sorted(cache.glob(f"{stem}-{version}-*.whl"))
    return found[0]


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wheels")


def unpack_wheel(wheel: Path, destination: Path) -> Path:
    """Unzip a wheel; returns the folder holding its `chatterbox` package."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(destination)
    return destination / "chatterbox"


@pytest.fixture
def chatterbox_tree(wheel_cache, tmp_path):
    """A fresh copy of a wheel's `chatterbox/` tree: `chatterbox_tree("chatterbox-tts")`."""

    def make(name: str) -> Path:
        return unpack_wheel(download_wheel(name, wheel_cache), tmp_path / name)

    return make


def installed_chatterbox() -> Path:
    """The `chatterbox` package folder of the installed chatterbox-tts."""
    import importlib.util

    spec = importlib.util.find_spec("chatterbox")
    assert spec is not None and spec.origin, "chatterbox-tts is not installed (pip install '.[test]')"
    return Path(spec.origin).parent


def report_sites(report_json: dict, transform: str | None = None) -> dict[tuple[str, int], dict]:
    return {(s["path"], s["line"]): s for s in report_json["sites"] if transform in (None, s["transform"])}


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
