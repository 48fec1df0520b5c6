"""Finding, reading and writing source files without ever losing one.

Reading keeps everything needed to write a file back byte-for-byte the way it
came: the encoding (cookie or BOM), the line endings and the file mode.
Writing is atomic: a temporary file in the same folder, fsynced, given the
original mode, then renamed over the original.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import stat
import tempfile
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .cache import DEFAULT_DIR as CACHE_DIR

# Folders that are never part of a project's own source.
SKIPPED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "__pycache__",
        "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist",
        "site-packages", ".eggs", CACHE_DIR,
    }
)
TEMP_SUFFIX = ".chatterbox-codemod.tmp"


class SourceError(Exception):
    """A file that cannot be processed; the message names the file and line."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        super().__init__(message)
        self.path = path
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Target:
    """One path given on the command line, with the root its report paths are relative to."""

    given: Path  # as typed, for messages
    root: Path  # absolute; a folder, or the file's folder for a file target
    is_file: bool


@dataclass
class SourceFile:
    """A Python file as read from disk."""

    path: Path  # absolute, resolved
    target: Target
    raw: bytes
    text: str
    encoding: str
    mode: int

    @property
    def rel(self) -> str:
        """The path relative to its target root, with forward slashes (the report's path)."""
        return self.path.relative_to(self.target.root).as_posix()


@dataclass
class Discovery:
    """The files found under the targets, and the paths that could not be used."""

    files: list[tuple[Path, Target]]
    errors: list[SourceError]
    others: list[tuple[Path, Target]]  # non-Python files, copied as they are by --output
    leftovers: list[Path] = field(default_factory=list)  # temporary files of an interrupted run


def make_target(given: str | os.PathLike) -> Target:
    path = Path(given)
    if not os.path.lexists(path):
        raise SourceError(path, "no such file or directory")
    resolved = path.resolve()
    if resolved.is_dir():
        return Target(given=path, root=resolved, is_file=False)
    if not resolved.is_file():
        raise SourceError(path, "not a regular file or directory")
    return Target(given=path, root=resolved.parent, is_file=True)


def discover(targets: Iterable[Target], exclude: Iterable[str] = ()) -> Discovery:
    """List the Python files under the targets, in a stable order.

    Symlinks are never followed out of their target; a symlink inside it is
    skipped, since the file it points to is found under its own name (and
    writing through a link would replace the link with a file).
    """
    exclude = list(exclude)
    seen: set[Path] = set()
    found = Discovery(files=[], errors=[], others=[])
    for target in targets:
        if target.is_file:
            path = target.given.resolve()
            if path.suffix != ".py":
                found.errors.append(SourceError(target.given, "not a Python file (expected a .py file)"))
            elif path not in seen:
                seen.add(path)
                found.files.append((path, target))
            continue
        for path, is_link in _walk(target.root):
            rel = path.relative_to(target.root).as_posix()
            if _excluded(rel, exclude):
                continue
            if is_link:
                real = path.resolve()
                if not _is_within(real, target.root):
                    found.errors.append(
                        SourceError(path, f"symlink points outside the target ({real}); not followed")
                    )
                elif path.suffix == ".py":
                    continue  # the file it points to is processed under its own path
                else:
                    found.others.append((path, target))
                continue
            if not path.is_file():  # a FIFO or socket would block or fail on read
                found.errors.append(SourceError(path, "not a regular file; skipped"))
            elif path.suffix == ".py":
                if path not in seen:
                    seen.add(path)
                    found.files.append((path, target))
            elif path.name.endswith(TEMP_SUFFIX):
                found.leftovers.append(path)
            else:
                found.others.append((path, target))
    return found


def _walk(root: Path) -> Iterator[tuple[Path, bool]]:
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            sub = base / name
            if name in SKIPPED_DIRS or (sub / "pyvenv.cfg").exists():
                continue
            if sub.is_symlink():
                yield sub, True
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = base / name
            yield path, path.is_symlink()


def _excluded(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(rel, pattern) or any(
            fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts) - 1)
        ):
            return True
    return False


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def read_source(path: Path, target: Target) -> SourceFile:
    """Read and decode a Python file, or raise SourceError naming the file and line."""
    try:
        st = os.stat(path)
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from None
    text, encoding = decode(path, raw)
    return SourceFile(path=path, target=target, raw=raw, text=text, encoding=encoding, mode=stat.S_IMODE(st.st_mode))


def decode(path: Path, raw: bytes) -> tuple[str, str]:
    """Decode source bytes the way Python does (BOM, then encoding cookie, then UTF-8)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise SourceError(path, f"bad encoding declaration: {exc}", _line_of(exc)) from None
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SourceError(
            path, f"cannot decode as {encoding}: byte {raw[exc.start]:#04x} at line {line} is invalid", line
        ) from None
    except LookupError:
        raise SourceError(path, f"unknown encoding {encoding!r}", 1) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, encoding


def _line_of(exc: SyntaxError) -> int | None:
    return getattr(exc, "lineno", None)


def check_writable(source: SourceFile) -> None:
    """Refuse to replace a file the user cannot write (the rename itself would succeed)."""
    if not os.access(source.path, os.W_OK) or not source.mode & stat.S_IWUSR:
        raise SourceError(source.path, "file is read-only; not rewritten")
    if not os.access(source.path.parent, os.W_OK):
        raise SourceError(source.path, "folder is not writable; not rewritten")


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` in one rename; the file is never seen half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

