"""The exact-check section (``exact_checks.ExactSummary``) as terminal tables and as HTML
tables: numbers only, never a prompt or a reply.

Success rates get one table per family, so a direct-injection table reads as hijack
success by attack type, an indirect one as success by attack and position, an extraction
one as leaks by attack and prompt style.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape as html_escape
from itertools import groupby

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparring.report.exact_checks import ExactSummary, Ratio, SliceRate
from sparring.report.formatting import interval, pct

UTILITY_TITLE = "Task utility: replies holding the reference answer, clean vs attacked"
COST_TITLE = "Cost against the baseline: mean output tokens and latency, ratio of means"

Block = tuple[str, tuple[str, ...], list[list[str]]]
"""A table: its title, its column headers and its rows of cells."""


def ratio_text(r: Ratio) -> str:
    """``3.41× [2.10, 5.02]``, or ``n/a`` when the ratio is undefined."""
    if r.value is None or r.low is None or r.high is None:
        return "n/a"
    return f"{r.value:.2f}× [{r.low:.2f}, {r.high:.2f}]"


def difference_text(difference: tuple[float, float, float] | None) -> str:
    """A difference of rates in percentage points with its interval, ``-12 [-30,+6]``;
    ``-`` when there is none."""
    if difference is None:
        return "-"
    value, low, high = (x * 100 for x in difference)
    return f"{value:+.0f} [{low:+.0f},{high:+.0f}]"


def _slice_rows(slices: Sequence[SliceRate]) -> list[list[str]]:
    return [
        [
            s.technique,
            s.slice,
            pct(s.rate.value),
            interval(s.rate),
            f"{s.rate.k}/{s.rate.n}",
            str(s.errors),
        ]
        for s in slices
    ]


def blocks(exact: ExactSummary) -> list[Block]:
    """Every table of the section that has rows, in the order they are shown."""
    out: list[Block] = []
    ordered = sorted(exact.slices, key=lambda s: s.family)
    for family, rows in groupby(ordered, key=lambda s: s.family):
        out.append(
            (
                f"Exact checks, {family}: success by technique and slice",
                ("technique", "slice", "rate", "95% CI", "k/n", "errors"),
                _slice_rows(list(rows)),
            )
        )
    utility = [
        [
            u.technique,
            u.slice,
            pct(u.rate.value),
            interval(u.rate),
            f"{u.rate.k}/{u.rate.n}",
            difference_text(u.difference),
        ]
        for u in exact.utility
    ]
    if utility:
        headers: tuple[str, ...] = ("technique", "slice", "utility", "95% CI", "k/n", "Δ vs clean")
        out.append((UTILITY_TITLE, headers, utility))
    costs = [
        [
            c.technique,
            str(c.pairs),
            f"{c.tokens:.0f} vs {c.baseline_tokens:.0f}",
            ratio_text(c.token_ratio),
            f"{c.latency_s:.1f} vs {c.baseline_latency_s:.1f}",
            ratio_text(c.latency_ratio),
            f"{c.capped.k}/{c.capped.n} vs {c.baseline_capped.k}/{c.baseline_capped.n}",
        ]
        for c in exact.costs
    ]
    if costs:
        baselines = ", ".join(sorted({c.baseline for c in exact.costs}))
        headers = ("technique", "pairs", "tokens", "ratio", "latency s", "ratio", "at cap")
        out.append((f"{COST_TITLE} (baseline {baselines})", headers, costs))
    return out


def render_exact(exact: ExactSummary, console: Console) -> None:
    """Print the section's tables."""
    for title, headers, rows in blocks(exact):
        table = Table(title=title)
        for i, header in enumerate(headers):
            table.add_column(header, justify="left" if i < 2 else "right")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)


def exact_html(exact: ExactSummary) -> str:
    """The section's tables as HTML (every cell escaped)."""
    parts = []
    for title, headers, rows in blocks(exact):
        head = "".join(f"<th>{html_escape(h)}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html_escape(cell)}</td>" for cell in row) + "</tr>"
            for row in rows
        )
        parts.append(
            f'<h3>{html_escape(title)}</h3><div class="scroll"><table><thead><tr>{head}'
            f"</tr></thead><tbody>{body}</tbody></table></div>"
        )
    return "".join(parts)
