"""The defend report: a console table, ``defend.json`` and an offline ``defend.html`` with
the scatter of attack success against over-refusal. Numbers only: no prompt or reply is
written, so the files need no redaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from sparring.defenses.adaptive_tally import AdaptiveResult
from sparring.defenses.changes import Change
from sparring.defenses.chart import (
    ADAPTIVE_COLUMNS,
    adaptive_cells,
    measure_cells,
    render_html,
)
from sparring.defenses.tally import ArmResult, DefendSummary
from sparring.report import write_private
from sparring.stats import Rate

JSON_VERSION = 1
"""Version of the ``defend.json`` layout."""


@dataclass(frozen=True)
class DefendFiles:
    """Where a defend report was written."""

    json: Path
    html: Path


def write_defend_reports(summary: DefendSummary, out_dir: Path) -> DefendFiles:
    """``defend.json`` and ``defend.html`` in ``out_dir`` (owner-only files)."""
    json_path = write_private(out_dir / "defend.json", json.dumps(to_json(summary), indent=2))
    html_path = write_private(out_dir / "defend.html", render_html(summary))
    return DefendFiles(json=json_path, html=html_path)


def render_console(summary: DefendSummary, console: Console) -> None:
    """The arms as one table, then the trade-off of each defense in words."""
    run = summary.run
    console.print(
        f"defend run {markup_escape(run.id)}: target {markup_escape(summary.config.target)}, "
        f"judge {markup_escape(summary.judge_id or 'none')}; changes vs none by Fisher's exact "
        f"test, Tarone-corrected at alpha {summary.config.alpha} (* significant)"
    )
    table = Table(title="Defenses (★ Pareto-optimal: no arm has lower ASR and over-refusal)")
    for column in (
        "defense",
        "ASR [95% CI]",
        "Δ ASR",
        "over-refusal [95% CI]",
        "Δ over-refusal",
        "blocked harmful / benign",
        "latency ×",
        "calls/req",
        "",
    ):
        table.add_column(column)
    for arm in summary.arms:
        table.add_row(
            markup_escape(arm.label),
            *measure_cells(arm),
            "★" if arm.pareto else "",
        )
    console.print(table)
    for arm in summary.arms[1:]:
        console.print(f"{markup_escape(arm.label)}: {arm.tradeoff}", highlight=False)
    if summary.config.adaptive:
        _render_adaptive(summary, console)
    for calibration in summary.calibrations:
        console.print(
            f"{markup_escape(str(calibration['defense']))}: {calibration['guard']} blocks above "
            f"{calibration['threshold']:.3f} ({markup_escape(str(calibration['source']))})",
            highlight=False,
        )
    for note in summary.notes:
        console.print(f"note: {note}", markup=False, highlight=False)


def _render_adaptive(summary: DefendSummary, console: Console) -> None:
    """The adaptive check's table and which defenses lose their advantage under it."""
    config = summary.config
    table = Table(
        title=f"Adaptive attack ({', '.join(config.adaptive)}; up to "
        f"{config.adaptive_budgets.queries} target queries per behavior and method)"
    )
    for column in ADAPTIVE_COLUMNS:
        table.add_column(column)
    for arm in summary.arms:
        table.add_row(*(markup_escape(cell) for cell in adaptive_cells(arm)))
    console.print(table)
    console.print(summary.adaptive_line or "", markup=False, highlight=False)


def to_json(summary: DefendSummary) -> dict[str, Any]:
    """The report as a JSON-ready dict (rates are probabilities, latencies seconds)."""
    run = summary.run
    return {
        "version": JSON_VERSION,
        "run_id": run.id,
        "status": run.status,
        "target": summary.config.target,
        "judge": summary.judge_id,
        "created_at": run.created_at.isoformat(),
        "config": run.config,
        "alpha": summary.config.alpha,
        "test": "fisher-exact two-sided vs none, tarone-bonferroni across arms and rates",
        "family_size": summary.family_size,
        "adaptive": _adaptive_setup_json(summary),
        "calibrations": list(summary.calibrations),
        "notes": list(summary.notes),
        "arms": [_arm_json(arm) for arm in summary.arms],
    }


def _arm_json(arm: ArmResult) -> dict[str, Any]:
    ratio = arm.latency_ratio
    return {
        "defense": arm.label,
        "cost": arm.cost,
        "asr": _rate_json(arm.asr.rate, arm.asr.unscorable, arm.asr.errors),
        "over_refusal": _rate_json(
            arm.over_refusal.rate, arm.over_refusal.unscorable, arm.over_refusal.errors
        ),
        "asr_change": _change_json(arm.asr_change),
        "over_refusal_change": _change_json(arm.over_refusal_change),
        "blocked_harmful": arm.blocked_harmful.to_dict(),
        "blocked_benign": arm.blocked_benign.to_dict(),
        "latency_mean_s": arm.latency_s,
        "latency_ratio": None
        if ratio is None
        else {"value": ratio[0], "low": ratio[1], "high": ratio[2]},
        "calls_per_request": arm.calls_per_request,
        "extra_calls_per_request": None
        if arm.calls_per_request is None
        else arm.calls_per_request - 1.0,
        "pareto": arm.pareto,
        "tradeoff": arm.tradeoff,
        "adaptive": _adaptive_json(arm.adaptive),
    }


def _adaptive_setup_json(summary: DefendSummary) -> dict[str, Any] | None:
    """How the adaptive check was run and what it concluded; None without one."""
    config = summary.config
    if not config.adaptive:
        return None
    return {
        "methods": list(config.adaptive),
        "attacker": config.attacker,
        "limit": config.adaptive_limit,
        "budgets": config.adaptive_budgets.model_dump(mode="json"),
        "advantage": summary.adaptive_line,
    }


def _adaptive_json(result: AdaptiveResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "redteam_run_id": result.run_id,
        "status": result.status,
        "asr": result.asr.to_dict(),
        "asr_change": _change_json(result.change),
        "mean_queries_to_success": result.mean_queries,
        "methods": [
            {"method": m.method, "asr": m.asr.to_dict(), "mean_queries_to_success": m.mean_queries}
            for m in result.methods
        ],
        "blocked_queries": result.blocked.to_dict(),
    }


def _rate_json(r: Rate, unscorable: int, errors: int) -> dict[str, Any]:
    return {**r.to_dict(), "unscorable": unscorable, "errors": errors}


def _change_json(change: Change | None) -> dict[str, Any] | None:
    if change is None:
        return None
    return {
        "difference": change.difference,
        "low": change.low,
        "high": change.high,
        "p_value": change.p_value,
        "p_adjusted": change.p_adjusted,
        "significant": change.significant,
    }
