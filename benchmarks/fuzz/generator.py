"""The seeded program generator: small random PyTorch projects with grad-off regions and their drivers.

A program is a package (`fzpkg`, two to four modules importing each other
relatively) and driver scripts beside it that import the package by name.
Model templates write `nn.Module` classes with grad-off regions in every
spelling (decorators with and without parentheses, `with` blocks,
`set_grad_enabled(False)` and `mode=False`, `import torch as th`,
`from torch import no_grad`), whose tensors leave the region through returns,
tuples, dicts, lists, attributes on `self` and on other objects, closures and
lambdas, and meet grad-carrying values (parameters, or activations computed
from them) in ops that save their inputs for backward and ops that do not.
Usage templates wrap those models: trainers and fine-tuners with modules
injected without annotations, dict-like holders (ModuleDict, dict, an
attribute dict, a config object), factories, GAN turns, distillation from a
frozen teacher, EMA, caches updated in place, recursion, methods swapped in
by assignment. Reference templates hand a grad-off helper, whose callers in
the package run it grad-off, to a driver that trains through it, by routes the
call graph does not show: aliases, reflective lookups, registry decorators,
defaults, class attributes, lambdas, generators, classes defined in functions,
and closures reading a region's tensor; a generator yields from inside a
grad-off `with` block, whose mode the loop iterating it runs in; and calls
the package never names reach a grad-off region (a module called through a
value of unknown type or through `map`, `__getitem__` run by `t[i]`, a
property read), or a call of a value the index resolves only in part does (one
branch of `a if c else b`, one of two assignments, an attribute a subclass
sets, a parameter annotated `nn.Module`, a local a loop rotates it into); and
a grad-off region runs code the package does not name (a method or `forward`
of a parameter only an untyped factory fills, a helper a reflective lookup
hands another module than the package passes it, `__init__` run by `cls()`
in a classmethod of its base, an override reached through a parameter
annotated with the base), which stores a tensor on the module a training step
then uses (read by a method of the base, too), or rebinds its weight's data;
or calls a function value it cannot name that does the same (one a reflective
lookup gives, a lambda a trainer passes, one `map` calls, one passed by name,
one a holder of unknown type keeps in an attribute); or runs library code
outside the project (`library/fzlib.py`) that keeps a tensor it makes, a
cache extended on demand or an `lru_cache`, which a training step then uses.

Each driver's `run()` seeds torch, uses the package for inference or
training, and returns a dict of named tensors (gradients as `grad.*`). A
driver is marked `external` when it feeds a tensor that a package method
returned to autograd or updates it in place: the run that targets the
package alone does not count it (the documented policy only notes such
callers). Everything is tiny (4x4 tensors), so a driver runs in milliseconds.
"""

from __future__ import annotations

import random
import re
import textwrap
from dataclasses import dataclass, field
from string import Template

PACKAGE = "fzpkg"
GRADS = '**{"grad." + k: p.grad for k, p in $M.named_parameters()}'


@dataclass
class Driver:
    label: str
    body: str  # the body of `run()`, unindented
    imports: list[tuple[str, str]]  # (module, name) it takes from the package
    external: bool  # trains on, or updates in place, a tensor a package method returned


@dataclass
class Module:
    name: str
    torch: str  # the name torch is imported as
    no_grad: str | None  # the name `from torch import no_grad [as ...]` binds, if any
    blocks: list[str] = field(default_factory=list)
    imports: dict[str, list[str]] = field(default_factory=dict)  # relative imports: module -> names
    libraries: set[str] = field(default_factory=set)  # modules outside the project it imports (`fzlib`)

    def spelling(self, rng: random.Random) -> dict[str, str]:
        t = self.torch
        decos = [f"@{t}.no_grad()", f"@{t}.no_grad", f"@{t}.set_grad_enabled(False)", f"@{t}.autograd.no_grad()"]
        withs = [f"with {t}.no_grad():", f"with {t}.set_grad_enabled(False):",
                 f"with {t}.set_grad_enabled(mode=False):"]
        if self.no_grad:
            decos += [f"@{self.no_grad}()"] * 2
            withs += [f"with {self.no_grad}():"] * 2
        return {"T": t, "DECO": rng.choice(decos), "DECO2": rng.choice(decos), "WITH": rng.choice(withs),
                "WITH2": rng.choice(withs)}

    def text(self) -> str:
        head = [f"import torch as {self.torch}" if self.torch != "torch" else "import torch",
                "import torch.nn.functional as F", "from torch import nn"]
        if self.no_grad:
            head.append("from torch import no_grad" + (f" as {self.no_grad}" if self.no_grad != "no_grad" else ""))
        head += [f"import {library}" for library in sorted(self.libraries)]
        head += [f"from .{m} import {', '.join(sorted(set(names)))}" for m, names in sorted(self.imports.items())]
        return "\n".join(head) + "\n\n\n" + "\n\n\n".join(self.blocks) + "\n"


@dataclass
class Model:
    """A generated module class other templates may wrap: `cls(*args)` in `module`, fed `make_input`."""

    cls: str
    module: int
    make_input: str = "torch.randn(4, 4)"
    ctor: str = "()"


@dataclass
class Program:
    seed: int
    modules: list[Module]
    drivers: list[Driver]
    exports: list[tuple[str, str]]  # names re-exported by the package's __init__

    def files(self) -> dict[str, str]:
        files = {f"{PACKAGE}/{m.name}.py": m.text() for m in self.modules}
        init = [f"from .{m} import {n}" for m, n in self.exports]
        files[f"{PACKAGE}/__init__.py"] = "\n".join(init) + "\n" if init else ""
        for driver in self.drivers:
            files[f"{driver.label}.py"] = _driver_text(driver)
        return files

    def flat(self, drivers: bool = True) -> str:
        """One file holding the package's code and (with `drivers`) each driver as a function named after it."""
        imports, bodies = [], []
        texts = [m.text() for m in self.modules] + [_driver_text(d, d.label) for d in self.drivers if drivers]
        for text in texts:
            for line in text.splitlines():
                if (re.match(r"(import |from \S+ import )", line) and not re.match(rf"from (\.|{PACKAGE}\b)", line)
                        and line not in imports):
                    imports.append(line)
            bodies.append("\n".join(
                _flat_alias(line) for line in text.splitlines()
                if not re.match(r"(import |from \S+ import )", line) or _flat_alias(line) != line).strip())
        return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(b for b in bodies if b) + "\n"


    def flat_package(self) -> dict[str, str]:
        """The package as one `__init__.py` (the shape of a fixture case), and the drivers importing from it."""
        files = {f"{PACKAGE}/__init__.py": self.flat(drivers=False)}
        for driver in self.drivers:
            files[f"{driver.label}.py"] = _driver_text(driver, flat=True)
        return files


def _flat_alias(line: str) -> str:
    """In one file, a relative import under another name binds that name to what is already defined there."""
    match = re.fullmatch(r"from \.(\w*) import (\w+) as (\w+)", line)
    if match is None:
        return line
    source, name, alias = match.groups()
    if not source:  # `from . import m0 as m0_module`: the module is this file now
        return f"{alias} = __import__('sys').modules[__name__]"
    return f"{alias} = {name}"


def _driver_text(driver: Driver, function: str = "run", flat: bool = False) -> str:
    names: dict[str, list[str]] = {}
    for module, name in driver.imports:
        names.setdefault("" if flat else module, []).append(name)
    head = ["import torch", "import torch.nn.functional as F", "from torch import nn"]
    head += [f"from {PACKAGE}{'.' + m if m else ''} import {', '.join(sorted(set(n)))}"
             for m, n in sorted(names.items())]
    body = textwrap.indent(driver.body.strip(), "    ")
    return "\n".join(head) + f"\n\n\ndef {function}():\n    torch.manual_seed(0)\n{body}\n"


