"""The project model: modules, classes, functions and call sites, and the types the index infers.

Plain records. `collect` fills them from `ast` trees, `index` links them and
resolves names, types and calls; the analyses read them.
"""

from __future__ import annotations

import ast
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .torchapi import CACHE_DECORATORS, JIT_DECORATORS, GradMode

MODULE_CODE = "<module>"  # name of the pseudo-function holding a module's top-level statements


# ---------------------------------------------------------------------------
# Types the index infers


@dataclass(frozen=True)
class Instance:
    """An instance of a project class."""

    cls: ClassInfo


@dataclass(frozen=True)
class ClassRef:
    """A project class object (calling it constructs an Instance)."""

    cls: ClassInfo


@dataclass(frozen=True)
class FuncRef:
    """A project function, or a method bound to its receiver."""

    fn: FunctionInfo


@dataclass(frozen=True)
class ModuleRef:
    """A project module object (`from . import utils`)."""

    module: ModuleInfo


@dataclass(frozen=True)
class External:
    """Something outside the project, by qualified name: a reference to it, or an instance of it."""

    name: str
    instance: bool = False

    def __hash__(self) -> int:  # not `str`'s hash, which changes with PYTHONHASHSEED (see `_stable_hash`)
        return zlib.crc32(self.name.encode()) * 2 + self.instance


@dataclass(frozen=True)
class Container:
    """A list/tuple/dict/ModuleList/Sequential holding values of these types."""

    elems: frozenset
    module: str | None = None  # torch.nn container class when it is one
    generator: bool = False  # it may be a generator expression: iterating it runs the calls of its elements

    def __hash__(self) -> int:  # a frozenset's hash follows its elements'; the module name's must not follow `str`'s
        return hash((self.elems, zlib.crc32(self.module.encode()) if self.module else 0, self.generator))


@dataclass(frozen=True)
class Super:
    """`super()` inside a method of `cls`."""

    cls: ClassInfo


