"""The course's results in one table and one figure, by profile (chapter 09).

Chapters record their headline numbers with :func:`ptcourse.results.record_result`;
this module turns :func:`ptcourse.results.load_results` into a readable table, a
figure, curves from the points recorded with ``at=``, and a note naming the chapters
that have not recorded anything yet in the profile in force and how to produce them.
Rows from another profile are never merged with the profile in force: they are split
off and shown apart, labelled with their profile. A record that cannot be read (a results
file edited by hand or cut short) is skipped with a one-line notice, never guessed at.

Usage::

    from ptcourse.results import load_results
    from ptcourse.analysis import split_by_profile, headline_table, missing_report, plot_headlines
    current, other = split_by_profile(load_results())
    print(missing_report(load_results()))
    headline_table(current)
"""

from __future__ import annotations

import math
import numbers
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


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _problem(row: pd.Series) -> str | None:
    """Why a record cannot be shown (a results file edited by hand or cut short), or None."""
    values, at = row["values"], row["at"]
    if not _is_number(row["chapter"]) or not float(row["chapter"]).is_integer():
        return "no chapter number"
    for column in ("experiment", "metric", "profile", "dataset"):
        if not isinstance(row[column], str) or not row[column].strip():
            return f"no {column}"
    if not isinstance(values, list) or not values or not all(_is_number(v) for v in values):
        return "its values are not a list of finite numbers"
    if not (at is None or (isinstance(at, float) and math.isnan(at)) or (
            isinstance(at, dict) and at and all(isinstance(k, str) and _is_number(v) for k, v in at.items()))):
        return "its at= is not a dict of numbers"
    return None


def _clean(table: Any, notice: bool = True) -> pd.DataFrame:
    """The usable records, with mean, std and seeds recomputed from their values; says what it skipped."""
    table = _check_table(table)
    problems = [_problem(row) for _, row in table.iterrows()]
    skipped = [f"chapter {row['chapter']}: {p}" for (_, row), p in zip(table.iterrows(), problems) if p]
    if skipped and notice:
        shown = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        print(f"[ptcourse] skipped {len(skipped)} malformed record(s) in {results_dir()} ({shown}); "
              "re-run those chapters to replace them.")
    good = table[np.array([p is None for p in problems], dtype=bool)].copy()
    good["chapter"] = [int(c) for c in good["chapter"]]
    good["at"] = [a if isinstance(a, dict) else None for a in good["at"]]
    good["values"] = [[float(v) for v in values] for values in good["values"]]
    good["seeds"] = [len(v) for v in good["values"]]
    good["mean"] = [float(np.mean(v)) for v in good["values"]]
    good["std"] = [float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for v in good["values"]]
    return good.reset_index(drop=True)


def _check_expected(expected: Any) -> list[int]:
    if isinstance(expected, (str, bytes)) or not hasattr(expected, "__iter__"):
        raise TypeError(f"expected must be a list of chapter numbers such as [1, 3], got {expected!r}")
    chapters = list(expected)
    if not chapters or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c <= 99
                               for c in chapters):
        raise ValueError(f"expected must be a non-empty list of chapter numbers from 0 to 99, got {expected!r}")
    return sorted({int(c) for c in chapters})


def _profile(profile: str | None) -> str:
    from ptcourse.profiles import PROFILES
    from ptcourse.profiles import profile as profile_in_force

    name = profile_in_force() if profile is None else profile
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)} or None (the one in force), got {name!r}")
    return name