class Builder:
    """The program under construction: modules, fresh names, models for usage templates, drivers."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seed = seed
        rng = self.rng
        count = rng.randint(2, 4)
        self.modules = [
            Module(name=f"m{i}", torch=rng.choice(["torch", "torch", "th"]),
                   no_grad=rng.choice([None, None, "no_grad", "ng"]))
            for i in range(count)
        ]
        self.counter = 0
        self.models: list[Model] = []
        self.drivers: list[Driver] = []
        self.exports: list[tuple[str, str]] = []

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}{self.counter}"

    def pair(self) -> tuple[int, int]:
        lo = self.rng.randrange(len(self.modules))
        return lo, self.rng.randrange(lo, len(self.modules))

    def put(self, where: int, code: str, uses: tuple[tuple[int, str], ...] = (), **names: str) -> None:
        """Add `code` (a template: $T, $DECO, $WITH, ... and `names`) to module `where`."""
        module = self.modules[where]
        for source, name in uses:
            if source != where:
                module.imports.setdefault(self.modules[source].name, []).append(name)
        spelling = module.spelling(self.rng)
        names = {key: Template(value).safe_substitute(spelling) for key, value in names.items()}
        text = Template(textwrap.dedent(code).strip()).substitute(**spelling, **names)
        module.blocks.append(text)

    def driver(self, body: str, uses: tuple[tuple[int, str], ...], external: bool = False, **names: str) -> None:
        imports = []
        for where, name in uses:
            if self.rng.random() < 0.3:
                self.exports.append((self.modules[where].name, name))
                imports.append(("", name))
            else:
                imports.append((self.modules[where].name, name))
        label = f"drive_{len(self.drivers)}"
        text = Template(textwrap.dedent(body).strip()).substitute(**names)
        self.drivers.append(Driver(label, text, imports, external))

    def build(self) -> Program:
        return Program(self.seed, self.modules, self.drivers, sorted(set(self.exports)))


# ---------------------------------------------------------------------------
# Model templates

OPS = {
    "soft": ["{h} @ {r}", "{r} @ {h}", "$T.matmul({h}, {r})", "$T.einsum('ij,jk->ik', {h}, {r})",
             "$T.bmm({h}.unsqueeze(0), {r}.unsqueeze(0)).squeeze(0)", "{h} * {r}", "{h} / {r}", "{h} + {r}",
             "{h} - {r}", "$T.cat([{h}, {r}], 0)", "F.linear({h}, {r})", "{h} * {r}.sum()", "{h} + {r} * 2.0",
             "({h} * 1).mul_({r})", "({h} * 1).add_({r})"],
    "mask": ["{h}.masked_fill({r}, 0.0)", "$T.where({r}, {h}, {h} * 0.5)", "{h} * {r}", "{h} + {r}",
             "({h} * 1).masked_fill_({r}, 0.0)"],
    "idx": ["{h}[{r}]", "{h}.index_select(0, {r})", "$T.gather({h}, 1, {r}.unsqueeze(1))", "{h} + {r}"],
}
COMPUTE = {"soft": "$T.softmax({s} @ {s}.t(), -1)", "mask": "{s} > 0", "idx": "{s}.argmax(-1)"}
PACK = {  # how a region's tensor `r` leaves (pack) and is read back from `v` (unpack)
    "direct": ("{r}", "{v}"),
    "tuple": ("({r}, {r}.shape[0])", "{v}[0]"),
    "dict": ('{{"attn": {r}}}', '{v}["attn"]'),
    "list": ("[{r}]", "{v}[0]"),
}


def model_attention(b: Builder) -> None:
    """A region's tensor meets a parameter or an activation in forward, by one of many routes."""
    rng = b.rng
    lo, hi = b.pair()
    cls, box, prep = b.fresh("Attn"), b.fresh("Box"), b.fresh("prep")
    produce = rng.choice(list(OPS))
    op = rng.choice(OPS[produce])
    via_module = rng.random() < 0.4
    source = "self.q({t})" if via_module else "{t}"
    h_lines = rng.choice([  # the grad-carrying operand: a parameter, an activation, or a tensor filled with one
        [f"h = {rng.choice(['self.w', 'self.enc(x)', 'self.enc(x).relu()'])}"],
        ["acts = []", "acts.append(self.enc(x))", "h = acts[0]"],
        ["h = $T.zeros(4, 4)", "h[0] = self.enc(x)[0]"],
    ])
    kind = rng.choice(["with", "method", "function", "lambda_with", "lambda_deco", "closure"])
    flow = rng.choice(["direct", "tuple", "dict", "list", "self_attr", "other_attr"])
    pack, unpack = PACK.get(flow, PACK["direct"])

    def compute(t: str, q: str = "self.q") -> str:
        return COMPUTE[produce].format(s=source.format(t=t).replace("self.q", q))

    region: list[str] = []
    extra: list[str] = []
    uses: list[tuple[int, str]] = []
    if kind == "with":
        region = ["$WITH", f"    r = {compute('x')}"]
        if flow == "self_attr":
            region.append("    self.last = r")
            read = "self.last"
        elif flow == "other_attr":
            region.append("    self.box.value = r")
            read = "self.box.value"
        else:
            region.append(f"    v = {pack.format(r='r')}")
            read = unpack.format(v="v")
    elif kind in ("method", "lambda_deco"):
        body = [f"    r = {compute('x')}"]
        if kind == "lambda_deco":
            body = [f"    f = lambda t: {compute('t')}", "    r = f(x)"]
        if flow == "self_attr":
            body.append("    self.last = r")
            read = "self.last"
        elif flow == "other_attr":
            body.append("    self.box.value = r")
            read = "self.box.value"
        else:
            body.append(f"    return {pack.format(r='r')}")
            read = unpack.format(v="v")
        extra = ["$DECO", f"def {prep}(self, x):", *body]
        region = [f"v = self.{prep}(x)"]
    elif kind == "function":
        arg = ", self.q" if via_module else ""
        body = [f"    r = {compute('x', 'q')}"]
        if flow in ("self_attr", "other_attr"):
            body.append("    holder.value = r")
            read = "self.box.value"
        else:
            body.append(f"    return {pack.format(r='r')}")
            read = unpack.format(v="v")
        params = "x" + (", q" if via_module else "") + (", holder" if flow in ("self_attr", "other_attr") else "")
        b.put(lo, "$DECO\ndef $P($A):\n" + "\n".join(body), P=prep, A=params)
        uses.append((lo, prep))
        call = f"{prep}(x{arg}" + (", self.box)" if flow in ("self_attr", "other_attr") else ")")
        region = [f"v = {call}"]
    elif kind == "lambda_with":
        inside = rng.random() < 0.6
        region = ["$WITH", f"    f = lambda t: {compute('t')}"]
        region += ["    r = f(x)"] if inside else []
        region += [] if inside else ["r = f(x)"]
        read = "r"
    else:  # closure
        extra = [f"def make_{prep}(self):", "    q = self.q", "", "    $DECO", "    def inner(t):",
                 f"        return {compute('t', 'q')}", "", "    return inner"]
        region = [f"r = self.make_{prep}()(x)"]
        read = "r"
    combined = op.format(h="h", r=read)
    if rng.random() < 0.3:  # the op lives in a helper of another module
        mix = b.fresh("mix")
        b.put(lo, "def $MIX(h, r):\n    return $OP", MIX=mix, OP=op.format(h="h", r="r"))
        uses.append((lo, mix))
        combined = f"{mix}(h, {read})"
    forward = ["def forward(self, x):", *("    " + line for line in h_lines), *("    " + line for line in region),
               f"    return {combined}"]
    lines = ["class $BOX:", "    value = None", "", "", "class $CLS(nn.Module):", "    def __init__(self):",
             "        super().__init__()", "        self.enc = nn.Linear(4, 4)", "        self.q = nn.Linear(4, 4)",
             "        self.w = nn.Parameter($T.randn(4, 4) * 0.3)", "        self.box = $BOX()",
             "        self.last = None"]
    for method in (forward, extra):
        if method:
            lines += ["", *("    " + line if line else "" for line in method)]
    b.put(hi, "\n".join(lines), uses=tuple(uses), BOX=box, CLS=cls)
    b.models.append(Model(cls, hi))
    inference_drivers(b, Model(cls, hi))


