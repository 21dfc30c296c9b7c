"""Tests of ptcourse.finetune: freezing, parameter groups, L2-SP, layer-wise LR decay."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
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


class Net(nn.Module):
    """A small encoder + head with a norm layer, like the course's models."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def make_net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net()


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 3) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


# --------------------------------------------------------------------------- freezing
def test_freeze_module_no_grad_and_unchanged_after_steps():
    model = make_net()
    n = freeze(model.encoder)
    assert n == n_params(model.encoder)
    assert count_trainable(model) == n_params(model.head)
    assert count_parameters(model) == n_params(model)
    before_enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    before_head = model.head.weight.detach().clone()
    # even an optimizer that holds every parameter (with weight decay) leaves them alone
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    train_steps(model, opt)
    for p in model.encoder.parameters():
        assert p.grad is None
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, before_enc[k]), k
    assert not torch.equal(model.head.weight, before_head)


def test_freeze_by_glob_and_unfreeze_counts():
    model = make_net()
    assert freeze(model, "*.bias") == sum(
        p.numel() for n, p in model.named_parameters() if n.endswith("bias")
    )
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.endswith("bias"))
    assert all(p.requires_grad for n, p in model.named_parameters() if n.endswith("weight"))
    unfreeze(model)
    assert count_trainable(model) == count_parameters(model)
    # a bare prefix selects everything below it, but "encoder.0" is not "encoder.03"
    assert freeze(model, "encoder") == n_params(model.encoder)
    unfreeze(model)
    assert freeze(model, "encoder.0") == n_params(model.encoder[0])
    unfreeze(model)
    n = freeze(model, "encoder.[13]")
    assert n == n_params(model.encoder[1]) + n_params(model.encoder[3])
    assert unfreeze(model, ["encoder.1", "encoder.3"]) == n
    with pytest.raises(TypeError, match="glob strings, not regular expressions"):
        freeze(model, re.compile(r"^encoder\.[13]\."))
    assert count_trainable(model) == count_parameters(model)


def test_freeze_errors():
    model = make_net()
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze(model, "encoderr")
    with pytest.raises(TypeError, match="nn.Module"):
        freeze([nn.Linear(2, 2)])
    with pytest.raises(TypeError, match="glob string"):
        freeze(model, 3)
    with pytest.raises(ValueError, match="empty"):
        freeze(model, [])
    assert count_trainable(model) == count_parameters(model)  # nothing changed


# --------------------------------------------------------------------------- param groups
def test_param_groups_carry_lrs_and_decay():
    model = make_net()
    groups = param_groups(model, {"head": 1e-2, "encoder.0": 1e-4}, default_lr=1e-3,
                          weight_decay=0.05)
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["lr"] == 1e-2 and by_name["head"]["weight_decay"] == 0.05
    assert by_name["head"]["param_names"] == ["head.weight"]
    assert by_name["head (no decay)"]["param_names"] == ["head.bias"]
    assert by_name["head (no decay)"]["weight_decay"] == 0.0
    assert by_name["encoder.0"]["lr"] == 1e-4
    assert by_name["default"]["param_names"] == ["encoder.3.weight"]
    # LayerNorm weight has no "norm" in its name ("encoder.1.weight") but its owner is LayerNorm
    assert "encoder.1.weight" in by_name["default (no decay)"]["param_names"]
    assert by_name["default (no decay)"]["lr"] == 1e-3
    # every parameter appears exactly once
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    # torch keeps the values; a step moves parameters by lr-scaled amounts
    opt = torch.optim.SGD(groups, lr=123.0)
    assert sorted({g["lr"] for g in opt.param_groups}) == [1e-4, 1e-3, 1e-2]
    table = describe_param_groups(opt)
    assert table["parameters"].sum() == count_parameters(model)


def test_param_groups_lr_actually_used_by_sgd():
    model = make_net()
    groups = param_groups(model, {"head": 0.5}, default_lr=0.0001, weight_decay=0.0)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    F.cross_entropy(model(x), y).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.optim.SGD(groups).step()
    for n, p in model.named_parameters():
        lr = 0.5 if n.startswith("head") else 0.0001
        torch.testing.assert_close(p.detach(), before[n] - lr * grads[n])


