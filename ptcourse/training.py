"""The training loop every chapter uses: ``fit`` and ``evaluate``.

Usage::

    from ptcourse import fit, evaluate, accuracy
    history = fit(model, train_loader, epochs=10, loss_fn=nn.CrossEntropyLoss(),
                  val_loader=val_loader, metrics={"acc": accuracy})
    history.plot(x="epoch", y=["train_loss", "val_loss"])
    evaluate(model, test_loader, loss_fn=nn.CrossEntropyLoss(), metrics={"acc": accuracy})

A batch is a tuple ``(inputs..., target)`` or a dict (Hugging Face style). The loss is
read from, in order: ``loss_fn(model(*inputs), target)`` when ``loss_fn`` is given,
``model(**batch).loss`` for dict batches, or ``model(*batch)`` itself. For a dict batch
the "target" handed to ``loss_fn`` and to every metric is the whole batch dict (so a
metric can read ``batch["labels"]``, ``batch["next_sentence_label"]``, ...). A loss may be a
tensor, an object with ``.loss``, or a dict of named losses (multi-task): the total
is ``losses["loss"]`` if present, else the sum, and every name is logged.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ptcourse.device import get_device

Metric = Callable[[Any, torch.Tensor], float]


def accuracy(outputs: Any, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max over the last dimension equals the target.

    Targets equal to -100 (PyTorch's and Hugging Face's "ignore" label) are skipped.
    ``targets`` may also be a dict batch (Hugging Face style); its ``"labels"`` are used.

    Usage: ``fit(..., metrics={"acc": accuracy})``
    """
    if isinstance(targets, Mapping):
        targets = targets["labels"]
    logits = getattr(outputs, "logits", outputs)
    keep = targets != -100  # the "ignore" label of masked-token tasks
    return (logits.argmax(dim=-1) == targets)[keep].float().mean().item()


# ---------------------------------------------------------------- batches and losses
def _to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    if isinstance(batch, torch.Tensor):
        if channels_last and batch.ndim == 4:
            return batch.to(device, non_blocking=True, memory_format=torch.channels_last)
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device, channels_last) for v in batch)
    return batch


def _forward(model: nn.Module, batch: Any, loss_fn: Callable | None) -> tuple[dict[str, torch.Tensor], Any, Any]:
    """Run the model on one batch: (named losses incl. "loss", outputs, targets)."""
    if isinstance(batch, Mapping):
        targets = batch  # loss_fn and metrics see the whole dict
        outputs = model(**batch)
        losses = loss_fn(outputs, targets) if loss_fn is not None else outputs
    elif isinstance(batch, (tuple, list)):
        if loss_fn is not None:
            *inputs, targets = batch
            outputs = model(*inputs)
            losses = loss_fn(outputs, targets)
        else:
            targets = batch[-1]
            outputs = losses = model(*batch)
    else:
        raise TypeError(f"a batch must be a tuple, list or dict, got {type(batch).__name__}")
    return _named_losses(losses), outputs, targets


def _named_losses(losses: Any) -> dict[str, torch.Tensor]:
    if isinstance(losses, torch.Tensor):
        return {"loss": losses}
    if hasattr(losses, "loss"):  # a Hugging Face ModelOutput
        if losses.loss is None:
            raise ValueError(
                "the model returned no loss: pass the labels in the batch (e.g. "
                "BertForPreTraining needs both labels and next_sentence_label)"
            )
        return {"loss": losses.loss}
    if isinstance(losses, Mapping):
        named = {k: v for k, v in losses.items() if isinstance(v, torch.Tensor) and v.ndim == 0}
        if not named:
            raise TypeError("the loss dict holds no scalar tensors")
        if "loss" not in named:
            named["loss"] = sum(named.values())
        return named
    raise TypeError(
        "could not find a loss: pass loss_fn=..., or make the model return a loss tensor, "
        "a dict of named losses, or an output with .loss (give a Hugging Face model its labels)"
    )


