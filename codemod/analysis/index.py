"""The project index: every module, class, function and call of a project, from `ast`.

The index is built once per run over the whole project the targets belong to
(so a training script next to the package counts), and answers the
cross-file questions the transforms ask:

* which function or method a call reaches (through imports, aliases,
  `self.x = SomeModule(...)` assignments, annotations, `super()`, and
  `nn.Module.__call__` -> `forward`);
* which classes are `nn.Module`s, and which of them hold parameters;
* which grad mode each call runs under inside its function (decorators and
  `with` blocks);
* which functions are handed out where calls cannot be followed (`escape_of`):
  referenced as a value under any name, looked up by reflection, or given to
  a decorator.

It is deliberately an over-approximation where Python is dynamic: a call that
cannot be resolved is recorded as such, so the analyses can say so instead of
guessing.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .collect import BodyWalks, Collector
from .configs import Construction, Value
from .implicit import ITERATION_METHODS, Use, uses
from .project import (
    MODULE_CODE,
    NOTHING,
    UNRESOLVED,
    CallSite,
    ClassInfo,
    ClassRef,
    Container,
    External,
    FuncRef,
    FunctionInfo,
    Instance,
    ModuleInfo,
    ModuleRef,
    Super,
    Type,
    is_implicitly_called,
    is_property,
    module_name_for,
    suppressions,
)
from .torchapi import (
    CALLING_FUNCTIONS,
    CONTAINER_MODULES,
    CONTAINER_STORE_METHODS,
    ENABLE_GRAD,
    INFERENCE_MODE,
    ITERATING_FUNCTIONS,
    LIBRARY_FUNCTION_RESULTS,
    LIBRARY_METHOD_RESULTS,
    MODULE_BASE,
    MODULE_SELF_METHODS,
    MODULE_WRAPPERS,
    NN_MODULE_METHODS,
    NO_GRAD,
    PARAMETER_CLASSES,
    SET_GRAD_ENABLED,
    TRANSPARENT_DECORATORS,
    GradMode,
    is_parameterless_external,
)


class ProjectIndex:
    """Modules, classes, functions and resolved calls of one project."""

    def __init__(self, root: Path, walks: BodyWalks | None = None) -> None:
        self.root = root
        self.walks = walks  # walks of function bodies shared with other indexes over the same trees
        self.modules: dict[str, ModuleInfo] = {}
        self.by_path: dict[Path, ModuleInfo] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self.callers: dict[int, list[CallSite]] = {}
        # (id(class), attribute) -> the types assigned to it in that class, and the values of unknown type
        self._attr_types: dict[tuple[int, str], tuple[frozenset, tuple]] = {}
        self._attr_whole: dict[tuple[int, str], frozenset] = {}  # ... over its bases and subclasses: `attr_types`
        self._return_types: dict[int, frozenset] = {}
        # Keys of the memoized types being inferred (attribute, local, return, module variable), each with its
        # position in the chain of inferences under way, and the lowest position an inference has read since
        # `_add_part` started one part (a cycle: see there).
        self._in_progress: dict[tuple, int] = {}
        self._reached = _NOT_REACHED
        # Memoized answers inferred from a value under way (see `_fixpoint`): the lowest position each read,
        # and by position, the memos to drop when the value there has its answer.
        self._pending: dict[tuple, int] = {}
        self._provisional: dict[int, list[tuple[dict, Any, tuple]]] = {}
        self._deciding = 0  # how many `_may_be_object` decisions are under way, one inside the other
        self._local_sources: dict[int, dict[str, list]] = {}
        self._local_types: dict[tuple[int, str], frozenset] = {}
        self._module_var_types: dict[tuple[int, str], frozenset] = {}
        self._has_params: dict[int, bool] = {}
        self._is_module: dict[int, bool] = {}
        self._param_attrs: dict[int, frozenset] = {}
        self._attribute_readers: dict[str, list[tuple[FunctionInfo, frozenset[int]]]] = {}
        self._escapes: dict[int, tuple[FunctionInfo, ast.AST]] | None = None
        # Reflective lookups that may hand out any function of the project (found with the escapes).
        self.unresolved_lookups: list[tuple[FunctionInfo, ast.AST]] = []
        self._methods: set[str] | None = None  # names of the project's methods
        self._object_attributes: dict[str, bool] = {}  # attribute name -> may hold a project object or class
        self._object_values: dict[tuple[int, int], bool] = {}  # (id(expr), id(fn)) -> may be a project object
        self._store_tables: tuple[dict, dict] | None = None  # see `_stores`
        self._class_stores: dict[str, list[tuple[ast.expr, FunctionInfo | None, ModuleInfo]]] | None = None
        self._bindings: dict[ModuleInfo, frozenset | None] = {}  # names bound at module level (None: any)
        self._elsewhere: dict[str, list[tuple[ast.expr, FunctionInfo]]] | None = None  # `_stored_elsewhere`
        self._roots: set[str] | None = None  # the project's top-level package names
        self._library_bases: set[str] | None = None  # see `_subclassed_library_classes`
        self._annotations: dict[int, tuple[ast.expr, frozenset]] = {}  # see `_annotation_types`
        self._linking = False  # set when `finish` starts: every module is added (see `canonical`)
        self._canonical_names: dict[str, str] = {}  # see `canonical`
        self._types_from_call_sites = False  # set once every call has been resolved a first time
        self._callers_complete = False  # set once every call is linked to its callees
        # Functions that code the index cannot see may call (`_settle_unseen_callers`), and those with a
        # parameter typed (or decided not to hold a project object) from their visible callers so far, by id.
        self._unseen_callers: set[int] = set()
        self._typed_by_callers: set[int] = set()
        self._methods_by_name: dict[str, list[FunctionInfo]] | None = None
        # What calls of unknown type may run (`_index_unseen_entries`): the entry methods grouped by (signature,
        # whether an `__init__`), and by class (`forward`, `__call__`); ...
        self._unseen_indexed = False
        self._entry_signatures: dict[tuple[Signature, bool], tuple[FunctionInfo, ...]] = {}
        self._entry_calls: dict[int, tuple[FunctionInfo, ...]] = {}
        # ... the functions handed out as values, by signature, and every function by name
        self._value_signatures: dict[Signature, tuple[FunctionInfo, ...]] = {}
        self._function_values: dict[tuple[int, int], bool] = {}  # (id(expr), id(fn)) -> `_may_be_function`
        self._attribute_runs_anything: dict[str, bool] = {}  # see `_runs_anything`
        self._attribute_functions: dict[str, tuple[FunctionInfo, ...]] = {}  # see `_stored_functions`
        self._by_shape: dict[CallShape, tuple[tuple[FunctionInfo, ...], ...]] = {}  # see `_values_binding`
        self._lambdas_by_shape: dict[CallShape, tuple] = {}  # see `_lambdas_binding`
        self._value_order: dict[Signature, int] = {}  # each of `_value_signatures`, by its position
        self._value_keywords: dict[str, set[Signature]] = {}  # parameter name -> the signatures naming it
        self._value_varkw: set[Signature] = set()  # the signatures with `**kwargs`
        self._value_names: dict[str, list[tuple[Signature, FunctionInfo]]] = {}
        self._lambda_signatures: dict[Signature, tuple[tuple[FunctionInfo, ...], ...]] = {}  # what lambdas' calls reach
        self._lambdas_reaching_all: set[Signature] = set()  # ... those calling a value that may be any function
        self._signatures: dict[int, Signature] = {}  # id(method) -> `_signature`
        self._binding: dict[tuple[Signature, CallShape], bool] = {}  # memo of `_binds`
        self._possible: dict[tuple, tuple[FunctionInfo, ...]] = {}  # see `possible_targets`
        self._site_targets: dict[int, tuple[FunctionInfo, ...]] = {}  # id(site) -> `possible_targets`
        self._site_parts: dict[int, list] = {}  # id(site) -> `_unseen_parts`
        self._overflow: set[int] = set()  # id(site) of the calls `unseen_overflow` holds for
        self._value_overflows: dict[tuple, bool] = {}  # the keys of a call's value parts -> more than the limit
        self._unseen_groups: dict[tuple, tuple[tuple[FunctionInfo, ...], ...]] = {}  # see `_unseen_parts`
        self._ordered_parts: dict[tuple, tuple[FunctionInfo, ...]] = {}  # key of a part -> `_ordered`
        self._handed_out_names: set[str] | bool | None = None  # see `class_handed_out`
        self._implicit: dict[int, list[ImplicitCall]] = {}  # id(function) -> `implicit_calls`
        self._implicit_targets: dict[tuple[int, ...], tuple[FunctionInfo, ...]] = {}  # see `implicit_functions`
        self._class_specials: dict[tuple[int, tuple[str, ...]], tuple[FunctionInfo, ...]] = {}  # `_special_parts`
        self._implicit_sizes: dict[tuple[int, ...], int] = {}  # the ids of an implicit call's parts -> its size
        self._attribute_iterations: dict[str, tuple] = {}  # see `_attribute_iteration`
        self._local_iterations: dict[tuple[int, str], tuple] = {}  # see `_iterating_local`
        self._iterated_values: dict[int, set[int]] = {}  # see `_iterated_where_made`
        self._implicit_uses: dict[int, list[tuple[ast.AST, Use]]] = {}  # see `_uses`
        self._implicit_by_name: dict[str, tuple[FunctionInfo, ...]] | None = None  # see `_special_methods`
        self._call_sites: dict[int, dict[int, CallSite]] = {}  # id(function) -> its calls by id(node)
        self._iterating_anything: tuple | None = None  # see `_iterating_unknown`
        self._generator_expressions: tuple | None = None  # see `_deferred_generator_code`
        self.configs: list[tuple[Path, list[Construction]]] = []  # configuration files that build models
        self._configured: dict[tuple[int, str], frozenset] = {}  # (id(__init__), parameter) -> types
        self.redefined: set[str] = set()  # qualified names defined more than once (the later ones get `@line`)
        self.load_table: dict[str, list[tuple[FunctionInfo, ast.AST]]] = {}  # filled while collecting
        # Memos of facts that stay fixed once every module is added (the class hierarchy, signatures).
        self._overriding: dict[tuple[int, int], list[FunctionInfo]] = {}
        self._definitions: dict[str, list[FunctionInfo]] | None = None  # redefined qualname -> every definition
        self._accepting: dict[tuple, tuple[FunctionInfo, ...]] = {}
        self._opaque_calls: list[CallSite] | None = None  # the first opaque call of each argument shape
        self._handing_calls: dict[int | None, CallSite] = {}  # id(class) (None: any) -> first call handing it out

    # -- construction ------------------------------------------------------

    def add_module(self, path: Path, source: str, tree: ast.Module) -> ModuleInfo:
        name = module_name_for(path, self.root)
        if name in self.modules:  # two scripts with one name: keep both, apart
            name = f"{name}@{path}"
        skip_file, skip_lines = suppressions(source)
        module = ModuleInfo(name=name, path=path, tree=tree, source=source, skip_file=skip_file, skip_lines=skip_lines)
        self.modules[name] = module
        self.by_path[path] = module
        Collector(self, module).collect()
        return module

    def finish(self) -> None:
        """Link classes to their bases and resolve every call (after all modules are added)."""
        self._linking = True
        for cls in self.classes.values():
            for base in cls.node.bases:
                resolved = self.resolve_expr_name(cls.module, base)
                if isinstance(resolved, ClassInfo):
                    cls.bases.append(resolved)
                    resolved.subclasses.append(cls)
                elif isinstance(resolved, str):
                    cls.external_bases.append(resolved)
        for fn in self.functions.values():
            fn.decorators = [self.qualify(fn.module, _decorator_target(d), fn) for d in fn.node.decorator_list]
            fn.grad_decorator = self._decorator_mode(fn)
        for fn in self.functions.values():
            for site in fn.calls:
                pairs = [(item, self.grad_mode_of(fn.module, item, fn)) for item in site.items]
                site.items = tuple(item for item, mode in pairs if mode)
                site.modes = tuple(mode for _, mode in pairs if mode)
                self._resolve_call(site)
                for callee in site.callees:
                    self.callers.setdefault(id(callee), []).append(site)
        # A lookup that hands out every function whatever the types (`eval`) lets code the index cannot see
        # call any function (`_settle_unseen_callers`). Known before a type is inferred, that keeps the rounds
        # below from typing parameters from their visible callers alone, only to infer every type again.
        if any(_hands_out_anything(site, where) for where, site in self._reflective_calls()):
            self._unseen_callers = {id(fn) for fn in self.functions.values() if fn.name != MODULE_CODE}
        # Second round: with the callers known, an unannotated parameter takes the types of the arguments
        # passed to it (`adapt_step(S3Gen(), ...)` types `s3gen`), and constructor arguments type the
        # attributes `__init__` stores them in; calls that stayed unresolved are resolved again.
        self._types_from_call_sites = True
        self._type_configured_arguments()
        self._clear_types()
        for fn in self.functions.values():
            for site in fn.calls:
                if (site.callees or site.module_types or site.constructs or site.external is not None) and \
                        not site.opaque and not site.unresolved:
                    continue
                self._resolve_again(site)
        self._link_methods_by_name()
        # Third round: with every call linked, a parameter holds what its callers pass (`global_cmvn:
        # nn.Module = None` that no caller passes is None), so calls left opaque by one are decided again.
        self._callers_complete = True
        self._clear_types()
        for fn in self.functions.values():
            for site in fn.calls:
                if site.opaque or site.handed == ():
                    self._resolve_again(site)
        self._settle_unseen_callers()

    def _link_methods_by_name(self) -> None:
        """`x.m()` on a value of unknown type may reach any project method named `m`: a possible caller of
        each (linked once per call)."""
        if self._methods_by_name is None:
            self._methods_by_name = {}
            for fn in self.functions.values():
                if fn.is_method:
                    self._methods_by_name.setdefault(fn.name, []).append(fn)
        for fn in self.functions.values():
            for site in fn.calls:
                if site.unresolved and not site.maybe_callees and isinstance(site.node.func, ast.Attribute):
                    site.maybe_callees = self._accepting_methods(self._methods_by_name, site.node.func.attr,
                                                                 site.node)
                    for method in site.maybe_callees:
                        self.callers.setdefault(id(method), []).append(site)

    def _settle_unseen_callers(self) -> None:
        """Find the functions that code the index cannot see may call, and infer again what read their
        parameters' types from the callers it can see.

        A function handed out (a callback, a reflective lookup, a decorator that takes it), run by a call of a
        value of unknown type, or called by Python's syntax (a special method, a property) may be passed
        anything by those calls, so a parameter typed from its visible callers keeps `UNRESOLVED` beside
        their types (`helper(Plain(), x)` in the project does not make `helper`'s `m` a `Plain` when a
        `getattr` hands `helper` to code that passes another module). Which functions those are depends on
        the types (an escape is a read the index cannot follow), and the types on them: the types are
        inferred again until no function found so has had a parameter typed from its callers alone.
        """
        while True:
            unseen = {id(fn) for fn in self.functions.values() if self.escape_of(fn) is not None
                      or self.opaque_caller(fn) is not None or is_implicitly_called(fn)}
            found = unseen - self._unseen_callers
            self._unseen_callers |= found
            if found.isdisjoint(self._typed_by_callers):
                return
            self._clear_types()
            self._escapes, self.unresolved_lookups, self._handed_out_names = None, [], None
            self._opaque_calls, self._handing_calls = None, {}
            for fn in self.functions.values():
                for site in fn.calls:
                    self._resolve_again(site)
            self._link_methods_by_name()
            self._clear_types()

    def _clear_types(self) -> None:
        for cache in (self._local_types, self._attr_types, self._attr_whole, self._return_types,
                      self._module_var_types, self._object_attributes, self._object_values, self._pending,
                      self._provisional):
            cache.clear()

    def _resolve_again(self, site: CallSite) -> None:
        """Resolve a call again, with what the index knows now; the callees found before stay linked."""
        linked = {id(callee) for callee in site.callees}
        self._resolve_call(site)
        for callee in site.callees:
            if id(callee) not in linked:
                self.callers.setdefault(id(callee), []).append(site)

    def _decorator_mode(self, fn: FunctionInfo) -> str | None:
        mode = None
        for node in fn.node.decorator_list:
            found = self.grad_mode_of(fn.module, node, fn)
            if found:
                mode = found
        return mode

    # -- names -------------------------------------------------------------

    def qualify(self, module: ModuleInfo, expr: ast.expr | None, scope: FunctionInfo | None = None) -> str | None:
        """The dotted, canonical name an expression refers to (`th.no_grad` -> `torch.no_grad`)."""
        if expr is None:
            return None
        dotted = _dotted(expr)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if scope is not None and _is_local_name(scope, head):
            return None
        if head in module.imports:
            base = module.imports[head]
        elif head in module.defs:
            base = module.defs[head].qualname
        elif head in ("staticmethod", "classmethod", "property"):
            return head if not rest else None
        else:
            return None
        full = f"{base}.{rest}" if rest else base
        return self.canonical(full)

    def canonical(self, name: str) -> str:
        """Follow re-exports (`pkg/__init__.py: from .mod import X`) to the defining module (kept once linking
        starts: every module is added then, and their names and imports are fixed)."""
        found = self._canonical_names.get(name)
        if found is None:
            found = self._followed(name, 0)
            if self._linking:
                self._canonical_names[name] = found
        return found

    def _followed(self, name: str, depth: int) -> str:
        if depth > 12 or name in self.classes or name in self.functions or name in self.modules:
            return name
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            mod = self.modules.get(".".join(parts[:cut]))
            if mod is None:
                continue
            head, rest = parts[cut], parts[cut + 1:]
            if head in mod.defs:
                target = mod.defs[head].qualname
            elif head in mod.imports:
                target = mod.imports[head]
            elif f"{mod.name}.{head}" in self.modules:
                target = f"{mod.name}.{head}"
            else:
                return name
            full = ".".join([target, *rest])
            return full if full == name else self._followed(full, depth + 1)
        return name

    def resolve_expr_name(self, module: ModuleInfo, expr: ast.expr) -> ClassInfo | FunctionInfo | str | None:
        name = self.qualify(module, expr)
        if name is None:
            return None
        return self.classes.get(name) or self.functions.get(name) or name

    def grad_mode_of(self, module: ModuleInfo, node: ast.expr, scope: FunctionInfo | None = None) -> GradMode | None:
        """What a decorator or `with` item does to grad mode (None: nothing)."""
        call = node if isinstance(node, ast.Call) else None
        target = call.func if call else node
        name = self.qualify(module, target, scope)
        if name in NO_GRAD:
            return GradMode.NO_GRAD
        if name in INFERENCE_MODE:
            flag = literal_arg(call, 0, "mode") if call else True
            if flag is None and call is not None and not call.args and not call.keywords:
                flag = True
            if flag is None:
                return GradMode.MAYBE_GRAD
            return GradMode.INFERENCE if flag else GradMode.EXIT_INFERENCE
        if name in ENABLE_GRAD:
            return GradMode.ENABLE_GRAD
        if name in SET_GRAD_ENABLED and call is not None:
            flag = literal_arg(call, 0, "mode")
            if flag is False:
                return GradMode.NO_GRAD
            return GradMode.ENABLE_GRAD if flag is True else GradMode.MAYBE_GRAD
        return None

    # -- types -------------------------------------------------------------

    def infer(self, expr: ast.expr, fn: FunctionInfo | None, module: ModuleInfo | None = None) -> frozenset:
        """The set of types an expression may have: empty when unknown; with `UNRESOLVED` beside the types
        found when only part of it could be resolved (`Block() if small else load(path)`)."""
        module = module or (fn.module if fn else None)
        if isinstance(expr, ast.Name):
            return self._infer_name(expr.id, fn, module)
        if isinstance(expr, ast.Attribute):
            return self._attribute_types(expr, fn, module, self.infer(expr.value, fn, module))
        if isinstance(expr, ast.Call):
            return self._infer_call(expr, fn, module)
        if isinstance(expr, ast.Subscript):
            if isinstance(expr.slice, ast.Name) and expr.slice.id == "__name__" and module is not None and \
                    self.qualify(module, expr.value, fn) == "sys.modules":
                return frozenset({ModuleRef(module)})  # `sys.modules[__name__]`: this module
            out = set()
            bases = self.infer(expr.value, fn, module)
            for base in bases:
                if isinstance(base, Container):
                    out |= base.elems
            # Indexing what is not a container of known elements (a project object's `__getitem__`) is unknown.
            return self._partly(out, any(not isinstance(base, Container) for base in bases))
        if isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
            elements = [elt.value if isinstance(elt, ast.Starred) else elt for elt in expr.elts]
            return frozenset({Container(self._union(elements, fn, module))})
        if isinstance(expr, ast.Dict):
            return frozenset({Container(self._union(expr.values, fn, module))})
        if isinstance(expr, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            return frozenset({Container(self.infer(expr.elt, fn, module),
                                        generator=isinstance(expr, ast.GeneratorExp))})
        if isinstance(expr, ast.DictComp):
            return frozenset({Container(self.infer(expr.value, fn, module))})
        if isinstance(expr, ast.IfExp):
            return self._union((expr.body, expr.orelse), fn, module)
        if isinstance(expr, ast.BoolOp):
            return self._union(expr.values, fn, module)
        if isinstance(expr, ast.NamedExpr):
            return self.infer(expr.value, fn, module)
        return NOTHING

    def _union(self, values: Iterable[ast.expr], fn: FunctionInfo | None, module: ModuleInfo | None) -> frozenset:
        """The types of values that one expression may take, the unknown ones among them kept as `UNRESOLVED`."""
        parts = _Parts()
        for value in values:
            self._add_part(parts, value, fn, module)
        return self._partly(parts.found, parts.unknown)

    def _add_part(self, parts: _Parts, value: ast.expr, fn: FunctionInfo | None,
                  module: ModuleInfo | None) -> frozenset:
        """Infer one part of a value into `parts`. A part that read a value whose inference is under way (a
        cycle: `self.t3 = self.t3.to(device)`) is kept apart, to be inferred again once that value has a first
        answer (`_fixpoint`); a cycle no memo of this value closes is settled by the value above that it reads."""
        outer, self._reached = self._reached, _NOT_REACHED
        types = self.infer(value, fn, module)
        reached = self._reached
        self._reached = min(outer, reached)
        parts.found |= types
        if reached < len(self._in_progress):  # it read a value above: a cycle closed here is no cycle above
            parts.cyclic.append((value, fn, module))
        elif not types:
            parts.unknown.append((value, fn, module))
        return types

    def _enter(self, key: tuple) -> bool:
        """Start inferring the memoized value `key`. False when it cannot start: its inference is under way (a
        cycle, recorded for `_add_part`), or the chain of inferences under way is `MAX_INFERENCE_DEPTH` long
        (a value that deep stays unknown: its reader counts it as unresolved; see `_depth`)."""
        position = self._in_progress.get(key)
        if position is not None:
            self._reached = min(self._reached, position)
            return False
        if self._depth() >= MAX_INFERENCE_DEPTH:
            return False
        self._in_progress[key] = len(self._in_progress)
        return True

    def _depth(self) -> int:
        """How deep the inferences and the decisions of `_may_be_object` under way are nested."""
        return len(self._in_progress) + self._deciding

    def _fixpoint(self, memo: dict, kind: str, key: tuple | int, collect: Callable[[_Parts], None],
                  result: Callable[[_Parts], Any], widened: Any) -> Any:
        """The memoized value `memo[key]` (a `kind` of value: local, return, attribute, module variable),
        inferred from the parts `collect` adds (`result` makes the value of them).

        Values read back through themselves form cycles (`self.t3 = self.t3.to(device)`; `a = b`, `b = c`,
        `c = a` in a loop). The first value of a cycle to be inferred, its root, infers its cyclic parts again
        from its answer so far until that answer holds: that tells a part that adds nothing
        (`self.t3.to(device)` is a T3Cond again) from one whose type is unknown. Any other value of the cycle
        was inferred while the root's answer was not known: it keeps what it found, with `UNRESOLVED` for
        the rest (a part of the cycle may hold anything the cycle does), and the root takes it from there. An
        answer that does not hold within `MAX_ROUNDS` is `widened`. Answers inferred from a root's answer
        before it held (whether a value may be a project object) are dropped each round.
        """
        pending = (kind, key)
        if self._recalled(memo, key, pending):
            return memo[key]
        if not self._enter(pending):
            return result(_Parts()) if pending in self._in_progress else widened
        position = self._in_progress[pending]
        outer, self._reached = self._reached, _NOT_REACHED
        parts = _Parts()
        collect(parts)
        cyclic = parts.cyclic
        if cyclic and self._reached < position:  # a value of a cycle whose root is above
            parts.found.add(UNRESOLVED)
            value = memo[key] = result(parts)
            del self._in_progress[pending]
            self._reached = min(outer, self._reached)
            return value
        value = result(parts)
        if cyclic:  # the root of its cycle: its answer so far is read as provisional
            self._pending[pending] = position
            for _ in range(MAX_ROUNDS):
                memo[key] = value
                self._drop_provisional(position)
                parts.cyclic = []
                for part in cyclic:
                    self._add_part(parts, *part)
                settled = result(parts)
                if settled == value:
                    break
                value = settled
            else:
                value = widened
                self._drop_provisional(position)
        del self._in_progress[pending]
        holds_until = self._remember(memo, key, pending, value, outer, position)
        # What the last round inferred from the answer holds with it: final, or provisional where it is.
        for entry in self._provisional.pop(position, ()):
            self._settled(entry, holds_until)
        return value

    def _recalled(self, memo: dict, key: Any, pending: tuple) -> bool:
        """Whether `memo` holds an answer for `key`; whoever reads a provisional one is provisional too."""
        if key not in memo:
            return False
        position = self._pending.get(pending)
        if position is not None:
            self._reached = min(self._reached, position)
        return True

    def _decided(self, memo: dict, key: Any, pending: tuple, decide: Callable[[], Any]) -> Any:
        """`decide()`, memoized: provisional when it read a type still being inferred, and then dropped with
        that type's other readers (`_remember`)."""
        outer, self._reached = self._reached, _NOT_REACHED
        value = decide()
        self._remember(memo, key, pending, value, outer, len(self._in_progress))
        return value

    def _remember(self, memo: dict, key: Any, pending: tuple, value: Any, outer: int, position: int) -> int:
        """Memoize the answer inferred at `position` since `_reached` was `outer`: provisional, to be dropped
        with the values inferred from it, when it read a value under way above that position. Returns the
        lowest such position (`_NOT_REACHED`: the answer is final)."""
        memo[key] = value
        reached = self._reached
        self._reached = min(outer, reached)
        holds_until = reached if reached < position else _NOT_REACHED
        self._settled((memo, key, pending), holds_until)
        return holds_until

    def _settled(self, entry: tuple[dict, Any, tuple], reached: int) -> None:
        """A memoized answer that holds while the value at position `reached` holds (final: `_NOT_REACHED`)."""
        if reached == _NOT_REACHED:
            self._pending.pop(entry[2], None)
        else:
            self._pending[entry[2]] = reached
            self._provisional.setdefault(reached, []).append(entry)

    def _drop_provisional(self, position: int) -> None:
        """Forget the answers inferred from the provisional answer of the value at `position`."""
        for memo, key, pending in self._provisional.pop(position, ()):
            memo.pop(key, None)
            self._pending.pop(pending, None)

    def _types_of_parts(self, parts: _Parts) -> frozenset:
        return self._partly(_merge_containers(parts.found), parts.unknown)

    def _partly(self, found: set, unknown) -> frozenset:
        """`found`, with `UNRESOLVED` when some part of the value is not in it: `unknown` is true, or lists
        (value, function, module) for parts whose types are unknown, counted when they may be a project object.

        A value whose every part is unknown has no types (`NOTHING`): `UNRESOLVED` only qualifies what was found.
        So has one of more than `MAX_TYPES` types: it is widened to unknown.
        """
        if found <= {UNRESOLVED} or len(found) > MAX_TYPES:
            return NOTHING
        if UNRESOLVED not in found and (
                unknown is True or (unknown and any(self._may_be_object(*part) for part in unknown))):
            found.add(UNRESOLVED)
        return frozenset(found)

    def _attribute_types(self, expr: ast.Attribute, fn: FunctionInfo | None, module: ModuleInfo | None,
                         owners: frozenset) -> frozenset:
        """The types of `owner.attr`, given the types `owners` inferred for `owner`."""
        out: set = set()
        for base in owners:
            out |= self.member_types(base, expr.attr)
        if not out:
            name = self.qualify(module, expr, fn)
            if name is not None:
                out |= self._types_of_qualified(name)
        return self._partly(out, UNRESOLVED in owners)

    def _infer_name(self, name: str, fn: FunctionInfo | None, module: ModuleInfo | None) -> frozenset:
        scope = fn
        while scope is not None:
            if name in self.local_names(scope):
                return self.local_type(scope, name)
            if name in scope.local_defs:
                return frozenset({FuncRef(scope.local_defs[name])})
            scope = scope.parent
        if module is None:
            return NOTHING
        if name in module.defs:
            target = module.defs[name]
            return frozenset({ClassRef(target) if isinstance(target, ClassInfo) else FuncRef(target)})
        if name in module.imports:
            return self._types_of_qualified(self.canonical(module.imports[name]))
        if name in module.assigns:
            def collect(parts: _Parts) -> None:
                for value in module.assigns[name]:
                    self._add_part(parts, value, None, module)
            return self._fixpoint(self._module_var_types, "module variable", (id(module), name), collect,
                                  self._types_of_parts, NOTHING)
        return NOTHING

    def _types_of_qualified(self, name: str) -> frozenset:
        if name in self.classes:
            return frozenset({ClassRef(self.classes[name])})
        if name in self.functions:
            return frozenset({FuncRef(self.functions[name])})
        if name in self.modules:
            return frozenset({ModuleRef(self.modules[name])})
        head, _, attr = name.rpartition(".")
        if head in self.modules and attr in self.modules[head].assigns:
            return self._infer_name(attr, None, self.modules[head])
        return frozenset({External(name)})

    def member_types(self, base: Type, attr: str) -> frozenset:
        if isinstance(base, Instance):
            method = base.cls.lookup(attr)
            if method is not None:
                return frozenset({FuncRef(method)})
            return self.attr_types(base.cls, attr) or self._inherited(base.cls, attr)
        if isinstance(base, ClassRef):
            method = base.cls.lookup(attr)
            if method is not None:
                return frozenset({FuncRef(method)})
            return self.attr_types(base.cls, attr)
        if isinstance(base, Super):
            for cls in list(base.cls.mro())[1:]:
                if attr in cls.methods:
                    return frozenset({FuncRef(cls.methods[attr])})
            if self.is_module(base.cls):
                return frozenset({External(f"{MODULE_BASE}.{attr}")})
            # No class of the project after it defines it: a library base's (`dict.__init__`), or `object`'s.
            library = [b for owner in base.cls.mro() for b in owner.external_bases]
            return frozenset({External(f"{library[0] if library else 'builtins.object'}.{attr}")})
        if isinstance(base, ModuleRef):
            return self._types_of_qualified(self.canonical(f"{base.module.name}.{attr}"))
        if isinstance(base, External) and not base.instance:
            return self._types_of_qualified(self.canonical(f"{base.name}.{attr}"))
        return NOTHING

    def _type_configured_arguments(self) -> None:
        """Constructions in configuration files type the `__init__` parameters they pass (`generator: !ref
        <hift>` makes `HiFiGan.__init__`'s `generator` a `HiFTGenerator`)."""
        for _, found in self.configs:
            for construction in found:
                cls = self.classes.get(self.canonical(construction.cls))
                init = cls.lookup("__init__") if cls is not None else None
                if init is None:
                    continue
                for name, value in construction.arguments.items():
                    types = self._configured_value(value)
                    if types:
                        key = (id(init), name)
                        self._configured[key] = self._configured.get(key, NOTHING) | types

    def _configured_value(self, value: Value) -> frozenset:
        if value.kind == "new":
            name = self.canonical(value.target.cls)
            if name in self.classes:  # an object of the class or of any subclass
                cls = self.classes[name]
                return self._partly({Instance(c) for c in (cls, *cls.all_subclasses())}, False)
            return frozenset({External(name, instance=True)}) if name.rpartition(".")[2][:1].isupper() else NOTHING
        if value.kind == "name":
            return self._types_of_qualified(self.canonical(value.target))
        return NOTHING

    def _inherited(self, cls: ClassInfo, attr: str) -> frozenset:
        """`self.assertEqual`, `self.register_buffer`: a method a library base class provides.

        Only for attributes the project never assigns; on `nn.Module` only its known methods, since a
        module's other attributes are submodules set where the index may not see them.
        """
        if any(attr in _attribute_table(owner) for owner in cls.mro()):
            return NOTHING
        for owner in cls.mro():
            for base in owner.external_bases:
                if base.startswith("torch.nn.") and base.rpartition(".")[2] == "Module":
                    if attr in NN_MODULE_METHODS:
                        return frozenset({External(f"{MODULE_BASE}.{attr}")})
                elif not base.startswith(("torch.", "builtins.", "object", "abc.", "typing.")):
                    return frozenset({External(f"{base}.{attr}")})
        return NOTHING

    def _infer_call(self, call: ast.Call, fn: FunctionInfo | None, module: ModuleInfo | None) -> frozenset:
        func = call.func
        if isinstance(func, ast.Name) and func.id == "super" and fn is not None:
            owner = enclosing_class(fn)
            return frozenset({Super(owner)}) if owner else NOTHING
        # `module.to(device)`, `.eval()` ... return the module itself.
        if isinstance(func, ast.Attribute) and func.attr in MODULE_SELF_METHODS:
            receiver = self.infer(func.value, fn, module)
            kept = {t for t in receiver if self._is_module_type(t) and not self._defines(t, func.attr)}
            if kept:
                return self._partly(kept, UNRESOLVED in receiver)
        if isinstance(func, ast.Attribute) and func.attr in LIBRARY_METHOD_RESULTS:
            receiver = self.infer(func.value, fn, module)
            returned = {LIBRARY_METHOD_RESULTS[func.attr].get(t.name) for t in receiver
                        if isinstance(t, External) and t.instance}
            if returned and None not in returned:
                return self._partly({External(r, instance=True) for r in returned}, UNRESOLVED in receiver)
        out: set = set()
        targets = self.infer(func, fn, module)
        if not targets and isinstance(func, ast.Name) and func.id in ("enumerate", "zip"):
            unknown = False
            for arg in call.args:  # pairs, each holding an element of an argument
                for item in self.infer(arg.value if isinstance(arg, ast.Starred) else arg, fn, module):
                    out |= self._elements(item)
                    unknown = unknown or item is UNRESOLVED
            return frozenset({Container(frozenset({Container(self._partly(out, unknown))}))}) if out else NOTHING
        if not targets and isinstance(func, ast.Name) and func.id == "getattr" and len(call.args) in (2, 3) and \
                isinstance(call.args[1], ast.Constant) and isinstance(call.args[1].value, str):
            # `getattr(torch.nn, "SiLU", Swish)`: the attribute, or the default where it is missing.
            owners = self.infer(call.args[0], fn, module)
            parts = _Parts()
            parts.found = {t for owner in owners for t in self.member_types(owner, call.args[1].value)}
            missing = not parts.found or UNRESOLVED in owners
            if len(call.args) == 3:
                self._add_part(parts, call.args[2], fn, module)
            return self._partly(parts.found, missing or parts.unknown)
        unknown: list[FunctionInfo | None] = []  # callees whose results are unknown (None: a library's)
        for target in targets:
            if isinstance(target, ClassRef):
                out.add(Instance(target.cls))
                continue
            if isinstance(target, FuncRef):
                called: FunctionInfo | None = target.fn
            elif isinstance(target, Instance):
                called = target.cls.lookup("forward") or target.cls.lookup("__call__")
            else:
                called = None
            if called is not None:
                returned = self.return_types(called)
                if not returned:
                    unknown.append(called)
            elif isinstance(target, External) and not target.instance:
                returned = self._external_call_types(target.name, call, fn, module)
                if not returned:
                    unknown.append(None)  # a library may return what it was handed
            else:
                continue
            out |= returned
        return self._partly(out, bool(out) and (UNRESOLVED in targets or any(
            called is None or self._returns_object(called) for called in unknown)))

    def _returns_object(self, fn: FunctionInfo) -> bool:
        """Whether a function whose return types are unknown may return a project object."""
        return any(self._may_be_object(node.value, fn) for node in fn.nodes
                   if isinstance(node, ast.Return) and node.value is not None)

    def _external_call_types(self, name: str, call: ast.Call, fn, module) -> frozenset:
        if name in MODULE_WRAPPERS and call.args:
            return self.infer(call.args[0], fn, module)
        if name == "importlib.import_module" and len(call.args) == 1:
            return self._imported_modules(call.args[0])
        if name in CONTAINER_MODULES:
            elems: set = set()
            unknown: list = []
            for arg in call.args:
                part = _Parts()
                inner = self._add_part(part, arg.value if isinstance(arg, ast.Starred) else arg, fn, module)
                unknown += part.unknown
                if isinstance(arg, (ast.Starred, ast.List, ast.Tuple, ast.Dict, ast.ListComp, ast.GeneratorExp,
                                    ast.SetComp, ast.DictComp)):
                    for item in inner:
                        elems |= item.elems if isinstance(item, Container) else {item}
                else:
                    elems |= inner
            return frozenset({Container(self._partly(elems, unknown), module=name)})
        if name in LIBRARY_FUNCTION_RESULTS:
            return frozenset(External(returned, instance=True) for returned in LIBRARY_FUNCTION_RESULTS[name])
        last = name.rpartition(".")[2]
        if last[:1].isupper():
            return frozenset({External(name, instance=True)})
        return NOTHING

    def _imported_modules(self, expr: ast.expr) -> frozenset:
        """What `importlib.import_module(expr)` imports: the module a constant names (the project's or a
        library's), or every project module under a constant prefix (`"pkg.models." + kind`)."""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            if expr.value.startswith("."):
                return NOTHING  # relative to a package given apart
            imported = self.canonical(expr.value)
            return self._types_of_qualified(imported) or frozenset({External(imported)})
        head = expr.left if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add) else \
            expr.values[0] if isinstance(expr, ast.JoinedStr) and expr.values else None
        if not (isinstance(head, ast.Constant) and isinstance(head.value, str)) or "." not in head.value or \
                head.value.startswith("."):
            return NOTHING
        prefix = head.value
        found = frozenset(ModuleRef(m) for name, m in self.modules.items() if name.startswith(prefix))
        if found or prefix.partition(".")[0] in self._project_roots():
            return found
        return frozenset({External(prefix.rpartition(".")[0])})  # some module of a library package

    def return_types(self, fn: FunctionInfo) -> frozenset:
        annotation = fn.node.returns
        resolved = NOTHING if annotation is None else self._annotation_types(annotation, fn.module)
        if resolved:
            return resolved

        def collect(parts: _Parts) -> None:
            for node in fn.nodes:
                if isinstance(node, ast.Return) and node.value is not None:
                    self._add_part(parts, node.value, fn, fn.module)
        return self._fixpoint(self._return_types, "return", id(fn), collect, self._types_of_parts, NOTHING)

    def _annotation_types(self, annotation: ast.expr, module: ModuleInfo) -> frozenset:
        """The types an annotation names. They depend on the annotation, its module's imports and the class
        hierarchy alone, so each is computed once per index (rounds that infer types again keep them): the
        memo holds the node, so its id cannot be reused by another node while the entry stands."""
        entry = self._annotations.get(id(annotation))
        if entry is None or entry[0] is not annotation:
            entry = self._annotations[id(annotation)] = (annotation, self._annotated(annotation, module))
        return entry[1]

    def _annotated(self, annotation: ast.expr, module: ModuleInfo) -> frozenset:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return NOTHING
        if isinstance(annotation, ast.Subscript):  # Optional[X] -> X
            inner = annotation.slice
            elts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        elif isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            elts = [annotation.left, annotation.right]
        else:
            name = self.qualify(module, annotation)
            if name in self.classes:  # an object of the class or of any subclass
                cls = self.classes[name]
                return self._partly({Instance(c) for c in (cls, *cls.all_subclasses())}, False)
            if name and name.rpartition(".")[2][:1].isupper() and name.startswith("torch.nn."):
                # `block: nn.Module` may be any module of the project, `conv: nn.Conv1d` a project subclass.
                return self._partly({External(name, instance=True)}, name in self._subclassed_library_classes())
            return NOTHING
        out: set = set()
        unknown = False
        for elt in elts:
            found = self._annotated(elt, module)
            out |= found
            unknown = unknown or not (found or isinstance(elt, ast.Constant) or (
                isinstance(elt, ast.Name) and elt.id in (*SCALAR_TYPES, "None")))
        return self._partly(out, unknown)

    def _subclassed_library_classes(self) -> set[str]:
        """The library classes a project class derives from, `nn.Module` when any does."""
        if self._library_bases is None:
            self._library_bases = {base for cls in self.classes.values() for base in cls.external_bases}
            if any(self.is_module(cls) for cls in self.classes.values()):
                self._library_bases.add(MODULE_BASE)
        return self._library_bases

    def local_names(self, fn: FunctionInfo) -> dict[str, list]:
        """Where each local name of a function gets its value: parameters, assignments, loops, `with ... as`."""
        key = id(fn)
        if key not in self._local_sources:
            sources: dict[str, list] = {}
            for arg, default in _params_with_defaults(fn.node.args):
                sources[arg.arg] = [("param", arg)]
                if default is not None:
                    sources[arg.arg].append(("expr", default))
            for node in fn.nodes:
                if type(node) not in _BINDING_NODES:  # most nodes bind nothing: one lookup, not six checks
                    continue
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and \
                        isinstance(node.func.value, ast.Name) and node.func.attr in ("append", "extend", "insert"):
                    how = "expr" if node.func.attr == "extend" else "append"
                    sources.setdefault(node.func.value.id, []).append((how, node.args[-1]))
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        _bind(target, node.value, sources)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    sources.setdefault(node.target.id, []).append(("ann", node.annotation))
                    if node.value is not None:
                        sources[node.target.id].append(("expr", node.value))
                elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                    _bind(node.target, node.iter, sources, element=True)
                elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                    _bind(node.optional_vars, node.context_expr, sources)
                elif isinstance(node, ast.NamedExpr):
                    _bind(node.target, node.value, sources)
            self._local_sources[key] = sources
        return self._local_sources[key]

    def local_type(self, fn: FunctionInfo, name: str) -> frozenset:
        """Flow-insensitive type of one local name (inferred on first use)."""
        return self._fixpoint(self._local_types, "local", (id(fn), name),
                              lambda parts: self._collect_local(parts, fn, name), self._types_of_parts, NOTHING)

    def _collect_local(self, parts: _Parts, fn: FunctionInfo, name: str) -> None:
        """The parts of a local name's value: what its parameter is passed, what is assigned or appended to it,
        the elements of what a loop over it iterates."""
        elements: list[tuple[str, ast.expr]] = []
        owner = fn.cls if fn.parent is None else None
        for kind, node in self.local_names(fn).get(name, ()):
            if kind == "param":
                if name == fn.receiver and owner is not None:
                    if fn.is_classmethod:  # `cls` is the class it is called on: the owner or a subclass
                        parts.found.update(ClassRef(c) for c in (owner, *owner.all_subclasses()))
                    else:
                        parts.found.add(Instance(owner))
                    continue
                annotated = NOTHING if node.annotation is None else self._annotation_types(
                    node.annotation, fn.module)
                if annotated and (UNRESOLVED not in annotated or not self.callers_of(fn)):
                    parts.found |= annotated
                elif self._types_from_call_sites:
                    # Unannotated, or annotated with a library class the project subclasses (`encoder:
                    # nn.Module`): the arguments passed say which classes (the default counts as a value),
                    # when every call of the function is one the index sees (`_settle_unseen_callers`).
                    if id(fn) in self._unseen_callers:
                        parts.found.add(UNRESOLVED)
                    elif self.callers_of(fn):
                        self._typed_by_callers.add(id(fn))
                    for site in self.callers_of(fn):
                        argument = argument_for(fn, site, name)
                        if argument is not None:
                            self._add_part(parts, argument, site.caller, site.caller.module)
                        else:  # `f(*args)`, `f(**config)` may pass it: any of their elements
                            for unpacked in _unpacked(site.node):
                                items = self.infer(unpacked, site.caller)
                                found = frozenset(t for item in items for t in self._elements(item))
                                parts.found |= found
                                if not found or UNRESOLVED in items:
                                    parts.unknown.append((unpacked, site.caller, site.caller.module))
                    parts.found |= self._configured.get((id(fn), name), NOTHING)
            elif kind == "ann":
                parts.found |= self._annotation_types(node, fn.module)
            elif kind in ("elem", "elem of elem"):
                elements.append((kind, node))
            elif kind == "append":
                parts.found.add(Container(self._appended(node, fn, fn.module)))
            else:
                self._add_part(parts, node, fn, fn.module)
        for kind, node in elements:  # what a loop binds: an element of the iterated value
            items = self.infer(node, fn)
            if kind == "elem of elem":
                items = frozenset(elem for item in items for elem in self._elements(item))
            found = frozenset(t for item in items for t in self._elements(item))
            parts.found |= found
            if not found:
                parts.unknown.append((node, fn, fn.module))
            elif UNRESOLVED in items:
                parts.found.add(UNRESOLVED)

    def _appended(self, value: ast.expr, fn: FunctionInfo | None, module: ModuleInfo | None) -> frozenset:
        """The element types a value appended to a container adds; `UNRESOLVED` alone for one of unknown type
        that may be a project object (merged with the container's other elements, it marks them partial)."""
        types = self.infer(value, fn, module)
        if not types and self._may_be_object(value, fn, module):
            return frozenset({UNRESOLVED})
        return types

    def _elements(self, t: Type) -> frozenset:
        """What iterating a value of type `t` yields: a container's elements; for an instance of a project
        subclass of `nn.ModuleList` or `nn.Sequential`, the modules its methods add (`self.append(m)`,
        `self.add_module(name, m)`)."""
        if isinstance(t, Container):
            return t.elems
        if not isinstance(t, Instance) or not any(
                base in ("torch.nn.ModuleList", "torch.nn.Sequential")
                for owner in t.cls.mro() for base in owner.external_bases):
            return NOTHING
        parts = _Parts()
        for owner in t.cls.mro():
            for method in owner.methods.values():
                receiver = method.receiver
                for node in method.nodes if receiver is not None else ():
                    if isinstance(node, ast.Call) and node.args and _is_self_attr(node.func, receiver) and \
                            node.func.attr in ("append", "add_module", "insert"):
                        self._add_part(parts, node.args[-1], method, method.module)
        return self._partly(parts.found, parts.unknown)

    def attr_types(self, cls: ClassInfo, attr: str) -> frozenset:
        """Types of `self.<attr>` from every assignment to it in the class, its bases and its subclasses (the
        object may be an instance of one: `self.estimator` in a base class is what a subclass stores)."""
        key = (id(cls), attr)
        if self._recalled(self._attr_whole, key, ("attributes", key)):
            return self._attr_whole[key]
        return self._decided(self._attr_whole, key, ("attributes", key), lambda: self._attr_types_over(cls, attr))

    def _attr_types_over(self, cls: ClassInfo, attr: str) -> frozenset:
        """`attr_types` before it is memoized: each class's assignments, unknown parts kept."""
        out: set = set()
        unknown: list = []  # assigned values of unknown type, in any of those classes
        for owner in cls.family():
            if attr not in _attribute_table(owner):  # most of a large family never assigns it
                continue

            def collect(parts: _Parts, owner: ClassInfo = owner) -> None:
                for fn, value, how in _attribute_assignments(owner, attr):
                    if how == "ann":
                        parts.found |= self._annotation_types(value, owner.module)
                    elif how == "append":
                        parts.found.add(Container(self._appended(value, fn, owner.module)))
                    else:
                        self._add_part(parts, value, fn, owner.module)
            found_here, unknown_here = self._fixpoint(
                self._attr_types, "attribute", (id(owner), attr), collect,
                lambda parts: (frozenset(parts.found), tuple(parts.unknown)), (frozenset({UNRESOLVED}), ()))
            out |= found_here
            unknown += unknown_here
        return self._partly(_merge_containers(out), unknown)

    # -- modules and parameters ---------------------------------------------

    def is_module(self, cls: ClassInfo) -> bool:
        key = id(cls)
        if key not in self._is_module:
            self._is_module[key] = False
            result = any(b.startswith("torch.nn.") for b in cls.external_bases) or any(
                self.is_module(base) for base in cls.bases
            )
            if not result and cls.external_bases and cls.lookup("forward") is not None:
                result = True  # an external base with a `forward` of ours: a module of some library
            self._is_module[key] = result
        return self._is_module[key]

    def _is_module_type(self, t: Type) -> bool:
        if isinstance(t, Instance):
            return self.is_module(t.cls)
        if isinstance(t, External):
            return t.instance and (t.name.startswith("torch.nn.") or t.name.startswith("torchaudio."))
        if isinstance(t, Container):
            return t.module is not None
        return False

    def _defines(self, t: Type, method: str) -> bool:
        return isinstance(t, Instance) and t.cls.lookup(method) is not None

    def parameter_attrs(self, cls: ClassInfo) -> frozenset:
        """Names of `self.x = nn.Parameter(...)` (or `register_parameter("x", ...)`) of a class and its bases."""
        key = id(cls)
        if key not in self._param_attrs:
            names = set()
            for owner in cls.mro():
                for attr, sources in _attribute_table(owner).items():
                    if any(isinstance(value, ast.Call) and self.qualify(owner.module, value.func) in PARAMETER_CLASSES
                           for _, value, _ in sources):
                        names.add(attr)
                for method in owner.methods.values():
                    for site in method.calls:
                        func, args = site.node.func, site.node.args
                        if isinstance(func, ast.Attribute) and func.attr == "register_parameter" and args and \
                                isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                            names.add(args[0].value)
            self._param_attrs[key] = frozenset(names)
        return self._param_attrs[key]

    def has_parameters(self, t: Type) -> bool:
        """Whether a module (type) holds parameters; unknown external modules, and values of unresolved type,
        count as holding some."""
        if isinstance(t, Instance):
            return self.class_has_parameters(t.cls)
        if isinstance(t, External):
            return t.instance and not is_parameterless_external(t.name)
        if isinstance(t, Container):
            return any(self.has_parameters(e) for e in t.elems)
        return t is UNRESOLVED

    def class_has_parameters(self, cls: ClassInfo) -> bool:
        key = id(cls)
        if key in self._has_params:
            return self._has_params[key]
        self._has_params[key] = False
        result = bool(self.parameter_attrs(cls))
        if not result:
            result = any(
                not b.startswith("torch.nn.") or b not in (MODULE_BASE, "torch.nn.modules.module.Module")
                for b in cls.external_bases
                if b not in ("object", "abc.ABC", "typing.Generic")
            )
        if not result:
            for owner in cls.mro():
                for attr in _assigned_attrs(owner):
                    if any(self.has_parameters(t) for t in self.attr_types(cls, attr) if self._is_module_type(t)):
                        result = True
                        break
                if result:
                    break
        self._has_params[key] = result
        return result

    # -- calls ---------------------------------------------------------------

    def _resolve_call(self, site: CallSite) -> None:
        fn = site.caller
        func = site.node.func
        site.opaque, site.handed, site.handed_functions, site.unresolved, site.externals = False, None, (), False, ()
        types = self.infer(func, fn)
        unknown = self._resolve_unresolved_part(site, types)
        site.calls_unknown = unknown
        callees: list[FunctionInfo] = []
        module_types: list = []
        constructs: list[ClassInfo] = []
        externals: set[str] = set()
        for t in types:
            if isinstance(t, FuncRef):
                callees.append(t.fn)
                callees.extend(self._overrides(t.fn, func, fn))
            elif isinstance(t, ClassRef):
                constructs.append(t.cls)
                init = t.cls.lookup("__init__")
                if init is not None:
                    callees.append(init)
            elif isinstance(t, Instance):
                target = t.cls.lookup("forward") or t.cls.lookup("__call__")
                if target is not None:
                    callees.append(target)
                    callees.extend(self._overrides(target, None, None, t.cls))
                if self.is_module(t.cls):
                    module_types.append(t)
            elif isinstance(t, Container) and t.module:
                module_types.append(t)
                for elem in t.elems:
                    if isinstance(elem, Instance):
                        target = elem.cls.lookup("forward")
                        if target is not None:
                            callees.append(target)
            elif isinstance(t, External):
                if t.instance:
                    module_types.append(t)
                else:
                    externals.add(t.name)
        for callee in list(callees):
            if callee.qualname in self.redefined:
                callees.extend(self._definitions_of(callee.qualname))
        site.callees = tuple(dict.fromkeys(callees))
        site.module_types = tuple(dict.fromkeys(module_types))
        site.constructs = tuple(dict.fromkeys(constructs))
        if len(externals) > 1:
            # `conv(...)` with `conv = nn.Conv2d if two_d else nn.Conv1d`: the analyses read a call as one
            # library callable, and choosing one of them would be a guess.
            site.externals = tuple(sorted(externals))
            site.unresolved = True
            return
        site.external = next(iter(externals), None)
        site.calls_unknown = unknown and site.external is None
        if site.external in CALLING_FUNCTIONS:
            site.handed, site.handed_functions = self._handed(site)
        owners: frozenset = frozenset()
        if not site.callees and not site.module_types and not site.constructs and site.external is None and \
                isinstance(func, ast.Attribute):
            owners = self.infer(func.value, fn)
            if owners and all(isinstance(t, External) and t.instance for t in owners):
                # A method of a library object (`self.tfmr.forward(...)` on a transformers model).
                if func.attr in ("forward", "__call__"):
                    site.module_types = tuple(owners)
                else:
                    site.external = f"{sorted(t.name for t in owners)[0]}.{func.attr}"
                site.calls_unknown = False
                return
        if not site.callees and not site.module_types and not site.constructs and site.external is None:
            name = self.qualify(fn.module, func, fn)
            if name is not None and not name.startswith(tuple(f"{m}." for m in self._project_roots())):
                site.external = name
                site.calls_unknown = False
                if name in CALLING_FUNCTIONS:
                    site.handed, site.handed_functions = self._handed(site)
            elif isinstance(func, ast.Attribute):
                # `x.m()` on an object of unknown type reaches project code through a method named `m`, or
                # through an object or a class of the project held in an attribute named `m`.
                site.unresolved = func.attr in self._method_names()
                site.opaque = self._may_hold_object(owners, func.attr)
            elif isinstance(func, ast.Name) and func.id in BUILTIN_NAMES:
                site.calls_unknown = False
                if func.id in CALLING_FUNCTIONS:  # `map(block, xs)`
                    site.handed, site.handed_functions = self._handed(site)
            else:
                site.unresolved = True
                site.opaque = not isinstance(func, ast.Name) or self._may_be_object(func, fn)

    def _resolve_unresolved_part(self, site: CallSite, types: frozenset) -> bool:
        """A callee only part of whose value has a resolved type (`UNRESOLVED` beside it) may also be what a
        call of a value of unknown type may be: an object or a class of the project (the call is opaque) or,
        for `x.m()` on an object partly of unknown type, any project method named `m`. Whether the value called
        has a type the index does not know, in whole or in part."""
        func = site.node.func
        value_types = types
        unknown = not types or UNRESOLVED in types
        if isinstance(func, ast.Attribute):
            owners = self.infer(func.value, site.caller)
            if UNRESOLVED in owners:
                unknown = True
                site.unresolved = func.attr in self._method_names()
                site.opaque = self._may_hold_object(NOTHING, func.attr)
                value_types = self._attribute_types(func, site.caller, site.caller.module, owners - {UNRESOLVED})
        if UNRESOLVED in value_types or any(isinstance(t, Container) and t.module and UNRESOLVED in t.elems
                                            for t in value_types):
            site.opaque = True
        return unknown or UNRESOLVED in value_types

    def _handed(self, site: CallSite) -> tuple[tuple[ClassInfo, ...] | None, tuple[FunctionInfo, ...] | None]:
        """The project classes whose objects, or which, a call of a library callable that calls an argument
        (`CALLING_FUNCTIONS`) passes as that argument (`()` when its type is unknown: any class), or None; and
        the project functions it passes so (`map(step, xs)`; None when it may be any: a lambda, a value of
        unknown type)."""
        call = site.node
        position, keyword = CALLING_FUNCTIONS[site.external or call.func.id]
        passed = [kw.value for kw in call.keywords if kw.arg == keyword]
        if position is not None and len(call.args) > position:
            passed.append(call.args[position])
        if any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords):
            passed.extend(a.value if isinstance(a, ast.Starred) else a for a in call.args)  # cannot tell which
        classes: list[ClassInfo] = []
        functions: list[FunctionInfo] = []
        any_function = False
        for value in passed:
            types = self.infer(value, site.caller)
            if UNRESOLVED in types or (not types and self._may_be_object(value, site.caller)):
                return (), None
            any_function = any_function or not types
            for t in types:
                for held in (t.elems if isinstance(t, Container) else (t,)):
                    if isinstance(held, (Instance, ClassRef)):
                        classes.append(held.cls)
                    elif isinstance(held, FuncRef):
                        functions.append(held.fn)
                    else:
                        any_function = any_function or held is UNRESOLVED
        return tuple(dict.fromkeys(classes)) or None, None if any_function else tuple(dict.fromkeys(functions))

    def _may_hold_object(self, owners: frozenset, attr: str) -> bool:
        """Whether `<owner>.attr` may hold an object or a class of the project (the call then runs its
        `forward`, `__call__` or `__init__`): on an object of unknown type, or of a project class without that
        method, an attribute the project stores somewhere with a value that may be one (an attribute nothing
        stores is a library base's method: `self.add_module`)."""
        if owners and not any(isinstance(t, Instance) and t.cls.lookup(attr) is None for t in owners):
            return False
        if self._recalled(self._object_attributes, attr, ("object attribute", attr)):
            return self._object_attributes[attr]
        return self._decided(self._object_attributes, attr, ("object attribute", attr), lambda: any(
            self._may_be_object(value, fn, module) for value, fn, module in self._stored_values(attr)))

    def _may_be_object(self, value: ast.expr, fn: FunctionInfo | None, module: ModuleInfo | None = None) -> bool:
        """Whether a value may be an object or a class of the project. Its types say so or are unknown, and it
        is not: a literal, a lambda, a comparison; a parameter annotated with a builtin scalar type (`size:
        int`); the result of calling a name bound nowhere (which raises `NameError`); an attribute or an element
        of a library object, unless the project stores a value of that name into another object
        (`tfmr.layers[i].self_attn`); a local assigned only such values."""
        key = (id(value), id(fn))
        if self._recalled(self._object_values, key, ("object", key)):
            return self._object_values[key]
        if self._depth() >= MAX_INFERENCE_DEPTH:
            return True  # too deep to decide here: it may be one
        self._object_values[key] = True  # while it is decided: a cycle of assignments (`a = b`, `b = a`) may
        self._deciding += 1
        found = self._decided(self._object_values, key, ("object", key),
                              lambda: self._decide_object(value, fn, module))
        self._deciding -= 1
        return found

    def _decide_object(self, value: ast.expr, fn: FunctionInfo | None, module: ModuleInfo | None) -> bool:
        types = self.infer(value, fn, module)
        if types:
            return any(isinstance(t, (Instance, ClassRef, Container)) or t is UNRESOLVED for t in types)
        if isinstance(value, (ast.Constant, ast.JoinedStr, ast.Lambda, ast.Compare)) or (
                isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not)):
            return False  # a lambda runs only its own calls, which are sites of their own
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and fn is not None:
            return not self._unbound(value.func.id, fn)
        if isinstance(value, (ast.Attribute, ast.Subscript)):
            owner = self.infer(value.value, fn, module)
            name = value.attr if isinstance(value, ast.Attribute) else _last_name(value.value)
            stored = name is None or any(self._may_be_object(v, f, f.module)
                                         for v, f in self._stored_elsewhere().get(name, ()))
            if owner and all(isinstance(t, External) and t.instance for t in owner):
                return stored
            return stored or self._may_be_object(value.value, fn, module)
        if isinstance(value, ast.Name) and fn is not None:
            sources = self.local_names(fn).get(value.id, ())
            if not sources and fn.parent is not None:  # a name the function reads from the one around it
                return self._may_be_object(value, fn.parent, module)
            if not sources:  # a module-level name (its types were inferred above), or a builtin or unbound
                return not self._unbound(value.id, fn) and (value.id not in BUILTIN_NAMES or
                                                            value.id in fn.module.assigns)
            # `p = Processor(...)`, `f = layer.forward`; `size: int = 256`; a parameter no caller passes an object
            return any(self._may_be_object(node, fn, module) if kind == "expr" else
                       self._passed_object(fn, value.id, node) if kind == "param" else
                       not (kind == "ann" and _scalar_annotation(node)) for kind, node in sources)
        return True

    def _passed_object(self, fn: FunctionInfo, name: str, param: ast.arg) -> bool:
        """Whether a parameter may hold a project object: not if annotated with a scalar type, nor once every
        call is linked, when no caller passes it one (its default is a value of its own); any, when nothing in
        the project calls `fn` (it is entered from outside)."""
        if _scalar_annotation(param.annotation):
            return False
        callers = self.callers_of(fn) if self._callers_complete else ()
        if not callers or name == fn.receiver or id(fn) in self._unseen_callers:
            return True
        self._typed_by_callers.add(id(fn))  # decided from its visible callers (`_settle_unseen_callers`)
        for site in callers:
            argument = argument_for(fn, site, name)
            if argument is None and _unpacked(site.node) or argument is not None and self._may_be_object(
                    argument, site.caller):
                return True
        return False

    def _stored_elsewhere(self) -> dict[str, list[tuple[ast.expr, FunctionInfo]]]:
        """Values the project stores, by attribute name, into an object other than the storing method's own
        receiver (`model.head = Head()`) or into the elements of an attribute (`obj.layers[i] = block`,
        `obj.layers.append(block)`): how a library object may come to hold a project object."""
        if self._elsewhere is None:
            attributes, elements = self._stores()
            self._elsewhere = {name: [*attributes.get(name, ()), *elements.get(name, ())]
                               for name in attributes.keys() | elements.keys()}
        return self._elsewhere

    def _unbound(self, name: str, fn: FunctionInfo) -> bool:
        """Whether `name` is bound nowhere `fn` can read it: not a local of `fn` or of a function around it,
        not bound at module level (at any depth outside functions and classes, or by a `global` statement),
        not a builtin, in a module without a star import or a `globals()` call (which may bind anything)."""
        scope: FunctionInfo | None = fn
        while scope is not None:
            if name in self.local_names(scope):
                return False
            scope = scope.parent
        bound = self._module_bindings(fn.module)
        return bound is not None and name not in bound and name not in BUILTIN_NAMES

    def _module_bindings(self, module: ModuleInfo) -> frozenset | None:
        """The names a module's own code binds at module level; every name (None) when a star import or a
        `globals()` call may bind any."""
        if module not in self._bindings:
            names: set[str] = set()
            stack: list[ast.AST] = list(module.tree.body)
            while stack:
                node = stack.pop()
                if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                    names = None
                    break
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names.update((a.asname or a.name).split(".")[0] for a in node.names)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                    stack.extend([*node.decorator_list, *(node.bases if isinstance(node, ast.ClassDef) else ())])
                    continue  # the body binds its own scope's names (`global` statements are found below)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
                stack.extend(ast.iter_child_nodes(node))
            if names is not None and any(where.module is module for where, _ in self.loads("globals")):
                names = None
            if names is not None:
                for fn in module.functions:
                    names.update(name for node in fn.nodes if isinstance(node, ast.Global) for name in node.names)
            self._bindings[module] = frozenset(names) if names is not None else None
        return self._bindings[module]

    def stores_attribute(self, attr: str) -> bool:
        """Whether the project stores any value in an attribute named `attr` (`self.lin = nn.Linear(...)`):
        `x.attr` on an object of unknown type may then be that value, not a tensor's method."""
        return next(self._stored_values(attr), None) is not None

    def _stored_values(self, attr: str) -> Iterator[tuple[ast.expr, FunctionInfo | None, ModuleInfo]]:
        """Every value the project stores in an attribute named `attr`, with the function and module it is in:
        `self.attr = ...` in a class (and its class-level fields), and `<object>.attr = ...` anywhere."""
        if self._class_stores is None:
            self._class_stores = {}
            for cls in self.classes.values():
                for name, sources in _attribute_table(cls).items():
                    self._class_stores.setdefault(name, []).extend(
                        (value, method, cls.module) for method, value, kind in sources if kind != "ann")
        yield from self._class_stores.get(attr, ())
        for value, fn in self._stores()[0].get(attr, ()):
            yield value, fn, fn.module

    def _stores(self) -> tuple[dict[str, list[tuple[ast.expr, FunctionInfo]]],
                               dict[str, list[tuple[ast.expr, FunctionInfo]]]]:
        """From one walk of every body, by attribute name: the values stored as `<object>.attr = value` outside
        the storing method's own receiver, and those stored into the elements of `<object>.attr`."""
        if self._store_tables is None:
            attributes: dict[str, list[tuple[ast.expr, FunctionInfo]]] = {}
            elements: dict[str, list[tuple[ast.expr, FunctionInfo]]] = {}
            for fn in self.functions.values():
                receiver = fn.receiver
                for node in fn.nodes:
                    if type(node) not in _STORING_NODES:
                        continue
                    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                        for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                            if isinstance(target, ast.Attribute) and (
                                    receiver is None or not _is_self_attr(target, receiver)):
                                attributes.setdefault(target.attr, []).append((node.value, fn))
                            elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Attribute):
                                elements.setdefault(target.value.attr, []).append((node.value, fn))
                    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                            node.func.attr in CONTAINER_STORE_METHODS and isinstance(node.func.value, ast.Attribute):
                        elements.setdefault(node.func.value.attr, []).extend((arg, fn) for arg in node.args)
            self._store_tables = attributes, elements
        return self._store_tables

    def _method_names(self) -> set[str]:
        if self._methods is None:
            self._methods = {fn.name for fn in self.functions.values() if fn.is_method}
        return self._methods

    def _project_roots(self) -> set[str]:
        if self._roots is None:
            self._roots = {name.split(".")[0] for name in self.modules}
        return self._roots

    def _overrides(self, method: FunctionInfo, func: ast.expr | None, caller: FunctionInfo | None,
                   cls: ClassInfo | None = None) -> list[FunctionInfo]:
        """`self.m()` may dispatch to an override in a subclass."""
        owner = cls or method.cls
        if owner is None or method.parent is not None:
            return []
        called_on_self = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (
            caller is not None and func.value.id == caller.receiver)
        if cls is None and not called_on_self:
            return []
        key = (id(owner), id(method))
        found = self._overriding.get(key)
        if found is None:
            found = [sub.methods[method.name] for sub in owner.all_subclasses()
                     if method.name in sub.methods and sub.methods[method.name] is not method]
            self._overriding[key] = found
        return found

    def _definitions_of(self, qualname: str) -> list[FunctionInfo]:
        """Every definition of a function defined more than once (`f`, `f@12`, ...)."""
        if self._definitions is None:
            self._definitions = {}
            for f in self.functions.values():
                base = f.qualname.partition("@")[0]
                if base in self.redefined:
                    self._definitions.setdefault(base, []).append(f)
        return self._definitions.get(qualname, [])

    def _accepting_methods(self, methods_by_name: dict[str, list[FunctionInfo]], name: str,
                           call: ast.Call) -> tuple[FunctionInfo, ...]:
        """The project methods `name` that `obj.name(...)` may bind to, memoized on the name and the call's
        shape (its argument count and keyword names): `x.forward(h)` is checked against every `forward` once."""
        shape = _call_shape(call)
        key = (name, shape)
        found = self._accepting.get(key)
        if found is None:
            found = self._accepting[key] = tuple(m for m in methods_by_name.get(name, ())
                                                 if self._accepts(m, shape))
        return found

    def _accepts(self, method: FunctionInfo, shape: CallShape) -> bool:
        """Whether a call of this shape can bind to `method`'s parameters (receiver bound), memoized on its
        signature."""
        return self._signature_binds(self._signature_of(method), shape)

    def _signature_of(self, method: FunctionInfo) -> Signature:
        """A method's signature as `obj.method(...)` calls it (a static method's receiver is not bound)."""
        signature = self._signatures.get(id(method))
        if signature is None:
            signature = self._signatures[id(method)] = _signature(method.node.args, not method.is_static)
        return signature

    def _signature_binds(self, signature: Signature, shape: CallShape) -> bool:
        found = self._binding.get((signature, shape))
        if found is None:
            found = self._binding[(signature, shape)] = _binds(signature, shape)
        return found

    def opaque_caller(self, fn: FunctionInfo) -> CallSite | None:
        """The first call of a value of unknown type (`m(x)`, `self.layers[i](x)`, an attribute the index could
        not type) that may run `fn`, the `__call__` or `__init__` of a project class or a module's `forward`,
        when the call's arguments bind to its signature; else the first call handing its class's objects (or
        values of unknown type) to a library callable that calls them (`map(block, xs)`). Its callers are then
        not all known."""
        if fn.cls is None or fn.parent is not None or not (
                fn.name in ("__call__", "__init__") or (fn.name == "forward" and self.is_module(fn.cls))):
            return None
        if fn.name == "__init__" and not self.class_handed_out(fn.cls):
            return None  # no call of a value of unknown type can be the class: it is never handed out
        if self._opaque_calls is None:
            shapes: dict[tuple, CallSite] = {}  # one call per argument shape: the shape is all `_binds` reads
            for caller in self.functions.values():
                for site in caller.calls:
                    if site.opaque:
                        shapes.setdefault(_call_shape(site.node), site)
                    if site.handed is not None:
                        for cls in site.handed or (None,):  # None: any class
                            self._handing_calls.setdefault(cls and id(cls), site)
            self._opaque_calls = list(shapes.values())
        related = fn.cls.family()  # an object of a base may be one of a subclass
        handing = [self._handing_calls.get(key) for key in (None, *(id(c) for c in related))]
        return next((site for site in self._opaque_calls if self._accepts(fn, _call_shape(site.node))), None) or next(
            (site for site in handing if site is not None), None)

    def possible_targets(self, site: CallSite) -> tuple[FunctionInfo, ...]:
        """Every project function a call may run: its callees, the methods `x.m()` on a value of unknown type
        may bind to, and those it may run through a value of unknown type (`unseen_targets`), each part but
        the first in file order."""
        found = self._site_targets.get(id(site))
        if found is not None:
            return found
        parts = self._unseen_parts(site)
        key = (*(id(fn) for fn in site.targets), None, *(key for key, _ in parts))  # calls alike share one
        found = self._possible.get(key)
        if found is None:
            found = self._possible[key] = tuple(dict.fromkeys(
                [*site.targets, *(fn for key, groups in parts for fn in self._ordered(key, groups))]))
        self._site_targets[id(site)] = found
        return found

    def unseen_targets(self, site: CallSite) -> list[tuple[tuple[FunctionInfo, ...], ...]]:
        """What a call may run that no call names, in parts, each a tuple of groups of functions shared by many
        calls (in no particular order; a group may hold groups in turn):

        - a call of a value that may be a project object or class (`site.opaque`): every `forward`, `__call__`
          and `__init__` that may be run so (those whose `opaque_caller` such a call may be; an `__init__` only
          where the call may be of a class: not where only the elements of a module container are unknown);
        - a library callable that calls what it is handed (`map(block, xs)`): the `forward` and `__call__` of
          the classes handed, and the functions handed;
        - a call of a value of unknown type (`site.calls_unknown`): every function the project hands out as a
          value (`escape_of`) and every lambda (what its calls may run) that accept the call's arguments; for
          `x.m(...)`, the functions named `m` and those the project stores in attributes named `m`, or all of
          them where a value stored there may be a function of unknown kind (`_may_be_function`). A library
          callable handed a value of unknown type may run any of them.
        """
        return [groups for _, groups in self._unseen_parts(site)]

    def unseen_overflow(self, site: CallSite) -> bool:
        """Whether a call of a value of unknown type may run more than `MAX_UNSEEN_FUNCTIONS` project functions
        (then `unseen_targets` leaves them out)."""
        self._unseen_parts(site)
        return id(site) in self._overflow

    def _unseen_parts(self, site: CallSite) -> list[tuple[tuple, tuple[tuple[FunctionInfo, ...], ...]]]:
        """`unseen_targets`, each part with its key."""
        parts = self._site_parts.get(id(site))
        if parts is None:
            parts = self._site_parts[id(site)] = self._find_unseen_parts(site)
        return parts

    def _find_unseen_parts(self, site: CallSite) -> list[tuple[tuple, tuple[tuple[FunctionInfo, ...], ...]]]:
        if not (site.opaque or site.handed is not None or site.calls_unknown or site.handed_functions != ()):
            return []
        if not self._unseen_indexed:
            self._index_unseen_entries()
        parts = []
        groups = self._unseen_groups
        shape = _call_shape(site.node)
        if site.opaque:
            types = self.infer(site.node.func, site.caller)
            classes = not types or UNRESOLVED in types  # else only a module container's elements are unknown
            key = ("called", classes, shape)
            if key not in groups:  # each signature checked once
                groups[key] = tuple(group for (signature, init), group in self._entry_signatures.items()
                                    if (classes or not init) and self._signature_binds(signature, shape))
            parts.append((key, groups[key]))
        if site.handed is not None:
            key = ("handed", *sorted(id(cls) for cls in site.handed))
            if key not in groups:
                groups[key] = tuple(self._entry_calls.values()) if not site.handed else tuple(
                    self._entry_calls[id(c)] for c in dict.fromkeys(
                        c for cls in site.handed for c in (cls, *cls.all_subclasses())) if id(c) in self._entry_calls)
            parts.append((key, groups[key]))
        values = []
        if site.calls_unknown:
            attr = _called_attribute(site)
            key = ("value", attr, shape)
            if key not in groups:
                groups[key] = self._value_groups(attr, shape)
            values.append((key, groups[key]))
        if site.handed_functions:
            key = ("functions", *(id(fn) for fn in site.handed_functions))
            parts.append((key, groups.setdefault(key, (site.handed_functions,))))
        elif site.handed_functions is None:
            key = ("passed",)
            values.append((key, groups.setdefault(key, (*self._value_signatures.values(), *(
                group for lambda_groups in self._lambda_signatures.values() for group in lambda_groups)))))
        if not values:
            return parts
        counted = tuple(key for key, _ in values)
        overflows = self._value_overflows.get(counted)
        if overflows is None:
            overflows = self._value_overflows[counted] = _more_than(
                MAX_UNSEEN_FUNCTIONS, tuple(found for _, found in values))
        if overflows:
            self._overflow.add(id(site))
            return parts
        return parts + values

    def _value_groups(self, attr: str | None, shape: CallShape,
                      lambdas: bool = True) -> tuple[tuple[FunctionInfo, ...], ...]:
        """What a call of this shape of a value of unknown type may run (`x.attr(...)` on an object of unknown
        type, when `attr` is given): the functions handed out as values that accept it and what the calls in
        the `lambdas` that accept it reach, or for `x.attr(...)`, the project's functions named `attr` that
        accept it and the functions stored in attributes named `attr`, unless a value stored there may be a
        function of unknown kind."""
        if self._runs_anything(attr):
            found = [self._values_binding(shape)]
            if lambdas:
                found.append(self._lambdas_binding(shape))
        else:
            found = [tuple(fn for signature, fn in self._value_names.get(attr, ())
                           if self._signature_binds(signature, shape))]
        if attr is not None:
            found.append(self._stored_functions(attr))
        return tuple(found)

    def _runs_anything(self, attr: str | None) -> bool:
        """Whether a call of a value of unknown type may run any function handed out as a value: one not
        reached through an attribute, or through an attribute named `attr` the project stores a value in that
        may be a function of unknown kind (`_may_be_function`)."""
        if attr is None:
            return True
        found = self._attribute_runs_anything.get(attr)
        if found is None:
            found = self._attribute_runs_anything[attr] = any(
                self._may_be_function(value, fn, module) for value, fn, module in self._stored_values(attr))
        return found

    def _stored_functions(self, attr: str) -> tuple[FunctionInfo, ...]:
        """The project functions stored in attributes named `attr`."""
        found = self._attribute_functions.get(attr)
        if found is None:
            found = self._attribute_functions[attr] = tuple(dict.fromkeys(
                t.fn for value, fn, module in self._stored_values(attr)
                for t in self.infer(value, fn, module) if isinstance(t, FuncRef)))
        return found

    def _lambdas_binding(self, shape: CallShape) -> tuple:
        """What the lambdas whose signature a call of this shape binds to may run (every function handed out
        and every lambda's reach, where one of them calls a value that may be any function), memoized."""
        found = self._lambdas_by_shape.get(shape)
        if found is None:
            called = [signature for signature in self._lambda_signatures if self._signature_binds(signature, shape)]
            if self._lambdas_reaching_all.intersection(called):
                found = (tuple(self._value_signatures.values()), *self._lambda_signatures.values())
            else:
                found = tuple(self._lambda_signatures[signature] for signature in called)
            self._lambdas_by_shape[shape] = found
        return found

    def _values_binding(self, shape: CallShape) -> tuple[tuple[FunctionInfo, ...], ...]:
        """The groups of functions handed out as values whose signature a call of this shape binds to,
        memoized by shape. A call naming keywords is checked only against the signatures that have a
        parameter of each name or take `**kwargs`."""
        found = self._by_shape.get(shape)
        if found is None:
            _, starred, keywords = shape
            candidates: Iterable[Signature] = self._value_signatures
            if keywords and not starred and None not in keywords:
                named = set.intersection(*(self._value_keywords.get(keyword, set()) for keyword in keywords))
                candidates = sorted(named | self._value_varkw, key=self._value_order.__getitem__)
            found = self._by_shape[shape] = tuple(
                self._value_signatures[signature] for signature in candidates if _binds(signature, shape))
        return found

    def _may_be_function(self, value: ast.expr, fn: FunctionInfo | None, module: ModuleInfo) -> bool:
        """Whether a value may be a function whose code the index does not name: a lambda, a function handed
        out, a value of unknown type. Not a literal, an operation's result, a value of a known type other than
        a function, a parameter every caller passes such a value."""
        key = (id(value), id(fn))
        found = self._function_values.get(key)
        if found is not None:
            return found
        self._function_values[key] = True  # while it is decided: a cycle of assignments may be one
        types = self.infer(value, fn, module)
        if types:
            found = any(isinstance(t, FuncRef) or t is UNRESOLVED for t in types)
        elif isinstance(value, (ast.Constant, ast.JoinedStr, ast.Compare, ast.BinOp, ast.UnaryOp, ast.List,
                                ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
            found = False
        elif isinstance(value, ast.Name) and fn is not None and self.local_names(fn).get(value.id):
            found = any(self._may_be_function(node, fn, module) if kind == "expr" else
                        self._passed_function(fn, value.id, node) if kind == "param" else
                        not (kind == "ann" and _scalar_annotation(node))
                        for kind, node in self.local_names(fn)[value.id])
        else:
            found = True
        self._function_values[key] = found
        return found

    def _passed_function(self, fn: FunctionInfo, name: str, param: ast.arg) -> bool:
        """Whether a parameter may hold a function whose code the index does not name (`_may_be_function`)."""
        if _scalar_annotation(param.annotation):
            return False
        callers = self.callers_of(fn)
        if not callers or name == fn.receiver or id(fn) in self._unseen_callers:
            return True
        for site in callers:
            argument = argument_for(fn, site, name)
            if argument is None and _unpacked(site.node) or argument is not None and self._may_be_function(
                    argument, site.caller, site.caller.module):
                return True
        return False

    def _index_unseen_entries(self) -> None:
        """The functions `unseen_targets` draws on: the entry methods (grouped by signature and whether an
        `__init__`, and by class), the functions handed out as values (grouped by signature, a method under the
        signature of its bound and of its unbound form, and every function by name), and what the calls in
        lambdas may run, by the lambda's signature. Each group in file order, whatever order the files were
        read in."""
        self._unseen_indexed = True
        entries = sorted(
            (fn for fn in self.functions.values() if fn.cls is not None and fn.parent is None and (
                fn.name == "__call__" or (fn.name == "forward" and self.is_module(fn.cls))
                or (fn.name == "__init__" and self.class_handed_out(fn.cls)))), key=_in_file_order)
        signatures: dict[tuple[Signature, bool], list[FunctionInfo]] = {}
        calls: dict[int, list[FunctionInfo]] = {}
        for fn in entries:
            signatures.setdefault((self._signature_of(fn), fn.name == "__init__"), []).append(fn)
            if fn.name != "__init__":
                calls.setdefault(id(fn.cls), []).append(fn)
        self._entry_signatures = {key: tuple(group) for key, group in signatures.items()}
        self._entry_calls = {key: tuple(group) for key, group in calls.items()}
        by_signature: dict[Signature, list[FunctionInfo]] = {}
        escaped = {id(fn) for fn in self.functions.values() if self.escape_of(fn) is not None}
        every = sorted(self.functions.values(), key=_in_file_order)
        for fn in every:
            if fn.name == MODULE_CODE or is_property(fn) or (fn.parent is not None and id(fn) not in escaped):
                continue
            bound = fn.is_method and not fn.is_static  # `obj.m` and `cls.m` bind the receiver; `Class.m` not
            for form in (True,) if fn.is_classmethod else (True, False) if bound else (False,):
                signature = _signature(fn.node.args, form)
                if id(fn) in escaped:
                    by_signature.setdefault(signature, []).append(fn)
                self._value_names.setdefault(fn.name, []).append((signature, fn))  # `module.f`, `obj.m`
        self._value_signatures = {key: tuple(group) for key, group in by_signature.items()}
        for position, signature in enumerate(self._value_signatures):
            self._value_order[signature] = position
            for name in (*signature.positional, *signature.keyword_only):
                self._value_keywords.setdefault(name, set()).add(signature)
            if signature.varkw:
                self._value_varkw.add(signature)
        # A lambda runs its calls when it is called, wherever it is then: what they may run, by its signature, as
        # groups shared with the calls of unknown type (never copied: a lambda may reach every function).
        by_lambda: dict[Signature, dict[int, tuple[FunctionInfo, ...]]] = {}
        for fn in every:
            if not any(site.deferred for site in fn.calls):  # a lambda that calls nothing runs nothing
                continue
            lambdas = [node for node in fn.nodes if isinstance(node, ast.Lambda)]
            if not lambdas:
                continue
            sites = self.sites_of(fn)
            for node in lambdas:
                signature = _signature(node.args, False)
                reached = by_lambda.setdefault(signature, {})
                for call in ast.walk(node.body):
                    site = sites.get(id(call))
                    if site is None:
                        continue
                    reached[id(site)] = site.targets
                    if site.calls_unknown:
                        attr = _called_attribute(site)
                        reached.update((id(group), group) for group in self._value_groups(
                            attr, _call_shape(site.node), lambdas=False))
                        if self._runs_anything(attr):  # it may call another lambda, which may call any
                            self._lambdas_reaching_all.add(signature)
        self._lambda_signatures = {key: tuple(groups.values()) for key, groups in by_lambda.items()}

    def _ordered(self, key: tuple, groups: tuple[tuple[FunctionInfo, ...], ...]) -> tuple[FunctionInfo, ...]:
        """The functions of one part of `_unseen_parts`, each once, in file order."""
        found = self._ordered_parts.get(key)
        if found is None:
            found = self._ordered_parts[key] = tuple(sorted(
                {id(fn): fn for fn in _functions_in(groups)}.values(), key=_in_file_order))
        return found

    def implicit_calls(self, fn: FunctionInfo) -> list[ImplicitCall]:
        """Where `fn` runs project code it does not name (`implicit.uses`: special methods of operators,
        subscripts, `with` and truth tests, properties, iterating), in the order of its nodes, each with what it
        may run, as parts like `unseen_targets`': the methods of those names on the value's type (and its
        bases and subclasses), or of any project class for a value of unknown type; for iterating, also a
        generator's body (`_iteration_parts`). Where that may be more than `MAX_UNSEEN_FUNCTIONS` functions,
        the parts are left out and the call's `overflow` holds."""
        found = self._implicit.get(id(fn))
        if found is None:
            found = self._implicit[id(fn)] = []
            sites = self.sites_of(fn)
            by_anchor: dict[int, tuple[Use, list]] = {}
            for node, use in self._uses(fn):
                parts = [*self._special_parts(use.operand, use.names, fn)] if use.names else []
                if use.iterates:
                    parts += self._iteration_parts(use.operand, fn, sites)
                if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and \
                        isinstance(node.target, (ast.Tuple, ast.List)):  # each element is iterated too
                    parts += [part for t in self.infer(use.operand, fn) if isinstance(t, Container)
                              for part in self._iterating_types(t.elems)]
                if parts:
                    by_anchor.setdefault(id(use.anchor), (use, []))[1].extend(parts)
            for use, parts in by_anchor.values():
                unique = tuple({id(part): part for part in parts}.values())
                key = tuple(id(part) for part in unique)
                size = self._implicit_sizes.get(key)
                if size is None:  # 0: runs nothing; 2: more than the limit; 1: in between
                    size = self._implicit_sizes[key] = 2 if _more_than(MAX_UNSEEN_FUNCTIONS, unique) else int(
                        any(_functions_in(unique)))
                if size:
                    found.append(ImplicitCall(use, () if size == 2 else unique, size == 2))
        return found

    def implicit_functions(self, parts: tuple) -> tuple[FunctionInfo, ...]:
        """The functions of an implicit call's parts (see `implicit_calls`), each once, in file order."""
        key = tuple(id(part) for part in parts)
        found = self._implicit_targets.get(key)
        if found is None:
            found = self._implicit_targets[key] = tuple(sorted(
                {id(fn): fn for fn in _functions_in(parts)}.values(), key=_in_file_order))
        return found

    def _special_parts(self, value: ast.expr, names: tuple[str, ...], fn: FunctionInfo) -> tuple:
        """The methods Python may call by these names on `value`: those of its project classes (and their
        bases and subclasses), or of every project class where its type is unknown in whole or in part."""
        methods = self._special_methods()
        names = tuple(name for name in names if name in methods)  # the others no project class defines
        if not names:
            return ()
        types = self.infer(value, fn)
        parts: list = [methods[name] for name in names] if not types or UNRESOLVED in types else []
        for t in types:
            if isinstance(t, Instance):
                group = self._family_specials(t.cls, names)
                if group:
                    parts.append(group)
        return tuple(parts)

    def _family_specials(self, cls: ClassInfo, names: tuple[str, ...]) -> tuple[FunctionInfo, ...]:
        """The methods of these names Python may call on an object typed `cls`: those of the class, its bases
        and its subclasses."""
        key = (id(cls), names)
        found = self._class_specials.get(key)
        if found is None:
            found = self._class_specials[key] = tuple(dict.fromkeys(
                method for owner in cls.family() for name in names
                if (method := owner.methods.get(name)) is not None and is_implicitly_called(method)))
        return found

    def _iteration_parts(self, value: ast.expr, fn: FunctionInfo, sites: dict[int, CallSite]) -> tuple:
        """What iterating `value` may run: for a call, the generator functions it may call and what iterating
        what the others return may run; otherwise by its types. Nothing for a library callable's result, as for
        a call of one (see `ITERATING_FUNCTIONS`), and for one that iterates what it is handed (iterated where
        it is called)."""
        if isinstance(value, _DISPLAYS):  # built where it stands: iterating it runs nothing
            return ()
        if isinstance(value, ast.Name):
            sources = self.local_names(fn).get(value.id)
            if sources and all(kind == "expr" for kind, _ in sources) and not _bound_elsewhere(fn, value.id):
                return self._iterating_local(fn, value.id, sources, sites)
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Call) and \
                self._library_result(value.value, sites):
            return ()  # `x.size()[1:]`: a part of a library callable's result, a library value
        site = sites.get(id(value)) if isinstance(value, ast.Call) else None
        if site is None:
            types = self.infer(value, fn)
            if isinstance(value, ast.Attribute) and (not types or UNRESOLVED in types):
                # `x.shape` on an object of unknown type: a library object's attribute, or what the project
                # stores in an attribute of that name or a property of that name returns.
                known = types - {UNRESOLVED}
                return (*(self._iterating_types(known) if known else ()), *self._attribute_iteration(value.attr))
            return self._iterating_types(types)
        if _library_name(site) in ITERATING_FUNCTIONS:
            return ()
        if self.unseen_overflow(site):
            return (self._iterating_unknown(),)
        parts: list = []
        if site.constructs:
            parts += self._iterating_types(frozenset(Instance(cls) for cls in site.constructs))
        for target in self.possible_targets(site):
            if target.is_generator:
                parts.append((target,))
            elif not (target.name == "__init__" and site.constructs):
                parts += self._iterating_types(self.return_types(target))
        return tuple(parts)

    def _library_result(self, call: ast.Call, sites: dict[int, CallSite]) -> bool:
        """Whether a call may run no project function: what it returns is a library callable's."""
        site = sites.get(id(call))
        return site is not None and not site.constructs and not self.unseen_overflow(site) and \
            not self.possible_targets(site)

    def _iterating_local(self, fn: FunctionInfo, name: str, sources: list, sites: dict[int, CallSite]) -> tuple:
        """What iterating a local name only assignments bind may run: what iterating any value assigned to it
        may (`params = self.tokenizer.parameters()` then `next(params)`: a library callable's result)."""
        key = (id(fn), name)
        found = self._local_iterations.get(key)
        if found is None:
            self._local_iterations[key] = (self._iterating_unknown(),)  # while it is decided: a cycle
            found = self._local_iterations[key] = tuple({id(part): part for _, source in sources
                                                         for part in self._iteration_parts(source, fn, sites)}.values())
        return found

    def _attribute_iteration(self, attr: str) -> tuple:
        """What iterating `x.attr` may run, `x` of unknown type, as far as the project can make it so: iterating
        a value the project stores in an attribute named `attr`, or one a property of that name or a
        `__getattr__` returns (a library object's attribute runs nothing of the project)."""
        found = self._attribute_iterations.get(attr)
        if found is None:
            self._attribute_iterations[attr] = (self._iterating_unknown(),)  # while it is decided: a cycle
            parts: list = []
            for value, fn, module in self._stored_values(attr):
                if fn is not None:
                    parts += self._iteration_parts(value, fn, self.sites_of(fn))
                elif not isinstance(value, _DISPLAYS):
                    parts += self._iterating_types(self.infer(value, None, module))
            for getter in (*self._special_methods().get(attr, ()), *self._special_methods().get("__getattr__", ()),
                           *self._special_methods().get("__getattribute__", ())):
                parts += self._iterating_types(self.return_types(getter))
            found = self._attribute_iterations[attr] = tuple({id(part): part for part in parts}.values())
        return found

    def _special_methods(self) -> dict[str, tuple[FunctionInfo, ...]]:
        """The project's methods Python calls where the code does not name them (`is_implicitly_called`: special
        methods, properties), by name, each in file order."""
        if self._implicit_by_name is None:
            by_name: dict[str, list[FunctionInfo]] = {}
            for fn in sorted(self.functions.values(), key=_in_file_order):
                if fn.cls is not None and is_implicitly_called(fn):
                    by_name.setdefault(fn.name, []).append(fn)
            self._implicit_by_name = {name: tuple(group) for name, group in by_name.items()}
        return self._implicit_by_name

    def sites_of(self, fn: FunctionInfo) -> dict[int, CallSite]:
        """The calls of `fn`, by the id of their node (computed once)."""
        found = self._call_sites.get(id(fn))
        if found is None:
            found = self._call_sites[id(fn)] = {id(site.node): site for site in fn.calls}
        return found

    def _iterating_types(self, types: frozenset) -> tuple:
        """What iterating a value of these types may run: the iteration methods of a project class (and its
        bases and subclasses); a generator expression's elements for a container (the index types a
        generator expression as one); anything iterating may run for a value of unknown type."""
        if not types or UNRESOLVED in types:
            return (self._iterating_unknown(),)
        parts: list = []
        for t in types:
            if isinstance(t, Instance):
                methods = self._family_specials(t.cls, ITERATION_METHODS)
                if methods:
                    parts.append(methods)
            elif isinstance(t, Container) and t.generator:
                parts.append(self._deferred_generator_code())
        return tuple(part for part in parts if part)

    def _iterating_unknown(self) -> tuple:
        """What iterating a value of unknown type may run: every generator function's body, every iteration
        method of a project class, and what the elements of every generator expression may call."""
        if self._iterating_anything is None:
            generators = tuple(sorted((fn for fn in self.functions.values() if fn.name != MODULE_CODE and
                                       fn.is_generator and self._generator_roams(fn)), key=_in_file_order))
            methods = self._special_methods()
            self._iterating_anything = (generators, *(methods.get(name, ()) for name in ITERATION_METHODS),
                                        self._deferred_generator_code())
        return self._iterating_anything

    def _generator_roams(self, fn: FunctionInfo) -> bool:
        """Whether a generator `fn` makes may be iterated somewhere other than where it is made: `fn` is handed
        out or called where the index cannot see, or one of its calls is not iterated right there (`for x in
        fn(...)`, `list(fn(...))`, `yield from fn(...)` are). One nothing in the project calls is made by code
        outside it, which hands the project no generator of the project's (docs/soundness.md)."""
        if self.escape_of(fn) is not None or id(fn) in self._unseen_callers:
            return True
        return any(id(site.node) not in self._iterated_where_made(site.caller) for site in self.callers_of(fn))

    def _iterated_where_made(self, fn: FunctionInfo) -> set[int]:
        """The ids of the values `fn` iterates right where they are made (`implicit.uses` that iterate)."""
        found = self._iterated_values.get(id(fn))
        if found is None:
            found = self._iterated_values[id(fn)] = {id(use.operand) for _, use in self._uses(fn) if use.iterates}
        return found

    def _uses(self, fn: FunctionInfo) -> list[tuple[ast.AST, Use]]:
        """Every `implicit.uses` of `fn`'s nodes, with its node, in the order of the nodes (walked once)."""
        found = self._implicit_uses.get(id(fn))
        if found is None:
            sites = self.sites_of(fn)

            def library(call: ast.Call) -> str | None:
                site = sites.get(id(call))
                return _library_name(site) if site is not None else None

            found = self._implicit_uses[id(fn)] = [
                (node, use) for node in fn.nodes for use in uses(node, library, ITERATING_FUNCTIONS)]
        return found

    def _deferred_generator_code(self) -> tuple:
        """What the calls in generator expressions' elements (past the first iterable, which is evaluated where
        the expression stands) may run, as groups: they run wherever the generator is iterated."""
        if self._generator_expressions is None:
            groups: list = []
            for fn in sorted(self.functions.values(), key=_in_file_order):
                if not any(site.deferred for site in fn.calls):
                    continue
                sites = self.sites_of(fn)
                for node in fn.nodes:
                    if isinstance(node, ast.GeneratorExp):
                        for call in ast.walk(node):
                            site = sites.get(id(call))
                            if site is not None and site.deferred:
                                groups.append(site.targets)
                                groups.extend(self.unseen_targets(site))
            self._generator_expressions = tuple(group for group in groups if group)
        return self._generator_expressions

    def class_handed_out(self, cls: ClassInfo) -> bool:
        """Whether code may hold the class object of `cls` or of a subclass (which runs its `__init__`) where the
        index cannot follow it, so that a call of a value of unknown type may construct it: the class is read
        other than called, as an attribute's owner (`Block.expansion`), a base, an annotation, or an argument of
        `super`, `isinstance` or `issubclass`; or the project reaches classes without naming them (`type(x)`,
        `x.__class__`, a reflective lookup that may hand out anything)."""
        if self._handed_out_names is None:
            self._handed_out_names = self._class_names_handed_out()
        names = self._handed_out_names
        return names is True or any(c.name in names for c in (cls, *cls.all_subclasses()))

    def _class_names_handed_out(self) -> set[str] | bool:
        """The class names read where a class object may leave the code that names it (`class_handed_out`);
        True when every class may be reached without its name."""
        if self._escapes is None:
            self._escapes = self._find_escapes()  # which finds the reflective lookups
        if self.unresolved_lookups:
            return True
        harmless: set[int] = set()  # reads that use a class without handing it on
        called: set[int] = set()  # `Block(...)`: harmless for a class named, not for `type(x)(...)`
        classes_of_objects: list[ast.AST] = [node for _, node in self.loads("__class__")]  # `x.__class__`
        for fn in self.functions.values():
            for site in fn.calls:
                func = site.node.func
                called.add(id(func))
                if isinstance(func, ast.Name) and func.id == "type" and len(site.node.args) == 1:
                    classes_of_objects.append(site.node)  # `type(x)`
                if isinstance(func, ast.Name) and func.id in ("super", "isinstance", "issubclass"):
                    harmless.update(id(part) for arg in site.node.args for part in
                                    (arg.elts if isinstance(arg, ast.Tuple) else (arg,)))
            for node in fn.nodes:
                if isinstance(node, ast.Attribute):
                    harmless.add(id(node.value))
                elif isinstance(node, ast.AnnAssign):
                    harmless.add(id(node.annotation))
                elif isinstance(node, ast.Compare):  # `type(x) is int`
                    harmless.update(id(part) for part in (node.left, *node.comparators))
                elif isinstance(node, ast.ExceptHandler) and node.type is not None:
                    harmless.update(id(part) for part in (node.type.elts if isinstance(node.type, ast.Tuple)
                                                          else (node.type,)))
        for cls in self.classes.values():
            harmless.update(id(base) for base in cls.node.bases)
        if any(id(node) not in harmless for node in classes_of_objects):  # not only `type(x).__name__`
            return True
        harmless |= called
        names = {cls.name for cls in self.classes.values()}
        return {name for name in names for _, node in self.loads(name) if id(node) not in harmless}

    def callers_of(self, fn: FunctionInfo) -> list[CallSite]:
        """Every call that may reach `fn`: resolved calls, and `x.m()` on values of unknown type for a method `m`."""
        return self.callers.get(id(fn), [])

    def escape_of(self, fn: FunctionInfo) -> tuple[FunctionInfo, ast.AST] | None:
        """Where `fn` is first referenced as a value (`obj.forward = obj.other`, a callback, `setattr`, an alias
        passed on, `getattr`, `globals()`, a decorator that is handed it), if anywhere.

        Such a function may be called from places the index cannot follow, with any grad state.
        """
        if self._escapes is None:
            self._escapes = self._find_escapes()
        return self._escapes.get(id(fn))

    def _find_escapes(self) -> dict[int, tuple[FunctionInfo, ast.AST]]:
        """Every function handed out where its calls cannot be followed, with where it first is: reads that
        are not calls, reflective lookups, decorators."""
        escapes: dict[int, tuple[FunctionInfo, ast.AST]] = {}
        functions = list(self.functions.values())
        # What `<object>.name` may be when the object's type is unknown: any function or method named so.
        by_name: dict[str, list[FunctionInfo]] = {}
        for candidate in functions:
            if candidate.parent is None and candidate.name != MODULE_CODE and not is_property(candidate):
                by_name.setdefault(candidate.name, []).append(candidate)
        # Classes whose `__getattr__` answers for attributes they do not define (a wrapper forwarding to what it
        # wraps, an attribute dict): such an attribute of theirs may be anything of that name.
        forwarding = {id(f.cls) for f in functions if f.cls is not None and f.name in _DYNAMIC_ATTRIBUTE_HOOKS}
        named = {f.name for f in functions} | self._import_aliases()
        tracked, aliases = self._tracked_references(named)
        for name in sorted(named | aliases):
            for where, node in self.loads(name):
                if id(node) in tracked:
                    continue
                if isinstance(node, ast.Attribute):
                    owners = self.infer(node.value, where)
                    types = self._attribute_types(node, where, where.module, owners)
                else:
                    owners, types = None, self.infer(node, where)
                for t in types:
                    if isinstance(t, FuncRef) and not is_property(t.fn):
                        escapes.setdefault(id(t.fn), (where, node))
                if owners is not None and (not owners or not types and any(
                        isinstance(o, Instance) and any(id(c) in forwarding for c in o.cls.mro()) for o in owners)):
                    for candidate in by_name.get(name, ()):
                        escapes.setdefault(id(candidate), (where, node))
        # A reflective lookup on a line marked `# chatterbox-codemod: skip` is the user's word that it hands
        # out no project function (docs/soundness.md).
        every = [f for f in functions if f.name != MODULE_CODE and not is_property(f)]  # `eval` sees nested ones
        lookups = [(where, site.node, self._reflected(site, where, by_name))
                   for where, site in self._reflective_calls()]
        lookups += [(where, node, self._members(self.infer(node.value, where), None, by_name))
                    for where, node in self.loads("__dict__")
                    if isinstance(node, ast.Attribute) and node.lineno not in where.module.skip_lines]
        for where, node, found in lookups:
            if found is None:
                self.unresolved_lookups.append((where, node))
                if len(self.unresolved_lookups) > 1:
                    continue  # every function was handed out by the first one already
            for candidate in every if found is None else found:
                escapes.setdefault(id(candidate), (where, node))
        for candidate in functions:
            for decorator, name in zip(candidate.node.decorator_list, candidate.decorators, strict=True):
                if not self._is_transparent_decorator(candidate, decorator, name):
                    escapes.setdefault(id(candidate), (candidate, decorator))
        return escapes

    def _reflective_calls(self) -> Iterator[tuple[FunctionInfo, CallSite]]:
        """The calls `_reflected` reads, with the function each is in, but those on a line marked
        `# chatterbox-codemod: skip`."""
        for where in self.functions.values():
            for site in where.calls:
                if _last_name(site.node.func) in _REFLECTIVE_CALLS and site.line not in where.module.skip_lines:
                    yield where, site

    def _tracked_references(self, named: set[str]) -> tuple[set[int], set[str]]:
        """The loads the index follows instead of counting them as references, and the names that may then
        hold a function.

        Calls are followed; so are `name = f` and `self.attr = f` (when `attr` is no method of the class),
        whose later calls the index resolves to `f`. A name or attribute so assigned a function is itself a
        reference wherever it is read other than called, so its reads are checked too. Such an assignment
        reads a function under one of the `named` (functions, import aliases) or under a name found so."""
        found = {id(site.node.func) for fn in self.functions.values() for site in fn.calls}
        assigned: list[tuple[str, ast.expr, FunctionInfo]] = []  # (target, value) that pass a reference on
        for fn in self.functions.values():
            for node in fn.nodes:
                if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                    continue
                target = node.targets[0]
                local = isinstance(target, ast.Name) and fn.name != MODULE_CODE
                attribute = fn.cls is not None and _is_self_attr(target, fn.receiver or "") and \
                    fn.cls.lookup(target.attr) is None
                if local or attribute:
                    found.add(id(node.value))
                    if isinstance(node.value, (ast.Name, ast.Attribute)):
                        assigned.append((target.id if isinstance(target, ast.Name) else target.attr, node.value, fn))
        names: set[str] = set()
        known = set(named)
        checked: set[int] = set()
        while True:  # `cb = f`, then `cb2 = cb`: until no new name holds a function
            added = False
            for position, (target, value, fn) in enumerate(assigned):
                if position in checked or _last_name(value) not in known:
                    continue
                checked.add(position)
                if target not in names and any(isinstance(t, FuncRef) for t in self.infer(value, fn)):
                    names.add(target)
                    known.add(target)
                    added = True
            if not added:
                return found, names

    def _import_aliases(self) -> set[str]:
        """Names imports bind to a project function under another name (`from .a import f as g`)."""
        return {local for module in self.modules.values() for local, qualified in module.imports.items()
                if local != qualified.rpartition(".")[2] and self.canonical(qualified) in self.functions}

    def _reflected(self, site: CallSite, where: FunctionInfo,
                   by_name: dict[str, list[FunctionInfo]]) -> list[FunctionInfo] | None:
        """The functions a reflective call may hand out: `getattr(x, name)`, `vars(x)`, `globals()`, `locals()`,
        `operator.attrgetter`/`methodcaller`, `inspect.getmembers`, `x.__getattribute__(name)`; None when it
        may be any (a name computed at run time on an object of unknown type, `_hands_out_anything`)."""
        if _hands_out_anything(site, where):
            return None
        call = site.node
        func = call.func
        name = _last_name(func)
        args = call.args
        if name in ("getattr", *_DYNAMIC_ATTRIBUTE_HOOKS):
            if isinstance(func, ast.Attribute) and not (isinstance(func.value, ast.Name) and
                                                        func.value.id in ("object", "type")):
                args = [func.value, *args]  # `x.__getattribute__(name)`
            if not args:
                return []
            attribute = args[1] if len(args) > 1 else None
            if where.name in _DYNAMIC_ATTRIBUTE_HOOKS and where.cls is not None and isinstance(attribute, ast.Name) \
                    and attribute.id == _second_parameter(where):
                return []  # a `__getattr__` forwarding the name its caller spells: that read is checked by name
            constant = attribute.value if isinstance(attribute, ast.Constant) and isinstance(attribute.value, str) \
                else None
            return self._members(self.infer(args[0], where), constant, by_name)
        if name in ("vars", "getmembers") and args:
            return self._members(self.infer(args[0], where), None, by_name)
        if name in ("globals", "locals", "vars") and not args:
            module = where.module
            found = [f for f in module.functions if f.parent is None and f.cls is None and f.name != MODULE_CODE]
            found += where.local_defs.values()
            found += [t.fn for node in where.nodes if isinstance(node, ast.Assign)
                      for t in self.infer(node.value, where) if isinstance(t, FuncRef)]
            return found
        if name in ("attrgetter", "methodcaller"):  # of constant names (`_hands_out_anything`)
            return [fn for arg in (args[:1] if name == "methodcaller" else args)
                    for fn in by_name.get(arg.value.rpartition(".")[2], [])]
        return []

    def _members(self, owners: frozenset, name: str | None,
                 by_name: dict[str, list[FunctionInfo]]) -> list[FunctionInfo] | None:
        """The functions `<owner>.name` may be (every attribute of the owner when `name` is None); None when
        that may be any function of the project."""
        if not owners:
            return None if name is None else list(by_name.get(name, ()))
        found: list[FunctionInfo] = []
        if UNRESOLVED in owners:  # the part of unknown type may be any object
            if name is None:
                return None
            found += by_name.get(name, ())
        for owner in owners:
            if isinstance(owner, (Instance, ClassRef, Super)):
                for cls in owner.cls.family():
                    found += [m for m in cls.methods.values() if (name is None or m.name == name)
                              and not is_property(m)]
            elif isinstance(owner, ModuleRef):
                found += [d for d in owner.module.defs.values() if isinstance(d, FunctionInfo)
                          and (name is None or d.name == name)]
        return found

    def _is_transparent_decorator(self, fn: FunctionInfo, decorator: ast.expr, name: str | None) -> bool:
        """Whether a decorator only wraps `fn` in something that calls it where it is called (or marks it):
        any other decorator is handed the function and may call it from anywhere."""
        if name in TRANSPARENT_DECORATORS or self.grad_mode_of(fn.module, decorator, fn) is not None:
            return True
        target = _decorator_target(decorator)
        return isinstance(target, ast.Attribute) and target.attr in ("setter", "getter", "deleter")

    def holds_only_none(self, fn: FunctionInfo, name: str) -> bool:
        """Whether parameter `name` of `fn` is None wherever `fn` runs: it defaults to None, nothing in the body
        (or in a function nested in it, through `nonlocal`) assigns it, `fn` is not handed out, and no call
        that may run it passes it (or passes None only), nor unpacks `*args`/`**kwargs` into it: neither the
        calls the index links nor, for a module's `forward` or a `__call__`, the calls of values of unknown
        type whose shape binds to it (`m(x)` leaves `accelerator` at its default). A library callable that
        calls what it is handed (`map`) may pass anything. (`accelerator.unwrap_model(self)` then never runs.)"""
        default = dict((arg.arg, value) for arg, value in _params_with_defaults(fn.node.args)).get(name)
        if not (isinstance(default, ast.Constant) and default.value is None):
            return False
        if any(kind != "param" and not (kind == "expr" and node is default)
               for kind, node in self.local_names(fn).get(name, ())):
            return False
        if any(isinstance(node, ast.Nonlocal) and name in node.names for node in ast.walk(fn.node)):
            return False
        callers = self.callers_of(fn)
        if not callers or self.escape_of(fn) is not None or is_implicitly_called(fn):
            return False
        if self.opaque_caller(fn) is not None:  # (which also finds the calls below)
            if any(self._handing_calls.get(key) for key in (None, *(id(c) for c in fn.cls.family()))):
                return False
            positional = self._signature_of(fn).positional
            for site in self._opaque_calls:
                count, starred, keywords = shape = _call_shape(site.node)
                if self._accepts(fn, shape) and (starred or None in keywords or name in keywords or (
                        name in positional and count > positional.index(name))):
                    return False
        for site in callers:
            if _unpacked(site.node):
                return False
            argument = argument_for(fn, site, name)
            if argument is not None and not (isinstance(argument, ast.Constant) and argument.value is None):
                return False
        return True

    def is_escaped(self, fn: FunctionInfo) -> bool:
        return self.escape_of(fn) is not None

    def loads(self, name: str) -> list[tuple[FunctionInfo, ast.AST]]:
        """Every read of `<anything>.name` or of the bare `name`, with the function it is in."""
        return self.load_table.get(name, [])

    def attribute_readers(self, attr: str) -> list[tuple[FunctionInfo, frozenset[int] | None]]:
        """Each read of `<object>.attr`: the function it is in and the ids of the classes `<object>` may be
        (None: its type is not resolved, at least in part, so it may be an object of any class)."""
        found = self._attribute_readers.get(attr)
        if found is None:
            found = []
            for fn, node in self.loads(attr):
                if isinstance(node, ast.Attribute):
                    types = self.infer(node.value, fn)
                    found.append((fn, None if not types or UNRESOLVED in types else
                                  frozenset(id(t.cls) for t in types if isinstance(t, Instance))))
            self._attribute_readers[attr] = found
        return found

    def functions_of(self, module: ModuleInfo) -> list[FunctionInfo]:
        return module.functions


# How long a chain of inferences under way (each value reading the next, or deciding whether the next may be
# a project object) may grow: past the longest in the TTS projects this tool was run on, and short enough for
# Python's default recursion limit (a step takes about seven frames; torch's tree chains 150 locals).
MAX_INFERENCE_DEPTH = 100
# How many types one value may have before it counts as unknown: a parameter of a method that every `x.to(...)`
# of unknown type may reach takes the types of all their arguments (73,703 in torch's tree, where the most a
# value of chatterbox's has is 9); sets that large cost more to merge than they tell.
MAX_TYPES = 64
# A call of a value of unknown type that may run more project functions than this (where the project hands out
# every function, `eval` say) is not followed into them: the analyses read it as a call they cannot resolve.
MAX_UNSEEN_FUNCTIONS = 256
MAX_ROUNDS = 8  # how often a value read back through itself is inferred again before it is widened (`_fixpoint`)
_NOT_REACHED = 1 << 62  # `_reached` when no value under way was read
BUILTIN_NAMES = frozenset(dir(__import__("builtins")))
SCALAR_TYPES = frozenset({"int", "float", "bool", "str", "bytes", "complex"})  # annotations no project object has
# The node types `ProjectIndex.local_names` reads bindings from (`ast.parse` makes no subclasses of them).
_BINDING_NODES = frozenset({ast.Call, ast.Assign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.comprehension,
                            ast.withitem, ast.NamedExpr})
# ... and those that may store a value in an attribute (`_attribute_table`, `_stores`).
_STORING_NODES = frozenset({ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Call})


def argument_for(fn: FunctionInfo, site: CallSite, name: str) -> ast.expr | None:
    """The argument expression a call passes as parameter `name` (a tuple of them for `*args`/`**kwargs`).

    The tuple is made once and kept with the call: the index memoizes decisions by a node's id, and a tuple
    made anew for each question would be freed, and its id reused by the next one."""
    call = site.node
    positional, after_first, variadic_names = fn.parameter_names
    variadic = name in variadic_names
    bound = fn.receiver is not None and (
        isinstance(call.func, ast.Attribute) or bool(site.module_types) or bool(site.constructs)
        or fn.name in ("forward", "__call__"))
    params = after_first if bound else positional
    if variadic:
        key = (id(fn), name, bound)
        if key not in site.packed:
            extra = [*call.args[len(params):], *(kw.value for kw in call.keywords if kw.arg not in params)]
            site.packed[key] = ast.Tuple(elts=extra, ctx=ast.Load()) if extra else None
        return site.packed[key]
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    if name in params and params.index(name) < len(call.args):
        return call.args[params.index(name)]
    return None


def _scalar_annotation(annotation: ast.expr | None) -> bool:
    return isinstance(annotation, ast.Name) and annotation.id in SCALAR_TYPES


def _unpacked(call: ast.Call) -> list[ast.expr]:
    """What a call unpacks into its arguments: `x` in `*x` and `**x`."""
    return [*(a.value for a in call.args if isinstance(a, ast.Starred)),
            *(kw.value for kw in call.keywords if kw.arg is None)]


CallShape = tuple[int, bool, tuple[str | None, ...]]


def _call_shape(call: ast.Call) -> CallShape:
    """What `_binds` reads of a call: its positional count, whether it unpacks `*args`, its keyword names (None
    for `**kwargs`)."""
    return len(call.args), any(isinstance(a, ast.Starred) for a in call.args), tuple(kw.arg for kw in call.keywords)


class ImplicitCall(NamedTuple):
    """A place a function runs project code it does not name (`ProjectIndex.implicit_calls`)."""

    use: Use
    parts: tuple  # what it may run, as parts of groups of functions (empty when `overflow`)
    overflow: bool  # it may run more than `MAX_UNSEEN_FUNCTIONS` functions: not followed, named as a hazard


class Signature(NamedTuple):
    """What `_binds` reads of a function's parameters (a bound receiver dropped); many functions share one."""

    positional: tuple[str, ...]
    defaults: int  # how many of the last positional parameters have defaults
    varargs: bool
    varkw: bool
    keyword_only: frozenset[str]
    required_keyword_only: tuple[str, ...]


def _signature(args: ast.arguments, bound: bool) -> Signature:
    """The signature of a function or lambda called with its first parameter `bound` (a method's receiver) or
    not."""
    return Signature(
        positional=tuple(a.arg for a in [*args.posonlyargs, *args.args])[1 if bound else 0:],
        defaults=len(args.defaults), varargs=args.vararg is not None, varkw=args.kwarg is not None,
        keyword_only=frozenset(a.arg for a in args.kwonlyargs),
        required_keyword_only=tuple(a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                                    if d is None))


def _binds(signature: Signature, shape: CallShape) -> bool:
    """Whether `obj.method(...)` with a call of this shape can bind to a method of this signature."""
    count, starred, keywords = shape
    if starred or None in keywords:
        return True
    positional = signature.positional
    if count > len(positional) and not signature.varargs:
        return False
    if not signature.varkw and any(kw not in positional[count:] and kw not in signature.keyword_only
                                   for kw in keywords):
        return False
    required = positional[count:len(positional) - signature.defaults]
    return all(name in keywords for name in (*required, *signature.required_keyword_only))


def _params_with_defaults(args: ast.arguments) -> list[tuple[ast.arg, ast.expr | None]]:
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=True))
    pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    pairs += [(extra, None) for extra in (args.vararg, args.kwarg) if extra is not None]
    return pairs