def test_param_groups_first_pattern_wins_and_skips_frozen():
    model = make_net()
    freeze(model.encoder[0])
    groups = param_groups(model, {"head.bias": 1.0, "head": 2.0}, default_lr=3.0)
    names = {g["name"]: g for g in groups}
    assert names["head.bias (no decay)"]["lr"] == 1.0
    assert names["head"]["param_names"] == ["head.weight"] and names["head"]["lr"] == 2.0
    all_names = [n for g in groups for n in g["param_names"]]
    assert "encoder.0.weight" not in all_names


def test_param_groups_errors():
    model = make_net()
    with pytest.raises(ValueError, match="no parameter"):
        param_groups(model, {"decoder": 1e-3}, default_lr=1e-3)
    with pytest.raises(ValueError, match="earlier pattern"):
        param_groups(model, {"head": 1e-3, "head.weight": 1e-2}, default_lr=1e-3)
    freeze(model.encoder)
    with pytest.raises(ValueError, match="only frozen"):
        param_groups(model, {"encoder": 1e-3}, default_lr=1e-3)
    with pytest.raises(ValueError, match="> 0"):
        param_groups(model, {"head": -1.0}, default_lr=1e-3)
    with pytest.raises(ValueError, match="finite"):
        param_groups(model, {"head": float("inf")}, default_lr=1e-3)
    with pytest.raises(ValueError, match="default_lr"):
        param_groups(model, {}, default_lr=0)
    with pytest.raises(TypeError, match="dict"):
        param_groups(model, [("head", 1e-3)], default_lr=1e-3)
    with pytest.raises(TypeError, match="each pattern must be a glob string"):
        param_groups(model, {("head", "encoder"): 1e-3}, default_lr=1e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(model, {}, default_lr=1e-3, weight_decay=-1)
    freeze(model)
    with pytest.raises(ValueError, match="no trainable"):
        param_groups(model, {}, default_lr=1e-3)


# --------------------------------------------------------------------------- L2-SP
def test_l2sp_penalty_equals_formula_and_gradient():
    pre = make_net(0)
    reference = {n: p.detach().clone() for n, p in pre.named_parameters() if not n.startswith("head")}
    model = make_net(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    alpha, beta = 0.3, 0.07
    pen = l2sp_penalty(model, reference, alpha=alpha, beta=beta)
    expected = alpha * sum(
        ((p - reference[n]) ** 2).sum() for n, p in model.named_parameters() if n in reference
    ) + beta * sum((p**2).sum() for n, p in model.named_parameters() if n not in reference)
    torch.testing.assert_close(pen, expected)
    pen.backward()
    for n, p in model.named_parameters():
        want = 2 * alpha * (p - reference[n]) if n in reference else 2 * beta * p
        torch.testing.assert_close(p.grad, want.detach())


def test_l2sp_zero_at_pretrained_values_and_class_snapshot():
    model = make_net()
    reg = L2SP(model, alpha=0.5, beta=0.0, new="head")
    assert reg().item() == 0.0 and reg.distance() == 0.0
    assert reg.new_names == ["head.bias", "head.weight"]
    with torch.no_grad():
        model.encoder[0].weight.add_(1.0)
        model.head.weight.add_(5.0)  # a new head moves freely when beta = 0
    n = model.encoder[0].weight.numel()
    torch.testing.assert_close(reg(), torch.tensor(0.5 * n))
    assert reg.distance() == pytest.approx(n**0.5)


def test_l2sp_pulls_towards_pretrained_inside_training():
    """With a strong penalty, fine-tuned weights stay closer to the pretrained ones."""
    distances = {}
    for alpha in (0.0, 1.0):
        model = make_net()
        reg = L2SP(model, alpha=alpha, new="head")
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.manual_seed(2)
        x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
        for _ in range(50):
            opt.zero_grad()
            (F.cross_entropy(model(x), y) + reg()).backward()
            opt.step()
        distances[alpha] = reg.distance()
    assert distances[1.0] < 0.5 * distances[0.0]


def test_l2sp_frozen_parameters_are_skipped():
    model = make_net()
    reg = L2SP(model, alpha=1.0, beta=1.0, new="head")
    freeze(model.head)
    with torch.no_grad():
        model.encoder[3].bias.add_(2.0)
    torch.testing.assert_close(reg(), torch.tensor(4.0 * 8))


def test_l2sp_errors():
    model = make_net()
    with pytest.raises(ValueError, match="shape"):
        l2sp_penalty(model, {"head.weight": torch.zeros(5, 8)}, alpha=1.0)
    with pytest.raises(ValueError, match="no parameter of the model"):
        l2sp_penalty(model, {"decoder.weight": torch.zeros(1)}, alpha=1.0)
    with pytest.raises(ValueError, match="alpha"):
        l2sp_penalty(model, dict(model.named_parameters()), alpha=-1.0)
    with pytest.raises(TypeError, match="reference_state"):
        l2sp_penalty(model, [1, 2], alpha=1.0)
    with pytest.raises(ValueError, match="matches no parameter"):
        L2SP(model, new="classifier")
    with pytest.raises(ValueError, match="every parameter"):
        L2SP(model, new="*")


# --------------------------------------------------------------------------- LLRD
def test_llrd_exact_values_with_modules():
    model = make_net()
    layers = [model.encoder[0], model.encoder[1], model.encoder[3], model.head]
    groups = layerwise_lr_decay(layers, base_lr=1e-3, decay=0.5, model=model)
    lrs = {}
    for g in groups:
        for n in g["param_names"]:
            lrs[n] = g["lr"]
    assert lrs["head.weight"] == 1e-3 and lrs["head.bias"] == 1e-3
    assert lrs["encoder.3.weight"] == 1e-3 * 0.5
    assert lrs["encoder.1.weight"] == 1e-3 * 0.25
    assert lrs["encoder.0.weight"] == 1e-3 * 0.125
    assert len(lrs) == len(list(model.parameters()))


def test_llrd_lists_of_modules_and_the_ndim_decay_rule():
    model = make_net()
    groups = layerwise_lr_decay([[model.encoder[0], model.encoder[1]], model.encoder[3], model.head],
                                base_lr=2e-3, decay=0.8, model=model, weight_decay=0.01)
    by_name = {g["name"]: g for g in groups}
    assert by_name["layer 2"]["lr"] == 2e-3
    assert by_name["layer 1"]["lr"] == pytest.approx(2e-3 * 0.8, abs=0, rel=1e-15)
    assert by_name["layer 0"]["lr"] == 2e-3 * 0.8**2
    assert by_name["layer 0"]["param_names"] == ["encoder.0.weight"]  # the only matrix of layer 0
    assert set(by_name["layer 0 (no decay)"]["param_names"]) == {
        "encoder.0.bias", "encoder.1.weight", "encoder.1.bias"}  # biases and LayerNorm: ndim 1
    assert by_name["layer 0 (no decay)"]["weight_decay"] == 0.0
    assert by_name["layer 2"]["weight_decay"] == 0.01
    # the groups work with an optimizer and a scheduler keeps the ratios
    opt = torch.optim.AdamW(groups)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.1)
    assert all(g["lr"] / g["initial_lr"] == pytest.approx(0.1) for g in opt.param_groups)


def test_llrd_without_model_uses_module_list():
    blocks = [nn.Linear(2, 2) for _ in range(3)]
    groups = layerwise_lr_decay(blocks, base_lr=1.0, decay=0.1)
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.1, 1.0])
    assert [g["params"] for g in groups] == [list(b.parameters()) for b in blocks]
    assert all(g["weight_decay"] == 0.0 for g in groups)
    assert groups[0]["param_names"] == ["layer 0.0.weight", "layer 0.0.bias"]


