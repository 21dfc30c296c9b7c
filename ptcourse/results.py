"""Each chapter's headline numbers, saved in one place for chapter 09's table.

A chapter calls :func:`record_result` once per headline number, with the value of
every seed; chapter 09 calls :func:`load_results` and gets one table of everything
recorded on this machine, each row labelled with the profile that produced it.

Usage::

    from ptcourse.results import record_result, load_results
    record_result(3, "linear probe, pretrained", "test accuracy", [0.63, 0.61, 0.66],
                  dataset=train_set.name, seconds=41.0, at={"labels per class": 1})
    table = load_results()          # a pandas DataFrame, one row per recorded number

The files are ``results_dir()/chNN.json`` (see :mod:`ptcourse.paths`). Recording the
same chapter, experiment, metric, ``at`` and profile again replaces the old row. ``at``
names the point of a curve a number belongs to (``{"labels per class": 5}``), so
chapter 09 can redraw label-efficiency curves from the records.
"""

from __future__ import annotations

import json
import math
import numbers
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ptcourse.paths import results_dir

__all__ = ["record_result", "load_results", "summarise", "results_file"]

_KEY = ("chapter", "experiment", "metric", "at", "profile")


def results_file(chapter: int) -> Path:
    """The JSON file that holds chapter ``chapter``'s records.

    Usage: ``results_file(3)  # ~/.cache/ptcourse/results/ch03.json``
    """
    _check_chapter(chapter)
    return results_dir() / f"ch{int(chapter):02d}.json"


def _check_chapter(chapter: Any) -> None:
    if isinstance(chapter, bool) or not isinstance(chapter, numbers.Integral) or not 0 <= chapter <= 99:
        raise ValueError(f"chapter must be an int from 0 to 99 (the notebook's number), got {chapter!r}")


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def _check_values(values: Any) -> list[float]:
    if hasattr(values, "tolist"):  # a tensor or numpy array
        values = values.tolist()
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"values must be a number or a list of numbers (one per seed), got {type(values).__name__}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise ValueError(f"every value must be a finite number, got {v!r} in {list(values)!r}")
    if not values:
        raise ValueError("values is empty: record at least one measured number")
    return [float(v) for v in values]


def _check_at(at: Any) -> dict[str, float] | None:
    if at is None:
        return None
    if not isinstance(at, dict) or not at:
        raise TypeError(f"at must be None or a non-empty dict such as {{'labels per class': 5}}, got {at!r}")
    for k, v in at.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"at must map names to finite numbers, got {k!r}: {v!r}")
    return {k: float(v) for k, v in at.items()}


def _read(path: Path) -> list[dict[str, Any]]:
    """The records in ``path``; a corrupt file is moved aside with a one-line notice."""
    if not path.exists():
        return []
    try:
        records = json.loads(path.read_text())
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError("not a list of records")
        return records
    except (ValueError, OSError) as err:
        aside = path.with_suffix(".corrupt.json")
        path.replace(aside)
        print(f"[ptcourse] {path} was unreadable ({err}); moved it to {aside.name} and started afresh.")
        return []


def record_result(
    chapter: int,
    experiment: str,
    metric: str,
    values: float | Sequence[float],
    *,
    dataset: str,
    seconds: float | None = None,
    device: str | None = None,
    at: dict[str, float] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Save one headline number (all its seeds) for chapter 09's table; returns the record.

    ``values`` holds one number per seed (or a single number). The profile in force,
    the device (default: :func:`ptcourse.get_device`) and the time are added.

    Usage: ``record_result(1, "CNN, all labels", "test accuracy", accs, dataset=train_set.name)``
    """
    from ptcourse.profiles import profile

    _check_chapter(chapter)
    if not isinstance(notes, str):
        raise TypeError(f"notes must be a string, got {type(notes).__name__}")
    if device is not None and not (isinstance(device, str) and device.strip()) and type(device).__name__ != "device":
        raise TypeError(f"device must be None, a string such as 'cuda:0' or a torch.device, got {device!r}")
    vals = _check_values(values)
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, numbers.Real)
                                or not 0 <= seconds < math.inf):
        raise ValueError(f"seconds must be a finite, non-negative number or None, got {seconds!r}")
    at = _check_at(at)
    if device is None:
        from ptcourse.device import get_device

        device = str(get_device())
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    record = {
        "chapter": int(chapter),
        "experiment": _check_text(experiment, "experiment"),
        "metric": _check_text(metric, "metric"),
        "at": at,
        "profile": profile(),
        "dataset": _check_text(dataset, "dataset"),
        "mean": mean,
        "std": std,
        "seeds": len(vals),
        "values": vals,
        "seconds": None if seconds is None else float(seconds),
        "device": str(device),
        "notes": str(notes),
        "recorded": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path = results_file(chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = tuple(record[k] for k in _KEY)
    records = [r for r in _read(path) if tuple(r.get(k) for k in _KEY) != key] + [record]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(records, indent=1))
    tmp.replace(path)  # atomic: a crash never leaves half a file
    return record


def load_results(profile: str | None = None):
    """Every recorded number as a pandas DataFrame, sorted by chapter (empty if none yet).

    Rows keep their ``profile`` column: numbers from different profiles are never
    averaged together. ``profile="standard"`` keeps only that profile's rows.

    Usage: ``load_results().query("chapter == 3")``
    """
    import pandas as pd

    from ptcourse.profiles import PROFILES

    if profile is not None and profile not in PROFILES:
        raise ValueError(f"profile must be None or one of {', '.join(PROFILES)}, got {profile!r}")
    columns = ["chapter", "experiment", "metric", "at", "profile", "dataset", "mean", "std", "seeds",
               "values", "seconds", "device", "notes", "recorded"]
    folder = results_dir()
    records = []
    for path in sorted(folder.glob("ch[0-9][0-9].json")) if folder.is_dir() else []:
        records += _read(path)
    table = pd.DataFrame(records, columns=columns)
    if profile is not None:
        table = table[table["profile"] == profile]
    return table.sort_values(["chapter", "experiment", "metric"], kind="stable").reset_index(drop=True)


def summarise(table) -> Any:
    """The table with a readable ``mean ± std (n seeds)`` column and fewer columns (chapter 09).

    Usage: ``summarise(load_results())``
    """
    import pandas as pd

    needed = ["chapter", "experiment", "metric", "at", "mean", "std", "seeds", "dataset", "profile", "device", "seconds"]
    if not isinstance(table, pd.DataFrame) or any(c not in table.columns for c in needed):
        raise TypeError(f"table must be the DataFrame that load_results() returns (columns {needed}), "
                        f"got {type(table).__name__}")
    shown = table.copy()
    shown["result"] = [
        f"{m:.3f} ± {s:.3f} ({n} seed{'s' * (n != 1)})" for m, s, n in zip(shown["mean"], shown["std"], shown["seeds"])
    ]
    return shown[["chapter", "experiment", "metric", "at", "result", "dataset", "profile", "device", "seconds"]]
