"""The transforms, in analysis order (a transform sees the grad-off regions of those before it)."""

from __future__ import annotations

from .base import Transform
from .channels_last import ChannelsLast
from .entry_points import EntryPoints
from .inference_mode import InferenceMode

TRANSFORMS: list[type[Transform]] = [EntryPoints, InferenceMode, ChannelsLast]


def by_id(transform_id: str) -> type[Transform]:
    for transform in TRANSFORMS:
        if transform.id == transform_id:
            return transform
    known = ", ".join(t.id for t in TRANSFORMS)
    raise KeyError(f"unknown transform `{transform_id}` (known: {known})")
