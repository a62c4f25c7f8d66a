"""Proportions and the tests on them: Wilson intervals, Newcombe differences, Fisher's exact
test, Tarone's correction and Cohen's kappa. Pure functions on counts; rates are
probabilities in 0..1. ``Rate`` is the one type of a rate with its interval, in scans and
DART alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Z_95 = 1.959963984540054
"""Standard normal quantile for a two-sided 95% interval."""


@dataclass(frozen=True)
class Rate:
    """k successes out of n, with a Wilson score interval (probabilities in 0..1).

    ``value`` is None when n = 0; the interval is then the whole 0..1 range.
    """

    k: int
    """Successes."""
    n: int
    """Trials."""
    value: float | None
    """k / n, a probability; None when n = 0."""
    low: float
    """Lower end of the 95% interval, a probability."""
    high: float
    """Upper end of the 95% interval, a probability."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in DART step payloads and reports: ``{"k", "n", "value",
        "low", "high"}`` in that order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Rate:
        """A rate from its JSON form (``to_dict``); other keys stored beside it (counts of
        errors, unscorable answers) are ignored, and the stored interval is kept as it is."""
        value = stored["value"]
        return cls(
            k=int(stored["k"]),
            n=int(stored["n"]),
            value=None if value is None else float(value),
            low=float(stored["low"]),
            high=float(stored["high"]),
        )


def wilson(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (low, high) for k successes in n trials; (0, 1) when n = 0.

    Chosen over the normal interval because it stays inside 0..1 and keeps its coverage at
    the small n and extreme rates that per-cell scan results have.
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int, z: float = Z_95) -> Rate:
    """A Rate of k in n with its Wilson interval."""
    low, high = wilson(k, n, z)
    return Rate(k=k, n=n, value=k / n if n else None, low=low, high=high)


def newcombe_difference(a: Rate, b: Rate, z: float = Z_95) -> tuple[float, float, float]:
    """Difference b - a of two independent rates with Newcombe's hybrid score interval.

    Returns (difference, low, high); the difference is 0 with interval (-1, 1) when either
    rate has n = 0. Built from the two Wilson intervals, so it shares their small-n coverage.
    """
    if a.value is None or b.value is None:
        return 0.0, -1.0, 1.0
    la, ha = wilson(a.k, a.n, z)
    lb, hb = wilson(b.k, b.n, z)
    diff = b.value - a.value
    low = diff - math.sqrt((b.value - lb) ** 2 + (ha - a.value) ** 2)
    high = diff + math.sqrt((hb - b.value) ** 2 + (a.value - la) ** 2)
    return diff, max(-1.0, low), min(1.0, high)


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test that k1/n1 and k2/n2 share one rate.

    Exact at any n, so no normal approximation breaks at the small cells and 0% or 100%
    rates scans produce; it errs on the conservative side, which keeps seed-to-seed noise
    from being reported as a change. Tables as likely as the observed one, up to a relative
    tolerance of 1e-7, count towards the p-value.
    """
    for k, n in ((k1, n1), (k2, n2)):
        if n < 0 or not 0 <= k <= n:
            raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    successes, total = k1 + k2, n1 + n2
    lo, hi = max(0, n1 - (total - successes)), min(successes, n1)

    def log_p(x: int) -> float:
        return _log_comb(successes, x) + _log_comb(total - successes, n1 - x)

    observed = log_p(k1)
    logs = [log_p(x) for x in range(lo, hi + 1)]
    top = max(logs)
    norm = sum(math.exp(v - top) for v in logs)
    threshold = observed + math.log1p(1e-7)
    tail = sum(math.exp(v - top) for v in logs if v <= threshold)
    return min(1.0, tail / norm)


def fisher_min_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """The smallest p-value Fisher's exact test can give for tables with these margins
    (group sizes n1, n2 and k1 + k2 successes in all): how significant the most extreme
    split of those successes would be. A rate measured on one or two trials cannot get
    below a large floor, whatever its outcome; Tarone's correction uses this."""
    successes = k1 + k2
    lo, hi = max(0, n1 - (n1 + n2 - successes)), min(successes, n1)
    return min(fisher_exact(x, n1, successes - x, n2) for x in (lo, hi))


def tarone(
    p_values: Sequence[float], min_p: Sequence[float], alpha: float
) -> tuple[list[float], int]:
    """Tarone's Bonferroni correction for discrete tests: adjusted p-values in input order,
    and the family size K used.

    Tests whose smallest attainable p-value (``min_p``) exceeds alpha / K can never be
    significant at that level and are left out of the count; K is the smallest number for
    which at most K tests remain. Those tests get p * K, the others 1. The family-wise
    error rate stays under ``alpha`` like Bonferroni's, with far more power when most
    tests are small cells (a scan's category x technique rates with a handful of trials).
    """
    if len(p_values) != len(min_p):
        raise ValueError("need one smallest attainable p-value per p-value")
    k = 1
    while sum(mp <= alpha / k for mp in min_p) > k:
        k += 1
    return [
        min(1.0, p * k) if mp <= alpha / k else 1.0 for p, mp in zip(p_values, min_p, strict=True)
    ], k


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two binary ratings of the same items; None when it is undefined
    (no items, or both raters constant and identical, so chance agreement is 1)."""
    if len(a) != len(b):
        raise ValueError("ratings must cover the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1 - chance)
