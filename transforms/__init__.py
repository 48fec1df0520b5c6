"""The transforms, found in this package: every module that defines a `Transform` subclass with an `id`.

Adding a transform means adding its module (and its fixtures): registration,
ordering, the docs page, configuration keys and `list-transforms` all come
from the class itself. They run in `analysis_order` (a transform sees the
grad-off regions of those before it).
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Transform


def _discover() -> list[type[Transform]]:
    found: dict[str, type[Transform]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Transform) and value.__module__ == module.__name__ \
                    and "id" in vars(value):
                found[value.id] = value
    return sorted(found.values(), key=lambda t: (t.analysis_order, t.id))


TRANSFORMS: list[type[Transform]] = _discover()


def by_id(transform_id: str) -> type[Transform]:
    for transform in TRANSFORMS:
        if transform.id == transform_id:
            return transform
    known = ", ".join(t.id for t in TRANSFORMS)
    raise KeyError(f"unknown transform `{transform_id}` (known: {known})")
