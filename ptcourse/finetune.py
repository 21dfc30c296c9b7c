"""Fine-tuning helpers: freezing, parameter groups, L2-SP and layer-wise LR decay.

Usage::

    from ptcourse.finetune import freeze, param_groups, L2SP, layerwise_lr_decay
    freeze(model.encoder)                                   # linear probe
    groups = param_groups(model, {"encoder": 1e-4}, default_lr=1e-3)
    optimizer = torch.optim.AdamW(groups)
    reg = L2SP(model, alpha=1e-2, new="head")               # λ‖θ − θ_pre‖² on the encoder

Selecting parameters
--------------------
Several functions take *patterns* that select parameters by their name in
``model.named_parameters()`` (names look like ``"encoder.0.weight"``):

- a ``str`` is a shell-style glob (``*``, ``?``, ``[...]``, see :mod:`fnmatch`), matched
  against the whole name; a pattern also matches every parameter *below* it, so
  ``"encoder"`` selects ``"encoder.0.weight"`` and ``"encoder.0.bias"``, and
  ``"layer.1"`` selects ``"layer.1.weight"`` but not ``"layer.10.weight"``;
- a compiled regular expression (``re.compile(r"layer\\.(10|11)\\.")``) selects the names
  in which it is found (``pattern.search(name)``).

A pattern that selects nothing is an error: a typo must not silently train the wrong
parameters.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import torch
from torch import nn

Pattern = Union[str, "re.Pattern[str]"]
Patterns = Union[Pattern, Iterable[Pattern]]

__all__ = [
    "freeze",
    "unfreeze",
    "count_trainable",
    "count_parameters",
    "param_groups",
    "l2sp_penalty",
    "L2SP",
    "layerwise_lr_decay",
    "describe_param_groups",
]


# --------------------------------------------------------------------------- matching
def _as_pattern_list(patterns: Patterns, what: str = "patterns") -> list[Pattern]:
    if isinstance(patterns, (str, re.Pattern)):
        return [patterns]
    try:
        items = list(patterns)
    except TypeError:
        raise TypeError(
            f"{what} must be a glob string, a compiled regex or a list of them, "
            f"got {type(patterns).__name__}"
        ) from None
    for p in items:
        if not isinstance(p, (str, re.Pattern)):
            raise TypeError(
                f"each entry of {what} must be a glob string or a compiled regex, "
                f"got {type(p).__name__}: {p!r}"
            )
    if not items:
        raise ValueError(f"{what} is empty; pass at least one pattern (or None for all)")
    return items


def _matches(name: str, pattern: Pattern) -> bool:
    """Whether parameter ``name`` is selected by ``pattern`` (see the module docstring)."""
    if isinstance(pattern, re.Pattern):
        return pattern.search(name) is not None
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


def _examples(names: Sequence[str], k: int = 6) -> str:
    shown = ", ".join(names[:k])
    return shown + (f", ... ({len(names)} in all)" if len(names) > k else "")


def _check_module(module: Any, what: str = "model") -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{what} must be a torch.nn.Module, got {type(module).__name__}")


def _select(module: nn.Module, patterns: Patterns | None) -> list[tuple[str, nn.Parameter]]:
    """The named parameters of ``module`` selected by ``patterns`` (all when None)."""
    _check_module(module)
    named = list(module.named_parameters())
    if patterns is None:
        return named
    plist = _as_pattern_list(patterns)
    names = [n for n, _ in named]
    for p in plist:
        if not any(_matches(n, p) for n in names):
            shown = p.pattern if isinstance(p, re.Pattern) else p
            raise ValueError(
                f"pattern {shown!r} matches no parameter; parameter names look like: "
                f"{_examples(names)}"
            )
    return [(n, t) for n, t in named if any(_matches(n, p) for p in plist)]


# --------------------------------------------------------------------------- freezing
def _set_requires_grad(module: nn.Module, patterns: Patterns | None, flag: bool) -> int:
    selected = _select(module, patterns)
    for _, p in selected:
        p.requires_grad_(flag)
    return sum(p.numel() for _, p in selected)


def freeze(module: nn.Module, patterns: Patterns | None = None) -> int:
    """Stop training parameters: set ``requires_grad=False``.

    ``freeze(model.encoder)`` freezes a whole sub-module; ``freeze(model, "encoder.*")`` or
    ``freeze(model, ["embeddings", re.compile(r"layer\\.[0-5]\\.")])`` selects parameters by
    name (glob strings or compiled regexes, see the module docstring). Returns the number of
    scalar parameters selected (frozen now, whatever their state before).

    Frozen parameters get no gradient, so no optimizer step changes them. Note that a
    frozen BatchNorm layer still updates its running statistics in ``model.train()`` mode;
    call ``.eval()`` on it (or avoid BatchNorm) for a truly fixed feature extractor.

    Usage: ``n = freeze(model.encoder); print(f"froze {n:,} parameters")``
    """
    return _set_requires_grad(module, patterns, False)


def unfreeze(module: nn.Module, patterns: Patterns | None = None) -> int:
    """Train parameters again: set ``requires_grad=True``; the opposite of :func:`freeze`.

    Returns the number of scalar parameters selected.

    Usage: ``freeze(model); unfreeze(model, "head")  # train only the head``
    """
    return _set_requires_grad(module, patterns, True)


def count_trainable(model: nn.Module) -> int:
    """Number of scalar parameters with ``requires_grad=True``.

    Usage: ``print(f"{count_trainable(model):,} of {count_parameters(model):,} trainable")``
    """
    _check_module(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters, trainable or not.

    Usage: ``count_parameters(model)``
    """
    _check_module(model)
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- weight decay
def _owner_classes(model: nn.Module) -> dict[str, str]:
    """Parameter name -> lower-cased class name of the module that owns it."""
    owners: dict[str, str] = {}
    for mod_name, mod in model.named_modules():
        for p_name, _ in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            owners[full] = type(mod).__name__.lower()
    return owners


