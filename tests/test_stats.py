"""ptcourse.stats: written from scratch, checked against scipy; clear errors on bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from ptcourse.stats import (
    as_sample,
    bootstrap_interval,
    mean_and_std,
    minimal_detectable_difference,
    paired_difference,
    standard_error,
    summarise_seeds,
    t_interval,
    t_quantile,
    unpaired_difference,
)

ACC = np.array([0.912, 0.887, 0.935, 0.901, 0.921, 0.896, 0.909])


@pytest.mark.parametrize("values", [ACC, ACC.tolist(), torch.tensor(ACC), pd.Series(ACC), np.array([3, 5, 4, 9])])
def test_mean_std_and_standard_error_agree_with_numpy_and_scipy(values):
    x = np.asarray(values, dtype=float)
    mean, std = mean_and_std(values)
    assert mean == pytest.approx(x.mean(), abs=1e-12) and std == pytest.approx(x.std(ddof=1), abs=1e-12)
    assert standard_error(values) == pytest.approx(stats.sem(x), abs=1e-12)


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_t_interval_agrees_with_scipy(confidence):
    low, high = t_interval(ACC, confidence)
    want = stats.t.interval(confidence, len(ACC) - 1, loc=ACC.mean(), scale=stats.sem(ACC))
    assert (low, high) == pytest.approx(want, abs=1e-12)
    assert t_quantile(0.975, 4) == pytest.approx(2.7764451, abs=1e-6)  # the textbook table value


def test_t_interval_covers_the_true_mean_about_as_often_as_it_promises():
    rng = np.random.default_rng(0)
    covered = [lo <= 0.8 <= hi for lo, hi in (t_interval(rng.normal(0.8, 0.02, size=5)) for _ in range(2000))]
    assert abs(np.mean(covered) - 0.95) < 0.015  # 2000 trials: the binomial sd of the rate is 0.005


@pytest.mark.parametrize("confidence, n_resamples, seed", [(0.95, 9999, 0), (0.9, 2000, 7), (0.8, 3, 3)])
def test_bootstrap_interval_equals_scipy_percentile_bootstrap(confidence, n_resamples, seed):
    got = bootstrap_interval(ACC, confidence, n_resamples=n_resamples, seed=seed)
    res = stats.bootstrap((ACC,), np.mean, method="percentile", confidence_level=confidence,
                          n_resamples=n_resamples, rng=np.random.default_rng(seed))
    assert got == pytest.approx((res.confidence_interval.low, res.confidence_interval.high), abs=1e-12)


def test_bootstrap_is_close_to_t_for_many_seeds_and_narrower_for_few():
    rng = np.random.default_rng(1)
    many = rng.normal(0.9, 0.02, size=200)
    assert bootstrap_interval(many) == pytest.approx(t_interval(many), abs=0.0008)
    few = ACC[:3]
    b, t = bootstrap_interval(few), t_interval(few)
    assert b[1] - b[0] < 0.5 * (t[1] - t[0])  # the percentile bootstrap ignores the t correction for tiny n


def test_paired_difference_agrees_with_ttest_rel():
    rng = np.random.default_rng(2)
    a = rng.normal(0.9, 0.02, size=12)
    b = a - 0.004 + rng.normal(0, 0.005, size=12)
    diff = paired_difference(a, b, 0.9)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.9)
    assert diff.mean == pytest.approx(np.mean(a - b), abs=1e-12)
    assert (diff.low, diff.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert diff.t == pytest.approx(ref.statistic, rel=1e-10) and diff.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert diff.df == ref.df == 11
    assert "CI" in str(diff)


def test_unpaired_difference_agrees_with_welch_ttest():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.9, 0.02, size=8), rng.normal(0.88, 0.04, size=13)
    diff = unpaired_difference(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (diff.low, diff.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert diff.df == pytest.approx(ref.df, rel=1e-12) and diff.p_value == pytest.approx(ref.pvalue, rel=1e-8)


def test_pairing_shrinks_the_interval_when_seeds_affect_both_recipes_alike():
    rng = np.random.default_rng(4)
    seed_effect = rng.normal(0, 0.03, size=10)  # e.g. which labelled images a seed draws
    a = 0.90 + seed_effect + rng.normal(0, 0.004, size=10)
    b = 0.89 + seed_effect + rng.normal(0, 0.004, size=10)
    paired, unpaired = paired_difference(a, b), unpaired_difference(a, b)
    assert paired.high - paired.low < 0.3 * (unpaired.high - unpaired.low)
    assert paired.low > 0 and unpaired.low < 0  # only the paired comparison resolves the 0.01 gap


def test_identical_values_give_a_zero_width_interval_not_nan():
    assert t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)
    d = paired_difference([0.5, 0.6], [0.4, 0.5])
    assert (d.low, d.high, d.p_value) == (pytest.approx(0.1), pytest.approx(0.1), 0.0)
    assert paired_difference([0.5, 0.6], [0.5, 0.6]).p_value == 1.0


@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_minimal_detectable_difference_has_the_promised_power(n):
    """Against the exact power of the paired t test, from the noncentral t distribution."""
    sd = 0.012
    delta = minimal_detectable_difference(sd, n, 0.95, 0.8)
    crit = stats.t.ppf(0.975, n - 1)
    nc = delta / (sd / math.sqrt(n))
    power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.8, abs=0.03 if n > 3 else 0.06)
    assert minimal_detectable_difference(sd, 4 * n) < 0.55 * delta  # 4x the seeds: about half the difference


def test_summarise_seeds_collects_everything():
    s = summarise_seeds(ACC)
    assert (s.n, s.mean, s.std, s.se) == (7, *mean_and_std(ACC), standard_error(ACC))
    assert (s.low, s.high) == t_interval(ACC)
    assert str(s).startswith("0.909 ± 0.016 (SE 0.006, 95% CI [0.894, 0.924], 7 seeds)")


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: mean_and_std([]), ValueError, "values is empty"),
        (lambda: mean_and_std([0.9]), ValueError, "needs at least 2: with a single seed"),
        (lambda: standard_error(np.array([0.9])), ValueError, "with a single seed"),
        (lambda: t_interval([0.9]), ValueError, "with a single seed"),
        (lambda: bootstrap_interval([0.9]), ValueError, "with a single seed"),
        (lambda: summarise_seeds([]), ValueError, "is empty"),
        (lambda: mean_and_std([0.9, float("nan")]), ValueError, "finite numbers, got nan at position 1"),
        (lambda: t_interval([0.9, math.inf, 0.8]), ValueError, "finite numbers, got inf at position 1"),
        (lambda: mean_and_std([[0.9, 0.8], [0.7, 0.6]]), ValueError, r"1-D \(one number per seed\)"),
        (lambda: mean_and_std("0.9 0.8"), TypeError, "numbers, one per seed"),
        (lambda: mean_and_std(None), TypeError, "numbers, one per seed"),
        (lambda: mean_and_std([True, False]), TypeError, "real numbers"),
        (lambda: mean_and_std([0.9, None]), TypeError, "real numbers"),
        (lambda: mean_and_std([[0.9], [0.8, 0.7]]), TypeError, "numbers, one per seed"),
        (lambda: t_interval(ACC, 95), ValueError, "confidence must be a number strictly between 0 and 1"),
        (lambda: t_interval(ACC, 1.0), ValueError, "confidence must be"),
        (lambda: t_interval(ACC, 0), ValueError, "confidence must be"),
        (lambda: t_interval(ACC, float("nan")), ValueError, "confidence must be"),
        (lambda: t_interval(ACC, True), ValueError, "confidence must be"),
        (lambda: t_interval(ACC, "0.95"), ValueError, "confidence must be"),
        (lambda: bootstrap_interval(ACC, 1.5), ValueError, "confidence must be"),
        (lambda: bootstrap_interval(ACC, n_resamples=0), ValueError, "n_resamples must be an int >= 1"),
        (lambda: bootstrap_interval(ACC, n_resamples=10.0), ValueError, "n_resamples must be an int"),
        (lambda: bootstrap_interval(ACC, seed=-1), ValueError, "seed must be an int >= 0"),
        (lambda: paired_difference(ACC, ACC[:-1]), ValueError, "got 7 and 6 values"),
        (lambda: paired_difference([0.9], [0.8]), ValueError, "with a single seed"),
        (lambda: paired_difference(ACC, ACC, confidence=-0.1), ValueError, "confidence must be"),
        (lambda: unpaired_difference(ACC, [0.8]), ValueError, "b has 1 value"),
        (lambda: minimal_detectable_difference(0.01, 1), ValueError, "n must be an int >= 2"),
        (lambda: minimal_detectable_difference(-0.01, 5), ValueError, "std must be a finite number >= 0"),
        (lambda: minimal_detectable_difference(float("nan"), 5), ValueError, "std must be"),
        (lambda: minimal_detectable_difference(0.01, 5, power=1.0), ValueError, "power must be"),
        (lambda: t_quantile(0.975, 0), ValueError, "df must be a positive number"),
    ],
)
def test_bad_input_is_rejected_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_numpy_numbers_are_accepted_where_python_numbers_are():
    assert t_interval(ACC, np.float32(0.95)) == pytest.approx(t_interval(ACC, 0.95), abs=1e-6)
    assert bootstrap_interval(ACC, n_resamples=np.int64(500), seed=np.int32(1)) == bootstrap_interval(
        ACC, n_resamples=500, seed=1)
    assert minimal_detectable_difference(np.float64(0.01), np.int64(5)) == minimal_detectable_difference(0.01, 5)
    assert as_sample(np.arange(3, dtype=np.int16)).dtype == np.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.int64])
def test_tensors_of_every_real_dtype_are_accepted(dtype):
    values = torch.tensor([1.0, 2.0, 4.0]).to(dtype)
    assert mean_and_std(values) == pytest.approx((7 / 3, np.std([1, 2, 4], ddof=1)), abs=1e-12)


def test_printed_confidence_is_never_rounded_up_to_100_percent():
    assert "99.9% CI" in str(summarise_seeds(ACC, 0.999))
    assert "95% CI" in str(summarise_seeds(ACC, np.float32(0.95)))
    assert "90% CI" in str(paired_difference(ACC, ACC[::-1], 0.9))


@pytest.mark.parametrize("n", [5, 8, 20, 100])
@pytest.mark.parametrize("power", [0.8, 0.9, 0.95])
def test_minimal_detectable_difference_is_accurate_from_five_seeds_as_documented(n, power):
    delta = minimal_detectable_difference(1.0, n, 0.95, power)
    crit = stats.t.ppf(0.975, n - 1)
    nc = delta * math.sqrt(n)
    exact = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    assert exact == pytest.approx(power, abs=0.03)


def test_minimal_detectable_difference_is_optimistic_with_two_seeds_as_documented():
    delta = minimal_detectable_difference(1.0, 2)
    crit = stats.t.ppf(0.975, 1)
    exact = stats.nct.sf(crit, 1, delta * math.sqrt(2)) + stats.nct.cdf(-crit, 1, delta * math.sqrt(2))
    assert exact == pytest.approx(0.73, abs=0.01)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: minimal_detectable_difference(0.01, 5, power=0.2), ValueError, "power must be at least 0.5"),
        (lambda: minimal_detectable_difference(0.01, 5, power=0.01), ValueError, "power must be at least 0.5"),
        (lambda: as_sample([0.9], min_size="2"), ValueError, "min_size must be an int >= 0"),
        (lambda: as_sample([0.9], min_size=-1), ValueError, "min_size must be an int >= 0"),
        (lambda: mean_and_std(torch.tensor([1.0, 2.0], dtype=torch.complex64)), TypeError, "real numbers"),
        (lambda: mean_and_std(torch.tensor([True, False])), TypeError, "real numbers"),
    ],
)
def test_more_bad_input_is_rejected_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()
