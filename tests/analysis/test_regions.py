"""What a region does (effects) and where its tensors go (value flow), judged on tiny projects."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from chatterbox_codemod.analysis import FlowAnalyzer, GradStates, Region
from tiny import HEADER, function, index_of


def judge(tmp_path, text: str, symbol: str, stateless_libraries: tuple[str, ...] = ()):
    """The findings for the first `with` region in `symbol` (or its whole body when it has none)."""
    index = index_of(tmp_path, {"m.py": HEADER + text})
    fn = function(index, symbol)
    block = next((n for n in fn.nodes if isinstance(n, ast.With)), None)
    analyzer = FlowAnalyzer(index, GradStates(index), lambda f, line: f"{f.module.path.name}:{line}",
                            stateless_libraries=stateless_libraries)
    return analyzer.analyze(Region(fn, block))


@pytest.mark.parametrize("body,expected", [
    ("self.lin.weight.data = torch.zeros(4, 4)", "rebinds parameter data"),
    ("self.extra = nn.Linear(4, 4)", "builds a module"),
    ("self.register_buffer('b', torch.zeros(4))", "writes module state"),
    ("self.load_state_dict(state, assign=True)", "writes module state"),
    ("self.lin.half()", "moves or casts a module"),
    ("torch.set_grad_enabled(True)", "turns autograd back on"),
])
def test_persistent_effects_are_never_fixable(tmp_path, body, expected):
    report = judge(tmp_path, f"""
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def reset(self, state):
                with torch.no_grad():
                    {body}
        """, "M.reset")
    assert not report.fixable and expected in report.hazards[0].message


def test_effects_are_read_however_deep_the_calls_go_and_through_calls_of_unknown_type(tmp_path):
    """A state write ten calls down, and one that a call of a value of unknown type may run (`m(x)`, `m.reset`),
    are hazards of the region; the reason names the call that may run it."""
    chain = "".join(f"def step{i}(m):\n            step{i + 1}(m)\n        " for i in range(10))
    text = f"""
        class Reset(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def forward(self, x):
                self.lin.weight.data = torch.zeros(4, 4)
                return x
        {chain}def step10(m):
            m.lin.weight.data = torch.zeros(4, 4)
        def deep(m):
            with torch.no_grad():
                step0(m)
        def unknown(m, x):
            with torch.no_grad():
                return m(x)
        """
    report = judge(tmp_path / "deep", text, "deep")
    assert not report.fixable and "at m.py:" in report.hazards[0].message and "step10" in report.hazards[0].message
    report = judge(tmp_path / "unknown", text, "unknown")
    assert not report.fixable
    assert "in Reset.forward (which `m(...)` at m.py:" in report.hazards[0].message, report.hazards[0].message


@pytest.mark.parametrize("value,named", [
    ("scaled(x)", "`scaled(...)` at m.py:11 in run, library code (`cachelib.Scaled`)"),
    ("cachelib.window(4)", "`cachelib.window(...)` at m.py:11 in run, library code (`cachelib.window`)"),
    ("m(x)", "`m(...)` at m.py:11 in run, a value of unknown type, which may be library code"),
    ("m.generate(x)", "`m.generate(...)` at m.py:11 in run, a value of unknown type, which may be library code"),
    ("m.encode(x).lower()", None),  # a string method, on a value of unknown type
    ("torch.hann_window(4)", None),  # torch keeps no tensor it makes
    ("numpy.ones(4)", None),  # numpy makes no torch tensor
    ("len(x)", None),
    ("m.parameters()", None),  # nn.Module's accessors, on any object
    ("x.sum()", None),  # a tensor method, on a value of unknown type
    ("stateless.scale(x)", None),  # listed under `stateless-libraries`
])
def test_library_code_the_region_runs_is_a_fixable_hazard_naming_the_call(tmp_path, value, named):
    report = judge(tmp_path, f"""
        import cachelib
        import numpy
        import stateless


        def run(m, x, scaled=cachelib.Scaled()):
            with torch.no_grad():
                y = {value}
            return 0
        """, "run", stateless_libraries=("stateless",))
    if named is None:
        assert report.safe, report.hazards
    else:
        assert [(h.kind, h.fixable) for h in report.hazards] == [("library", True)]
        assert report.hazards[0].message == (
            f"runs {named} the analysis cannot see into: it may keep tensors it makes there (a cache, a buffer it "
            "extends on demand), and converted, those are inference tensors wherever that code uses them again "
            "outside inference mode; check it by hand")


def test_a_hazard_no_fix_can_make_safe_comes_before_library_code_however_it_is_reached(tmp_path):
    """What the region runs first reaches library code only, what it runs next builds a submodule: the scan
    looks on past the first for a hazard that settles the verdict, and that one alone is reported."""
    report = judge(tmp_path, """
        import cachelib


        def tokenize(x):
            return cachelib.window(4) * x


        def grow(m):
            m.extra = nn.Linear(2, 2)


        def run(m, x):
            with torch.no_grad():
                y = tokenize(x)
                grow(m)
            return 0
        """, "run")
    assert [(h.kind, h.fixable) for h in report.hazards] == [("state", False)]
    assert report.hazards[0].message == "builds a submodule (`m.extra = ...`) at m.py:12 in grow (called from run at " \
                                        "m.py:18)"


@pytest.mark.parametrize("body", [
    "self.lin.weight.copy_(torch.zeros(4, 4))",
    "self.lin.weight.data.copy_(torch.zeros(4, 4))",
    "nn.init.normal_(self.lin.weight)",
    "self.lin.weight.fill_(0.5)",
    "self.load_state_dict(state)",
])
def test_writes_into_existing_storage_are_safe(tmp_path, body):
    report = judge(tmp_path, f"""
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(4, 4)
            def reset(self, state):
                with torch.no_grad():
                    {body}
        """, "M.reset")
    assert report.safe, [h.message for h in report.hazards]


FLOWS = HEADER + """
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.cache = None
    def by_return(self, x):
        with torch.no_grad():
            y = x.softmax(-1)
        return y
    def by_attribute(self, x):
        with torch.no_grad():
            self.cache = x.softmax(-1)
    def by_tuple(self, x):
        with torch.no_grad():
            pair = (x.softmax(-1), x.sum())
        return pair
    def forward(self, x):
        a = self.lin(self.by_return(x))
        self.by_attribute(x)
        b = self.cache + 1
        c, d = self.by_tuple(x)
        return a + b + d
"""


@pytest.mark.parametrize("symbol,expected", [
    ("M.by_return", "`self.lin(...)` (torch.nn.Linear, a module with parameters)"),
    ("M.by_tuple", None),  # `+` keeps nothing for backward
    ("M.by_attribute", None),
])
def test_values_followed_through_returns_tuples_and_attributes(tmp_path, symbol, expected):
    index = index_of(tmp_path, {"m.py": FLOWS})
    fn = function(index, symbol)
    block = next(n for n in fn.nodes if isinstance(n, ast.With))
    report = FlowAnalyzer(index, GradStates(index), lambda f, line: f"m.py:{line}").analyze(Region(fn, block))
    if expected is None:
        assert report.safe, [h.message for h in report.hazards]
    else:
        assert report.fixable and expected in report.hazards[0].message
        assert "returned by M.by_return to M.forward" in report.hazards[0].message


def test_in_place_update_outside_the_mode(tmp_path):
    report = judge(tmp_path, """
        def lengths(x):
            with torch.no_grad():
                n = x.sum(-1)
            n[0] = 3
            return n.tolist()
        """, "lengths")
    assert report.fixable and "the in-place update `n[0] = ...`" in report.hazards[0].message


def test_activations_appended_to_a_list_make_it_require_grad(tmp_path):
    """StyleTTS2's SLM adversarial loss: a zeros tensor filled from a list of softmax activations meets the
    region's `t_en` in a matmul; the list got its activations through `.append`."""
    report = judge(tmp_path, """
        class Loss(nn.Module):
            def __init__(self):
                super().__init__()
                self.aligner = nn.Linear(4, 4)
                self.encoder = nn.Linear(4, 4)
            def forward(self, x, text):
                preds = []
                for _ in range(2):
                    preds.append(F.softmax(self.aligner(x), dim=0))
                with torch.no_grad():
                    t_en = self.encoder(text)
                attn = torch.zeros(2, 4, 4)
                for i in range(2):
                    attn[i] = preds[i]
                return t_en @ attn
        """, "Loss.forward")
    assert report.fixable and "`t_en @ attn` (an operand may require grad)" in report.hazards[0].message


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# Helpers that regions share: a read of an attribute one region stores first (the replay's answer differs,
# so it walks), a module-level store, recursion, and calls nested three deep.
SHARED_HELPERS = HEADER + """
CACHE = None

class Enc(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.memory = None

    def leaf(self, x):
        return self.memory

    def mid(self, x):
        global CACHE
        y = self.leaf(x)
        CACHE = y
        return self.again(y, 3)

    def again(self, y, n):
        if n:
            return self.again(y, n - 1)
        return y

    def first(self, x):
        with torch.no_grad():
            h = self.mid(x)
        return h

    def store_then_read(self, x):
        with torch.no_grad():
            self.memory = x.exp()
            h = self.mid(x)
        return h

    def meets_weight(self, x):
        with torch.no_grad():
            h = self.mid(x)
        return h * self.lin.weight

    def reads_global(self, x):
        return CACHE * self.lin.weight
"""


class _CountingReplays(FlowAnalyzer):
    replays = 0

    def _replay(self, frame, summary_key):
        self.replays += summary_key in self._summaries
        return super()._replay(frame, summary_key)


def _reports(analyzer: FlowAnalyzer, regions: list[Region]) -> list[tuple]:
    return [(r.safe, r.fixable, [h.message for h in r.hazards], r.notes) for r in map(analyzer.analyze, regions)]


@pytest.mark.parametrize("follow_graph", [False, True])
def test_a_walk_replayed_from_an_earlier_region_gives_what_a_fresh_walk_gives(tmp_path, follow_graph):
    """One analyzer judges region after region and replays the walks of functions called from inside an
    earlier region (`FlowAnalyzer._summaries`): every report must equal the one a fresh analyzer gives, for
    every region (each function's body and each of its `with` blocks) of every fixture case."""
    cases = {f"{case.parent.name}/{case.name}": case.read_text(encoding="utf-8")
             for case in sorted(FIXTURES.glob("*/*.in.py"))}
    cases["shared helpers"] = SHARED_HELPERS
    replayed = 0
    for number, (name, text) in enumerate(cases.items()):
        index = index_of(tmp_path / str(number), {"m.py": text})
        states = GradStates(index)
        regions = []
        for fn in index.functions.values():
            regions.append(Region(fn))
            regions.extend(Region(fn, node) for node in fn.nodes if isinstance(node, ast.With))
        where = lambda f, line: f"{f.module.path.name}:{line}"  # noqa: E731
        shared = _CountingReplays(index, states, where, follow_graph)
        fresh = [_reports(FlowAnalyzer(index, states, where, follow_graph), [region])[0] for region in regions]
        assert _reports(shared, regions) == fresh, name
        replayed += shared.replays
    assert len(cases) > 40 and replayed > 20, (len(cases), replayed)


def test_an_analysis_settled_by_effects_gives_the_verdict_a_full_one_gives(tmp_path):
    """`settled_by_effects` (what inference-mode asks for) stops at a hazard no fix can make safe in what the
    region runs, without following the values: for every region of every fixture case, the verdict (safe,
    fixable) and the hazard a reason names (the first one no fix can make safe, else the first) must be the
    ones the full analysis gives, and a region with no such hazard must get the full report."""
    cases = [case.read_text(encoding="utf-8") for case in sorted(FIXTURES.glob("*/*.in.py"))] + [SHARED_HELPERS]
    settled = 0
    for number, text in enumerate(cases):
        index = index_of(tmp_path / str(number), {"m.py": text})
        where = lambda f, line: f"{f.module.path.name}:{line}"  # noqa: E731
        full_analyzer = FlowAnalyzer(index, GradStates(index), where)
        settled_analyzer = FlowAnalyzer(index, GradStates(index), where, settled_by_effects=True)
        for fn in list(index.functions.values()):
            for region in [Region(fn), *(Region(fn, node) for node in fn.nodes if isinstance(node, ast.With))]:
                full, quick = full_analyzer.analyze(region), settled_analyzer.analyze(region)
                assert (quick.safe, quick.fixable) == (full.safe, full.fixable), (number, fn.qualname)
                if full.fixable:
                    assert _reports(settled_analyzer, [region]) == _reports(full_analyzer, [region])
                    continue
                named = next(h for h in full.hazards if not h.fixable)
                assert next(h for h in quick.hazards if not h.fixable) == named, (number, fn.qualname)
                settled += len(quick.hazards) < len(full.hazards) or quick.notes != full.notes
    assert settled > 5, settled
