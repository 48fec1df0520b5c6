"""Name resolution, type inference and call resolution (codemod.analysis.index) on tiny projects."""

from __future__ import annotations

import ast

from chatterbox_codemod.analysis import External, Instance
from tiny import HEADER, call, function, index_of


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
        def run(block, parts, x):
            for part in parts:
                part(x)
            self_made = Block(3, None)
            self_made.add_module("extra", nn.Linear(3, 3))
            sorted(parts, key=block)
            functools.partial(self_made, x)
            return list(map(len, parts))
        """})
    assert call(index, "Block.forward", "self.act").opaque  # `act` is stored, its type unknown
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
