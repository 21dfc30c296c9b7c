"""Fine-tuning helpers: freezing, parameter groups, L2-SP and layer-wise LR decay (chapters 03, 07, 08).

Usage::

    from ptcourse.finetune import freeze, param_groups, L2SP, layerwise_lr_decay
    freeze(model.encoder)                                   # linear probe
    groups = param_groups(model, {"encoder": 1e-4}, default_lr=1e-3)
    optimizer = torch.optim.AdamW(groups)
    reg = L2SP(model, alpha=1e-2, new="head")               # λ‖θ − θ_pre‖² on the encoder

Selecting parameters by name
----------------------------
``freeze``, ``unfreeze``, ``param_groups`` and ``L2SP`` take *patterns*: shell-style globs
(``*``, ``?``, ``[...]``, see :mod:`fnmatch`) matched against the names of
``model.named_parameters()`` (``"encoder.0.weight"``). A pattern also matches every parameter
*below* it: ``"encoder"`` selects ``"encoder.0.weight"`` and ``"encoder.0.bias"``, and
``"layer.1"`` selects ``"layer.1.weight"`` but not ``"layer.10.weight"``; ``"layer.1[01]"``
selects layers 10 and 11. A pattern that selects nothing is an error: a typo must not
silently train the wrong parameters.

Weight decay
------------
``param_groups`` and ``layerwise_lr_decay`` use nanoGPT's one-line rule: tensors with two or
more dimensions (weight matrices, convolution kernels, embeddings) get ``weight_decay``;
tensors with fewer (biases, LayerNorm and BatchNorm weights) get none.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import torch
from torch import nn

from ptcourse._checks import examples, finite_number, module

Patterns = Union[str, Iterable[str]]

__all__ = [
    "freeze",
    "unfreeze",
    "count_trainable",
    "count_parameters",
    "param_groups",
    "layerwise_lr_decay",
    "describe_param_groups",
    "l2sp_penalty",
    "L2SP",
]


# --------------------------------------------------------------------------- selecting by name
def _pattern_list(patterns: Patterns) -> list[str]:
    items = [patterns] if isinstance(patterns, (str, re.Pattern)) else patterns
    if not isinstance(items, Iterable):
        raise TypeError(f"patterns must be a glob string or a list of them, got {type(patterns).__name__}")
    items = list(items)
    for p in items:
        if isinstance(p, re.Pattern):
            raise TypeError(f"patterns are glob strings, not regular expressions: instead of "
                            f"re.compile({p.pattern!r}) write a glob such as 'encoder.layer.1[01]'")
        if not isinstance(p, str):
            raise TypeError(f"each pattern must be a glob string, got {type(p).__name__}: {p!r}")
    if not items:
        raise ValueError("patterns is empty; pass at least one pattern (or None for every parameter)")
    return items


def _matches(name: str, pattern: str) -> bool:
    """Whether parameter ``name`` is ``pattern`` or lies below it (see the module docstring)."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


def _select(model: nn.Module, patterns: Patterns | None) -> list[tuple[str, nn.Parameter]]:
    """The named parameters of ``model`` that ``patterns`` select (all of them when None)."""
    named = list(module(model).named_parameters())
    if patterns is None:
        return named
    plist = _pattern_list(patterns)
    for p in plist:
        if not any(_matches(n, p) for n, _ in named):
            raise ValueError(f"pattern {p!r} matches no parameter; parameter names look like: "
                             f"{examples([n for n, _ in named])}")
    return [(n, t) for n, t in named if any(_matches(n, p) for p in plist)]


