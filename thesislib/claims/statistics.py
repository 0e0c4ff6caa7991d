"""Statistics over seeds: paired effects, intervals, one-sided and equivalence tests, Holm, power.

The unit of evidence is the per-seed *paired* effect of a claim (arm ``a`` minus arm
``b`` on the same seed, or ``log(a / b)``; a single arm is its own effect), so
seed-to-seed variation shared by both arms cancels.

**Intervals.** 95% intervals come from a BCa bootstrap over seeds
(:func:`scipy.stats.bootstrap`) when there are at least :data:`BOOTSTRAP_MIN_N`
seeds. Below that the bootstrap is unsound: with n = 3 a percentile or BCa interval
is built from at most 10 distinct resample means and, for normal per-seed effects,
covers the true mean only about 75% of the time (simulated in ``tests/test_claims.py``;
still about 90% at n = 10 and 93% at n = 20). Small n therefore gets the Student-t
interval, exact for normal effects and close for mild skew.

**Tests.** Every test is a one-sample t-test on the per-seed effects at one-sided
level ``alpha = 0.025``, so that without multiplicity correction a claim is
supported exactly when its 95% t-interval lies on the expected side of the margin:
``greater`` tests H0 effect <= margin; ``less`` tests H0 effect >= margin;
``equivalent`` is two one-sided tests (TOST) against -margin and +margin (the claim
is supported when both reject, i.e. the 95% interval lies inside the margin).
Comparisons of one thesis figure share a ``family`` and are Holm-corrected.

**Power.** The smallest effect n seeds detect with 80% power, and the seeds the
observed effect would need, use the non-central t distribution with the observed
standard deviation of the per-seed effects.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

#: Smallest number of seeds for which intervals are bootstrapped (BCa); fewer use Student-t.
BOOTSTRAP_MIN_N = 20
#: One-sided level of every test (= a two-sided 95% interval).
ALPHA = 0.025
#: Target power for the smallest detectable effect and the seeds needed.
POWER = 0.8
#: Seeds beyond which :func:`seeds_needed` gives up (returns None).
MAX_SEEDS = 100_000


def per_seed_effects(
    record: dict[str, Any], a: str, b: str | None = None, scale: str = "difference"
) -> np.ndarray:
    """The per-seed effect of a validated record: ``a - b``, ``log(a / b)``, ``a`` or ``log(a)``.

    Raises ``ValueError`` naming a missing arm, or a non-positive value under ``log_ratio``.
    """
    arms = record["arms"]
    for arm in (a, b):
        if arm is not None and arm not in arms:
            raise ValueError(f"the record has no arm {arm!r}; its arms: {', '.join(arms)}")
    va = np.asarray(arms[a], dtype=float)
    vb = None if b is None else np.asarray(arms[b], dtype=float)
    if scale == "difference":
        return va if vb is None else va - vb
    if scale == "log_ratio":
        values = va if vb is None else np.concatenate([va, vb])
        if np.any(values <= 0):
            raise ValueError(f"log_ratio needs positive values of arms {a!r}/{b!r}; got {values.min()}")
        return np.log(va) if vb is None else np.log(va / vb)
    raise ValueError(f"unknown scale {scale!r}; valid: difference, log_ratio")


@dataclass(frozen=True)
class Interval:
    """A confidence interval for the mean per-seed effect, and how it was made."""

    low: float
    high: float
    method: str  # "t", "bootstrap-bca", "degenerate" (all effects equal) or "none" (n < 2)


def confidence_interval(effects: np.ndarray, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Interval for the mean of ``effects``: BCa bootstrap over seeds for n >= BOOTSTRAP_MIN_N, else Student-t."""
    x = np.asarray(effects, dtype=float)
    n = x.size
    if n < 2:
        return Interval(math.nan, math.nan, "none")
    sd = x.std(ddof=1)
    if sd == 0 or not np.isfinite(sd):
        return Interval(float(x.mean()), float(x.mean()), "degenerate")
    if n >= BOOTSTRAP_MIN_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap(
                (x,),
                np.mean,
                confidence_level=confidence,
                method="BCa",
                n_resamples=9999,
                rng=np.random.default_rng(seed),
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return Interval(float(low), float(high), "bootstrap-bca")
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Interval(float(x.mean() - half), float(x.mean() + half), "t")


def _one_sided(x: np.ndarray, value: float, alternative: str) -> float:
    """p of a one-sample t-test of mean vs ``value`` (alternative 'greater' or 'less'); exact at sd = 0."""
    mean, sd = x.mean(), x.std(ddof=1) if x.size > 1 else math.nan
    if x.size < 2 or not np.isfinite(sd):
        return 1.0
    if sd == 0:
        holds = mean > value if alternative == "greater" else mean < value
        return 0.0 if holds else 1.0
    return float(stats.ttest_1samp(x, value, alternative=alternative).pvalue)


def p_value(effects: np.ndarray, expect: str, margin: float = 0.0) -> float:
    """p of the claim's own test (small p supports the claim): one-sided t or TOST."""
    x = np.asarray(effects, dtype=float)
    if expect == "greater":
        return _one_sided(x, margin, "greater")
    if expect == "less":
        return _one_sided(x, margin, "less")
    if expect == "equivalent":
        return max(_one_sided(x, -margin, "greater"), _one_sided(x, margin, "less"))
    raise ValueError(f"unknown expect {expect!r}; valid: greater, less, equivalent")


def contrary_p_value(effects: np.ndarray, expect: str, margin: float = 0.0) -> float:
    """p of the opposite finding (small p contradicts the claim).

    ``greater``: H0 effect >= margin; ``less``: H0 effect <= margin; ``equivalent``:
    the effect lies beyond the margin on one side (the smaller of the two one-sided p).
    """
    x = np.asarray(effects, dtype=float)
    if expect == "greater":
        return _one_sided(x, margin, "less")
    if expect == "less":
        return _one_sided(x, margin, "greater")
    if expect == "equivalent":
        return min(_one_sided(x, margin, "greater"), _one_sided(x, -margin, "less"))
    raise ValueError(f"unknown expect {expect!r}; valid: greater, less, equivalent")


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def power_one_sided(n: int, delta: float, sd: float, alpha: float = ALPHA) -> float:
    """Power of a one-sided one-sample t-test with n seeds when the true effect exceeds H0 by ``delta``."""
    if n < 2 or not sd > 0:
        return math.nan
    df = n - 1
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, delta * math.sqrt(n) / sd))