def _dotted(expr: ast.expr) -> str | None:
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if isinstance(expr, ast.Name):
        parts.append(expr.id)
        return ".".join(reversed(parts))
    return None


_DYNAMIC_ATTRIBUTE_HOOKS = ("__getattr__", "__getattribute__")
# The calls `ProjectIndex._reflected` reads, by the name they are called by.
_REFLECTIVE_CALLS = frozenset({"getattr", *_DYNAMIC_ATTRIBUTE_HOOKS, "vars", "getmembers", "globals", "locals",
                               "attrgetter", "methodcaller", "eval", "exec"})


def _functions_in(groups: tuple) -> Iterator[FunctionInfo]:
    """The functions in groups nested in tuples (`ProjectIndex.unseen_targets`), each group read once."""
    seen: set[int] = set()
    stack = [groups]
    while stack:
        node = stack.pop()
        for item in node:
            if isinstance(item, tuple):
                if id(item) not in seen:
                    seen.add(id(item))
                    stack.append(item)
            else:
                yield item


def _called_attribute(site: CallSite) -> str | None:
    """`m` of a call `x.m(...)`; None for a call of anything else."""
    func = site.node.func
    return func.attr if isinstance(func, ast.Attribute) else None


_DISPLAYS = (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp, ast.Constant,
             ast.JoinedStr)


