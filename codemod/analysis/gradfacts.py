"""Which values may be tensors that require grad.

An inference tensor raises `Inference tensors cannot be saved for backward`
only when it meets, in an operation that keeps its inputs for backward, a
value that requires grad. Parameters are not the only such values: every
activation computed from them with autograd on is one too, and so is every
input a caller passes that is one. This module answers "may `expr` require
grad here?" for any expression of the project, as a may-fact: whatever it
cannot resolve may.

- Constants, comparisons, fresh factory outputs (`torch.zeros`, `arange`, ...),
  `.detach()`, `.data`, and torch computations whose inputs cannot, cannot.
- Project calls and module calls may (they can return parameters or
  activations).
- A parameter may when an argument passed to it at some call site in the
  project may (types from call sites), or when the function is referenced as
  a value (its callers are unknown). A function with no caller in the project
  is entered from outside: its arguments are taken as inputs that do not
  require grad. That is the one boundary assumption, documented with the
  transforms; the tensors such a function hands back are noted in reasons.
"""

from __future__ import annotations

import ast
import weakref
from collections.abc import Callable

from .index import ProjectIndex, argument_for
from .project import MODULE_CODE, UNRESOLVED, CallSite, Container, FunctionInfo, ModuleInfo
from .torchapi import (
    CONTAINER_STORE_METHODS,
    GRAD_FREE_BUILTINS,
    GRAD_FREE_FACTORIES,
    GRAD_FREE_METHODS,
    NON_AUTOGRAD_PREFIXES,
    NON_TENSOR_ATTRS,
    NON_TENSOR_METHODS,
    TORCH_PREFIXES,
    is_in_place,
)

MAX_DEPTH = 16
# How a walker overrides what the facts know of a local name (None: ask the facts).
NameLookup = Callable[[str], bool | None]


