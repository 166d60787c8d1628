"""Interval and test maths for before/after comparisons, free of any database code.

Closed forms (Wilson, Newcombe, MOVER) live beside the customer-level bootstrap that feeds
them, so `kpis.py` only decides which one a metric needs.

References: Wilson (1927) score interval; Newcombe (1998) hybrid score interval for a
difference of proportions; Zou & Donner (2008) MOVER, which extends Newcombe's construction
to correlated estimates; Korn & Graubard (1998) effective sample size under clustering;
Holm (1979) step-down adjustment.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

Array = NDArray[np.float64]

CONFIDENCE = 0.95


def z_value(confidence: float = CONFIDENCE) -> float:
    """Two-sided normal quantile: 1.96 for 95%."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def two_sided_p(z: Array) -> Array:
    """Two-sided normal p-value of z statistics (NaN stays NaN)."""
    return np.asarray(2.0 * ndtr(-np.abs(z)), dtype=np.float64)


# --- Proportions -------------------------------------------------------------------------


def wilson_limits(p: Array, n: Array, z: float | Array) -> tuple[Array, Array]:
    """Wilson score limits of proportions `p` observed on `n` trials (n may be fractional).

    Vectorised; `n` is the effective sample size when observations are clustered.
    """
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z2 = np.asarray(z, dtype=np.float64) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 + z2 / n
        centre = (p + z2 / (2.0 * n)) / denom
        half = np.sqrt(z2) * np.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    return centre - half, centre + half


def wilson_interval(
    successes: float, trials: float, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; None when there are no trials."""
    if trials <= 0:
        return None
    low, high = wilson_limits(
        np.array([successes / trials]), np.array([float(trials)]), z_value(confidence)
    )
    return float(low[0]), float(high[0])


def mover_difference(
    est1: Array, low1: Array, high1: Array,
    est0: Array, low0: Array, high0: Array,
    correlation: float | Array = 0.0,
) -> tuple[Array, Array]:
    """Limits of est1 - est0 from each estimate's own limits (MOVER, Zou & Donner 2008).

    With correlation 0 and Wilson limits this is exactly Newcombe's hybrid score interval.
    A positive correlation between the two estimates (same customers before and after)
    narrows the interval, as it should.
    """
    r = np.clip(np.asarray(correlation, dtype=np.float64), -1.0, 1.0)
    diff = est1 - est0
    a, b = est1 - low1, high0 - est0  # distances that move the difference down
    c, d = high1 - est1, est0 - low0  # distances that move it up
    lower = diff - np.sqrt(np.maximum(a * a + b * b - 2.0 * r * a * b, 0.0))
    upper = diff + np.sqrt(np.maximum(c * c + d * d - 2.0 * r * c * d, 0.0))
    return lower, upper


def newcombe_interval(
    successes1: float, trials1: float, successes0: float, trials0: float,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float] | None:
    """Difference p1 - p0 of two independent proportions with Newcombe's hybrid score limits.

    Returns (difference, low, high), or None when either sample is empty. Matches
    statsmodels `confint_proportions_2indep(..., method="newcomb")`.
    """
    if trials1 <= 0 or trials0 <= 0:
        return None
    z = z_value(confidence)
    p1 = np.array([successes1 / trials1])
    p0 = np.array([successes0 / trials0])
    l1, u1 = wilson_limits(p1, np.array([float(trials1)]), z)
    l0, u0 = wilson_limits(p0, np.array([float(trials0)]), z)
    low, high = mover_difference(p1, l1, u1, p0, l0, u0)
    return float(p1[0] - p0[0]), float(low[0]), float(high[0])


def effective_sample_size(p: Array, variance: Array, n_units: Array) -> Array:
    """Units a clustered proportion is worth: p(1 - p) / variance, capped at the units seen.

    The cap (design effect at least 1, Korn & Graubard 1998) keeps the interval from being
    narrower than if every session or customer were independent; where the variance is 0
    or unknown (a rate of exactly 0 or 1), the plain unit count is used.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1.0 - p) / variance
    usable = np.isfinite(n_eff) & (n_eff > 0)
    return np.where(usable, np.minimum(n_eff, n_units), n_units)


