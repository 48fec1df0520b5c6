"""`[tool.chatterbox-codemod]` in the target project's pyproject.toml.

```toml
[tool.chatterbox-codemod]
select = ["inference-mode", "entry-points"]  # transform ids (default: all)
ignore = ["channels-last"]
exclude = ["scripts/legacy_*.py", "tests"]   # globs, relative to each target
unsafe-fixes = false
stateless-libraries = ["s3tokenizer"]        # libraries checked to keep no tensor they make between calls

[tool.chatterbox-codemod.entry-points]
include = ["mypkg.model.Model.embed"]  # methods to consider even if not found automatically
exclude = ["ChatterboxTTS.generate"]   # methods never to decorate
```
Command-line flags override these. An unknown key is an error that names it.
Each transform declares the keys of its own table (`Transform.options`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from chatterbox_codemod.transforms import TRANSFORMS

SECTION = "chatterbox-codemod"
TOP_KEYS = {"select", "ignore", "exclude", "unsafe-fixes", "stateless-libraries"}


class ConfigError(Exception):
    pass


@dataclass
class Config:
    path: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    unsafe_fixes: bool = False
    # Libraries (dotted prefixes) the user has checked keep no tensor their code makes between calls.
    stateless_libraries: list[str] = field(default_factory=list)
    settings: dict[str, dict] = field(default_factory=dict)  # transform id -> its table, validated


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
    tables = {t.id: t for t in TRANSFORMS if t.options}
    unknown = sorted(set(section) - TOP_KEYS - set(tables))
    if unknown:
        raise ConfigError(f"{path}: unknown key `{unknown[0]}` in [tool.{SECTION}] "
                          f"(known: {', '.join(sorted(TOP_KEYS | set(tables)))})")
    settings = {}
    for transform_id, transform in tables.items():
        table = section.get(transform_id, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.{SECTION}.{transform_id}] must be a table")
        known = {option.name: option for option in transform.options}
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown key `{unknown[0]}` in [tool.{SECTION}.{transform_id}] "
                              f"(known: {', '.join(sorted(known))})")
        settings[transform_id] = {name: (_strings if option.kind is list else _bool)(table, name, path)
                                  for name, option in known.items()}
    return Config(
        path=path,
        select=_strings(section, "select", path) if "select" in section else None,
        ignore=_strings(section, "ignore", path),
        exclude=_strings(section, "exclude", path),
        unsafe_fixes=_bool(section, "unsafe-fixes", path),
        stateless_libraries=_strings(section, "stateless-libraries", path),
        settings=settings,
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
