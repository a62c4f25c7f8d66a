"""What the runs list, a run's page and the compare page show, built from the store.

The runs list counts outcomes in SQL (``Store.outcome_counts``), so it stays fast on large
stores; a run's page and the compare page use the run's full summary
(``sparring.metrics.summarize``, as its HTML report does), kept until the run changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from sparring.dart.evaluation import GROUP_RATES
from sparring.errors import SparringError
from sparring.metrics import SCORED, Metric, Outcome, ScanSummary, Scope, ScopedRate
from sparring.report import Comparison, charts, compare
from sparring.stats import Rate, rate
from sparring.store import RunRecord
from sparring.store.browse import Facets
from sparring.types import Label
from sparring.view.reader import Reader
from sparring.view.review import JudgeOnLabels, judge_agreement, reviewed

HEADLINE = (
    (Metric.ASR, "Attack success rate"),
    (Metric.BEST_OF_ASR, "Behaviors broken by any technique"),
    (Metric.REFUSAL, "Refusal of harmful requests"),
    (Metric.OVER_REFUSAL, "Over-refusal of benign requests"),
)
"""The headline rates a run's page leads with, as its HTML report names them."""

_ROUND_TITLES = {
    "held_out": "Held-out violation rate per round",
    "public": "Violation rate on the public suite per round",
    "benign": "Over-refusal of benign prompts per round",
}
"""The evaluation groups of a DART round (``sparring.dart.evaluation.GROUP_RATES``) whose
rates a DART run's page draws per round."""


@dataclass(frozen=True)
class RunLine:
    """One run as the runs list shows it."""

    run: RunRecord
    judge: str | None
    """Whose labels count as outcomes (see ``Reader.primary_judge``)."""
    attempts: int
    """Attempts stored, helper calls left out."""
    errors: int
    asr: Rate
    """Unsafe / scored over harmful behaviors."""
    over_refusal: Rate
    """Refusal / scored over benign behaviors."""
    held_out: Rate | None
    """A DART run's held-out violation rate after its last evaluated round."""


@dataclass(frozen=True)
class Chart:
    """A titled inline SVG chart, drawn by ``sparring.report.charts``."""

    title: str
    svg: Markup


@dataclass(frozen=True)
class RunPage:
    """Everything a run's page shows."""

    line: RunLine
    facets: Facets
    labels: int
    """Attempts of the run people have labelled."""
    headline: tuple[tuple[str, ScopedRate], ...]
    heatmap: Markup | None
    charts: tuple[Chart, ...]
    rounds: tuple[Chart, ...]
    summary_error: str | None
    """Why the run's rates could not be computed, if they could not."""
    computing: bool
    """True while the rates are still being computed (a large run)."""
    agreement: tuple[JudgeOnLabels, ...]
    config_json: str


@dataclass(frozen=True)
class ComparePage:
    """Two runs side by side, and which rates changed significantly (None while either
    run's rates are still being computed)."""

    a: RunLine
    b: RunLine
    comparison: Comparison | None
    headline: Chart | None


def _rate_of(counts: dict[tuple[bool, str], int], benign: bool, success: Outcome) -> Rate:
    scored = sum(counts.get((benign, str(o)), 0) for o in SCORED)
    return rate(counts.get((benign, str(success)), 0), scored)


def run_line(reader: Reader, run: RunRecord) -> RunLine:
    """The run's headline figures, counted in SQL under its primary judge."""
    judge = reader.primary_judge(run)
    counts = reader.cached("counts", run, lambda: reader.store.outcome_counts(run.id, judge))
    return RunLine(
        run=run,
        judge=judge,
        attempts=sum(counts.values()),
        errors=sum(n for (_, outcome), n in counts.items() if outcome == Outcome.ERROR),
        asr=_rate_of(counts, False, Outcome.UNSAFE),
        over_refusal=_rate_of(counts, True, Outcome.REFUSAL),
        held_out=_last_held_out(reader, run),
    )


def _round_evals(reader: Reader, run: RunRecord) -> list[dict[str, Any]]:
    """A DART run's stored evaluations, round 0 first; [] for any other run."""
    if run.kind != "dart":
        return []
    steps = reader.store.steps(run.id, "r")
    evals: list[dict[str, Any]] = []
    while (payload := steps.get(f"r{len(evals)}/eval")) is not None:
        evals.append(payload)
    return evals


