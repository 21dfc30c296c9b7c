"""Statistics for results over several seeds, written from scratch (chapter 09).

Every function takes one number per seed (a list, numpy array, tensor or pandas
Series) and is checked in ``tests/test_stats.py`` against the library version
(``scipy.stats.t.interval``, ``scipy.stats.bootstrap``, ``scipy.stats.ttest_rel``,
``scipy.stats.ttest_ind``, the noncentral t distribution).

Usage::

    from ptcourse.stats import summarise_seeds, paired_difference, minimal_detectable_difference
    print(summarise_seeds([0.91, 0.89, 0.93, 0.90, 0.92]))   # 0.910 ± 0.016 (SE 0.007, 95% CI [...], 5 seeds)
    diff = paired_difference(acc_b, acc_a)                   # b - a, paired by seed
    print(diff.low, diff.high)

Undefined quantities raise instead of returning NaN: a standard deviation, a standard
error or a confidence interval needs at least two seeds (one seed says nothing about
the spread between seeds).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

__all__ = [
    "Difference",
    "SeedSummary",
    "as_sample",
    "bootstrap_interval",
    "mean_and_std",
    "minimal_detectable_difference",
    "paired_difference",
    "standard_error",
    "summarise_seeds",
    "t_interval",
    "t_quantile",
    "unpaired_difference",
]


# -- argument checks ------------------------------------------------------------------


def as_sample(values: Any, what: str = "values", min_size: int = 1) -> np.ndarray:
    """``values`` as a 1-D float64 array of finite numbers, at least ``min_size`` long; else a clear error (chapter 09).

    Usage: ``x = as_sample(accuracies, "accuracies", min_size=2)``
    """
    min_size = _check_count(min_size, "min_size", 0)
    if hasattr(values, "detach"):  # a torch tensor (float64 first: numpy has no bfloat16)
        values = values.detach().cpu()
        values = (values.double() if values.is_floating_point() else values).numpy()
    if isinstance(values, (str, bytes, dict, set)) or values is None:
        raise TypeError(f"{what} must be numbers, one per seed (a list, array or tensor), got {type(values).__name__}")
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be numbers, one per seed (a list, array or tensor): {err}") from None
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{what} must be real numbers, one per seed, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one number per seed), got shape {array.shape}")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{what} must be finite numbers, got {array[bad[0]]} at position {bad[0]}")
    if array.size < min_size:
        if array.size == 0:
            raise ValueError(f"{what} is empty: give one number per seed")
        raise ValueError(
            f"{what} has {array.size} value; a standard deviation, standard error or confidence interval needs "
            f"at least {min_size}: with a single seed the spread between seeds is unknown, so run more seeds"
        )
    return array


def _percent(confidence: float) -> str:
    """0.95 -> "95%", 0.999 -> "99.9%" (never rounded up to a misleading "100%")."""
    return f"{100 * confidence:.4g}%"


def _check_fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ValueError(f"{what} must be a number strictly between 0 and 1 (e.g. 0.95), got {value!r}")
    return float(value)


def _check_count(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return int(value)


# -- one sample: mean, spread, intervals ------------------------------------------------


def mean_and_std(values: Any) -> tuple[float, float]:
    """The mean and the sample standard deviation :math:`s=\\sqrt{\\sum_i (x_i-\\bar x)^2/(n-1)}` (chapter 09).

    Usage: ``mean, std = mean_and_std([0.91, 0.89, 0.93])``
    """
    x = as_sample(values, min_size=2)
    mean = x.sum() / x.size
    return float(mean), float(math.sqrt(((x - mean) ** 2).sum() / (x.size - 1)))


def standard_error(values: Any) -> float:
    """The standard error of the mean, :math:`s/\\sqrt n`: how far the mean of n seeds typically is from the truth (chapter 09).

    Usage: ``se = standard_error([0.91, 0.89, 0.93])``
    """
    x = as_sample(values, min_size=2)
    return mean_and_std(x)[1] / math.sqrt(x.size)


def t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile of Student's t distribution with ``df`` degrees of freedom (a table look-up) (chapter 09).

    Usage: ``t_quantile(0.975, 4)  # 2.776``
    """
    _check_fraction(probability, "probability")
    if isinstance(df, bool) or not isinstance(df, numbers.Real) or not df > 0:
        raise ValueError(f"df must be a positive number, got {df!r}")
    return float(_scipy_stats.t.ppf(probability, df))