def power_equivalence(n: int, effect: float, margin: float, sd: float, alpha: float = ALPHA) -> float:
    """Power of TOST with n seeds at true ``effect`` (the usual lower bound: P(both) >= P1 + P2 - 1)."""
    if abs(effect) >= margin:
        return 0.0
    upper = power_one_sided(n, margin - effect, sd, alpha)
    lower = power_one_sided(n, margin + effect, sd, alpha)
    return max(0.0, upper + lower - 1.0)


def smallest_detectable(n: int, sd: float, expect: str, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest effect (beyond the margin) n seeds detect with ``power``, at the observed ``sd``.

    For ``equivalent`` it is the smallest margin that TOST would establish with
    ``power`` when the true effect is 0. NaN when n < 2 or the effects do not vary.
    """
    if n < 2 or not np.isfinite(sd) or sd == 0:
        return math.nan
    if expect == "equivalent":

        def gap(margin: float) -> float:
            return power_equivalence(n, 0.0, margin, sd, alpha) - power
    else:

        def gap(delta: float) -> float:
            return power_one_sided(n, delta, sd, alpha) - power

    high = sd
    while gap(high) < 0:
        high *= 2
        if high > 1e6 * sd:
            return math.inf
    return float(optimize.brentq(gap, 0.0, high, xtol=1e-9 * sd))


def seeds_needed(
    observed: float, sd: float, expect: str, margin: float = 0.0, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """Seeds for ``power`` to support the claim if the true effect were the ``observed`` one.

    None when the observed effect lies on the wrong side of the margin (no number of
    seeds would support the claim), when sd is unknown, or beyond :data:`MAX_SEEDS`.
    """
    if not np.isfinite(sd) or not np.isfinite(observed):
        return None
    if expect == "greater":
        delta = observed - margin
    elif expect == "less":
        delta = margin - observed
    else:
        delta = margin - abs(observed)
    if delta <= 0:
        return None
    if sd == 0:
        return 3

    def enough(n: int) -> bool:
        if expect == "equivalent":
            return power_equivalence(n, observed, margin, sd, alpha) >= power
        return power_one_sided(n, delta, sd, alpha) >= power

    if not enough(MAX_SEEDS):
        return None
    low, high = 2, MAX_SEEDS  # enough(high) holds; find the smallest such n
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return max(high, 3)