class Unresolved:
    """The part of a value whose type the index cannot resolve, beside the types it could: `Block() if small
    else load(path)`, a parameter annotated `nn.Module` in a project that subclasses it.

    It appears only together with a resolved type (a value of wholly unknown type has no types at all), so a
    reader that knows only the resolved part learns that it is not all: a call of such a value may run code
    that the resolved types do not name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNRESOLVED"

    def __hash__(self) -> int:  # fixed: the order a set iterates must not follow an address
        return 0x5EED

    def __reduce__(self) -> str:  # one object in every process
        return "UNRESOLVED"


UNRESOLVED = Unresolved()

Type = Instance | ClassRef | FuncRef | ModuleRef | External | Container | Super | Unresolved
NOTHING: frozenset = frozenset()


def _stable_hash(module: ModuleInfo, node: ast.AST) -> int:
    """A record's hash from where it is defined, not from its address.

    The inferred types are frozensets of records, and the order in which a set iterates
    follows its elements' hashes; with identity hashes it followed memory addresses, so which
    callee, path or hazard a report named first could change from one run to the next.
    A module hashes by its name, so neither file order nor address moves it. Records compare by
    identity still: two with one hash only share a bucket. `External` and `Container` hash their
    names by CRC-32 for the same reason: `str`'s hash changes with every process's PYTHONHASHSEED.
    """
    return hash((hash(module), node.lineno, node.col_offset))


# ---------------------------------------------------------------------------
# Index records


@dataclass(eq=False)
class ModuleInfo:
    name: str
    path: Path
    tree: ast.Module
    source: str
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    defs: dict[str, ClassInfo | FunctionInfo] = field(default_factory=dict)
    assigns: dict[str, list[ast.expr]] = field(default_factory=dict)  # module-level NAME = expr
    skip_file: bool = False
    skip_lines: frozenset = frozenset()
    functions: list[FunctionInfo] = field(default_factory=list)  # defined in this module, nested ones too
    _hash: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        # From its name, by a hash that does not change from one process to the next (`str` hashes do).
        self._hash = zlib.crc32(self.name.encode())

    def __hash__(self) -> int:
        return self._hash

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


@dataclass(eq=False)
class ClassInfo:
    qualname: str
    name: str
    module: ModuleInfo
    node: ast.ClassDef
    methods: dict[str, FunctionInfo] = field(default_factory=dict)
    bases: list[ClassInfo] = field(default_factory=list)
    external_bases: list[str] = field(default_factory=list)
    subclasses: list[ClassInfo] = field(default_factory=list)
    _attributes: dict | None = field(default=None, repr=False)
    _mro: list | None = field(default=None, repr=False)
    _subclasses: tuple | None = field(default=None, repr=False)
    _family: tuple | None = field(default=None, repr=False)
    _hash: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        self._hash = _stable_hash(self.module, self.node)  # every inferred type hashes it: computed once

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"<class {self.qualname}>"

    @property
    def short(self) -> str:
        return self.name

    def mro(self) -> list[ClassInfo]:
        """The class and its project bases, nearest first (computed once, after bases are linked)."""
        if self._mro is None:
            order: list[ClassInfo] = []
            seen: set[int] = set()
            queue = [self]
            while queue:
                cls = queue.pop(0)
                if id(cls) not in seen:
                    seen.add(id(cls))
                    order.append(cls)
                    queue.extend(cls.bases)
            self._mro = order
        return self._mro

    def lookup(self, name: str) -> FunctionInfo | None:
        for cls in self.mro():
            if name in cls.methods:
                return cls.methods[name]
        return None

    def family(self) -> tuple[ClassInfo, ...]:
        """The class, its project bases (nearest first), then its subclasses, each once: every class an object
        typed as this one may have an attribute or a method from, since it may be an object of a subclass."""
        if self._family is None:
            seen: set[int] = set()
            self._family = tuple(c for c in (*self.mro(), *self.all_subclasses())
                                 if id(c) not in seen and not seen.add(id(c)))
        return self._family

    def all_subclasses(self) -> tuple[ClassInfo, ...]:
        """Its project subclasses, direct or not, each once (computed once, after bases are linked)."""
        if self._subclasses is None:
            found: list[ClassInfo] = []
            stack = list(self.subclasses)
            seen: set[int] = set()
            while stack:
                cls = stack.pop()
                if id(cls) not in seen:
                    seen.add(id(cls))
                    found.append(cls)
                    stack.extend(cls.subclasses)
            self._subclasses = tuple(found)
        return self._subclasses


@dataclass(eq=False)
class CallSite:
    """One call expression inside a function, resolved as far as the index can."""

    caller: FunctionInfo
    node: ast.Call
    items: tuple[ast.expr, ...]  # the grad-mode `with` items around the call, outermost first
    modes: tuple[GradMode, ...] = ()  # what each does (see ProjectIndex.grad_mode_of)
    callees: tuple[FunctionInfo, ...] = ()
    module_types: tuple = ()  # receiver types when this calls an nn.Module instance
    external: str | None = None  # qualified name of an external callee
    externals: tuple[str, ...] = ()  # every library callable it may run, when several (then it is unresolved)
    constructs: tuple[ClassInfo, ...] = ()  # project classes this call instantiates
    unresolved: bool = False
    maybe_callees: tuple[FunctionInfo, ...] = ()  # for `x.m()` on an unknown type: every project method `m`
    deferred: bool = False  # in a lambda or a generator expression: it runs later, in whatever grad mode is on then
    opaque: bool = False  # calls a value of unknown type that may be an object or a class of the project
    # Project classes whose objects (or which) a library callable that calls its arguments is handed; empty
    # when what it is handed has a type the index does not know (then any class); None when it hands nothing.
    handed: tuple[ClassInfo, ...] | None = None
    # Project functions such a callable is handed (`map(f, xs)`); None when it may be any (a lambda, a value of
    # unknown type).
    handed_functions: tuple[FunctionInfo, ...] | None = ()
    # What it calls has a type the index does not know, in whole or in part (`hooks[name](m)`, `fn(m)` with `fn`
    # from `getattr`): it may be any function the project hands out as a value (ProjectIndex.unseen_targets).
    calls_unknown: bool = False
    # What it passes a callee's `*args` or `**kwargs`, packed into one node per (id(callee), parameter, whether
    # the call binds the first parameter): see `argument_for`.
    packed: dict[tuple[int, str, bool], ast.Tuple | None] = field(default_factory=dict, repr=False)

    @property
    def library_callables(self) -> tuple[str, ...]:
        """Every library callable this call may run: the one external callee, or the several candidates."""
        return self.externals or ((self.external,) if self.external is not None else ())

    @property
    def targets(self) -> tuple[FunctionInfo, ...]:
        """Every project function this call may run: the resolved callees and the possible ones."""
        return self.callees + self.maybe_callees

    @property
    def line(self) -> int:
        return self.node.lineno

    def describe(self) -> str:
        return ast.unparse(self.node.func)


@dataclass(eq=False)
class FunctionInfo:
    qualname: str
    name: str
    module: ModuleInfo
    node: ast.FunctionDef | ast.AsyncFunctionDef
    cls: ClassInfo | None = None
    parent: FunctionInfo | None = None  # enclosing function for nested defs
    decorators: list[str | None] = field(default_factory=list)  # qualified names
    grad_decorator: GradMode | None = None  # what its grad-mode decorator does, if it has one
    calls: list[CallSite] = field(default_factory=list)
    local_defs: dict[str, FunctionInfo] = field(default_factory=dict)
    _nodes: list | None = field(default=None, repr=False)
    _generator: bool | None = field(default=None, repr=False)
    _parameter_names: tuple[tuple[str, ...], tuple[str, ...], frozenset[str]] | None = field(default=None,
                                                                                              repr=False)
    _receiver: tuple[list, str | None] | None = field(default=None, repr=False)  # (`decorators` read, receiver)
    _hash: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        self._hash = _stable_hash(self.module, self.node)  # every inferred type hashes it: computed once

    def __repr__(self) -> str:
        return f"<function {self.qualname}>"

    @property
    def parameter_names(self) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
        """The names of its positional parameters in order, the same without the first (what a call on a bound
        method passes), and the names of `*args` and `**kwargs` (computed once: every call site that passes it
        an argument asks)."""
        if self._parameter_names is None:
            args = self.node.args
            positional = tuple(a.arg for a in [*args.posonlyargs, *args.args])
            self._parameter_names = (positional, positional[1:],
                                     frozenset(a.arg for a in (args.vararg, args.kwarg) if a is not None))
        return self._parameter_names

    def __hash__(self) -> int:
        return self._hash

    @property
    def is_async(self) -> bool:
        return isinstance(self.node, ast.AsyncFunctionDef)

    @property
    def is_generator(self) -> bool:
        """A `yield` in its own body: calling it makes a generator, and the body runs as that is iterated."""
        if self._generator is None:
            self._generator = any(isinstance(node, (ast.Yield, ast.YieldFrom)) for node in self.nodes)
        return self._generator

    @property
    def is_method(self) -> bool:
        return self.cls is not None and self.parent is None

    @property
    def is_static(self) -> bool:
        return "staticmethod" in self.decorators

    @property
    def is_classmethod(self) -> bool:
        return "classmethod" in self.decorators

    @property
    def short(self) -> str:
        """`Class.method` or `function`, as a reviewer would name it."""
        if self.name == MODULE_CODE:
            return f"the module-level code of {self.module.path.name}"
        if self.cls is not None and self.parent is None:
            return f"{self.cls.name}.{self.name}"
        if self.parent is not None:
            return f"{self.parent.short}.{self.name}"
        return self.name

    @property
    def is_jit(self) -> bool:
        return any(d in JIT_DECORATORS for d in self.decorators)

    @property
    def is_cached(self) -> bool:
        return any(d in CACHE_DECORATORS for d in self.decorators)

    def params(self) -> list[ast.arg]:
        return parameters(self.node.args)

    @property
    def receiver(self) -> str | None:
        """The name of `self` (or `cls`) for methods (kept until `decorators`, which says whether it is a
        static method, is set: the index sets it when linking starts)."""
        if self._receiver is None or self._receiver[0] is not self.decorators:
            positional = self.parameter_names[0]
            found = None if not self.is_method or self.is_static or not positional else positional[0]
            self._receiver = (self.decorators, found)
        return self._receiver[1]

    @property
    def nodes(self) -> list[ast.AST]:
        """Every node of the body, not descending into nested functions or classes (computed once)."""
        if self._nodes is None:  # filled by the index's collection walk; this is for synthetic functions
            self._nodes = list(_own_nodes(self.node))
        return self._nodes


SKIP_FILE_RE = re.compile(r"#\s*chatterbox-codemod:\s*skip-file\b")
SKIP_LINE_RE = re.compile(r"#\s*chatterbox-codemod:\s*skip\b(?!-)")


def module_name_for(path: Path, root: Path) -> str:
    """Dotted module name of `path` in a project rooted at `root`.

    The package is the topmost folder (up to `root`) holding an `__init__.py`;
    folders below it without one are namespace packages and still count.
    Files outside any package are named by their path below `root`.
    """
    folders = [path.parent, *path.parent.parents]
    stop = folders.index(root) if root in folders else len(folders) - 1
    top = None
    for folder in folders[: stop + 1]:
        if (folder / "__init__.py").exists():
            top = folder
    base = top.parent if top is not None else root
    try:
        rel = path.relative_to(base)
    except ValueError:
        rel = Path(path.name)
    parts = list(rel.parts[:-1])
    if path.name != "__init__.py":
        parts.append(path.stem)
    return ".".join(parts) or path.stem


def suppressions(source: str) -> tuple[bool, frozenset]:
    """(skip-file, lines carrying `# chatterbox-codemod: skip`), from real comments only."""
    if "chatterbox-codemod:" not in source:
        return False, frozenset()
    import io
    import tokenize

    skip_file = False
    lines: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type != tokenize.COMMENT:
                continue
            if SKIP_FILE_RE.search(token.string):
                skip_file = True
            elif SKIP_LINE_RE.search(token.string):
                lines.add(token.start[0])
    except (tokenize.TokenError, SyntaxError):
        pass
    return skip_file, frozenset(lines)


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """All nodes of a function body, not descending into nested functions or classes."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield child
        stack.extend(ast.iter_child_nodes(child))


