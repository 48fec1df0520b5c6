"""A region that would run under inference mode, and what the analyses find about it."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from enum import StrEnum

from .project import FunctionInfo


class HazardKind(StrEnum):
    """What makes a region unsafe; the first four are what torch raises or does once it is converted."""

    STATE = "state"  # puts new tensors into a module: never fixable
    GRAD = "grad"  # switches autograd back on: never fixable
    RECORD = "record"  # a region tensor is saved for backward with autograd on
    INPLACE = "inplace"  # a region tensor is updated in place outside inference mode
    GRAPH = "graph"  # an entry point would cut a graph that callers may train
    TRAINING = "training"  # an entry point that is, or is reached from, training code
    UNRESOLVED = "unresolved"  # something the analysis cannot resolve: check by hand
    LIBRARY = "library"  # library code that may keep a tensor it makes (a cache): check by hand
    BUDGET = "budget"  # the values flow too far to follow


@dataclass
class Hazard:
    kind: HazardKind
    fixable: bool
    message: str
    subject: str = ""  # the code it names: the use, the call or the write (`self.lin(...)`)


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

    _messages: set[str] = field(default_factory=set, repr=False)

    def add(self, hazard: Hazard) -> None:
        if hazard.message not in self._messages:
            self._messages.add(hazard.message)
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
