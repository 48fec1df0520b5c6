"""What the analysis knows about torch, in one place.

Names of grad-mode switches and module classes (for the index), what each
tensor operation does under autograd (for the value flow), and the exact
error texts torch raises (for reasons). Every entry here was checked against
torch 2.6 on the CPU; the tests in tests/test_torchapi.py run the claims that
decide verdicts.
"""

from __future__ import annotations

import ast
import re
from enum import StrEnum

# -- names the index resolves ----------------------------------------------------


class GradMode(StrEnum):
    """What a decorator or `with` item does to grad mode."""

    NO_GRAD = "no_grad"
    INFERENCE = "inference"
    ENABLE_GRAD = "enable_grad"
    MAYBE_GRAD = "maybe_grad"  # a flag the analysis cannot read: either way
    EXIT_INFERENCE = "exit_inference"  # `inference_mode(False)`


GRAD_OFF_MODES = (GradMode.NO_GRAD, GradMode.INFERENCE)


NO_GRAD = frozenset(
    {"torch.no_grad", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad"}
)
INFERENCE_MODE = frozenset({"torch.inference_mode", "torch.autograd.grad_mode.inference_mode"})
SET_GRAD_ENABLED = frozenset(
    {"torch.set_grad_enabled", "torch.autograd.set_grad_enabled", "torch.autograd.grad_mode.set_grad_enabled"}
)
ENABLE_GRAD = frozenset({"torch.enable_grad", "torch.autograd.enable_grad", "torch.autograd.grad_mode.enable_grad"})
JIT_DECORATORS = frozenset(
    {"torch.jit.script", "torch.jit.export", "torch.jit.script_method", "torch.jit.script_if_tracing"}
)
CACHE_DECORATORS = frozenset({"functools.lru_cache", "functools.cache"})
# What methods of library objects return, by method and class: objects of the library, never the project's
# (a project function in one got there through a read the escape check sees, like `set_defaults(func=f)`).
LIBRARY_METHOD_RESULTS = {"parse_args": {"argparse.ArgumentParser": "argparse.Namespace"}}
# Library callables that call a callable argument, by the position and keyword it is passed as
# (`map(block, xs)`, `checkpoint(self.block, x)`, `sorted(xs, key=scorer)`): a project object handed there may
# have its `forward`, `__call__` or `__init__` run by the library.
CALLING_FUNCTIONS: dict[str, tuple[int | None, str]] = {
    "map": (0, "func"), "filter": (0, "function"), "sorted": (None, "key"), "min": (None, "key"),
    "max": (None, "key"), "functools.partial": (0, "func"), "functools.reduce": (0, "function"),
    "itertools.starmap": (0, "function"), "torch.utils.checkpoint.checkpoint": (0, "function"),
    "torch.utils.checkpoint.checkpoint_sequential": (0, "functions"), "torch.vmap": (0, "func"),
    "torch.func.vmap": (0, "func"), "torch.func.functional_call": (0, "module"), "torch.func.grad": (0, "func"),
    "torch.func.jacrev": (0, "func"), "torch.func.jacfwd": (0, "func"), "torch.autograd.functional.jacobian":
    (0, "func"), "torch.autograd.functional.hessian": (0, "func"), "threading.Thread": (None, "target"),
}
# Library callables that iterate what they are handed, where they stand (`list(xs)`, `sum(xs)`) or as what they
# return is iterated (`enumerate(xs)`, `zip(a, b)`): iterating runs a generator's body, an object's `__iter__`.
# As with `CALLING_FUNCTIONS`, any other library callable is taken to iterate nothing of the project.
ITERATING_FUNCTIONS = frozenset({
    "list", "tuple", "set", "frozenset", "dict", "sorted", "sum", "min", "max", "any", "all", "next", "iter",
    "enumerate", "zip", "map", "filter", "reversed", "str.join", "bytes.join", "functools.reduce",
    "collections.deque", "collections.Counter", "collections.OrderedDict", "heapq.merge", "numpy.fromiter",
    "itertools.chain", "itertools.chain.from_iterable", "itertools.islice", "itertools.zip_longest",
    "itertools.product", "itertools.cycle", "itertools.accumulate", "itertools.compress", "itertools.dropwhile",
    "itertools.takewhile", "itertools.groupby", "itertools.starmap", "itertools.tee", "itertools.pairwise",
    "itertools.batched", "itertools.permutations", "itertools.combinations",
})
# Library functions by what they return: `get_activation("silu")` hands out one of diffusers' shared
# activation modules (`ACTIVATION_FUNCTIONS` in diffusers/models/activations.py), never a project object.
LIBRARY_FUNCTION_RESULTS = {
    "diffusers.models.activations.get_activation": ("torch.nn.GELU", "torch.nn.Mish", "torch.nn.ReLU",
                                                    "torch.nn.SiLU"),
}
# Decorators that return something calling the function where it is called, or the function itself marked:
# the function is not handed to code that could call it from elsewhere (any other decorator is).
TRANSPARENT_DECORATORS = frozenset({
    "staticmethod", "classmethod", "property", "abc.abstractmethod", "functools.wraps", "functools.cached_property",
    "typing.overload", "typing.final", "typing.override", "typing.no_type_check", "typing_extensions.overload",
    "typing_extensions.final", "typing_extensions.override", "torch.jit.unused", "torch.jit.ignore",
    "torch.autocast", "torch.amp.autocast", "torch.cuda.amp.autocast", "torch.cpu.amp.autocast",
    "torch.amp.custom_fwd", "torch.amp.custom_bwd", "torch.cuda.amp.custom_fwd", "torch.cuda.amp.custom_bwd",
    *CACHE_DECORATORS, *JIT_DECORATORS,
})
MODULE_BASE = "torch.nn.Module"
CONTAINER_MODULES = frozenset(
    {"torch.nn.ModuleList", "torch.nn.Sequential", "torch.nn.ModuleDict", "torch.nn.ParameterList"}
)
# Functions that return the module they are given (weight reparametrizations).
MODULE_WRAPPERS = frozenset(
    {
        "torch.nn.utils.weight_norm",
        "torch.nn.utils.spectral_norm",
        "torch.nn.utils.parametrizations.weight_norm",
        "torch.nn.utils.parametrizations.spectral_norm",
        "torch.nn.utils.parametrizations.orthogonal",
        "torch.nn.utils.remove_weight_norm",
        "torch.nn.utils.remove_spectral_norm",
    }
)
# What `nn.Module` itself provides to subclasses (`self.register_buffer(...)`, `self.parameters()`).
NN_MODULE_METHODS = frozenset({
    "register_buffer", "register_parameter", "register_module", "add_module", "parameters", "named_parameters",
    "buffers", "named_buffers", "children", "named_children", "modules", "named_modules", "state_dict",
    "load_state_dict", "to", "cuda", "cpu", "half", "float", "double", "bfloat16", "eval", "train", "zero_grad",
    "requires_grad_", "apply", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "get_submodule", "get_parameter", "get_buffer", "type", "share_memory", "extra_repr",
})
# Calls that put a tensor into a module, as a buffer or a parameter.
MODULE_STORES = frozenset({"register_buffer", "register_parameter"})
PARAMETER_CLASSES = frozenset({"torch.nn.Parameter", "torch.nn.parameter.Parameter"})
# nn.Module methods that return the module itself.
MODULE_SELF_METHODS = frozenset(
    {"to", "cuda", "cpu", "half", "float", "double", "bfloat16", "eval", "train", "requires_grad_",
     "to_empty", "share_memory", "type", "apply"}
)
PARAMETERLESS_NN = re.compile(
    r"^torch\.nn\.(modules\.\w+\.)?("
    r"ReLU6?|LeakyReLU|ELU|CELU|SELU|GELU|SiLU|Mish|Sigmoid|Tanh|Softmax2?d?|LogSoftmax|Softmin|Softplus|"
    r"Softsign|Softshrink|Hardshrink|Tanhshrink|Hardtanh|Hardswish|Hardsigmoid|LogSigmoid|Threshold|GLU|"
    r"Identity|Dropout\d?d?|AlphaDropout|FeatureAlphaDropout|Upsample|UpsamplingNearest2d|UpsamplingBilinear2d|"
    r"(Adaptive)?(Max|Avg|LP)Pool\dd|MaxUnpool\dd|FractionalMaxPool\dd|"
    r"(Reflection|Replication|Zero|Constant|Circular)Pad\dd|Flatten|Unflatten|PixelShuffle|PixelUnshuffle|"
    r"ChannelShuffle|Fold|Unfold|CosineSimilarity|PairwiseDistance|\w*Loss)$"
)
PARAMETERLESS_PREFIXES = ("torchaudio.transforms.", "torchaudio.functional.")



def is_parameterless_external(name: str) -> bool:
    """True for external module classes known to hold no parameters (activations, pads, ...)."""
    return bool(PARAMETERLESS_NN.match(name)) or name.startswith(PARAMETERLESS_PREFIXES)


# -- persistent effects of a region --------------------------------------------------

# Methods that put new tensors into a module: made under inference mode they are inference tensors
# (a parameter made so never receives a gradient; a buffer made so raises on its next in-place update
# outside the mode). Writes into existing storage (`copy_`, `fill_`, `torch.nn.init.*`, `load_state_dict`
# without `assign=True`) leave parameters and buffers normal tensors and are not listed.
STATE_METHODS = frozenset({"register_buffer", "register_parameter", "register_module", "add_module", "set_"})
MODULE_MOVES = frozenset({"to", "cuda", "cpu", "half", "float", "double", "bfloat16", "to_empty", "type"})
GRAD_ON_CALLS = frozenset({"torch.enable_grad", "torch.autograd.enable_grad", "torch.autograd.grad",
                           "torch.autograd.backward", "torch.autograd.grad_mode.enable_grad"})
LOADERS = frozenset({"torch.load", "torch.hub.load", "torch.hub.load_state_dict_from_url",
                     "safetensors.torch.load_file", "safetensors.torch.load_model"})


# -- what operations do with their inputs ------------------------------------------

# Tensor methods whose result may share storage with (or be) the receiver:
# the result of such a call on an inference tensor is still one.
VIEW_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "transpose", "permute", "squeeze", "unsqueeze", "t", "expand",
    "expand_as", "narrow", "select", "unfold", "split", "chunk", "unbind", "tensor_split", "movedim", "moveaxis",
    "swapaxes", "swapdims", "flatten", "unflatten", "detach", "to", "type", "float", "double", "half", "long",
    "int", "bool", "bfloat16", "short", "byte", "char", "cpu", "cuda", "contiguous", "as_strided", "diagonal",
    "split_with_sizes", "hsplit", "vsplit", "dsplit", "type_as", "get", "values", "items", "keys", "pop", "copy",
})
NON_TENSOR_ATTRS = frozenset({"shape", "device", "dtype", "ndim", "is_cuda", "requires_grad", "grad_fn", "layout",
                              "is_leaf", "names"})
