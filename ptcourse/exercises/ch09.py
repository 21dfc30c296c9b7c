"""Checks for the exercises of chapter 09 · Analysing experimental results.

Usage (in ``exercises/09_analysing_results_exercises.ipynb``)::

    from ptcourse.exercises import ch09 as ex
    ex.q1.check((low, high))   # prints ✅/❌ with feedback
    ex.q1.hint()

- q1: a 95 % confidence interval by hand (a quick question with numbers)
- q2: a paired comparison across seeds (write a function)
- q3: how many seeds an experiment needs (a quick question with numbers)
- q4: a near-duplicate detector (write a function)
- q5: the winner's curse and the size of the test set (a small experiment)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ptcourse.exercises.core import AnswerError, Exercise, call_answer, close, require_type, to_float, to_int, to_numpy

__all__ = ["ACCURACIES", "SD_DIFFERENCE", "TARGET_DIFFERENCE", "q1", "q2", "q3", "q4", "q5"]


# ----------------------------------------------------------------- q1
ACCURACIES = (0.874, 0.861, 0.902, 0.883, 0.869)
"""Test accuracies of one recipe over five seeds."""


def _interval(x: np.ndarray, quantile: float, std: float) -> tuple[float, float]:
    half = quantile * std / math.sqrt(len(x))
    return x.mean() - half, x.mean() + half


def _is_sequence_of(answer: Any, count: int) -> bool:
    """True for a flat list, tuple, array or tensor of ``count`` items (not a string, a dict or a 0-d array)."""
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__len__"):
        return False
    return getattr(answer, "ndim", 1) == 1 and len(answer) == count


def _pair(answer: Any, what: str) -> tuple[float, float]:
    if not _is_sequence_of(answer, 2):
        raise AnswerError(f"give {what} as a pair of two numbers, (low, high).")
    return to_float(answer[0], "low"), to_float(answer[1], "high")


def _check_q1(answer: Any) -> tuple[bool, str]:
    low, high = _pair(answer, "the interval")
    x = np.array(ACCURACIES)
    n, s = len(x), x.std(ddof=1)
    want = _interval(x, stats.t.ppf(0.975, n - 1), s)
    if close([low, high], want, tol=5e-5):
        return True, "mean ± t(0.975, n-1) · s / sqrt(n): with 5 seeds the t quantile is 2.78, not 1.96."
    if close([high, low], want, tol=5e-5):
        return False, "the two ends are swapped: give (low, high)."
    if close([low, high], _interval(x, 1.96, s), tol=5e-5):
        return False, "that uses the normal quantile 1.96; with 5 seeds the spread itself is uncertain, so use t."
    if close([low, high], _interval(x, stats.t.ppf(0.975, n - 1), x.std(ddof=0)), tol=5e-5):
        return False, "your standard deviation divides by n; the sample standard deviation divides by n - 1."
    if close([low, high], _interval(x, stats.t.ppf(0.975, n), s), tol=5e-5):
        return False, "check the degrees of freedom of the t quantile."
    if close([low, high], _interval(x, stats.t.ppf(0.95, n - 1), s), tol=5e-5):
        return False, "a 95 % two-sided interval leaves 2.5 % in each tail: which quantile is that?"
    if close([low, high], _interval(x, stats.t.ppf(0.975, n - 1), s * math.sqrt(n)), tol=5e-5):
        return False, "that interval is sqrt(n) times too wide: the mean of n seeds varies less than one seed."
    if close([low, high], want, tol=6e-4):
        return True, "right (to the decimals you gave): mean ± t(0.975, n-1) · s / sqrt(n), with t = 2.78 for 5 seeds."
    if close((low + high) / 2, x.mean(), tol=6e-4):
        return False, "the centre (the mean) is right; the half-width is not."
    return False, "the interval is centred on the mean of the five accuracies."


q1 = Exercise(
    "q1",
    "A 95 % confidence interval by hand",
    check=_check_q1,
    hints=[
        "The interval is mean ± (t quantile) × (standard error); the standard error is s / sqrt(n).",
        "Use the sample standard deviation (ddof=1) and scipy.stats.t.ppf(0.975, df) with df = n - 1.",
    ],
)


# ----------------------------------------------------------------- q2
def _reference_pairs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.03, size=n)  # what a seed does to both recipes
    a = 0.85 + shared + rng.normal(0, 0.006, size=n)
    b = 0.84 + shared + rng.normal(0, 0.006, size=n)
    return a, b


def _check_q2(answer: Any) -> tuple[bool, str]:
    for seed, n, confidence in ((0, 8, 0.95), (1, 15, 0.9), (2, 5, 0.99)):
        a, b = _reference_pairs(seed, n)
        got = call_answer(answer, a.copy(), b.copy(), confidence, what="paired_ci")
        if not _is_sequence_of(got, 3):
            raise AnswerError("paired_ci should return three numbers: (mean difference, low, high).")
        got = [to_float(v, name) for v, name in zip(got, ("the mean difference", "low", "high"))]
        ref = stats.ttest_rel(a, b)
        ci = ref.confidence_interval(confidence)
        want = [float(np.mean(a - b)), float(ci.low), float(ci.high)]
        if close(got, want, tol=1e-6):  # float32 arithmetic is accurate to about 1e-7 here
            continue
        if close(got, [-want[0], -want[2], -want[1]], tol=1e-6):
            return False, "your difference is b - a; the question asks for a - b."
        welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
        if close(got[1:], [welch.low, welch.high], tol=1e-6):
            return False, ("that is the unpaired (Welch) interval: it treats the runs as independent and ignores "
                           "that run i of a and run i of b share a seed.")
        if not close(got[0], want[0], tol=1e-6):
            return False, "the centre should be the mean of the per-seed differences a_i - b_i."
        half, s_d = got[2] - got[0], np.std(a - b, ddof=1)
        if close(half, stats.norm.ppf(1 - (1 - confidence) / 2) * s_d / math.sqrt(n), tol=1e-6):
            return False, "that uses the normal quantile; with few seeds use the t quantile with n - 1 degrees of freedom."
        if close(half, stats.t.ppf(1 - (1 - confidence) / 2, n - 1) * np.std(a - b) / math.sqrt(n), tol=1e-6):
            return False, "your standard deviation divides by n; the sample standard deviation divides by n - 1."
        if close(half, stats.t.ppf(confidence, n - 1) * s_d / math.sqrt(n), tol=1e-6):
            return False, ("that is a one-sided quantile: a two-sided interval leaves (1 - confidence) / 2 in each "
                           "tail.")
        if confidence != 0.95 and close(half, stats.t.ppf(0.975, n - 1) * s_d / math.sqrt(n), tol=1e-6):
            return False, "your function always gives a 95 % interval: use its confidence argument."
        return False, (f"with {n} seeds at confidence {confidence} the centre is right but the half-width is not; "
                       "it is t(1 - alpha/2, n - 1) times the standard error of the differences.")
    return True, "the interval of the per-seed differences: it agrees with scipy.stats.ttest_rel."


q2 = Exercise(
    "q2",
    "A paired comparison across seeds",
    check=_check_q2,
    hints=[
        "Pairing turns two samples into one: the per-seed differences d_i = a_i - b_i.",
        "Then it is the one-sample t interval of d: mean(d) ± t(1 - (1 - confidence)/2, n - 1) · s_d / sqrt(n).",
    ],
)


# ----------------------------------------------------------------- q3
SD_DIFFERENCE = 0.012
"""Standard deviation of the per-seed differences between two recipes, from a pilot run."""
TARGET_DIFFERENCE = 0.01
"""The smallest difference in accuracy the experiment should detect (80 % power, 5 % level)."""


def _t_seeds() -> int:
    def mdd(n: int) -> float:
        return (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * SD_DIFFERENCE / math.sqrt(n)

    return next(n for n in range(2, 1000) if mdd(n) <= TARGET_DIFFERENCE)


def _exact_seeds() -> int:
    for n in range(2, 1000):
        crit = stats.t.ppf(0.975, n - 1)
        nc = TARGET_DIFFERENCE / (SD_DIFFERENCE / math.sqrt(n))
        if stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc) >= 0.8:
            return n
    raise AssertionError("unreachable")


def _check_q3(answer: Any) -> tuple[bool, str]:
    n = to_int(answer, "the number of seeds")
    correct = {_t_seeds(), _exact_seeds()}
    if n in correct:
        return True, (f"{n} seeds: with fewer, a true difference of {TARGET_DIFFERENCE} would be missed more than "
                      "one time in five.")
    z_n = math.ceil(((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * SD_DIFFERENCE / TARGET_DIFFERENCE) ** 2)
    half_width_n = next(m for m in range(2, 1000)
                        if stats.t.ppf(0.975, m - 1) * SD_DIFFERENCE / math.sqrt(m) <= TARGET_DIFFERENCE)
    if n == z_n:
        return False, "close: that is the normal approximation, which is optimistic with so few seeds; use t quantiles."
    if n == half_width_n:
        return False, ("that makes the interval's half-width equal to the target, so a true difference of that size "
                       "is detected only about half the time; the power term is missing.")
    if n < min(correct):
        return False, "too few: compute the minimal detectable difference at your n and compare it with the target."
    return False, "more than needed: look for the smallest n whose minimal detectable difference is at most the target."


q3 = Exercise(
    "q3",
    "How many seeds?",
    check=_check_q3,
    hints=[
        "For n paired seeds the minimal detectable difference is (t(0.975, n-1) + t(0.8, n-1)) · s_d / sqrt(n).",
        "Evaluate it for n = 2, 3, 4, ... (ptcourse.stats.minimal_detectable_difference does it) and stop at the "
        "first n where it is at most the target.",
    ],
)


# ----------------------------------------------------------------- q4
def _at_distance(rng: np.random.Generator, row: np.ndarray, distance: float) -> np.ndarray:
    direction = rng.normal(size=row.shape)
    return row + distance * direction / np.linalg.norm(direction)


def _twin_data(seed: int) -> tuple[np.ndarray, np.ndarray, float, set[int], int, int]:
    """Training and test rows, the threshold 0.5, the near-copies' test indices, and two probes.

    Most near-copies sit about 0.08 from their source (random pairs are about 1.6 apart);
    one sits 0.45 away (a Euclidean distance under the threshold whose L1 distance is not),
    and one test row, the decoy, is 0.6 from a training row (over the threshold, though its
    squared distance, 0.36, is under it).
    """
    rng = np.random.default_rng(seed)
    train = rng.uniform(0, 1, size=(60, 16))
    test = rng.uniform(0, 1, size=(40, 16))
    rows = rng.choice(40, size=11, replace=False)
    sources = rng.choice(60, size=11, replace=False)
    for i, j in zip(rows[:9], sources[:9]):
        test[i] = train[j] + rng.normal(0, 0.02, size=16)
    far_twin, decoy = int(rows[9]), int(rows[10])
    test[far_twin] = _at_distance(rng, train[sources[9]], 0.45)
    test[decoy] = _at_distance(rng, train[sources[10]], 0.6)
    return train, test, 0.5, set(rows[:10].tolist()), far_twin, decoy


def _as_indices(got: Any, n_test: int) -> set[int]:
    """Test-row indices from a list/array/tensor/set of indices or a boolean mask over the test rows."""
    if isinstance(got, (set, frozenset)):
        got = sorted(got)
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    try:
        values = np.asarray(got)
    except (TypeError, ValueError):
        values = np.asarray(None)
    if values.dtype == bool:
        if values.shape != (n_test,):
            raise AnswerError(f"a boolean mask should have one entry per test row ({n_test}), got shape {values.shape}.")
        return set(np.flatnonzero(values).tolist())
    values = to_numpy(values, "the result of near_duplicates")
    if values.ndim != 1:
        raise AnswerError(f"near_duplicates should return a 1-D list of test indices, got shape {values.shape}.")
    if values.size and (values != np.round(values)).any():
        raise AnswerError("near_duplicates should return whole-number indices of test rows.")
    return set(int(v) for v in values)


def _check_q4(answer: Any) -> tuple[bool, str]:
    for seed in (0, 1):
        train, test, threshold, twins, far_twin, decoy = _twin_data(seed)
        got = _as_indices(call_answer(answer, train.copy(), test.copy(), threshold, what="near_duplicates"), len(test))
        if got == twins:
            continue
        if got and max(got) >= len(test):
            return False, "some indices are larger than the number of test rows: return indices into test_x."
        if got and not got & twins:
            return False, "none of the flagged rows is a near-copy: is the comparison with the threshold reversed?"
        if got == twins | {decoy}:
            return False, (f"you flagged test row {decoy}, whose nearest training row is 0.6 away, more than the "
                           "threshold: are you comparing a *squared* distance (or another one) with the threshold?")
        if got == twins - {far_twin}:
            return False, (f"you missed test row {far_twin}, 0.45 from its training twin: is your distance the "
                           "Euclidean one, the square root of the sum of squared differences?")
        if got < twins:
            return False, (f"you found {len(got)} of the {len(twins)} near-copies: measure every test row against "
                           "every training row and keep the smallest distance.")
        return False, (f"you flagged {len(got - twins)} row(s) that have no near-copy: use the Euclidean distance to "
                       "the *nearest* training row, at most the threshold.")
    return True, "every near-copy found, nothing else flagged."


q4 = Exercise(
    "q4",
    "A near-duplicate detector",
    check=_check_q4,
    hints=[
        "For each test row you need the distance to its nearest training row: a (n_test, n_train) matrix of "
        "distances, then the minimum over the training axis.",
        "sklearn.metrics.pairwise_distances(test_x, train_x) or torch.cdist gives the matrix; np.flatnonzero turns "
        "'minimum <= threshold' into indices.",
    ],
)


# ----------------------------------------------------------------- q5
def _check_q5(answer: Any) -> tuple[bool, str]:
    require_type(answer, dict, "your results")
    bias = {}
    for key, value in answer.items():
        try:
            size = int(key)
        except (TypeError, ValueError):
            raise AnswerError(f"the keys should be test-set sizes (ints), got {key!r}.") from None
        bias[size] = to_float(value, f"bias[{key}]")
    if not {50, 400} <= set(bias):
        raise AnswerError(f"measure at least the test-set sizes 50 and 400 (yours: {sorted(bias)}).")
    if any(abs(v) > 0.2 for v in bias.values()):
        raise AnswerError("a bias of more than 20 points is not plausible: report accuracy differences as fractions.")
    if bias[50] <= 0:
        return False, ("choosing the best of 20 on a test set of 50 should look better than it is on fresh data; "
                       "check the sign (reported minus fresh) and that you choose by *test* accuracy.")
    if not bias[400] < bias[50]:
        return False, ("the bias should shrink as the test set grows; check that each size uses its own test set "
                       "of that many images.")
    if bias[400] > 0.6 * bias[50]:
        return False, ("the bias shrinks, but too little: with 8 times the test images each score's noise is about "
                       "a third, and so is the winner's luck. Subtract the fresh accuracy of the *chosen* setting, "
                       "not an average over all settings.")
    return True, (f"bias {bias[50]:+.3f} with 50 test images vs {bias[400]:+.3f} with 400: a larger test set makes "
                  "each score less noisy, so the winner owes less to luck.")


q5 = Exercise(
    "q5",
    "The winner's curse and the size of the test set",
    check=_check_q5,
    hints=[
        "For each run and draw: split the held-out images into a test set of the given size and fresh images, "
        "choose the setting with the best test accuracy, and record its test minus fresh accuracy.",
        "Average over draws and runs for each size, and store {50: bias_50, 400: bias_400}.",
    ],
)