def _autocast(device: torch.device, amp: bool | str) -> tuple[Any, torch.dtype | None]:
    """The autocast context and dtype for ``amp`` = "auto", True, False, "bf16" or "fp16"."""
    from ptcourse.device import amp_dtype

    if amp is False:
        return nullcontext(), None
    if amp == "auto":
        dtype = amp_dtype(device)
    elif amp is True:
        dtype = amp_dtype(device) or (torch.float16 if device.type == "mps" else torch.bfloat16)
    elif amp in ("bf16", "fp16"):
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    else:
        raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")
    if dtype is None:
        return nullcontext(), None
    return torch.autocast(device_type=device.type, dtype=dtype), dtype


# ---------------------------------------------------------------- evaluation
class _Meter:
    """Sums of per-batch values weighted by batch size, kept on the device until read."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.count = 0

    def add(self, values: Mapping[str, Any], n: int) -> None:
        for k, v in values.items():
            if isinstance(v, torch.Tensor):
                if k in self.sums:
                    self.sums[k].add_(v.detach(), alpha=n)  # one in-place op, no sync
                else:
                    self.sums[k] = v.detach().float() * n
            else:
                self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}


def _batch_size(batch: Any) -> int:
    first = next(iter(batch.values())) if isinstance(batch, Mapping) else batch[0]
    return len(first)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    loss_fn: Callable | None = None,
    metrics: Mapping[str, Metric] | None = None,
    device: torch.device | str | None = None,
    amp: bool | str = "auto",
) -> dict[str, float]:
    """Average losses and metrics of ``model`` over ``loader`` (in eval mode, no grad).

    Usage: ``evaluate(model, test_loader, loss_fn=nn.CrossEntropyLoss(), metrics={"acc": accuracy})``
    """
    _check_common(model, loader, metrics)
    device = torch.device(device) if device is not None else _model_device(model)
    autocast, _ = _autocast(device, amp)
    was_training = model.training
    model.eval()
    meter = _Meter()
    try:
        for batch in loader:
            batch = _to_device(batch, device)
            with autocast:
                losses, outputs, targets = _forward(model, batch, loss_fn)
            values: dict[str, Any] = dict(losses)
            for name, fn in (metrics or {}).items():
                values[name] = fn(outputs, targets)
            meter.add(values, _batch_size(batch))
    finally:
        model.train(was_training)
    if meter.count == 0:
        raise ValueError("the loader yielded no batches")
    return meter.means()


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else get_device()


def _check_common(model: Any, loader: Any, metrics: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(loader, Iterable):
        raise TypeError(f"the loader must be iterable (a DataLoader or DeviceLoader), got {type(loader).__name__}")
    if metrics is not None and (
        not isinstance(metrics, Mapping) or not all(callable(f) for f in metrics.values())
    ):
        raise TypeError("metrics must be a dict of name -> function(outputs, targets) -> float")


# ---------------------------------------------------------------- checkpoints
def _rng_state() -> dict[str, Any]:
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if torch.backends.mps.is_available():
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def _save_checkpoint(path: Path, **parts: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(parts, tmp)
    tmp.replace(path)  # atomic: an interruption never leaves half a checkpoint


# ---------------------------------------------------------------- live plot
class _LivePlot:
    """Redraws the loss curves in a notebook after every epoch (no-op elsewhere)."""

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
        cols = [c for c in rows[0] if c.endswith("loss")]
        plot_history(rows, columns=cols, ax=ax)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)


# ---------------------------------------------------------------- early stopping
class _EarlyStopping:
    """Tracks the best value of ``monitor``, the epochs since, and the best weights."""

    def __init__(self, monitor: str, mode: str, patience: int | None, restore_best: bool) -> None:
        self.monitor, self.patience, self.restore_best = monitor, patience, restore_best
        self.minimise = "loss" in monitor if mode == "auto" else mode == "min"
        self.best: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs, self.stopped = 0, False

    def require(self, row: Mapping[str, float]) -> str:
        if self.monitor not in row:
            raise KeyError(f"monitor={self.monitor!r} is not in the history columns {list(row)}")
        return self.monitor

    def update(self, row: Mapping[str, float], model: nn.Module) -> None:
        if self.patience is None:
            if self.monitor in row:
                self._record(row[self.monitor], None)
            return
        self._record(row[self.require(row)], model)
        self.stopped = self.bad_epochs >= self.patience

    def _record(self, value: float, model: nn.Module | None) -> None:
        improved = not math.isnan(value) and (
            self.best is None or math.isnan(self.best)
            or (value < self.best if self.minimise else value > self.best)
        )
        if improved:
            self.best, self.bad_epochs = value, 0
            if model is not None and self.restore_best:
                self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_state": self.best_state, "bad_epochs": self.bad_epochs,
                "stopped": self.stopped}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_state = state["best"], state["best_state"]
        self.bad_epochs, self.stopped = state["bad_epochs"], state["stopped"]


def _len_or_none(loader: Any) -> int | None:
    """``len(loader)``, or None for loaders without a length (e.g. over an IterableDataset)."""
    try:
        return len(loader)
    except TypeError:
        return None


# ---------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn: Callable | None = None,
    val_loader: Iterable | None = None,
    metrics: Mapping[str, Metric] | None = None,
    scheduler: Any = None,
    scheduler_interval: str = "step",
    grad_accum_steps: int = 1,
    max_grad_norm: float | None = None,
    amp: bool | str = "auto",
    device: torch.device | str | None = None,
    early_stopping_patience: int | None = None,
    monitor: str = "val_loss",
    mode: str = "auto",
    restore_best: bool = True,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    live_plot: bool = False,
    channels_last: bool = False,
    compile: bool | dict = False,
):
    """Train ``model`` and return its history: a pandas DataFrame with one row per epoch.

    - ``optimizer`` defaults to ``AdamW(model.parameters(), lr=lr)``.
    - ``scheduler`` is stepped after every optimizer step (``scheduler_interval="step"``)
      or once per epoch (``"epoch"``).
    - ``grad_accum_steps=k`` sums the gradients of k micro-batches before each step
      (each loss is divided by k, so with equal micro-batches the step equals one
      k-times larger batch; a shorter last group is divided by its own size).
    - ``max_grad_norm`` clips the global gradient norm.
    - ``amp``: "auto" (bf16 autocast on CUDA GPUs that support it, fp16 with a gradient
      scaler on older ones, off on CPU and MPS), True, False, "bf16" or "fp16".
    - ``early_stopping_patience=n`` stops after n epochs without improvement of
      ``monitor``; ``mode`` is "min", "max" or "auto" (min for names containing "loss",
      else max). With ``restore_best`` the model ends with the weights of its best epoch.
      A ``ReduceLROnPlateau`` scheduler (``scheduler_interval="epoch"``) also follows ``monitor``.
    - ``channels_last=True`` stores CNN weights and image batches channels-last (faster
      convolutions on GPUs); ``compile=True`` (or a dict of ``torch.compile`` options)
      compiles the model first.
    - ``checkpoint_path`` saves everything needed for an exact resume at the end of
      every epoch; ``resume=True`` continues from it if it exists.

    Usage: ``history = fit(model, train_loader, epochs=5, loss_fn=nn.CrossEntropyLoss())``
    """
    import pandas as pd

    _check_common(model, train_loader, metrics)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(grad_accum_steps, bool) or not isinstance(grad_accum_steps, int) or grad_accum_steps < 1:
        raise ValueError(f"grad_accum_steps must be a positive int, got {grad_accum_steps!r}")
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be positive or None, got {max_grad_norm!r}")
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")
    if early_stopping_patience is not None and (
        isinstance(early_stopping_patience, bool) or not isinstance(early_stopping_patience, int)
        or early_stopping_patience < 1
    ):
        raise ValueError(f"early_stopping_patience must be a positive int or None, got {early_stopping_patience!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if monitor.startswith("val_") and val_loader is None and early_stopping_patience is not None:
        raise ValueError(f"early stopping on {monitor!r} needs a val_loader")
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError("loss_fn must be callable, e.g. nn.CrossEntropyLoss()")

    if optimizer is None:
        if scheduler is not None:
            raise ValueError("a scheduler needs the optimizer it wraps: pass optimizer=... as well")
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    elif scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("the scheduler must wrap the optimizer passed to fit")

    device = torch.device(device) if device is not None else get_device()
    model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    net = torch.compile(model, **(compile if isinstance(compile, dict) else {})) if compile else model
    autocast, amp_type = _autocast(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_type == torch.float16)
    stopper = _EarlyStopping(monitor, mode, early_stopping_patience, restore_best)

    rows: list[dict[str, float]] = []
    start_epoch = 0
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume and path.exists():
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt["scheduler"] is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if scaler.is_enabled() and ckpt["scaler"]:
            scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        start_epoch, rows = ckpt["epoch"], list(ckpt["history"])
        stopper.load_state_dict(ckpt["early_stopping"])

    def optimizer_step() -> None:
        if max_grad_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        model.zero_grad(set_to_none=True)
        if scheduler is not None and scheduler_interval == "step":
            scheduler.step()

    n_batches = _len_or_none(train_loader)
    bar = None
    if progress and not stopper.stopped:
        from tqdm.auto import tqdm

        total = n_batches * (epochs - start_epoch) if n_batches is not None else None
        bar = tqdm(total=total, desc="fit", unit="batch", leave=False)
    live = _LivePlot() if live_plot else None
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if device.type == "cuda":  # TF32 tensor cores on Ampere and later, for this run only
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        for epoch in range(start_epoch, epochs):
            if stopper.stopped:
                break
            t0 = time.perf_counter()
            model.train()
            model.zero_grad(set_to_none=True)
            meter = _Meter()
            for i, batch in enumerate(train_loader):
                batch = _to_device(batch, device, channels_last)
                with autocast:
                    losses, _, _ = _forward(net, batch, loss_fn)
                # each micro-batch's share of the step: 1/k, or 1/r for a last group of r < k
                group_start = i - i % grad_accum_steps
                group = grad_accum_steps if n_batches is None else min(grad_accum_steps, n_batches - group_start)
                scaler.scale(losses["loss"] if group == 1 else losses["loss"] / group).backward()
                meter.add(losses, _batch_size(batch))
                if (i + 1) % grad_accum_steps == 0 or i + 1 == n_batches:
                    optimizer_step()
                if bar is not None:
                    bar.update()
            if meter.count == 0:
                raise ValueError("the training loader yielded no batches")
            if any(p.grad is not None for g in optimizer.param_groups for p in g["params"]):
                optimizer_step()  # a loader of unknown length ended inside a group

            row: dict[str, float] = {"epoch": epoch + 1}
            row.update({f"train_{k}": v for k, v in meter.means().items()})
            if val_loader is not None:
                val = evaluate(net, val_loader, loss_fn=loss_fn, metrics=metrics, device=device, amp=amp)
                row.update({f"val_{k}": v for k, v in val.items()})
            row["lr"] = optimizer.param_groups[0]["lr"]
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            if scheduler is not None and scheduler_interval == "epoch":
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(row[stopper.require(row)])
                else:
                    scheduler.step()
            stopper.update(row, model)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k in ("train_loss", "val_loss", monitor)})
            if live is not None:
                live.update(rows)
            if path is not None:
                _save_checkpoint(
                    path, model=model.state_dict(), optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict() if scheduler is not None else None,
                    scaler=scaler.state_dict(), rng=_rng_state(), epoch=epoch + 1, history=rows,
                    early_stopping=stopper.state_dict(),
                )
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        if bar is not None:
            bar.close()

    if stopper.best_state is not None:  # early stopping: keep the weights of the best epoch
        model.load_state_dict(stopper.best_state)
    history = pd.DataFrame(rows)
    history.attrs["best_" + monitor] = stopper.best
    history.attrs["stopped_early"] = stopper.stopped
    return history
