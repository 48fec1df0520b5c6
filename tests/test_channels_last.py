"""channels-last on the real chatterbox trees, across files, and on a second run."""

from __future__ import annotations

import py_compile
import textwrap

import pytest
from chatterbox_codemod.transforms.channels_last import ChannelsLast
from conftest import cli, load_json, report_sites, run_engine

XVECTOR = "models/s3gen/xvector.py"
SUBSAMPLING = "models/s3gen/transformer/subsampling.py"
RANK3 = "rank-3 activations have no channels_last format, and Conv1d runs on a contiguous input anyway"

APPLIED = {
    (XVECTOR, "FCM"): "`x` enters through `_channels_last`; `out` leaves with `.contiguous()`; rank-4 weights "
                      "converted at the end of `__init__`; covers BasicResBlock",
    **{(SUBSAMPLING, f"Conv2dSubsampling{n}"): "`x` enters through `_channels_last`; it leaves through the "
                                              "`.contiguous()` already in place; rank-4 weights converted at the "
                                              "end of `__init__`" for n in (4, 6, 8)},
}
# Blocks holding rank-4 blocks next to Conv1d ones, per wheel (everything else with convolutions is Conv1d only).
MIXED = {
    "chatterbox-tts": {"CAMPPlus", "UpsampleConformerEncoder", "S3Token2Mel", "S3Token2Wav"},
    "chatterbox-streaming": {"CAMPPlus", "UpsampleConformerEncoder", "S3Token2Mel", "S3Token2Wav"},
}
CONV1D_BLOCKS = {"HiFTGenerator", "ResBlock", "ConvRNNF0Predictor", "ConditionalDecoder", "TDNNLayer", "CAMLayer",
                 "CAMDenseTDNNLayer", "CAMDenseTDNNBlock", "TransitLayer", "DenseLayer", "Conv1dSubsampling2"}

FCM_AFTER = '''\
    def forward(self, x):
        x = x.unsqueeze(1)
        x = _channels_last(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = out.contiguous()

        shape = out.shape
        out = out.reshape(shape[0], shape[1] * shape[2], shape[3])
        return out
'''


@pytest.mark.parametrize("wheel", sorted(MIXED))
def test_real_tree_verdicts(chatterbox_tree, tmp_path, wheel):
    tree = chatterbox_tree(wheel)
    report_path = tmp_path / "report.json"
    cli("apply", "--check", "--select", "channels-last", "--report", report_path, tree, check_rc=1)
    report = load_json(report_path)
    assert not report["errors"]
    sites = {(s["path"], s["symbol"]): s for s in report_sites(report, "channels-last").values()}

    applied = {key: site["reason"] for key, site in sites.items() if site["status"] == "applied"}
    assert applied == {key: f"Conv2d stack (rank 4): {reason}" for key, reason in APPLIED.items()}
    covered = sites.pop((XVECTOR, "BasicResBlock"))
    assert covered["status"] == "not-applicable"
    assert covered["reason"] == ("covered by FCM's boundaries (models/s3gen/xvector.py:94): the activation arrives "
                                 "in channels_last and leaves through FCM's exit")
    refused = {key: site for key, site in sites.items() if key not in APPLIED}
    assert {site["status"] for site in refused.values()} == {"not-applicable"}
    assert all(RANK3 in site["reason"] for site in refused.values())
    mixed = {symbol for (_, symbol), site in refused.items() if site["reason"].startswith("mixes ")}
    assert mixed == MIXED[wheel]
    assert {symbol for _, symbol in refused} >= CONV1D_BLOCKS
    assert sites[(XVECTOR, "CAMPPlus")]["reason"] == (
        f"mixes Conv1d (rank 3) with Conv2d (rank 4): {RANK3}; inside it, FCM is judged on its own")


@pytest.mark.parametrize("wheel", sorted(MIXED))
def test_real_tree_rewrite_compiles_and_is_stable(chatterbox_tree, tmp_path, wheel):
    tree = chatterbox_tree(wheel)
    before = {path: path.read_bytes() for path in tree.rglob("*.py")}
    cli("apply", "--select", "channels-last", tree, check_rc=0)
    changed = sorted(path.relative_to(tree).as_posix() for path in before if path.read_bytes() != before[path])
    assert changed == [SUBSAMPLING, XVECTOR]
    for path in before:
        py_compile.compile(str(path), doraise=True, cfile=str(tmp_path / "compiled.pyc"))
    assert FCM_AFTER in (tree / XVECTOR).read_text()

    report_path = tmp_path / "again.json"
    cli("apply", "--check", "--select", "channels-last", "--report", report_path, tree, check_rc=0)
    again = {s["symbol"]: s for s in load_json(report_path)["sites"]}
    assert again["FCM"]["reason"] == "already rewritten: its forward calls `_channels_last`"
    assert again["BasicResBlock"]["reason"].startswith("covered by FCM's boundaries")


