"""Batches for ``fit`` and ``evaluate`` (chapter 01): move them, run the model, find the loss.

A batch is a tuple ``(inputs..., target)`` or a dict (Hugging Face style). The loss is
read from, in order: ``loss_fn(model(*inputs), target)`` when ``loss_fn`` is given,
``model(**batch).loss`` for dict batches, or ``model(*batch)`` itself. For a dict batch
the "target" handed to ``loss_fn`` and to every metric is the whole batch dict (so a
metric can read ``batch["labels"]``, ``batch["next_sentence_label"]``, ...). A loss may be a
scalar tensor, an object with ``.loss``, or a dict of named scalar losses (multi-task): the
total is ``losses["loss"]`` if present, else the sum, and every name is logged.

Usage::

    batch = to_device(batch, device)
    losses, outputs, targets = compute_losses(model, batch, loss_fn)
    losses["loss"].backward()
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from ptcourse._checks import positive_int


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Every tensor of ``batch`` (a tensor, tuple, list or dict, nested) on ``device`` (chapter 01).

    Usage: ``x, y = to_device((x, y), device)``
    """
    if isinstance(batch, torch.Tensor):
        if channels_last and batch.ndim == 4:
            return batch.to(device, non_blocking=True, memory_format=torch.channels_last)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch


def batch_size(batch: Any) -> int:
    """The number of examples in ``batch``: the length of its first tensor (chapter 01).

    Usage: ``n = batch_size((x, y))``
    """
    if isinstance(batch, Mapping):
        if not batch:
            raise ValueError("a dict batch must not be empty")
        first = next(iter(batch.values()))
    elif isinstance(batch, (tuple, list)) and batch:
        first = batch[0]
    else:
        raise TypeError(f"a batch must be a non-empty tuple, list or dict, got {type(batch).__name__}")
    if not hasattr(first, "__len__") or getattr(first, "ndim", 1) == 0:
        raise TypeError(f"the first item of a batch must be a batched tensor, got {type(first).__name__}")
    if len(first) == 0:
        raise ValueError("a batch holds no examples (its first tensor has length 0); leave empty batches out")
    return len(first)


def compute_losses(model: nn.Module, batch: Any, loss_fn: Callable | None) -> tuple[dict[str, torch.Tensor], Any, Any]:
    """Run ``model`` on one batch: ``(named losses including "loss", outputs, targets)`` (chapter 01).

    Usage: ``losses, outputs, targets = compute_losses(model, (x, y), nn.CrossEntropyLoss())``
    """
    if isinstance(batch, Mapping):
        targets = batch  # loss_fn and metrics see the whole dict
        outputs = model(**batch)
        losses = loss_fn(outputs, targets) if loss_fn is not None else outputs
    elif isinstance(batch, (tuple, list)):
        if loss_fn is not None:
            if len(batch) < 2:
                raise ValueError("with loss_fn, a batch must be (inputs..., target); got a single tensor")
            *inputs, targets = batch
            outputs = model(*inputs)
            losses = loss_fn(outputs, targets)
        else:
            targets = batch[-1]
            try:
                outputs = losses = model(*batch)
            except TypeError as error:
                raise TypeError(f"without loss_fn the model is called with the whole batch, model(*batch), and must "
                                f"return its loss; that failed ({error}). Pass loss_fn=... (e.g. "
                                "nn.CrossEntropyLoss()) to get model(*inputs) scored against the target") from error
    else:
        raise TypeError(f"a batch must be a tuple, list or dict, got {type(batch).__name__}")
    return named_losses(losses), outputs, targets


def named_losses(losses: Any) -> dict[str, torch.Tensor]:
    """``{"loss": total, **named}`` from a scalar tensor, an output with ``.loss``, or a dict (chapter 02).

    Usage: ``named_losses({"mlm": a, "nsp": b})["loss"]  # a + b``
    """
    if hasattr(losses, "loss") and not isinstance(losses, torch.Tensor):  # a Hugging Face ModelOutput
        if losses.loss is None:
            raise ValueError(
                "the model returned no loss: pass the labels in the batch (e.g. "
                "BertForPreTraining needs both labels and next_sentence_label)"
            )
        losses = losses.loss
    if isinstance(losses, torch.Tensor):
        return {"loss": _scalar(losses, "the loss")}
    if isinstance(losses, Mapping) and losses:
        named = {k: _scalar(v, f"loss {k!r}") for k, v in losses.items()}
        if "loss" not in named:
            named["loss"] = sum(named.values())
        return named
    raise TypeError(
        "could not find a loss: pass loss_fn=..., or make the model return a scalar loss tensor, "
        f"a dict of named scalar losses, or an output with .loss (got {type(losses).__name__})"
    )


def _scalar(value: Any, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must be a scalar tensor, got {type(value).__name__}")
    if value.ndim != 0:
        raise ValueError(
            f"{what} has shape {tuple(value.shape)}, but a loss must be one number per batch: "
            "average it (e.g. .mean(), or reduction='mean' in the loss function); if these are the model's "
            "outputs, not a loss, pass loss_fn=..."
        )
    return value


def accumulation_groups(loader: Iterable, k: int) -> Iterator[list[Any]]:
    """The batches of ``loader`` in lists of ``k`` (the last may be shorter), one optimizer step each (chapter 01).

    Usage: ``for group in accumulation_groups(loader, 4): ...``
    """
    k = positive_int(k, "grad_accum_steps")
    batches = iter(loader)
    while group := list(itertools.islice(batches, k)):
        yield group


class Meter:
    """Averages of per-batch values weighted by batch size, kept on the device until read (chapter 01).

    Adding a tensor is one in-place operation and never waits for the GPU; ``means()`` does.

    Usage: ``meter.add({"loss": loss}, n=len(x)); meter.means()["loss"]``
    """

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.count = 0

    def add(self, values: Mapping[str, Any], n: int) -> None:
        for k, v in values.items():
            if isinstance(v, torch.Tensor):
                if k in self.sums:
                    self.sums[k].add_(v.detach(), alpha=n)
                else:
                    self.sums[k] = v.detach().float() * n
            else:
                self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}