def invert_to_p_value(
    limits_at: Callable[[Array], tuple[Array, Array]], estimate: Array, z_max: float = 40.0
) -> Array:
    """Two-sided p-value of 'no change' implied by a family of intervals.

    `limits_at(z)` gives the interval limits at normal quantile z for every row (z may be
    an (m, 1) column to evaluate m levels at once). The p-value is the level at which the
    interval's nearer limit touches 0, so that a 95% interval excludes 0 exactly when
    p < 0.05. A grid brackets the touching point, bisection refines it.
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    rows = np.arange(estimate.shape[0])

    def excludes_zero(z: Array) -> NDArray[np.bool_]:
        low, high = limits_at(z)
        return np.where(estimate > 0, low > 0, high < 0)

    grid = np.linspace(0.0, z_max, 81)[:, None]
    outside = excludes_zero(grid)  # (81, rows): True while the interval still excludes 0
    # Limits widen with z, so each column is True up to the touching point, then False.
    last_true = np.clip(outside.sum(axis=0) - 1, 0, grid.shape[0] - 2)
    lo = grid[last_true, 0]
    hi = grid[last_true + 1, 0]
    for _ in range(16):  # grid step / 2**16: p-values to about 1e-6
        mid = (lo + hi) / 2.0
        ex = excludes_zero(mid)
        lo = np.where(ex, mid, lo)
        hi = np.where(ex, hi, mid)
    p = two_sided_p((lo + hi) / 2.0)
    p = np.where(outside[-1, rows] & (estimate != 0), 0.0, p)
    p = np.where(estimate == 0, 1.0, p)
    return np.where(np.isfinite(estimate), p, np.nan)


# --- Customer-level bootstrap ------------------------------------------------------------


def bucket_of_customers(n_customers: int, max_buckets: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Bootstrap unit of each customer: itself, or one of `max_buckets` random groups.

    Up to `max_buckets` customers, every customer is resampled on its own. Above, customers
    are dealt at random into `max_buckets` groups that are resampled whole (the random
    groups method, Wolter 2007 ch. 2): each group is a random sample of independent
    customers, so the groups' spread estimates the same variance as the customers' would,
    with `max_buckets` - 1 degrees of freedom (2,000 groups: within about 3%), while the
    bootstrap works on a few thousand units instead of a million.
    """
    if n_customers <= max_buckets:
        return np.arange(n_customers, dtype=np.int64)
    return rng.integers(0, max_buckets, size=n_customers, dtype=np.int64)


def poisson_weights(n_boot: int, n_buckets: int, rng: np.random.Generator) -> Array:
    """Poisson(1) resampling weights, one row per bootstrap replicate.

    Poisson weights approximate drawing the units with replacement (multinomial) and can
    be generated for all replicates at once.
    """
    return rng.poisson(1.0, size=(n_boot, n_buckets)).astype(np.float64)


def bootstrap_sd(replicates: Array, min_valid_share: float = 0.9) -> Array:
    """Standard deviation of each column of replicates, ignoring undefined ones.

    Replicates are undefined when a resample has an empty denominator (a tiny group can
    lose all its sessions). A column with fewer than `min_valid_share` defined replicates
    gets NaN: its interval would not be trustworthy.
    """
    finite = np.isfinite(replicates)
    valid_share = finite.mean(axis=0)
    clean = np.where(finite, replicates, np.nan)
    with warnings.catch_warnings():
        # all-NaN columns warn; they are handled just below
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = np.nanstd(clean, axis=0, ddof=1)
    return np.where(valid_share >= min_valid_share, sd, np.nan)


def bootstrap_correlation(x: Array, y: Array) -> Array:
    """Column-wise correlation of two (n_boot, m) replicate arrays; 0 where undefined."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=0)
    xs = np.where(ok, x, 0.0)
    ys = np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = xs.sum(axis=0) / n
        my = ys.sum(axis=0) / n
        cov = (np.where(ok, (xs - mx) * (ys - my), 0.0)).sum(axis=0)
        vx = (np.where(ok, (xs - mx) ** 2, 0.0)).sum(axis=0)
        vy = (np.where(ok, (ys - my) ** 2, 0.0)).sum(axis=0)
        r = cov / np.sqrt(vx * vy)
    return np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), 0.0)


# --- Multiple testing --------------------------------------------------------------------


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjusted p-values; None entries (no test possible) stay None.

    The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)):
    the family-wise error rate stays at 5% across every persona x metric of a table.
    """
    present = [i for i, p in enumerate(p_values) if p is not None and np.isfinite(p)]
    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    raw = np.array([p_values[i] for i in present], dtype=np.float64)
    m = raw.size
    order = np.argsort(raw, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * raw[order])
    stepped = np.maximum.accumulate(stepped)
    result = np.empty(m)
    result[order] = stepped
    for i, value in zip(present, result, strict=True):
        adjusted[i] = float(value)
    return adjusted
