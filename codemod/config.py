"""`[tool.chatterbox-codemod]` in the target project's pyproject.toml.

```toml
[tool.chatterbox-codemod]
select = ["inference-mode", "entry-points"]  # transform ids (default: all)
ignore = ["channels-last"]
exclude = ["scripts/legacy_*.py", "tests"]   # globs, relative to each target
unsafe-fixes = false

[tool.chatterbox-codemod.entry-points]
include = ["mypkg.model.Model.embed"]  # methods to consider even if not found automatically
exclude = ["ChatterboxTTS.generate"]   # methods never to decorate
```
Command-line flags override these. An unknown key is an error that names it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SECTION = "chatterbox-codemod"
TOP_KEYS = {"select", "ignore", "exclude", "unsafe-fixes", "entry-points"}
ENTRY_POINT_KEYS = {"include", "exclude"}


class ConfigError(Exception):
    pass


@dataclass
class Config:
    path: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    unsafe_fixes: bool = False
    entry_points_include: list[str] = field(default_factory=list)
    entry_points_exclude: list[str] = field(default_factory=list)


def load_config(project_root: Path) -> Config:
    """Read the section from `<project_root>/pyproject.toml`; a missing file or section gives defaults."""
    path = project_root / "pyproject.toml"
    if not path.is_file():
        return Config()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    section = data.get("tool", {}).get(SECTION)
    if section is None:
        return Config(path=path)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.{SECTION}] must be a table")
    unknown = sorted(set(section) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key `{unknown[0]}` in [tool.{SECTION}] "
                          f"(known: {', '.join(sorted(TOP_KEYS))})")
    entry = section.get("entry-points", {})
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: [tool.{SECTION}.entry-points] must be a table")
    unknown = sorted(set(entry) - ENTRY_POINT_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key `{unknown[0]}` in [tool.{SECTION}.entry-points] "
                          f"(known: {', '.join(sorted(ENTRY_POINT_KEYS))})")
    return Config(
        path=path,
        select=_strings(section, "select", path) if "select" in section else None,
        ignore=_strings(section, "ignore", path),
        exclude=_strings(section, "exclude", path),
        unsafe_fixes=_bool(section, "unsafe-fixes", path),
        entry_points_include=_strings(entry, "include", path),
        entry_points_exclude=_strings(entry, "exclude", path),
    )


def _strings(table: dict, key: str, path: Path) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: `{key}` must be a list of strings")
    return list(value)


def _bool(table: dict, key: str, path: Path) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: `{key}` must be true or false")
    return value
