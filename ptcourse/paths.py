"""Where the course keeps downloaded data and saved checkpoints.

Usage::

    from ptcourse.paths import data_dir, checkpoint_dir, results_dir
    print(data_dir(), checkpoint_dir(), results_dir())

All three live under ``~/.cache/ptcourse`` unless ``PTCOURSE_DATA``,
``PTCOURSE_CHECKPOINTS`` or ``PTCOURSE_RESULTS`` point elsewhere (e.g. a shared drive
in a classroom).
"""

from __future__ import annotations

import os
from pathlib import Path

_CACHE = Path.home() / ".cache" / "ptcourse"


def _from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    path = Path(value).expanduser() if value else default
    if path.exists() and not path.is_dir():
        fix = f"point {name} at a folder (or unset it)" if value else f"move it away or set {name} to a folder"
        raise NotADirectoryError(f"{path} is a file, not a folder: {fix}")
    return path


def data_dir() -> Path:
    """Datasets cache: ``$PTCOURSE_DATA`` or ``~/.cache/ptcourse/data`` (chapter 00).

    Usage: ``print(data_dir())``
    """
    return _from_env("PTCOURSE_DATA", _CACHE / "data")


def checkpoint_dir() -> Path:
    """Checkpoints (e.g. the mini-BERT of chapter 06): ``$PTCOURSE_CHECKPOINTS`` or ``~/.cache/ptcourse/checkpoints``.

    Usage: ``path = checkpoint_dir() / "mini_bert.pt"``
    """
    return _from_env("PTCOURSE_CHECKPOINTS", _CACHE / "checkpoints")


def results_dir() -> Path:
    """Each chapter's headline numbers (chapter 09 collects them): ``$PTCOURSE_RESULTS`` or ``~/.cache/ptcourse/results``.

    Usage: ``sorted(results_dir().glob("ch*.json"))``
    """
    return _from_env("PTCOURSE_RESULTS", _CACHE / "results")
