"""Checks for the exercises of chapter 01 · Single-task learning.

Usage (in ``exercises/01_single_task_exercises.ipynb``)::

    from ptcourse.exercises import ch01 as ex
    history = ex.example_history()      # the learning curves used by q2 and q3
    ex.q1.check("...")                  # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: which split do you choose the epoch on? (a quick question)
- q2: the epoch to keep, read from a history (reading learning curves)
- q3: the generalisation gap at that epoch (a number)
- q4: a stratified, seeded train/validation split (a function)
- q5: few labels and overfitting (a small experiment with ``ptcourse.fit``)
"""

from __future__ import annotations

from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, close, require_type, to_float, to_int

__all__ = ["example_history", "q1", "q2", "q3", "q4", "q5"]


# ----------------------------------------------------------------- q1
_SPLIT_NAMES = {
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "dev": "validation",
    "development": "validation",
    "held-out validation": "validation",
    "test": "test",
    "testing": "test",
    "train": "train",
    "training": "train",
}


def _check_q1(answer: Any) -> tuple[bool, str]:
    require_type(answer, str, "your answer (the name of a split)")
    words = answer.strip().lower().replace("_", " ").split()
    words = [w for w in words if w not in ("the", "set", "split", "data", "dataset", "subset")]
    split = _SPLIT_NAMES.get(" ".join(words))
    if split == "validation":
        return True, (
            "the epoch (like every other choice you make) is selected on data the model is not trained on "
            "and that is not the final test set, which stays untouched until the end."
        )
    if split == "test":
        return False, (
            "if the test set chooses the epoch, it has become part of model selection and its score is no "
            "longer an unbiased estimate of performance on new data (test-set leakage)."
        )
    if split == "train":
        return False, (
            "the training loss keeps falling while the model memorises its examples, so it cannot show "
            "when the model starts to overfit."
        )
    raise AnswerError(f"answer with the name of one split: 'train', 'validation' or 'test' (got {answer!r}).")


q1 = Exercise(
    "q1",
    "Which split chooses the epoch?",
    check=_check_q1,
    hints=[
        "The split you choose on must be one the model is not trained on.",
        "Ask yourself which split must stay untouched until the very end so its score stays honest.",
    ],
)


# ----------------------------------------------------------------- q2 and q3
def example_history():
    """The learning curves of a (made-up but typical) 20-epoch run, as a ``fit``-style DataFrame (chapter 01).

    Columns: ``epoch`` (from 1), ``train_loss``, ``val_loss``, ``train_acc`` (accuracy on the
    training set, measured with ``evaluate`` after each epoch) and ``val_acc``.

    Usage: ``history = example_history()``
    """
    import numpy as np
    import pandas as pd

    e = np.arange(1, 21)
    return pd.DataFrame(
        {
            "epoch": e,
            "train_loss": (2.3 * np.exp(-0.35 * (e - 1)) + 0.02).round(4),
            "val_loss": (0.30 + 2.0 * np.exp(-0.42 * (e - 1)) + 0.018 * (e - 1)).round(4),
            "train_acc": (1 - 0.9 * np.exp(-0.38 * (e - 1))).round(4),
            "val_acc": (0.86 - 0.76 * np.exp(-0.45 * (e - 1)) - 0.0015 * (e - 1)).round(4),
        }
    )


def _best_epoch(history) -> int:
    return int(history.loc[history["val_loss"].idxmin(), "epoch"])


def _check_q2(answer: Any) -> tuple[bool, str]:
    h = example_history()
    epoch = to_int(answer, "the epoch")
    best = _best_epoch(h)
    if epoch == best:
        return True, "that is the epoch with the lowest validation loss; after it the model starts to overfit."
    if epoch not in set(h["epoch"]):
        return False, f"the history has epochs {int(h['epoch'].min())} to {int(h['epoch'].max())}."
    if epoch == int(h.loc[h["val_acc"].idxmax(), "epoch"]):
        return False, (
            "that epoch has the highest validation accuracy, but the question selects on validation loss "
            "(the quantity fit monitors by default)."
        )
    if epoch == int(h.loc[h["train_loss"].idxmin(), "epoch"]):
        return False, "that is where the training loss is lowest; training loss cannot reveal overfitting."
    if epoch == best - 1:
        return False, "off by one: read the epoch column, not the row index (epochs are numbered from 1)."
    return False, "that epoch does not have the lowest validation loss; look for the minimum of the val_loss column."