def model_entry(b: Builder) -> None:
    """Public grad-on methods: an embedding, and a loss computed and returned under a name unlike "loss"."""
    rng = b.rng
    where = rng.randrange(len(b.modules))
    cls = b.fresh("Encoder")
    embed = rng.choice(["embed", "encode", "features", "speaker_embedding", "extract"])
    lossy = rng.choice(["forward_dpo", "step_fn", "F0Ntrain", "compute_objective", "score_pair", "train_step"])
    objective = rng.choice(["((out - y) ** 2).mean()", "F.mse_loss(out, y)", "(out * y).mean()",
                            "F.l1_loss(out, y) + 0.1 * out.pow(2).mean()"])
    b.put(where, """
        class $CLS(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Linear(4, 4)
                self.head = nn.Linear(4, 4)

            def forward(self, x):
                return self.head(self.enc(x))

            def $EMBED(self, x):
                return self.enc(x).tanh()

            def $LOSSY(self, x, y):
                out = self.head(self.enc(x))
                return $OBJ
        """, CLS=cls, EMBED=embed, LOSSY=lossy, OBJ=objective)
    model = Model(cls, where)
    b.models.append(model)
    names = {"C": cls, "E": embed, "L": lossy}
    uses = ((where, cls),)
    choices = [
        ("m = $C()\nreturn {'e0': m.$E(torch.randn(4, 4)), 'e1': m.$E(torch.randn(4, 4))}", False),
        ("m = $C()\nwith torch.no_grad():\n    e = m.$E(torch.randn(4, 4))\nreturn {'e': e}", False),
        ("m = $C()\nhead = nn.Linear(4, 2)\nopt = torch.optim.SGD(head.parameters(), lr=0.1)\n"
         "e = m.$E(torch.randn(4, 4))\nl = head(e).pow(2).mean()\nl.backward()\nopt.step()\n"
         "return {'l': l.detach(), 'grad.head': head.weight.grad}", True),
        ("m = $C()\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\nx, y = torch.randn(4, 4), torch.randn(4, 4)\n"
         "l = m.$L(x, y)\nl.backward()\nopt.step()\nreturn {'l': l.detach(), " + GRADS.replace("$M", "m") + "}",
         True),
        ("m = $C()\nm.forward = m.$L\nx, y = torch.randn(4, 4), torch.randn(4, 4)\nl = m(x, y)\nl.backward()\n"
         "return {'l': l.detach(), " + GRADS.replace("$M", "m") + "}", True),
        ("m = $C()\nsetattr(m, 'forward', m.$L)\nl = m(torch.randn(4, 4), torch.randn(4, 4))\nl.backward()\n"
         "return {'l': l.detach(), " + GRADS.replace("$M", "m") + "}", True),
        ("m = $C()\ne = m.$E(torch.randn(4, 4))\ne.requires_grad_()\ne.sum().backward()\nreturn {'g': e.grad}", True),
        ("m = $C()\ne = m.$E(torch.randn(4, 4))\ne += 1\nreturn {'e': e}", True),
    ]
    for body, external in rng.sample(choices, rng.randint(2, 4)):
        b.driver(body, uses, external, **names)
    usage_trainer(b, model, lossy)
    if rng.random() < 0.5:
        usage_tuner(b, model, embed)


def model_cache(b: Builder) -> None:
    """A region's tensor kept in a cache that later calls update, in place or not."""
    rng = b.rng
    where = rng.randrange(len(b.modules))
    cls = b.fresh("Cached")
    update = rng.choice(["self.cache += f", "self.cache.add_(f)", "self.cache = self.cache + f",
                         "self.cache = $T.cat([self.cache, f])[-4:]", "self.cache.mul_(0.5).add_(f)"])
    first = rng.choice(["self.cache = f", "self.cache = f.clone()", "self.cache = f * 1.0"])
    region = rng.choice(["with", "deco"])
    if region == "with":
        body = "    def step(self, x):\n        $WITH\n            f = self.proj(x)\n"
    else:
        body = "    $DECO\n    def feats(self, x):\n        return self.proj(x)\n\n    def step(self, x):\n" \
               "        f = self.feats(x)\n"
    b.put(where, f"""
class $CLS(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.cache = None

{body}        if self.cache is None:
            {first}
        else:
            {update}
        return self.cache.sum(0)
""", CLS=cls)
    uses = ((where, cls),)
    b.driver("m = $C()\nouts = [m.step(torch.randn(4, 4)) for _ in range(3)]\n"
             "return {f'o{i}': o for i, o in enumerate(outs)}", uses, C=cls)
    if rng.random() < 0.5:
        b.driver("m = $C()\nwith torch.no_grad():\n    a = m.step(torch.randn(4, 4))\nb = m.step(torch.randn(4, 4))\n"
                 "return {'a': a, 'b': b}", uses, C=cls)


def model_library(b: Builder) -> None:
    """A grad-off region runs library code (`fzlib`, outside the project) that may keep a tensor it makes: a
    module's cache extended on demand, an `lru_cache`d tensor, or nothing; the module is made in `__init__` or
    injected by the driver. A training step then runs the same library code with autograd on."""
    rng = b.rng
    where = rng.randrange(len(b.modules))
    cls = b.fresh("Library")
    kind = rng.choice(["Scaled", "Scaled", "Plain", "window"])
    injected = kind != "window" and rng.random() < 0.5
    if kind == "window" or not injected:
        b.modules[where].libraries.add("fzlib")
    if kind == "window":
        run, train, init, ctor = "x * fzlib.window(4)", "self.enc(x) * fzlib.window(4)", "", "()"
    else:
        run, train = "self.lib(x)", "self.lib(self.enc(x))"
        init = "        self.lib = lib\n" if injected else f"        self.lib = fzlib.{kind}()\n"
        ctor = f"(fzlib.{kind}())" if injected else "()"
    if rng.random() < 0.5:
        preview = f"    $DECO\n    def preview(self, x):\n        return ({run}).sum(-1)\n"
    else:
        preview = f"    def preview(self, x):\n        $WITH\n            y = {run}\n        return y.sum(-1)\n"
    b.put(where, f"""
class $CLS(nn.Module):
    def __init__(self{', lib' if injected else ''}):
        super().__init__()
        self.enc = nn.Linear(4, 4)
{init}
{preview}
    def forward(self, x):
        return {train}
""", CLS=cls)
    b.driver(("import fzlib\n" if injected else "") +
             f"m = $C{ctor}\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\nx = torch.randn(4, 4)\n"
             "p = m.preview(x)\nl = m(x).pow(2).mean()\nl.backward()\nopt.step()\n"
             "return {'p': p, 'l': l.detach(), " + GRADS.replace("$M", "m") + "}", ((where, cls),), C=cls)


def model_conv(b: Builder) -> None:
    """A rank-4 or rank-5 convolution stack, fed batched and unbatched inputs, trained and run."""
    rng = b.rng
    where = rng.randrange(len(b.modules))
    cls = b.fresh("ConvStack")
    rank5 = rng.random() < 0.3
    conv = "nn.Conv3d" if rank5 else "nn.Conv2d"
    size = "3, 3, 3" if rank5 else "5, 5"
    tail = rng.choice(["return y", "return y.flatten(1)", "return y.mean(dim=(-2, -1))", "return y.relu() + 1.0",
                       "return y.reshape(y.shape[0], -1)"])
    region = rng.random() < 0.5
    b.put(where, f"""
        class $CLS(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = {conv}(2, 3, 3, padding=1)
                self.act = nn.ReLU()
                self.c2 = {conv}(3, 2, 3, padding=1)

            def forward(self, x):
                y = self.c2(self.act(self.c1(x)))
                {tail}
        """ + ("""
            $DECO
            def probe(self, x):
                return self.forward(x)
        """ if region else ""), CLS=cls)
    model = Model(cls, where, f"torch.randn(2, 2, {size})")
    b.models.append(model)
    uses = ((where, cls),)
    b.driver(f"m = $C()\nreturn {{'batched': m(torch.randn(2, 2, {size})), 'one': m(torch.randn(1, 2, {size}))}}",
             uses, C=cls)
    if not tail.endswith("flatten(1)") and "shape[0]" not in tail:
        b.driver(f"m = $C()\nreturn {{'unbatched': m(torch.randn(2, {size}))}}", uses, C=cls)
    if region:
        b.driver(f"m = $C()\nreturn {{'p': m.probe(torch.randn(2, 2, {size}))}}", uses, C=cls)
    b.driver(f"m = $C()\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
             f"l = m(torch.randn(2, 2, {size})).pow(2).mean()\nl.backward()\nopt.step()\n"
             "return {'l': l.detach(), " + GRADS.replace("$M", "m") + "}", uses, True, C=cls)


