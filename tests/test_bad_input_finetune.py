"""Bad and edge-case input to ptcourse.finetune: every row must raise, with a message that says what to do.

One table for the module (issue 7, section 3): no silent accepts, no internal tracebacks.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from ptcourse.finetune import (
    L2SP,
    count_parameters,
    count_trainable,
    describe_param_groups,
    freeze,
    l2sp_penalty,
    layerwise_lr_decay,
    param_groups,
    unfreeze,
)

NAN, INF = float("nan"), float("inf")


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))


def frozen(*which: int) -> nn.Module:
    model = net()
    for i in which:
        model[i].requires_grad_(False)
    return model


M = net()
REF = {n: p.detach().clone() for n, p in M.named_parameters()}

CASES = [
    # freeze / unfreeze / counts
    ("freeze a list", lambda: freeze([nn.Linear(2, 2)]), TypeError, "torch.nn.Module"),
    ("freeze by an int", lambda: freeze(net(), 3), TypeError, "glob string"),
    ("freeze by an empty list", lambda: freeze(net(), []), ValueError, "patterns is empty"),
    ("freeze a typo", lambda: freeze(net(), "3"), ValueError, "'3' matches no parameter.*0.weight"),
    ("freeze by a regex", lambda: freeze(net(), re.compile("0")), TypeError, "not regular expressions"),
    ("freeze a list with an int", lambda: freeze(net(), ["0", 1]), TypeError, "each pattern must be a glob"),
    ("freeze an empty pattern", lambda: freeze(net(), ""), ValueError, "matches no parameter"),
    ("unfreeze a typo", lambda: unfreeze(net(), "head"), ValueError, "matches no parameter"),
    ("count_trainable of a str", lambda: count_trainable("model"), TypeError, "torch.nn.Module"),
    ("count_parameters of None", lambda: count_parameters(None), TypeError, "torch.nn.Module"),
    # param_groups
    ("param_groups of a dict", lambda: param_groups({}, default_lr=1e-3), TypeError, "torch.nn.Module"),
    ("lrs a list", lambda: param_groups(net(), [("0", 1e-3)], default_lr=1e-3), TypeError, "lrs must be a dict"),
    ("lrs key an int", lambda: param_groups(net(), {0: 1e-3}, default_lr=1e-3), TypeError, "glob string"),
    ("lrs key a regex", lambda: param_groups(net(), {re.compile("0"): 1e-3}, default_lr=1e-3), TypeError,
     "not regular expressions"),
    ("lr inf", lambda: param_groups(net(), {"0": INF}, default_lr=1e-3), ValueError, "for '0' must be a finite"),
    ("lr nan", lambda: param_groups(net(), {"0": NAN}, default_lr=1e-3), ValueError, "must be a finite"),
    ("lr 0", lambda: param_groups(net(), {"0": 0.0}, default_lr=1e-3), ValueError, "must be > 0"),
    ("lr negative", lambda: param_groups(net(), {"0": -1.0}, default_lr=1e-3), ValueError, "must be > 0"),
    ("lr a str", lambda: param_groups(net(), {"0": "1e-3"}, default_lr=1e-3), TypeError, "must be a number"),
    ("lr a bool", lambda: param_groups(net(), {"0": True}, default_lr=1e-3), TypeError, "must be a number"),
    ("default_lr nan", lambda: param_groups(net(), default_lr=NAN), ValueError, "default_lr must be a finite"),
    ("default_lr inf", lambda: param_groups(net(), default_lr=INF), ValueError, "default_lr must be a finite"),
    ("default_lr None", lambda: param_groups(net(), default_lr=None), TypeError, "default_lr must be a number"),
    ("default_lr positional", lambda: param_groups(net(), {}, 1e-3), TypeError, "positional"),
    ("weight_decay negative", lambda: param_groups(net(), default_lr=1e-3, weight_decay=-0.1), ValueError,
     "weight_decay must be >= 0"),
    ("weight_decay nan", lambda: param_groups(net(), default_lr=1e-3, weight_decay=NAN), ValueError,
     "weight_decay must be a finite"),
    ("pattern selects nothing", lambda: param_groups(net(), {"head": 1e-3}, default_lr=1e-3), ValueError,
     "'head' in lrs selects no parameter"),
    ("pattern selects frozen", lambda: param_groups(frozen(0), {"0": 1e-3}, default_lr=1e-3), ValueError,
     "only frozen parameters"),
    ("pattern shadowed", lambda: param_groups(net(), {"0": 1e-3, "0.weight": 1e-2}, default_lr=1e-3), ValueError,
     "earlier pattern"),
    ("all frozen", lambda: param_groups(frozen(0, 1, 2), default_lr=1e-3), ValueError, "no trainable parameter"),
    # layerwise_lr_decay
    ("layers a module", lambda: layerwise_lr_decay(net(), 1e-3, 0.9), TypeError, "list of layers"),
    ("layers a str", lambda: layerwise_lr_decay("0", 1e-3, 0.9), TypeError, "list of layers"),
    ("layers empty", lambda: layerwise_lr_decay([], 1e-3, 0.9), ValueError, "layers is empty"),
    ("a layer a name", lambda: layerwise_lr_decay([M[0], "2"], 1e-3, 0.9), TypeError, "layer 1 must be a module"),
    ("a layer empty", lambda: layerwise_lr_decay([M[0], []], 1e-3, 0.9), TypeError, "layer 1 must be a module"),
    ("a layer mixed", lambda: layerwise_lr_decay([[M[0], "x"]], 1e-3, 0.9), TypeError, "layer 0 must be a module"),
    ("a layer without parameters", lambda: layerwise_lr_decay([nn.ReLU()], 1e-3, 0.9), ValueError,
     "layer 0 has no parameters"),
    ("base_lr nan", lambda: layerwise_lr_decay([M[0]], NAN, 0.9), ValueError, "base_lr must be a finite"),
    ("base_lr inf", lambda: layerwise_lr_decay([M[0]], INF, 0.9), ValueError, "base_lr must be a finite"),
    ("base_lr 0", lambda: layerwise_lr_decay([M[0]], 0, 0.9), ValueError, "base_lr must be > 0"),
    ("decay 0", lambda: layerwise_lr_decay([M[0]], 1e-3, 0), ValueError, "decay must be > 0"),
    ("decay nan", lambda: layerwise_lr_decay([M[0]], 1e-3, NAN), ValueError, "decay must be a finite"),
    ("decay above 1", lambda: layerwise_lr_decay([M[0]], 1e-3, 1.5), ValueError, r"decay must be in \(0, 1\]"),
    ("decay a str", lambda: layerwise_lr_decay([M[0]], 1e-3, "0.9"), TypeError, "decay must be a number"),
    ("weight_decay inf", lambda: layerwise_lr_decay([M[0]], 1e-3, 0.9, weight_decay=INF), ValueError,
     "weight_decay must be a finite"),
    ("model not a module", lambda: layerwise_lr_decay([M[0]], 1e-3, 0.9, model="net"), TypeError,
     "torch.nn.Module"),
    ("a layer outside the model", lambda: layerwise_lr_decay([M[0], nn.Linear(2, 2)], 1e-3, 0.9, model=M),
     ValueError, "layer 1 is not part of the model"),
    ("a parameter in two layers", lambda: layerwise_lr_decay([M, M[2]], 1e-3, 0.9), ValueError,
     "in both layer 0 and layer 1"),
    ("a parameter in no layer", lambda: layerwise_lr_decay([M[0], M[2]], 1e-3, 0.9, model=M), ValueError,
     r"2 trainable parameter tensor\(s\) belong to no layer: 1.weight, 1.bias"),
    ("every layer frozen", lambda: layerwise_lr_decay([frozen(0)[0]], 1e-3, 0.9), ValueError,
     "no trainable parameter"),
    # describe_param_groups
    ("describe None", lambda: describe_param_groups(None), TypeError, "an optimizer or a non-empty list"),
    ("describe a str", lambda: describe_param_groups("groups"), TypeError, "an optimizer or a non-empty list"),
    ("describe an empty list", lambda: describe_param_groups([]), TypeError, "non-empty list"),
    ("describe groups without params", lambda: describe_param_groups([{"lr": 1e-3}]), TypeError,
     "dicts with 'params'"),
    # l2sp_penalty and L2SP
    ("l2sp of a dict", lambda: l2sp_penalty({}, REF, 1.0), TypeError, "torch.nn.Module"),
    ("reference a list", lambda: l2sp_penalty(M, [1, 2], 1.0), TypeError, "reference_state must be a dict"),
    ("alpha nan", lambda: l2sp_penalty(M, REF, NAN), ValueError, "alpha must be a finite"),
    ("alpha inf", lambda: l2sp_penalty(M, REF, INF), ValueError, "alpha must be a finite"),
    ("alpha negative", lambda: l2sp_penalty(M, REF, -1.0), ValueError, "alpha must be >= 0"),
    ("alpha a str", lambda: l2sp_penalty(M, REF, "1"), TypeError, "alpha must be a number"),
    ("alpha a bool", lambda: l2sp_penalty(M, REF, True), TypeError, "alpha must be a number"),
    ("beta nan", lambda: l2sp_penalty(M, REF, 1.0, beta=NAN), ValueError, "beta must be a finite"),
    ("reference value not a tensor", lambda: l2sp_penalty(M, {"0.weight": [[0.0]]}, 1.0), ValueError,
     "pretrained value is list"),
    ("reference shape", lambda: l2sp_penalty(M, {"0.weight": torch.zeros(2, 2)}, 1.0), ValueError,
     r"has shape \(8, 4\) but its pretrained value is \(2, 2\)"),
    ("reference of another model", lambda: l2sp_penalty(M, {"decoder.w": torch.zeros(1)}, 1.0), ValueError,
     "no parameter of the model is in reference_state"),
    ("L2SP alpha nan", lambda: L2SP(net(), alpha=NAN), ValueError, "alpha must be a finite"),
    ("L2SP beta inf", lambda: L2SP(net(), beta=INF), ValueError, "beta must be a finite"),
    ("L2SP new a typo", lambda: L2SP(net(), new="head"), ValueError, "matches no parameter"),
    ("L2SP new everything", lambda: L2SP(net(), new="*"), ValueError, "selects every parameter"),
    ("L2SP new an int", lambda: L2SP(net(), new=2), TypeError, "glob string"),
    ("L2SP of a function", lambda: L2SP(len), TypeError, "torch.nn.Module"),
    # found in review: these passed silently
    ("l2sp reference the model's own state_dict", lambda: l2sp_penalty(M, M.state_dict(), 1.0), ValueError,
     "shares memory with the parameter itself"),
    ("l2sp reference the parameters", lambda: l2sp_penalty(M, dict(M.named_parameters()), 1.0), ValueError,
     "shares memory"),
    ("llrd rate underflows to 0", lambda: layerwise_lr_decay([M[0], M[1], M[2]], 1e-3, 1e-200), ValueError,
     "layer 0 would get a learning rate of 0.*decay closer to 1"),
    ("describe groups of a generator", lambda: describe_param_groups([{"params": M.parameters()}]), TypeError,
     r"list\(model.parameters\(\)\)"),
]


@pytest.mark.parametrize("name, call, error, match", CASES, ids=[c[0] for c in CASES])
def test_finetune_rejects(name, call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_numbers_are_accepted_like_python_numbers():
    model = net()
    groups = param_groups(model, {"0": np.float32(1e-2)}, default_lr=np.float64(1e-3), weight_decay=np.float32(0))
    assert [g["lr"] for g in groups] == pytest.approx([1e-2, 1e-3])
    groups = layerwise_lr_decay([model[0], model[1], model[2]], np.float64(1e-3), np.float32(0.5), model=model)
    assert groups[0]["lr"] == pytest.approx(2.5e-4)
    assert l2sp_penalty(model, REF, alpha=np.float64(1.0)).item() == pytest.approx(0.0)
    assert L2SP(model, alpha=np.float32(0.1)).alpha == pytest.approx(0.1)


def test_a_state_dict_copy_is_a_valid_reference_and_a_single_tensor_group_is_described():
    model = net()
    reference = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert l2sp_penalty(model, reference, alpha=1.0).item() == pytest.approx(model[0].weight.numel())
    table = describe_param_groups([{"params": model[0].weight, "lr": 0.1}])
    assert table["parameters"].tolist() == [32]