def t_interval(values: Any, confidence: float = 0.95) -> tuple[float, float]:
    """The confidence interval of the mean, :math:`\\bar x \\pm t_{1-\\alpha/2,\\,n-1}\\, s/\\sqrt n` (chapter 09).

    Assumes the seeds' results are independent and roughly normal: it tolerates mild skew,
    but one diverged run among a few seeds breaks it (look at the values, not only the
    interval). Usage: ``low, high = t_interval(accuracies, 0.95)``
    """
    confidence = _check_fraction(confidence, "confidence")
    x = as_sample(values, min_size=2)
    half_width = t_quantile(1 - (1 - confidence) / 2, x.size - 1) * standard_error(x)
    mean = float(x.mean())
    return mean - half_width, mean + half_width


def bootstrap_interval(
    values: Any, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """The percentile-bootstrap confidence interval of the mean (chapter 09).

    Draw ``n_resamples`` samples of n values *with replacement* from the n values, take
    each one's mean, and report the :math:`\\alpha/2` and :math:`1-\\alpha/2` quantiles
    of those means. No normality assumption, but with few seeds it is too narrow (it
    cannot know about values it never saw). Equal to ``scipy.stats.bootstrap(...,
    method="percentile", rng=np.random.default_rng(seed))``; SciPy's default, BCa, also
    corrects the percentiles for bias and skew.

    Usage: ``low, high = bootstrap_interval(accuracies, 0.95, seed=0)``
    """
    confidence = _check_fraction(confidence, "confidence")
    n_resamples = _check_count(n_resamples, "n_resamples", 1)
    seed = _check_count(seed, "seed", 0)
    x = as_sample(values, min_size=2)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, x.size, size=(n_resamples, x.size))  # each row: one resample's indices
    means = x[rows].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class SeedSummary:
    """Mean, standard deviation, standard error and t confidence interval of one result over seeds (chapter 09).

    Usage: ``s = summarise_seeds([0.81, 0.79, 0.83]); s.mean, s.low, s.high``
    """

    n: int
    mean: float
    std: float
    se: float
    low: float
    high: float
    confidence: float

    def __str__(self) -> str:
        return (f"{self.mean:.3f} ± {self.std:.3f} (SE {self.se:.3f}, {_percent(self.confidence)} CI "
                f"[{self.low:.3f}, {self.high:.3f}], {self.n} seeds)")


def summarise_seeds(values: Any, confidence: float = 0.95) -> SeedSummary:
    """Everything to report about one result measured over seeds, in one object (chapter 09).

    Usage: ``print(summarise_seeds(accuracies))  # 0.910 ± 0.016 (SE 0.007, 95% CI [0.890, 0.930], 5 seeds)``
    """
    x = as_sample(values, min_size=2)
    mean, std = mean_and_std(x)
    low, high = t_interval(x, confidence)
    return SeedSummary(x.size, mean, std, standard_error(x), low, high, float(confidence))


