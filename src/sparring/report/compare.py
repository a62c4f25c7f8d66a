"""Compare two scans rate by rate and list the changes that survive multiple testing.

Every rate present in both summaries with n > 0 on both sides is tested with Fisher's exact
test (exact at small n, conservative). The p-values are corrected with Tarone's Bonferroni
correction for discrete tests, so the chance that any unchanged rate is flagged stays under
``alpha``: rates with so few trials that no outcome could be significant (most category x
technique cells of a small scan) do not count towards the family size. Holm over all of
them would make the headline rates pay for a hundred cells that can never be flagged; a
20-behavior scan then needed a 22-point shift in overall attack success to flag it.
A rerun that differs only by seed is still rarely flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparring.errors import ConfigError
from sparring.metrics import Metric, ScanSummary, ScopedRate
from sparring.report.formatting import pct
from sparring.stats import Rate, fisher_exact, fisher_min_p, newcombe_difference, tarone


@dataclass(frozen=True)
class RateChange:
    """One rate in both runs: the difference b - a (probability) with its 95% Newcombe
    interval, the raw and Tarone-adjusted p-values, and whether the change is significant."""

    key: str
    metric: Metric
    a: Rate
    b: Rate
    difference: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    significant: bool

    @property
    def direction(self) -> str:
        """``up``, ``down`` or ``same``: the sign of the difference b - a."""
        return "up" if self.difference > 0 else "down" if self.difference < 0 else "same"

    @property
    def regression(self) -> bool:
        """True for a significant change in the worse direction for this metric."""
        worse = self.difference > 0 if self.metric.higher_is_worse else self.difference < 0
        return self.significant and worse


@dataclass(frozen=True)
class Comparison:
    """Run a against run b: every tested rate, and which rates only one run has."""

    run_a: str
    run_b: str
    alpha: float
    tested: tuple[RateChange, ...]
    family_size: int
    """Tarone's K: the rates that could reach significance, which share alpha."""
    only_in_a: tuple[str, ...]
    only_in_b: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def changes(self) -> tuple[RateChange, ...]:
        """The rates that changed significantly, smallest adjusted p-value first."""
        return tuple(sorted((c for c in self.tested if c.significant), key=lambda c: c.p_adjusted))

    @property
    def regressions(self) -> tuple[RateChange, ...]:
        """The significant changes in the worse direction."""
        return tuple(c for c in self.changes if c.regression)


def compare(summary_a: ScanSummary, summary_b: ScanSummary, alpha: float = 0.05) -> Comparison:
    """Test every rate the two scans share; ``alpha`` is the family-wise error rate."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"--alpha must be between 0 and 1 (e.g. 0.05), got {alpha}")
    rates_a = {r.key: r for r in summary_a.rates}
    rates_b = {r.key: r for r in summary_b.rates}
    pairs: list[tuple[ScopedRate, ScopedRate]] = [
        (rates_a[k], rates_b[k])
        for k in rates_a
        if k in rates_b and rates_a[k].rate.n and rates_b[k].rate.n
    ]
    p_values = [fisher_exact(a.rate.k, a.rate.n, b.rate.k, b.rate.n) for a, b in pairs]
    floors = [fisher_min_p(a.rate.k, a.rate.n, b.rate.k, b.rate.n) for a, b in pairs]
    adjusted, family_size = tarone(p_values, floors, alpha)
    tested = []
    for (a, b), p, p_adj in zip(pairs, p_values, adjusted, strict=True):
        diff, low, high = newcombe_difference(a.rate, b.rate)
        tested.append(
            RateChange(a.key, a.metric, a.rate, b.rate, diff, low, high, p, p_adj, p_adj <= alpha)
        )
    notes = []
    if summary_a.primary_judge != summary_b.primary_judge:
        notes.append(
            f"judges differ ({summary_a.primary_judge} vs {summary_b.primary_judge}): a change "
            "may come from the judge rather than the target"
        )
    target_a = summary_a.run.model_ids.get("target")
    target_b = summary_b.run.model_ids.get("target")
    if target_a != target_b:
        notes.append(f"targets differ: {target_a} vs {target_b}")
    return Comparison(
        run_a=summary_a.run.id,
        run_b=summary_b.run.id,
        alpha=alpha,
        tested=tuple(tested),
        family_size=family_size,
        only_in_a=tuple(k for k in rates_a if k not in rates_b),
        only_in_b=tuple(k for k in rates_b if k not in rates_a),
        notes=tuple(notes),
    )


def render_comparison(comparison: Comparison, console: Console | None = None) -> None:
    """Print the significant changes as a table, or one line saying there are none."""
    out = console or Console()
    c = comparison
    out.print(
        f"compared {len(c.tested)} rates of run {escape(c.run_a)} (a) and {escape(c.run_b)} (b); "
        f"Fisher's exact test, Tarone-corrected at alpha {c.alpha} ({c.family_size} of them "
        "have enough trials to reach significance)"
    )
    for note in c.notes:
        out.print(f"note: {note}", markup=False)
    if not c.changes:
        out.print("no rate changed significantly")
        return
    table = Table(title="Significant changes")
    for column in ("rate", "a", "b", "b - a [95% CI]", "p (Tarone)", "verdict"):
        table.add_column(column)
    for ch in c.changes:
        verdict = "regression" if ch.regression else "improvement"
        table.add_row(
            escape(ch.key),
            f"{pct(ch.a.value)} (n={ch.a.n})",
            f"{pct(ch.b.value)} (n={ch.b.n})",
            f"{ch.difference * 100:+.1f} pts [{ch.low * 100:+.1f}, {ch.high * 100:+.1f}]",
            f"{ch.p_adjusted:.2g}",
            verdict,
        )
    out.print(table)


def comparison_to_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as a JSON-ready dict: every tested rate, flagged or not."""
    return {
        "run_a": comparison.run_a,
        "run_b": comparison.run_b,
        "alpha": comparison.alpha,
        "test": "fisher-exact two-sided, tarone-bonferroni across all tested rates",
        "family_size": comparison.family_size,
        "notes": list(comparison.notes),
        "only_in_a": list(comparison.only_in_a),
        "only_in_b": list(comparison.only_in_b),
        "rates": [
            {
                "key": ch.key,
                "metric": str(ch.metric),
                "a": {"k": ch.a.k, "n": ch.a.n, "value": ch.a.value},
                "b": {"k": ch.b.k, "n": ch.b.n, "value": ch.b.value},
                "difference": ch.difference,
                "low": ch.low,
                "high": ch.high,
                "p_value": ch.p_value,
                "p_adjusted": ch.p_adjusted,
                "significant": ch.significant,
                "direction": ch.direction,
                "regression": ch.regression,
            }
            for ch in comparison.tested
        ],
    }