def model_gan(b: Builder) -> None:
    """A GAN whose discriminator turn makes the generator's output grad-off and `.detach()`es it."""
    rng = b.rng
    lo, hi = b.pair()
    gen, disc, gan = b.fresh("Gen"), b.fresh("Disc"), b.fresh("Gan")
    detach = rng.choice(["fake = fake.detach()", "fake = fake.clone()", "fake = fake * 1.0", "pass"])
    b.put(lo, """
        class $GEN(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Linear(4, 4)

            def forward(self, z):
                return self.net(z).tanh()


        class $DISC(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Linear(4, 1)

            def forward(self, x):
                return self.net(x)
        """, GEN=gen, DISC=disc)
    b.put(hi, """
        class $GAN(nn.Module):
            def __init__(self, generator, discriminator):
                super().__init__()
                self.generator = generator
                self.discriminator = discriminator

            def forward_discriminator(self, z, real):
                $WITH
                    fake = self.generator(z)
                $DETACH
                return self.discriminator(fake).mean() - self.discriminator(real).mean()

            def d_turn(self, opt, z, real):
                opt.zero_grad()
                objective = self.forward_discriminator(z, real)
                objective.backward()
                opt.step()
                return objective.detach()
        """, uses=((lo, gen), (lo, disc)), GAN=gan, DETACH=detach)
    uses = ((hi, gan), (lo, gen), (lo, disc))
    b.driver("g = $GAN($GEN(), $DISC())\nopt = torch.optim.SGD(g.discriminator.parameters(), lr=0.1)\n"
             "z, real = torch.randn(4, 4), torch.randn(4, 4)\na = g.d_turn(opt, z, real)\nb = g.d_turn(opt, z, real)\n"
             "return {'a': a, 'b': b, " + GRADS.replace("$M", "g.discriminator") + "}", uses, GAN=gan, GEN=gen,
             DISC=disc)
    b.driver("g = $GAN($GEN(), $DISC())\nreturn {'d': g.forward_discriminator(torch.randn(4, 4), torch.randn(4, 4))}",
             uses, GAN=gan, GEN=gen, DISC=disc)


def model_recursion(b: Builder) -> None:
    """A bounded self- or mutually recursive refinement whose grad-off step feeds the next level."""
    rng = b.rng
    where = rng.randrange(len(b.modules))
    cls, fn, other = b.fresh("Refiner"), b.fresh("refine"), b.fresh("polish")
    nxt = rng.choice(["y", "y + x", "$T.tanh(y)", "y.detach()", "y * 0.5"])
    mutual = rng.random() < 0.5
    callee = other if mutual else fn
    code = """
        def $FN(model, x, depth):
            if depth == 0:
                return model(x)
            $WITH
                y = model(x)
            return $CALLEE(model, $NEXT, depth - 1)
        """
    if mutual:
        code += """

        def $OTHER(model, x, depth):
            return $FN(model, x, depth)
        """
    b.put(where, code, FN=fn, OTHER=other, CALLEE=callee, NEXT=nxt)
    through_class = rng.random() < 0.6
    if through_class:
        b.put(where, """
            class $CLS(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lin = nn.Linear(4, 4)

                def forward(self, x):
                    return $FN(self.lin, x, 2)
            """, CLS=cls, FN=fn)
        b.models.append(Model(cls, where))
        inference_drivers(b, Model(cls, where))
    else:
        uses = ((where, fn),)
        b.driver("lin = nn.Linear(4, 4)\nout = $FN(lin, torch.randn(4, 4), 2)\nreturn {'out': out}", uses, FN=fn)
        b.driver("lin = nn.Linear(4, 4)\nout = $FN(lin, torch.randn(4, 4), 2)\nout.sum().backward()\n"
                 "return {'out': out.detach(), 'grad.w': lin.weight.grad}", uses, True, FN=fn)


def model_init(b: Builder) -> None:
    """A region in `__init__` that writes a parameter, then training and `load_state_dict`."""
    rng = b.rng
    where = rng.randrange(len(b.modules))
    cls = b.fresh("Init")
    write = rng.choice(["self.lin.weight.data = $T.eye(4) * 0.5", "self.lin.weight.copy_($T.eye(4) * 0.5)",
                        "self.lin.weight.data.copy_($T.eye(4) * 0.5)", "self.lin.bias.fill_(0.1)",
                        "self.lin.weight.mul_(0.5)", "self.scale = $T.ones(4) * 2.0"])
    b.put(where, """
        class $CLS(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
                self.scale = $T.ones(4)
                $WITH
                    $WRITE

            def forward(self, x):
                return self.lin(x) * self.scale
        """, CLS=cls, WRITE=write)
    model = Model(cls, where)
    b.models.append(model)
    uses = ((where, cls),)
    b.driver("m = $C()\nref = $C()\nm.load_state_dict(ref.state_dict())\nreturn {'y': m(torch.randn(4, 4))}", uses,
             C=cls)
    usage_trainer(b, model, None)


def model_requires_grad(b: Builder) -> None:
    """A region's tensor turned into a leaf that requires grad, for a saliency map."""
    where = b.rng.randrange(len(b.modules))
    cls = b.fresh("Saliency")
    b.put(where, """
        class $CLS(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Linear(4, 4)

            def saliency(self, x):
                $WITH
                    base = self.enc(x)
                base = base$COPY
                base.requires_grad_()
                score = (base * 2).sum()
                (g,) = $T.autograd.grad(score, base)
                return g
        """, CLS=cls, COPY=b.rng.choice(["", ".clone()", ".detach()"]))
    b.driver("m = $C()\nreturn {'g': m.saliency(torch.randn(4, 4))}", ((where, cls),), C=cls)


