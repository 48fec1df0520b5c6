"""Grad facts (may a value require grad?) and grad states (may a function run with autograd on?)."""

from __future__ import annotations

from chatterbox_codemod.analysis import GradStates
from chatterbox_codemod.analysis.gradfacts import GradFacts
from tiny import HEADER, call, expression, function, index_of


def test_what_may_require_grad(tmp_path):
    index = index_of(tmp_path, {"m.py": HEADER + """
        WINDOW = torch.hann_window(4)
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.ones(4))
            def f(self, x):
                a = torch.zeros(4)
                b = a * 2 + WINDOW
                c = self.w * 2
                d = c.detach()
                e = x.softmax(-1)
                g = (a > 0).float()
                return a, b, c, d, e, g
        m = M()
        m.f(torch.randn(4))
        """})
    facts = GradFacts(index)
    fn = function(index, "M.f")
    verdicts = {name: facts.may_grad(expression(fn, name), fn) for name in "abcdeg"}
    # `x` comes from the one call site, a fresh `torch.randn`: it cannot require grad, nor can `e`.
    assert verdicts == {"a": False, "b": False, "c": True, "d": False, "e": False, "g": False}


def test_a_method_of_an_object_of_unknown_type_is_a_tensor_method_only_if_nothing_else_has_its_name(tmp_path):
    """`keeper.lin(x)` on an object of unknown type may be the Linear the project stores in `.lin`, whose output
    requires grad; `keeper.view(4)` is a tensor's method, which requires grad only if `keeper` does."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Keeper(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
        def fit(registry, x):
            keeper = registry.get("keeper")
            return keeper.lin(x), keeper.view(4)
        """})
    facts = GradFacts(index)
    fn = function(index, "fit")
    assert facts.may_grad(expression(fn, "keeper.lin(x)"), fn)
    assert not facts.may_grad(expression(fn, "keeper.view(4)"), fn)


def test_parameters_take_what_call_sites_pass(tmp_path):
    index = index_of(tmp_path, {"m.py": HEADER + """
        def head(x):
            return x * 2
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def run(self, x):
                return head(self.lin(x)), head(torch.zeros(4))
        def unused(y):
            return y
        """})
    facts = GradFacts(index)
    assert facts.param_may_grad(function(index, "head"), "x")  # one call site passes an activation
    # No caller in the project: an input from outside, assumed not to require grad (the boundary assumption).
    assert not facts.param_may_grad(function(index, "unused"), "y")


def test_module_level_caches_take_what_functions_store(tmp_path):
    index = index_of(tmp_path, {"m.py": HEADER + """
        CACHE = {}
        BASIS = {}
        def fill(w):
            CACHE["w"] = w
            BASIS["k"] = torch.ones(3)
        layer = nn.Linear(4, 4)
        fill(layer.weight)
        """})
    facts = GradFacts(index)
    module = function(index, "fill").module
    assert facts.global_may_grad(module, "CACHE")
    assert not facts.global_may_grad(module, "BASIS")


def test_call_cycles_nobody_else_calls_are_entered_from_outside(tmp_path):
    index = index_of(tmp_path, {"m.py": HEADER + """
        def ping(x, n):
            return pong(x, n - 1) if n else x
        def pong(x, n):
            return ping(x, n)
        @torch.no_grad()
        def start(x):
            return inner(x)
        def inner(x):
            return x
        """})
    states = GradStates(index)
    for name in ("ping", "pong"):
        assert states.entry(function(index, name)) == (True, True)
        assert states.outside_entry(function(index, name)) == "is called only from its own call cycle"
    assert states.entry(function(index, "inner")) == (False, True)  # only called under `no_grad`
    assert states.outside_entry(function(index, "start")) == "has no caller in the project"


def test_functions_referenced_as_values_run_in_any_grad_state(tmp_path):
    index = index_of(tmp_path, {"m.py": HEADER + """
        @torch.no_grad()
        def caller(x):
            return hook(x)
        def hook(x):
            return x
        callbacks = [hook]
        """})
    states = GradStates(index)
    hook = function(index, "hook")
    assert states.entry(hook) == (True, True)
    assert states.outside_entry(hook).startswith("is referenced as a value (`hook`, m.py:9)")