# --------------------------------------------------------------------------- freezing
def freeze(module: nn.Module, patterns: Patterns | None = None) -> int:
    """Stop training parameters: set ``requires_grad=False`` (chapter 03).

    ``freeze(model.encoder)`` freezes a whole sub-module; ``freeze(model, "encoder.*")`` or
    ``freeze(model, ["embeddings", "encoder.layer.[0-5]"])`` selects parameters by name
    (globs, see the module docstring). Returns the number of scalar parameters selected.

    Frozen parameters get no gradient, so no optimizer step changes them. Their module's
    *statistics* are a separate matter: ``fit`` puts every sub-module whose parameters are
    all frozen in eval mode after ``model.train()``, so a frozen BatchNorm keeps its running
    statistics and a frozen block's dropout is off. A ``BatchNorm(affine=False)`` has no
    parameters to freeze: it follows its parent module, so freeze the block that contains it,
    or override your model's ``train()`` to call ``.eval()`` on it. In a loop of your own,
    call ``ptcourse.training.set_train_mode(model)`` instead of ``model.train()``.

    Usage: ``n = freeze(model.encoder); print(f"froze {n:,} parameters")``
    """
    selected = _select(module, patterns)
    for _, p in selected:
        p.requires_grad_(False)
    return sum(p.numel() for _, p in selected)


def unfreeze(module: nn.Module, patterns: Patterns | None = None) -> int:
    """Train parameters again: set ``requires_grad=True``; the opposite of :func:`freeze` (chapter 03).

    Returns the number of scalar parameters selected.

    Usage: ``freeze(model); unfreeze(model, "head")  # train only the head``
    """
    selected = _select(module, patterns)
    for _, p in selected:
        p.requires_grad_(True)
    return sum(p.numel() for _, p in selected)


