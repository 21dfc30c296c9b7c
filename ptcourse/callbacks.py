"""The small pieces ``fit`` runs around its training loop (chapter 01).

- :class:`LossCheck`: stops with a clear error when a training loss is NaN or infinite,
  or does not depend on any trainable parameter;
- :class:`EarlyStopping`: remembers the best epoch and its weights, and says when to stop;
- :class:`LivePlot`: redraws the loss curves in a notebook after every epoch.

Usage::

    stopper = EarlyStopping("val_loss", patience=3)
    stopper.update(row, model)
    if stopper.stopped: ...
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class LossCheck:
    """Checks each training loss of one epoch, without making the GPU wait at every step (chapter 01).

    A loss that does not require grad (detached, computed under ``torch.no_grad()``, or of a
    model whose parameters are all frozen) is an error at once. Finiteness needs the value
    on the host, a synchronisation, so the losses are kept on the device and checked every
    ``every`` batches and at the end of the epoch: a NaN or infinite loss raises
    ``FloatingPointError`` naming the epoch and the first bad batch. Under an fp16 gradient
    scaler a non-finite loss is normal now and then (the scaler skips that step and lowers
    its scale): ``fp16=True`` warns instead, and raises only when no batch of the epoch
    had a finite loss.

    Usage: ``check = LossCheck(epoch=1); check.add(loss); ...; check.finish()``
    """

    def __init__(self, epoch: int, fp16: bool = False, every: int = 100) -> None:
        self.epoch, self.fp16, self.every = epoch, fp16, every
        self.window: list[torch.Tensor] = []
        self.batches = self.bad = 0

    def add(self, loss: torch.Tensor) -> None:
        self.batches += 1
        if not loss.requires_grad:
            raise RuntimeError(
                f"the loss of epoch {self.epoch}, batch {self.batches} does not depend on any trainable "
                "parameter: are all the model's parameters frozen, or was the loss detached (.item(), "
                ".detach(), torch.no_grad())?"
            )
        self.window.append(loss.detach())
        if len(self.window) == self.every:
            self._check_window()

    def _check_window(self) -> None:
        finite = torch.isfinite(torch.stack(self.window))
        first = self.batches - len(self.window) + 1
        self.window = []
        if bool(finite.all()):
            return
        bad_batches = (first + torch.nonzero(~finite).flatten()).tolist()
        if not self.fp16:
            raise FloatingPointError(
                f"the training loss is NaN or infinite at epoch {self.epoch}, batch {bad_batches[0]}; the "
                "weights may no longer be finite. Lower the learning rate, clip the gradients "
                "(max_grad_norm=1.0), or look for NaN/inf in that batch or in the loss function"
            )
        self.bad += len(bad_batches)

    def finish(self) -> None:
        if self.window:
            self._check_window()
        if self.batches and self.bad == self.batches:
            raise FloatingPointError(
                f"every training loss of epoch {self.epoch} was NaN or infinite, even with the fp16 "
                "gradient scaler skipping those steps: lower the learning rate, or use amp='bf16' or amp=False"
            )
        if self.bad:
            warnings.warn(f"epoch {self.epoch}: {self.bad} of {self.batches} training losses were NaN or "
                          "infinite; the fp16 gradient scaler skipped those steps", RuntimeWarning, stacklevel=3)


class EarlyStopping:
    """Tracks the best value of ``monitor``, the epochs since, and the weights of the best epoch (chapter 01).

    ``monitor`` is minimised when its name contains "loss", maximised otherwise (for a
    metric you want small, log its negative). NaN never counts as an improvement. With
    ``patience=None`` it only records the best value; with ``patience=n`` it also keeps
    a copy of the best weights and sets ``stopped`` after n epochs without improvement.

    Usage: ``stopper = EarlyStopping("val_acc", patience=5); stopper.update(row, model)``
    """

    def __init__(self, monitor: str, patience: int | None) -> None:
        self.monitor, self.patience = monitor, patience
        self.minimise = "loss" in monitor
        self.best: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs, self.stopped = 0, False

    def value(self, row: Mapping[str, float]) -> float:
        if self.monitor not in row:
            raise KeyError(f"monitor={self.monitor!r} is not in the history columns {list(row)}")
        return row[self.monitor]

    def update(self, row: Mapping[str, float], model: nn.Module) -> None:
        if self.patience is None and self.monitor not in row:
            return
        value = self.value(row)
        if not math.isnan(value) and (
            self.best is None or math.isnan(self.best) or (value < self.best if self.minimise else value > self.best)
        ):
            self.best, self.bad_epochs = value, 0
            if self.patience is not None:
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        self.stopped = self.patience is not None and self.bad_epochs >= self.patience

    def restore_best(self, model: nn.Module) -> None:
        """Give ``model`` the weights of its best epoch (when early stopping kept them)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_state": self.best_state, "bad_epochs": self.bad_epochs,
                "stopped": self.stopped}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_state = state["best"], state["best_state"]
        self.bad_epochs, self.stopped = state["bad_epochs"], state["stopped"]


class LivePlot:
    """Redraws the loss curves in a notebook after every epoch; does nothing elsewhere (chapter 01).

    Usage: ``live = LivePlot(); live.update(rows)``
    """

    def __init__(self) -> None:
        self.handle = None
        try:
            from IPython import get_ipython

            self.enabled = get_ipython() is not None and "IPKernelApp" in get_ipython().config
        except ImportError:
            self.enabled = False

    def update(self, rows: list[dict[str, float]]) -> None:
        if not self.enabled:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        from ptcourse.plots import plot_history

        fig, ax = plt.subplots(figsize=(6, 3.5))
        plot_history(rows, columns=[c for c in rows[0] if c.endswith("loss")], ax=ax)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)
