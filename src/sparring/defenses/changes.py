"""How far each defense moved a rate from the undefended target's, and whether that is more
than chance: Fisher's exact test per rate (as ``sparring compare`` does), every p-value of
the run corrected together with Tarone's Bonferroni correction, so that ``alpha`` bounds
the chance of any false "significant" in the whole report. Arms share their prompts, so
the test (which treats them as independent samples) is conservative."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sparring.stats import Rate, fisher_exact, fisher_min_p, newcombe_difference, tarone


@dataclass(frozen=True)
class Change:
    """One rate of an arm against the baseline's: the difference (probability) with its
    95% Newcombe interval, Fisher's p-value raw and Tarone-adjusted, and the verdict."""

    difference: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    significant: bool


def rate_changes(
    arms: Sequence[Mapping[str, Rate]], alpha: float
) -> tuple[list[dict[str, Change]], int]:
    """Each named rate of ``arms[1:]`` against the same rate of ``arms[0]`` (the baseline).

    Returns, per arm, its changes by rate name (none for the baseline, nor for a rate that
    has no trials on either side), and Tarone's K: the tests that could reach
    significance, which share ``alpha``.
    """
    base = arms[0]
    tests = [
        (i, name, base[name], value)
        for i, rates in enumerate(arms[1:], start=1)
        for name, value in rates.items()
        if name in base and base[name].n and value.n
    ]
    p_values = [fisher_exact(a.k, a.n, b.k, b.n) for _, _, a, b in tests]
    floors = [fisher_min_p(a.k, a.n, b.k, b.n) for _, _, a, b in tests]
    adjusted, family_size = tarone(p_values, floors, alpha)
    found: list[dict[str, Change]] = [{} for _ in arms]
    for (i, name, a, b), p, p_adj in zip(tests, p_values, adjusted, strict=True):
        diff, low, high = newcombe_difference(a, b)
        found[i][name] = Change(diff, low, high, p, p_adj, p_adj <= alpha)
    return found, family_size
