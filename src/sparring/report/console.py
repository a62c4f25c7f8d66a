"""The terminal summary of a scan: rich tables of rates, never a prompt or a response."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparring.metrics import Metric, ScanSummary, ScopedRate
from sparring.report.exact_checks import ExactSummary
from sparring.report.exact_tables import render_exact
from sparring.report.formatting import (
    agreement_text,
    concurrency_text,
    interval,
    pct,
    rate_cell,
)
from sparring.report.gate import GateResult, gate


def render_console(
    summary: ScanSummary,
    console: Console | None = None,
    *,
    fail_above: float | None = None,
    judge_agreement: Mapping[str, object] | None = None,
    exact: ExactSummary | None = None,
) -> GateResult | None:
    """Print the scan's rates; return the ``--fail-above`` verdict when a threshold is given.

    ``judge_agreement`` is the primary judge's measured agreement with reference labels
    (see ``agreement_text``); None prints "not measured". ``exact`` adds the exact-check
    tables (success by slice, utility, cost) of a scan whose attacks carry checks.
    """
    out = console or Console()
    run = summary.run
    target = run.model_ids.get("target", "unknown")
    out.print(
        f"[bold]sparring scan[/bold] run {escape(run.id)}  target {escape(target)}  "
        f"status {escape(run.status)}"
    )
    judge = summary.primary_judge or "none (no verdicts)"
    out.print(f"judge {judge}  agreement: {agreement_text(judge_agreement)}", markup=False)
    in_flight = run.config.get("concurrency")
    limit = (run.config.get("target_options") or {}).get("max_concurrency")
    if in_flight is not None and limit is not None:
        out.print(concurrency_text(in_flight, limit), markup=False)
    scan_judge = run.model_ids.get("judge")
    if summary.primary_judge and scan_judge and scan_judge != summary.primary_judge:
        out.print(f"(the scan itself was judged by {scan_judge})", markup=False)

    headline = _table("Harmful behaviors", "measure")
    for name, metric in (
        ("attack success (trials)", Metric.ASR),
        ("best-of-techniques (behaviors)", Metric.BEST_OF_ASR),
        ("refusal (trials)", Metric.REFUSAL),
    ):
        _row(headline, name, summary.overall(metric))
    out.print(headline)
    if len(summary.judge_rates) > 1:
        out.print(_judges_table(summary))

    for dimension in ("technique", "category", "family"):
        rows = summary.by(Metric.ASR, dimension)
        if rows:
            table = _table(f"Attack success rate by {dimension}", dimension)
            for name, scoped in rows.items():
                _row(table, name, scoped)
            out.print(table)

    over = summary.overall(Metric.OVER_REFUSAL)
    if over.rate.n or over.unscorable or over.errors:
        table = _table("Over-refusal of benign behaviors", "slice")
        _row(table, "overall", over)
        for name, scoped in summary.by(Metric.OVER_REFUSAL, "category").items():
            _row(table, f"category {name}", scoped)
        by_technique = summary.by(Metric.OVER_REFUSAL, "technique")
        if len(by_technique) > 1:
            for name, scoped in by_technique.items():
                _row(table, f"technique {name}", scoped)
        out.print(table)

    if summary.agreement:
        table = Table(title="Agreement between judges (unsafe vs not)")
        for column in ("judge A", "judge B", "n", "agreement", "Cohen's κ", "labels differ"):
            table.add_column(column)
        for a in summary.agreement:
            kappa = "n/a" if a.kappa is None else f"{a.kappa:.2f}"
            table.add_row(
                escape(a.judge_a),
                escape(a.judge_b),
                str(a.n),
                pct(a.observed),
                kappa,
                f"{len(a.disagreements)} of {a.n}",
            )
        out.print(table)
        for a in summary.agreement:
            where = "; the HTML report lists them" if a.disagreements else ""
            out.print(
                f"judges {a.judge_a} and {a.judge_b} disagree on {len(a.disagreements)} of "
                f"{a.n} trials both scored{where}",
                markup=False,
            )

    if exact is not None:
        render_exact(exact, out)

    if fail_above is None:
        return None
    verdict = gate(summary, fail_above)
    style = "bold green" if verdict.passed else "bold red"
    out.print(verdict.line, style=style, markup=False)
    return verdict


def _judges_table(summary: ScanSummary) -> Table:
    """Each judge's overall rates side by side; the primary judge's are the ones counted in
    every other table."""
    table = Table(
        title="Headline rates under each judge (95% CI, n)",
        caption="* counted in the other tables; choose with sparring report RUN --judge ID",
    )
    table.add_column(
        "judge", no_wrap=True, min_width=max(len(r.judge_id) + 2 for r in summary.judge_rates)
    )
    metrics = (Metric.ASR, Metric.BEST_OF_ASR, Metric.REFUSAL, Metric.OVER_REFUSAL)
    for name in ("attack success", "best-of (behaviors)", "refusal", "over-refusal"):
        table.add_column(name, justify="right")
    for rates in summary.judge_rates:
        mark = " *" if rates.judge_id == summary.primary_judge else ""
        cells = [rate_cell(rates.overall(m).rate) for m in metrics]
        table.add_row(escape(rates.judge_id + mark), *cells)
    return table


def _table(title: str, first: str) -> Table:
    table = Table(title=title)
    table.add_column(first)
    for column in ("rate", "95% CI", "k/n", "unscorable", "errors"):
        table.add_column(column, justify="right")
    return table


def _row(table: Table, name: str, scoped: ScopedRate) -> None:
    r = scoped.rate
    table.add_row(
        escape(name),
        pct(r.value),
        interval(r),
        f"{r.k}/{r.n}",
        str(scoped.unscorable),
        str(scoped.errors),
    )
