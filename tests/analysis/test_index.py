"""Name resolution, type inference and call resolution (codemod.analysis.index) on tiny projects."""

from __future__ import annotations

import ast
import textwrap

from chatterbox_codemod.analysis import External, Instance, ProjectIndex
from chatterbox_codemod.analysis.index import MAX_INFERENCE_DEPTH, MAX_TYPES, argument_for
from chatterbox_codemod.analysis.project import UNRESOLVED
from tiny import HEADER, call, expression, function, index_of


def test_imports_aliases_and_reexports_resolve_to_the_defining_module(tmp_path):
    index = index_of(tmp_path, {
        "pkg/__init__.py": "from .model import Model as Exported\n",
        "pkg/model.py": HEADER + """
            class Model(nn.Module):
                def embed(self, x):
                    return x
            """,
        "run.py": """
            import pkg
            from pkg import Exported as M
            def main(x):
                return M().embed(x), pkg.Exported().embed(x)
            """,
    })
    sites = [s for s in function(index, "main").calls if s.callees]
    assert {c.short for s in sites for c in s.callees} == {"Model.embed"}


def test_attribute_types_come_from_constructors_and_call_sites(tmp_path):
    """`self.enc = enc` with no annotation takes the type of what `Model(Enc())` passes."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Enc(nn.Module):
            def forward(self, x):
                return x
        class Model(nn.Module):
            def __init__(self, enc):
                super().__init__()
                self.enc = enc
            def run(self, x):
                return self.enc(x)
        model = Model(Enc())
        """})
    site = call(index, "Model.run", "self.enc")
    assert [c.short for c in site.callees] == ["Enc.forward"]