def count_trainable(model: nn.Module) -> int:
    """Number of scalar parameters with ``requires_grad=True`` (chapter 03).

    Usage: ``print(f"{count_trainable(model):,} of {count_parameters(model):,} trainable")``
    """
    return sum(p.numel() for p in module(model).parameters() if p.requires_grad)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters, trainable or not (chapter 02).

    Usage: ``count_parameters(model)``
    """
    return sum(p.numel() for p in module(model).parameters())


# --------------------------------------------------------------------------- parameter groups
def _groups(name: str, named: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float) -> list[dict]:
    """Optimizer groups sharing one learning rate: matrices decay, vectors (biases, norms) do not."""
    if weight_decay == 0:
        parts = [(name, 0.0, named)]
    else:
        parts = [(name, weight_decay, [(n, p) for n, p in named if p.ndim >= 2]),
                 (name + " (no decay)", 0.0, [(n, p) for n, p in named if p.ndim < 2])]
    return [{"params": [p for _, p in members], "lr": lr, "weight_decay": wd, "name": label,
             "param_names": [n for n, _ in members]} for label, wd, members in parts if members]


def param_groups(model: nn.Module, lrs: Mapping[str, float] | None = None, *, default_lr: float,
                 weight_decay: float = 0.01) -> list[dict[str, Any]]:
    """Optimizer parameter groups with their own learning rates and weight decay (chapters 02, 03, 07).

    ``lrs`` maps a name pattern (a glob, see the module docstring) to a learning rate;
    trainable parameters that no pattern selects get ``default_lr``. When patterns overlap,
    the first one in ``lrs`` wins. Frozen parameters are left out. Weight decay follows the
    module docstring's rule (none for biases and norm weights). Each group carries
    ``params``, ``lr``, ``weight_decay``, ``name`` and ``param_names``.

    Raises ``ValueError`` when a pattern selects no trainable parameter.

    Usage: ``AdamW(param_groups(model, {"encoder": 1e-4}, default_lr=1e-3))``
    """
    module(model)
    lrs = {} if lrs is None else lrs
    if not isinstance(lrs, Mapping):
        raise TypeError(f"lrs must be a dict pattern -> learning rate, got {type(lrs).__name__}")
    if lrs:
        _pattern_list(list(lrs))  # glob strings only
    rates = {pat: finite_number(lr, f"the learning rate for {pat!r}", low=0, strict=True) for pat, lr in lrs.items()}
    default_lr = finite_number(default_lr, "default_lr", low=0, strict=True)
    weight_decay = finite_number(weight_decay, "weight_decay", low=0)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameter (all frozen?)")
    members: dict[str | None, list[tuple[str, nn.Parameter]]] = {pat: [] for pat in [*rates, None]}  # None: default
    for n, p in trainable:
        members[next((pat for pat in rates if _matches(n, pat)), None)].append((n, p))
    for pat in rates:
        if not members[pat]:
            raise ValueError(f"pattern {pat!r} in lrs selects {_why_empty(model, pat, trainable)}; trainable "
                             f"parameter names look like: {examples([n for n, _ in trainable])}")
    groups = []
    for pat, lr in [*rates.items(), (None, default_lr)]:
        groups += _groups("default" if pat is None else pat, members[pat], lr, weight_decay)
    return groups


def _why_empty(model: nn.Module, pattern: str, trainable: list[tuple[str, nn.Parameter]]) -> str:
    if any(_matches(n, pattern) for n, _ in trainable):
        return "nothing: an earlier pattern in lrs already took all its parameters"
    if any(_matches(n, pattern) for n, _ in model.named_parameters()):
        return "only frozen parameters"
    return "no parameter"


def layerwise_lr_decay(layers: Sequence[nn.Module | Sequence[nn.Module]], base_lr: float, decay: float, *,
                       model: nn.Module | None = None, weight_decay: float = 0.0) -> list[dict[str, Any]]:
    r"""Parameter groups with layer-wise learning-rate decay, LLRD (chapters 07, 08).

    ``layers`` lists the layers from the **bottom** (input side) to the **top** (output side);
    each entry is a module or a list of modules forming one layer. With :math:`L` layers,
    layer :math:`l` (0-based) gets :math:`\text{base\_lr}\cdot\text{decay}^{\,L-1-l}`: the top
    layer trains at ``base_lr``, each layer below at ``decay`` times the rate above it.
    Frozen parameters are left out; weight decay follows the module docstring's rule. With
    ``model=`` every trainable parameter of the model must be in some layer. A parameter in
    two layers (e.g. tied input and output embeddings) is an error.

    Usage::

        groups = layerwise_lr_decay([[resnet.conv1, resnet.bn1], resnet.layer1, resnet.layer2,
                                     resnet.layer3, resnet.layer4, resnet.fc], 1e-3, 0.7, model=resnet)
        optimizer = torch.optim.AdamW(groups)
    """
    base_lr = finite_number(base_lr, "base_lr", low=0, strict=True)
    decay = finite_number(decay, "decay", low=0, strict=True)
    if decay > 1:
        raise ValueError(f"decay must be in (0, 1], got {decay:g}: lower layers train more slowly")
    weight_decay = finite_number(weight_decay, "weight_decay", low=0)
    names = {id(p): n for n, p in module(model).named_parameters()} if model is not None else None
    owner: dict[int, int] = {}  # parameter id -> its layer
    groups: list[dict[str, Any]] = []
    for depth, params in enumerate(_layer_params(layers, names)):
        for n, p in params:
            if owner.setdefault(id(p), depth) != depth:
                raise ValueError(f"parameter {n} is in both layer {owner[id(p)]} and layer {depth} (tied "
                                 "weights?); put each parameter in one layer")
        trainable = list({id(p): (n, p) for n, p in params if p.requires_grad}.values())
        lr = base_lr * decay ** (len(layers) - 1 - depth)
        if not 0 < lr < float("inf"):
            raise ValueError(f"layer {depth} would get a learning rate of {lr:g} (base_lr={base_lr:g} times "
                             f"decay={decay:g} to the power {len(layers) - 1 - depth}): use a decay closer to 1")
        groups += _groups(f"layer {depth}", trainable, lr, weight_decay)
    if model is not None:
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in owner]
        if missing:
            raise ValueError(f"{len(missing)} trainable parameter tensor(s) belong to no layer: {examples(missing)}; "
                             "add them to a layer (e.g. the head to the top layer) or freeze them")
    if not groups:
        raise ValueError("no trainable parameter in any layer (all frozen?)")
    return groups


def _layer_params(layers: Any, names: dict[int, str] | None) -> list[list[tuple[str, nn.Parameter]]]:
    """For each layer, its (name, parameter) pairs, named as in ``model`` when ``names`` is given."""
    if isinstance(layers, nn.Module) or not isinstance(layers, Sequence) or isinstance(layers, str):
        raise TypeError("layers must be a list of layers from bottom to top, e.g. [model.embeddings, "
                        f"*model.encoder.layer, model.classifier], got {type(layers).__name__}")
    if not layers:
        raise ValueError("layers is empty")
    result = []
    for depth, entry in enumerate(layers):
        mods = [entry] if isinstance(entry, nn.Module) else entry
        if isinstance(mods, str) or not isinstance(mods, Sequence) or not mods or not all(
                isinstance(m, nn.Module) for m in mods):
            raise TypeError(f"layer {depth} must be a module or a non-empty list of modules, got {entry!r:.80}")
        params = [(f"layer {depth}.{j}.{n}", p) for j, m in enumerate(mods) for n, p in m.named_parameters()]
        if not params:
            raise ValueError(f"layer {depth} has no parameters")
        if names is not None:
            if any(id(p) not in names for _, p in params):
                raise ValueError(f"a module of layer {depth} is not part of the model")
            params = [(names[id(p)], p) for _, p in params]
        result.append(params)
    return result


def describe_param_groups(groups_or_optimizer: Any) -> Any:
    """A table (pandas DataFrame) of parameter groups: name, lr, weight_decay, tensors, parameters (chapter 03).

    Accepts the list returned by :func:`param_groups` / :func:`layerwise_lr_decay` or an
    optimizer built from it.

    Usage: ``describe_param_groups(optimizer)``
    """
    import pandas as pd

    groups = getattr(groups_or_optimizer, "param_groups", groups_or_optimizer)
    if isinstance(groups, (str, Mapping)) or not isinstance(groups, Sequence) or not groups or not all(
            isinstance(g, Mapping) and "params" in g for g in groups):
        raise TypeError("describe_param_groups needs an optimizer or a non-empty list of parameter groups "
                        "(dicts with 'params'), such as param_groups(...) returns")
    rows = []
    for i, g in enumerate(groups):
        if not isinstance(g["params"], (list, tuple, torch.Tensor)):
            raise TypeError(f"group {i}'s params is a {type(g['params']).__name__}, which describing it would use "
                            "up, leaving the optimizer nothing to train: make it a list, e.g. list(model.parameters())")
        params = [g["params"]] if isinstance(g["params"], torch.Tensor) else list(g["params"])
        rows.append({"group": g.get("name", str(i)), "lr": g.get("lr"), "weight_decay": g.get("weight_decay"),
                     "tensors": len(params), "parameters": sum(p.numel() for p in params)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- L2-SP
def l2sp_penalty(model: nn.Module, reference_state: Mapping[str, torch.Tensor], alpha: float,
                 beta: float = 0.0) -> torch.Tensor:
    r"""The L2-SP penalty :math:`\alpha\|\theta_S-\theta_S^{pre}\|^2+\beta\|\theta_{new}\|^2` (chapter 03).

    ``reference_state`` maps parameter names to their pretrained values
    (:math:`\theta^{pre}`); trainable parameters found there are the *shared* ones
    :math:`\theta_S` and are pulled towards their pretrained values with strength ``alpha``.
    Trainable parameters *not* in ``reference_state`` (new heads) get the ordinary L2 term
    with strength ``beta``. Frozen parameters are skipped (their penalty is a constant).
    The gradient with respect to a shared parameter is :math:`2\alpha(\theta-\theta^{pre})`.

    Li, Grandvalet & Davoine (2018), "Explicit inductive bias for transfer learning with
    convolutional networks", write :math:`\frac{\alpha}{2}\|\cdot\|^2`; we drop the ½, so
    our ``alpha`` equals their α/2.

    Usage: ``loss = ce + l2sp_penalty(model, pretrained_state, alpha=1e-2)``
    """
    module(model)
    if not isinstance(reference_state, Mapping):
        raise TypeError("reference_state must be a dict name -> tensor (e.g. a copy of the pretrained "
                        f"model's state_dict()), got {type(reference_state).__name__}")
    alpha, beta = finite_number(alpha, "alpha", low=0), finite_number(beta, "beta", low=0)
    named = list(model.named_parameters())
    if not any(n in reference_state for n, _ in named):
        raise ValueError("no parameter of the model is in reference_state; its keys look like: "
                         f"{examples([str(k) for k in reference_state])}")
    shared, new = [], []
    for name, p in named:
        ref = reference_state.get(name)
        if ref is not None and (not isinstance(ref, torch.Tensor) or ref.shape != p.shape):
            got = tuple(ref.shape) if isinstance(ref, torch.Tensor) else type(ref).__name__
            raise ValueError(f"parameter {name!r} has shape {tuple(p.shape)} but its pretrained value is {got}; "
                             "a replaced head is a *new* parameter: leave it out of reference_state")
        if ref is not None and ref.device == p.device and ref.data_ptr() == p.data_ptr() and p.numel():
            raise ValueError(f"reference_state[{name!r}] shares memory with the parameter itself, so it moves with "
                             "it and the penalty stays 0: pass a copy, e.g. {k: v.detach().clone() for k, v in "
                             "model.state_dict().items()} (or use L2SP, which keeps one)")
        if p.requires_grad and ref is not None:
            shared.append((p - ref.to(device=p.device, dtype=p.dtype)).pow(2).sum())
        elif p.requires_grad:
            new.append(p.pow(2).sum())
    total = named[0][1].new_zeros(())
    if shared and alpha:
        total = total + alpha * torch.stack(shared).sum()
    if new and beta:
        total = total + beta * torch.stack(new).sum()
    return total


class L2SP:
    r"""L2-SP regulariser that remembers the pretrained values when it is created (chapter 03).

    ``L2SP(model, alpha, beta, new=patterns)`` snapshots the current (pretrained) values of
    every parameter except those selected by ``new`` (the freshly initialised head); calling
    it returns :math:`\alpha\|\theta_S-\theta_S^{pre}\|^2+\beta\|\theta_{new}\|^2` for the
    model's *current* parameters (see :func:`l2sp_penalty`); ``distance()`` returns
    :math:`\|\theta_S-\theta_S^{pre}\|`. Create it right after loading the pretrained weights
    and attaching the new head.

    Usage::

        reg = L2SP(model, alpha=1e-2, beta=0.0, new="head")
        def loss_fn(out, y):
            return {"ce": F.cross_entropy(out, y), "l2sp": reg()}
    """

    def __init__(self, model: nn.Module, alpha: float = 1e-2, beta: float = 0.0, new: Patterns | None = None) -> None:
        module(model)
        self.alpha, self.beta = finite_number(alpha, "alpha", low=0), finite_number(beta, "beta", low=0)
        new_names = {n for n, _ in _select(model, new)} if new is not None else set()
        self.model = model
        self.reference = {n: p.detach().clone() for n, p in model.named_parameters() if n not in new_names}
        if not self.reference:
            raise ValueError("`new` selects every parameter (or the model has none); nothing is left to keep close")
        self.new_names = sorted(new_names)

    def __call__(self) -> torch.Tensor:
        for name, p in self.model.named_parameters():  # follow the model if it moved to another device
            ref = self.reference.get(name)
            if ref is not None and ref.device != p.device:
                self.reference[name] = ref.to(p.device)
        return l2sp_penalty(self.model, self.reference, self.alpha, self.beta)

    def distance(self) -> float:
        """‖θ_S − θ_S^pre‖ (not squared): how far the shared parameters have moved."""
        with torch.no_grad():
            squares = [(p - self.reference[n].to(p.device)).pow(2).sum()
                       for n, p in self.model.named_parameters() if n in self.reference]
            return float(torch.stack(squares).sum()) ** 0.5

    def __repr__(self) -> str:
        return (f"L2SP(alpha={self.alpha}, beta={self.beta}, shared tensors={len(self.reference)}, "
                f"new={self.new_names})")
