"""The training loop every chapter uses: ``fit``, and ``evaluate`` (chapter 01).

Usage::

    from ptcourse import fit, evaluate, accuracy
    history = fit(model, train_loader, epochs=10, loss_fn=nn.CrossEntropyLoss(),
                  val_loader=val_loader, metrics={"acc": accuracy})
    history.plot(x="epoch", y=["train_loss", "val_loss"])
    evaluate(model, test_loader, loss_fn=nn.CrossEntropyLoss(), metrics={"acc": accuracy})

Read it in this order: :func:`train_one_epoch` is chapter 01's hand-written loop (forward,
loss, backward, step, zero_grad) with gradient accumulation; :func:`optimizer_step` is the
step (with clipping and the scheduler); :func:`fit` runs epochs around them, with
validation, early stopping, checkpoints and the history table. How batches become losses
is in :mod:`ptcourse.batches`; checkpoints in :mod:`ptcourse.checkpoints`; the loss check,
early stopping and the live plot in :mod:`ptcourse.callbacks`.
"""

from __future__ import annotations

import numbers
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ptcourse import _checks
from ptcourse.batches import Meter, accumulation_groups, batch_size, compute_losses, to_device
from ptcourse.callbacks import EarlyStopping, LivePlot, LossCheck
from ptcourse.checkpoints import check_writable, load_checkpoint, restore, rng_state, save_checkpoint
from ptcourse.device import amp_dtype, as_device, get_device

__all__ = ["accuracy", "evaluate", "fit", "optimizer_step", "set_train_mode", "train_one_epoch", "TrainingRun"]

Metric = Callable[[Any, Any], float]
Plateau = torch.optim.lr_scheduler.ReduceLROnPlateau


def accuracy(outputs: Any, targets: Any) -> float:
    """Fraction of rows whose predicted class equals the target (chapter 01).

    The prediction is the arg-max over the last dimension; with a single logit per row
    (a binary classifier trained with ``BCEWithLogitsLoss``) it is ``logit > 0``. Targets
    equal to -100 (PyTorch's and Hugging Face's "ignore" label) are skipped. ``targets`` may
    be a dict batch (Hugging Face style); its ``"labels"`` are used.

    Usage: ``fit(..., metrics={"acc": accuracy})``
    """
    if isinstance(targets, Mapping):
        if "labels" not in targets:
            raise KeyError(f"accuracy reads batch['labels'], but the batch has only {list(targets)}")
        targets = targets["labels"]
    logits = getattr(outputs, "logits", outputs)
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("accuracy needs a tensor of logits and a tensor of class indices, got "
                        f"{type(logits).__name__} and {type(targets).__name__}")
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a class dimension last, got shape {tuple(logits.shape)}")
    if logits.shape[-1] == 1:  # one logit: a binary classifier
        predictions = (logits.squeeze(-1) > 0).long()
        targets = targets.squeeze(-1) if targets.ndim == logits.ndim else targets
    else:
        predictions = logits.argmax(dim=-1)
        if targets.is_floating_point():
            raise TypeError("targets must be class indices (an integer tensor), got floats; "
                            "for one-hot targets pass targets.argmax(-1)")
    if predictions.shape != targets.shape:
        raise ValueError(f"logits of shape {tuple(logits.shape)} give predictions of shape "
                         f"{tuple(predictions.shape)}, but the targets have shape {tuple(targets.shape)}")
    keep = targets != -100  # the "ignore" label of masked-token tasks
    if not bool(keep.any()):
        raise ValueError("accuracy of no example: the targets are empty or all -100 (ignored)")
    classes = max(logits.shape[-1], 2)
    wrong = (targets < 0) | (targets >= classes)
    if targets.is_floating_point():
        wrong |= targets != targets.round()  # a soft (probability) target is not a class
    if bool((wrong & keep).any()):
        raise ValueError(f"targets must be class indices 0..{classes - 1} (or -100 to ignore), got "
                         f"{targets[wrong & keep][0].item():g}: do the labels match the number of logits?")
    return (predictions == targets)[keep].float().mean().item()