def _is_no_decay(name: str, owner: str, no_decay: Sequence[str]) -> bool:
    low = name.lower()
    return any(nd.lower() in low or nd.lower() in owner for nd in no_decay)


def _check_lr(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}: {value!r}")
    if not value > 0:
        raise ValueError(f"{what} must be > 0, got {value}")
    return float(value)


def _check_decay_args(weight_decay: Any, no_decay: Any) -> tuple[float, tuple[str, ...]]:
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
        raise TypeError(f"weight_decay must be a number, got {weight_decay!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if isinstance(no_decay, str):
        no_decay = (no_decay,)
    no_decay = tuple(no_decay or ())
    if not all(isinstance(s, str) for s in no_decay):
        raise TypeError(f"no_decay must be a sequence of strings, got {no_decay!r}")
    return float(weight_decay), no_decay


def _split_decay(
    name: str,
    entries: list[tuple[str, nn.Parameter]],
    lr: float,
    weight_decay: float,
    no_decay: Sequence[str],
    owners: Mapping[str, str],
) -> list[dict[str, Any]]:
    """One or two optimizer groups (with / without weight decay) sharing one learning rate."""
    decay = [(n, p) for n, p in entries if not _is_no_decay(n, owners.get(n, ""), no_decay)]
    plain = [(n, p) for n, p in entries if _is_no_decay(n, owners.get(n, ""), no_decay)]
    groups = []
    for members, wd, suffix in ((decay, weight_decay, ""), (plain, 0.0, " (no decay)")):
        if members:
            groups.append(
                {
                    "params": [p for _, p in members],
                    "lr": lr,
                    "weight_decay": wd,
                    "name": name + suffix,
                    "param_names": [n for n, _ in members],
                }
            )
    return groups


# --------------------------------------------------------------------------- param groups
def param_groups(
    model: nn.Module,
    lrs: Mapping[Pattern, float],
    default_lr: float,
    weight_decay: float = 0.01,
    no_decay: Sequence[str] = ("bias", "norm"),
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with their own learning rates (and weight decay).

    ``lrs`` maps a pattern (glob or compiled regex, see the module docstring) to a learning
    rate; trainable parameters that no pattern selects get ``default_lr``. When patterns
    overlap, the first one in ``lrs`` wins. Frozen parameters are left out.

    Weight decay: a parameter gets ``weight_decay`` unless one of the ``no_decay`` strings
    occurs (case-insensitively) in its name or in the class name of the module that owns it
    -- so ``"norm"`` catches ``BatchNorm2d``, ``LayerNorm`` and ``GroupNorm`` whatever their
    attribute names; those parameters get 0. Each group also carries ``"name"`` and
    ``"param_names"`` (optimizers keep extra keys; see :func:`describe_param_groups`).

    Raises ``ValueError`` when a pattern selects no trainable parameter.

    Usage: ``AdamW(param_groups(model, {"encoder": 1e-4, "head": 1e-3}, default_lr=1e-3))``
    """
    _check_module(model)
    if not isinstance(lrs, Mapping):
        raise TypeError(f"lrs must be a dict pattern -> learning rate, got {type(lrs).__name__}")
    default_lr = _check_lr(default_lr, "default_lr")
    weight_decay, no_decay = _check_decay_args(weight_decay, no_decay)
    patterns = list(lrs)
    rates = {}
    for pat in patterns:
        if not isinstance(pat, (str, re.Pattern)):
            raise TypeError(
                f"each key of lrs must be a glob string or a compiled regex, got {type(pat).__name__}: {pat!r}"
            )
        rates[pat] = _check_lr(lrs[pat], f"the learning rate for {pat!r}")

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameter (all frozen?)")
    members: dict[Any, list[tuple[str, nn.Parameter]]] = {pat: [] for pat in patterns}
    rest: list[tuple[str, nn.Parameter]] = []
    for n, p in trainable:
        for pat in patterns:
            if _matches(n, pat):
                members[pat].append((n, p))
                break
        else:
            rest.append((n, p))
    for pat in patterns:
        if not members[pat]:
            shown = pat.pattern if isinstance(pat, re.Pattern) else pat
            if any(_matches(n, pat) for n, _ in trainable):
                why = "nothing: an earlier pattern in lrs already took all its parameters"
            elif any(_matches(n, pat) for n, _ in model.named_parameters()):
                why = "only frozen parameters"
            else:
                why = "no parameter"
            raise ValueError(
                f"pattern {shown!r} in lrs selects {why}; trainable parameter names look "
                f"like: {_examples([n for n, _ in trainable])}"
            )

    owners = _owner_classes(model)
    groups: list[dict[str, Any]] = []
    for pat in patterns:
        label = pat.pattern if isinstance(pat, re.Pattern) else pat
        groups += _split_decay(label, members[pat], rates[pat], weight_decay, no_decay, owners)
    groups += _split_decay("default", rest, default_lr, weight_decay, no_decay, owners)
    return groups


def describe_param_groups(groups_or_optimizer: Any) -> "Any":
    """A table (pandas DataFrame) of parameter groups: name, lr, weight_decay, #parameters.

    Accepts the list returned by :func:`param_groups` / :func:`layerwise_lr_decay` or an
    optimizer built from it.

    Usage: ``describe_param_groups(optimizer)``
    """
    import pandas as pd

    groups = getattr(groups_or_optimizer, "param_groups", groups_or_optimizer)
    rows = []
    for i, g in enumerate(groups):
        rows.append(
            {
                "group": g.get("name", str(i)),
                "lr": g.get("lr"),
                "weight_decay": g.get("weight_decay"),
                "tensors": len(g["params"]),
                "parameters": sum(p.numel() for p in g["params"]),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- L2-SP
def l2sp_penalty(
    model: nn.Module,
    reference_state: Mapping[str, torch.Tensor],
    alpha: float,
    beta: float = 0.0,
) -> torch.Tensor:
    r"""The L2-SP penalty :math:`\alpha\|\theta_S-\theta_S^{pre}\|^2+\beta\|\theta_{new}\|^2`.

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
    _check_module(model)
    if not isinstance(reference_state, Mapping):
        raise TypeError(
            "reference_state must be a dict name -> tensor (e.g. a copy of the pretrained "
            f"model's state_dict()), got {type(reference_state).__name__}"
        )
    for value, what in ((alpha, "alpha"), (beta, "beta")):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{what} must be a number, got {value!r}")
        if value < 0:
            raise ValueError(f"{what} must be >= 0, got {value}")
    shared: list[torch.Tensor] = []
    new: list[torch.Tensor] = []
    any_shared = False
    for name, p in model.named_parameters():
        if name in reference_state:
            any_shared = True
            ref = reference_state[name]
            if ref.shape != p.shape:
                raise ValueError(
                    f"parameter {name!r} has shape {tuple(p.shape)} but its pretrained value "
                    f"has shape {tuple(ref.shape)}; a replaced head is a *new* parameter: "
                    "leave it out of reference_state"
                )
            if p.requires_grad:
                ref = ref.to(device=p.device, dtype=p.dtype)
                shared.append((p - ref).pow(2).sum())
        elif p.requires_grad:
            new.append(p.pow(2).sum())
    if not any_shared:
        raise ValueError(
            "no parameter of the model is in reference_state; its keys look like: "
            f"{_examples(list(reference_state))}"
        )
    zero = next(model.parameters()).new_zeros(())
    total = zero
    if shared and alpha:
        total = total + alpha * torch.stack(shared).sum()
    if new and beta:
        total = total + beta * torch.stack(new).sum()
    return total


class L2SP:
    r"""L2-SP regulariser that remembers the pretrained values when it is created.

    ``L2SP(model, alpha, beta, new=patterns)`` snapshots the current (pretrained) values of
    every parameter except those selected by ``new`` (the freshly initialised head); calling
    it returns :math:`\alpha\|\theta_S-\theta_S^{pre}\|^2+\beta\|\theta_{new}\|^2` for the
    model's *current* parameters (see :func:`l2sp_penalty`). Create it before training,
    right after loading the pretrained weights and attaching the new head.

    Usage::

        reg = L2SP(model, alpha=1e-2, beta=0.0, new="head")
        def loss_fn(out, y):
            return {"ce": F.cross_entropy(out, y), "l2sp": reg()}
    """

    def __init__(
        self,
        model: nn.Module,
        alpha: float = 1e-2,
        beta: float = 0.0,
        new: Patterns | None = None,
    ) -> None:
        _check_module(model)
        new_names = {n for n, _ in _select(model, new)} if new is not None else set()
        self.model = model
        self.alpha = alpha
        self.beta = beta
        self.reference: dict[str, torch.Tensor] = {
            n: p.detach().clone() for n, p in model.named_parameters() if n not in new_names
        }
        if not self.reference:
            raise ValueError("`new` selects every parameter; nothing is left to keep close")
        self.new_names = sorted(new_names)

    def __call__(self) -> torch.Tensor:
        # keep the snapshot on the parameters' device (the model may have moved since)
        for name, p in self.model.named_parameters():
            ref = self.reference.get(name)
            if ref is not None and ref.device != p.device:
                self.reference[name] = ref.to(p.device)
        return l2sp_penalty(self.model, self.reference, self.alpha, self.beta)

    def distance(self) -> float:
        """‖θ_S − θ_S^pre‖ (not squared): how far the shared parameters have moved."""
        with torch.no_grad():
            sq = sum(
                (p - self.reference[n].to(p.device)).pow(2).sum().item()
                for n, p in self.model.named_parameters()
                if n in self.reference
            )
        return float(sq) ** 0.5

    def __repr__(self) -> str:
        return (
            f"L2SP(alpha={self.alpha}, beta={self.beta}, shared tensors={len(self.reference)}, "
            f"new={self.new_names})"
        )


# --------------------------------------------------------------------------- LLRD
LayerSpec = Union[nn.Module, Pattern, Sequence[Union[nn.Module, Pattern]]]


def layerwise_lr_decay(
    layers: Sequence[LayerSpec] | Mapping[str, LayerSpec],
    base_lr: float,
    decay: float,
    *,
    model: nn.Module | None = None,
    weight_decay: float = 0.0,
    no_decay: Sequence[str] = ("bias", "norm"),
) -> list[dict[str, Any]]:
    r"""Parameter groups with layer-wise learning-rate decay (LLRD).

    ``layers`` lists the layers from the **bottom** (input side) to the **top** (output
    side); with :math:`L` layers, layer :math:`l` (0-based) gets the learning rate
    :math:`\text{base\_lr}\cdot\text{decay}^{\,L-1-l}`: the top layer trains at ``base_lr``
    and each layer below at ``decay`` times the rate of the layer above it.

    Each entry is a module, a name pattern (needs ``model=``; see the module docstring), or
    a list of those forming one layer (e.g. ``["conv1", "bn1"]``). A dict name -> entry
    names the groups. When ``model`` is given, every trainable parameter must belong to
    exactly one layer (``ValueError`` otherwise). Frozen parameters are left out.

    Usage::

        groups = layerwise_lr_decay(
            [["conv1", "bn1"], "layer1", "layer2", "layer3", "layer4", "fc"],
            base_lr=1e-3, decay=0.7, model=resnet)
        optimizer = torch.optim.AdamW(groups)
    """
    base_lr = _check_lr(base_lr, "base_lr")
    if isinstance(decay, bool) or not isinstance(decay, (int, float)):
        raise TypeError(f"decay must be a number, got {decay!r}")
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    weight_decay, no_decay = _check_decay_args(weight_decay, no_decay)
    if model is not None:
        _check_module(model)
    if isinstance(layers, Mapping):
        named_layers = list(layers.items())
    elif isinstance(layers, (nn.Module, str, re.Pattern)) or not isinstance(layers, Sequence):
        raise TypeError(
            "layers must be a list (bottom to top) of modules / name patterns, or a dict "
            f"name -> layer, got {type(layers).__name__}"
        )
    else:
        named_layers = [(f"layer {i}", spec) for i, spec in enumerate(layers)]
    if not named_layers:
        raise ValueError("layers is empty")

    # name every parameter by the model's naming when we have the model
    model_names: dict[int, str] = {}
    owners: dict[str, str] = {}
    if model is not None:
        model_names = {id(p): n for n, p in model.named_parameters()}
        owners = _owner_classes(model)

    def layer_params(spec: LayerSpec, label: str) -> list[tuple[str, nn.Parameter, str]]:
        """(name, parameter, owner class) for every parameter of one layer."""
        items = [spec] if isinstance(spec, (nn.Module, str, re.Pattern)) else list(spec)
        if not items:
            raise ValueError(f"{label} is empty")
        found: list[tuple[str, nn.Parameter, str]] = []
        for j, item in enumerate(items):
            if isinstance(item, nn.Module):
                local = _owner_classes(item)
                params = list(item.named_parameters())
                if not params:
                    raise ValueError(f"a module in {label} has no parameters")
                for n, p in params:
                    if model is not None and id(p) not in model_names:
                        raise ValueError(f"a module in {label} is not part of the model")
                    found.append((model_names.get(id(p), f"{label}[{j}].{n}"), p, local[n]))
            elif isinstance(item, (str, re.Pattern)):
                if model is None:
                    raise ValueError(
                        f"{label} is given by the name pattern {item!r}; pass model= so the "
                        "pattern can be resolved"
                    )
                found += [(n, p, owners[n]) for n, p in _select(model, item)]
            else:
                raise TypeError(
                    f"{label}: expected a module, a name pattern or a list of them, "
                    f"got {type(item).__name__}"
                )
        return found

    n_layers = len(named_layers)
    seen: dict[int, str] = {}
    groups: list[dict[str, Any]] = []
    for depth, (label, spec) in enumerate(named_layers):
        trainable: list[tuple[str, nn.Parameter]] = []
        layer_owners: dict[str, str] = {}
        for n, p, owner in layer_params(spec, str(label)):
            if id(p) in seen:
                if seen[id(p)] == label:
                    continue  # listed twice inside the same layer
                raise ValueError(f"parameter {n!r} is in both {seen[id(p)]} and {label}")
            seen[id(p)] = label
            if p.requires_grad:
                trainable.append((n, p))
                layer_owners[n] = owner
        lr = base_lr * decay ** (n_layers - 1 - depth)
        groups += _split_decay(str(label), trainable, lr, weight_decay, no_decay, layer_owners)

    if model is not None:
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
        if missing:
            raise ValueError(
                f"{len(missing)} trainable parameter tensor(s) belong to no layer: "
                f"{_examples(missing)}; add them to a layer (e.g. the head to the top layer)"
            )
    if not groups:
        raise ValueError("no trainable parameter in any layer (all frozen?)")
    return groups
