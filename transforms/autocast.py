"""Run grad-off inference entry points under `torch.autocast`, switched at run time, with float32 fences where needed.

Id: `autocast` (opt-in: run it with `--select autocast`; it is never selected by default)

Rewrites
--------
An *entry point* is a function or method, in the target files, that runs
grad-off: decorated with `torch.inference_mode()` or `torch.no_grad()` (or
given `@torch.inference_mode()` by `entry-points` or `inference-mode` in the
same run), and that reaches a call of a module with parameters (a torch
module such as a linear, attention or convolution layer, or a project module
holding one) in its body or in the functions it calls. It gets one more
decorator, the innermost (under its grad-mode decorator):

    @torch.inference_mode()
    @_autocast
    def inference(self, speech_feat, cache_source=...):

where `_autocast` is a helper generated once per file; the body is left as it
is. The helpers read the environment variable `CHATTERBOX_AUTOCAST` when the
module is imported:

    # chatterbox-codemod (autocast): CHATTERBOX_AUTOCAST=bf16 or fp16 runs entry points under torch.autocast.
    _AUTOCAST = (os.environ.get("CHATTERBOX_AUTOCAST") or "off").strip().lower()

- `off` (the default, also when unset or empty): `_autocast` returns the
  function it is given, and so does every fence, so the rewritten code runs
  exactly the original computation and returns the very objects the original
  returns. (Not `autocast(enabled=False)`, which would switch off an autocast
  region the caller opened itself.)
- `bf16` / `fp16`: each call of an entry point runs under `torch.autocast` in
  `torch.bfloat16` / `torch.float16`, on the device found in its arguments
  (that of the first parameter of a module argument, `self` for a module's
  method, else of the first tensor argument, else `"cpu"`). `bf16` on a CUDA
  device without bfloat16 support (`torch.cuda.is_bf16_supported()` is false)
  runs in float32 and warns (`warnings.warn`, once per rewritten file under
  Python's default warning filter).
- Any other value raises `ValueError` when the module is imported: a typo must
  not silently run a precision nobody asked for.

*The boundary.* Under `bf16`/`fp16`, what an entry point returns leaves it in
the precision it has without autocast. The *reference dtype*, taken when the
call starts, is that of the first floating-point parameter of a module
argument (`self`), else of the first floating-point tensor argument, else
`torch.get_default_dtype()`. Every tensor in the result whose dtype is the
reduced one (bfloat16 for `bf16`, float16 for `fp16`) is cast to the reference
dtype, found through `tuple`s, named tuples, `list`s and `dict`s at any depth;
a container is rebuilt (as the same type) only where something in it was cast,
else it is the very object the function returned. Tensors of other dtypes
(token ids, the float32 results of fenced helpers) are left alone, and nothing
is cast when the reference dtype is the reduced one itself (a model in
bfloat16 under `bf16`). The decorator wraps the call, so early `return`s, a bare
`return` and a function that returns nothing need nothing of their own.

*Precision fences.* In everything an entry point runs (its own body and the
project functions it calls, as far as the index resolves them, including the
methods a call on a value of unknown type may reach), the analysis finds the
operations that reduced precision breaks or degrades. They are data, in
`FENCED_OPERATIONS`:

- `torch.complex`: no bfloat16 kernel (`Expected both inputs to be Half, Float
  or Double tensors but got BFloat16`);
- `torch.stft`, `torch.istft`, `Tensor.stft()`/`.istft()` and `torch.fft.*`:
  no bfloat16/float16 FFT on the CPU (`MKL FFT doesn't support tensors of type:
  BFloat16`), and half-precision spectra lose the small bins;
- `torch.cumsum`, `torch.cumprod` and the tensor methods: rounding error
  accumulates along the dimension; SineGen's phase, a cumsum of f0/sr over one
  second at 24 kHz, is off by up to a whole period (0.99) in bfloat16;
- `torch.log`, `log2`, `log10`, `log1p`, `exp`, `expm1` (functions, and tensor
  methods called without positional arguments): log-mels and magnitudes, where
  bfloat16's 8-bit mantissa turns into a relative error of the output;
- `torch.linalg.*`: decompositions and solves have no low-precision kernels
  (`linalg.inv: Low precision dtypes not supported`) or are ill-conditioned in
  them;
- random draws shaped like a tensor: `torch.randn_like`, `torch.rand_like`,
  `torch.randint_like` and `torch.normal`. Drawn for a bfloat16/float16 tensor,
  normal and uniform draws follow another sequence than for float32 (with the
  same seed, `torch.randn_like` of a bfloat16 `mu` differs from the float32
  draw by up to 5.9 on the CPU), and bfloat16 holds integers exactly only up to
  256; fenced, the draw is made for a float32 copy of the tensor, so it is the
  float32 draw, bit for bit (the flow's starting noise, HiFT's source noise).
  Left out: `torch.bernoulli`, `torch.poisson` and `torch.binomial` draw the
  same sequence in every dtype on the CPU, and their results follow the values
  of their probabilities or rates, which no cast restores once autocast has
  rounded them; draws given a dtype of their own (`torch.randn(shape,
  dtype=...)`), which autocast does not change;
- sampling: `torch.multinomial` (and `Tensor.multinomial()`), with the softmax
  (`torch.softmax`, `torch.nn.functional.softmax`, `.softmax()`) that computes
  its probabilities in the same function: small probabilities round to zero.

Each such call is fenced where it can be, by a second helper, `_autocast_fp32`:
under autocast it runs its function with autocast disabled and its
bfloat16/float16 tensor arguments cast to float32 (it does nothing outside an
autocast region, and with `off` it is the identity):

- *method fence*: the smallest enclosing helper that runs no module with
  parameters itself gets `@_autocast_fp32` (HiFT's `_istft`, `SineGen.forward`);
- *call-site fence*: a fenced call spelled as a torch function
  (`torch.exp(...)`, `F.softmax(...)`) in the entry point's own body, or in a
  helper that also runs modules with parameters (fencing that helper would take
  its modules out of autocast), becomes `_autocast_fp32(torch.exp)(...)`.

What a fenced helper calls already runs in float32 with autocast off and gets
no fence of its own. Fences are reported as sites of their own, each naming the
entry points that need it. `import os`, `import functools`, `import warnings`
and `import torch` are added where missing. The generated code needs torch >= 2.4
(`torch.is_autocast_enabled(device_type)`).

`[tool.chatterbox-codemod.autocast]` in the target project's `pyproject.toml`
takes `include` (functions or methods to wrap even when the analysis would not
pick them; qualified `pkg.mod.Class.method` or `Class.method` patterns) and
`exclude` (never wrap these).

Refuses
-------
- `unsafe`, never fixable: a fenced operation runs where no fence can be
  placed: a tensor method (`x.cumsum(-1)`, `x.log()`) in the entry point's own
  body, or in a helper that takes no decorator (one that also runs modules with
  parameters, a nested function, a generator, an `async def`); any fenced call
  in a lambda (it may run later, outside its helper), in TorchScript, in a
  function defined more than once, outside the target files, or where a skip
  comment suppresses its fence. Also a call the analysis cannot resolve
  (`fn(x)` through a value of unknown type), which may run a fenced operation
  unseen. And an in-place draw, `x.normal_()` or `x.uniform_()`, wherever it
  runs: it fills its tensor in that tensor's dtype (another sequence in
  bfloat16/float16, as above), and a fence can only cast copies (a draw into a
  copy of an argument would be lost); drawing out of place
  (`torch.randn_like(x) * std + mean`) lets the tool fence it. The other
  in-place draws (`bernoulli_`, `random_`, `geometric_`, `exponential_`,
  `log_normal_`, `cauchy_`) draw float32's sequence, rounded to the tensor's
  dtype, on the CPU and are left alone. The reason names the call, its file and
  line, and the call chain from the entry point; moving the operation into a
  helper of its own lets the tool fence it. `--unsafe-fixes` never wraps these.
- `not-applicable`: entry points already wrapped (`@_autocast`), `async def`
  and generator bodies (the autocast state would stay on in the caller between
  `yield`s), TorchScript, functions defined more than once, and files where a
  name the rewrite needs (`_AUTOCAST`, `_autocast`, `_autocast_device`,
  `_autocast_fp32`, or one of the standard modules it imports) is already
  bound to something else, which includes a file rewritten by an earlier
  version of this transform (`with _autocast(self):` over the body): undo that
  rewrite, then run the tool again.
- `suppressed`: listed under `exclude` in `[tool.chatterbox-codemod.autocast]`,
  or a skip comment on the `def` line.
- Grad-on methods and methods that run no module with parameters are not
  candidates (unless listed under `include`).

Fix safety
----------
Autocast changes numerics: with `bf16` or `fp16` the outputs differ from
float32 far beyond the 1e-5 the other transforms keep, so no `applied` site
here is "safe" in that sense. The rewrite is behind the run-time switch, off by
default, and with `off` the rewritten code runs exactly the original
computation (`@_autocast` and every fence are the identity: the functions are
the original ones, and return the original objects). What `applied` promises
under `bf16`/`fp16`: every operation from the table that the analysis sees on
the entry point's paths runs in float32 with autocast off, and the tensors the
entry point returns come back in the reference dtype (*The boundary*).
What it cannot see: code of other libraries (transformers' models, torchaudio),
which is trusted to be autocast-aware as torch's own modules are; functions
passed as values and called elsewhere; tensors inside containers passed to a
fence (only top-level arguments are cast). The boundary casts what an entry
point returns, not what it leaves elsewhere: tensors it stores (on `self`, in a
cache) or returns inside an object of another type (a dataclass, a `dict` or
`list` subclass such as transformers' `ModelOutput`, `torch.return_types`, any
other object holding tensors) stay in the reduced precision. It cannot tell a
tensor autocast made from one the original returns in the reduced dtype on
purpose (`x.half()` in a float32 model): that one comes back cast too. An entry
point called by another one casts its results back on its way out, and the
caller's autocast casts them down again where it needs to.
Compare outputs against an `off` run before relying on `bf16`/`fp16`.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import libcst as cst
from chatterbox_codemod.analysis import (
    GRAD_OFF_MODES,
    TORCH_PREFIXES,
    CallSite,
    External,
    FunctionInfo,
    HazardKind,
    ModuleInfo,
    ProjectIndex,
    screen,
)
from chatterbox_codemod.report import Site, Status
from libcst.helpers import get_full_name_for_node

from .base import (
    AnalysisContext,
    DefinitionAnchor,
    Finding,
    Option,
    ScopeTracker,
    Transform,
    ensure_torch,
    local_qualname,
    torch_name,
)

ENV_VAR = "CHATTERBOX_AUTOCAST"
SWITCH = "_AUTOCAST"
VALUES = ("off", "bf16", "fp16")
ENTER = "_autocast"  # the decorator an entry point runs under
DEVICE = "_autocast_device"
FENCE = "_autocast_fp32"
HELPERS = (DEVICE, ENTER, FENCE)  # in the order they are defined
STDLIB_IMPORTS = {ENTER: ("functools", "warnings"), FENCE: ("functools",)}  # besides `os`, which the switch needs
PRECISION = "precision"  # the hazard of a fenced operation that no fence can cover
NOT_MODULE_CODE = "<module>"
SKIP_ADVICE = "remove the skip comment, or list the entry point under `exclude`"


# ---------------------------------------------------------------------------
# The fenced operations: what reduced precision breaks or degrades, and why (the docstring lists them too)


@dataclass(frozen=True)
class FencedOperation:
    """A family of operations, as torch functions and as tensor methods."""

    functions: frozenset[str]  # qualified names; `torch.fft.*` covers a namespace
    methods: frozenset[str]  # tensor methods
    why: str
    unary: bool = False  # the tensor methods take no positional argument (`x.log()`, not `logger.log(level, msg)`)
    no_fence: str = ""  # why no fence can put it in float32, for operations that make their site `unsafe` anywhere
    advice: str = ""  # how to write it so that the tool can fence it, for those

    def matches_function(self, name: str) -> bool:
        return name in self.functions or any(
            pattern.endswith(".*") and name.startswith(pattern[:-1]) for pattern in self.functions)


FENCED_OPERATIONS: tuple[FencedOperation, ...] = (
    FencedOperation(frozenset({"torch.complex"}), frozenset(),
                    "complex tensors have no bfloat16 kernel: `torch.complex` raises on bfloat16 inputs"),
    FencedOperation(frozenset({"torch.stft", "torch.istft", "torch.functional.stft", "torch.functional.istft",
                               "torch.fft.*"}),
                    frozenset({"stft", "istft"}),
                    "FFTs have no bfloat16/float16 kernels on the CPU, and half-precision spectra lose the small bins"),
    FencedOperation(frozenset({"torch.cumsum", "torch.cumprod"}), frozenset({"cumsum", "cumprod", "cumsum_",
                                                                             "cumprod_"}),
                    "rounding error accumulates along the dimension: a phase summed over a second of samples is off "
                    "by up to a whole period in bfloat16"),
    FencedOperation(frozenset({"torch.log", "torch.log2", "torch.log10", "torch.log1p", "torch.exp", "torch.expm1"}),
                    frozenset({"log", "log2", "log10", "log1p", "exp", "expm1", "log_", "log2_", "log10_", "log1p_",
                               "exp_", "expm1_"}),
                    "log/exp of features: bfloat16's 8-bit mantissa becomes a relative error of the magnitudes and "
                    "log-mels", unary=True),
    FencedOperation(frozenset({"torch.linalg.*"}), frozenset(),
                    "decompositions and solves have no low-precision kernels or are ill-conditioned in them"),
    FencedOperation(frozenset({"torch.randn_like", "torch.rand_like", "torch.randint_like", "torch.normal"}),
                    frozenset(),
                    "a normal or uniform draw shaped like a bfloat16/float16 tensor follows another random sequence "
                    "than the float32 draw, so sampled paths diverge"),
    FencedOperation(frozenset(), frozenset({"normal_", "uniform_"}),
                    "an in-place draw into a bfloat16/float16 tensor follows another random sequence than into a "
                    "float32 one",
                    no_fence="it draws in place, in its tensor's own dtype, and a fence can only cast copies",
                    advice="draw out of place (`torch.randn_like(x) * std + mean` for `x.normal_(mean, std)`, "
                           "`torch.rand_like(x)` for `x.uniform_()`), which the tool fences"),
    FencedOperation(frozenset({"torch.multinomial"}), frozenset({"multinomial"}),
                    "sampling from half-precision probabilities rounds small probabilities to zero"),
)
# Fenced only where its result is the distribution `multinomial` samples from, in the same function.
SOFTMAX = FencedOperation(frozenset({"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"}),
                          frozenset({"softmax"}), "the probabilities `multinomial` samples from")
SAMPLERS = FENCED_OPERATIONS[-1]


# ---------------------------------------------------------------------------
# What the rewrite adds to a file


SWITCH_COMMENT = f"# chatterbox-codemod (autocast): {ENV_VAR}=bf16 or fp16 runs entry points under torch.autocast."


def switch_source() -> str:
    values = ", ".join(f'"{value}"' for value in VALUES)
    return (f'{SWITCH} = (os.environ.get("{ENV_VAR}") or "off").strip().lower()\n'
            f"if {SWITCH} not in ({values}):\n"
            f'    raise ValueError(f"{ENV_VAR}={{{SWITCH}!r}}: expected off, bf16 or fp16")\n')


# The generated helpers, as they read in a file that imports `torch` under that name.
HELPER_SOURCES = {
    DEVICE: '''\
def _autocast_device(values):
    """The device type autocast applies to: a module's first parameter's, else the first tensor's, else "cpu"."""
    for value in values:
        if isinstance(value, torch.nn.Module):
            for parameter in value.parameters():
                return parameter.device.type
        elif isinstance(value, torch.Tensor):
            return value.device.type
    return "cpu"