def test_all_transforms_together_on_the_real_tree(chatterbox_tree, tmp_path):
    """The other transforms rewrite the same files first (shifting lines); the classes are still found."""
    tree = chatterbox_tree("chatterbox-tts")
    report_path = tmp_path / "report.json"
    cli("apply", "--unsafe-fixes", "--report", report_path, tree, check_rc=0)
    report = load_json(report_path)
    assert not report["errors"]
    applied = {(s["path"], s["symbol"]) for s in report["sites"]
               if s["transform"] == "channels-last" and s["rewritten"]}
    assert applied == set(APPLIED)
    assert FCM_AFTER in (tree / XVECTOR).read_text()
    cli("apply", "--check", "--unsafe-fixes", tree, check_rc=0)


def _project(tmp_path, files: dict[str, str]):
    (tmp_path / "pyproject.toml").write_text("")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


CROSS_FILE = {
    "pkg/__init__.py": "from .blocks import ResBlock\n",
    "pkg/blocks.py": """\
        from torch import nn


        class ResBlock(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.conv = nn.Conv2d(channels, channels, 3, padding=1)

            def forward(self, x):
                return x + self.conv(x)
        """,
    "pkg/model.py": """\
        import torch
        from pkg import ResBlock as Residual


        def residual_stack(channels, depth):
            return torch.nn.ModuleList(Residual(channels) for _ in range(depth))


        class Tower(torch.nn.Module):
            def __init__(self, channels=8, depth=2):
                super().__init__()
                self.stem = torch.nn.Conv2d(3, channels, 3, padding=1)
                self.blocks = residual_stack(channels, depth)

            def forward(self, images):
                x = self.stem(images)
                for block in self.blocks:
                    x = block(x)
                return x.mean((2, 3))
        """,
}


def test_nested_block_in_another_file_is_covered(tmp_path):
    project = _project(tmp_path, CROSS_FILE)
    report = run_engine([project / "pkg"], select=["channels-last"], project_root=project)
    verdicts = {site.symbol: (site.status, site.reason) for site in report.sites}
    assert verdicts["Tower"][0] == "applied"
    assert verdicts["Tower"][1].endswith("; covers ResBlock")
    assert verdicts["ResBlock"] == ("not-applicable", "covered by Tower's boundaries (model.py:9): the activation "
                                                      "arrives in channels_last and leaves through Tower's exit")
    assert [result.rel for result in report.changed] == ["model.py"]


def test_a_block_is_only_covered_by_blocks_this_run_rewrites(tmp_path):
    project = _project(tmp_path, CROSS_FILE)
    report = run_engine([project / "pkg" / "blocks.py"], select=["channels-last"], project_root=project)
    assert [(site.symbol, site.status) for site in report.sites] == [("ResBlock", "applied")]


def test_unsafe_fixes_never_rewrite_unsafe_blocks(tmp_path):
    project = _project(tmp_path, {"views.py": """\
        from torch import nn


        class Views(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
                self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

            def forward(self, x):
                out = self.conv1(x)
                return self.conv2(out.view(out.shape))
        """})
    report = run_engine([project / "views.py"], select=["channels-last"], project_root=project, unsafe_fixes=True)
    [site] = report.sites
    assert (site.status, site.fixable, site.rewritten) == ("unsafe", False, False)
    assert not report.changed


def test_documentation_sections():
    assert ChannelsLast.summary().startswith("Run rank-4/5 convolution blocks in channels_last")
    for title in ("Rewrites", "Refuses", "Fix safety"):
        assert ChannelsLast.section(title), title
    assert "CHATTERBOX_CHANNELS_LAST=0" in ChannelsLast.doc()
    listed = cli("list-transforms", check_rc=0).stdout
    assert f"channels-last\n    {ChannelsLast.summary()}" in listed