def test_llrd_skips_frozen_layers_but_keeps_depth():
    model = make_net()
    freeze(model.encoder[0])
    groups = layerwise_lr_decay([model.encoder[0], model.encoder[1], model.encoder[3], model.head],
                                base_lr=1.0, decay=0.5, model=model)
    assert {g["name"]: g["lr"] for g in groups}["layer 1"] == 0.25
    assert not any(g["name"].startswith("layer 0") for g in groups)


def test_llrd_errors():
    model = make_net()
    with pytest.raises(ValueError, match="belong to no layer"):
        layerwise_lr_decay([model.encoder], base_lr=1e-3, decay=0.9, model=model)
    with pytest.raises(ValueError, match="in both layer 0 and layer 1"):
        layerwise_lr_decay([model.encoder, model.encoder[0], model.head], 1e-3, 0.9, model=model)
    with pytest.raises(ValueError, match="decay"):
        layerwise_lr_decay([model.head], 1e-3, 1.5)
    with pytest.raises(ValueError, match="base_lr"):
        layerwise_lr_decay([model.head], 0.0, 0.9)
    with pytest.raises(TypeError, match="layer 0 must be a module"):
        layerwise_lr_decay(["head"], 1e-3, 0.9)
    with pytest.raises(ValueError, match="not part of the model"):
        layerwise_lr_decay([model.encoder, model.head, nn.Linear(2, 2)], 1e-3, 0.9, model=model)
    with pytest.raises(TypeError, match="list of layers"):
        layerwise_lr_decay(model, 1e-3, 0.9)
    with pytest.raises(ValueError, match="empty"):
        layerwise_lr_decay([], 1e-3, 0.9)
    with pytest.raises(ValueError, match="layer 1 has no parameters"):
        layerwise_lr_decay([model.encoder, nn.ReLU(), model.head], 1e-3, 0.9)