''',
    ENTER: '''\
def _autocast(fn):
    """An entry point: with CHATTERBOX_AUTOCAST=bf16 or fp16, `fn` runs under `torch.autocast` on the device of its
    arguments, and what it returns comes back in the precision it has without autocast (`cast_back`). With `off`,
    `fn` itself; with `bf16` on a GPU without bfloat16, `fn` as written (warned).
    """
    if _AUTOCAST == "off":
        return fn
    reduced = torch.bfloat16 if _AUTOCAST == "bf16" else torch.float16

    def reference_dtype(values):
        """The dtype `fn` computes in without autocast: a module's first floating-point parameter's, else the first
        floating-point tensor's, else torch's default."""
        for value in values:
            if isinstance(value, torch.nn.Module):
                for parameter in value.parameters():
                    if parameter.is_floating_point():
                        return parameter.dtype
            elif isinstance(value, torch.Tensor) and value.is_floating_point():
                return value.dtype
        return torch.get_default_dtype()

    def cast_back(value, dtype):
        """`value` with its tensors in the reduced precision cast to `dtype`, also inside tuples (named ones too),
        lists and dicts. Any other object, and a container with nothing to cast, is returned as it is."""
        if isinstance(value, torch.Tensor):
            return value.to(dtype) if value.dtype == reduced else value
        if type(value) is dict:
            cast = {key: cast_back(item, dtype) for key, item in value.items()}
            return value if all(cast[key] is item for key, item in value.items()) else cast
        named_tuple = isinstance(value, tuple) and hasattr(value, "_make")
        if type(value) in (tuple, list) or named_tuple:
            cast = [cast_back(item, dtype) for item in value]
            if all(new is old for new, old in zip(cast, value)):
                return value
            return value._make(cast) if named_tuple else type(value)(cast)
        return value

    @functools.wraps(fn)
    def entry(*args, **kwargs):
        values = [*args, *kwargs.values()]
        device = _autocast_device(values)
        if _AUTOCAST == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            warnings.warn("CHATTERBOX_AUTOCAST=bf16: this GPU does not support bfloat16; running in float32")
            return fn(*args, **kwargs)
        dtype = reference_dtype(values)
        with torch.autocast(device_type=device, dtype=reduced):
            result = fn(*args, **kwargs)
        return result if dtype == reduced else cast_back(result, dtype)

    return entry