class GradFacts:
    """May-require-grad facts over one project index (memoized per function and name).

    They depend on the index alone, so one instance serves every analysis of a run: `GradFacts.of(index)`.
    """

    _by_index: weakref.WeakKeyDictionary[ProjectIndex, GradFacts] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, index: ProjectIndex) -> GradFacts:
        if index not in cls._by_index:
            cls._by_index[index] = cls(index)
        return cls._by_index[index]

    def __init__(self, index: ProjectIndex):
        self.index = index
        self._params: dict[tuple[int, str], bool] = {}
        self._locals: dict[tuple[int, str], bool] = {}
        self._returns: dict[int, bool] = {}
        self._globals: dict[tuple[int, str], bool] = {}
        self._store_table: dict[int, dict[str, list[ast.expr]]] = {}

    def may_grad(self, expr: ast.expr | None, fn: FunctionInfo, lookup: NameLookup | None = None,
                 depth: int = 0) -> bool:
        """Whether `expr`, evaluated in `fn`, may be a tensor that requires grad."""
        if expr is None:
            return False
        if depth > MAX_DEPTH:
            return True
        again = depth + 1

        def recurse(sub: ast.expr | None) -> bool:
            return self.may_grad(sub, fn, lookup, again)

        if isinstance(expr, (ast.Constant, ast.JoinedStr, ast.Compare, ast.Lambda)):
            return False
        if isinstance(expr, ast.Name):
            found = lookup(expr.id) if lookup is not None else None
            return found if found is not None else self.name_may_grad(fn, expr.id)
        if isinstance(expr, ast.Attribute):
            if expr.attr in NON_TENSOR_ATTRS or expr.attr == "data":
                return False
            if expr.attr in ("grad", "T", "mT", "H", "mH", "real", "imag"):
                return recurse(expr.value)
            return True
        if isinstance(expr, (ast.Subscript, ast.Starred, ast.NamedExpr)):
            return recurse(expr.value)
        if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):
            return any(recurse(e) for e in expr.elts)
        if isinstance(expr, ast.Dict):
            return any(recurse(v) for v in expr.values)
        if isinstance(expr, ast.BinOp):
            return recurse(expr.left) or recurse(expr.right)
        if isinstance(expr, ast.UnaryOp):
            return not isinstance(expr.op, ast.Not) and recurse(expr.operand)
        if isinstance(expr, ast.BoolOp):
            return any(recurse(v) for v in expr.values)
        if isinstance(expr, ast.IfExp):
            return recurse(expr.body) or recurse(expr.orelse)
        if isinstance(expr, ast.Call):
            return self._call_may_grad(expr, fn, recurse)
        return True

    def _call_may_grad(self, call: ast.Call, fn: FunctionInfo, recurse: Callable[[ast.expr], bool]) -> bool:
        for kw in call.keywords:
            if kw.arg == "requires_grad" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                return True
        site = self.site_of(fn, call)
        func = call.func
        operands = [*call.args, *(kw.value for kw in call.keywords)]
        if site is None:
            return True
        if site.module_types:  # a module call records grad through its parameters, or through its inputs
            return any(self.index.has_parameters(t) for t in site.module_types) or any(recurse(o) for o in operands) \
                or any(self.returns_grad(callee) for callee in site.callees)
        if site.constructs or site.callees:
            return any(self.returns_grad(callee) for callee in site.callees if callee.name != "__init__") or \
                site.unresolved or bool(site.maybe_callees)
        name = site.external
        if name is not None:
            if name in GRAD_FREE_FACTORIES or name.startswith(NON_AUTOGRAD_PREFIXES):
                return False
            if name.startswith(TORCH_PREFIXES) and "Parameter" not in name:
                return any(recurse(o) for o in operands)
            return True
        if isinstance(func, ast.Name):
            return func.id not in GRAD_FREE_BUILTINS
        if isinstance(func, ast.Attribute) and all(isinstance(t, Container) or t is UNRESOLVED
                                                    for t in self.index.infer(func.value, fn)):
            # A method of a value that may be a tensor: its result requires grad only if an input does. An
            # object of a known class without that method is calling an attribute of unknown type instead; so
            # is one that may be a project object, when a project method has that name or the project stores a
            # value (a module with parameters) in an attribute of that name.
            if any(self.returns_grad(callee) for callee in site.maybe_callees) or \
                    self.index.stores_attribute(func.attr):
                return True
            if func.attr in GRAD_FREE_METHODS or func.attr in NON_TENSOR_METHODS:
                return False
            if func.attr == "requires_grad_":
                return True
            return recurse(func.value) or any(recurse(o) for o in operands)
        return True

    def site_of(self, fn: FunctionInfo, call: ast.Call) -> CallSite | None:
        return self.index.sites_of(fn).get(id(call))

    def returns_grad(self, fn: FunctionInfo) -> bool:
        """Whether `fn` may return a tensor that requires grad (a parameter, an activation, an input)."""
        key = id(fn)
        if key not in self._returns:
            self._returns[key] = False  # the least fixed point: returning its own result adds nothing
            if fn.is_async or fn.is_generator:
                found = True
            else:
                found = any(isinstance(n, ast.Return) and n.value is not None and self.may_grad(n.value, fn)
                            for n in fn.nodes)
            self._returns[key] = found
        return self._returns[key]

    # -- names -----------------------------------------------------------------

    def name_may_grad(self, fn: FunctionInfo, name: str) -> bool:
        """A name as `fn` reads it: a local (every binding), a parameter (every call site), or a global."""
        sources = self.index.local_names(fn).get(name)
        if sources is not None:
            key = (id(fn), name)
            if key not in self._locals:
                self._locals[key] = False  # the least fixed point: a binding from itself adds nothing
                self._locals[key] = any(self._source_may_grad(fn, name, kind, node) for kind, node in sources) or \
                    any(self.may_grad(value, fn) for value in self._stores(fn).get(name, ()))
            return self._locals[key]
        scope = fn.parent
        while scope is not None:  # a closure's free variable
            if name in self.index.local_names(scope):
                return self.name_may_grad(scope, name)
            scope = scope.parent
        if name in fn.module.assigns:
            return self.global_may_grad(fn.module, name)
        return False  # imports, classes, functions, builtins

    def global_may_grad(self, module: ModuleInfo, name: str) -> bool:
        """A module-level name: its assignments, and what functions of the module store into it
        (`name[k] = v`, `name.append(v)`, `global name; name = v`)."""
        key = (id(module), name)
        if key not in self._globals:
            self._globals[key] = False
            module_code = next((f for f in module.functions if f.name == MODULE_CODE), None)
            found = False
            for value in module.assigns.get(name, ()):
                found = found or (self.may_grad(value, module_code) if module_code is not None else
                                  not isinstance(value, (ast.Constant, ast.Lambda)))
            for fn in module.functions:
                for node in fn.nodes:
                    if found:
                        break
                    for stored in _stored_into(node, name, fn):
                        if self.may_grad(stored, fn):
                            found = True
            self._globals[key] = found
        return self._globals[key]

    def _stores(self, fn: FunctionInfo) -> dict[str, list[ast.expr]]:
        """What `fn` stores into its locals after binding them: `x[i] = v`, `x += v`, `x.append(v)`, `x.add_(v)`."""
        table = self._store_table.get(id(fn))
        if table is None:
            table = self._store_table[id(fn)] = {}
            for node in fn.nodes:
                if isinstance(node, (ast.Assign, ast.AugAssign)):
                    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                        base = target
                        while isinstance(base, ast.Subscript):
                            base = base.value
                        if isinstance(base, ast.Name) and (base is not target or isinstance(node, ast.AugAssign)):
                            table.setdefault(base.id, []).append(node.value)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                        isinstance(node.func.value, ast.Name) and \
                        (node.func.attr in CONTAINER_STORE_METHODS or is_in_place(node.func.attr)):
                    table.setdefault(node.func.value.id, []).extend([*node.args, *(k.value for k in node.keywords)])
        return table

    def _source_may_grad(self, fn: FunctionInfo, name: str, kind: str, node) -> bool:
        if kind == "param":
            return self.param_may_grad(fn, name)
        if kind == "ann":
            return False  # an annotation binds nothing; the assignment with it is its own source
        return self.may_grad(node, fn)

    def param_may_grad(self, fn: FunctionInfo, name: str) -> bool:
        """Whether some caller in the project may pass a tensor that requires grad as parameter `name`."""
        if name == fn.receiver:
            return False
        key = (id(fn), name)
        if key in self._params:
            return self._params[key]
        self._params[key] = False
        result = self._param_from_callers(fn, name)
        self._params[key] = result
        return result

    def _param_from_callers(self, fn: FunctionInfo, name: str) -> bool:
        index = self.index
        if index.is_escaped(fn):
            return True  # called from places the index cannot see
        callers = index.callers_of(fn)
        if not callers:
            return False  # entered from outside the project: an input (the boundary assumption)
        args = fn.node.args
        positional = fn.parameter_names[0]
        defaults = dict(zip(reversed(positional), reversed(args.defaults), strict=False))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None})
        for site in callers:
            call = site.node
            if any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords):
                return True  # `f(*args)` / `f(**kwargs)`: any parameter may receive anything
            if site.deferred:
                return True  # in a lambda or a generator expression: its arguments are whatever it is called with
            expr = argument_for(fn, site, name)
            if expr is None:
                expr = defaults.get(name)
            if expr is not None and self.may_grad(expr, site.caller):
                return True
        return False


def _stored_into(node: ast.AST, name: str, fn: FunctionInfo) -> list[ast.expr]:
    """The values `node` stores into the module-level `name`, if it does."""
    if isinstance(node, ast.Assign):
        found = []
        for target in node.targets:
            base = target
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name) and base.id == name and (
                    base is not target or any(isinstance(n, ast.Global) and name in n.names for n in fn.nodes)):
                found.append(node.value)
        return found
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
            and node.func.value.id == name:
        return [*node.args, *(kw.value for kw in node.keywords)]
    return []
