"""Checks for the exercises of chapter 02 · Multi-task learning.

Usage (in ``exercises/02_multi_task_exercises.ipynb``)::

    from ptcourse.exercises import ch02 as ex
    ex.q1.check((w_simple, w_classification))   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: the optimal learned weight of a task under uncertainty weighting (a quick question)
- q2: a weighted multi-task loss with missing labels (a function)
- q3: where does the random-label task do its damage? (a small experiment)
"""

from __future__ import annotations

import math
from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, close, require_type, to_float

__all__ = ["q1", "q2", "q3"]

MISSING = -1


# ----------------------------------------------------------------- q1
_Q1_LOSS = 0.5


def _check_q1(answer: Any) -> tuple[bool, str]:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise AnswerError("give a pair (w_simple, w_classification) of two numbers.")
    simple = to_float(answer[0], "w_simple")
    classification = to_float(answer[1], "w_classification")
    want_simple, want_classification = 1 / _Q1_LOSS, 1 / (2 * _Q1_LOSS)
    ok_simple = close(simple, want_simple, tol=1e-3)
    ok_class = close(classification, want_classification, tol=1e-3)
    if ok_simple and ok_class:
        return True, (
            "setting dL/ds = 0 gives the weight in closed form; both forms weight a task by the inverse of "
            "its loss and differ only by a constant factor, so the ratios between tasks are the same."
        )
    if close(simple, _Q1_LOSS, tol=1e-3) or close(classification, _Q1_LOSS, tol=1e-3):
        return False, "that is the task loss itself; the question asks for the weight exp(-s*) at the optimum."
    if close(simple, math.log(_Q1_LOSS), tol=1e-3) or close(simple, -math.log(_Q1_LOSS), tol=1e-3):
        return False, "that looks like the optimal s (or -s); the weight is exp(-s*)."
    if ok_simple:
        return False, "w_simple is right; redo the derivative for the form with s/2 instead of s."
    if ok_class:
        return False, "w_classification is right; redo the derivative for the form exp(-s) L + s."
    if close(simple, want_classification, tol=1e-3) and close(classification, want_simple, tol=1e-3):
        return False, "the two values are swapped: which form has the smaller constant in front of s?"
    return False, "differentiate each form with respect to s, set the derivative to zero and solve for exp(-s)."


q1 = Exercise(
    "q1",
    "The optimal uncertainty weight",
    check=_check_q1,
    hints=[
        "For a fixed task loss L, minimise f(s) = exp(-s) L + c s over s: set f'(s) = 0.",
        "f'(s) = -exp(-s) L + c = 0 gives exp(-s) = c / L; use c = 1 for the simple form and c = 1/2 "
        "for the classification form.",
    ],
)


# ----------------------------------------------------------------- q2
def _reference_loss(outputs, y, columns, weights):
    import torch
    import torch.nn.functional as F

    total = torch.zeros(())
    for task, column in columns.items():
        labels = y[:, column]
        if (labels != MISSING).any():
            total = total + weights.get(task, 1.0) * F.cross_entropy(outputs[task], labels, ignore_index=MISSING)
    return total


def _q2_cases():
    import torch

    g = torch.Generator().manual_seed(2)
    columns = {"digit": 0, "parity": 1, "noise": 2}
    sizes = {"digit": 10, "parity": 2, "noise": 10}
    cases = []
    for n, weights, missing in [
        (6, {"digit": 1.0, "parity": 1.0, "noise": 1.0}, None),            # all labels present
        (8, {"digit": 1.0, "parity": 0.5, "noise": 0.1}, "some"),          # some labels missing
        (5, {"digit": 2.0, "parity": 1.0, "noise": 1.0}, "task"),          # parity absent from the batch
        (7, {"digit": 1.0, "parity": 1.0, "noise": 0.0}, "some"),          # a zero weight
    ]:
        outputs = {t: torch.randn(n, c, generator=g) * 3 for t, c in sizes.items()}
        y = torch.stack([torch.randint(0, c, (n,), generator=g) for c in sizes.values()], dim=1)
        if missing == "some":
            y[torch.rand(n, 3, generator=g) < 0.4] = MISSING
            y[0, :] = torch.tensor([1, 0, 3])  # every task keeps at least one label
        elif missing == "task":
            y[:, columns["parity"]] = MISSING
        cases.append((outputs, y, columns, weights, missing))
    return cases