# ---------------------------------------------------------------- one epoch
@dataclass
class TrainingRun:
    """What stays fixed while ``fit`` trains: the model and how each optimizer step is made (chapter 01).

    Usage: ``run = TrainingRun(model, torch.optim.AdamW(model.parameters()), nn.CrossEntropyLoss())``
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable | None = None
    scheduler: Any = None
    grad_accum_steps: int = 1
    max_grad_norm: float | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    autocast: Any = field(default_factory=nullcontext)
    scaler: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler("cpu", enabled=False))
    channels_last: bool = False
    lrs_used: list[float] = field(default_factory=list)  # the rates of the last optimizer step


def train_one_epoch(run: TrainingRun, loader: Iterable, epoch: int = 1, bar: Any = None) -> dict[str, float]:
    """One pass over ``loader``: chapter 01's loop, with gradient accumulation (chapter 01).

    Batches come in groups of ``run.grad_accum_steps``, one optimizer step per group. Each
    micro-batch's loss is weighted by its share of the group's examples, so the summed
    gradient is that of the mean loss over all the group's examples (see :func:`fit`).
    Returns the epoch's training losses, averaged over examples.

    Usage: ``train_one_epoch(TrainingRun(model, optimizer, nn.CrossEntropyLoss()), train_loader)``
    """
    if not isinstance(run, TrainingRun):
        raise TypeError(f"run must be a TrainingRun(model, optimizer, loss_fn, ...), got {type(run).__name__}")
    set_train_mode(run.model)  # frozen modules stay in eval mode
    meter, check = Meter(), LossCheck(epoch, fp16=run.scaler.is_enabled())
    for group in accumulation_groups(loader, run.grad_accum_steps):
        examples = sum(batch_size(b) for b in group)
        for batch in group:
            batch = to_device(batch, run.device, run.channels_last)
            with run.autocast:
                losses, _, _ = compute_losses(run.model, batch, run.loss_fn)  # forward and loss
            check.add(losses["loss"])
            n = batch_size(batch)
            loss = losses["loss"] if len(group) == 1 else losses["loss"] * (n / examples)
            run.scaler.scale(loss).backward()  # backward (the scaler does nothing unless fp16)
            meter.add(losses, n)
            if bar is not None:
                bar.update()
        optimizer_step(run)  # step and zero_grad
    check.finish()
    if meter.count == 0:
        raise ValueError("the training loader yielded no batches")
    return meter.means()


def optimizer_step(run: TrainingRun) -> None:
    """Clip, step, zero the gradients and advance the scheduler (chapter 01).

    Clipping and zeroing act on every parameter the *optimizer* holds (which may include
    parameters kept outside the model, like chapter 02's log-variances). A
    ``ReduceLROnPlateau`` scheduler is stepped by ``fit`` once per epoch instead.

    Usage: ``loss.backward(); optimizer_step(run)``
    """
    optimizer, scaler = run.optimizer, run.scaler
    if run.max_grad_norm is not None:
        scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        nn.utils.clip_grad_norm_(params, run.max_grad_norm)
    run.lrs_used = [group["lr"] for group in optimizer.param_groups]
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if run.scheduler is not None and not isinstance(run.scheduler, Plateau):
        run.scheduler.step()


def set_train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, but every sub-module whose parameters are all frozen goes to eval mode.

    So a frozen backbone stays frozen, statistics included: its BatchNorm running
    statistics do not change and its dropout is off. A module without parameters (ReLU,
    ``BatchNorm(affine=False)``) follows its parent. Used by ``fit`` every epoch (chapter 03).

    Usage: ``freeze(model.encoder); set_train_mode(model)  # model.encoder is in eval mode``
    """
    _checks.module(model).train()
    for module in model.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
    return model


def _mixed_precision(device: torch.device, amp: Any) -> tuple[Any, torch.amp.GradScaler]:
    """The autocast context and gradient scaler for ``amp`` = "auto", True, False, "bf16" or "fp16"."""
    if amp is False:
        dtype = None
    elif isinstance(amp, str) and amp == "auto":
        dtype = amp_dtype(device)
    elif amp is True:
        dtype = amp_dtype(device) or (torch.float16 if device.type == "mps" else torch.bfloat16)
    elif isinstance(amp, str) and amp in ("bf16", "fp16"):
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    else:
        raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")
    context = nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)
    return context, torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


