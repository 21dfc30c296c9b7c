"""Checks for the exercises of chapter 02 · Multi-task learning.

Usage (in ``exercises/02_multi_task_exercises.ipynb``)::

    from ptcourse.exercises import ch02 as ex
    ex.q1.check((w_simple, w_classification))   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: the optimal learned weight of a task under uncertainty weighting (a quick question)
- q2: a weighted multi-task loss with missing labels (a function)
- q3: random labels on the few labelled images only (a small experiment, paired over seeds)
"""

from __future__ import annotations

import math
from typing import Any

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, close, require_type, to_float

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
        "The derivative of exp(-s) L with respect to s is -exp(-s) L, and that of c s is c. Set their sum to "
        "zero and solve for exp(-s), with c = 1 for the simple form and c = 1/2 for the classification form.",
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

    for outputs, y, columns, weights, missing in _q2_cases():
        result = call_answer(answer, {k: v.clone() for k, v in outputs.items()}, y.clone(), dict(columns),
                             dict(weights), what="multitask_loss")
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
        "F.cross_entropy has an argument that skips one target value and averages over the rest. A task with "
        "no label at all in the batch would then average over nothing (NaN): leave such a task out of the sum.",
    ],
)


# ----------------------------------------------------------------- q3
_Q3_VARIANTS = ("no noise", "everywhere", "labelled only")


def _q3_accuracies(accs: Any) -> dict[str, list[float]]:
    require_type(accs, dict, "accs")
    missing = [v for v in _Q3_VARIANTS if v not in accs]
    if missing:
        raise AnswerError(f"accs should have the keys {list(_Q3_VARIANTS)} (missing {missing}).")
    parsed = {}
    for name in _Q3_VARIANTS:
        values = accs[name]
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise AnswerError(f"accs[{name!r}] should be a list with one accuracy per seed, got {type(values).__name__}.")
        parsed[name] = [to_float(v, f"each accuracy in accs[{name!r}]") for v in values]
        if not all(0.0 <= v <= 1.0 for v in parsed[name]):
            raise AnswerError(f"accuracies are fractions between 0 and 1; accs[{name!r}] has {parsed[name]}.")
    lengths = {len(v) for v in parsed.values()}
    if len(lengths) != 1 or min(lengths) < 2:
        raise AnswerError(
            "every list in accs needs one accuracy per seed, the same seeds in the same order, and at least two "
            f"seeds (lengths: { {k: len(v) for k, v in parsed.items()} })."
        )
    return parsed


def _paired(base: list[float], other: list[float]) -> tuple[float, float]:
    diffs = [a - b for a, b in zip(base, other)]
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    return mean, sd / math.sqrt(len(diffs))


def _check_q3(answer: Any) -> tuple[bool, str]:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise AnswerError("give the pair (accs, costs): the accuracies per seed, then the two costs.")
    accs = _q3_accuracies(answer[0])
    costs = require_type(answer[1], dict, "costs")
    if set(costs) != {"everywhere", "labelled only"}:
        raise AnswerError(f"costs should have exactly the keys 'everywhere' and 'labelled only', got {sorted(costs)}.")
    if sum(accs["no noise"]) / len(accs["no noise"]) < 0.4:
        return False, (
            "the multi-task model without noise scores below 0.4 on validation, far below what 30 digit labels "
            "and the cheap tasks give: check the training (epochs, learning rate) and that you measure digit accuracy."
        )
    results = {}
    for variant in ("everywhere", "labelled only"):
        given = to_float(costs[variant], f"costs[{variant!r}]")
        mean, se = _paired(accs["no noise"], accs[variant])
        if close(given, -mean, tol=1e-5) and not close(mean, 0.0, tol=1e-5):
            return False, f"the sign of costs[{variant!r}] is reversed: a cost is (no noise) - (with noise)."
        if not close(given, mean, tol=1e-5):
            return False, (
                f"costs[{variant!r}] does not match your accuracies: it should be the mean over seeds of "
                "accs['no noise'] minus the accuracy of that variant, seed by seed."
            )
        results[variant] = (mean, se)
    (m_all, se_all), (m_lab, se_lab) = results["everywhere"], results["labelled only"]
    n = len(accs["no noise"])
    diff, se_diff = _paired(accs["labelled only"], accs["everywhere"])
    if abs(diff) < 2 * se_diff:
        verdict = "the two costs are within about two standard errors of each other"
    else:
        verdict = "the two costs differ by more than two standard errors"
    return True, (
        f"over {n} seeds (mean ± standard error of the paired difference): random labels everywhere cost "
        f"{m_all:+.3f} ± {se_all:.3f}, on the labelled images only {m_lab:+.3f} ± {se_lab:.3f}; {verdict}. "
        "Compare with the chapter's 'pool only' placement before you write your explanation."
    )


q3 = Exercise(
    "q3",
    "Random labels on the labelled images only",
    check=_check_q3,
    hints=[
        "Loop over the seeds and train the three variants inside the loop with the same seed, so that each "
        "seed gives one accuracy per variant and the differences can be taken seed by seed.",
        "A cost is the accuracy without noise minus the accuracy with noise for the same seed, averaged over "
        "the seeds; a positive cost means the random labels hurt.",
    ],
)