# -- two samples: comparing recipes ------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """The difference of two recipes' means (a - b), with its standard error, interval and t test (chapter 09).

    Usage: ``d = paired_difference(a, b); d.mean, d.low, d.high``
    """

    mean: float
    se: float
    low: float
    high: float
    df: float
    t: float
    p_value: float
    confidence: float

    def __str__(self) -> str:
        return (f"{self.mean:+.4f} (SE {self.se:.4f}, {_percent(self.confidence)} CI [{self.low:+.4f}, {self.high:+.4f}], "
                f"p = {self.p_value:.3g})")


def _difference(mean: float, se: float, df: float, confidence: float) -> Difference:
    half_width = t_quantile(1 - (1 - confidence) / 2, df) * se
    t = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    p_value = float(2 * _scipy_stats.t.sf(abs(t), df))  # two-sided: P(|T| >= |t|) if the means were equal
    return Difference(mean, se, mean - half_width, mean + half_width, float(df), t, p_value, confidence)


def paired_difference(a: Any, b: Any, confidence: float = 0.95) -> Difference:
    """Compare two recipes run with the *same* seeds: the t interval of the per-seed differences a_i - b_i (chapter 09).

    Whatever a seed does to both recipes alike (the same labelled subset, the same
    initialisation) cancels in a_i - b_i, so the interval is narrower than the unpaired
    one whenever the two recipes' results are positively correlated across seeds.
    Same numbers as ``scipy.stats.ttest_rel(a, b)``.

    Usage: ``diff = paired_difference(acc_new, acc_old); print(diff)``
    """
    confidence = _check_fraction(confidence, "confidence")
    x, y = as_sample(a, "a", min_size=2), as_sample(b, "b", min_size=2)
    if x.size != y.size:
        raise ValueError(
            f"a paired comparison needs one value per seed for both recipes, in the same seed order: got {x.size} "
            f"and {y.size} values (use unpaired_difference for independent runs)"
        )
    d = x - y
    return _difference(float(d.mean()), standard_error(d), d.size - 1, confidence)


def unpaired_difference(a: Any, b: Any, confidence: float = 0.95) -> Difference:
    """Compare two recipes run independently (Welch's t interval): mean(a) - mean(b) (chapter 09).

    :math:`SE=\\sqrt{s_a^2/n_a+s_b^2/n_b}` with the Welch-Satterthwaite degrees of freedom
    :math:`\\nu=SE^4/\\big(\\frac{(s_a^2/n_a)^2}{n_a-1}+\\frac{(s_b^2/n_b)^2}{n_b-1}\\big)`.
    Same numbers as ``scipy.stats.ttest_ind(a, b, equal_var=False)``.

    Usage: ``diff = unpaired_difference(acc_new, acc_old)``
    """
    confidence = _check_fraction(confidence, "confidence")
    x, y = as_sample(a, "a", min_size=2), as_sample(b, "b", min_size=2)
    va, vb = mean_and_std(x)[1] ** 2 / x.size, mean_and_std(y)[1] ** 2 / y.size
    se = math.sqrt(va + vb)
    if se == 0:
        df = float(x.size + y.size - 2)
    else:
        df = se**4 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    return _difference(float(x.mean() - y.mean()), se, df, confidence)


def minimal_detectable_difference(std: float, n: int, confidence: float = 0.95, power: float = 0.8) -> float:
    """The smallest true difference that ``n`` paired seeds detect with probability ``power`` (chapter 09).

    For per-seed differences with standard deviation ``std``, a two-sided test at level
    :math:`\\alpha = 1-` ``confidence`` detects a true difference :math:`\\delta` with the
    requested power when approximately
    :math:`\\delta = (t_{1-\\alpha/2,\\,n-1} + t_{\\text{power},\\,n-1})\\, \\text{std}/\\sqrt n`.
    Smaller differences can still come out significant, but most runs of the experiment
    would miss them. ``std`` is treated as known (in practice it comes from a pilot run).

    The exact power comes from the noncentral t distribution; the tests check the
    approximation against it: within 3 points of the requested power from 5 seeds on
    (at 95 % confidence, power 0.8 to 0.95), but optimistic with fewer seeds (a real
    power of 0.73 instead of 0.8 at n = 2). ``power`` must be at least 0.5: below that
    the formula no longer describes the test.

    Usage: ``minimal_detectable_difference(std=0.012, n=10)  # about 0.012``
    """
    confidence = _check_fraction(confidence, "confidence")
    power = _check_fraction(power, "power")
    if power < 0.5:
        raise ValueError(f"power must be at least 0.5 (usually 0.8 or 0.9): it is the chance of detecting the "
                         f"difference, got {power!r}")
    n = _check_count(n, "n", 2)
    if isinstance(std, bool) or not isinstance(std, numbers.Real) or not math.isfinite(std) or std < 0:
        raise ValueError(f"std must be a finite number >= 0 (the spread of the per-seed differences), got {std!r}")
    factor = t_quantile(1 - (1 - confidence) / 2, n - 1) + t_quantile(power, n - 1)
    return factor * float(std) / math.sqrt(n)
