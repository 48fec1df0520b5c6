"""A region that would run under inference mode, and what the analyses find about it."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from .project import FunctionInfo


@dataclass
class Hazard:
    kind: str  # "state", "grad", "record", "inplace", "unresolved", "budget"
    fixable: bool
    message: str


@dataclass
class RegionReport:
    hazards: list[Hazard] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.hazards

    @property
    def fixable(self) -> bool:
        return all(h.fixable for h in self.hazards)

    def add(self, hazard: Hazard) -> None:
        if all(h.message != hazard.message for h in self.hazards):
            self.hazards.append(hazard)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass(frozen=True)
class Region:
    """Code that would run under inference mode: a whole function, or one `with` block in it."""

    fn: FunctionInfo
    block: ast.With | None = None  # None: the whole body (decorator / entry point)
    item: int = 0  # which `with` item is the grad-off one

    def contains(self, node: ast.AST) -> bool:
        if self.block is None:
            return True
        first = self.block.body[0]
        last = self.block.body[-1]
        start = (first.lineno, first.col_offset)
        end = (last.end_lineno or last.lineno, last.end_col_offset or 0)
        return start <= (node.lineno, node.col_offset) <= end

    def statements(self) -> list[ast.stmt]:
        return list(self.block.body) if self.block is not None else list(self.fn.node.body)
