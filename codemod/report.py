"""Sites, errors and the run report (the JSON contract tests, CI and transforms rely on)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import __version__


class Status(StrEnum):
    """A site's verdict."""

    APPLIED = "applied"  # safe: rewritten
    UNSAFE = "unsafe"  # could change behaviour; the reason names the hazard and the code path
    NOT_APPLICABLE = "not-applicable"  # cannot work or does not pay
    SUPPRESSED = "suppressed"  # a skip comment or the configuration says so


@dataclass
class Site:
    """One place a transform looked at, with its verdict: what the report shows and serialises."""

    transform: str
    path: Path  # absolute
    line: int  # 1-based, in the original file
    symbol: str  # the function or class it belongs to, e.g. "SineGen.forward"
    status: Status
    reason: str
    fixable: bool = True
    hazard: str | None = None  # for `unsafe` sites: the kind of the hazard the reason names (a HazardKind)
    subject: str = ""  # ... and the code it names (`self.lin(...)`, `layer.weight.data = ...`)
    rewritten: bool = False  # set by the engine: rewritten (or, in --diff/--check, would be)

    def to_json(self, rel: str) -> dict[str, Any]:
        return {
            "path": rel,
            "line": self.line,
            "transform": self.transform,
            "symbol": self.symbol,
            "status": self.status,
            "reason": self.reason,
            "hazard": self.hazard,
            "subject": self.subject,
            "fixable": self.fixable,
            "rewritten": self.rewritten,
        }


@dataclass
class FileError:
    path: Path
    message: str
    line: int | None = None

    def to_json(self, rel: str) -> dict[str, Any]:
        return {"path": rel, "line": self.line, "message": self.message}

    def render(self, shown: str) -> str:
        where = f"{shown}:{self.line}" if self.line else shown
        return f"{where}: error: {self.message}"


@dataclass
class FileResult:
    """What happened to one target file."""

    path: Path
    rel: str
    original: bytes
    rewritten: bytes | None = None  # None: unchanged
    written: bool = False


@dataclass
class Report:
    sites: list[Site] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files: list[FileResult] = field(default_factory=list)
    scanned: int = 0
    transforms: list[str] = field(default_factory=list)
    rel_of: dict[Path, str] = field(default_factory=dict)  # report path of every target file
    notes: list[str] = field(default_factory=list)  # things done besides rewriting, for the user

    @property
    def changed(self) -> list[FileResult]:
        return [f for f in self.files if f.rewritten is not None]

    def rel(self, path: Path) -> str:
        return self.rel_of.get(path, path.as_posix())

    def to_json(self) -> dict[str, Any]:
        return {
            "tool_version": __version__,
            "transforms": self.transforms,
            "files_scanned": self.scanned,
            "files_rewritten": len(self.changed),
            "sites": [s.to_json(self.rel(s.path)) for s in sorted(self.sites, key=_site_order)],
            "errors": [e.to_json(self.rel(e.path)) for e in self.errors],
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    def counts(self) -> dict[str, dict[str, int]]:
        table = {t: {"rewritten": 0, **{s: 0 for s in Status}} for t in self.transforms}
        for site in self.sites:
            row = table.setdefault(site.transform, {"rewritten": 0, **{s: 0 for s in Status}})
            row[site.status] += 1
            row["rewritten"] += int(site.rewritten)
        return table


def _site_order(site: Site) -> tuple:
    return (site.path.as_posix(), site.line, site.transform)