# --------------------------------------------------------------------------- real models
def test_llrd_and_no_decay_on_a_torchvision_resnet():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None, num_classes=5)
    layers = [[model.conv1, model.bn1], model.layer1, model.layer2, model.layer3, model.layer4, model.fc]
    groups = layerwise_lr_decay(layers, base_lr=1e-3, decay=0.5, model=model, weight_decay=0.05)
    lr_of = {n: g["lr"] for g in groups for n in g["param_names"]}
    assert len(lr_of) == len(list(model.parameters()))
    assert lr_of["fc.weight"] == 1e-3 and lr_of["layer4.1.conv2.weight"] == 5e-4
    assert lr_of["conv1.weight"] == pytest.approx(1e-3 * 0.5**5)
    decay_of = {n: g["weight_decay"] for g in groups for n in g["param_names"]}
    assert decay_of["layer1.0.bn1.weight"] == 0.0  # BatchNorm2d weight: one dimension, no decay
    assert decay_of["layer1.0.conv1.weight"] == 0.05 and decay_of["fc.bias"] == 0.0


def test_llrd_on_a_tiny_bert_classifier():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    layers = [model.bert.embeddings, *model.bert.encoder.layer, [model.bert.pooler, model.classifier]]
    groups = layerwise_lr_decay(layers, base_lr=2e-5, decay=0.8, model=model, weight_decay=0.01)
    lr_of = {n: g["lr"] for g in groups for n in g["param_names"]}
    assert len(lr_of) == len(list(model.parameters()))
    assert lr_of["classifier.weight"] == 2e-5
    assert lr_of["bert.encoder.layer.2.output.dense.weight"] == pytest.approx(2e-5 * 0.8)
    assert lr_of["bert.embeddings.word_embeddings.weight"] == pytest.approx(2e-5 * 0.8**4)
    decay_of = {n: g["weight_decay"] for g in groups for n in g["param_names"]}
    assert decay_of["bert.encoder.layer.0.attention.output.LayerNorm.weight"] == 0.0
    assert decay_of["bert.encoder.layer.0.attention.self.query.weight"] == 0.01
    torch.optim.AdamW(groups)  # a valid optimizer


def test_the_decay_rule_is_the_number_of_dimensions():
    """nanoGPT's rule: matrices, kernels and embeddings decay; biases and norm weights do not."""
    model = nn.Sequential(nn.Embedding(10, 4), nn.Conv1d(4, 4, 3), nn.BatchNorm1d(4), nn.LayerNorm(4))
    groups = param_groups(model, default_lr=1e-3, weight_decay=0.1)
    decay_of = {n: g["weight_decay"] for g in groups for n in g["param_names"]}
    assert decay_of == {"0.weight": 0.1, "1.weight": 0.1, "1.bias": 0.0, "2.weight": 0.0, "2.bias": 0.0,
                        "3.weight": 0.0, "3.bias": 0.0}


def test_without_weight_decay_each_rate_is_one_group():
    model = make_net()
    groups = param_groups(model, {"encoder": 1e-4}, default_lr=1e-3, weight_decay=0.0)
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [("encoder", 1e-4, 0.0),
                                                                         ("default", 1e-3, 0.0)]
    assert param_groups(model, default_lr=1e-3, weight_decay=0.0)[0]["param_names"] == [
        n for n, _ in model.named_parameters()]
