"""Text for rates and judge figures, shared by the console, HTML and JUnit renderings."""

from __future__ import annotations

from collections.abc import Mapping

from sparring.stats import Rate


def pct(value: float | None) -> str:
    """A probability as a percentage with one decimal, or ``n/a`` when undefined."""
    return "n/a" if value is None else f"{value:.1%}"


def interval(r: Rate) -> str:
    """The 95% interval of a rate, e.g. ``23.7–76.3%``; ``n/a`` when n = 0."""
    if r.value is None:
        return "n/a"
    return f"{r.low * 100:.1f}–{r.high * 100:.1f}%"


def rate_text(r: Rate) -> str:
    """Value, interval and n in one phrase, e.g. ``50.0% (95% CI 23.7–76.3%, n=10)``."""
    if r.value is None:
        return "n/a (n=0)"
    return f"{pct(r.value)} (95% CI {interval(r)}, n={r.n})"


def agreement_text(agreement: Mapping[str, object] | None) -> str:
    """A judge's measured agreement with reference labels, or ``not measured``.

    The mapping is what judge calibration produced, e.g. ``{"kappa": 0.81, "n": 450,
    "reference": "xstest human labels"}``; numbers are shown to two decimals.
    """
    if not agreement:
        return "not measured"
    parts = []
    for name, value in agreement.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        parts.append(f"{name}={shown}")
    return ", ".join(parts)