# ---------------------------------------------------------------- evaluation
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
    """Average losses and metrics of ``model`` over ``loader``, in eval mode, without gradients (chapter 01).

    Averages are over examples (each batch weighted by its size). Every module's train/eval
    mode is restored afterwards. Each metric gets ``(outputs, targets)`` and returns a number.

    Usage: ``evaluate(model, test_loader, loss_fn=nn.CrossEntropyLoss(), metrics={"acc": accuracy})``
    """
    _check_model_and_loader(model, loader, "loader")
    _check_metrics(metrics)
    device = as_device(device) if device is not None else _model_device(model)
    autocast, _ = _mixed_precision(device, amp)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    meter = Meter()
    try:
        for batch in loader:
            batch = to_device(batch, device)
            with autocast:
                losses, outputs, targets = compute_losses(model, batch, loss_fn)
            values: dict[str, Any] = dict(losses)
            for name, metric in (metrics or {}).items():
                if name in losses:
                    raise ValueError(f"metric {name!r} has the name of a loss, so one would hide the other in "
                                     "the history: rename the metric")
                values[name] = _metric_value(metric(outputs, targets), name)
            meter.add(values, batch_size(batch))
    finally:
        for module, mode in modes.items():
            module.training = mode
    if meter.count == 0:
        raise ValueError("the loader yielded no batches")
    return meter.means()


def _metric_value(value: Any, name: str) -> Any:
    if isinstance(value, torch.Tensor):
        is_number = value.ndim == 0 and not value.is_complex() and value.dtype != torch.bool
    else:
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not is_number:
        what = f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}" if isinstance(value, torch.Tensor) \
            else type(value).__name__
        raise TypeError(f"metric {name!r} must return a number (a real one, or a 0-d tensor), got {what}")
    return value


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else get_device()


def _check_model_and_loader(model: Any, loader: Any, name: str) -> None:
    _checks.module(model)
    if isinstance(loader, torch.Tensor) or not isinstance(loader, Iterable):
        raise TypeError(f"{name} must yield batches (a DataLoader, a DeviceLoader or a list of batches), "
                        f"got {type(loader).__name__}")
    if _len_or_none(loader) == 0:
        raise ValueError(f"{name} is empty: it yields no batches")


def _check_metrics(metrics: Any) -> None:
    if metrics is not None and (not isinstance(metrics, Mapping) or not all(
            isinstance(k, str) and callable(f) for k, f in metrics.items())):
        raise TypeError("metrics must be a dict of name -> function(outputs, targets) -> number")


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
    grad_accum_steps: int = 1,
    max_grad_norm: float | None = None,
    amp: bool | str = "auto",
    device: torch.device | str | None = None,
    early_stopping_patience: int | None = None,
    monitor: str = "val_loss",
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    live_plot: bool = False,
    channels_last: bool = False,
    compile: bool | dict = False,
):
    """Train ``model`` and return its history: a pandas DataFrame with one row per epoch (chapter 01).

    Columns: ``epoch``, ``train_<loss>`` and ``val_<loss>`` for every named loss,
    ``val_<metric>``, the learning rate (``lr``, or ``lr_<group name>`` per parameter group
    when there are several: the rate of the epoch's last optimizer step) and ``seconds``.

    - ``optimizer`` defaults to ``AdamW(model.parameters(), lr=lr)``.
    - ``scheduler`` is stepped after every optimizer step (e.g.
      ``transformers.get_linear_schedule_with_warmup``; count its steps in optimizer steps:
      ``ceil(len(train_loader) / grad_accum_steps)`` per epoch). A ``ReduceLROnPlateau`` is
      stepped once per epoch with the value of ``monitor`` (create it with ``mode="max"`` for
      a metric such as ``val_acc``).
    - ``grad_accum_steps=k`` sums the gradients of k micro-batches before each step, each
      loss weighted by its share of the group's examples. For a loss that is a mean over
      the batch's examples, the step then equals one step on the k micro-batches joined
      together, whatever their sizes (a short last group included). A loss that is not a
      per-example mean (e.g. a masked-token loss averaged over a varying number of masked
      tokens) is still weighted per example, so the equality is approximate. BatchNorm
      breaks it too: it normalises each micro-batch with that micro-batch's statistics.
    - ``max_grad_norm`` clips the global norm of the gradients the optimizer holds.
    - ``amp``: "auto" (bf16 autocast on CUDA GPUs that support it, fp16 with a gradient
      scaler on older ones, off on CPU and MPS), True, False, "bf16" or "fp16".
    - A NaN or infinite training loss stops training with ``FloatingPointError`` naming the
      epoch and batch (checked every 100 batches: the loop itself never makes the GPU wait
      at a step); under fp16 the gradient scaler, which reads one value per step, skips such
      steps and ``fit`` warns.
    - Frozen modules stay frozen: each epoch starts with ``model.train()``, then every
      sub-module whose parameters all have ``requires_grad=False`` is put in eval mode, so
      its BatchNorm statistics do not change and its dropout is off. A parameter-free
      ``BatchNorm(affine=False)`` follows its parent: freeze the block that contains it, or
      override your model's ``train()`` to call ``.eval()`` on it.
    - ``early_stopping_patience=n`` stops after n epochs without improvement of ``monitor``
      (minimised when its name contains "loss", else maximised) and gives the model back the
      weights of its best epoch.
    - ``channels_last=True`` stores CNN weights and image batches channels-last (faster
      convolutions on GPUs); ``compile=True`` (or a dict of ``torch.compile`` options)
      compiles the model first.
    - ``checkpoint_path`` saves everything needed for an exact resume at the end of every
      epoch (the folder is checked to be writable before training); ``resume=True``
      continues from it if it exists.

    Usage: ``history = fit(model, train_loader, epochs=5, loss_fn=nn.CrossEntropyLoss())``
    """
    import pandas as pd

    _check_arguments(locals())
    device = as_device(device) if device is not None else get_device()
    optimizer = _optimizer(model, optimizer, lr, scheduler)
    autocast, scaler = _mixed_precision(device, amp)
    net = _placed_model(model, device, channels_last, compile)
    run = TrainingRun(net, optimizer, loss_fn, scheduler, grad_accum_steps, max_grad_norm, device, autocast,
                      scaler, channels_last)
    stopper = EarlyStopping(monitor, early_stopping_patience)
    path = check_writable(checkpoint_path) if checkpoint_path is not None else None
    rows = _resume_point(path, epochs, model, run, stopper) if resume and path.exists() else []
    bar = _progress_bar(progress and not stopper.stopped, train_loader, epochs - len(rows))
    live = LivePlot() if live_plot else None
    try:
        with _tf32_on_cuda(device):
            for epoch in range(len(rows) + 1, epochs + 1):
                if stopper.stopped:
                    break
                start = time.perf_counter()
                row = {"epoch": epoch, **_prefixed("train_", train_one_epoch(run, train_loader, epoch, bar))}
                if val_loader is not None:
                    val = evaluate(net, val_loader, loss_fn=loss_fn, metrics=metrics, device=device, amp=amp)
                    row.update(_prefixed("val_", val))
                row.update(_lr_columns(optimizer, run.lrs_used), seconds=time.perf_counter() - start)
                rows.append(row)
                _end_of_epoch(run, row, stopper, bar, live, rows, model)
                if path is not None:
                    _save_resume_point(path, model, run, epoch, rows, stopper)
    finally:
        if bar is not None:
            bar.close()
    stopper.restore_best(model)
    history = pd.DataFrame(rows)
    history.attrs.update({"best_" + monitor: stopper.best, "stopped_early": stopper.stopped})
    return history


def _placed_model(model: nn.Module, device: torch.device, channels_last: bool, compile: bool | dict) -> nn.Module:
    """Move ``model`` to ``device`` (channels-last if asked) and return it, compiled if asked (chapter 01)."""
    model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    return torch.compile(model, **(compile if isinstance(compile, dict) else {})) if compile else model


def _resume_point(path: Path, epochs: int, model: nn.Module, run: TrainingRun,
                  stopper: EarlyStopping) -> list[dict[str, float]]:
    """Load the checkpoint at ``path`` into the model, optimizer, scheduler, scaler and early
    stopping; return the history so far (chapter 01's checkpointing)."""
    ckpt = load_checkpoint(path, epochs)
    restore(ckpt, path, model, run.optimizer, run.scheduler, run.scaler)
    stopper.load_state_dict(ckpt["early_stopping"])
    return list(ckpt["history"])


def _save_resume_point(path: Path, model: nn.Module, run: TrainingRun, epoch: int, rows: list,
                       stopper: EarlyStopping) -> None:
    """Everything an exact resume needs, at the end of an epoch (chapter 01's checkpointing)."""
    scheduler = run.scheduler
    save_checkpoint(
        path, model=model.state_dict(), optimizer=run.optimizer.state_dict(),
        optimizer_class=type(run.optimizer).__name__, scaler=run.scaler.state_dict(), rng=rng_state(),
        scheduler=scheduler.state_dict() if scheduler is not None else None,
        scheduler_class=type(scheduler).__name__ if scheduler is not None else None,
        epoch=epoch, history=rows, early_stopping=stopper.state_dict())


def _end_of_epoch(run: TrainingRun, row: dict, stopper: EarlyStopping, bar: Any, live: Any, rows: list,
                  model: nn.Module) -> None:
    """A plateau scheduler's step, early stopping, the progress bar's text, the live plot."""
    if isinstance(run.scheduler, Plateau):
        run.scheduler.step(stopper.value(row))
    stopper.update(row, model)
    if bar is not None:
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k in ("train_loss", "val_loss", stopper.monitor)})
    if live is not None:
        live.update(rows)