def parameters(args: ast.arguments) -> list[ast.arg]:
    """Every parameter a `def` or a `lambda` binds."""
    return [*args.posonlyargs, *args.args, *([args.vararg] if args.vararg else []), *args.kwonlyargs,
            *([args.kwarg] if args.kwarg else [])]


def defaults(args: ast.arguments) -> list[ast.expr]:
    """The default values a `def` or a `lambda` evaluates where it stands."""
    return [*args.defaults, *(d for d in args.kw_defaults if d is not None)]


def own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    return _own_nodes(node)


def is_property(fn: FunctionInfo) -> bool:
    return any(d in ("property", "functools.cached_property") or (d or "").endswith((".setter", ".getter"))
               for d in fn.decorators)


def is_implicitly_called(fn: FunctionInfo) -> bool:
    """A special method (`__getitem__`, `__add__`, `__enter__`, `__post_init__`, ...) or a property: Python
    calls it where the code does not name it (`t[i]`, `a + b`, `with t:`, `t.prop`), so its calls cannot all
    be followed. `__init__` and `__call__` are named by calls (see ProjectIndex.opaque_caller)."""
    if fn.parent is not None:
        return False
    name = fn.name
    return is_property(fn) or (
        len(name) > 4 and name.startswith("__") and name.endswith("__") and name not in ("__init__", "__call__"))
