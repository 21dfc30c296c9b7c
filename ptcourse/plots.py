"""Plots shared by the chapters.

Usage::

    from ptcourse import plot_history
    plot_history(history, columns=["train_loss", "val_loss"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def plot_history(history: Any, columns: Sequence[str] | None = None, ax: Any = None,
                 title: str = "Learning curves") -> Any:
    """Plot columns of a ``fit`` history (DataFrame or list of row dicts) against the epoch (chapter 01).

    ``columns`` defaults to every loss column (``train_loss``, ``val_loss``, ...).

    Returns the matplotlib Axes. Usage: ``plot_history(h, ["train_acc", "val_acc"])``
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = _as_frame(history)
    if columns is None:
        columns = [c for c in frame.columns if c.endswith("loss")]
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise ValueError(f"columns must name one or more history columns, got {columns!r}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the history; it has {list(frame.columns)}")
    non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise TypeError(f"columns {non_numeric} do not hold numbers")
    if ax is not None and not hasattr(ax, "plot"):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
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


def _as_frame(history: Any) -> Any:
    """A ``fit`` history as a DataFrame with an ``epoch`` column and at least one row."""
    import pandas as pd

    if isinstance(history, pd.DataFrame):
        frame = history
    elif isinstance(history, Sequence) and not isinstance(history, (str, bytes)) \
            and all(isinstance(row, dict) for row in history):
        frame = pd.DataFrame(list(history))
    else:
        raise TypeError(f"history must be what fit returns (a DataFrame) or a list of row dicts, "
                        f"got {type(history).__name__}")
    if frame.empty:
        raise ValueError("history is empty: there is nothing to plot")
    if "epoch" not in frame.columns:
        raise KeyError(f"history has no 'epoch' column; it has {list(frame.columns)}")
    return frame