def test_values_stored_into_a_local_after_it_is_bound(tmp_path):
    """`h = torch.zeros(...)` then `h[0] = activation`: `h` may require grad at every call site it is passed to."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        def mix(h, r):
            return h @ r
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Linear(4, 4)
            def forward(self, x, r):
                h = torch.zeros(4, 4)
                h[0] = self.enc(x)[0]
                acc = torch.zeros(4)
                acc += self.enc(x).sum(0)
                rows = []
                rows.append(self.enc(x))
                return mix(h, r), mix(acc, r), rows
        """})
    facts = GradFacts(index)
    forward = function(index, "M.forward")
    assert facts.name_may_grad(forward, "h") and facts.name_may_grad(forward, "acc")
    assert facts.name_may_grad(forward, "rows")
    assert facts.param_may_grad(function(index, "mix"), "h")


def test_generators_and_deferred_calls_run_with_autograd_on(tmp_path):
    """A generator's body runs as it is iterated and a lambda's when it is called: wherever that is. What they
    call is entered from outside, even from inside a grad-off block."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        def make(x):
            return x * 2
        def produce(xs):
            for x in xs:
                yield x
        def run(xs, register):
            with torch.no_grad():
                register(lambda t: make(t))
                return list(produce(xs))
        def direct(x):
            with torch.no_grad():
                return make(x)
        """})
    states = GradStates(index)
    assert states.entry(function(index, "make")) == (True, True)
    assert "is called from a lambda or a generator expression in run (m.py:11)" in states.outside_entry(
        function(index, "make"))
    assert states.entry(function(index, "produce")) == (True, True)
    assert "is a generator" in states.outside_entry(function(index, "produce"))


def test_calls_python_makes_or_the_index_cannot_type_enter_from_outside(tmp_path):
    """`part(x)` on a value of unknown type may run any module's `forward` whose signature it fits, and
    `t[i]` runs `__getitem__`: their grad-off callers are not all their callers."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Block(nn.Module):
            def forward(self, x):
                return x * 2
        class Pair(nn.Module):
            def forward(self, x, y):
                return x + y
        class Table(nn.Module):
            def __getitem__(self, i):
                return i
            def plain(self):
                return 1
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.block, self.table = Block(), Table()
            @torch.no_grad()
            def generate(self, x):
                return self.block(x) + self.table.__getitem__(0) + self.table.plain()
        def train(model, x):
            for part in list(model.children()):
                part(x).sum().backward()
        """})
    states = GradStates(index)
    assert call(index, "train", "part").opaque
    assert not call(index, "Model.generate", "self.block").opaque
    assert states.outside_entry(function(index, "Block.forward")) == (
        "may be called by `part(...)` (m.py:24), a call of a value whose type the analysis cannot resolve")
    assert states.entry(function(index, "Block.forward")) == (True, True)
    assert states.outside_entry(function(index, "Pair.forward")) == "has no caller in the project"  # not `part(x)`
    assert states.outside_entry(function(index, "Table.__getitem__")).startswith(
        "is called by Python where the code does not name it")
    assert states.entry(function(index, "Table.plain")) == (False, True)


def test_iteration_types_what_a_loop_unpacks(tmp_path):
    """`for a, b in self.pairs`, `for i, m in enumerate(self.blocks)` and iterating a ModuleList subclass give
    the modules the loop calls, so those calls are resolved rather than opaque."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Block(nn.Module):
            def forward(self, x):
                return x * 2
        class Stack(nn.ModuleList):
            def __init__(self):
                super().__init__()
                self.add_module("first", Block())
            def forward(self, x):
                for layer in self:
                    x = layer(x)
                return x
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.pairs = nn.ModuleList([nn.ModuleList([Block(), Block()])])
                self.blocks = nn.ModuleList(Block() for _ in range(2))
            def forward(self, x):
                for first, second in self.pairs:
                    x = second(first(x))
                for i, block in enumerate(self.blocks):
                    x = block(x)
                return x
        """})
    block = function(index, "Block.forward")
    for caller, spelled in (("Stack.forward", "layer"), ("Model.forward", "second"), ("Model.forward", "block")):
        site = call(index, caller, spelled)
        assert site.callees == (block,) and not site.opaque, (caller, spelled)


def test_a_function_entered_from_outside_is_explained_by_a_caller_the_project_shows(tmp_path):
    """`Block.forward` may run through `part(x)`, a value of unknown type, and `Model.forward`, which nothing in
    the project calls, runs it with autograd on: the chain the code shows explains its state."""
    index = index_of(tmp_path, {"m.py": HEADER + """
        class Block(nn.Module):
            def forward(self, x):
                return x * 2
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = Block()
            def forward(self, x):
                return self.block(x)
        def run(part, x):
            return part(x)
        """})
    states = GradStates(index)
    block = function(index, "Block.forward")
    assert states.outside_entry(block).startswith("may be called by `part(...)` (m.py:14)")
    assert [fn.short for fn in states.path_to(block, 0)] == ["Model.forward", "Block.forward"]
