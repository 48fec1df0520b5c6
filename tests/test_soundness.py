"""The soundness contract on tiny projects built from strings: one test per class of defect that broke
training on code nobody here wrote (issue 10), and the determinism of verdicts.

Each test states the verdict a user would read: status, and the part of the reason that names the thing
the analysis followed or could not resolve.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from chatterbox_codemod.analysis.index import MAX_UNSEEN_FUNCTIONS
from chatterbox_codemod.config import Config
from chatterbox_codemod.engine import DIFF, Options, run
from chatterbox_codemod.report import Status


def analyse(tmp_path: Path, files: dict[str, str], select=None, target: str = "", jobs: int = 1):
    root = tmp_path / "project"
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        header = HEADER if text.startswith(HEADER) else ""
        path.write_text(header + textwrap.dedent(text[len(header):]).lstrip())
    report = run(Options(paths=[str(root / target)], mode=DIFF, select=select, project_root=root, jobs=jobs))
    assert not report.errors, [e.render(str(e.path)) for e in report.errors]
    return report


def site(report, symbol: str, transform: str = "inference-mode"):
    found = [s for s in report.sites if s.symbol == symbol and s.transform == transform]
    assert len(found) == 1, [(s.symbol, s.transform, s.status) for s in report.sites]
    return found[0]


HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"


def test_activation_meets_region_tensor(tmp_path):
    """Class 8: not only parameters carry autograd; `h` is an activation computed from one."""
    report = analyse(tmp_path, {"m.py": HEADER + """
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Linear(4, 4)
            def forward(self, x, scores):
                h = self.enc(x)
                with torch.no_grad():
                    attn = scores.softmax(-1)
                return h.transpose(0, 1) @ attn
        """})
    found = site(report, "M.forward")
    assert (found.status, found.fixable) == (Status.UNSAFE, True)
    assert "reach `h.transpose(0, 1) @ attn` (an operand may require grad) at m.py:12" in found.reason


def test_region_tensor_with_grad_free_operands_is_safe(tmp_path):
    """The other side: a saving op whose other operand cannot require grad records nothing."""
    report = analyse(tmp_path, {"m.py": HEADER + """
        def score(x):
            with torch.no_grad():
                attn = x.softmax(-1)
            window = torch.hann_window(4)
            return (attn * window * 2).sum().item()
        """})
    assert site(report, "score").status == Status.APPLIED


def test_injected_module_of_unknown_type(tmp_path):
    """Class 1: a module injected through the constructor without an annotation and no call site."""
    report = analyse(tmp_path, {"gan.py": HEADER + """
        class GAN(nn.Module):
            def __init__(self, generator, discriminator):
                super().__init__()
                self.generator = generator
                self.discriminator = discriminator
            def forward_discriminator(self, x):
                with torch.no_grad():
                    fake = self.generator(x)
                return self.discriminator(fake.detach())
        """})
    found = site(report, "GAN.forward_discriminator")
    assert found.status == Status.UNSAFE
    assert "cannot resolve `self.discriminator(...)` at gan.py:12" in found.reason
    assert "check that call by hand" in found.reason


GAN_PACKAGE = {
    "gan/__init__.py": "",
    "gan/models.py": HEADER + """
        class Generator(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def forward(self, x):
                return self.lin(x)
        class Discriminator(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv1d(4, 1, 1)
            def forward(self, x):
                return self.conv(x)
        class HiFiGan(nn.Module):
            def __init__(self, generator, discriminator):
                super().__init__()
                self.generator = generator
                self.discriminator = discriminator
            def forward_discriminator(self, x):
                with torch.no_grad():
                    fake = self.generator(x)
                return self.discriminator(fake.detach())
        """,
}


def test_constructor_call_sites_type_the_attributes(tmp_path):
    """Precision from resolving more: `HiFiGan(Generator(), discriminator=Discriminator())` in a script types
    `self.discriminator`, so the value flow follows it into `Discriminator.forward`."""
    report = analyse(tmp_path, {**GAN_PACKAGE, "train.py": """
        from gan.models import Discriminator, Generator, HiFiGan
        gan = HiFiGan(Generator(), discriminator=Discriminator())
        """}, target="gan")
    found = site(report, "HiFiGan.forward_discriminator")
    assert found.status == Status.UNSAFE
    assert "`self.conv(...)` (torch.nn.Conv1d, a module with parameters)" in found.reason
    assert "passed to Discriminator.forward" in found.reason


def test_recursion_without_an_outside_caller_runs_with_autograd_on(tmp_path):
    """Class 2: a cycle nothing else calls is entered from outside, with autograd on."""
    report = analyse(tmp_path, {"r.py": HEADER + """
        class R(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def walk(self, x, n):
                if n == 0:
                    return self.lin(x)
                with torch.no_grad():
                    y = x * 2
                return self.walk(y, n - 1)
        """})
    found = site(report, "R.walk")
    assert found.status == Status.UNSAFE
    assert "R.walk is called only from its own call cycle, so it is assumed to run with autograd on" in found.reason


def test_loss_returning_method_swapped_in_is_never_decorated(tmp_path):
    """Class 3: `forward_dpo` computes a loss and is swapped in for `forward` by the training script."""
    report = analyse(tmp_path, {"lm.py": HEADER + """
        class LM(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def forward(self, x):
                return self.lin(x)
            def forward_dpo(self, x, y):
                out = self.lin(x)
                return {"l": F.mse_loss(out, y)}
            def train_step(self, x, y):
                return self.forward_dpo(x, y)
        """, "train.py": """
        import torch
        from lm import LM
        model = LM()
        model.forward = model.forward_dpo
        model(torch.randn(2, 4), torch.randn(2, 4))["l"].backward()
        """}, select=["entry-points"])
    dpo = site(report, "LM.forward_dpo", "entry-points")
    assert dpo.status == Status.UNSAFE and not dpo.rewritten
    assert "referenced as a value (`model.forward_dpo` at train.py:4)" in dpo.reason
    step = site(report, "LM.train_step", "entry-points")
    assert (step.status, step.fixable) == (Status.UNSAFE, False)
    assert "training code (returns what LM.forward_dpo returns, a loss)" in step.reason


def test_set_grad_enabled_keyword_and_positional_in_one_file(tmp_path):
    """Class 5: `mode=False` is read as grad off, so the file is stable and both sites convert."""
    report = analyse(tmp_path, {"k.py": HEADER + """
        def f(x):
            with torch.set_grad_enabled(mode=False):
                y = x * 2
            return y.sum().item()
        def g(x):
            with torch.set_grad_enabled(False):
                y = x * 3
            return y.sum().item()
        """})
    assert site(report, "f").status == site(report, "g").status == Status.APPLIED
    assert len(report.changed) == 1


def test_method_defined_twice_is_not_decorated(tmp_path):
    """Class 7: two definitions under an `if` are both reported, and the file stays stable."""
    report = analyse(tmp_path, {"t.py": HEADER + """
        import sys
        class T(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            if sys.version_info >= (3, 0):
                def embed(self, x):
                    return self.lin(x).sum().item()
            else:
                def embed(self, x):
                    return self.lin(x).sum().item()
        """}, select=["entry-points"])
    found = [s for s in report.sites if s.symbol == "T.embed"]
    assert [(s.status, s.rewritten) for s in found] == [(Status.UNSAFE, False), (Status.UNSAFE, False)]
    assert "defined more than once" in found[0].reason


def test_modules_reached_through_a_holder_of_unknown_type(tmp_path):
    """Class 9: `model.decoder.F0Ntrain(...)` on a Munch-like holder reaches every method of that name."""
    report = analyse(tmp_path, {"pkg/__init__.py": "", "pkg/model.py": HEADER + """
        class Predictor(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def F0Ntrain(self, x):
                return self.lin(x)
        """, "train.py": """
        import torch
        from munch import Munch
        from pkg.model import Predictor
        model = Munch(decoder=Predictor())
        model.decoder.F0Ntrain(torch.randn(2, 4)).sum().backward()
        """}, select=["entry-points"], target="pkg")
    found = site(report, "Predictor.F0Ntrain", "entry-points")
    assert found.status == Status.UNSAFE and not found.rewritten
    assert "reached from training code" in found.reason


def test_no_duplicate_inference_mode(tmp_path):
    """Class 10: a second grad-off item or decorator next to one that becomes inference mode stays as it is."""
    report = analyse(tmp_path, {"d.py": HEADER + """
        def h(x):
            with torch.no_grad(), torch.no_grad():
                y = x * 2
            return y.sum().item()
        @torch.no_grad()
        @torch.inference_mode()
        def k(x):
            return (x * 2).sum().item()
        """}, select=["inference-mode"])
    statuses = sorted((s.symbol, s.status) for s in report.sites)
    assert statuses == [("h", Status.APPLIED), ("h", Status.NOT_APPLICABLE), ("k", Status.NOT_APPLICABLE)]
    text = report.changed[0].rewritten.decode()
    assert "with torch.inference_mode(), torch.no_grad():" in text
    assert text.count("inference_mode()") == 2


def test_an_object_of_an_unknown_library_is_not_a_torch_module(tmp_path):
    """Class 11: a text normaliser from another library is no evidence of autograd work."""
    report = analyse(tmp_path, {"front.py": """
        from somelib import Normalizer
        class Front:
            def __init__(self):
                self.norm = Normalizer()
            def phonemize(self, text):
                return self.norm(text)
        """}, select=["entry-points"])
    assert report.sites == []


def test_lambda_in_a_with_region_is_scanned_like_under_a_decorator(tmp_path):
    """Class 4: the same lambda gives the same verdict in both spellings."""
    body = """
        class L(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            {decorator}
            def run(self, x):
                {opener}
                    f = lambda: setattr(self.lin.weight, "data", x)
                    self.lin.weight.data = x
                return f
        """
    verdicts = []
    for decorator, opener in (("@torch.no_grad()", "if True:"), ("", "with torch.no_grad():")):
        report = analyse(tmp_path, {"l.py": HEADER + body.format(decorator=decorator, opener=opener)})
        found = site(report, "L.run")
        verdicts.append((found.status, found.fixable))
        assert "rebinds parameter data (`self.lin.weight.data = ...`)" in found.reason
    assert verdicts == [(Status.UNSAFE, False), (Status.UNSAFE, False)]


def test_fine_tuning_script_next_to_the_package(tmp_path):
    """The fork's `adapt_step(s3gen, adapter, ...)`: argument types from `__main__`'s call site."""
    report = analyse(tmp_path, {"pkg/__init__.py": "", "pkg/model.py": HEADER + """
        class S3(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Linear(4, 4)
            def embed_ref(self, wav):
                return self.enc(wav)
        """, "finetune.py": """
        import torch
        from pkg.model import S3
        def adapt_step(s3gen, adapter, opt, wav):
            emb = s3gen.embed_ref(wav)
            loss = adapter(emb).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if __name__ == "__main__":
            adapter = torch.nn.Linear(4, 1)
            adapt_step(S3(), adapter, torch.optim.SGD(adapter.parameters(), 0.1), torch.randn(2, 4))
        """}, select=["entry-points"], target="pkg")
    found = site(report, "S3.embed_ref", "entry-points")
    assert found.status == Status.UNSAFE and not found.rewritten
    assert "returned by S3.embed_ref to adapt_step (finetune.py:4)" in found.reason


PERMUTED = {
    "pkg/__init__.py": "",
    "pkg/a.py": HEADER + """
        from .b import helper, Enc
        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = Enc()
            def embed(self, x):
                return helper(self.enc(x))
            def score(self, x):
                with torch.no_grad():
                    y = self.embed(x)
                return self.enc(y)
        """,
    "pkg/b.py": HEADER + """
        class Enc(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def forward(self, x):
                return ping(self.lin(x), 2)
        def ping(x, n):
            return pong(x, n) if n else x
        def pong(x, n):
            return ping(x * 2, n - 1)
        def helper(x):
            return x.mean(0)
        """,
}


def _top_level_defs_reversed(text: str) -> str:
    """The same module with its top-level classes and functions in reverse order."""
    import ast as python_ast

    tree = python_ast.parse(text)
    heads = [n for n in tree.body if not isinstance(n, (python_ast.ClassDef, python_ast.FunctionDef))]
    defs = [n for n in tree.body if isinstance(n, (python_ast.ClassDef, python_ast.FunctionDef))]
    return python_ast.unparse(python_ast.Module(body=heads + defs[::-1], type_ignores=[]))


def test_verdicts_do_not_depend_on_file_order_definition_order_or_jobs(tmp_path):
    """Class 6: the same project gives the same verdicts whatever the order it is read in, and the same
    reasons, word for word, whatever the order of its files (reordered definitions move the lines named)."""
    def verdicts(files, jobs, case):
        report = analyse(tmp_path / case, files, jobs=jobs)
        return sorted((s.transform, s.symbol, s.status, s.fixable) for s in report.sites)

    def reasons(files, case):
        return sorted((s.symbol, s.reason) for s in analyse(tmp_path / case, files, jobs=1).sites)

    (tmp_path / "base").mkdir()
    baseline = verdicts(PERMUTED, 1, "base")
    rng = random.Random(7)
    for case in range(4):
        names = list(PERMUTED)
        rng.shuffle(names)
        files = {name: PERMUTED[name] if case % 2 else _top_level_defs_reversed(
            HEADER + textwrap.dedent(PERMUTED[name][len(HEADER):]) if PERMUTED[name] else "") for name in names}
        (tmp_path / f"c{case}").mkdir()
        assert verdicts(files, 1 + case % 2, f"c{case}") == baseline
        if case % 2:
            (tmp_path / f"r{case}").mkdir()
            assert reasons(files, f"r{case}") == reasons(PERMUTED, "base")


CHOSEN_AT_RUN_TIME = HEADER + """
    class Residual(nn.Module):
        def __init__(self, channels, conv, activation):
            super().__init__()
            self.body = nn.Sequential(conv(channels, channels, 3, padding=1), activation())
        def forward(self, x):
            return self.body(x) + x
    class Autoencoder(nn.Module):
        def __init__(self, dims=2, gated=False):
            super().__init__()
            conv = nn.Conv2d if dims == 2 else nn.Conv1d
            activation = nn.SiLU if gated else nn.ReLU
            self.net = nn.Sequential(conv(1, 8, 3, padding=1), Residual(8, conv, activation))
        def forward(self, x):
            return self.net(x)
    @torch.no_grad()
    def log_mel(x):
        return torch.clamp(x, min=1e-5).log()
    """


def test_verdicts_do_not_depend_on_the_hash_seed(tmp_path):
    """Each process hashes `str` with its own PYTHONHASHSEED, so a set of names iterates in another order
    in every run. `conv(...)` with `conv = nn.Conv2d if dims == 2 else nn.Conv1d` was read as whichever
    class came out of the set last: `Residual` was an applied Conv2d stack in most processes and a Conv1d
    block in the others. A call that may run either library class is now unresolved (the block then
    counts what the class builds: both), and whole runs print the same bytes under any seed."""
    analyse(tmp_path, {**PERMUTED, "pkg/vae.py": CHOSEN_AT_RUN_TIME})
    root = tmp_path / "project"
    outputs = set()
    for seed in ("0", "1", "2", "3"):
        report = tmp_path / f"report-{seed}.json"
        done = subprocess.run(
            [sys.executable, "-m", "chatterbox_codemod", "apply", "--diff", "--no-cache", "--report", str(report),
             str(root)], capture_output=True, cwd=tmp_path, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 1, done.stderr.decode()  # `log_mel` would be rewritten
        residual = [s for s in json.loads(report.read_text())["sites"] if s["symbol"] == "Residual"]
        assert [(s["status"], s["reason"].split(":")[0]) for s in residual] == [
            ("not-applicable", "mixes Conv1d (rank 3) with Conv2d (rank 4)")]
        outputs.add((done.stdout, done.stderr, report.read_bytes()))
    assert len(outputs) == 1


def test_models_built_from_hyperpyyaml_configuration(tmp_path):
    """CosyVoice builds its GAN in YAML: `!new:` and `!ref` type the constructor's parameters."""
    report = analyse(tmp_path, {**GAN_PACKAGE, "conf/gan.yaml": """
        generator: !new:gan.models.Generator
        hifigan: !new:gan.models.HiFiGan
            generator: !ref <generator>
            discriminator: !new:gan.models.Discriminator
        """}, target="gan")
    found = site(report, "HiFiGan.forward_discriminator")
    assert found.status == Status.UNSAFE
    assert "passed to Discriminator.forward" in found.reason
    assert "`self.conv(...)` (torch.nn.Conv1d, a module with parameters)" in found.reason


def test_models_built_from_hydra_configuration(tmp_path):
    report = analyse(tmp_path, {**GAN_PACKAGE, "conf/model.yaml": """
        model:
          _target_: gan.models.HiFiGan
          generator:
            _target_: gan.models.Generator
          discriminator:
            _target_: gan.models.Discriminator
        """}, target="gan")
    found = site(report, "HiFiGan.forward_discriminator")
    assert "passed to Discriminator.forward" in found.reason


MAKE = HEADER + """
    def make(t):
        with torch.no_grad():
            y = t * 2
        return y
    def peek(t):
        with torch.inference_mode():
            return make(t).sum().item()
    """


def test_a_function_handed_out_under_another_name_may_be_called_from_anywhere(tmp_path):
    """Its only caller the index follows runs it under inference mode, but an alias passed on, a lookup by
    name, a default value, a class attribute or a registry decorator hands it to code that may call it with
    autograd on and train through what it returns."""
    registered = MAKE.replace(HEADER, HEADER + "    from b import register\n").replace(
        "\n    def make(t):", "\n    @register\n    def make(t):")
    routes = {
        "alias": (MAKE, "from a import make as build\ndef route(register):\n    register(build)\n",
                  "`build` at b.py:3"),
        "getattr": (MAKE, "import a\ndef route(name):\n    return getattr(a, name)\n", "`getattr(a, name)` at b.py:3"),
        "default": (MAKE, "from a import make\ndef route(fn=make):\n    return fn\n", "`make` at b.py:2"),
        "class": (MAKE, "from a import make\nclass Table:\n    fn = staticmethod(make)\n", "`make` at b.py:3"),
        "registry": (registered, "HOOKS = []\ndef register(f):\n    HOOKS.append(f)\n    return f\n",
                     "`register` at a.py:6"),
    }
    for name, (module, code, named) in routes.items():
        report = analyse(tmp_path / name, {"a.py": module, "b.py": code})
        found = site(report, "make")
        assert (found.status, found.fixable) == (Status.UNSAFE, True), name
        assert f"cannot resolve the callers of make: it is referenced as a value ({named})" in found.reason, name


def test_code_that_runs_later_runs_with_autograd_on(tmp_path):
    """A lambda made under inference mode, and a generator iterated after it returns, call `make` later, in
    whatever mode is on then; what `scale` reads from its region it reads whenever it is called."""
    report = analyse(tmp_path, {"a.py": MAKE + """
    def by_lambda(register):
        with torch.inference_mode():
            register(lambda t: make(t))
    def produce(ts):
        for t in ts:
            yield make(t)
    def evaluate(x):
        with torch.no_grad():
            y = x * 2
        def scale(w):
            return y * w
        return scale
    """})
    found = site(report, "make")
    assert found.status == Status.UNSAFE
    assert "become the result of the lambda at a.py:14 in by_lambda" in found.reason
    closure = site(report, "evaluate")
    assert closure.status == Status.UNSAFE
    assert "(read by evaluate.scale, defined at a.py:21) reach `y * w`" in closure.reason


def test_a_generator_a_call_runs_to_its_end_runs_where_the_call_is(tmp_path):
    """`tuple(...)` iterates its generator before it returns: `make` runs under inference mode there."""
    report = analyse(tmp_path, {"a.py": MAKE + """
    def many(ts):
        with torch.inference_mode():
            return [v.sum().item() for v in tuple(make(t) for t in ts)]
    """})
    assert site(report, "make").status == Status.APPLIED


def test_a_call_that_may_run_too_many_functions_is_not_followed_but_named(tmp_path):
    """Where the project hands out every function (`eval`), `fn(t)` in a region may run each of them that takes
    one argument: past `MAX_UNSEEN_FUNCTIONS` of them the region is `unsafe`, the call named, instead of
    following all of them; below it, they are followed (here none does anything a region may not), and what
    is left is that `eval` may give library code (`library`)."""
    def project(count: int) -> dict[str, str]:
        helpers = "".join(f"def helper_{i}(t):\n    return t + {i}\n" for i in range(count))
        return {"helpers.py": helpers, "a.py": HEADER + """
            def run(t, name):
                fn = eval(name)
                with torch.no_grad():
                    y = fn(t)
                return y.sum().item()
            """}
    report = analyse(tmp_path / "many", project(MAX_UNSEEN_FUNCTIONS + 10))
    found = site(report, "run")
    assert found.status == Status.UNSAFE
    assert found.reason == (
        f"`with torch.no_grad()` in run calls `fn(...)`, a value of unknown type that may be any of more than "
        f"{MAX_UNSEEN_FUNCTIONS} functions of the project (too many to follow; check by hand) at a.py:7 in run; "
        "inference mode cannot do that, so it is never rewritten.")
    report = analyse(tmp_path / "few", project(10))
    few = site(report, "run")  # followed into each helper, which is harmless; `eval` may give library code too
    assert (few.status, few.fixable, few.hazard) == (Status.UNSAFE, True, "library")
    assert "runs `fn(...)` at a.py:7 in run, a value of unknown type, which may be library code" in few.reason


def test_a_lookup_by_a_computed_name_on_an_unknown_object_may_be_any_function(tmp_path):
    """`getattr(obj, key)` on an object of unknown type may be `make`; the skip comment on its line is the
    user's word that it is not."""
    lookup = "def describe(obj, key):\n    return getattr(obj, key){}\n"
    report = analyse(tmp_path / "plain", {"a.py": MAKE, "b.py": lookup.format("")})
    found = site(report, "make")
    assert found.status == Status.UNSAFE
    assert "it is referenced as a value (`getattr(obj, key)` at b.py:2)" in found.reason
    assert report.notes == [
        "1 lookup by a name computed at run time, on an object of unknown type or through `eval`/`exec`, may hand "
        "out any function of the project, so no function's callers can be followed: b.py:2 `getattr(obj, key)`; "
        "mark such a line `# chatterbox-codemod: skip` if it hands out no function of the project "
        "(docs/soundness.md)"]
    report = analyse(tmp_path / "marked", {"a.py": MAKE, "b.py": lookup.format("  # chatterbox-codemod: skip")})
    assert site(report, "make").status == Status.APPLIED
    assert report.notes == []


BLOCK = HEADER + """
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
        def forward(self, x):
            with torch.no_grad():
                s = x.abs().amax() + 1
            return self.lin(x) / s
    class Owner(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
        @torch.no_grad()
        def peek(self, x):
            return self.block(x)
    """


def test_objects_python_or_a_library_calls_where_the_index_cannot_see(tmp_path):
    """`Block.forward`'s only named caller runs it grad-off, but training reaches it through a value of unknown
    type (`part(x)` over `children()`), through `map`, or `checkpoint`; `t[2]` runs `__getitem__` unnamed.
    Converted, each raises `Inference tensors cannot be saved for backward` in training."""
    routes = {
        "unknown": "def train(owner, x):\n    for part in list(owner.children()):\n        part(x).sum().backward()\n",
        "map": "def train(owner, x):\n    for part in list(owner.children()):\n"
               "        next(map(part, [x])).sum().backward()\n",
        "checkpoint": "import torch.utils.checkpoint\nfrom a import Block\ndef train(x):\n"
                      "    torch.utils.checkpoint.checkpoint(Block(), x).sum().backward()\n",
    }
    named = {"unknown": "may be called by `part(...)` (b.py:3), a call of a value whose type the analysis cannot "
                        "resolve",
             "map": "may be called by `map(...)` (b.py:3), which calls what it is handed",
             "checkpoint": "may be called by `torch.utils.checkpoint.checkpoint(...)` (b.py:4), which calls what it "
                           "is handed"}
    for name, code in routes.items():
        report = analyse(tmp_path / name, {"a.py": BLOCK, "b.py": code})
        found = site(report, "Block.forward")
        assert (found.status, found.fixable) == (Status.UNSAFE, True), name
        assert f"(Block.forward {named[name]}, so it is assumed to run with autograd on)" in found.reason, name
        assert "Inference tensors cannot be saved for backward" in found.reason, name
    fixture = Path(__file__).parent.parent / "fixtures/inference-mode/special_method_called_implicitly.in.py"
    report = analyse(tmp_path / "special", {"a.py": fixture.read_text()})
    found = site(report, "Table.__getitem__")
    assert found.status == Status.UNSAFE
    assert "(Table.__getitem__ is called by Python where the code does not name it (an operator, a subscript, " \
           "`with`, `for`, a property read), so it is assumed to run with autograd on)" in found.reason


def test_a_module_reached_by_a_value_resolved_only_in_part(tmp_path):
    """Training reaches `Block.forward` through a value the index resolves only in part: one branch of
    `a if c else b`, one of two assignments, an attribute a subclass sets, a parameter annotated `nn.Module`
    that nothing calls. Each was judged by its resolved part alone, called the site safe, and the rewritten
    training raised `Inference tensors cannot be saved for backward`."""
    owner = "from a import Block, Owner\nfrom torch import nn\nclass Other(nn.Module):\n" \
            "    def forward(self, x):\n        return x\n"
    routes = {
        "branch": owner + "def train(o: Owner, x, small):\n"
                          "    part = Other() if small else o.get_submodule('block')\n"
                          "    part(x).sum().backward()\n",
        "assignments": owner + "def train(o: Owner, x, small):\n    part = Other()\n    if not small:\n"
                               "        part = o.get_submodule('block')\n    part(x).sum().backward()\n",
        "subclass": owner + "class Base(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                            "        self.route = Other()\n    def step(self, x):\n        return self.route(x)\n"
                            "class Sub(Base):\n    def __init__(self):\n        super().__init__()\n"
                            "        self.route = Block()\n"
                            "def train(x):\n    Sub().step(x).sum().backward()\n",
        "annotated": owner + "def train(part: nn.Module, x):\n    part(x).sum().backward()\n",
    }
    for name, code in routes.items():
        report = analyse(tmp_path / name, {"a.py": BLOCK, "b.py": code})
        found = site(report, "Block.forward")
        assert (found.status, found.fixable) == (Status.UNSAFE, True), name
        assert "Inference tensors cannot be saved for backward" in found.reason, name
    assert "(Block.forward may be called by `part(...)` (b.py:8), a call of a value whose type the analysis " \
           "cannot resolve, so it is assumed to run with autograd on)" in site(
               analyse(tmp_path / "again", {"a.py": BLOCK, "b.py": routes["branch"]}), "Block.forward").reason


STRAIGHT_LINE = HEADER + """
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
        def replaced(self, x):
            with torch.no_grad():
                s = x.abs() + 1
            s = torch.ones(4, 4)
            return self.lin(x) * s
        def maybe_replaced(self, x, flag):
            with torch.no_grad():
                s = x.abs() + 1
            if flag:
                s = torch.ones(4, 4)
            return self.lin(x) * s
        def copied(self, x):
            with torch.no_grad():
                s = x.abs() + 1
            buf = torch.zeros(4, 4)
            buf[:, :2] = s[:, :2]
            return self.lin(x) * buf
        def held(self, x):
            with torch.no_grad():
                s = x.abs() + 1
            buf = [torch.zeros(4, 4)]
            buf[0] = s
            return self.lin(x) * buf[0]
    """


def test_a_name_assigned_again_and_a_tensor_written_into(tmp_path):
    """A name assigned again where nothing is skipped holds only the new value; one assigned again in a branch
    may still hold the region's tensor. Writing into a tensor `torch.zeros` made copies the values; writing into
    a list holds them. Every region converted and trained through, the rewrite raises exactly where the verdict
    is `unsafe`."""
    report = analyse(tmp_path, {"m.py": STRAIGHT_LINE})
    verdicts = {name: site(report, f"M.{name}").status for name in ("replaced", "maybe_replaced", "copied", "held")}
    assert verdicts == {"replaced": Status.APPLIED, "maybe_replaced": Status.UNSAFE, "copied": Status.APPLIED,
                        "held": Status.UNSAFE}
    assert "reach `self.lin(x) * s` (an operand may require grad)" in site(report, "M.maybe_replaced").reason
    assert "reach `self.lin(x) * buf[0]` (an operand may require grad)" in site(report, "M.held").reason
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "m.py").write_text(textwrap.dedent(STRAIGHT_LINE[len(HEADER):]).replace(
        "torch.no_grad()", "torch.inference_mode()"))
    (converted / "m.py").write_text(HEADER + (converted / "m.py").read_text())
    trained = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import torch, m
        model, x = m.M(), torch.randn(4, 4)
        for name, args in (("replaced", ()), ("maybe_replaced", (False,)), ("copied", ()), ("held", ())):
            try:
                getattr(model, name)(x, *args).sum().backward()
                print(name, "trains")
            except RuntimeError as exc:
                print(name, "raises", str(exc).split(".")[0])
        """)], cwd=converted, capture_output=True, text=True, check=True)
    assert trained.stdout.splitlines() == [
        "replaced trains", "maybe_replaced raises Inference tensors cannot be saved for backward", "copied trains",
        "held raises Inference tensors cannot be saved for backward"]


def test_each_transform_judges_the_code_the_whole_run_writes(tmp_path):
    """`summarize` (entry points, judged first) calls `Attn.prep`, which inference-mode converts: judged
    before that conversion it was unsafe, and the verification's second run, reading `prep` already under
    inference mode, found it safe, so the file was dropped as not stable. Judged again with the conversion
    in view, all three sites hold, and the run writes them."""
    report = analyse(tmp_path, {"a.py": HEADER + """
    class Box:
        value = None
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(4, 4)
            self.box = Box()
        def forward(self, x):
            h = self.enc(x)
            self.prep(x)
            return h + self.box.value
        @torch.no_grad()
        def prep(self, x):
            self.box.value = x > 0
    class Pipeline(nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.parts = nn.ModuleDict({"net": backbone})
        def summarize(self, x):
            return self.parts["net"](x).sum(0)
    def distill(teacher, x):
        with torch.no_grad():
            return teacher(x)
    """, "drive.py": "import torch\nfrom a import Attn, Pipeline\ndef run():\n"
                     "    return Pipeline(Attn()).summarize(torch.randn(4, 4))\n"})
    assert site(report, "Pipeline.summarize", "entry-points").status == Status.APPLIED
    # `teacher` is of unknown type: it may be library code that keeps what it makes.
    assert [(s.symbol, s.status, s.rewritten) for s in report.sites if s.transform == "inference-mode"] == [
        ("Attn.prep", Status.APPLIED, True), ("distill", Status.UNSAFE, False)]


def test_a_tensor_stored_on_an_object_of_unresolved_type_reaches_every_reader_of_that_attribute(tmp_path):
    """The region stores its tensor on `.buffer` of an object whose type the index does not resolve (a
    library object, a parameter nothing types); another method reads `.buffer` of the same object under
    another name and updates it in place with autograd on. Converted, that update raises; the store reached
    only the local name before, and a site of torch's FSDP (`init_flat_param_attributes`) was called safe."""
    code = HEADER + """
        import copy
        class Handle:
            def __init__(self, param):
                self.param = copy.copy(param)
            @torch.no_grad()
            def init(self, x):
                flat = self.param
                flat.buffer = torch.zeros_like(x) + x.abs()
            def refresh(self, x):
                self.param.buffer.add_(x)
        """
    report = analyse(tmp_path, {"m.py": code})
    found = site(report, "Handle.init")
    assert (found.status, found.fixable) == (Status.UNSAFE, True)
    assert "stored on `.buffer` of an object of unresolved type (m.py:" in found.reason


def test_iterating_what_may_run_too_many_functions_is_not_followed_but_named(tmp_path):
    """`for x in items:` in a region, `items` of unknown type, may run the body of every generator function of
    the project whose generators are made elsewhere (here kept in a list): past `MAX_UNSEEN_FUNCTIONS` of
    them the region is `unsafe`, the iteration named; below it they are followed (here none does anything a
    region may not)."""
    def project(count: int) -> dict[str, str]:
        steps = "".join(f"def steps_{i}(t):\n    yield t + {i}\n" for i in range(count))
        steps += "MADE = [" + ", ".join(f"steps_{i}(0)" for i in range(count)) + "]\n"
        return {"steps.py": steps, "a.py": HEADER + """
            def run(items):
                total = 0
                with torch.no_grad():
                    for t in items:
                        total += t.sum().item()
                return total
            """}
    report = analyse(tmp_path / "many", project(MAX_UNSEEN_FUNCTIONS + 10))
    found = site(report, "run")
    assert found.status == Status.UNSAFE
    assert found.reason == (
        f"`with torch.no_grad()` in run may run any of more than {MAX_UNSEEN_FUNCTIONS} functions of the project "
        "by iterating `items` (special methods, properties, generator bodies; too many to follow; check by hand) "
        "at a.py:7 in run; inference mode cannot do that, so it is never rewritten.")
    report = analyse(tmp_path / "few", project(10))
    assert site(report, "run").status == Status.APPLIED


def test_a_hazard_no_fix_can_make_safe_settles_the_verdict_and_is_named_first(tmp_path):
    """The region rebinds parameter data itself and calls code that builds a module: either refuses it, so
    the reason names its own hazard, the first, and the scan looks no further (no count of the rest). A
    region whose own code is harmless is judged by the first thing it runs that has such a hazard."""
    report = analyse(tmp_path, {"m.py": HEADER + """
        def rebuild(m):
            m.extra = nn.Linear(2, 2)

        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(2, 2)

            @torch.no_grad()
            def reset(self):
                self.lin.weight.data = torch.zeros(2, 2)
                rebuild(self)

            @torch.no_grad()
            def grow(self):
                rebuild(self)
        """})
    reset, grow = site(report, "M.reset"), site(report, "M.grow")
    assert (reset.status, reset.fixable, reset.hazard) == (Status.UNSAFE, False, "state")
    assert reset.reason == (
        "`@torch.no_grad()` on M.reset rebinds parameter data (`self.lin.weight.data = ...`): under inference mode "
        "the parameter would hold an inference tensor and silently stop receiving gradients (`.grad` stays None "
        "after `backward()`) at m.py:14 in M.reset; inference mode cannot do that, so it is never rewritten.")
    assert (grow.status, grow.fixable, grow.hazard) == (Status.UNSAFE, False, "state")
    assert grow.reason == ("`@torch.no_grad()` on M.grow builds a submodule (`m.extra = ...`) at m.py:5 in rebuild "
                           "(called from M.grow at m.py:19); inference mode cannot do that, so it is never rewritten.")


CACHING_LIBRARY = '''
import torch


class Scaled(torch.nn.Module):
    """Extends a cache on demand, as ESPnet's positional encodings do."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.scale = None

    def forward(self, x):
        if self.scale is None or self.scale.size(0) < x.size(0):
            self.scale = torch.full((x.size(0), 1), 2.0)
        return self.lin(x) * self.scale[: x.size(0)]
'''

TRAINS_A_LIBRARY_MODULE = HEADER + """
    from cachelib import Scaled


    def fit(steps):
        model = Scaled()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(2, 4)
        with torch.no_grad():
            print(model(x).shape)
        for _ in range(steps):
            model(x).sum().backward()
            opt.step()
        return "trains"


    def preview(model, x):
        with torch.no_grad():
            return model(x).sum().item()
    """


def test_library_code_a_region_runs_may_keep_the_tensors_it_makes(tmp_path):
    """Library code a region runs may keep what it makes there (a cache extended on demand): converted, that is
    an inference tensor, and the next training step that uses it raises. The analysis cannot see into the
    library, so the site is `unsafe` and names the call, as it does for a call of a value of unknown type,
    which may be library code; `stateless-libraries` is the user's word that a library keeps nothing."""
    library = tmp_path / "lib"
    library.mkdir()
    (library / "cachelib.py").write_text(CACHING_LIBRARY)
    report = analyse(tmp_path, {"train.py": TRAINS_A_LIBRARY_MODULE})
    fit, preview = site(report, "fit"), site(report, "preview")
    assert (fit.status, fit.fixable, fit.hazard, fit.subject) == (Status.UNSAFE, True, "library", "model(...)")
    assert fit.reason == (
        "`with torch.no_grad()` in fit: runs `model(...)` at train.py:12 in fit, library code (`cachelib.Scaled`) "
        "the analysis cannot see into: it may keep tensors it makes there (a cache, a buffer it extends on demand), "
        "and converted, those are inference tensors wherever that code uses them again outside inference mode; "
        "check it by hand.")
    assert (preview.status, preview.fixable, preview.hazard) == (Status.UNSAFE, True, "library")
    assert "runs `model(...)` at train.py:21 in preview, a value of unknown type, which may be library code" \
        in preview.reason

    declared = run(Options(paths=[str(tmp_path / "project")], mode=DIFF, project_root=tmp_path / "project",
                           config=Config(stateless_libraries=["cachelib"])))
    assert (site(declared, "fit").status, site(declared, "preview").status) == (Status.APPLIED, Status.UNSAFE)

    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "train.py").write_text(
        (tmp_path / "project" / "train.py").read_text().replace("torch.no_grad()", "torch.inference_mode()"))
    environment = {**os.environ, "PYTHONPATH": str(library)}
    for tree, expected in ((tmp_path / "project", "trains"),
                           (converted, "raises Inference tensors cannot be saved for backward")):
        trained = subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import train
            try:
                print(train.fit(2))
            except RuntimeError as exc:
                print("raises", str(exc).split(".")[0])
            """)], cwd=tree, env=environment, capture_output=True, text=True, check=True)
        assert trained.stdout.splitlines()[-1] == expected