def split_by_profile(table: pd.DataFrame, profile: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``profile`` (default: the one in force), and the rows of every other profile (chapter 09).

    Records that cannot be read (a results file edited by hand) are skipped, with a
    one-line notice; mean, std and seeds are recomputed from each record's values.

    Usage: ``current, other = split_by_profile(load_results())``
    """
    return _split(table, profile, notice=True)


def _split(table: pd.DataFrame, profile: str | None, notice: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    profile = _profile(profile)
    table = _clean(table, notice)
    mine = table["profile"] == profile
    return table[mine].reset_index(drop=True), table[~mine].reset_index(drop=True)


def missing_chapters(table: pd.DataFrame, profile: str | None = None,
                     expected: Any = tuple(CHAPTER_NOTEBOOKS)) -> list[int]:
    """The chapters in ``expected`` with no record in ``profile`` (default: the one in force).

    Usage: ``missing_chapters(load_results())  # e.g. [6, 7]``
    """
    current, _ = _split(table, profile, notice=False)
    return [c for c in _check_expected(expected) if c not in set(current["chapter"])]


def missing_report(table: pd.DataFrame, profile: str | None = None, expected: Any = tuple(CHAPTER_NOTEBOOKS)) -> str:
    """A few lines naming each chapter without results in ``profile`` and how to produce them.

    Usage: ``print(missing_report(load_results()))``
    """
    profile, expected = _profile(profile), _check_expected(expected)
    missing = missing_chapters(table, profile, expected)
    if not missing:
        return f"Every chapter from {min(expected):02d} to {max(expected):02d} has recorded results in the {profile} profile."
    _, other = _split(table, profile, notice=False)
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
    """One readable row per headline number (curve points excluded), with its 95 % t interval (chapter 09).

    A result measured with one seed gets no interval: its spread is unknown.

    Usage: ``headline_table(current)``
    """
    table = _clean(table)
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
    if "seconds" in rows.columns:
        shown["seconds"] = pd.to_numeric(rows["seconds"], errors="coerce").round(1)
    for column in ("device", "recorded"):
        if column in rows.columns:
            shown[column] = rows[column]
    return shown.reset_index(drop=True)


def curve_points(table: pd.DataFrame) -> pd.DataFrame:
    """The rows recorded with ``at=`` (points of a curve), with their x and 95 % t intervals (chapter 09).

    The x variable is the first name in ``at``; further names (``at={"epochs": 5,
    "width": 64}``) become part of the line's name, ``series`` ("..., width 64").

    Usage: ``points = curve_points(current)  # columns ..., "x name", "x", "series", "low", "high"``
    """
    table = _clean(table)
    rows = table[table["at"].notna()].copy()
    rows["x name"] = [next(iter(at)) for at in rows["at"]]
    rows["x"] = [next(iter(at.values())) for at in rows["at"]]
    rows["series"] = [", ".join([e] + [f"{k} {v:g}" for k, v in list(at.items())[1:]])
                      for e, at in zip(rows["experiment"], rows["at"])]
    intervals = [_interval(v) for v in rows["values"]]
    rows["low"], rows["high"] = [lo for lo, _ in intervals], [hi for _, hi in intervals]
    return rows.sort_values(["chapter", "x name", "metric", "series", "x"], kind="stable").reset_index(drop=True)


def plot_headlines(table: pd.DataFrame, title: str = "Headline results"):
    """A dot per headline number with its 95 % t interval, one panel per metric; returns the figure (chapter 09).

    Hollow dots are single-seed results (no interval). Usage: ``plot_headlines(current)``
    """
    import matplotlib.pyplot as plt

    table = _clean(table)
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
    """One panel per chapter, metric, x variable and dataset of :func:`curve_points`; returns the figure.

    Hollow dots are single-seed points (no interval). Usage: ``plot_curves(curve_points(current))``
    """
    import matplotlib.pyplot as plt

    if not isinstance(points, pd.DataFrame) or not {"x name", "x", "series", "low", "high"} <= set(points.columns):
        raise TypeError("expected the DataFrame returned by curve_points()")
    if points.empty:
        raise ValueError("there are no curve points to plot")
    panels = list(points.groupby(["chapter", "metric", "x name", "dataset"], sort=True))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 3.8 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, ((chapter, metric, x_name, dataset), part) in zip(axes.flat, panels):
        for series, line in sorted(part.groupby("series"), key=lambda item: _natural(item[0])):
            err = np.vstack([line["mean"] - line["low"], line["high"] - line["mean"]])
            drawn = ax.errorbar(line["x"], line["mean"], yerr=np.nan_to_num(err), marker="o", capsize=3, label=series)
            one_seed = line["seeds"] < 2
            ax.plot(line["x"][one_seed], line["mean"][one_seed], "o", mfc="white", color=drawn.lines[0].get_color(),
                    zorder=3)
        if (part["x"] > 0).all() and part["x"].max() / part["x"].min() >= 10:
            xs = sorted(set(part["x"]))
            ax.set_xscale("log")
            ax.set_xticks(xs, [f"{x:g}" for x in xs])  # the measured x values, not powers of ten
            ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set(title=f"chapter {int(chapter):02d} ({dataset})", xlabel=x_name,
               ylabel=f"{metric} (mean, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig
