"""Checkpoints for ``fit(checkpoint_path=..., resume=True)`` (chapter 01): resume a run exactly.

A checkpoint holds the model, the optimizer and the scheduler (and their classes), the gradient
scaler, every random-number generator, the epoch, the history and the early-stopping
state, saved at the end of every epoch. It is written to a temporary file first and then
renamed, so an interruption never leaves half a checkpoint; it loads with
``torch.load(path, weights_only=True)``.

Usage::

    history = fit(model, loader, epochs=20, checkpoint_path="run.pt", resume=True)
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

REQUIRED = ("model", "optimizer", "optimizer_class", "scheduler", "scaler", "rng", "epoch", "history",
            "early_stopping")


def check_writable(path: str | Path) -> Path:
    """``path`` as a Path, after checking that a checkpoint can be written there, before training (chapter 01).

    Usage: ``path = check_writable("checkpoints/run.pt")``
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"checkpoint_path must be a str or a pathlib.Path, got {type(path).__name__}")
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint_path {path} is a folder; give a file name, e.g. {path / 'run.pt'}")
    probe = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OSError(
            f"cannot write the checkpoint {path}: {error.strerror or error}; pass a checkpoint_path in a "
            "folder you can write to (e.g. under ptcourse.paths.checkpoint_dir())"
        ) from error
    return path


def save_checkpoint(path: Path, **parts: Any) -> None:
    """Save ``parts`` (see ``REQUIRED``) to ``path`` atomically (chapter 01).

    Usage: ``save_checkpoint(path, model=model.state_dict(), ...)``
    """
    tmp = path.with_name(path.name + ".tmp")
    torch.save(parts, tmp)
    tmp.replace(path)  # atomic: an interruption never leaves half a checkpoint


def load_checkpoint(path: Path, epochs: int) -> dict[str, Any]:
    """Read and check a checkpoint that ``fit`` wrote; each problem names the file and what is wrong (chapter 01).

    Usage: ``ckpt = load_checkpoint(Path("run.pt"), epochs=20)``
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" not in str(error).lower():
            raise _unreadable(path, error) from error
        raise ValueError(
            f"{path} holds pickled Python objects (e.g. a whole model saved with torch.save(model)), not a "
            "checkpoint written by ptcourse.fit; pass another checkpoint_path (and load a trusted pickled model "
            "with torch.load(path, weights_only=False))"
        ) from error
    except Exception as error:  # truncated, corrupt or not a torch file: torch raises many kinds
        raise _unreadable(path, error) from error
    if not isinstance(ckpt, Mapping) or not set(REQUIRED) <= set(ckpt):
        is_weights = isinstance(ckpt, Mapping) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values())
        what = "a plain state_dict (weights only)" if is_weights else f"a {type(ckpt).__name__}"
        raise ValueError(
            f"{path} is not a checkpoint written by ptcourse.fit: it holds {what}. To start from those "
            "weights, load them with model.load_state_dict(torch.load(path)) and call fit without "
            "resume=True; or pass another checkpoint_path"
        )
    if ckpt["epoch"] > epochs:
        raise ValueError(
            f"the checkpoint {path} was saved after epoch {ckpt['epoch']}, but epochs={epochs}: pass "
            f"epochs >= {ckpt['epoch']} to continue that run, or another checkpoint_path to start a new one"
        )
    return dict(ckpt)


def _unreadable(path: Path, error: Exception) -> ValueError:
    return ValueError(f"cannot read the checkpoint {path}: the file is damaged or incomplete ({type(error).__name__}: "
                      f"{str(error)[:200]}); delete it to start afresh, or pass another checkpoint_path")


def restore(ckpt: Mapping[str, Any], path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: Any, scaler: torch.amp.GradScaler) -> None:
    """Load a checked checkpoint into the run's model, optimizer, scheduler, scaler and RNGs (chapter 01).

    Usage: ``restore(load_checkpoint(path, epochs), path, model, optimizer, scheduler, scaler)``
    """
    if (ckpt["scheduler"] is None) != (scheduler is None):
        has = "a" if ckpt["scheduler"] is not None else "no"
        raise ValueError(f"the checkpoint {path} was saved with {has} scheduler; resume with the same setup")
    for part, given in (("optimizer", optimizer), ("scheduler", scheduler)):
        saved = ckpt.get(f"{part}_class")  # None: no scheduler, or a checkpoint that did not record it
        if given is not None and saved is not None and saved != type(given).__name__:
            raise ValueError(f"the checkpoint {path} was saved with the {part} {saved}, but fit got "
                             f"{type(given).__name__}: resume with the same {part}, or pass another checkpoint_path")
    parts = [("model", model), ("optimizer", optimizer), ("scheduler", scheduler)]
    for name, target in parts:
        if target is None:
            continue
        try:
            target.load_state_dict(ckpt[name])
        except (RuntimeError, ValueError, KeyError) as error:
            raise ValueError(f"the checkpoint {path} does not fit this {name}: {str(error)[:300]}") from error
    if scaler.is_enabled() and ckpt["scaler"]:
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])


def rng_state() -> dict[str, Any]:
    """The state of every random-number generator (Python, NumPy, torch CPU/CUDA/MPS) (chapter 01).

    Usage: ``state = rng_state(); ...; set_rng_state(state)``
    """
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


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (chapter 01).

    Usage: ``set_rng_state(state)``
    """
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])