q2 = Exercise(
    "q2",
    "The epoch to keep",
    check=_check_q2,
    hints=[
        "Early stopping keeps the epoch where the monitored validation quantity is best.",
        "Find the row where val_loss is smallest (pandas' idxmin gives that row's label), then read the "
        "epoch column in that row: row labels start at 0, epochs at 1.",
    ],
)


def _check_q3(answer: Any) -> tuple[bool, str]:
    h = example_history()
    gap = to_float(answer, "the generalisation gap")
    row = h[h["epoch"] == _best_epoch(h)].iloc[0]
    expected = float(row["train_acc"] - row["val_acc"])
    last = h.iloc[-1]
    if close(gap, expected, tol=1e-3):
        return True, "the model is right on clearly more training images than validation images at that epoch."
    if close(gap, 100 * expected, tol=0.1):
        return False, "that looks like percentage points; give the gap as a fraction between 0 and 1."
    if close(gap, -expected, tol=1e-3):
        return False, "the sign is reversed: the gap is training accuracy minus validation accuracy."
    if close(gap, float(last["train_acc"] - last["val_acc"]), tol=1e-3):
        return False, "that is the gap at the last epoch; measure it at the epoch you would keep (q2)."
    if close(gap, float(row["val_loss"] - row["train_loss"]), tol=1e-3):
        return False, "that is a gap in loss; the question asks for the gap in accuracy."
    return False, "not the gap at the selected epoch: subtract the validation accuracy from the training accuracy there."


q3 = Exercise(
    "q3",
    "The generalisation gap",
    check=_check_q3,
    hints=[
        "The generalisation gap is (accuracy on the training set) - (accuracy on the validation set).",
        "Take both accuracies from the row of the epoch you found in q2.",
    ],
)


# ----------------------------------------------------------------- q4
def _labels(counts: list[int], seed: int):
    import torch

    y = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(counts)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]


def _as_index_array(part: Any, what: str):
    import numpy as np

    if hasattr(part, "detach"):
        part = part.detach().cpu().numpy()
    try:
        arr = np.asarray(part)
    except Exception as err:  # noqa: BLE001
        raise AnswerError(f"{what} should be a 1-D tensor of indices, got a {type(part).__name__}.") from err
    if arr.ndim != 1:
        raise AnswerError(f"{what} should be a 1-D tensor of indices, got shape {arr.shape}.")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or np.all(arr == np.round(arr))):
        raise AnswerError(f"{what} should hold integer indices, got dtype {arr.dtype}.")
    return arr.astype(np.int64)


def _run_split(fn, y, fraction: float, seed: int):
    result = call_answer(fn, y.clone(), fraction, seed, what="stratified_split")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AnswerError(
            f"your function should return a pair (train_idx, val_idx), got {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
            + "."
        )
    return _as_index_array(result[0], "train_idx"), _as_index_array(result[1], "val_idx")


def _check_q4(answer: Any) -> tuple[bool, str]:
    import numpy as np

    counts = [40, 20, 10, 60, 30]
    y = _labels(counts, seed=123)
    n = len(y)
    fraction = 0.2
    train, val = _run_split(answer, y, fraction, seed=0)
    if len(np.unique(train)) != len(train) or len(np.unique(val)) != len(val):
        return False, "an index appears twice inside one split; each example must be used once."
    if np.intersect1d(train, val).size:
        return False, "some examples are in both train and validation; the two splits must be disjoint."
    if len(train) + len(val) != n or set(np.concatenate([train, val]).tolist()) != set(range(n)):
        return False, "the two splits together must contain every index 0..len(y)-1 exactly once."
    labels = y.numpy()
    for c, n_c in enumerate(counts):
        in_val = int(np.sum(labels[val] == c))
        if abs(in_val - fraction * n_c) > 1:
            return False, (
                f"not stratified: class {c} has {in_val} of its {n_c} examples in validation, "
                f"but each class should have about {fraction:.0%} of its examples there."
            )
    again = _run_split(answer, y, fraction, seed=0)
    if not (np.array_equal(np.sort(again[1]), np.sort(val))):
        return False, "two calls with the same seed gave different splits; the split must be reproducible."
    other = _run_split(answer, y, fraction, seed=1)
    if np.array_equal(np.sort(other[1]), np.sort(val)):
        return False, "a different seed gave the same split; use the seed to draw a random permutation."
    train5, val5 = _run_split(answer, _labels([7, 13], seed=5), 0.5, seed=3)
    if len(train5) + len(val5) != 20:
        return False, "on a second label set the splits do not cover every example; avoid hard-coded sizes."
    return True, "disjoint, complete, stratified and reproducible: a split you can trust."