''',
    FENCE: '''\
def _autocast_fp32(fn):
    """A precision fence: under autocast, `fn` runs with autocast off and its bfloat16/float16 tensor arguments
    cast to float32. Outside autocast, and with CHATTERBOX_AUTOCAST=off, `fn` runs as written.
    """
    if _AUTOCAST == "off":
        return fn

    def fp32(value):
        if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
            return value.float()
        return value

    @functools.wraps(fn)
    def fenced(*args, **kwargs):
        device = _autocast_device([*args, *kwargs.values()])
        if not torch.is_autocast_enabled(device):
            return fn(*args, **kwargs)
        with torch.autocast(device_type=device, enabled=False):
            return fn(*map(fp32, args), **{name: fp32(value) for name, value in kwargs.items()})

    return fenced
''',
}


def helper_source(name: str, torch: str) -> str:
    """The source of one generated helper, spelled with the file's name for torch."""
    return re.sub(r"\btorch\.", f"{torch}.", HELPER_SOURCES[name])


def _needed_helpers(kinds: set[str]) -> list[str]:
    """The helpers a file needs for the rewrites it gets (`wrap`, `method`, `call`), in definition order."""
    needed = {DEVICE}
    if "wrap" in kinds:
        needed.add(ENTER)
    if kinds & {"method", "call"}:
        needed.add(FENCE)
    return [name for name in HELPERS if name in needed]


# ---------------------------------------------------------------------------
# Analysis


@dataclass(frozen=True, eq=False)
class AutocastAnchor(DefinitionAnchor):
    """Where one rewrite goes: a function by scope path, and what to do there.

    `wrap`: the entry point gets `@_autocast`; `method`: the function gets `@_autocast_fp32`; `call`: the
    `ordinal`-th call of `callee` (as spelled, a dotted name) in its own body becomes `_autocast_fp32(callee)(...)`.
    """

    kind: str = "wrap"
    callee: str = ""
    ordinal: int = 0

    def locate(self, module: cst.Module) -> cst.CSTNode:
        finder = _FunctionFinder(self.scope)
        module.visit(finder)
        if finder.found is None:
            raise LookupError(f"`{self.scope}` not found in the parsed file")
        if self.kind != "call":
            return finder.found
        calls = _CallCounter(self.callee)
        finder.found.body.visit(calls)
        if self.ordinal >= len(calls.found):
            raise LookupError(f"call {self.ordinal} of `{self.callee}` not found in `{self.scope}`")
        return calls.found[self.ordinal]


@dataclass
class _Fence:
    """A fence one or more entry points need: on a helper (`method`) or around one call (`call`)."""

    fn: FunctionInfo
    kind: str  # "method" or "call"
    calls: list[tuple[CallSite, str]] = field(default_factory=list)  # the fenced calls, as spelled
    node: ast.Call | None = None  # the call, for a call-site fence
    ordinal: int = 0
    callee: str = ""
    entries: list[FunctionInfo] = field(default_factory=list)


@dataclass
class _Problem:
    """A fenced operation (or an unresolved call) that no fence can cover."""

    fn: FunctionInfo
    node: ast.Call
    chain: list[str]  # how the entry point reaches `fn`
    why: str = ""  # why no fence fits
    hazard: str = PRECISION
    advice: str = "move it into a helper of its own, which the tool then fences"


class _Analysis:
    """Everything the transform's analysis shares across entry points of one run."""

    def __init__(self, context: AnalysisContext):
        self.context = context
        self.index: ProjectIndex = context.index
        self._work = _module_work(self.index, context.where)
        self._parents: dict[int, dict[int, ast.AST]] = {}
        self._fenced_calls: dict[int, list[tuple[CallSite, FencedOperation, str, bool]]] = {}
        self._taken: dict[int, str | None] = {}

    # -- what an entry point reaches -------------------------------------------

    def work(self, fn: FunctionInfo) -> str | None:
        """The call chain to the first call of a module with parameters `fn` reaches, or None."""
        return self._work.get(id(fn))

    def fenced_calls(self, fn: FunctionInfo) -> list[tuple[CallSite, FencedOperation, str, bool]]:
        """(site, operation, spelling, function form) of every fenced call in `fn`'s own body, in source order."""
        key = id(fn)
        if key not in self._fenced_calls:
            found = []
            for site in fn.calls:
                match = _fenced_operation(self.index, fn, site, FENCED_OPERATIONS)
                if match is not None:
                    found.append((site, *match))
            samplers = [site for site, operation, _, _ in found if operation is SAMPLERS]
            for site in _softmax_feeding(self.index, fn, samplers):
                found.append((site, *_fenced_operation(self.index, fn, site, (SOFTMAX,))))
            self._fenced_calls[key] = sorted(found, key=lambda item: (item[0].node.lineno, item[0].node.col_offset))
        return self._fenced_calls[key]

    # -- where fences can go ------------------------------------------------------

    def in_lambda(self, fn: FunctionInfo, node: ast.AST) -> bool:
        parents = self.parents(fn)
        while id(node) in parents:
            node = parents[id(node)]
            if isinstance(node, ast.Lambda):
                return True
        return False

    def parents(self, fn: FunctionInfo) -> dict[int, ast.AST]:
        key = id(fn)
        if key not in self._parents:
            self._parents[key] = {id(child): node for node in _body_nodes(fn) for child in ast.iter_child_nodes(node)}
        return self._parents[key]

    def blocked(self, fn: FunctionInfo) -> str | None:
        """Why no rewrite of any kind can go in `fn` (its file, its shape), or None."""
        module = fn.module
        if module.path not in self.context.targets:
            return f"{fn.short} is outside the target files"
        if fn.qualname.partition("@")[0] in self.index.redefined:
            return f"{fn.short} is defined more than once in its module (which one runs is decided at run time)"
        if fn.is_jit:
            return f"{fn.short} is TorchScript, which rejects the helpers"
        taken = self.taken_name(module)
        if taken:
            return taken
        return None

    def method_fence_blocked(self, fn: FunctionInfo, entries: set[int]) -> str | None:
        """Why `fn` cannot take `@_autocast_fp32`, or None."""
        if fn.name == NOT_MODULE_CODE:
            return "module-level code"
        if id(fn) in entries:
            return f"the body of the entry point {fn.short} itself"
        work = self.work(fn)
        if work is not None:
            return f"{fn.short}, which also runs modules with parameters ({work})"
        if fn.parent is not None:
            return f"{fn.short}, a nested function"
        if fn.is_async:
            return f"{fn.short}, an `async def`"
        if fn.is_generator:
            return f"{fn.short}, a generator (a decorator would not cover its body)"
        return self.blocked(fn)

    def taken_name(self, module: ModuleInfo) -> str | None:
        """The first name the rewrite needs that `module` binds to something else, as a reason; None if free."""
        key = id(module)
        if key not in self._taken:
            self._taken[key] = _taken_name(self.index, module)
        return self._taken[key]


def _module_work(index: ProjectIndex, where) -> dict[int, str]:
    """For every function that reaches a call of a module with parameters: the chain to the first such call.

    A fixed point over the call graph (grad modes do not matter here), so the answer does not depend on the
    order functions are asked in.
    """
    work: dict[int, str] = {}
    functions = list(index.functions.values())
    for fn in functions:
        for site in fn.calls:
            if any(_runs_parameters(index, t) for t in site.module_types):
                work[id(fn)] = f"`{site.describe()}(...)` ({where(fn, site.line)})"
                break
    changed = True
    while changed:
        changed = False
        for fn in functions:
            if id(fn) in work:
                continue
            for site in fn.calls:
                callee = next((c for c in site.targets if id(c) in work and c.name != "__init__"), None)
                if callee is not None:
                    work[id(fn)] = f"{callee.short} -> {work[id(callee)]}"
                    changed = True
                    break
    return work


def _runs_parameters(index: ProjectIndex, module_type) -> bool:
    """A module known to hold parameters (as `entry-points` judges it): an object of another library's class is no
    evidence, a torch module or a project module is."""
    if isinstance(module_type, External):
        return module_type.name.startswith(TORCH_PREFIXES) and index.has_parameters(module_type)
    return index.has_parameters(module_type)


def _fenced_operation(index: ProjectIndex, fn: FunctionInfo, site: CallSite,
                      operations: Sequence[FencedOperation]) -> tuple[FencedOperation, str, bool] | None:
    """(operation, spelling, spelled as a function) when the call runs one of `operations`."""
    func = site.node.func
    qualified = index.qualify(fn.module, func, fn)
    if qualified is not None:
        name = index.canonical(qualified)
        for operation in operations:
            if operation.matches_function(name):
                return operation, ast.unparse(func), True
        return None
    if not isinstance(func, ast.Attribute) or site.callees or site.module_types or site.constructs:
        return None
    if site.external is not None and not site.external.startswith("torch."):
        return None  # a method of a library object (`logger.log(...)`)
    for operation in operations:
        if func.attr in operation.methods and not (operation.unary and site.node.args):
            return operation, f".{func.attr}()", False
    return None


def _softmax_feeding(index: ProjectIndex, fn: FunctionInfo, samplers: list[CallSite]) -> list[CallSite]:
    """Softmax calls in `fn` whose result `multinomial` samples from: directly, or through a name bound to it."""
    if not samplers:
        return []
    sites = {id(site.node): site for site in fn.calls}
    found: dict[int, CallSite] = {}
    for sampler in samplers:
        call = sampler.node
        if isinstance(call.func, ast.Attribute) and index.qualify(fn.module, call.func, fn) is None:
            probabilities = call.func.value  # `probs.multinomial(1)`
        else:
            probabilities = call.args[0] if call.args else next(
                (k.value for k in call.keywords if k.arg in ("input", "self")), None)
        candidates: list[ast.expr] = []
        if isinstance(probabilities, ast.Call):
            candidates.append(probabilities)
        elif isinstance(probabilities, ast.Name):
            for node in fn.nodes:
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
                        isinstance(t, ast.Name) and t.id == probabilities.id for t in node.targets):
                    candidates.append(node.value)
        for candidate in candidates:
            site = sites.get(id(candidate))
            if site is not None and _fenced_operation(index, fn, site, (SOFTMAX,)) is not None:
                found[id(candidate)] = site
    return list(found.values())


def _taken_name(index: ProjectIndex, module: ModuleInfo) -> str | None:
    torch = next((local for local, name in module.imports.items() if name == "torch"), "torch")
    expected = {SWITCH: switch_source(), **{name: helper_source(name, torch) for name in HELPERS}}
    for name, source in expected.items():
        if (name in module.defs or name in module.assigns or name in module.imports) and \
                not _defines_as(module, name, source):
            return f"the name `{name}` the rewrite needs is already used in this file"
    for name in ("os", *sorted({m for modules in STDLIB_IMPORTS.values() for m in modules})):
        bound = module.imports.get(name)
        if (bound is not None and bound != name) or name in module.defs or name in module.assigns:
            return f"the name `{name}` the rewrite imports is already bound to something else in this file"
    return None


def _defines_as(module: ModuleInfo, name: str, source: str) -> bool:
    """Whether the file's top-level binding of `name` is exactly the first statement of `source`."""
    expected = ast.dump(ast.parse(source).body[0])
    found = [node for node in module.tree.body if name in _top_level_names(node)]
    return len(found) == 1 and ast.dump(found[0]) == expected


def _top_level_names(statement: ast.stmt) -> set[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    if isinstance(statement, ast.Assign):
        return {t.id for t in statement.targets if isinstance(t, ast.Name)}
    return set()


def _is_generated_helper(fn: FunctionInfo) -> bool:
    return fn.parent is None and fn.cls is None and fn.name in HELPERS


def _body_nodes(fn: FunctionInfo) -> Iterator[ast.AST]:
    """Every node of the body, lambdas included, not descending into nested functions or classes."""
    stack: list[ast.AST] = list(reversed(fn.node.body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _call_ordinal(fn: FunctionInfo, call: ast.Call) -> tuple[str, int]:
    """The dotted name `call` is spelled with, and how many calls spelled the same precede it in `fn`'s body."""
    spelled = ast.unparse(call.func)
    same = sorted((n for n in _body_nodes(fn) if isinstance(n, ast.Call) and _dotted(n.func) == spelled),
                  key=lambda n: (n.lineno, n.col_offset, -(n.end_lineno or 0), -(n.end_col_offset or 0)))
    return spelled, next(i for i, n in enumerate(same) if n is call)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _already_wrapped(fn: FunctionInfo) -> bool:
    return any(_dotted(d) == ENTER for d in fn.node.decorator_list)


def _has_fence(fn: FunctionInfo) -> bool:
    return any(_dotted(d) == FENCE for d in fn.node.decorator_list)


def _suppressed(fn: FunctionInfo, lines: Sequence[int]) -> bool:
    module = fn.module
    return module.skip_file or any(line in module.skip_lines for line in lines)


def _definition_lines(fn: FunctionInfo) -> tuple[int, ...]:
    return tuple(sorted({fn.node.lineno, *(d.lineno for d in fn.node.decorator_list)}))


def _matches(fn: FunctionInfo, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(fn.qualname, p) or fnmatch.fnmatchcase(fn.short, p) for p in patterns)


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# ---------------------------------------------------------------------------
# The transform


class Autocast(Transform):
    id = "autocast"
    default = False
    options = (
        Option("include", list, "functions or methods to wrap even when the analysis would not pick them "
                                "(`pkg.mod.Class.method` or `Class.method` patterns)"),
        Option("exclude", list, "functions or methods never to wrap"),
    )
    analysis_order = 3  # after the transforms that add grad-off regions
    rewrite_order = 3

    @classmethod
    def erase_owned(cls, tree: ast.Module, findings: Sequence[Finding] = ()) -> ast.Module:
        return _EraseAutocast().visit(tree)

    @classmethod
    def may_find_sites(cls, tree: ast.Module, settings: dict, project: screen.ProjectFacts) -> bool:
        # An entry point is grad-off by its own decorator or by a site another transform finds in the file.
        return bool(settings.get("include")) or screen.may_refer_to_grad_api(tree, project)

    def analyze(self, context: AnalysisContext) -> list[Finding]:
        analysis = _Analysis(context)
        index = context.index
        include = context.settings.get("include", [])
        exclude = context.settings.get("exclude", [])
        added = {id(region) for region in context.inference_regions if isinstance(region, FunctionInfo)}
        candidates = [
            fn for fn in index.functions.values()
            if fn.module.path in context.targets and fn.name != NOT_MODULE_CODE and fn.parent is None
            and ((fn.grad_decorator in GRAD_OFF_MODES or id(fn) in added) and analysis.work(fn) is not None
                 or _matches(fn, include))
        ]
        entry_ids = {id(fn) for fn in candidates}
        findings: list[Finding] = []
        fences: dict[tuple, _Fence] = {}
        for fn in candidates:
            finding = self._judge(analysis, fn, include, exclude, entry_ids, fences)
            findings.append(finding)
        for fence in fences.values():
            if fence.entries:
                findings.append(self._fence_finding(context, fence))
        return findings

    def _judge(self, analysis: _Analysis, fn: FunctionInfo, include: list[str], exclude: list[str],
               entry_ids: set[int], fences: dict[tuple, _Fence]) -> Finding:
        site = Site(transform=self.id, path=fn.module.path, line=fn.node.lineno, symbol=fn.short,
                    status=Status.NOT_APPLICABLE, reason="", fixable=False)
        lines = _definition_lines(fn)
        finding = Finding(site, suppress_lines=lines)
        work = analysis.work(fn)
        what = (f"{fn.short} runs modules with parameters grad-off ({work})" if work else
                f"{fn.short} is listed under `include` in [tool.chatterbox-codemod.autocast]")
        wrapped = _already_wrapped(fn)
        if _matches(fn, exclude):
            site.status = Status.SUPPRESSED
            site.reason = "listed under `exclude` in [tool.chatterbox-codemod.autocast]"
            return finding
        if _suppressed(fn, lines):
            site.status, site.reason = Status.SUPPRESSED, "marked `# chatterbox-codemod: skip`"
            return finding
        shape = self._shape_refusal(analysis, fn)
        if shape is not None and not wrapped:
            site.reason = f"{what}, but {shape}"
            return finding

        plan, problems = self._fences_for(analysis, fn, entry_ids)
        if problems:
            problem = min(problems, key=lambda p: p.hazard != PRECISION)  # a certain problem before a possible one
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            call = ast.unparse(problem.node)
            site.status, site.fixable = Status.UNSAFE, False
            site.hazard, site.subject = problem.hazard, call
            where = analysis.context.where(problem.fn, problem.node.lineno)
            through = f" (reached through {' -> '.join(problem.chain)})" if len(problem.chain) > 1 else ""
            if problem.hazard == HazardKind.UNRESOLVED:
                site.reason = (f"{what}, but cannot resolve `{call}` at {where}{through}: it may run an operation that "
                               f"needs float32 where no fence is placed; check that call by hand{more}.")
            else:
                site.reason = (f"{what}, but `{call}` at {where}{through} needs float32 and no fence can be placed: "
                               f"{problem.why}; {problem.advice}{more}.")
            if wrapped:
                site.reason += " (Its body is already wrapped.)"
            return finding

        for key, fence in plan.items():
            fences.setdefault(key, fence).entries.append(fn)
        fenced = self._describe_fences(plan.values())
        if wrapped:
            site.reason = f"{what}; already wrapped (`@{ENTER}`){fenced}"
            return finding
        site.status, site.fixable = Status.APPLIED, True
        site.reason = (f"{what}: it gets `@{ENTER}`, which runs it under torch.autocast in the precision {ENV_VAR} "
                       "names at import (off by default) and casts the bfloat16/float16 tensors it returns back to "
                       f"the dtype it computes in without autocast{fenced}")
        finding.anchor = AutocastAnchor(local_qualname(fn.qualname, fn.module), kind="wrap")
        return finding

    @staticmethod
    def _shape_refusal(analysis: _Analysis, fn: FunctionInfo) -> str | None:
        if fn.is_async:
            return "it is an `async def`: the autocast state would not reach the coroutine's body"
        if fn.is_generator:
            return "it is a generator: the autocast state would stay on in its caller's code between `yield`s"
        blocked = analysis.blocked(fn)
        if blocked:
            return blocked.replace(f"{fn.short} is", "it is", 1)
        return None

    def _fences_for(self, analysis: _Analysis, entry: FunctionInfo,
                    entry_ids: set[int]) -> tuple[dict[tuple, _Fence], list[_Problem]]:
        """The fences the entry point needs, and the fenced operations (or unresolved calls) no fence can cover."""
        plan: dict[tuple, _Fence] = {}
        problems: list[_Problem] = []
        chains: dict[int, list[str]] = {id(entry): [entry.short]}
        queue = [entry]
        for fn in queue:  # breadth first; what a fenced helper calls runs in float32 already and is not entered
            chain = chains[id(fn)]
            fenced = analysis.fenced_calls(fn)
            method_blocked = analysis.method_fence_blocked(fn, entry_ids) if fn is not entry else \
                f"the body of the entry point {fn.short} itself"
            covered = fn is not entry and (_has_fence(fn) or (fenced and method_blocked is None))
            for site in fn.calls:
                if site.unresolved and not site.maybe_callees and not analysis.in_lambda(fn, site.node) \
                        and not covered:
                    problems.append(_Problem(fn, site.node, chain, hazard=HazardKind.UNRESOLVED))
                for callee in site.targets:
                    if covered or id(callee) in chains or callee.name == "__init__" or _is_generated_helper(callee):
                        continue
                    chains[id(callee)] = [*chain, callee.short]
                    queue.append(callee)
            if not fenced or (fn is not entry and _has_fence(fn)):
                continue
            for site, operation, spelled, function_form in fenced:
                if operation.no_fence:
                    problems.append(_Problem(fn, site.node, chain, operation.no_fence, advice=operation.advice))
                elif analysis.in_lambda(fn, site.node):
                    problems.append(_Problem(fn, site.node, chain, f"it is in a lambda, which may run outside "
                                                                   f"{fn.short}"))
                elif method_blocked is None:
                    fence = plan.setdefault(("method", id(fn)), _Fence(fn, "method"))
                    fence.calls.append((site, spelled))
                elif not function_form:
                    problems.append(_Problem(fn, site.node, chain, f"a tensor method in {method_blocked}, where only "
                                                                   "calls of torch functions are fenced in place"))
                elif (blocked := analysis.blocked(fn)) is not None:
                    problems.append(_Problem(fn, site.node, chain, blocked))
                elif _suppressed(fn, (site.node.lineno,)):
                    problems.append(_Problem(fn, site.node, chain, "its line carries `# chatterbox-codemod: skip`",
                                             advice=SKIP_ADVICE))
                else:
                    callee, ordinal = _call_ordinal(fn, site.node)
                    fence = plan.setdefault(("call", id(fn), callee, ordinal),
                                            _Fence(fn, "call", node=site.node, callee=callee, ordinal=ordinal))
                    fence.calls.append((site, spelled))
            method = plan.get(("method", id(fn)))
            if method is not None and _suppressed(fn, _definition_lines(fn)):
                del plan[("method", id(fn))]
                problems.append(_Problem(fn, method.calls[0][0].node, chain, f"the fence would go on {fn.short}, "
                                                                             "which carries a skip comment",
                                         advice=SKIP_ADVICE))
        return plan, problems

    @staticmethod
    def _describe_fences(fences) -> str:
        if not fences:
            return "; it reaches no operation that needs float32"
        methods: list[str] = []
        calls: dict[int, tuple[FunctionInfo, list[str]]] = {}
        for fence in sorted(fences, key=lambda f: (str(f.fn.module.path), f.fn.node.lineno,
                                                   f.node.lineno if f.node else 0)):
            spelled = list(dict.fromkeys(f"`{s}`" for _, s in fence.calls))
            if fence.kind == "method":
                methods.append(f"{fence.fn.short} ({_listing(spelled)})")
            else:
                names = calls.setdefault(id(fence.fn), (fence.fn, []))[1]
                names.extend(name for name in spelled if name not in names)
        parts = [*methods, *(f"{_listing(names)} at the call{'s' if len(names) > 1 else ''} in {fn.short}"
                             for fn, names in calls.values())]
        return f"; fenced in float32: {'; '.join(parts)}"

    def _fence_finding(self, context: AnalysisContext, fence: _Fence) -> Finding:
        fn = fence.fn
        entries = _listing(list(dict.fromkeys(e.short for e in fence.entries)))
        operations = list(dict.fromkeys(f"`{s}` (line {site.line})" for site, s in fence.calls))
        whys = list(dict.fromkeys(_operation_of(context.index, fn, site).why for site, _ in fence.calls))
        scope = local_qualname(fn.qualname, fn.module)
        if fence.kind == "method":
            line, lines = fn.node.lineno, _definition_lines(fn)
            reason = (f"{_listing(operations)} {'needs' if len(operations) == 1 else 'need'} float32 "
                      f"({'; '.join(whys)}); {fn.short} runs no module with parameters, so it gets `@{FENCE}`: under "
                      f"autocast it runs with autocast off and its bfloat16/float16 tensor arguments in float32. "
                      f"Needed by {entries}.")
            anchor = AutocastAnchor(scope, kind="method")
        else:
            line, lines = fence.node.lineno, (fence.node.lineno,)
            why_in_place = ("it is in the entry point's own body" if any(e is fn for e in fence.entries)
                            else f"{fn.short} also runs modules with parameters, which a fence on it would take out "
                                 "of autocast")
            reason = (f"{_listing(operations)} needs float32 ({'; '.join(whys)}); fenced at the call, "
                      f"`{FENCE}({fence.callee})(...)`, because {why_in_place}. Needed by {entries}.")
            anchor = AutocastAnchor(scope, kind="call", callee=fence.callee, ordinal=fence.ordinal)
        site = Site(transform=self.id, path=fn.module.path, line=line, symbol=fn.short, status=Status.APPLIED,
                    reason=reason)
        return Finding(site, anchor, suppress_lines=lines)

    # -- rewrite -----------------------------------------------------------------

    def rewrite(self, module: cst.Module, findings: Sequence[Finding]) -> cst.Module:
        module, torch = ensure_torch(module)
        plans: dict[str, list[AutocastAnchor]] = {}
        for finding in findings:
            plans.setdefault(finding.anchor.scope, []).append(finding.anchor)
        editor = _FunctionEditor(plans)
        module = module.visit(editor)
        if editor.pending:
            raise LookupError(f"`{sorted(editor.pending)[0]}` not found in the parsed file")
        kinds = {anchor.kind for anchors in plans.values() for anchor in anchors}
        helpers = _needed_helpers(kinds)
        module = _add_helpers(module, helpers, torch_name(module) or torch)
        imports = sorted({"os", *(m for name in helpers for m in STDLIB_IMPORTS.get(name, ()))})
        return _ensure_imports(module, imports)


def _operation_of(index: ProjectIndex, fn: FunctionInfo, site: CallSite) -> FencedOperation:
    match = _fenced_operation(index, fn, site, FENCED_OPERATIONS) or _fenced_operation(index, fn, site, (SOFTMAX,))
    return match[0]


# ---------------------------------------------------------------------------
# Rewriting with LibCST


class _FunctionFinder(ScopeTracker):
    def __init__(self, scope: str):
        super().__init__()
        self.target = scope
        self.found: cst.FunctionDef | None = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        super().visit_FunctionDef(node)
        if self.path == self.target and self.found is None:
            self.found = node
        return True


class _CallCounter(cst.CSTVisitor):
    """The calls spelled `callee` in a function's own body (lambdas included, nested definitions not), in order."""

    def __init__(self, callee: str):
        super().__init__()
        self.callee = callee
        self.found: list[cst.Call] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> bool:
        if get_full_name_for_node(node.func) == self.callee and isinstance(node.func, (cst.Name, cst.Attribute)):
            self.found.append(node)
        return True


class _FenceCalls(cst.CSTTransformer):
    """`callee(...)` -> `_autocast_fp32(callee)(...)` for the chosen calls of a function's own body."""

    def __init__(self, targets: set[cst.Call]):
        super().__init__()
        self.targets = targets

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if original_node not in self.targets:
            return updated_node
        fence = cst.Call(func=cst.Name(FENCE), args=[cst.Arg(updated_node.func)])
        return updated_node.with_changes(func=fence)


class _FunctionEditor(ScopeTracker):
    """Applies the planned rewrites to the functions they name (by scope path)."""

    def __init__(self, plans: dict[str, list[AutocastAnchor]]):
        super().__init__()
        self.plans = plans
        self.pending = set(plans)

    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.CSTNode:
        anchors = self.plans.get(self.path)
        if anchors is not None and self.path in self.pending:
            self.pending.discard(self.path)
            updated_node = self._edit(original_node, updated_node, anchors)
        return super().leave_FunctionDef(original_node, updated_node)

    def _edit(self, original: cst.FunctionDef, node: cst.FunctionDef,
              anchors: list[AutocastAnchor]) -> cst.FunctionDef:
        calls = [a for a in anchors if a.kind == "call"]
        if calls:
            targets: set[cst.Call] = set()
            for anchor in calls:
                counter = _CallCounter(anchor.callee)
                node.body.visit(counter)
                if anchor.ordinal >= len(counter.found):
                    raise LookupError(f"call {anchor.ordinal} of `{anchor.callee}` not found in `{self.path}`")
                targets.add(counter.found[anchor.ordinal])
            node = node.with_changes(body=node.body.visit(_FenceCalls(targets)))
        for kind, decorator in (("method", FENCE), ("wrap", ENTER)):  # innermost, under any grad-mode decorator
            if any(a.kind == kind for a in anchors):
                node = node.with_changes(decorators=[*node.decorators, cst.Decorator(decorator=cst.Name(decorator))])
        return node


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 and \
        isinstance(statement.body[0], cst.Expr) and \
        isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))


def _add_helpers(module: cst.Module, helpers: list[str], torch: str) -> cst.Module:
    """The switch and the helpers the file lacks: after those it has, else after its imports."""
    body = list(module.body)
    present = set().union(*(_defined_names(statement) for statement in body))
    blank = [cst.EmptyLine(), cst.EmptyLine()]
    new: list[cst.BaseStatement] = []
    if SWITCH not in present:
        switch = list(cst.parse_module(switch_source()).body)
        switch[0] = switch[0].with_changes(leading_lines=[*blank, cst.EmptyLine(comment=cst.Comment(SWITCH_COMMENT))])
        new.extend(switch)
    new.extend(cst.parse_statement(helper_source(name, torch)).with_changes(leading_lines=blank)
               for name in helpers if name not in present)
    if not new:
        return module
    ours = [i for i, statement in enumerate(body)
            if _defined_names(statement) & {SWITCH, *HELPERS} or _is_switch_check(statement)]
    position = ours[-1] + 1 if ours else _helpers_position(body)
    if position < len(body) and not body[position].leading_lines:
        body[position] = body[position].with_changes(leading_lines=blank)
    body[position:position] = new
    return module.with_changes(body=body)


def _helpers_position(body: list[cst.BaseStatement]) -> int:
    """After the last top-level import that comes before the first definition (or after the docstring)."""
    first_definition = next((i for i, statement in enumerate(body) if _contains_definition(statement)), len(body))
    position = 0
    for i, statement in enumerate(body[:first_definition]):
        if isinstance(statement, cst.SimpleStatementLine) and (
                any(isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body)
                or (i == 0 and _is_docstring(statement))):
            position = i + 1
    return position


def _contains_definition(statement: cst.BaseStatement) -> bool:
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return True
    if isinstance(statement, cst.SimpleStatementLine):
        return False
    found = []

    class _Find(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            found.append(node)
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            found.append(node)
            return False

    statement.visit(_Find())
    return bool(found)


def _is_switch_check(statement: cst.BaseStatement) -> bool:
    """`if _AUTOCAST not in (...): raise ...`, the second statement of the switch."""
    if not isinstance(statement, cst.If):
        return False
    test = statement.test
    return isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name) and test.left.value == SWITCH


def _defined_names(statement: cst.BaseStatement) -> set[str]:
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return {statement.name.value}
    if isinstance(statement, cst.SimpleStatementLine):
        return {target.target.value for small in statement.body if isinstance(small, cst.Assign)
                for target in small.targets if isinstance(target.target, cst.Name)}
    return set()


def _ensure_imports(module: cst.Module, names: list[str]) -> cst.Module:
    """`import <name>` for each standard module the file lacks, among its first imports (where isort puts the
    standard library): in alphabetical order within the plain `import x` lines there, else before the first
    import, taking over the comments above it so a header stays on top."""
    body = list(module.body)
    imports = [(i, small) for i, statement in enumerate(body) if isinstance(statement, cst.SimpleStatementLine)
               for small in statement.body if isinstance(small, (cst.Import, cst.ImportFrom))]
    have = {get_full_name_for_node(alias.name) for _, small in imports if isinstance(small, cst.Import)
            for alias in small.names if alias.asname is None}
    missing = [name for name in names if name not in have]
    if not missing:
        return module
    first = next(i for i, small in imports
                 if not (isinstance(small, cst.ImportFrom) and get_full_name_for_node(small.module) == "__future__"))
    run = first  # the plain, single `import x` lines that open the imports
    while run < len(body) and _plain_import(body[run]) is not None and (run == first or not body[run].leading_lines):
        run += 1
    for name in sorted(missing, reverse=True):
        position = next((i for i in range(first, run) if _plain_import(body[i]) > name), run)
        new = cst.parse_statement(f"import {name}\n")
        if position == first:
            new = new.with_changes(leading_lines=body[first].leading_lines)
            body[first] = body[first].with_changes(leading_lines=[])
        body.insert(position, new)
        run += 1
    return module.with_changes(body=body)


def _plain_import(statement: cst.BaseStatement) -> str | None:
    """`x` for a line that is just `import x` (a single, unaliased name)."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 and \
            isinstance(statement.body[0], cst.Import) and len(statement.body[0].names) == 1 and \
            statement.body[0].names[0].asname is None:
        return get_full_name_for_node(statement.body[0].names[0].name)
    return None


# ---------------------------------------------------------------------------
# What this transform owns, erased for the engine's equivalence check


class _EraseAutocast(ast.NodeTransformer):
    """Erases the switch and the helpers, their imports, the `@_autocast` and `@_autocast_fp32` decorators and the
    `_autocast_fp32(f)(...)` call-site fences."""

    IMPORTS = frozenset({"os", "torch", "functools", "warnings"})

    def visit_Module(self, node: ast.Module) -> ast.Module:
        node.body = [s for s in node.body if not _is_own_statement(s)]
        return self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> ast.Import | None:
        node.names = [a for a in node.names if a.name not in self.IMPORTS or a.asname]
        return node if node.names else None

    def visit_FunctionDef(self, node):
        node.decorator_list = [d for d in node.decorator_list if _dotted(d) not in (ENTER, FENCE)]
        return self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Call) and _dotted(func.func) == FENCE and len(func.args) == 1 and not func.keywords:
            return ast.Call(func=func.args[0], args=node.args, keywords=node.keywords)
        return node


def _is_own_statement(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.FunctionDef):
        return statement.name in HELPERS
    if isinstance(statement, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == SWITCH for t in statement.targets)
    if isinstance(statement, ast.If):
        test = statement.test
        return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == SWITCH
    return False