def test_configuration_files_type_constructor_arguments(tmp_path):
    index = index_of(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/m.py": HEADER + """
            class Enc(nn.Module):
                def forward(self, x):
                    return x
            class Model(nn.Module):
                def __init__(self, enc):
                    super().__init__()
                    self.enc = enc
                def run(self, x):
                    return self.enc(x)
            """,
        "conf/model.yaml": "enc: !new:pkg.m.Enc\nmodel: !new:pkg.m.Model\n    enc: !ref <enc>\n",
    })
    assert [c.short for c in call(index, "Model.run", "self.enc").callees] == ["Enc.forward"]


def test_a_method_of_an_unknown_object_may_be_any_project_method_that_accepts_the_call(tmp_path):
    index = index_of(tmp_path, {"m.py": """
        class A:
            def step(self, x):
                return x
        class B:
            def step(self, x, y, z):
                return x
        def drive(thing, x):
            return thing.step(x)
        """})
    site = call(index, "drive", "thing.step")
    assert site.unresolved and [m.short for m in site.maybe_callees] == ["A.step"]
    assert site in index.callers_of(function(index, "A.step"))


def test_functions_referenced_as_values_escape(tmp_path):
    index = index_of(tmp_path, {"m.py": """
        class M:
            def forward(self, x):
                return x
            def forward_dpo(self, x):
                return x
            def helper(self, x):
                return x
            def run(self, x):
                f = self.helper
                return f(x)
        def swap(m, other):
            m.forward = m.forward_dpo
            other.forward = other.forward_dpo
        """})
    where, node = index.escape_of(function(index, "M.forward_dpo"))
    assert where.short == "swap"
    assert index.escape_of(function(index, "M.helper")) is None  # `f = self.helper; f(x)` is followed


def test_methods_inherited_from_library_bases(tmp_path):
    index = index_of(tmp_path, {"m.py": HEADER + """
        import unittest
        class Buf(nn.Module):
            def fill(self, x):
                self.register_buffer("b", x)
        class T(unittest.TestCase):
            def test(self):
                self.assertEqual(1, 1)
        """})
    assert call(index, "Buf.fill", "self.register_buffer").external == "torch.nn.Module.register_buffer"
    assert call(index, "T.test", "self.assertEqual").external == "unittest.TestCase.assertEqual"


def test_library_objects_and_their_forward(tmp_path):
    index = index_of(tmp_path, {"m.py": HEADER + """
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def run(self, x):
                return self.lin.forward(x), self.lin(x)
        """})
    assert call(index, "M.run", "self.lin.forward").module_types == (External("torch.nn.Linear", instance=True),)
    assert call(index, "M.run", "self.lin").module_types == (External("torch.nn.Linear", instance=True),)
    assert Instance(function(index, "M.run").cls) in index.infer(
        __import__("ast").parse("self", mode="eval").body, function(index, "M.run"))


def test_a_call_that_may_run_either_of_two_library_classes_is_unresolved(tmp_path):
    """`conv(...)` with `conv = nn.Conv2d if two_d else nn.Conv1d` names both, sorted, and no single one:
    which one came out of the set used to follow the process's hash seed."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        def build(two_d):
            conv = nn.Conv2d if two_d else nn.Conv1d
            return conv(4, 4, 3), nn.Linear(4, 4)
        """})
    either = call(index, "build", "conv")
    assert (either.external, either.externals, either.unresolved) == (
        None, ("torch.nn.Conv1d", "torch.nn.Conv2d"), True)
    linear = call(index, "build", "nn.Linear")
    assert (linear.external, linear.externals, linear.unresolved) == ("torch.nn.Linear", (), False)


def test_an_index_built_again_over_the_same_trees_replays_their_walks(tmp_path):
    """The engine's verification indexes the project again with only the rewritten files re-parsed: the
    bodies of the other files are not walked again, and what the index holds is the same."""
    from chatterbox_codemod.analysis import BodyWalks, build_index

    index_of(tmp_path, {
        "a.py": HEADER + """
            class Enc(nn.Module):
                def forward(self, x):
                    with torch.no_grad():
                        y = torch.relu(x)
                    return self.lin(y).sum()
            """,
        "b.py": HEADER + """
            from a import Enc
            def run(x):
                return Enc()(x)
            """,
    })
    paths = sorted(tmp_path.rglob("*.py"))
    trees = {path: ast.parse(path.read_text()) for path in paths}
    walks = BodyWalks()
    first = build_index(tmp_path, [(p, p.read_text(), trees[p]) for p in paths], walks=walks)
    walked = len(walks)
    reparsed = paths[1]  # b.py is "rewritten": a new tree
    second = build_index(tmp_path, [(p, p.read_text(), ast.parse(p.read_text()) if p == reparsed else trees[p])
                                    for p in paths], walks=walks)
    # Its functions' bodies, and its module body (walked for the code it runs at import: here none).
    assert len(walks) == walked + len(second.by_path[reparsed].functions) + 1

    def shape(index):
        return {fn.qualname: ([ast.dump(s.node) for s in fn.calls], [ast.dump(i) for s in fn.calls for i in s.items],
                              [type(n).__name__ for n in fn.nodes]) for fn in index.functions.values()}
    assert shape(first) == shape(second)
    assert {name: len(v) for name, v in first.load_table.items()} == {
        name: len(v) for name, v in second.load_table.items()}
    assert [c.short for s in function(second, "run").calls for c in s.callees] == ["Enc.forward"]


def test_code_a_definition_runs_where_it_stands_is_collected(tmp_path):
    """Decorators, default values and class bodies run where the `def` or `class` stands: their calls are
    calls of the enclosing code (here the module's), and their reads are reads, though their nodes are not
    the enclosing body's."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        def make(x):
            return x
        def register(f):
            return f
        @register
        def run(x, fn=make):
            return fn(x)
        class Table:
            build = staticmethod(make)
            size = len([1])
        """})
    module = function(index, "the module-level code of m.py")
    assert sorted(ast.unparse(site.node.func) for site in module.calls) == ["len", "staticmethod"]
    assert not any(isinstance(node, ast.Assign) for node in module.nodes)  # `build = ...` binds a class attribute
    # The default and the class attribute, both read by the module's code.
    assert [fn.short for fn, _ in index.loads("make")] == ["the module-level code of m.py"] * 2
    assert [fn.short for fn, _ in index.loads("register")] == ["the module-level code of m.py"]


def test_a_call_is_collected_whatever_field_of_whatever_node_holds_it(tmp_path):
    """The walk of a body reads every field that may hold a node (by each node type's ASDL signature), so a
    call in a format spec, a comparison, a slice, a `match` guard, an exception handler's type or an
    annotation is a call of the body."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        async def run(xs, k):
            total: c01() = c02()
            label = f"{c03():{c04()}}"
            if c05() < c06() <= c07():
                del xs[c08():c09():c10()]
            match c11():
                case [first, *rest] if c12():
                    xs[k] += c13(first, *rest, key=c14())
                case {"a": value, **others}:
                    assert c15(value), c16(others)
            try:
                await c17()
            except (c18(), ValueError) as error:
                raise c19() from error
            finally:
                total = (yield c20())
            with c21() as (a, b):
                squares = {c22(x): c23(x) for x in xs if c24(x)}
            return [item async for item in c25()] if (n := c26()) else -c27() @ ~c28()
        """})
    names = sorted(ast.unparse(site.node.func) for site in function(index, "run").calls)
    assert names == [f"c{i:02}" for i in range(1, 29)]


def test_calls_that_run_later_are_deferred(tmp_path):
    """A lambda's body runs when it is called and a generator expression's elements as it is iterated
    (past its first iterable), wherever that is; a generator a call runs to its end is not deferred."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        def make(x):
            return x
        def run(xs, register):
            with torch.no_grad():
                register(lambda t: make(t))
                later = (make(x) for x in make(xs))
                now = tuple(make(x) for x in xs)
                spread = zip(*(make(x) for x in xs))
            return later, now, spread
        def build():
            class Local:
                def __call__(self, t):
                    return make(t)
            return Local()
        """})
    deferred = [(ast.unparse(site.node), site.deferred) for site in function(index, "run").calls
                if ast.unparse(site.node.func) == "make"]
    assert deferred == [("make(t)", True), ("make(x)", True), ("make(xs)", False), ("make(x)", False),
                        ("make(x)", False)]
    assert [ast.unparse(s.node) for s in function(index, "Local.__call__").calls] == ["make(t)"]


def test_functions_handed_out_where_the_call_graph_does_not_show_escape(tmp_path):
    """A function reached through an alias, a reflective lookup, a decorator that is handed it, a default or a
    class attribute may be called from anywhere: each is an escape, found where it is handed out."""
    index = index_of(tmp_path, {
        "a.py": HEADER + """
            def by_alias(x):
                return x
            def by_local(x):
                return x
            def by_attribute(x):
                return x
            def by_getattr(x):
                return x
            def by_default(x):
                return x
            def by_class(x):
                return x
            def hook(f):
                return f
            @hook
            def decorated(x):
                return x
            class Holder:
                fn = staticmethod(by_class)
                def __init__(self):
                    self.fn2 = by_attribute
                def get(self):
                    return self.fn2
            def route(fn=by_default):
                local = by_local
                return local, fn
            """,
        "c.py": """
            def called(x):
                return x
            class Other:
                def method(self):
                    return 1
            """,
        "b.py": """
            import a
            import c
            from a import by_alias as renamed
            def take(name):
                return renamed, getattr(a, "by_getattr"), getattr(c, name), c.called(1)
            """,
    })
    where = {}
    for fn in index.functions.values():
        escape = index.escape_of(fn)
        if escape is not None:
            where[fn.short] = ast.unparse(escape[1])
    assert where["by_alias"] == "renamed"
    assert where["by_local"] == "local"
    assert where["by_attribute"] == "self.fn2"
    assert where["by_getattr"] == "getattr(a, 'by_getattr')"
    assert where["by_default"] == "by_default"
    assert where["by_class"] == "by_class"
    assert where["decorated"] == "hook"
    assert where["called"] == "getattr(c, name)"  # `getattr(c, name)` may be any function of `c`
    assert "Other.method" not in where  # an attribute of the class, not of the module
    assert "route" not in where  # called nowhere, but never handed out either


def test_calls_that_may_run_an_object_of_the_project(tmp_path):
    """A call of a value of unknown type is opaque (it may run any project object's `forward`, `__call__` or
    `__init__`); so is an attribute some class stores an object of unknown type in. A library callable that
    calls an argument is handed the classes of what it is passed (`()`: unknown, any class). Tensor methods,
    attributes holding scalars and the library's own methods are neither."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        import functools
        class Block(nn.Module):
            def __init__(self, size: int, act):
                super().__init__()
                self.size, self.act = size, act
            def forward(self, x):
                return self.act(x) + x.size(0)
        def run(block, parts, x, act):
            for part in parts:
                part(x)
            self_made = Block(3, act)
            self_made.add_module("extra", nn.Linear(3, 3))
            sorted(parts, key=block)
            functools.partial(self_made, x)
            return list(map(len, parts))
        """})
    assert call(index, "Block.forward", "self.act").opaque  # `act` is stored, passed a value of unknown type
    assert not call(index, "Block.forward", "x.size").opaque  # only `size: int` is stored as `size`
    assert call(index, "run", "part").opaque
    assert not call(index, "run", "self_made.add_module").opaque  # nothing stores `add_module`: nn.Module's
    assert call(index, "run", "sorted").handed == ()  # `key=block`: a parameter of unknown type
    assert call(index, "run", "functools.partial").handed == (index.classes["m.Block"],)
    assert call(index, "run", "map").handed is None  # `len` is no object of the project


def test_values_that_cannot_be_objects_of_the_project(tmp_path):
    """A name bound nowhere (calling it raises `NameError`) and an attribute or element of a library object
    hold no project object, unless the project stores one into an attribute of that name elsewhere."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Block(nn.Module):
            def forward(self, x):
                return x
        def run(x):
            made = Undefined(x)
            made(x)
            lib = nn.Linear(3, 3)
            hook = lib.hooks[0].fn
            hook(x)
            other = lib.head
            other(x)
        def patch(model):
            model.head = Block()
        """})
    assert not call(index, "run", "made").opaque
    assert not call(index, "run", "hook").opaque
    assert call(index, "run", "other").opaque  # `patch` stores a Block as `.head` of another object


def test_a_value_resolved_only_in_part_keeps_its_unresolved_part(tmp_path):
    """A value with a part of unknown type that may be a project object (`get_submodule(...)` beside
    `h.block`) has `UNRESOLVED` beside the types found, and a call of it is opaque. A part that cannot be an
    object (`None`, a scalar parameter) is not unknown, and a value read back through itself
    (`self.cache = self.cache.to(...)`) stays what its other assignments make it."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Block(nn.Module):
            def forward(self, x):
                return x
        class Holder(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block()
                self.cache = self.block
            def move(self):
                self.cache = self.cache.to("cpu")
        def run(h: Holder, x, flag, size: int = 3):
            a = h.block if flag else h.get_submodule("block")
            a(x)
            b = h.block if flag else None
            b(x)
            c = h.block or size
            c(x)
            h.cache(x)
        """})
    fn = function(index, "run")
    block = Instance(index.classes["m.Block"])
    assert index.infer(expression(fn, "a"), fn) == {block, UNRESOLVED}
    assert call(index, "run", "a").opaque
    assert call(index, "run", "a").callees == (function(index, "Block.forward"),)
    assert index.infer(expression(fn, "b"), fn) == {block}
    assert not call(index, "run", "b").opaque
    assert not call(index, "run", "c").opaque
    assert index.infer(expression(fn, "h.cache"), fn) == {block}
    assert not call(index, "run", "h.cache").opaque


def test_types_from_subclasses_annotations_call_sites_and_getattr_defaults(tmp_path):
    """`self.route` read in a base class may be what a subclass stores. A parameter annotated with a library
    class the project subclasses (`inner: nn.Module`) holds what its callers pass, and any such module when
    nothing calls it; one no caller passes holds its default. `getattr(nn, "Missing", Other)` may be its
    default. `super().__init__(...)` in a subclass of `dict` runs no method of the project."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Block(nn.Module):
            def forward(self, x):
                return x
        class Other(nn.Module):
            def forward(self, x):
                return x
        class Base(nn.Module):
            def __init__(self):
                super().__init__()
                self.route = Other()
            def step(self, x):
                return self.route(x)
        class Sub(Base):
            def __init__(self):
                super().__init__()
                self.route = Block()
        class Encoder(nn.Module):
            def __init__(self, inner: nn.Module, norm: nn.Module = None):
                super().__init__()
                self.inner, self.norm = inner, norm
            def forward(self, x):
                return self.norm(self.inner(x))
        class Options(dict):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
        def build():
            return Encoder(Block())
        def anywhere(layer: nn.Module, x):
            return layer(x, x, x)  # three arguments: no `Encoder(...)`, so Encoder.__init__ has only `build`
        ACTIVATIONS = {"relu": nn.ReLU, "other": getattr(nn, "Missing", Other)}
        def activation(name, x):
            return ACTIVATIONS[name]()(x)
        """})
    forward = {cls: function(index, f"{cls}.forward") for cls in ("Block", "Other")}
    assert set(call(index, "Base.step", "self.route").callees) == {forward["Block"], forward["Other"]}
    assert call(index, "Encoder.forward", "self.inner").callees == (forward["Block"],)
    assert not call(index, "Encoder.forward", "self.inner").opaque
    assert not call(index, "Encoder.forward", "self.norm").opaque  # no caller passes `norm`: it is None
    assert call(index, "anywhere", "layer").opaque
    assert call(index, "activation", "ACTIVATIONS[name]()").callees == (forward["Other"],)
    assert call(index, "Options.__init__", "super().__init__").targets == ()
    assert [site.caller.short for site in index.callers_of(function(index, "Encoder.__init__"))] == ["build"]


# `helper` is called with a `Plain` by the project, and by nothing else it can see.
PLAIN_HELPER = HEADER + """
class Plain(nn.Module):
    def forward(self, x):
        return x
def helper(m, x):
    return m(x)
def run(x):
    return helper(Plain(), x)
"""


def test_code_the_index_cannot_see_may_call_a_function_with_anything(tmp_path):
    """A function handed out by a reflective lookup may be called from anywhere: its parameter keeps
    `UNRESOLVED` beside what the project passes it, so a call of it is opaque, and may run any module's
    `forward` that accepts its arguments. A function the lookup cannot hand out keeps the types of its
    callers. A read of an attribute on an object of unresolved type may read it on any class."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        import importlib
        class Plain(nn.Module):
            def forward(self, x):
                return x
        class Remember(nn.Module):
            def forward(self, x):
                self.memory = x
                return x
        def helper(m, x):
            return m(x)
        def run(x):
            return helper(Plain(), x)
        def train(name, model, x):
            getattr(importlib.import_module(__name__), name)(model, x)
            return model.memory
        """})
    helper = function(index, "helper")
    forward = {cls: function(index, f"{cls}.forward") for cls in ("Plain", "Remember")}
    assert index.local_type(helper, "m") == {Instance(forward["Plain"].cls), UNRESOLVED}
    site = call(index, "helper", "m")
    assert site.callees == (forward["Plain"],) and site.opaque
    assert set(index.possible_targets(site)) >= {forward["Plain"], forward["Remember"]}
    assert [classes for fn, classes in index.attribute_readers("memory") if fn.short == "train"] == [None]

    # Without the lookup, every call of `helper` is one the index sees.
    index = index_of(tmp_path / "seen", {"m.py": PLAIN_HELPER})
    site = call(index, "helper", "m")
    assert not site.opaque and index.possible_targets(site) == (function(index, "Plain.forward"),)


def test_a_call_of_a_value_of_unknown_type_may_run_any_function_handed_out_as_a_value(tmp_path):
    """`fn(m)` with `fn` from a reflective lookup may run any function the project hands out as a value that
    accepts one argument, and the calls of any lambda that does (`lambda module: reset(module)` runs `reset`);
    `map(reset, ms)` runs `reset`; `helpers.reset(m)` on an object of unknown type (a module, say) runs a
    function named `reset`; a call whose arguments no such function accepts runs none of them."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        import importlib
        def reset(m):
            m.weight.data = m.weight.data * 0
        def scale(m, factor):
            return factor
        def wrapped(m):
            return m
        def look(name):
            return getattr(importlib.import_module(__name__), name)
        def run(m, name, helpers):
            fn = look(name)
            fn(m)
            fn()
            list(map(reset, [m]))
            helpers.reset(m)
        def prepare(m):
            return run(m, lambda module: wrapped(module))
        """})
    run = function(index, "run")
    sites = {ast.unparse(site.node): site for site in run.calls}
    reached = {text: {fn.short for fn in index.possible_targets(site)} for text, site in sites.items()}
    assert {"reset", "look", "prepare", "wrapped"} <= reached["fn(m)"]
    assert "run" not in reached["fn(m)"]  # it takes three arguments
    assert "scale" not in reached["fn(m)"]
    assert reached["fn()"] & {"reset", "scale", "wrapped", "prepare"} == set()
    assert reached["map(reset, [m])"] == {"reset"}
    assert reached["helpers.reset(m)"] == {"reset"}


def test_a_lookup_that_may_hand_out_anything_whatever_the_types_hides_every_caller(tmp_path):
    """`eval(name)`, `globals()` in a module that imports `*` and `attrgetter` of a computed name may hand out
    any function of the project, whatever the types are: `helper` may be called with anything, beside the
    `Plain` its visible caller passes. `globals()` in a module without `*` imports hands out that module's own
    functions only."""
    project = PLAIN_HELPER
    lookups = {
        "eval(name)": "def look(name):\n    return eval(name)\n",
        "globals()": "from os.path import *\ndef look(name):\n    return globals()[name]\n",
        "operator.attrgetter(name)": "import operator\ndef look(name, obj):\n"
                                     "    return operator.attrgetter(name)(obj)\n",
    }
    for lookup, module in lookups.items():
        index = index_of(tmp_path / lookup.partition("(")[0], {"m.py": project, "b.py": module})
        assert [ast.unparse(node) for _, node in index.unresolved_lookups] == [lookup]
        helper = function(index, "helper")
        assert ast.unparse(index.escape_of(helper)[1]) == lookup
        assert index.local_type(helper, "m") == {Instance(function(index, "Plain.forward").cls), UNRESOLVED}

    index = index_of(tmp_path / "own", {"m.py": project, "b.py": "def look(name):\n    return globals()[name]\n"})
    helper = function(index, "helper")
    assert index.unresolved_lookups == [] and index.escape_of(helper) is None
    assert index.local_type(helper, "m") == {Instance(function(index, "Plain.forward").cls)}
    assert ast.unparse(index.escape_of(function(index, "look"))[1]) == "globals()"


def test_a_call_of_unknown_type_constructs_only_classes_handed_out(tmp_path):
    """`make(x)` on a value of unknown type may run the `__init__` of a class read as a value somewhere (a
    registry, a default), never one only called, subclassed, annotated or tested with `isinstance`; where
    `type(x)` is used as a value, of any class. A call of a module container with elements of unknown type
    runs their `forward`, never an `__init__`."""
    program = HEADER + """
        class Named(nn.Module):
            def __init__(self, size=4):
                super(Named, self).__init__()
            def forward(self, x):
                return x
        class Registered(nn.Module):
            def __init__(self, size=4):
                super().__init__()
        REGISTRY = {"r": Registered}
        def build(make, parts, x):
            layers = nn.Sequential(*parts)
            return make(x), Named(x), isinstance(x, Named), type(x).__name__, layers(x)
        """
    index = index_of(tmp_path / "named", {"m.py": program})
    site = call(index, "build", "make")
    targets = {fn.short for fn in index.possible_targets(site)}
    assert {"Registered.__init__", "Named.forward"} <= targets and "Named.__init__" not in targets
    assert index.opaque_caller(function(index, "Named.__init__")) is None
    assert index.opaque_caller(function(index, "Registered.__init__")) is site
    assert not [fn for fn in index.possible_targets(call(index, "build", "layers")) if fn.name == "__init__"]

    index = index_of(tmp_path / "type", {"m.py": program + "def again(x):\n            return type(x)(4)\n"})
    assert "Named.__init__" in {fn.short for fn in index.possible_targets(call(index, "build", "make"))}


def test_an_object_of_a_class_may_be_one_of_its_subclasses(tmp_path):
    """`model: Base` may hold a Keeper, so `model.remember(x)` may run Keeper's override; `cls` in a classmethod
    is the class it is called on, so `cls()` may build any subclass."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Base(nn.Module):
            def remember(self, x):
                return x
            @classmethod
            def build(cls):
                return cls()
        class Keeper(Base):
            def __init__(self):
                super().__init__()
            def remember(self, x):
                return x * 2
        def helper(model: Base, x):
            return model.remember(x)
        """})
    assert {c.short for c in call(index, "helper", "model.remember").callees} == {"Base.remember", "Keeper.remember"}
    assert [c.short for c in call(index, "Base.build", "cls").callees] == ["Keeper.__init__"]


def test_values_too_wide_or_too_deep_to_infer_are_unknown(tmp_path):
    """A value of more than `MAX_TYPES` types is widened to unknown, and so is one whose inference would start
    `MAX_INFERENCE_DEPTH` inferences deep (a chain of locals each assigned the one before): a call of either
    is opaque, and the chain raises no `RecursionError`."""
    count = MAX_TYPES + 1
    blocks = "".join(f"class B{i}(nn.Module):\n    def forward(self, x):\n        return x\n" for i in range(count))
    wide = "".join(f"    run(B{i}(), x)\n" for i in range(count))
    narrow = "".join(f"    run_narrow(B{i}(), x)\n" for i in range(MAX_TYPES))
    depth = 10 * MAX_INFERENCE_DEPTH
    chain = "".join(f"    v{i + 1} = v{i}\n" for i in range(depth))
    index = index_of(tmp_path, {"m.py": HEADER + blocks + textwrap.dedent("""
        def run(block, x):
            return block(x)
        def run_narrow(block, x):
            return block(x)
        """) + "def main(x):\n" + wide + narrow + "def deep(x):\n    v0 = B0()\n" + chain + f"    v{depth}(x)\n"})
    assert call(index, "run", "block").opaque and call(index, "run", "block").callees == ()
    assert not call(index, "run_narrow", "block").opaque
    assert len(call(index, "run_narrow", "block").callees) == MAX_TYPES
    assert call(index, "deep", f"v{depth}").opaque


def test_names_assigned_in_a_cycle_are_unresolved_in_part_whichever_is_read_first(tmp_path):
    """`a = b`, `b = c`, `c = a` in a loop: the name read first (the cycle's root) holds what any of them is
    assigned; the others were inferred before its answer was known and keep `UNRESOLVED` beside what they
    found, so a call of any of them is opaque, whichever is read first (before, `b` and `c` missed what `a`
    held, and their calls were resolved)."""
    for first in "abc":
        index = index_of(tmp_path / first, {"m.py": HEADER + f"""
            class Foo(nn.Module):
                def forward(self, x):
                    return x
            class Bar(Foo):
                pass
            class Baz(Foo):
                pass
            def run(x, flag):
                a = Foo()
                while flag:
                    a = b
                    b = c
                    b = Bar()
                    c = a
                    c = Baz()
                {first}(x)
                a(x)
                b(x)
                c(x)
            """})
        fn = function(index, "run")
        classes = {Instance(index.classes[f"m.{name}"]) for name in ("Foo", "Bar", "Baz")}
        assert index.local_type(fn, first) == classes | {UNRESOLVED}, first
        for name in "abc":
            assert UNRESOLVED in index.local_type(fn, name), (first, name)
            assert call(index, "run", name).opaque, (first, name)


def test_iterating_a_value_may_run_a_generator_body_or_an_iter_method_where_it_is_iterated(tmp_path):
    """What iterating runs: a value of unknown type the body of any generator function whose generators may
    be iterated elsewhere than where they are made (not `steps`, iterated where it is called, nor `streamed`,
    which nothing in the project calls), any iteration method of a project class and what any generator
    expression's elements call; a generator function's call its body; an object of a project class its
    `__iter__`; a generator expression its elements' calls. A list, a library call's result (and a part of
    one) and a module container run nothing; `nn.ModuleList(... for ...)` consumes its generator where it
    stands."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        def steps(m):
            m.weight.data = m.weight.data * 0
            yield m
        def made(m):
            yield m
        def streamed(m):
            yield m
        def hand(m):
            return made(m)
        def touch(m):
            return m
        class Walker:
            def __iter__(self):
                yield 1
        class Stack(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(2))
        def run(items, m, stack: Stack):
            for a in items:
                pass
            for b in steps(m):
                pass
            first, = Walker()
            later = (touch(m) for _ in range(2))
            rest = [*later]
            for c in [m, m]:
                pass
            for d in range(3):
                pass
            for e in stack.blocks:
                pass
            for f in m.size()[1:]:
                pass
            return list(items)
        """})
    run = function(index, "run")
    reached = {ast.unparse(call.use.anchor): {fn.short for fn in index.implicit_functions(call.parts)}
               for call in index.implicit_calls(run)}
    assert reached == {
        "items": {"made", "Walker.__iter__", "touch"},
        "steps(m)": {"steps"},
        "Walker()": {"Walker.__iter__"},
        "later": {"touch"},
    }


def test_special_methods_and_properties_run_where_the_code_does_not_name_them(tmp_path):
    """`bank[i]` on a `Bank` runs its `__getitem__` (or a subclass's), on a value of unknown type any project
    `__getitem__`; `holder.first` any property named `first`; `a + b` `a`'s `__add__` or `b`'s `__radd__`;
    `len(x)`, `with x:` and `if x:` their special methods. Nothing where no project class defines the name."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Bank:
            def __getitem__(self, i):
                return i
            def __len__(self):
                return 1
        class Vault(Bank):
            def __getitem__(self, i):
                return i
        class Shelf:
            def __getitem__(self, i):
                return i
            @property
            def first(self):
                return self[0]
            def __radd__(self, other):
                return other
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return False
        def run(bank: Bank, holder, t, ready):
            a = bank[0]
            b = holder[0]
            c = holder.first
            d = t + holder
            e = len(bank)
            with holder:
                pass
            if ready:
                pass
            return t * 2
        """})
    run = function(index, "run")
    reached = {ast.unparse(call.use.anchor): {fn.short for fn in index.implicit_functions(call.parts)}
               for call in index.implicit_calls(run)}
    assert reached == {
        "bank[0]": {"Bank.__getitem__", "Vault.__getitem__"},
        "holder[0]": {"Bank.__getitem__", "Vault.__getitem__", "Shelf.__getitem__"},
        "holder.first": {"Shelf.first"},
        "t + holder": {"Shelf.__radd__"},
        "len(bank)": {"Bank.__len__"},
        "holder": {"Shelf.__enter__", "Shelf.__exit__"},
        "ready": {"Bank.__len__"},
    }


def test_a_static_method_binds_its_first_parameter_even_when_asked_before_decorators_are_linked(tmp_path):
    """`receiver` is kept per function, and `@staticmethod` is known only once linking starts: an answer
    given before then is not the one kept."""
    path = tmp_path / "m.py"
    path.write_text(HEADER + textwrap.dedent("""
        class Enc(nn.Module):
            def forward(self, x):
                return x
        class Model:
            @staticmethod
            def make(enc):
                return enc(1)
        out = Model.make(Enc())
        """))
    index = ProjectIndex(tmp_path)
    index.add_module(path, path.read_text(), ast.parse(path.read_text()))
    make = function(index, "Model.make")
    assert make.receiver == "enc"  # no decorators linked yet: it reads as a method
    index.finish()
    assert make.receiver is None
    assert [c.short for c in call(index, "Model.make", "enc").callees] == ["Enc.forward"]


def test_what_a_call_packs_into_star_args_is_one_node_for_the_index_s_lifetime(tmp_path):
    """Decisions about a value are memoized by its node's id: the tuple `f(a, b)` packs into `*rest` must stay
    the same node, or a freed one's id could be reused by another call's tuple and answer for it."""
    index = index_of(tmp_path, {"m.py": """
        def f(first, *rest, **options):
            return rest, options
        def run(a, b, c):
            return f(a, b, c, key=a)
        """})
    site, f = call(index, "run", "f"), function(index, "f")
    rest = argument_for(f, site, "rest")
    assert [ast.unparse(e) for e in rest.elts] == ["b", "c", "a"]
    assert argument_for(f, site, "rest") is rest
    assert argument_for(f, site, "first").id == "a"


def test_a_parameter_is_none_wherever_no_call_that_may_run_the_function_passes_it(tmp_path):
    """`accelerator=None` that no call passes (a call of a value of unknown type that may run the `forward`
    included) holds None only, so `accelerator.unwrap_model(...)` never runs; one that some call passes, or
    that the body assigns, or a function handed out where its callers cannot be seen, may hold anything."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Tok(nn.Module):
            def forward(self, wavs, accelerator=None, limit=None, other=None):
                if accelerator is not None:
                    self.unwrapped = accelerator.unwrap_model(self)
                if other is None:
                    other = wavs
                return wavs

        def helper(x, device=None):
            return x

        HANDED = [helper]

        def use(tok, part, x):
            tok(x)
            tok.forward(x, limit=3)
            part(x)
            return helper(x)
        """})
    forward = function(index, "Tok.forward")
    assert index.holds_only_none(forward, "accelerator")
    assert not index.holds_only_none(forward, "limit")  # `tok.forward(x, limit=3)`
    assert not index.holds_only_none(forward, "other")  # assigned in the body
    assert not index.holds_only_none(forward, "wavs")  # no default
    assert not index.holds_only_none(function(index, "helper"), "device")  # handed out in `HANDED`
    passed = index_of(tmp_path / "passed", {"m.py": HEADER + """
        class Tok(nn.Module):
            def forward(self, wavs, accelerator=None):
                return wavs

        def use(tok, part, x, acc):
            tok(x)
            part(x, acc)
        """})
    assert not passed.holds_only_none(function(passed, "Tok.forward"), "accelerator")  # `part(x, acc)` may pass it