def _library_name(site: CallSite) -> str | None:
    """The library callable a call runs, a builtin's bare name included."""
    if site.external is not None:
        return site.external
    func = site.node.func
    if isinstance(func, ast.Name) and func.id in BUILTIN_NAMES and not site.targets:
        return func.id
    return None


def _more_than(limit: int, groups: tuple) -> bool:
    """Whether the groups hold more than `limit` functions (each counted once), counting no further."""
    seen: set[int] = set()
    for fn in _functions_in(groups):
        seen.add(id(fn))
        if len(seen) > limit:
            return True
    return False


def _in_file_order(fn: FunctionInfo) -> tuple[str, int, int]:
    """Where `fn` is defined: its path, line and column (a sort key independent of the order files were read)."""
    return fn.module.path.as_posix(), fn.node.lineno, fn.node.col_offset


def _hands_out_anything(site: CallSite, where: FunctionInfo) -> bool:
    """Whether a reflective call may hand out any function of the project whatever the types: `eval`, `exec`,
    `globals()` in a module that imports `*` (the names it puts there are another module's), `attrgetter` or
    `methodcaller` of a name computed at run time."""
    call = site.node
    name = _last_name(call.func)
    if name in ("eval", "exec"):
        return isinstance(call.func, ast.Name)
    if name in ("globals", "locals", "vars") and not call.args:
        return any(isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
                   for node in ast.walk(where.module.tree))
    if name in ("attrgetter", "methodcaller"):
        return not all(isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                       for arg in (call.args[:1] if name == "methodcaller" else call.args))
    return False