NON_TENSOR_METHODS = frozenset({"size", "dim", "numel", "item", "tolist", "numpy", "stride", "data_ptr",
                                "is_contiguous", "element_size", "nelement", "storage_offset", "is_inference",
                                "get_device", "__len__", "dim_order"})
VIEW_FUNCTIONS = frozenset(
    f"torch.{n}" for n in (
        "atleast_1d", "atleast_2d", "atleast_3d", "squeeze", "unsqueeze", "transpose", "permute", "reshape",
        "flatten", "narrow", "select", "chunk", "split", "unbind", "movedim", "moveaxis", "swapaxes", "swapdims",
        "t", "view_as_real", "view_as_complex", "detach", "as_strided", "diagonal", "broadcast_to",
        "tensor_split", "hsplit", "vsplit", "dsplit", "broadcast_tensors", "unflatten",
    )
)
# Operations that never keep an input for backward (checked on torch 2.6: `t + w`, `torch.cat([t, w])`
# pass where `t * w`, `w[t_idx]`, `w.masked_fill(t_mask, 0)` and `torch.where(t_mask, w, 0)` raise).
# Every other operation on an inference tensor and a value that may require grad is a hazard.
NON_SAVING_BINOPS = (ast.Add, ast.Sub, ast.BitOr, ast.BitAnd, ast.BitXor)
NON_SAVING_FUNCTIONS = frozenset(f"torch.{n}" for n in (
    "add", "sub", "subtract", "cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "neg",
    "negative", "clone", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "randint_like", "is_tensor", "numel", "is_floating_point", "is_complex", "save", "equal", "allclose",
))
# Tensor methods that return the tensor itself, a view or a cast of it (never a list or a dict): a
# tensor a factory made stays one through them.
TENSOR_VIEWS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "transpose", "permute", "squeeze", "unsqueeze", "t", "expand",
    "expand_as", "narrow", "select", "movedim", "flatten", "unflatten", "to", "float", "double", "half", "bfloat16",
    "long", "int", "bool", "cpu", "cuda", "contiguous", "type_as", "clone", "repeat",
})