def model_reference(b: Builder) -> None:
    """A grad-off helper that callers in the package only reach grad-off, also handed out by a route the call
    graph does not show: an alias, a reflective lookup, a registry decorator, a default argument, a class
    attribute, a lambda, a generator, a class defined in a function; or a closure that captures a region's
    tensor. A driver trains through what the route gives."""
    rng = b.rng
    lo, hi = b.pair()
    make, peek, route = b.fresh("make"), b.fresh("peek"), b.fresh("route")
    value = rng.choice(["t * 2.0", "$T.tanh(t)", "t.relu() + 1.0", "F.softmax(t, -1)"])
    kind = rng.choice(["import_alias", "local", "attribute", "getattr", "getattr_name", "globals", "registry",
                       "default", "class_attribute", "lambda", "generator", "generator_expression", "local_class",
                       "closure"])
    get = f"{route}()"  # what the driver calls to get the helper (or, for `closure`, the scaling function)
    deco = ""
    if kind == "registry":
        registry, add = b.fresh("REGISTRY"), b.fresh("register")
        b.put(lo, "$REG = []\n\n\ndef $ADD(f):\n    $REG.append(f)\n    return f", REG=registry, ADD=add)
        deco = f"@{add}\n"
    if kind != "closure":
        result = "y"
        if rng.random() < 0.5:  # the helper itself meets a parameter after its region
            scale = b.fresh("SCALE")
            b.put(lo, "$S = nn.Parameter($T.ones(4, 4))", S=scale)
            result = f"y * {scale}"
        b.put(lo, deco + "def $MAKE(t):\n    $WITH\n        y = $VALUE\n    return $RESULT", MAKE=make, VALUE=value,
              RESULT=result)
        b.put(lo, "def $PEEK(t):\n    with $T.inference_mode():\n        return $MAKE(t).sum().item()",
              MAKE=make, PEEK=peek)
    here, uses = hi, ((lo, make),)
    mod = b.modules[lo].name
    if kind == "import_alias":
        code, uses = f"from .{mod} import $MAKE as {make}_alias\n\n\ndef $ROUTE():\n    return {make}_alias", ()
    elif kind == "local":
        code = "def $ROUTE():\n    fn = $MAKE\n    return fn"
    elif kind == "attribute":
        holder = b.fresh("Holder")
        code = f"class {holder}:\n    def __init__(self):\n        self.fn = $MAKE\n\n    def get(self):\n" \
               "        return self.fn\n\n\ndef $ROUTE():\n    return " + f"{holder}().get()"
    elif kind == "getattr":
        code, uses = f"from . import {mod} as {mod}_module\n\n\ndef $ROUTE():\n" \
                     f"    return getattr({mod}_module, \"$MAKE\")", ()
    elif kind == "getattr_name":
        code, uses = f"from . import {mod} as {mod}_module\n\n\ndef $ROUTE(name):\n" \
                     f"    return getattr({mod}_module, name)", ()
        get = f"{route}('{make}')"
    elif kind == "globals":
        here, uses, code = lo, (), "def $ROUTE():\n    return globals()[\"$MAKE\"]"
    elif kind == "registry":
        here, uses, code = lo, (), f"def $ROUTE():\n    return {registry}[-1]"
    elif kind == "default":
        code = "def $ROUTE(fn=$MAKE):\n    return fn"
    elif kind == "class_attribute":
        holder = b.fresh("Table")
        code = f"class {holder}:\n    fn = staticmethod($MAKE)\n\n\ndef $ROUTE():\n    return {holder}.fn"
    elif kind == "lambda":
        code = "def $ROUTE():\n    with $T.inference_mode():\n        return lambda t: $MAKE(t)"
    elif kind == "generator":
        gen = b.fresh("produce")
        code = f"def {gen}(ts):\n    for t in ts:\n        yield $MAKE(t)\n\n\ndef $ROUTE(t):\n" \
               f"    with $T.inference_mode():\n        return {gen}([t])"
        get = None
    elif kind == "generator_expression":
        code = "def $ROUTE(t):\n    with $T.inference_mode():\n        return ($MAKE(u) for u in [t])"
        get = None
    elif kind == "local_class":
        code = "def $ROUTE():\n    class Local:\n        def __call__(self, t):\n            return $MAKE(t)\n\n" \
               "    return Local()"
    else:  # closure: the region's tensor is captured by a function that runs later, with autograd on
        here, uses = lo, ()
        code = "def $ROUTE(t):\n    $WITH\n        y = $VALUE\n\n    def scale(w):\n        return y * w\n\n" \
               "    return scale"
    b.put(here, code, uses=uses, MAKE=make, ROUTE=route, VALUE=value)
    x = "torch.randn(4, 4)"
    # `map` calls what the route gave where the index cannot follow; a direct call it may resolve.
    call = rng.choice(["fn({x})", "next(map(fn, [{x}]))"]).format(x=x)
    take = f"y = next({route}({x}))" if get is None else (
        f"fn = {route}({x})\ny = {call.replace(x, 'w')}" if kind == "closure" else f"fn = {get}\ny = {call}")
    drive_uses = ((here, route),)
    b.driver("w = torch.ones(4, 4, requires_grad=True)\n" + take + "\nl = (y * w).sum()\nl.backward()\n"
             "return {'l': l.detach(), 'grad.w': w.grad}", drive_uses, True)
    if kind != "closure":
        b.driver(f"return {{'p': torch.tensor({peek}({x}))}}", ((lo, peek),))


def model_yield(b: Builder) -> None:
    """A generator that yields from inside a grad-off `with` block: its mode stays on in the loop that iterates
    it, and what that loop makes it trains on later."""
    rng = b.rng
    lo, hi = b.pair()
    batches, fit = b.fresh("batches"), b.fresh("fit")
    made = rng.choice(["$T.ones(4, 4) * 3.0", "y.detach().clone()", "y * 0.5"])
    b.put(lo, "def $GEN(xs):\n    $WITH\n        for x in xs:\n            yield x * 2.0", GEN=batches)
    b.put(hi, """
        def $FIT(xs, w):
            kept = []
            for y in $GEN(xs):
                kept.append($MADE)
            objective = (kept[0] * w).sum()
            objective.backward()
            return objective.detach()
        """, uses=((lo, batches),), GEN=batches, FIT=fit, MADE=made)
    b.driver("w = torch.ones(4, 4, requires_grad=True)\nl = $FIT([torch.randn(4, 4)], w)\n"
             "return {'l': l, 'grad.w': w.grad}", ((hi, fit),), FIT=fit)


def model_hidden_call(b: Builder) -> None:
    """A grad-off region whose only caller the package names runs grad-off, while a call the index cannot see
    trains through it: `part(x)` over `model.children()` (a value of unknown type) runs a module's `forward`,
    so does `map(part, ...)`; `table[i]` runs `__getitem__`, `table.scaled` a property. The region's tensor meets
    a parameter after it."""
    rng = b.rng
    lo, hi = b.pair()
    owner, fit = b.fresh("Owner"), b.fresh("fit")
    kind = rng.choice(["children", "map", "getitem", "property"])
    if kind in ("children", "map"):
        block = b.fresh("Block")
        b.put(lo, """
            class $BLOCK(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lin = nn.Linear(4, 4)

                def forward(self, x):
                    $WITH
                        s = x.abs().amax() + 1.0
                    return self.lin(x) / s


            class $OWNER(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.block = $BLOCK()

                def peek(self, x):
                    $WITH2
                        return self.block(x).sum().item()
            """, BLOCK=block, OWNER=owner)
        b.put(hi, """
            def $FIT(owner, x):
                total = 0.0
                for part in list(owner.children()):
                    total = total + $CALL.sum()
                total.backward()
                return total.detach()
            """, FIT=fit, CALL="part(x)" if kind == "children" else "next(map(part, [x]))")
    else:
        read = "table[2]" if kind == "getitem" else "table.scaled"
        peek = "self.__getitem__(1)" if kind == "getitem" else "type(self).scaled.fget(self)"
        head = "def __getitem__(self, i):" if kind == "getitem" else "@property\n    def scaled(self):"
        b.put(lo, """
            class $OWNER(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.w = nn.Parameter($T.ones(4, 4))

                $HEAD
                    $WITH
                        s = self.w.detach().abs().amax() + 1.0
                    return self.w / s

                def peek(self, x):
                    $WITH2
                        return ($PEEK * x).sum().item()
            """, OWNER=owner, HEAD=head, PEEK=peek)
        b.put(hi, """
            def $FIT(table, x):
                total = ($READ * x).sum()
                total.backward()
                return total.detach()
            """, FIT=fit, READ=read)
    b.driver("o = $O()\nx = torch.randn(4, 4)\np = torch.tensor(o.peek(x))\nl = $FIT(o, x)\n"
             "return {'p': p, 'l': l, " + GRADS.replace("$M", "o") + "}", ((lo, owner), (hi, fit)), O=owner, FIT=fit)