def _last_name(expr: ast.expr) -> str | None:
    """`name` of `name` or `obj.name`."""
    return expr.id if isinstance(expr, ast.Name) else expr.attr if isinstance(expr, ast.Attribute) else None


def _second_parameter(fn: FunctionInfo) -> str | None:
    after_first = fn.parameter_names[1]
    return after_first[0] if after_first else None


def _decorator_target(node: ast.expr) -> ast.expr:
    return node.func if isinstance(node, ast.Call) else node


def literal_arg(call: ast.Call | None, position: int, keyword: str):
    if call is None:
        return None
    value = None
    if len(call.args) > position:
        value = call.args[position]
    for kw in call.keywords:
        if kw.arg == keyword:
            value = kw.value
    if value is None:
        return None
    if isinstance(value, ast.Constant) and isinstance(value.value, bool):
        return value.value
    return None


def _bound_elsewhere(fn: FunctionInfo, name: str) -> bool:
    """Whether code outside `fn`'s own body may bind its local `name`: it declares it `global`, or a function
    nested in it declares it `nonlocal`."""
    if any(isinstance(node, ast.Global) and name in node.names for node in fn.nodes):
        return True
    nested = [inner for inner in fn.module.functions if inner.parent is fn]
    while nested:
        inner = nested.pop()
        if any(isinstance(node, ast.Nonlocal) and name in node.names for node in inner.nodes):
            return True
        nested += [deeper for deeper in fn.module.functions if deeper.parent is inner]
    return False