def _last_held_out(reader: Reader, run: RunRecord) -> Rate | None:
    evals = _round_evals(reader, run)
    name = GROUP_RATES["held_out"][0]
    return Rate.from_dict(evals[-1][name]) if evals and name in evals[-1] else None


def runs_list(reader: Reader) -> list[RunLine]:
    """Every run in the store, newest first."""
    runs = sorted(reader.store.list_runs(), key=lambda r: r.created_at, reverse=True)
    return [run_line(reader, run) for run in runs]


def run_page(reader: Reader, run_id: str) -> RunPage:
    """A run's provenance, headline rates and charts, and its judges' agreement with the
    human labels given so far."""
    run = reader.store.get_run(run_id)
    summary: ScanSummary | None = None
    error: str | None = None
    try:
        summary = reader.summary(run)
    except SparringError as err:
        error = str(err)
    computing = summary is None and error is None
    labelled = reviewed(reader.store, run_id)
    return RunPage(
        line=run_line(reader, run),
        facets=reader.facets(run),
        labels=len(labelled),
        headline=tuple((name, summary.overall(m)) for m, name in HEADLINE) if summary else (),
        heatmap=_heatmap(summary) if summary else None,
        charts=_charts(summary) if summary else (),
        rounds=_round_charts(_round_evals(reader, run)),
        summary_error=error,
        computing=computing,
        agreement=tuple(judge_agreement(labelled)),
        config_json=json.dumps(run.config, indent=2, sort_keys=True, default=str),
    )


def _heatmap(summary: ScanSummary) -> Markup | None:
    cells = summary.cells(Metric.ASR)
    if not cells:
        return None
    categories = sorted({c for c, _ in cells})
    techniques = sorted({t for _, t in cells})
    return Markup(charts.heat_map(cells, categories, techniques, lambda c, t: None))


def _charts(summary: ScanSummary) -> tuple[Chart, ...]:
    wanted = (
        (Metric.ASR, "technique", "Attack success rate by technique"),
        (Metric.ASR, "family", "Attack success rate by family"),
        (Metric.ASR, "category", "Attack success rate by category"),
        (Metric.OVER_REFUSAL, "category", "Over-refusal by category"),
        (Metric.OVER_REFUSAL, "technique", "Over-refusal by technique"),
    )
    out = []
    for metric, dimension, title in wanted:
        rows = list(summary.by(metric, dimension).items())
        if rows:
            out.append(Chart(title, Markup(charts.interval_chart(rows, title))))
    return tuple(out)


def _round_charts(evals: list[dict[str, Any]]) -> tuple[Chart, ...]:
    out = []
    for group, title in _ROUND_TITLES.items():
        name, counted = GROUP_RATES[group]
        metric = Metric.OVER_REFUSAL if counted is Label.REFUSAL else Metric.ASR
        rows = [
            (f"round {r}", _scoped(metric, payload[name]))
            for r, payload in enumerate(evals)
            if isinstance(payload.get(name), dict)
        ]
        if rows:
            out.append(Chart(title, Markup(charts.interval_chart(rows, title))))
    return tuple(out)


def _scoped(metric: Metric, stored: dict[str, Any]) -> ScopedRate:
    return ScopedRate(
        metric=metric,
        scope=Scope(),
        rate=Rate.from_dict(stored),
        unscorable=int(stored.get("unscorable", 0)),
        errors=int(stored.get("errors", 0)),
    )


def compare_page(reader: Reader, run_a: str, run_b: str) -> ComparePage:
    """Run a against run b: every shared rate tested (Fisher, Tarone-corrected), and the
    headline rates of both on one chart."""
    a, b = reader.store.get_run(run_a), reader.store.get_run(run_b)
    summary_a, summary_b = reader.summary(a), reader.summary(b)
    lines = run_line(reader, a), run_line(reader, b)
    if summary_a is None or summary_b is None:
        return ComparePage(*lines, comparison=None, headline=None)
    rows = [
        (f"{name} ({side})", summary.overall(metric))
        for metric, name in HEADLINE
        for side, summary in (("a", summary_a), ("b", summary_b))
    ]
    title = "Headline rates, a against b"
    return ComparePage(
        *lines,
        comparison=compare(summary_a, summary_b),
        headline=Chart(title, Markup(charts.interval_chart(rows, title))),
    )
