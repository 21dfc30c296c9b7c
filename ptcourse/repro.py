"""Reproducibility: seed every random number generator the course uses.

Usage::

    from ptcourse import seed_everything
    seed_everything(0)                      # same numbers on every run
    seed_everything(0, deterministic=True)  # also deterministic GPU kernels
"""

from __future__ import annotations

import os
import random

from ptcourse import _checks


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) (chapter 00).

    With ``deterministic=True`` torch also uses deterministic algorithms (slower on
    GPU; raises if an operation has no deterministic implementation).

    Usage: ``seed_everything(42)``
    """
    seed = _checks.seed(seed)
    if not isinstance(deterministic, bool):
        raise TypeError(f"deterministic must be True or False, got {deterministic!r}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CPU, CUDA and MPS generators
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
