"""The offline ``defend.html``: a scatter of attack success against over-refusal, one
point per arm with its 95% intervals as bars and its model calls per request as the
marker's size, the Pareto front drawn through the optimal arms, the table beneath, and
the adaptive check's table when the run has one. Inline SVG and CSS only, nothing
fetched, so it opens offline. The table cells the console shows too are written here."""

from __future__ import annotations

import json
import math
from collections import Counter
from html import escape
from itertools import pairwise

from sparring.defenses.changes import Change
from sparring.defenses.tally import ArmResult, DefendSummary
from sparring.report.formatting import interval, pct, rate_cell

ADAPTIVE_COLUMNS = (
    "defense",
    "adaptive ASR [95% CI]",
    "Δ adaptive ASR",
    "static ASR [95% CI]",
    "mean queries to success",
    "by method",
    "blocked queries",
    "red-team run",
)
"""The columns of the adaptive check's table (console and HTML), as ``adaptive_cells``."""

_W, _H = 640, 460
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 180, 24, 56
_PLOT_W, _PLOT_H = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1300px;
       color: #1a1a1a; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left;
         font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; } td { white-space: nowrap; }
td:nth-last-child(-n+2) { white-space: normal; min-width: 11rem; }
.wide { overflow-x: auto; }
tr.pareto td:first-child { font-weight: 600; }
.muted { color: #666; }
svg text { font: 12px system-ui, sans-serif; fill: #1a1a1a; }
svg .axis { stroke: #444; } svg .grid { stroke: #e3e3e3; }
svg .ci { stroke: #555; stroke-width: 1.4; }
svg .front { fill: none; stroke: #1b7837; stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .point { fill: #fff; stroke: #b2182b; stroke-width: 2; }
svg .pareto .point { fill: #1b7837; stroke: #1b7837; }
svg .baseline .point { fill: #999; stroke: #444; }
pre { background: #f7f7f7; padding: 0.8rem; overflow-x: auto; font-size: 12px; }
"""


def _x(value: float) -> float:
    return _LEFT + _PLOT_W * value


def _y(value: float) -> float:
    return _TOP + _PLOT_H * (1.0 - value)


def radius(calls_per_request: float | None) -> float:
    """Marker radius (CSS pixels) for an arm's model calls per request: area grows with
    the calls, 5 px for one."""
    return 5.0 * math.sqrt(max(1.0, calls_per_request or 1.0))


def scatter(summary: DefendSummary) -> str:
    """The SVG scatter: x over-refusal, y ASR (both 0..100%), one ``g.arm`` per arm with
    two ``line.ci`` interval bars and a ``circle.point``."""
    parts = [
        f'<svg class="defend-scatter" xmlns="http://www.w3.org/2000/svg" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
        'aria-label="Attack success rate against over-refusal, per defense">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = _x(tick), _y(tick)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + _PLOT_H}"/>'
            f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + _PLOT_W}" y2="{y:.1f}"/>'
            f'<text x="{x:.1f}" y="{_TOP + _PLOT_H + 18}" text-anchor="middle">{tick:.0%}</text>'
            f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP + _PLOT_H}" x2="{_LEFT + _PLOT_W}" '
        f'y2="{_TOP + _PLOT_H}"/><line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" '
        f'y2="{_TOP + _PLOT_H}"/>'
        f'<text x="{_LEFT + _PLOT_W / 2:.1f}" y="{_H - 14}" text-anchor="middle">'
        "over-refusal of benign requests (lower is better)</text>"
        f'<text transform="translate(16 {_TOP + _PLOT_H / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">attack success rate (lower is better)</text>'
    )
    front = sorted(
        (a.over_refusal.rate.value, a.asr.rate.value)
        for a in summary.arms
        if a.pareto and a.over_refusal.rate.value is not None and a.asr.rate.value is not None
    )
    if len(front) > 1:
        # A staircase: between two optimal arms, the corner both dominate.
        corners = [front[0]]
        for (_, y0), (x1, y1) in pairwise(front):
            corners += [(x1, y0), (x1, y1)]
        points = " ".join(f"{_x(x):.1f},{_y(y):.1f}" for x, y in corners)
        parts.append(f'<polyline class="front" points="{points}"/>')
    placed: Counter[tuple[int, int]] = Counter()
    for arm in summary.arms:
        parts.append(_point(arm, placed))
    parts.append(_size_legend())
    parts.append("</svg>")
    return "".join(parts)


def _point(arm: ArmResult, placed: Counter[tuple[int, int]]) -> str:
    """One arm's group; ``placed`` counts the labels already put near each spot, so the
    labels of arms with equal rates go one under the other."""
    asr, refusal = arm.asr.rate, arm.over_refusal.rate
    if asr.value is None or refusal.value is None:
        return ""
    kind = "baseline" if arm.label == "none" else "pareto" if arm.pareto else "dominated"
    x, y = _x(refusal.value), _y(asr.value)
    r = radius(arm.calls_per_request)
    spot = (round(x / 20), round(y / 14))
    shift = 14 * placed[spot]
    placed[spot] += 1
    calls = calls_cell(arm.calls_per_request)
    title = (
        f"{arm.label}: ASR {pct(asr.value)} (95% CI {interval(asr)}, n={asr.n}); over-refusal "
        f"{pct(refusal.value)} (95% CI {interval(refusal)}, n={refusal.n}); {calls} calls "
        f"per request{'; Pareto-optimal' if arm.pareto else ''}"
    )
    return (
        f'<g class="arm {kind}" data-defense="{escape(arm.label)}">'
        f"<title>{escape(title)}</title>"
        f'<line class="ci" x1="{_x(refusal.low):.1f}" y1="{y:.1f}" x2="{_x(refusal.high):.1f}" '
        f'y2="{y:.1f}"/>'
        f'<line class="ci" x1="{x:.1f}" y1="{_y(asr.low):.1f}" x2="{x:.1f}" '
        f'y2="{_y(asr.high):.1f}"/>'
        f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"/>'
        f'<text x="{x + r + 4:.1f}" y="{y - r - 2 + shift:.1f}">{escape(arm.label)}</text></g>'
    )


def _size_legend() -> str:
    x = _LEFT + _PLOT_W + 30
    parts = [f'<text x="{x - 10}" y="{_TOP + 10}">calls per request</text>']
    for i, calls in enumerate((1, 3, 9)):
        y = _TOP + 40 + 38 * i
        parts.append(
            f'<circle class="point" cx="{x + 10}" cy="{y}" r="{radius(calls):.1f}"/>'
            f'<text x="{x + 34}" y="{y + 4}">{calls}</text>'
        )
    y = _TOP + 40 + 38 * 3 + 10
    parts.append(
        f'<circle class="point" cx="{x + 10}" cy="{y}" r="5" style="fill:#1b7837;'
        f'stroke:#1b7837"/><text x="{x + 34}" y="{y + 4}">Pareto-optimal</text>'
        f'<circle class="point" cx="{x + 10}" cy="{y + 24}" r="5" style="fill:#999;'
        f'stroke:#444"/><text x="{x + 34}" y="{y + 28}">no defense</text>'
    )
    return "".join(parts)


def render_html(summary: DefendSummary) -> str:
    """The whole page: provenance, the scatter, the table and the calibrations."""
    run, config = summary.run, summary.config
    rows = "".join(_row(arm) for arm in summary.arms)
    calibrations = "".join(
        f"<li>{escape(str(c['defense']))}: {escape(str(c['guard']))} blocks above "
        f"{float(c['threshold']):.3f} ({escape(str(c['source']))})</li>"
        for c in summary.calibrations
    )
    notes = "".join(f"<li>{escape(note)}</li>" for note in summary.notes)
    config_json = escape(json.dumps(run.config, indent=2, sort_keys=True, default=str))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>sparring defend {escape(run.id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Defenses of {escape(config.target)}</h1>"
        f'<p class="muted">run {escape(run.id)} ({escape(run.status)}), judge '
        f"{escape(summary.judge_id or 'none')}, {config.limit or 'all'} harmful and benign "
        f"behaviors each, techniques: {escape(', '.join(a.name for a in config.attacks))}; "
        f"benign suites: {escape(', '.join(config.benign_suites))}.</p>"
        "<h2>Attack success against over-refusal</h2>"
        "<p>Each point is one defense; bars are 95% Wilson intervals; a larger marker makes "
        "more model calls per request. Pareto-optimal defenses (no other has both a lower "
        "ASR and a lower over-refusal) are filled green and joined by the dashed front.</p>"
        f"{scatter(summary)}"
        '<h2>Table</h2><div class="wide"><table><thead><tr><th>defense</th>'
        "<th>ASR [95% CI]</th>"
        "<th>Δ ASR vs none</th><th>over-refusal [95% CI]</th><th>Δ over-refusal</th>"
        "<th>blocked (harmful / benign)</th><th>latency ×</th><th>calls / request</th>"
        "<th>documented cost</th><th>trade-off</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
        f'<p class="muted">Changes: Fisher\'s exact test against no defense, p-values '
        f"Tarone-corrected across all arms and rates at alpha {config.alpha} "
        f"({summary.family_size} tests could reach significance); * marks a significant "
        "change. Latency × is the mean request time over the undefended one on the same "
        "attempts, with a 95% paired-bootstrap interval, measured in this run.</p>"
        + _adaptive_section(summary)
        + (f"<h2>Calibrated thresholds</h2><ul>{calibrations}</ul>" if calibrations else "")
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
        + f"<h2>Config</h2><pre>{config_json}</pre></body></html>"
    )


def change_cell(change: Change | None) -> str:
    """A change against the baseline, e.g. ``-25.0 pts* (p=0.003)``; * when significant."""
    if change is None:
        return ""
    star = "*" if change.significant else ""
    return f"{change.difference * 100:+.1f} pts{star} (p={change.p_adjusted:.2g})"


def ratio_cell(ratio: tuple[float, float, float] | None) -> str:
    """A latency ratio with its interval, e.g. ``3.10 [2.80, 3.45]``; ``-`` when none."""
    if ratio is None:
        return "-"
    value, low, high = ratio
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def calls_cell(calls: float | None) -> str:
    """Model calls per request, two decimals; ``-`` when none were answered."""
    return "-" if calls is None else f"{calls:.2f}"


def measure_cells(arm: ArmResult) -> tuple[str, ...]:
    """The arm's measured cells, as the console and the HTML table show them: ASR and its
    change, over-refusal and its change, blocked shares, latency ratio, calls per request."""
    return (
        rate_cell(arm.asr.rate),
        change_cell(arm.asr_change),
        rate_cell(arm.over_refusal.rate),
        change_cell(arm.over_refusal_change),
        f"{pct(arm.blocked_harmful.value)} / {pct(arm.blocked_benign.value)}",
        ratio_cell(arm.latency_ratio),
        calls_cell(arm.calls_per_request),
    )


def _row(arm: ArmResult) -> str:
    label = f"{arm.label}{' ★' if arm.pareto else ''}"
    cells = (label, *measure_cells(arm), arm.cost, arm.tradeoff)
    body = "".join(f"<td>{escape(text)}</td>" for text in cells)
    return f'<tr class="{"pareto" if arm.pareto else ""}">{body}</tr>'


def adaptive_cells(arm: ArmResult) -> tuple[str, ...]:
    """The arm's row of the adaptive table (``ADAPTIVE_COLUMNS``); ``not run`` cells
    before its adaptive check started."""
    result = arm.adaptive
    static = rate_cell(arm.asr.rate)
    if result is None:
        return (arm.label, "not run", "", static, "", "", "", "")
    methods = ", ".join(
        f"{m.method} {m.asr.k}/{m.asr.n}"
        + ("" if m.mean_queries is None else f" ({m.mean_queries:.1f} q)")
        for m in result.methods
    )
    return (
        arm.label,
        rate_cell(result.asr),
        change_cell(result.change),
        static,
        "-" if result.mean_queries is None else f"{result.mean_queries:.1f}",
        methods,
        f"{pct(result.blocked.value)} of {result.blocked.n}",
        result.run_id if result.status == "finished" else f"{result.run_id} ({result.status})",
    )


def _adaptive_section(summary: DefendSummary) -> str:
    """The adaptive check's heading, method note, table and verdict line; empty without."""
    config = summary.config
    if not config.adaptive:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in ADAPTIVE_COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in adaptive_cells(arm)) + "</tr>"
        for arm in summary.arms
    )
    budgets = config.adaptive_budgets
    return (
        "<h2>Adaptive attack</h2>"
        f"<p>{escape(', '.join(config.adaptive))} against every arm, attacker "
        f"{escape(config.attacker)}, up to {budgets.queries} target queries per behavior and "
        "method. A behavior counts as broken when any method broke it; the queries to "
        "success are the fewest a method needed. Changes share the correction above; the "
        "Pareto marks stay on the static ASR.</p>"
        f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
        "</table></div>"
        f"<p>{escape(summary.adaptive_line or '')}</p>"
    )