def _check_q2(answer: Any) -> tuple[bool, str]:
    import torch

    if not callable(answer):
        raise AnswerError(f"pass your function itself (multitask_loss, without calling it), got a {type(answer).__name__}.")
    for outputs, y, columns, weights, missing in _q2_cases():
        result = answer({k: v.clone() for k, v in outputs.items()}, y.clone(), dict(columns), dict(weights))
        if not isinstance(result, torch.Tensor) or result.numel() != 1:
            raise AnswerError(f"multitask_loss should return a one-element tensor, got {type(result).__name__}.")
        value = float(result)
        want = float(_reference_loss(outputs, y, columns, weights))
        if math.isnan(value):
            return False, (
                "the loss is NaN: when a task has no label in the batch, averaging over zero examples gives NaN; "
                "such a task must contribute nothing."
            )
        if close(value, want, tol=1e-4, rel=1e-4):
            continue
        if missing == "some":
            # the classic mistake: summing over labelled rows but dividing by the batch size
            wrong = 0.0
            for task, column in columns.items():
                labels = y[:, column]
                keep = labels != MISSING
                ce = torch.nn.functional.cross_entropy(outputs[task][keep], labels[keep], reduction="sum")
                wrong += weights[task] * float(ce) / len(labels)
            if close(value, wrong, tol=1e-4, rel=1e-4):
                return False, (
                    "you divide each task's summed loss by the batch size; average over the examples that carry "
                    "a label for that task instead."
                )
        unweighted = float(_reference_loss(outputs, y, columns, {}))
        if not all(w == 1.0 for w in weights.values()) and close(value, unweighted, tol=1e-4, rel=1e-4):
            return False, "the weights are ignored: multiply each task's loss by weights[task] before summing."
        return False, (
            "the value differs from the weighted sum of per-task cross-entropies averaged over labelled examples "
            f"(case with {'no' if missing is None else missing} missing labels)."
        )
    return True, "missing labels are skipped, empty tasks contribute zero and the weights are applied."


q2 = Exercise(
    "q2",
    "A weighted multi-task loss with missing labels",
    check=_check_q2,
    hints=[
        "For each task take its label column y[:, columns[task]]; rows equal to -1 carry no label.",
        "F.cross_entropy(logits, labels, ignore_index=-1) averages over labelled rows; skip a task "
        "whose column is all -1 (it would give NaN), and sum weights[task] * loss over tasks.",
    ],
)


# ----------------------------------------------------------------- q3
def _check_q3(answer: Any) -> tuple[bool, str]:
    require_type(answer, dict, "your results")
    needed = {"noise on labelled images", "noise on the pool only"}
    missing = needed - set(answer)
    if missing:
        raise AnswerError(f"your results should have the keys {sorted(needed)} (missing {sorted(missing)}).")
    on_labelled = to_float(answer["noise on labelled images"], "the cost with noise on the labelled images")
    pool_only = to_float(answer["noise on the pool only"], "the cost with noise on the pool only")
    for value in (on_labelled, pool_only):
        if not -0.5 < value < 0.5:
            raise AnswerError(
                "a cost is a difference of two accuracies (multi-task minus multi-task + noise), a fraction "
                f"between -0.5 and 0.5 here; got {value}."
            )
    if on_labelled <= 0:
        return False, (
            "with random labels on the digit-labelled images the noise task should cost accuracy; check that "
            "the cost is (accuracy without noise) - (accuracy with noise), averaged over seeds."
        )
    if not on_labelled > pool_only:
        return False, (
            "the cost should be larger when the random labels sit on the same few images as the digit labels; "
            "check that the pool-only variant leaves the random-label column of the labelled images at -1."
        )
    return True, (
        f"cost {on_labelled:+.3f} vs {pool_only:+.3f}: the damage comes mostly from asking the shared features "
        "to separate images of the same digit on the very examples the scarce task learns from."
    )


q3 = Exercise(
    "q3",
    "Where does the noise task do its damage?",
    check=_check_q3,
    hints=[
        "Train three recipes with the same seeds: multi-task without noise, + noise with random labels on "
        "the labelled images too, + noise with random labels on the pool only.",
        "Cost = mean digit accuracy without noise - mean digit accuracy with noise; pass "
        "{'noise on labelled images': cost_1, 'noise on the pool only': cost_2}.",
    ],
)
