"""Plots shared by the chapters.

Usage::

    from ptcourse import plot_history
    plot_history(history, columns=["train_loss", "val_loss"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def plot_history(history: Any, columns: Sequence[str] = ("train_loss", "val_loss"), ax: Any = None,
                 title: str = "Learning curves") -> Any:
    """Plot columns of a ``fit`` history (DataFrame or list of row dicts) against the epoch.

    Returns the matplotlib Axes. Usage: ``plot_history(h, ["train_acc", "val_acc"])``
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if isinstance(columns, str):
        columns = [columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the history; it has {list(frame.columns)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for col in columns:
        ax.plot(frame["epoch"], frame[col], marker="o", markersize=3, label=col)
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(sorted({c.split("_", 1)[-1] for c in columns})))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
