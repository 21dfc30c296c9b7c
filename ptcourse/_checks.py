"""Small argument checks shared by the package's modules: say what was wrong, and what is expected.

NumPy numbers are accepted wherever Python numbers are (``np.int64(3)`` epochs, an
``np.float32`` learning rate); booleans are not numbers here.

Usage: ``epochs = positive_int(epochs, "epochs")``
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from torch import nn


def positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """``value`` as a Python int >= 1 (None passes when ``allow_none``), else a clear error (chapter 01).

    Usage: ``positive_int(np.int64(3), "epochs")  # 3``
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        kind = "a positive int or None" if allow_none else "a positive int"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1 (a positive int), got {value}")
    return int(value)


def seed(value: Any, name: str = "seed") -> int:
    """``value`` as a Python int in [0, 2**32): a seed that Python, NumPy, scikit-learn and torch all take (chapter 01).

    Usage: ``seed(np.int64(3))  # 3``
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if not 0 <= value < 2**32:
        raise ValueError(f"{name} must be in [0, 2**32), got {value}")
    return int(value)


def finite_number(value: Any, name: str, *, low: float = -math.inf, strict: bool = False) -> float:
    """``value`` as a finite float >= ``low`` (> ``low`` when ``strict``), else a clear error (chapter 01).

    Usage: ``finite_number(lr, "lr", low=0, strict=True)``
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value:g}")
    return value


def module(value: Any, name: str = "model") -> nn.Module:
    """``value`` if it is a ``torch.nn.Module``, else a TypeError (chapter 01).

    Usage: ``module(model).train()``
    """
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def examples(names: list[str], k: int = 6) -> str:
    """The first ``k`` names, then how many there are in all, for error messages (chapter 03).

    Usage: ``examples(["a", "b"])  # "a, b"``
    """
    shown = ", ".join(names[:k])
    return shown + (f", ... ({len(names)} in all)" if len(names) > k else "")
