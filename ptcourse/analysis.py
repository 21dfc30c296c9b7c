"""The course's results in one table and one figure, by profile (chapter 09).

Chapters record their headline numbers with :func:`ptcourse.results.record_result`;
this module turns :func:`ptcourse.results.load_results` into a readable table, a
figure, curves from the points recorded with ``at=``, and a note naming the chapters
that have not recorded anything yet in the profile in force and how to produce them.
Rows from another profile are never merged with the profile in force: they are split
off and shown apart, labelled with their profile.

Usage::

    from ptcourse.results import load_results
    from ptcourse.analysis import split_by_profile, headline_table, missing_report, plot_headlines
    current, other = split_by_profile(load_results())
    print(missing_report(load_results()))
    headline_table(current)
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from ptcourse.paths import results_dir

__all__ = [
    "CHAPTER_NOTEBOOKS",
    "curve_points",
    "headline_table",
    "missing_chapters",
    "missing_report",
    "plot_curves",
    "plot_headlines",
    "split_by_profile",
]

CHAPTER_NOTEBOOKS = {
    1: "01_single_task.ipynb",
    2: "02_multi_task.ipynb",
    3: "03_autoencoder_pretraining.ipynb",
    4: "04_self_attention.ipynb",
    5: "05_transformer.ipynb",
    6: "06_bert_pretraining.ipynb",
    7: "07_finetuning_bert.ipynb",
    8: "08_finetuning_resnet.ipynb",
}
"""The chapters before 09 that record headline numbers, and their notebooks."""

_COLUMNS = ["chapter", "experiment", "metric", "at", "profile", "dataset", "mean", "std", "seeds", "values"]


def _check_table(table: Any) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected the DataFrame from ptcourse.results.load_results(), got {type(table).__name__}")
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the table lacks the columns {missing}: pass the DataFrame from load_results()")
    return table


def _profile(profile: str | None) -> str:
    from ptcourse.profiles import PROFILES
    from ptcourse.profiles import profile as profile_in_force

    name = profile_in_force() if profile is None else profile
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)} or None (the one in force), got {name!r}")
    return name


def split_by_profile(table: pd.DataFrame, profile: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``profile`` (default: the one in force), and the rows of every other profile.

    Usage: ``current, other = split_by_profile(load_results())``
    """
    table, profile = _check_table(table), _profile(profile)
    mine = table["profile"] == profile
    return table[mine].reset_index(drop=True), table[~mine].reset_index(drop=True)


def missing_chapters(table: pd.DataFrame, profile: str | None = None,
                     expected: Any = tuple(CHAPTER_NOTEBOOKS)) -> list[int]:
    """The chapters in ``expected`` with no record in ``profile`` (default: the one in force).

    Usage: ``missing_chapters(load_results())  # e.g. [6, 7]``
    """
    current, _ = split_by_profile(table, profile)
    present = {int(c) for c in current["chapter"]}
    return sorted(int(c) for c in expected if int(c) not in present)


def missing_report(table: pd.DataFrame, profile: str | None = None, expected: Any = tuple(CHAPTER_NOTEBOOKS)) -> str:
    """A few lines naming each chapter without results in ``profile`` and how to produce them.

    Usage: ``print(missing_report(load_results()))``
    """
    profile = _profile(profile)
    missing = missing_chapters(table, profile, expected)
    if not missing:
        return f"Every chapter from {min(expected):02d} to {max(expected):02d} has recorded results in the {profile} profile."
    _, other = split_by_profile(table, profile)
    lines = [f"No results yet in the {profile} profile from chapter{'s' * (len(missing) > 1)} "
             f"{', '.join(f'{c:02d}' for c in missing)} (looked in {results_dir()})."]
    for chapter in missing:
        elsewhere = sorted(set(other.loc[other["chapter"] == chapter, "profile"]))
        note = f"; it has {' and '.join(elsewhere)}-profile results, shown apart, not merged" if elsewhere else ""
        notebook = CHAPTER_NOTEBOOKS.get(chapter, f"{chapter:02d}_*.ipynb")
        lines.append(f"  - chapter {chapter:02d}: run notebooks/{notebook} top to bottom with PTCOURSE_PROFILE={profile}"
                     f"{note}.")
    lines.append(f"  Set the profile before starting Jupyter, or from the repository root run "
                 f"PTCOURSE_PROFILE={profile} python -m pytest notebooks/<notebook>; then run this cell again.")
    return "\n".join(lines)


def _interval(values: Any) -> tuple[float, float]:
    from ptcourse.stats import t_interval

    return t_interval(values) if len(values) >= 2 else (np.nan, np.nan)


