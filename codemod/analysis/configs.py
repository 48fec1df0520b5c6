"""Models built from configuration files: what each constructor is given.

Projects such as CosyVoice build their models in YAML, not in Python:

    hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
        in_channels: 80
    hifigan: !new:cosyvoice.hifigan.hifigan.HiFiGan
        generator: !ref <hift>
        discriminator: !new:cosyvoice.hifigan.discriminator.MultipleDiscriminator

(hyperpyyaml: `!new:` constructs, `!name:` names a class or function, `!ref
<key>` refers to another entry), or with Hydra/OmegaConf `_target_: pkg.Class`
entries whose sibling keys are the arguments. Read here without a YAML
library: each entry's indentation gives its arguments. The index turns every
construction into argument types for the class's `__init__`, as it does for a
call site in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_SUFFIXES = (".yaml", ".yml")
_ENTRY = re.compile(r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:\s*(?P<value>.*?)\s*(#.*)?$")
_NEW = re.compile(r"^!(?:new|apply):(?P<name>[\w.]+)")
_NAME = re.compile(r"^!name:(?P<name>[\w.]+)")
_REF = re.compile(r"^!ref\s+<(?P<key>[\w.-]+)>$")


@dataclass
class Construction:
    """`Class(**arguments)`, as a configuration file writes it."""

    cls: str  # dotted name
    line: int
    arguments: dict[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Value:
    """An argument: a construction (`!new:`), a class or function reference (`!name:`), or another entry."""

    kind: str  # "new", "name", "ref"
    target: object  # Construction for "new", dotted name for "name", key for "ref"


def read_configs(files: list[tuple[Path, bytes | None]]) -> list[tuple[Path, list[Construction]]]:
    """The constructions of every configuration file that has any, from its bytes (None: it could not be
    read). Unreadable and undecodable files are skipped (they are not sources the tool rewrites, and a
    missing argument type only makes verdicts more cautious)."""
    found = []
    for path, raw in files:
        try:
            text = raw.decode("utf-8") if raw is not None else None
        except UnicodeDecodeError:
            continue
        if text is not None and ("!new:" in text or "_target_" in text):
            found.append((path, constructions(text)))
    return found


@dataclass(eq=False)
class _Entry:
    key: str
    value: str
    line: int
    children: list[_Entry] = field(default_factory=list)


def constructions(text: str) -> list[Construction]:
    """Every construction in one file, with `!ref` arguments replaced by what they refer to."""
    return _Reader(_entries(text)).read()


def _entries(text: str) -> _Entry:
    """The file as a tree of `key: value` entries, by indentation (list items `- key: value` included)."""
    root = _Entry("", "", 0)
    stack: list[tuple[int, _Entry]] = [(-1, root)]
    for number, line in enumerate(text.splitlines(), start=1):
        match = _ENTRY.match(line)
        if match is None:
            continue
        indent = len(match["indent"]) + (len(match["dash"]) if match["dash"] else 0)
        while stack[-1][0] >= indent:
            stack.pop()
        entry = _Entry(match["key"], match["value"], number)
        stack[-1][1].children.append(entry)
        stack.append((indent, entry))
    return root


class _Reader:
    def __init__(self, root: _Entry):
        self.root = root
        self.found: list[Construction] = []
        self._values: dict[int, Value | None] = {}

    def read(self) -> list[Construction]:
        top = {entry.key: self.value(entry) for entry in self.root.children}
        self._walk(self.root)
        for construction in self.found:
            for key, argument in list(construction.arguments.items()):
                if argument.kind == "ref" and top.get(argument.target) is not None:
                    construction.arguments[key] = top[argument.target]
        return self.found

    def _walk(self, entry: _Entry) -> None:
        if entry is self.root or self.value(entry) is None:
            for child in entry.children:
                self._walk(child)

    def value(self, entry: _Entry) -> Value | None:
        """What an entry stands for as an argument (its constructions are built once)."""
        if id(entry) in self._values:
            return self._values[id(entry)]
        value = None
        target = next((c.value.strip("'\"") for c in entry.children if c.key == "_target_"), None)
        if (new := _NEW.match(entry.value)) is not None or target:
            construction = Construction(cls=new["name"] if new else target, line=entry.line)
            self.found.append(construction)
            value = Value("new", construction)
            for child in entry.children:
                if child.key != "_target_" and (argument := self.value(child)) is not None:
                    construction.arguments[child.key] = argument
        elif (named := _NAME.match(entry.value)) is not None:
            value = Value("name", named["name"])
        elif (ref := _REF.match(entry.value)) is not None:
            value = Value("ref", ref["key"])
        self._values[id(entry)] = value
        return value