def model_partly_resolved_call(b: Builder) -> None:
    """A module reached by a call whose value the index resolves only in part trains through a grad-off
    region that the package calls grad-off: one branch of `a if c else b`, one of two assignments to a local or
    to an attribute, a parameter annotated `nn.Module`, an attribute a subclass sets (the other part is a value
    of unknown type: `owner.get_submodule(...)`), or the local that a loop rotating three of them (`a, b, c =
    b, c, a`) hands the module to. The region's tensor meets a parameter after it."""
    rng = b.rng
    lo, hi = b.pair()
    block, other, owner, fit = b.fresh("Block"), b.fresh("Other"), b.fresh("Owner"), b.fresh("fit")
    kind = rng.choice(["ifexp", "reassign", "attribute", "annotated", "subclass", "loop"])
    base = b.fresh("Base") if kind == "subclass" else "nn.Module"
    b.put(lo, """
        class $BLOCK(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)

            def forward(self, x):
                $WITH
                    s = x.abs().amax() + 1.0
                return self.lin(x) / s


        class $OTHER(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)

            def forward(self, x):
                return self.lin(x)
        """, BLOCK=block, OTHER=other)
    if kind == "subclass":
        b.put(lo, """
            class $BASE(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.route = $OTHER()

                def step(self, x):
                    return self.route(x)
            """, BASE=base, OTHER=other)
    b.put(lo, """
        class $OWNER($BASE):
            def __init__(self):
                super().__init__()
                self.block = $BLOCK()
                self.other = $OTHER()
                $ROUTE

            def pick(self):
                self.route = self.get_submodule("block")

            def peek(self, x):
                $WITH2
                    return self.block(x).sum().item()
        """, OWNER=owner, BASE=base, BLOCK=block, OTHER=other,
          ROUTE="self.route = self.block" if kind == "subclass" else "self.route = self.other")
    call = {
        "ifexp": "(owner.other if x.numel() > 99 else owner.get_submodule('block'))(x)",
        "reassign": "part(x)",
        "attribute": "owner.route(x)",
        "annotated": "owner(x)",
        "subclass": "owner.step(x)",
        "loop": "c(x)",
    }[kind]
    prepare = {
        "reassign": "part = owner.other\n    if x.numel() < 99:\n        part = owner.get_submodule('block')",
        "attribute": "owner.pick()",
        # `a.train()` first: the index reads `a`, and `b` and `c` on the way, before the call reads `c`.
        "loop": "a, b, c = owner.block, owner.other, owner.other\n    a.train()\n    for _ in range(1):\n"
                "        a, b, c = b, c, a",
    }.get(kind, "pass")
    b.put(hi, """
        def $FIT(owner$ANNOTATION, x):
            $PREPARE
            total = $CALL.sum()
            total.backward()
            return total.detach()
        """, FIT=fit, CALL=call, ANNOTATION=": nn.Module" if kind == "annotated" else "", PREPARE=prepare)
    argument = "o.block" if kind == "annotated" else "o"
    b.driver("o = $O()\nx = torch.randn(4, 4)\np = torch.tensor(o.peek(x))\nl = $FIT(" + argument + ", x)\n"
             "return {'p': p, 'l': l, " + GRADS.replace("$M", "o") + "}", ((lo, owner), (hi, fit)), O=owner, FIT=fit)


def model_unseen_store(b: Builder) -> None:
    """A grad-off region runs code the package does not name, which stores a tensor it makes on the module a
    training step then uses, or rebinds its parameter's data: `m.remember(x)` or `m(x)` on a helper's parameter
    that only an untyped factory fills (`method`, `call`); `m(x)` in a helper that the package calls with a
    harmless module and a reflective lookup hands the keeper (`lookup`); a grad-off method of the keeper, whose
    stored tensor the training step reads on an object of unknown type (`reader`) or that a method of its base
    class reads (`base_reader`); `__init__` of the keeper, run by `cls()` in a classmethod of its base called on
    the keeper (`classmethod`); `m.remember(x)` on a parameter annotated with the base, whose `remember` the
    keeper overrides (`annotated`); `m(x)` on a module that rebinds its weight's data (`rebind`: the weight
    stops training, its gradient stays None)."""
    rng = b.rng
    lo, hi = b.pair()
    base, keeper, plain = b.fresh("Base"), b.fresh("Keeper"), b.fresh("Plain")
    helper, fit = b.fresh("helper"), b.fresh("fit")
    kind = rng.choice(["method", "call", "lookup", "reader", "base_reader", "classmethod", "annotated", "rebind"])
    store = "self.lin.weight.data = self.lin.weight.data * 1.0" if kind == "rebind" else "self.memory = x * 2.0"
    made = "self.lin.weight.detach() * 2.0" if kind == "classmethod" else "$T.zeros(4, 4)"
    b.put(lo, """
        class $BASE(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)

            @classmethod
            def build(cls):
                return cls()

            def remember(self, x):
                return x

            def total(self, x):
                return (self.lin(x) * self.memory).sum()


        class $KEEPER($BASE):
            def __init__(self):
                super().__init__()
                $WITH
                    self.memory = $MADE

            def forward(self, x):
                $STORE
                return x

            def remember(self, x):
                self.memory = x * 2.0
                return x

            def refresh(self, x):
                $WITH
                    self.memory = x * 2.0
                return self.memory.sum().item()


        class $PLAIN(nn.Module):
            def forward(self, x):
                return x + 1.0


        def $HELPER(m$ANNOTATION, x):
            $WITH
                y = $CALL
            return y.sum().item()


        def peek(x):
            return $HELPER($PLAIN(), x)
        """.replace("peek(", f"{b.fresh('peek')}("), BASE=base, KEEPER=keeper, PLAIN=plain, HELPER=helper,
          STORE=store, MADE=made, CALL="m.remember(x)" if kind in ("method", "annotated") else "m(x)",
          ANNOTATION=f": {base}" if kind == "annotated" else "")
    mod = b.modules[lo].name
    take = {
        "method": f"keeper = make()\n    {helper}(keeper, x)",
        "annotated": f"keeper = make()\n    {helper}(keeper, x)",
        "call": f"keeper = make()\n    {helper}(keeper, x)",
        "rebind": f"keeper = make()\n    {helper}(keeper, x)",
        "lookup": f"keeper = make()\n    from . import {mod} as {mod}_module\n"
                  f"    getattr({mod}_module, name)(keeper, x)",
        "reader": "keeper = make()\n    keeper.refresh(x)",
        "base_reader": "keeper = make()\n    keeper.refresh(x)",
        "classmethod": "keeper = make.build()",
    }[kind]
    total = "keeper.total(x)" if kind == "base_reader" else "(keeper.lin(x) * keeper.memory).sum()"
    b.put(hi, """
        def $FIT(make, name, x):
            $TAKE
            total = $TOTAL
            total.backward()
            return total.detach(), keeper.lin.weight.grad
        """, uses=() if kind in ("lookup", "reader", "base_reader", "classmethod") else ((lo, helper),), FIT=fit,
          TAKE=take, TOTAL=total)
    b.driver("x = torch.randn(4, 4)\nl, g = $FIT($KEEPER, '$HELPER', x)\nreturn {'l': l, 'grad.lin': g}",
             ((lo, keeper), (hi, fit)), KEEPER=keeper, HELPER=helper, FIT=fit)


def _keeper_class(keeper: str) -> str:
    """A module with a weight and a tensor it keeps (`memory`), both of which a training step uses."""
    return textwrap.dedent(f"""\
        class {keeper}(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
                self.memory = $T.zeros(4, 4)""")


def _keeper_training(fit: str, mod: str, keeper: str, call: str) -> str:
    """`fit(x)`: builds the keeper, runs `call` (which reaches the region), then trains through both."""
    return textwrap.dedent(f"""\
        def {fit}(x):
            from . import {mod} as {mod}_module
            keeper = {mod}_module.{keeper}()
            {call}
            total = (keeper.lin(x) * keeper.memory).sum() + keeper.lin(x).sum()
            total.backward()
            return total.detach(), keeper.lin.weight.grad""")