def headline_table(table: pd.DataFrame) -> pd.DataFrame:
    """One readable row per headline number (curve points excluded), with its 95 % t interval.

    A result measured with one seed gets no interval: its spread is unknown.

    Usage: ``headline_table(current)``
    """
    table = _check_table(table)
    rows = table[table["at"].isna()]
    intervals = [_interval(v) for v in rows["values"]]
    shown = pd.DataFrame({
        "chapter": rows["chapter"].astype(int),
        "experiment": rows["experiment"],
        "metric": rows["metric"],
        "dataset": rows["dataset"],
        "mean ± std": [f"{m:.3f} ± {s:.3f}" if n > 1 else f"{m:.3f}" for m, s, n in
                       zip(rows["mean"], rows["std"], rows["seeds"])],
        "95% CI (t)": [f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "one seed: unknown" for lo, hi in intervals],
        "seeds": rows["seeds"].astype(int),
        "profile": rows["profile"],
    })
    for column in ("seconds", "device", "recorded"):
        if column in rows.columns:
            shown[column] = rows[column]
    return shown.reset_index(drop=True)


def curve_points(table: pd.DataFrame) -> pd.DataFrame:
    """The rows recorded with ``at=`` (points of a curve), one column per x variable, with 95 % t intervals.

    Usage: ``points = curve_points(current)  # columns ..., "x name", "x", "low", "high"``
    """
    table = _check_table(table)
    rows = table[table["at"].notna()].copy()
    rows["x name"] = [", ".join(sorted(at)) for at in rows["at"]]
    rows["x"] = [next(iter(at.values())) if len(at) == 1 else np.nan for at in rows["at"]]
    intervals = [_interval(v) for v in rows["values"]]
    rows["low"], rows["high"] = [lo for lo, _ in intervals], [hi for _, hi in intervals]
    return rows.sort_values(["chapter", "x name", "metric", "experiment", "x"], kind="stable").reset_index(drop=True)


def plot_headlines(table: pd.DataFrame, title: str = "Headline results"):
    """A dot per headline number with its 95 % t interval, one panel per metric; returns the figure.

    Hollow dots are single-seed results (no interval). Usage: ``plot_headlines(current)``
    """
    import matplotlib.pyplot as plt

    table = _check_table(table)
    rows = table[table["at"].isna()]
    metrics = list(dict.fromkeys(rows["metric"]))
    if not metrics:
        raise ValueError("there are no headline results to plot")
    heights = [max(1.4, 0.5 * (rows["metric"] == m).sum() + 0.9) for m in metrics]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(11, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, metric in zip(axes[:, 0], metrics):
        part = rows[rows["metric"] == metric]
        labels = [textwrap.fill(f"{c:02d} · {e} ({d}, n={n})", 48) for c, e, d, n in
                  zip(part["chapter"], part["experiment"], part["dataset"], part["seeds"])]
        ypos = np.arange(len(part))[::-1]
        for y, mean, values in zip(ypos, part["mean"], part["values"]):
            lo, hi = _interval(values)
            if np.isfinite(lo):
                ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]], fmt="o", color="tab:blue", capsize=3)
            else:
                ax.plot(mean, y, "o", mfc="white", color="tab:blue")
        ax.set_yticks(ypos, labels)
        ax.set_xlabel(f"{metric} (mean and 95% t interval; n = seeds or runs)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    return fig


def _natural(text: str) -> list:
    """Sort key that puts "2 units" before "16 units"."""
    return [int(piece) if piece.isdigit() else piece for piece in re.split(r"(\d+)", text)]


def plot_curves(points: pd.DataFrame, title: str = "Curves recorded by the chapters"):
    """One panel per (chapter, metric, x variable) of :func:`curve_points`, a line per experiment; returns the figure.

    Usage: ``plot_curves(curve_points(current))``
    """
    import matplotlib.pyplot as plt

    if not isinstance(points, pd.DataFrame) or not {"x name", "x", "low", "high"} <= set(points.columns):
        raise TypeError("expected the DataFrame returned by curve_points()")
    if points.empty:
        raise ValueError("there are no curve points to plot")
    panels = list(points.groupby(["chapter", "metric", "x name"], sort=True))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 3.8 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, ((chapter, metric, x_name), part) in zip(axes.flat, panels):
        for experiment, line in sorted(part.groupby("experiment"), key=lambda item: _natural(item[0])):
            err = np.vstack([line["mean"] - line["low"], line["high"] - line["mean"]])
            ax.errorbar(line["x"], line["mean"], yerr=np.nan_to_num(err), marker="o", capsize=3, label=experiment)
        if (part["x"] > 0).all() and part["x"].max() / part["x"].min() >= 10:
            ax.set_xscale("log")
        ax.set(title=f"chapter {int(chapter):02d} ({part['dataset'].iloc[0]})", xlabel=x_name,
               ylabel=f"{metric} (mean, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig
