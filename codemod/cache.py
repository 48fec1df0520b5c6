"""The run cache: what an analysis concluded, kept by the content of everything it read.

A run's conclusions (its sites and verdicts, the rewritten bytes of each target,
the errors parsing, rewriting and verifying found, and the analysis's notes) depend only on the bytes
of the project's Python and configuration files, on which files are targets, and
on the tool and its options. The key hashes exactly those:

- the cache format, the tool's version and a hash of its own sources (an
  edited checkout is another tool), libcst's version and Python's minor
  version (the `ast` the analysis reads changes with it);
- the transforms selected, `--unsafe-fixes`, every transform's settings from
  `pyproject.toml`, and the project root;
- every project file the run reads, by path and by the SHA-256 of its bytes,
  and the targets among them.

A run whose key is stored replays the entry instead of parsing, indexing,
analysing, rewriting and verifying; a run whose key is not stored does all of
that and stores its result. Reading, writing and printing always happen live:
a file made read-only since, or changed between the read and the write, is
caught exactly as in an uncached run. A replayed run prints and writes what the
uncached run would, byte for byte (`tests/test_cache.py` checks it).

The key covers the whole project, because a verdict in one file depends on the
code of every file that may call into it (a method reached by name, `x.m()` on a
value of unknown type, is called from anywhere): an edit anywhere is a miss, and
the run that follows is a cold run. This is what makes the cache sound without a
dependency graph of the verdicts; it is also why one changed file costs a full
analysis (see the README's speed table).

Faults never change a verdict: an entry that cannot be read or decoded, or was
written by another format, is ignored with a note and replaced; a cache folder
that cannot be written costs the store (with a note), never the run. Entries are
written atomically (a temporary file, then a rename), so two runs at once each
see a whole entry or none. The folder keeps the most recent `KEEP` entries.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import libcst

from . import __version__
from .report import FileError, Site, Status

FORMAT = 2
DEFAULT_DIR = ".chatterbox-codemod_cache"
KEEP = 16  # entries kept: a few branches' worth of pre-commit runs
_GITIGNORE = "# Made by chatterbox-codemod: its run cache (safe to delete).\n*\n"
_ENTRY_SUFFIX = ".json"


@dataclass
class Outcome:
    """What parsing, analysing, rewriting and verifying concluded: the part of a run the cache keeps."""

    sites: list[Site]
    errors: list[FileError]  # in the order the run found them
    rewritten: dict[Path, bytes | None]  # every rewritten target: its new bytes (None: the rewrite was dropped)
    notes: list[str]  # what the analysis tells the user beside the verdicts


@functools.cache
def tool_fingerprint() -> str:
    """A hash of the tool's own Python sources: an edited checkout (same version) never replays an entry
    its previous code wrote."""
    import chatterbox_codemod.analysis
    import chatterbox_codemod.transforms

    digest = hashlib.sha256()
    for package in (chatterbox_codemod, chatterbox_codemod.analysis, chatterbox_codemod.transforms):
        for folder in package.__path__:
            for path in sorted(Path(folder).glob("*.py")):
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


class RunCache:
    """One cache folder; `key` names a run, `load`/`store` replay and keep its outcome."""

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder = folder
        self.root = root
        self.notes: list[str] = []

    def key(self, options: dict, files: list[tuple[Path, bytes | None]], targets: set[Path]) -> str:
        """The run's key: the tool, the options, and the path and content hash of every file it reads."""
        digest = hashlib.sha256()
        header = {
            "format": FORMAT,
            "tool": __version__,
            "tool_sources": tool_fingerprint(),
            "libcst": libcst.__version__ if hasattr(libcst, "__version__") else "",
            "python": list(sys.version_info[:2]),
            "root": str(self.root),
            "options": options,
        }
        digest.update(json.dumps(header, sort_keys=True, default=str).encode())
        for path, raw in sorted(files, key=lambda item: item[0]):
            digest.update(b"\0T" if path in targets else b"\0P")
            digest.update(os.fsencode(path))
            digest.update(b"\0")
            digest.update(hashlib.sha256(raw).digest() if raw is not None else b"unreadable")
        return digest.hexdigest()

    def load(self, key: str) -> Outcome | None:
        path = self.folder / f"{key}{_ENTRY_SUFFIX}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("key") != key:
                raise ValueError(f"format {data.get('format')!r}, key {str(data.get('key'))[:12]!r}")
            return self._decode(data)
        except (FileNotFoundError, NotADirectoryError):  # not stored (or no folder to store it in)
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.notes.append(f"cache entry {path} is unusable ({type(exc).__name__}: {exc}); recomputed")
            return None

    def store(self, key: str, outcome: Outcome) -> None:
        try:
            self._prepare()
            data = json.dumps(self._encode(key, outcome), separators=(",", ":")).encode("utf-8")
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".entry-", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(data)
                os.replace(temporary, self.folder / f"{key}{_ENTRY_SUFFIX}")
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            self._prune()
        except OSError as exc:
            self.notes.append(f"cannot write the cache in {self.folder} ({exc.strerror or exc}); the run is not cached")

    # -- on disk ---------------------------------------------------------------

    def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        ignore = self.folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_GITIGNORE, encoding="utf-8")

    def _prune(self) -> None:
        entries = []
        for entry in self.folder.glob(f"*{_ENTRY_SUFFIX}"):
            with contextlib.suppress(OSError):  # another run may prune it first
                entries.append((entry.stat().st_mtime, entry))
        for _, entry in sorted(entries, reverse=True)[KEEP:]:
            with contextlib.suppress(OSError):
                entry.unlink()

    def _encode(self, key: str, outcome: Outcome) -> dict:
        return {
            "format": FORMAT,
            "key": key,
            "sites": [
                [self._rel(s.path), s.line, s.transform, s.symbol, str(s.status), s.reason, s.fixable, s.hazard,
                 s.subject, s.rewritten]
                for s in outcome.sites
            ],
            "errors": [[self._rel(e.path), e.message, e.line] for e in outcome.errors],
            "rewritten": {self._rel(path): None if data is None else base64.b64encode(data).decode("ascii")
                          for path, data in outcome.rewritten.items()},
            "notes": outcome.notes,
        }

    def _decode(self, data: dict) -> Outcome:
        sites = [
            Site(transform=transform, path=self._abs(path), line=int(line), symbol=symbol, status=Status(status),
                 reason=reason, fixable=bool(fixable), hazard=hazard, subject=subject, rewritten=bool(rewritten))
            for path, line, transform, symbol, status, reason, fixable, hazard, subject, rewritten in data["sites"]
        ]
        errors = [FileError(self._abs(path), message, line) for path, message, line in data["errors"]]
        rewritten = {self._abs(path): None if text is None else base64.b64decode(text, validate=True)
                     for path, text in data["rewritten"].items()}
        notes = [str(note) for note in data["notes"]]
        return Outcome(sites=sites, errors=errors, rewritten=rewritten, notes=notes)

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def _abs(self, rel: str) -> Path:
        return self.root / rel