def _is_local_name(fn: FunctionInfo, name: str) -> bool:
    scope: FunctionInfo | None = fn
    while scope is not None:
        if any(arg.arg == name for arg in scope.params()):
            return True
        scope = scope.parent
    return False


def enclosing_class(fn: FunctionInfo) -> ClassInfo | None:
    while fn.parent is not None:
        fn = fn.parent
    return fn.cls


class _Parts:
    """The parts of one value being typed (the values assigned to a name or an attribute, returned, or
    alternated): the types found, the parts of unknown type, and the parts that read a value whose inference
    was under way."""

    __slots__ = ("cyclic", "found", "unknown")

    def __init__(self) -> None:
        self.found: set = set()
        self.unknown: list[tuple[ast.expr, FunctionInfo | None, ModuleInfo | None]] = []
        self.cyclic: list[tuple[ast.expr, FunctionInfo | None, ModuleInfo | None]] = []


def _bind(target: ast.expr, value: ast.expr, out: dict, element: bool = False) -> None:
    if isinstance(target, ast.Name):
        out.setdefault(target.id, []).append(("elem" if element else "expr", value))
    elif isinstance(target, (ast.Tuple, ast.List)) and not element:
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
            for sub, val in zip(target.elts, value.elts, strict=True):
                _bind(sub, val, out)
        else:
            for sub in target.elts:
                if isinstance(sub, ast.Name):
                    out.setdefault(sub.id, []).append(("elem", value))
    elif isinstance(target, (ast.Tuple, ast.List)):  # `for a, b in pairs`: any element of an element
        for sub in target.elts:
            if isinstance(sub, ast.Name):
                out.setdefault(sub.id, []).append(("elem of elem", value))


