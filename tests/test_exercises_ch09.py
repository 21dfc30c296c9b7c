"""Every check of chapter 09's exercises, with correct and wrong answers."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats
from sklearn.metrics import pairwise_distances

from ptcourse.exercises import ch09 as ex
from ptcourse.stats import minimal_detectable_difference, paired_difference

X = np.array(ex.ACCURACIES)
N = len(X)


def _ci(quantile, std):
    half = quantile * std / math.sqrt(N)
    return (X.mean() - half, X.mean() + half)


# ----------------------------------------------------------------- q1
def test_q1_t_interval_by_hand(capsys):
    right = stats.t.interval(0.95, N - 1, loc=X.mean(), scale=stats.sem(X))
    assert ex.q1.check(right)
    assert ex.q1.check([torch.tensor(right[0]), np.float32(right[1])])
    assert "✅" in capsys.readouterr().out
    ok, feedback = ex.q1.evaluate((round(right[0], 3), round(right[1], 3)))  # rounded as printed with :.3f
    assert ok and "to the decimals you gave" in feedback
    s = X.std(ddof=1)
    cases = [
        (_ci(1.96, s), "normal quantile 1.96"),
        (_ci(stats.t.ppf(0.975, N - 1), X.std(ddof=0)), "divides by n"),
        (_ci(stats.t.ppf(0.975, N), s), "degrees of freedom"),
        (_ci(stats.t.ppf(0.95, N - 1), s), "2.5 % in each tail"),
        (_ci(stats.t.ppf(0.975, N - 1), s * math.sqrt(N)), "sqrt(n) times too wide"),
        ((right[1], right[0]), "swapped"),
        ((X.mean() - 0.001, X.mean() + 0.001), "the half-width is not"),
        ((round(_ci(stats.t.ppf(0.975, N), s)[0], 3), round(_ci(stats.t.ppf(0.975, N), s)[1], 3)), "half-width"),
        ((round(_ci(1.96, s)[0], 3), round(_ci(1.96, s)[1], 3)), "half-width"),
        ((0.5, 0.9), "centred on the mean"),
        (0.87, "pair of two numbers"),
        (np.array(0.87), "pair of two numbers"),
        (torch.tensor([[0.86, 0.9]]), "pair of two numbers"),
        ("0.86, 0.90", "pair of two numbers"),
    ]
    for answer, message in cases:
        ok, feedback = ex.q1.evaluate(answer)
        assert not ok and message in feedback, (answer, feedback)


# ----------------------------------------------------------------- q2
def paired_ci(a, b, confidence=0.95):
    d = paired_difference(a, b, confidence)
    return d.mean, d.low, d.high


def test_q2_paired_comparison():
    assert ex.q2.evaluate(paired_ci)[0]

    def by_hand(a, b, confidence):
        d = np.asarray(a) - np.asarray(b)
        half = stats.t.ppf(1 - (1 - confidence) / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
        return d.mean(), d.mean() - half, d.mean() + half

    assert ex.q2.evaluate(by_hand)[0]
    assert ex.q2.evaluate(lambda a, b, c: np.array(by_hand(a, b, c)))[0]  # an array of three numbers
    assert ex.q2.evaluate(lambda a, b, c: torch.tensor(by_hand(a, b, c)))[0]

    def in_float32(a, b, confidence):
        d = torch.tensor(a, dtype=torch.float32) - torch.tensor(b, dtype=torch.float32)
        half = stats.t.ppf(1 - (1 - confidence) / 2, len(d) - 1) * d.std() / math.sqrt(len(d))
        return d.mean(), d.mean() - half, d.mean() + half

    assert ex.q2.evaluate(in_float32)[0]

    def with_ddof(ddof, quantile):
        def fn(a, b, confidence):
            d = np.asarray(a) - np.asarray(b)
            half = stats.t.ppf(quantile(confidence), len(d) - 1) * d.std(ddof=ddof) / math.sqrt(len(d))
            return d.mean(), d.mean() - half, d.mean() + half
        return fn

    wrong = {
        "divides by n": with_ddof(0, lambda c: 1 - (1 - c) / 2),
        "one-sided quantile": with_ddof(1, lambda c: c),
        "b - a": lambda a, b, c: paired_ci(b, a, c),
        "unpaired (Welch)": lambda a, b, c: (np.mean(a) - np.mean(b),
                                             *stats.ttest_ind(a, b, equal_var=False).confidence_interval(c)),
        "normal quantile": lambda a, b, c: (lambda d, z: (d.mean(), d.mean() - z * stats.sem(d),
                                                          d.mean() + z * stats.sem(d)))(
            a - b, stats.norm.ppf(1 - (1 - c) / 2)),
        "confidence argument": lambda a, b, c: paired_ci(a, b, 0.95),
        "mean of the per-seed differences": lambda a, b, c: (0.0, -1.0, 1.0),
        "half-width is not": lambda a, b, c: (lambda d: (d.mean(), d.mean() - d.std(), d.mean() + d.std()))(a - b),
        "three numbers": lambda a, b, c: (0.1, 0.2),
        "raised ZeroDivisionError": lambda a, b, c: 1 / 0,
    }
    for message, fn in wrong.items():
        ok, feedback = ex.q2.evaluate(fn)
        assert not ok and message in feedback, (message, feedback)

    for shape_wrong in (lambda a, b, c: np.array(0.1), lambda a, b, c: np.zeros((3, 1))):  # 0-d, 2-D
        ok, feedback = ex.q2.evaluate(shape_wrong)
        assert not ok and "three numbers" in feedback, feedback

    def stub(a, b, confidence=0.95):
        raise NotImplementedError

    ok, feedback = ex.q2.evaluate(stub)
    assert not ok and "not written yet" in feedback
    ok, feedback = ex.q2.evaluate((0.1, 0.0, 0.2))
    assert not ok and "the function" in feedback


# ----------------------------------------------------------------- q3
def test_q3_how_many_seeds():
    n = next(m for m in range(2, 100) if minimal_detectable_difference(ex.SD_DIFFERENCE, m) <= ex.TARGET_DIFFERENCE)
    assert ex.q3.evaluate(n)[0] and ex.q3.evaluate(float(n))[0] and ex.q3.evaluate(np.int64(n))[0]
    z_n = math.ceil(((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * ex.SD_DIFFERENCE / ex.TARGET_DIFFERENCE) ** 2)
    ok, feedback = ex.q3.evaluate(z_n)
    assert not ok and "normal approximation" in feedback
    half = next(m for m in range(2, 100)
                if stats.t.ppf(0.975, m - 1) * ex.SD_DIFFERENCE / math.sqrt(m) <= ex.TARGET_DIFFERENCE)
    ok, feedback = ex.q3.evaluate(half)
    assert not ok and "power term is missing" in feedback
    ok, feedback = ex.q3.evaluate(3)
    assert not ok and "too few" in feedback
    ok, feedback = ex.q3.evaluate(n + 5)
    assert not ok and "more than needed" in feedback
    ok, feedback = ex.q3.evaluate(13.5)
    assert not ok and "whole number" in feedback


# ----------------------------------------------------------------- q4
def near_duplicates(train_x, test_x, threshold):
    return np.flatnonzero(pairwise_distances(test_x, train_x).min(axis=1) <= threshold)


def test_q4_near_duplicate_detector():
    assert ex.q4.evaluate(near_duplicates)[0]
    as_mask = lambda tr, te, t: torch.cdist(torch.tensor(te), torch.tensor(tr)).min(1).values <= t  # noqa: E731
    assert ex.q4.evaluate(as_mask)[0]
    assert ex.q4.evaluate(lambda tr, te, t: set(near_duplicates(tr, te, t).tolist()))[0]
    wrong = {
        "reversed": lambda tr, te, t: np.flatnonzero(pairwise_distances(te, tr).min(axis=1) > t),
        "found": lambda tr, te, t: near_duplicates(tr, te, t)[:3],
        "no near-copy": lambda tr, te, t: np.flatnonzero(pairwise_distances(te, tr).min(axis=1) <= 1.2),
        "indices into test_x": lambda tr, te, t: np.append(near_duplicates(tr, te, t), 500),
        "whole-number": lambda tr, te, t: near_duplicates(tr, te, t) + 0.5,
        "one entry per test row": lambda tr, te, t: np.zeros(5, dtype=bool),
        "squared": lambda tr, te, t: np.flatnonzero(pairwise_distances(te, tr).min(axis=1) ** 2 <= t),
        "Euclidean one": lambda tr, te, t: np.flatnonzero(
            pairwise_distances(te, tr, metric="manhattan").min(axis=1) <= t),
    }
    for message, fn in wrong.items():
        ok, feedback = ex.q4.evaluate(fn)
        assert not ok and message in feedback, (message, feedback)


# ----------------------------------------------------------------- q5
def test_q5_winners_curse_and_test_size():
    assert ex.q5.evaluate({50: 0.031, 400: 0.009})[0]
    assert ex.q5.evaluate({50: np.float64(0.03), 100: 0.02, 400: torch.tensor(0.012)})[0]
    cases = [
        ({50: -0.03, 400: -0.01}, "check the sign"),
        ({50: 0.01, 400: 0.02}, "shrink as the test set grows"),
        ({50: 0.048, 400: 0.038}, "the *chosen* setting"),  # winner's test minus the mean fresh of all settings
        ({50: 3.1, 400: 0.9}, "as fractions"),
        ({50: 0.03}, "50 and 400"),
        ({"fifty": 0.03}, "test-set sizes"),
        ([0.03, 0.01], "should be a dict"),
    ]
    for answer, message in cases:
        ok, feedback = ex.q5.evaluate(answer)
        assert not ok and message in feedback, (answer, feedback)
