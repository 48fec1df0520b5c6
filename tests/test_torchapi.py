"""The torch facts the analysis decides verdicts by (codemod/analysis/torchapi.py), checked against torch."""

from __future__ import annotations

import ast

import pytest
import torch
from chatterbox_codemod.analysis.torchapi import (
    ERR_INPLACE,
    ERR_REQUIRES_GRAD,
    ERR_SAVED,
    NON_SAVING_BINOPS,
    NON_SAVING_FUNCTIONS,
    NON_SAVING_METHODS,
    STATE_METHODS,
    TENSOR_METHODS,
    VIEW_METHODS,
)
from torch import nn


def _region_tensors():
    with torch.inference_mode():
        t = torch.randn(4, 4)
        mask = t > 0
        index = torch.tensor([0, 2])
    return t, mask, index


def _activation():
    """A tensor that requires grad without being a parameter: what a module computes with autograd on."""
    return nn.Linear(4, 4)(torch.randn(4, 4))


def _backward(make):
    out = make(_activation())
    out.sum().backward()


BINOPS = {ast.Add: lambda t, a: t + a, ast.Sub: lambda t, a: t - a, ast.BitOr: None, ast.BitAnd: None,
          ast.BitXor: None}


@pytest.mark.parametrize("op", [op for op in NON_SAVING_BINOPS if BINOPS[op] is not None], ids=lambda o: o.__name__)
def test_non_saving_binops_pass_with_an_activation(op):
    t, _, _ = _region_tensors()
    _backward(lambda a: BINOPS[op](t, a))


@pytest.mark.parametrize("name", ["cat", "stack", "add", "sub"])
def test_non_saving_functions_pass_with_an_activation(name):
    assert f"torch.{name}" in NON_SAVING_FUNCTIONS
    t, _, _ = _region_tensors()
    function = getattr(torch, name)
    _backward(lambda a: function([t, a]) if name in ("cat", "stack") else function(t, a))


UNARY_OR_FACTORY = {"clone", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "neg", "negative",
                    "detach_"}


@pytest.mark.parametrize("method", sorted(NON_SAVING_METHODS - UNARY_OR_FACTORY))
def test_non_saving_methods_pass_with_an_activation(method):
    """Each method listed as keeping nothing for backward, on an activation, with a region tensor as operand."""
    t, _, _ = _region_tensors()
    operand = () if method == "zero_" else (t.sum(),) if method == "fill_" else (t,)
    _backward(lambda a: getattr(a * 1, method)(*operand))


@pytest.mark.parametrize("use", [
    lambda t, m, i, a: t * a,
    lambda t, m, i, a: a / t,
    lambda t, m, i, a: t @ a,
    lambda t, m, i, a: torch.einsum("ij,jk->ik", a, t),
    lambda t, m, i, a: a.masked_fill(m, 0.0),
    lambda t, m, i, a: (a * 1).masked_fill_(m, 0.0),
    lambda t, m, i, a: a.mul(t),
    lambda t, m, i, a: a.clamp(max=t),
    lambda t, m, i, a: torch.where(m, a, a * 2),
    lambda t, m, i, a: a[i],
    lambda t, m, i, a: t.detach() * a,
    lambda t, m, i, a: t.t() * a,
], ids=["mul", "div", "matmul", "einsum", "masked_fill mask", "masked_fill_ mask", "mul method", "clamp method",
        "where mask", "index", "detach", "view"])
def test_saving_uses_with_an_activation_raise(use):
    """Not only parameters: an activation that requires grad makes every saving op raise."""
    t, mask, index = _region_tensors()
    with pytest.raises(RuntimeError, match=ERR_SAVED):
        _backward(lambda a: use(t, mask, index, a))


def test_computed_outside_the_mode_is_a_normal_tensor_and_views_are_not():
    t, _, _ = _region_tensors()
    for method in ("t", "float", "detach", "contiguous"):
        assert method in VIEW_METHODS
        assert getattr(t, method)().is_inference()
    assert not (t * 2).is_inference()
    assert not t.softmax(-1).is_inference()


def test_error_texts():
    t, _, _ = _region_tensors()
    with pytest.raises(RuntimeError, match=ERR_INPLACE):
        t.add_(1)
    with pytest.raises(RuntimeError, match=ERR_REQUIRES_GRAD):
        t.requires_grad_()


def _trains(layer: nn.Linear) -> bool:
    layer.zero_grad()
    layer(torch.randn(2, 4)).sum().backward()
    return layer.weight.grad is not None and not layer.weight.is_inference()


@pytest.mark.parametrize("write", [
    lambda layer: layer.weight.copy_(torch.ones_like(layer.weight)),
    lambda layer: layer.weight.data.copy_(torch.ones_like(layer.weight)),
    lambda layer: layer.weight.fill_(0.5),
    lambda layer: layer.weight.zero_(),
    lambda layer: nn.init.normal_(layer.weight),
    lambda layer: layer.load_state_dict({k: v.clone() for k, v in nn.Linear(4, 4).state_dict().items()}),
], ids=["copy_", "data.copy_", "fill_", "zero_", "nn.init", "load_state_dict"])
def test_writes_into_existing_storage_under_inference_mode_keep_training(write):
    """Why these are not hazards: the parameter stays a normal tensor and still receives gradients."""
    layer = nn.Linear(4, 4)
    with torch.inference_mode():
        write(layer)
    assert _trains(layer)


def test_rebinding_data_under_inference_mode_silently_stops_gradients():
    layer = nn.Linear(4, 4)
    with torch.inference_mode():
        layer.weight.data = torch.ones(4, 4)
    layer(torch.randn(2, 4)).sum().backward()
    assert layer.weight.is_inference()
    assert layer.weight.grad is None  # no error: training just stops changing it


def test_modules_and_buffers_made_under_inference_mode_are_broken_outside_it():
    assert "register_buffer" in STATE_METHODS
    with torch.inference_mode():
        layer = nn.Linear(4, 4)
        norm = nn.BatchNorm1d(4)
        norm.register_buffer("extra", torch.zeros(3))
    layer(torch.randn(2, 4)).sum().backward()
    assert layer.weight.grad is None
    with pytest.raises(RuntimeError, match=ERR_INPLACE):
        norm.extra.add_(1)


def test_tensor_methods_are_torch_tensor_methods():
    """`TENSOR_METHODS`, taken on a value of unknown type to be the tensor's, are each a method of torch.Tensor."""
    assert sorted(n for n in TENSOR_METHODS if not callable(getattr(torch.Tensor, n, None))) == []
