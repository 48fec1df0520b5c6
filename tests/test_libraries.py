"""Libraries the analysis takes to keep no tensor their code makes (`KEEPS_NO_TENSORS_LIBRARIES`), and those the
bench declares under `stateless-libraries`, checked by running them: code they run under
inference mode keeps no tensor it made there (benchmarks/verify.py, `STATELESS_LIBRARIES`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from types import ModuleType

import pytest
import torch
from chatterbox_codemod.analysis.torchapi import KEEPS_NO_TENSORS_LIBRARIES
from chatterbox_codemod.benchmarks.verify import STATELESS_LIBRARIES


def kept_inference_tensors(roots: Iterable[tuple[str, object]], library: str) -> Iterator[str]:
    """Where an inference tensor is reachable from `roots`: through attributes, containers, and the globals
    and class attributes of `library`'s modules and classes (the walk stays in the library)."""

    def ours(thing) -> bool:
        name = getattr(thing, "__module__", None) if isinstance(thing, type) else thing.__name__
        return isinstance(name, str) and (name == library or name.startswith(f"{library}."))

    seen: set[int] = set()
    pending = list(roots)
    while pending:
        path, value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            if value.is_inference():
                yield path
            continue
        if isinstance(value, dict):
            pending += [(f"{path}[{key!r}]", item) for key, item in value.items()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending += [(f"{path}[{i}]", item) for i, item in enumerate(value)]
        elif isinstance(value, (ModuleType, type)):
            if ours(value):
                pending += [(f"{path}.{name}", item) for name, item in vars(value).items()]
        elif hasattr(value, "__dict__"):
            pending += [(f"{path}.{name}", item) for name, item in vars(value).items()]


@pytest.mark.slow
def test_s3tokenizer_keeps_no_tensor_its_code_makes_under_inference_mode():
    """chatterbox's tokenizer runs s3tokenizer's `padding` and `S3TokenizerV2.quantize` (random weights:
    what is kept does not depend on them) under inference mode, twice, on clips of different lengths (a cache
    extended on demand would grow on the second); then nothing reachable from the tokenizer or from
    s3tokenizer's modules is an inference tensor, and a call outside inference mode runs."""
    assert STATELESS_LIBRARIES == ("s3tokenizer",)
    from chatterbox.models.s3tokenizer.s3tokenizer import S3Tokenizer

    torch.manual_seed(0)
    tokenizer = S3Tokenizer().eval()
    with torch.inference_mode():
        for seconds in (1, 2):
            tokens, lengths = tokenizer(torch.randn(1, 16000 * seconds))
            assert tokens.is_inference() and int(lengths[0]) == 25 * seconds
    roots = [("tokenizer", tokenizer)]
    roots += [(name, module) for name, module in sorted(sys.modules.items())
              if name == "s3tokenizer" or name.startswith("s3tokenizer.")]
    assert len(roots) > 3  # the walk reached the library's modules
    assert list(kept_inference_tensors(roots, "s3tokenizer")) == []
    tokens, _ = tokenizer(torch.randn(1, 16000))
    assert not tokens.is_inference()


def test_the_walk_finds_a_tensor_a_library_keeps():
    """The other side: what an object, or a class of the library, caches under inference mode is found, by
    its path."""

    class Cache:
        shared: dict = {}

        def __init__(self):
            self.store = {}

        def get(self, n):
            Cache.shared.setdefault(n, torch.zeros(n))
            return self.store.setdefault(n, torch.ones(n))

    cache = Cache()
    cache.get(2)
    with torch.inference_mode():
        cache.get(3)
    module = ModuleType("cachelib")
    module.Cache = Cache
    Cache.__module__ = "cachelib"
    found = kept_inference_tensors([("cache", cache), ("cachelib", module)], "cachelib")
    assert sorted(found) == ["cache.store[3]", "cachelib.Cache.shared[3]"]


@pytest.mark.parametrize("library", ["einops", "tqdm"])
def test_libraries_the_analysis_knows_keep_no_tensor_their_code_makes(library):
    """`KEEPS_NO_TENSORS_LIBRARIES`: einops (its caches hold parsed patterns and shapes, read from its source:
    `lru_cache` contents cannot be walked) and tqdm, run under inference mode, keep no inference tensor in
    their modules' globals or classes."""
    assert f"{library}." in KEEPS_NO_TENSORS_LIBRARIES
    einops = pytest.importorskip("einops")
    tqdm = pytest.importorskip("tqdm")
    with torch.inference_mode():
        x = torch.randn(2, 3, 4)
        einops.rearrange(x, "b c t -> b t c")
        einops.repeat(x, "b c t -> b c t r", r=2)
        packed, shapes = einops.pack([x, x], "b * t")
        einops.unpack(packed, shapes, "b * t")
        for _ in tqdm.tqdm([x, x], disable=True):
            pass
    roots = [(name, module) for name, module in sorted(sys.modules.items())
             if name == library or name.startswith(f"{library}.")]
    assert roots
    assert list(kept_inference_tensors(roots, library)) == []