def model_function_value(b: Builder) -> None:
    """A grad-off region calls a function value whose type the package does not know, and the function rebinds
    a weight's data (the weight stops training, its gradient stays None) or stores a tensor it makes on the
    module a training step then uses: a function a reflective lookup gives (`lookup`), a lambda the trainer
    passes (`lambda`), a function `map` calls (`map`), a function passed by name (`passed`), a function a
    holder of unknown type keeps in an attribute (`attribute`)."""
    rng = b.rng
    lo, hi = b.pair()
    keeper, apply, helper, holder, fit = (b.fresh(name) for name in ("Keeper", "apply", "helper", "Holder", "fit"))
    kind = rng.choice(["lookup", "lambda", "map", "passed", "attribute"])
    effect = rng.choice(["m.lin.weight.data = m.lin.weight.data * 1.0", "m.memory = x * 2.0"])
    call = {
        "lookup": "getattr(importlib.import_module(__name__), fn)(m, x)",
        "lambda": "fn(m, x)",
        "map": f"list(map({apply}, [m], [x]))",
        "passed": "fn(m, x)",
        "attribute": "fn.hook(m, x)",
    }[kind]
    b.put(lo, """
        import importlib


        $KEEPER_CLASS


        class $HOLDER:
            def __init__(self, hook):
                self.hook = hook


        def $APPLY(m, x):
            $EFFECT
            return x


        def $HELPER(m, fn, x):
            $WITH
                y = $CALL
            return x.sum().item()
        """, KEEPER_CLASS=_keeper_class(keeper), HOLDER=holder, APPLY=apply, HELPER=helper, EFFECT=effect, CALL=call)
    mod = b.modules[lo].name
    holder_of = b.fresh("holder_of")
    passed = {
        "lookup": f"'{apply}'",
        "lambda": f"lambda mm, xx: {mod}_module.{apply}(mm, xx)",
        "map": "None",
        "passed": f"{mod}_module.{apply}",
        "attribute": f"{holder_of}({mod}_module.{holder}, {mod}_module.{apply})",
    }[kind]
    b.put(hi, """
        def $HOLDER_OF(kind, hook):
            return kind(hook)


        $FIT
        """, HOLDER_OF=holder_of, FIT=_keeper_training(fit, mod, keeper, f"{mod}_module.{helper}(keeper, {passed}, x)"))
    b.driver("x = torch.randn(4, 4)\nl, g = $FIT(x)\nreturn {'l': l, 'grad.lin': g}", ((hi, fit),), FIT=fit)


def model_implicit_code(b: Builder) -> None:
    """A grad-off region uses a value made outside it, and Python runs code there that the region does not name,
    which rebinds a weight's data or stores a tensor it makes on the module a training step then uses: iterating
    it (by `for`, `list(...)`, `enumerate(...)`, `[*...]` or unpacking) runs a generator function's body
    (`generator`), a generator expression's elements (`genexp`) or an object's `__iter__` (`iter_object`);
    `holder[0]`, `holder + x`, `len(holder)`, `if holder:`, `with holder:` or `holder.first` run a special
    method or a property of the object (`special`)."""
    rng = b.rng
    lo, hi = b.pair()
    keeper, apply, steps, walker, helper, fit = (
        b.fresh(name) for name in ("Keeper", "apply", "steps", "Walker", "helper", "fit"))
    source = rng.choice(["generator", "genexp", "iter_object", "special", "special"])
    effect = rng.choice(["m.lin.weight.data = m.lin.weight.data * 1.0", "m.memory = x * 2.0"])
    if source == "special":
        use = rng.choice(["y = items[0]", "y = items + x", "y = len(items)", "if items:\n    pass",
                          "with items:\n    pass", "y = items.first"])
    else:
        use = rng.choice(["for y in items:\n    pass", "y = list(items)", "for i, y in enumerate(items):\n    pass",
                          "y = [*items]", "y, = items"])
    b.put(lo, """
        $KEEPER_CLASS


        def $APPLY(m, x):
            $EFFECT
            return x


        def $STEPS(m, x):
            $APPLY(m, x)
            yield x


        class $WALKER:
            def __init__(self, m, x):
                self.m, self.x = m, x

            def __iter__(self):
                yield $APPLY(self.m, self.x)

            def __getitem__(self, i):
                return $APPLY(self.m, self.x)

            def __add__(self, other):
                return $APPLY(self.m, self.x) + other

            def __len__(self):
                $APPLY(self.m, self.x)
                return 1

            def __enter__(self):
                return $APPLY(self.m, self.x)

            def __exit__(self, *exc):
                return False

            @property
            def first(self):
                return $APPLY(self.m, self.x)


        def $HELPER(items, x):
            $WITH
                $USE
            return x.sum().item()
        """, KEEPER_CLASS=_keeper_class(keeper), APPLY=apply, STEPS=steps, WALKER=walker, HELPER=helper,
          EFFECT=effect, USE=use.replace("\n", "\n        "))
    mod = b.modules[lo].name
    made = {
        "generator": f"{mod}_module.{steps}(keeper, x)",
        "genexp": f"({mod}_module.{apply}(keeper, x) for _ in range(1))",
        "iter_object": f"{mod}_module.{walker}(keeper, x)",
        "special": f"{mod}_module.{walker}(keeper, x)",
    }[source]
    b.put(hi, "$FIT", FIT=_keeper_training(fit, mod, keeper, f"{mod}_module.{helper}({made}, x)"))
    b.driver("x = torch.randn(4, 4)\nl, g = $FIT(x)\nreturn {'l': l, 'grad.lin': g}", ((hi, fit),), FIT=fit)


# ---------------------------------------------------------------------------
# Usage templates: wrap a model the program already has


def inference_drivers(b: Builder, model: Model) -> None:
    uses = ((model.module, model.cls),)
    x = model.make_input
    b.driver(f"m = $C{model.ctor}\ny1 = m({x})\ny2 = m({x})\nreturn {{'y1': y1, 'y2': y2}}", uses, C=model.cls)
    if b.rng.random() < 0.5:
        b.driver(f"m = $C{model.ctor}\nwith torch.no_grad():\n    y = m({x})\nreturn {{'y': y}}", uses, C=model.cls)
    if b.rng.random() < 0.5:
        b.driver(f"m = $C{model.ctor}\nopt = torch.optim.Adam(m.parameters(), lr=0.01)\nfor _ in range(2):\n"
                 f"    opt.zero_grad()\n    l = m({x}).pow(2).mean()\n    l.backward()\n    opt.step()\n"
                 "return {'l': l.detach(), " + GRADS.replace("$M", "m") + "}", uses, True, C=model.cls)


def usage_trainer(b: Builder, model: Model, lossy: str | None) -> None:
    """A trainer in the package, its model and optimizer injected without annotations."""
    rng = b.rng
    where = rng.randrange(model.module, len(b.modules))
    cls = b.fresh("Trainer")
    step = rng.choice(["fit_batch", "update", "run_once", "optimize"])
    if lossy and rng.random() < 0.5:
        call = rng.choice([f"self.model.{lossy}(x, y)", "self.swap()(x, y)"])
        swap = f"\n\n    def swap(self):\n        self.model.forward = self.model.{lossy}\n        return self.model"
    else:
        call, swap = "((self.model(x) - y) ** 2).mean()", ""
    b.put(where, """
        class $CLS:
            def __init__(self, model, lr=0.1):
                self.model = model
                self.opt = $T.optim.SGD(model.parameters(), lr=lr)

            def $STEP(self, x, y):
                self.opt.zero_grad()
                objective = $CALL
                objective.backward()
                self.opt.step()
                return objective.detach()$SWAP
        """, CLS=cls, STEP=step, CALL=call, SWAP=swap)
    b.driver(f"m = $M{model.ctor}\nt = $C(m)\nx, y = {model.make_input}, torch.randn(4, 4)\n"
             "a = t.$S(x, y)\nb = t.$S(x, y)\nreturn {'a': a, 'b': b, " + GRADS.replace("$M", "m") + "}",
             ((model.module, model.cls), (where, cls)), M=model.cls, C=cls, S=step)