def _attribute_assignments(cls: ClassInfo, attr: str) -> list[tuple[FunctionInfo | None, ast.expr, str]]:
    return _attribute_table(cls).get(attr, [])


def _attribute_table(cls: ClassInfo) -> dict[str, list[tuple[FunctionInfo | None, ast.expr, str]]]:
    """Every value assigned to `self.<attr>` in a class (fields, assignments, `+=`, `.append`), by attribute."""
    if cls._attributes is not None:
        return cls._attributes
    table: dict[str, list] = {}
    for stmt in cls.node.body:  # class-level fields: `x: T` / `x = ...`
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            table.setdefault(stmt.target.id, []).append((None, stmt.annotation, "ann"))
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    table.setdefault(target.id, []).append((None, stmt.value, "expr"))
    for method in cls.methods.values():
        receiver = method.receiver
        if receiver is None:
            continue
        for node in method.nodes:
            if type(node) not in _STORING_NODES:
                continue
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                if node.value is None:
                    continue
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                    if _is_self_attr(target, receiver):
                        table.setdefault(target.attr, []).append((method, node.value, "expr"))
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for sub, val in zip(target.elts, node.value.elts, strict=False):
                            if _is_self_attr(sub, receiver):
                                table.setdefault(sub.attr, []).append((method, val, "expr"))
            elif isinstance(node, ast.AugAssign) and _is_self_attr(node.target, receiver):
                table.setdefault(node.target.attr, []).append((method, node.value, "expr"))  # `+= [Block()]`
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args and (
                    node.func.attr in ("append", "extend", "insert") and _is_self_attr(node.func.value, receiver)):
                how = "expr" if node.func.attr == "extend" else "append"
                table.setdefault(node.func.value.attr, []).append((method, node.args[-1], how))
    cls._attributes = table
    return table


def _is_self_attr(node: ast.expr, receiver: str) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == receiver


def _assigned_attrs(cls: ClassInfo) -> list[str]:
    return [attr for attr, sources in _attribute_table(cls).items() if any(m is not None for m, _, _ in sources)]


def _merge_containers(types: Iterable) -> set:
    """Fold several Container types into one, so element sets stay comparable."""
    plain = set()
    elems: set = set()
    module = None
    generator = False
    containers = 0
    for t in types:
        if isinstance(t, Container):
            containers += 1
            elems |= t.elems
            module = module or t.module
            generator = generator or t.generator
        else:
            plain.add(t)
    if containers:
        plain.add(Container(frozenset(elems), module=module, generator=generator))
    return plain


def build_index(root: Path, modules: Iterable[tuple[Path, str, ast.Module]],
                configs: Iterable[tuple[Path, list[Construction]]] = (),
                walks: BodyWalks | None = None) -> ProjectIndex:
    """The index of a project; `walks`, shared by indexes over the same trees, walks each body once."""
    index = ProjectIndex(root, walks)
    for path, source, tree in modules:
        index.add_module(path, source, tree)
    index.configs = list(configs)
    index.finish()
    return index