NON_SAVING_METHODS = frozenset({
    "add", "sub", "subtract", "add_", "sub_", "neg", "negative", "clone", "new_zeros", "new_ones", "new_empty",
    "new_full", "new_tensor", "zero_", "fill_", "copy_", "detach_",
})
# Tensor methods known to keep an operand for backward (checked: tests/test_torchapi.py); on a value of
# unknown type they are reported as the recording they are, other methods as calls to check by hand.
SAVING_METHODS = frozenset({
    "mul", "mul_", "div", "div_", "matmul", "mm", "bmm", "masked_fill", "masked_fill_", "clamp", "clamp_", "where",
    "index_select", "gather", "pow", "pow_", "maximum", "minimum",
})


def is_in_place(method: str) -> bool:
    """`add_`, `masked_fill_`: a tensor method that updates its receiver (not a dunder)."""
    return method.endswith("_") and not method.endswith("__")


# Factories whose result does not require grad (unless called with `requires_grad=True`).
GRAD_FREE_FACTORIES = frozenset(f"torch.{n}" for n in (
    "zeros", "ones", "empty", "full", "arange", "range", "linspace", "logspace", "eye", "rand", "randn",
    "randint", "randperm", "tensor", "from_numpy", "zeros_like", "ones_like", "empty_like", "full_like",
    "rand_like", "randn_like", "randint_like", "tril_indices", "triu_indices", "hann_window", "hamming_window",
    "bartlett_window", "blackman_window", "kaiser_window", "multinomial", "bernoulli", "argmax", "argmin",
    "argsort", "nonzero", "isnan", "isinf", "isfinite", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
    "logical_or", "logical_not", "logical_xor", "bucketize", "searchsorted", "sign", "floor_divide",
))
# Methods whose result never requires grad.
GRAD_FREE_METHODS = frozenset({
    "detach", "argmax", "argmin", "argsort", "nonzero", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf",
    "isfinite", "logical_and", "logical_or", "logical_not", "bool", "long", "int", "short", "byte", "char",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "multinomial", "bernoulli", "sign",
})
# Libraries whose functions are tensor operations: judged by what they keep for backward.
TORCH_PREFIXES = ("torch.", "torchaudio.")
# Libraries that cannot record autograd on a torch tensor (they compute on copies, or on metadata).
NON_AUTOGRAD_PREFIXES = (
    "numpy.", "math.", "logging.", "warnings.", "os.", "sys.", "json.", "re.", "regex.", "time.", "random.",
    "itertools.", "collections.", "typing.", "copy.", "pathlib.", "dataclasses.", "inspect.", "string.",
    "unicodedata.", "unittest.", "scipy.", "librosa.", "soundfile.", "pyloudnorm.", "soxr.", "resampy.", "tokenizers.",
    "pykakasi.", "jieba.", "pypinyin.", "unidecode.", "inflect.", "num2words.",
)
CONTAINER_STORE_METHODS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "appendleft"})
CONTAINER_BUILDERS = frozenset({"dict", "list", "tuple", "set", "zip", "enumerate", "reversed", "sorted", "iter",
                                "next", "map", "filter"})