def _prefixed(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    return {prefix + k: v for k, v in values.items()}


def _lr_columns(optimizer: torch.optim.Optimizer, lrs_used: list[Any]) -> dict[str, float]:
    """``{"lr": rate}`` for one parameter group, else ``{"lr_<group name or index>": rate}``."""
    if len(lrs_used) == 1:
        return {"lr": float(lrs_used[0])}
    names = [str(group.get("name", i)) for i, group in enumerate(optimizer.param_groups)]
    if len(set(names)) < len(names):  # two groups with one name: number them all
        names = [str(i) for i in range(len(names))]
    return {f"lr_{name}": float(lr) for name, lr in zip(names, lrs_used)}


def _progress_bar(enabled: bool, loader: Iterable, epochs_left: int) -> Any:
    if not enabled or epochs_left <= 0:
        return None
    from tqdm.auto import tqdm

    per_epoch = _len_or_none(loader)
    return tqdm(total=per_epoch * epochs_left if per_epoch is not None else None, desc="fit", unit="batch",
                leave=False)


@contextmanager
def _tf32_on_cuda(device: torch.device):
    """TF32 tensor cores (Ampere and later) for this run only: float32 matmuls at bf16 speed."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _optimizer(model: nn.Module, optimizer: Any, lr: float, scheduler: Any) -> torch.optim.Optimizer:
    """The optimizer to use (AdamW by default), checked against the model and the scheduler."""
    if optimizer is None:
        if scheduler is not None:
            raise ValueError("a scheduler needs the optimizer it wraps: pass optimizer=... as well")
        if next(model.parameters(), None) is None:
            raise ValueError("the model has no parameters to train")
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    elif lr != 1e-3:
        raise ValueError("lr is not used when you pass an optimizer: set the learning rate in the optimizer")
    if scheduler is not None and getattr(scheduler, "optimizer", None) is not optimizer:
        raise ValueError("the scheduler must wrap the optimizer passed to fit")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not any(p.requires_grad for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("every parameter the optimizer holds is frozen (requires_grad=False): nothing "
                         "would train. Unfreeze some (ptcourse.finetune.unfreeze) or build the optimizer "
                         "from the trainable ones")
    left_out = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in held]
    if left_out:
        warnings.warn(f"{len(left_out)} trainable parameter tensor(s) of the model are not in the optimizer "
                      f"({_checks.examples(left_out)}): they get gradients but never change. Freeze them "
                      "(ptcourse.finetune.freeze) or add them to the optimizer", UserWarning, stacklevel=3)
    return optimizer


def _check_arguments(args: Mapping[str, Any]) -> None:
    """Check ``fit``'s arguments (its ``locals()``), each with a message that says what is expected."""
    _check_model_and_loader(args["model"], args["train_loader"], "train_loader")
    if args["val_loader"] is not None:
        _check_model_and_loader(args["model"], args["val_loader"], "val_loader")
    _check_metrics(args["metrics"])
    _checks.positive_int(args["epochs"], "epochs")
    _checks.positive_int(args["grad_accum_steps"], "grad_accum_steps")
    _checks.positive_int(args["early_stopping_patience"], "early_stopping_patience", allow_none=True)
    for name in ("train_loader", "val_loader"):
        if isinstance(args[name], Iterator) and args["epochs"] > 1:
            raise TypeError(f"{name} is an iterator (a generator?), used up after one pass: epoch 2 would get no "
                            "batches. Pass a list of batches or a DataLoader")
    if args["metrics"] and args["val_loader"] is None:
        raise ValueError("metrics are computed on the validation set: pass val_loader=... as well (or score any "
                         "loader after training with evaluate(model, loader, metrics=...))")
    _checks.finite_number(args["lr"], "lr", low=0, strict=True)
    if args["max_grad_norm"] is not None:
        _checks.finite_number(args["max_grad_norm"], "max_grad_norm", low=0, strict=True)
    if args["loss_fn"] is not None and not callable(args["loss_fn"]):
        raise TypeError("loss_fn must be callable, e.g. nn.CrossEntropyLoss()")
    for name in ("resume", "progress", "live_plot", "channels_last"):
        if not isinstance(args[name], bool):
            raise TypeError(f"{name} must be True or False, got {args[name]!r}")
    if not isinstance(args["compile"], (bool, dict)):
        raise TypeError(f"compile must be True, False or a dict of torch.compile options, got {args['compile']!r}")
    monitor = args["monitor"]
    if not isinstance(monitor, str) or not monitor.startswith(("train_", "val_")):
        raise ValueError(f"monitor must name a history column such as 'val_loss' or 'val_acc', got {monitor!r}")
    plateau = args["scheduler"] if isinstance(args["scheduler"], Plateau) else None
    if monitor.startswith("val_") and args["val_loader"] is None and (
            args["early_stopping_patience"] is not None or plateau is not None):
        raise ValueError(f"early stopping or ReduceLROnPlateau on {monitor!r} needs a val_loader")
    want = "min" if EarlyStopping(monitor, None).minimise else "max"
    if plateau is not None and plateau.mode != want:
        raise ValueError(f"ReduceLROnPlateau(mode={plateau.mode!r}) would lower the rate whenever {monitor!r} "
                         f"improves: fit {want}imises it (see early_stopping_patience), so create the scheduler "
                         f"with mode={want!r}")
    if args["resume"] and args["checkpoint_path"] is None:
        raise ValueError("resume=True needs a checkpoint_path")