def usage_holder(b: Builder, model: Model) -> None:
    """The model reached through a dict-like holder (ModuleDict, dict, attribute dict, config), maybe a factory."""
    rng = b.rng
    where = rng.randrange(model.module, len(b.modules))
    cls, build, attrdict, config = b.fresh("Pipeline"), b.fresh("build"), b.fresh("AttrDict"), b.fresh("Config")
    public, train = rng.choice(["describe", "summarize", "inspect"]), rng.choice(["tune", "adapt", "fit_step"])
    holder, access = rng.choice([('nn.ModuleDict({"net": backbone})', 'self.parts["net"]'),
                                 ('{"net": backbone}', 'self.parts["net"]'),
                                 (f"{attrdict}(net=backbone)", "self.parts.net"),
                                 (f"{config}(net=backbone)", "self.parts.net")])
    combine = rng.choice(["p * self.scale", "p + self.scale", "self.scale * p.sum()"])
    b.put(where, """
        class $ATTRDICT(dict):
            def __getattr__(self, name):
                return self[name]


        class $CONFIG:
            def __init__(self, **parts):
                for key, value in parts.items():
                    setattr(self, key, value)


        def $BUILD(kind):
            return {"main": $MODEL}[kind]()


        class $CLS(nn.Module):
            def __init__(self, backbone):
                super().__init__()
                self.parts = $HOLDER
                self.scale = nn.Parameter($T.ones(()))

            def forward(self, x):
                return $ACCESS(x) * self.scale

            $DECO
            def preview(self, x):
                return $ACCESS(x)

            def refine(self, x):
                p = self.preview(x)
                return $COMBINE

            def $PUBLIC(self, x):
                return $ACCESS(x).sum(0)

            def $TRAIN(self, x, opt):
                opt.zero_grad()
                objective = self.forward(x).pow(2).mean()
                objective.backward()
                opt.step()
                return objective.detach()
        """, uses=((model.module, model.cls),), ATTRDICT=attrdict, CONFIG=config, BUILD=build, MODEL=model.cls,
          CLS=cls, HOLDER=holder, ACCESS=access, COMBINE=combine, PUBLIC=public, TRAIN=train)
    make = rng.choice([f"{build}('main')", f"{model.cls}{model.ctor}"])
    uses = ((where, cls), (where, build), (model.module, model.cls))
    x = model.make_input
    b.driver(f"net = {make}\np = $P(net)\nreturn {{'a': p.$PUB({x}), 'b': p.refine({x}), 'c': p({x})}}", uses,
             P=cls, PUB=public)
    b.driver(f"net = {make}\np = $P(net)\nopt = torch.optim.SGD(list(net.parameters()) + [p.scale], lr=0.1)\n"
             f"a = p.$TR({x}, opt)\nb = p.$TR({x}, opt)\n"
             "return {'a': a, 'b': b, 'grad.scale': p.scale.grad, " + GRADS.replace("$M", "net") + "}", uses,
             P=cls, TR=train)


def usage_distill(b: Builder, model: Model) -> None:
    """Distillation from a frozen teacher injected as an argument, the target made grad-off."""
    rng = b.rng
    where = rng.randrange(model.module, len(b.modules))
    cls = b.fresh("Distiller")
    objective = rng.choice(["((out - target) ** 2).mean()", "(out * target).mean()", "F.mse_loss(out, target)",
                            "F.kl_div(out.log_softmax(-1), target.softmax(-1), reduction='sum')",
                            "(out / (target.abs() + 1.0)).mean()"])
    b.put(where, """
        class $CLS(nn.Module):
            def __init__(self, student):
                super().__init__()
                self.student = student

            def distill_step(self, teacher, x, opt):
                $WITH
                    target = teacher(x)
                out = self.student(x)
                objective = $OBJ
                opt.zero_grad()
                objective.backward()
                opt.step()
                return objective.detach()
        """, CLS=cls, OBJ=objective)
    x = model.make_input
    b.driver(f"teacher = $M{model.ctor}\nteacher.eval()\nstudent = $M{model.ctor}\nd = $D(student)\n"
             f"opt = torch.optim.SGD(student.parameters(), lr=0.1)\na = d.distill_step(teacher, {x}, opt)\n"
             f"b = d.distill_step(teacher, {x}, opt)\n"
             "return {'a': a, 'b': b, " + GRADS.replace("$M", "student") + "}",
             ((model.module, model.cls), (where, cls)), M=model.cls, D=cls)


def usage_ema(b: Builder, model: Model) -> None:
    """An exponential moving average of a model's weights, updated grad-off, copied back for evaluation."""
    rng = b.rng
    where = rng.randrange(model.module, len(b.modules))
    cls = b.fresh("Ema")
    update = rng.choice(["self.shadow[k].mul_(self.decay).add_(v, alpha=1 - self.decay)",
                         "self.shadow[k] = self.shadow[k] * self.decay + v * (1 - self.decay)"])
    copy = rng.choice(["target.load_state_dict(self.shadow)",
                       "$WITH2\n            for k, p in target.state_dict().items():\n"
                       "                p.copy_(self.shadow[k])"])
    b.put(where, """
        class $CLS:
            def __init__(self, model, decay=0.9):
                self.model = model
                self.decay = decay
                self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

            $DECO
            def update(self):
                for k, v in self.model.state_dict().items():
                    $UPDATE

            def copy_to(self, target):
                $COPY

            def bump(self):
                for value in self.shadow.values():
                    value.add_(0.01)
        """, CLS=cls, UPDATE=update, COPY=copy)
    x = model.make_input
    bump = "ema.bump()\n" if rng.random() < 0.5 else ""
    b.driver(f"m = $M{model.ctor}\nema = $E(m)\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
             f"for _ in range(2):\n    opt.zero_grad()\n    m({x}).pow(2).mean().backward()\n    opt.step()\n"
             f"    ema.update()\n{bump}shadow = $M{model.ctor}\nema.copy_to(shadow)\n"
             f"l = shadow({x}).pow(2).mean()\nl.backward()\n"
             "return {'l': l.detach(), " + GRADS.replace("$M", "shadow") + "}",
             ((model.module, model.cls), (where, cls)), True, M=model.cls, E=cls)


def usage_tuner(b: Builder, model: Model, embed: str) -> None:
    """A head fine-tuned in the package on an embedding another model's public method returns."""
    where = b.rng.randrange(model.module, len(b.modules))
    cls = b.fresh("Tuner")
    b.put(where, """
        class $CLS:
            def __init__(self, backbone, head):
                self.backbone = backbone
                self.head = head
                self.opt = $T.optim.SGD(head.parameters(), lr=0.1)

            def fit(self, x, y):
                e = self.backbone.$EMBED(x)
                objective = ((self.head(e) - y) ** 2).mean()
                self.opt.zero_grad()
                objective.backward()
                self.opt.step()
                return objective.detach()
        """, CLS=cls, EMBED=embed)
    b.driver("head = nn.Linear(4, 2)\nt = $TU($M(), head)\nx, y = torch.randn(4, 4), torch.randn(4, 2)\n"
             "a = t.fit(x, y)\nb = t.fit(x, y)\nreturn {'a': a, 'b': b, 'grad.head': head.weight.grad}",
             ((model.module, model.cls), (where, cls)), TU=cls, M=model.cls)


USAGES = [usage_holder, usage_distill, usage_ema]
MODELS = [model_attention, model_attention, model_attention, model_entry, model_entry, model_cache, model_conv,
          model_gan, model_recursion, model_init, model_requires_grad, model_reference, model_reference,
          model_yield, model_hidden_call, model_partly_resolved_call, model_unseen_store, model_function_value,
          model_implicit_code, model_library]


def generate(seed: int) -> Program:
    """The program for `seed` (the same seed gives the same program)."""
    b = Builder(seed)
    for template in b.rng.sample(MODELS, b.rng.randint(2, 3)):
        template(b)
    flat = [m for m in b.models if m.make_input == "torch.randn(4, 4)"]
    for _ in range(b.rng.randint(0, 2) if flat else 0):
        b.rng.choice(USAGES)(b, b.rng.choice(flat))
    return b.build()