q4 = Exercise(
    "q4",
    "A stratified, seeded validation split",
    check=_check_q4,
    hints=[
        "Work class by class: find the indices of class c with torch.nonzero(y == c).",
        "Make one torch.Generator from the seed and use it for every random draw. For each class, shuffle "
        "that class's indices, cut the shuffled list at round(val_fraction x its size), and collect the two "
        "pieces over all classes.",
    ],
)


# ----------------------------------------------------------------- q5
def _check_q5(answer: Any) -> tuple[bool, str]:
    require_type(answer, dict, "your results")
    if len(answer) < 3:
        raise AnswerError(f"your results should have at least 3 values of k, got {len(answer)}.")
    rows = {}
    for k, value in answer.items():
        k = to_int(k, "each key (k, the labels per class)")
        if k < 1:
            raise AnswerError(f"k must be at least 1, got {k}.")
        require_type(value, dict, f"results[{k}]")
        missing = {"train_acc", "val_acc"} - set(value)
        if missing:
            raise AnswerError(f"results[{k}] should have the keys 'train_acc' and 'val_acc' (missing {sorted(missing)}).")
        accs = [to_float(value[key], f"results[{k}][{key!r}]") for key in ("train_acc", "val_acc")]
        if not all(0.0 <= a <= 1.0 for a in accs):
            raise AnswerError(f"accuracies are fractions between 0 and 1; results[{k}] has {accs}.")
        rows[k] = accs
    small, large = min(rows), max(rows)
    if small > 5 or large < 40:
        raise AnswerError(f"use a k of 5 or fewer and one of 40 or more, to see the effect (yours: {sorted(rows)}).")
    (train_s, val_s), (train_l, val_l) = rows[small], rows[large]
    gap_s, gap_l = train_s - val_s, train_l - val_l
    if train_s < 0.9:
        return False, (
            f"with k={small} the training accuracy is only {train_s:.2f}: a model this size can memorise so few "
            "images, so train longer (or measure training accuracy on the few-label subset you trained on)."
        )
    if val_l < 0.5:
        return False, (
            f"with k={large} the validation accuracy is only {val_l:.2f}; check your training loop and that you "
            "evaluate on the validation split."
        )
    if not val_l > val_s + 0.05:
        return False, "validation accuracy should clearly improve from the smallest to the largest k; check your runs."
    if not gap_s > gap_l + 0.05:
        return False, (
            "the gap should be clearly larger with few labels; measure training accuracy on the k-per-class "
            "subset you trained on and validation accuracy on the full validation split."
        )
    return True, (
        f"with k={small} the gap is {gap_s:.2f}, with k={large} it is {gap_l:.2f}: "
        "few labels mean memorisation, not generalisation."
    )


q5 = Exercise(
    "q5",
    "Few labels, large gap",
    check=_check_q5,
    hints=[
        "For each k: few = subset_per_class(splits.train, k, seed=...), train a fresh model on it with "
        "ptcourse.fit, then evaluate accuracy on `few` (train_acc) and on splits.val (val_acc).",
        "If train_acc stays well below 1 for the smallest k, the model has not memorised its few images yet: "
        "train for every epoch (no early stopping) and measure it on the subset you trained on. results maps "
        "each k to a dict with the keys 'train_acc' and 'val_acc'.",
    ],
)