NON_TENSOR_BUILTINS = frozenset({"len", "isinstance", "print", "int", "float", "str", "bool", "repr", "hash", "id",
                                 "type", "hasattr", "getattr", "callable", "format", "issubclass", "range", "round",
                                 "abs", "min", "max", "sum", "any", "all", "setattr", "delattr", "vars", "dir"})
# Builtins whose result is never a tensor that requires grad (`sum`, `min`, `max`, `abs` can return one).
GRAD_FREE_BUILTINS = NON_TENSOR_BUILTINS - {"min", "max", "sum", "abs", "getattr", "vars"}
# Methods that, called on a value of unknown type, cannot record autograd on the region's tensors.
KNOWN_HARMLESS_METHODS = VIEW_METHODS | NON_TENSOR_METHODS | NON_SAVING_METHODS | GRAD_FREE_METHODS | \
    CONTAINER_STORE_METHODS


# Libraries whose code keeps no torch tensor between calls: einops (it caches parsed patterns) and tqdm (it wraps
# an iterable), which tests/test_libraries.py runs under inference mode; `abc` (`ABC.__init__` is `object`'s) and
# functools (what `lru_cache` keeps of a project function, the flow follows as a cached function).
KEEPS_NO_TENSORS_LIBRARIES = ("einops.", "tqdm.", "abc.", "functools.")
# Library code known to keep no tensor it makes between calls (a cache, a buffer extended on demand): under
# inference mode, what it would keep is an inference tensor. torch's own code keeps none (its modules update
# their buffers in place), and the other libraries make no torch tensors.
KEEPS_NO_TENSORS_PREFIXES = (*TORCH_PREFIXES, *NON_AUTOGRAD_PREFIXES, *KEEPS_NO_TENSORS_LIBRARIES, "builtins.")
# nn.Module's accessors, taken to be those on a library object too: they hand out what the module holds.
MODULE_ACCESSORS = frozenset({
    "parameters", "named_parameters", "buffers", "named_buffers", "children", "named_children", "modules",
    "named_modules", "eval", "train", "get_submodule", "get_parameter", "get_buffer",
})
# torch.Tensor's public methods (torch 2.6; tests/test_torchapi.py checks each is one): on a value of unknown
# type, a method of one of these names is taken to be the tensor's.
TENSOR_METHODS = frozenset("""
abs abs_ absolute absolute_ acos acos_ acosh acosh_ add add_ addbmm addbmm_ addcdiv addcdiv_ addcmul addcmul_
addmm addmm_ addmv addmv_ addr addr_ adjoint align_as align_to all allclose amax amin aminmax angle any apply_
arccos arccos_ arccosh arccosh_ arcsin arcsin_ arcsinh arcsinh_ arctan arctan2 arctan2_ arctan_ arctanh arctanh_
argmax argmin argsort argwhere as_strided as_strided_ as_strided_scatter as_subclass asin asin_ asinh asinh_
atan atan2 atan2_ atan_ atanh atanh_ backward baddbmm baddbmm_ bernoulli bernoulli_ bfloat16 bincount
bitwise_and bitwise_and_ bitwise_left_shift bitwise_left_shift_ bitwise_not bitwise_not_ bitwise_or bitwise_or_
bitwise_right_shift bitwise_right_shift_ bitwise_xor bitwise_xor_ bmm bool broadcast_to byte cauchy_
ccol_indices cdouble ceil ceil_ cfloat chalf char cholesky cholesky_inverse cholesky_solve chunk clamp clamp_
clamp_max clamp_max_ clamp_min clamp_min_ clip clip_ clone coalesce col_indices conj conj_physical
conj_physical_ contiguous copy_ copysign copysign_ corrcoef cos cos_ cosh cosh_ count_nonzero cov cpu cross
crow_indices cuda cummax cummin cumprod cumprod_ cumsum cumsum_ data_ptr deg2rad deg2rad_ dense_dim dequantize
det detach detach_ diag diag_embed diagflat diagonal diagonal_scatter diff digamma digamma_ dim dim_order dist
div div_ divide divide_ dot double dsplit eig element_size eq eq_ equal erf erf_ erfc erfc_ erfinv erfinv_ exp
exp2 exp2_ exp_ expand expand_as expm1 expm1_ exponential_ fill_ fill_diagonal_ fix fix_ flatten flip fliplr
flipud float float_power float_power_ floor floor_ floor_divide floor_divide_ fmax fmin fmod fmod_ frac frac_
frexp gather gcd gcd_ ge ge_ geometric_ geqrf ger get_device greater greater_ greater_equal greater_equal_ gt
gt_ half hardshrink has_names heaviside heaviside_ histc histogram hsplit hypot hypot_ i0 i0_ igamma igamma_
igammac igammac_ index_add index_add_ index_copy index_copy_ index_fill index_fill_ index_put index_put_
index_reduce index_reduce_ index_select indices inner int int_repr inverse ipu is_coalesced is_complex is_conj
is_contiguous is_distributed is_floating_point is_inference is_neg is_nonzero is_pinned is_same_size is_set_to
is_shared is_signed isclose isfinite isinf isnan isneginf isposinf isreal istft item kron kthvalue lcm lcm_
ldexp ldexp_ le le_ lerp lerp_ less less_ less_equal less_equal_ lgamma lgamma_ log log10 log10_ log1p log1p_
log2 log2_ log_ log_normal_ log_softmax logaddexp logaddexp2 logcumsumexp logdet logical_and logical_and_
logical_not logical_not_ logical_or logical_or_ logical_xor logical_xor_ logit logit_ logsumexp long lstsq lt
lt_ lu lu_solve map2_ map_ masked_fill masked_fill_ masked_scatter masked_scatter_ masked_select matmul
matrix_exp matrix_power max maximum mean median min minimum mm mode module_load moveaxis movedim msort mtia mul
mul_ multinomial multiply multiply_ mv mvlgamma mvlgamma_ nan_to_num nan_to_num_ nanmean nanmedian nanquantile
nansum narrow narrow_copy ndimension ne ne_ neg neg_ negative negative_ nelement new new_empty new_empty_strided
new_full new_ones new_tensor new_zeros nextafter nextafter_ nonzero nonzero_static norm normal_ not_equal
not_equal_ numel numpy orgqr ormqr outer permute pin_memory pinverse polygamma polygamma_ positive pow pow_
prelu prod put put_ q_per_channel_axis q_per_channel_scales q_per_channel_zero_points q_scale q_zero_point qr
qscheme quantile rad2deg rad2deg_ random_ ravel reciprocal reciprocal_ record_stream refine_names register_hook
register_post_accumulate_grad_hook reinforce relu relu_ remainder remainder_ rename rename_ renorm renorm_
repeat repeat_interleave requires_grad_ reshape reshape_as resize resize_ resize_as resize_as_ resize_as_sparse_
resolve_conj resolve_neg retain_grad roll rot90 round round_ row_indices rsqrt rsqrt_ scatter scatter_
scatter_add scatter_add_ scatter_reduce scatter_reduce_ select select_scatter set_ sgn sgn_ share_memory_ short
sigmoid sigmoid_ sign sign_ signbit sin sin_ sinc sinc_ sinh sinh_ size slice_inverse slice_scatter slogdet smm
softmax solve sort sparse_dim sparse_mask sparse_resize_ sparse_resize_and_clear_ split split_with_sizes sqrt
sqrt_ square square_ squeeze squeeze_ sspaddmm std stft storage storage_offset storage_type stride sub sub_
subtract subtract_ sum sum_to_size svd swapaxes swapaxes_ swapdims swapdims_ symeig t t_ take take_along_dim tan
tan_ tanh tanh_ tensor_split tile to to_dense to_mkldnn to_padded_tensor to_sparse to_sparse_bsc to_sparse_bsr
to_sparse_coo to_sparse_csc to_sparse_csr tolist topk trace transpose transpose_ triangular_solve tril tril_
triu triu_ true_divide true_divide_ trunc trunc_ type type_as unbind unflatten unfold uniform_ unique
unique_consecutive unsafe_chunk unsafe_split unsafe_split_with_sizes unsqueeze unsqueeze_ untyped_storage values
var vdot view view_as vsplit where xlogy xlogy_ xpu zero_
""".split())  # noqa: SIM905 - 569 names read better as words
# The methods of Python's value types, a file's and a logger's (`log.write(...)`, `logger.info(...)`), and
# numpy's `astype`: none makes a torch tensor.
VALUE_METHODS = frozenset(
    name for kind in (str, bytes, list, tuple, dict, set, int, float) for name in dir(kind) if not name.startswith("_")
) | {"write", "writelines", "flush", "close", "debug", "info", "warning", "error", "exception", "critical", "astype"}
# Methods that, called on a value of unknown type, are taken to be a tensor's, nn.Module's or a value type's:
# they keep no tensor they make (a list's `append` keeps what it is given, which the flow follows). Not
# `update`/`setdefault`: an object's `update` may make and keep tensors (an EMA that copies its model's weights
# the first time).
KEEPS_NO_TENSORS_METHODS = (KNOWN_HARMLESS_METHODS | SAVING_METHODS | TENSOR_METHODS | NN_MODULE_METHODS |
                            VALUE_METHODS) - {"update", "setdefault"}

# -- what torch raises ---------------------------------------------------------------

ERR_SAVED = "Inference tensors cannot be saved for backward"
ERR_INPLACE = "Inplace update to inference tensor outside InferenceMode is not allowed"
ERR_REQUIRES_GRAD = "Setting requires_grad=True on inference tensor outside InferenceMode is not allowed"
