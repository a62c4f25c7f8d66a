"""The DART table: base target, MART, DART and the ablations side by side, per round and at
the end, with intervals; plus the counts that show why the loop did what it did."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sparring.report.files import write_private
from sparring.report.formatting import estimate_cell, rate_cell
from sparring.stats import Z_95, Rate
from sparring.store import Store


@dataclass(frozen=True)
class MethodRun:
    """One stored DART run reduced to what the table shows."""

    run_id: str
    method: str
    rounds: list[dict[str, Any]]
    """Per round r = 0..N: eval payload, plus attack/train payloads for r >= 1, as stored
    (rates in their JSON form, ``Rate.to_dict``)."""
    final_red: dict[str, Any] | None


def load_method_run(store: Store, run_id: str) -> MethodRun:
    """Read a DART run's steps from the store."""
    record = store.get_run(run_id, kind="dart")
    steps = store.steps(run_id)
    rounds: list[dict[str, Any]] = []
    r = 0
    while f"r{r}/eval" in steps:
        rounds.append(
            {
                "eval": steps[f"r{r}/eval"],
                "attacks": _summary_of_attacks(steps.get(f"r{r}/attacks")),
                "red_train": steps.get(f"r{r}/red-train"),
                "target_train": steps.get(f"r{r}/target-train"),
            }
        )
        r += 1
    return MethodRun(
        run_id, str(record.config.get("method", "dart")), rounds, steps.get("final/red-eval")
    )


def _summary_of_attacks(payload: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    return {k: v for k, v in payload.items() if k != "candidates"}


def relative_reduction(base: Rate, now: Rate) -> dict[str, float | None]:
    """(VR_base − VR_now) / VR_base with a 95% interval (Katz log risk ratio, +0.5 when a
    count is zero), as fractions. With no violations left the interval reaches 100%: the
    corrected ratio sets its lower end only, as zero violations cannot rule out zero risk."""
    kb, nb, kn, nn = base.k, base.n, now.k, now.n
    if not nb or not nn or kb == 0:
        return {"value": None, "low": None, "high": None}
    pb, pn = kb / nb, kn / nn
    kb_, kn_ = (kb, kn) if kn > 0 else (kb + 0.5, kn + 0.5)
    se = math.sqrt(1 / kb_ - 1 / (nb + (kb_ - kb)) + 1 / kn_ - 1 / (nn + (kn_ - kn)))
    log_rr = math.log((kn_ / (nn + kn_ - kn)) / (kb_ / (nb + kb_ - kb)))
    return {
        "value": 1 - pn / pb,
        "low": 1 - math.exp(log_rr + Z_95 * se),
        "high": 1.0 if kn == 0 else 1 - math.exp(log_rr - Z_95 * se),
    }


def table_rows(runs: Sequence[MethodRun]) -> list[dict[str, Any]]:
    """One row for the base target (round 0 of the first run), then one per run's last round."""
    if not runs or not runs[0].rounds:
        return []
    base_eval = runs[0].rounds[0]["eval"]
    rows = [_row("base", runs[0].run_id, base_eval, base_eval, None, None, len(runs[0].rounds) - 1)]
    for run in runs:
        if len(run.rounds) < 2:
            continue
        last = run.rounds[-1]
        red = run.final_red["final"] if run.final_red else None
        rows.append(
            _row(
                run.method,
                run.run_id,
                base_eval,
                last["eval"],
                last["attacks"],
                red,
                len(run.rounds) - 1,
            )
        )
    rows[0]["reduction"] = {"value": None, "low": None, "high": None}
    if runs[0].final_red:
        rows[0]["vr_final_red"] = runs[0].final_red["base"]
    return rows


def _row(
    method: str,
    run_id: str,
    base: Mapping[str, Any],
    now: Mapping[str, Any],
    attacks: Mapping[str, Any] | None,
    final_red: Mapping[str, Any] | None,
    rounds: int,
) -> dict[str, Any]:
    return {
        "method": method,
        "run": run_id,
        "rounds": rounds,
        "vr_held_out": now["vr_held_out"],
        "reduction": relative_reduction(
            Rate.from_dict(base["vr_held_out"]), Rate.from_dict(now["vr_held_out"])
        ),
        "vr_public": now["vr_public"],
        "vr_final_red": final_red,
        "over_refusal": now["over_refusal"],
        "red_asr": attacks.get("red_asr") if attacks else None,
        "one_minus_self_bleu": attacks.get("one_minus_self_bleu") if attacks else None,
        "one_minus_mean_cosine": attacks.get("one_minus_mean_cosine") if attacks else None,
        "cells_hit": attacks.get("cells_hit") if attacks else None,
    }


def _rate(stored: Mapping[str, Any] | None) -> Rate | None:
    """A rate of a stored payload, read at the boundary; None where the payload has none."""
    return Rate.from_dict(stored) if stored else None


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


COLUMNS = (
    "method",
    "VR held-out",
    "reduction",
    "VR public",
    "VR final red",
    "over-refusal",
    "red ASR",
    "1-SelfBLEU",
    "1-cos",
    "cells",
)
"""Columns of the DART table, in the console and the HTML alike."""


def _cells(row: Mapping[str, Any]) -> tuple[str, ...]:
    return (
        row["method"],
        rate_cell(_rate(row["vr_held_out"])),
        estimate_cell(**row["reduction"]),
        rate_cell(_rate(row["vr_public"])),
        rate_cell(_rate(row["vr_final_red"])),
        rate_cell(_rate(row["over_refusal"])),
        rate_cell(_rate(row["red_asr"])),
        _num(row["one_minus_self_bleu"]),
        _num(row["one_minus_mean_cosine"]),
        str(row["cells_hit"] or "-"),
    )


WHY_COLUMNS = (
    "round",
    "VR held-out",
    "over-refusal",
    "red drafts",
    "red refusals",
    "unparsed",
    "rejected dup/sem/lex",
    "accepted",
    "successful",
    "AL picks",
    "safe answers",
    "distilled",
    "replay",
)
"""Per-round counts that show why the loop did what it did (console and HTML)."""


def why_rows(run: MethodRun) -> list[tuple[str, ...]]:
    """One row of WHY_COLUMNS per round; round 0 is the base target's evaluation."""
    rows: list[tuple[str, ...]] = []
    for r, rnd in enumerate(run.rounds):
        a, t = rnd["attacks"] or {}, rnd["target_train"] or {}
        rejected = (
            f"{a['rejected_duplicate']}/{a['rejected_semantic']}/{a['rejected_lexical']}"
            if a
            else "-"
        )
        rows.append(
            (
                str(r),
                rate_cell(_rate(rnd["eval"]["vr_held_out"])),
                rate_cell(_rate(rnd["eval"]["over_refusal"])),
                str(a.get("red_drafts", "-")),
                str(a.get("red_refusals", "-")),
                str(a.get("red_unparsed", "-")),
                rejected,
                str(a.get("accepted", "-")),
                str(a.get("successful", "-")),
                str(len(t["selected"])) if t else "-",
                str(t.get("with_safe_answer", "-")),
                str(t.get("distilled", "-")),
                str(t.get("replay", "-")),
            )
        )
    return rows


def render_console(runs: Sequence[MethodRun], console: Console | None = None) -> None:
    """The DART table and the per-round counts, in the terminal."""
    out = console or Console()
    table = Table(*COLUMNS, title="DART table (held-out prompts; 95% intervals)")
    for row in table_rows(runs):
        table.add_row(*_cells(row))
    out.print(table)
    for run in runs:
        counts = Table(
            *WHY_COLUMNS, title=f"{run.method} ({run.run_id}): why the loop did what it did"
        )
        for cells in why_rows(run):
            counts.add_row(*cells)
        out.print(counts)


def to_json(runs: Sequence[MethodRun]) -> dict[str, Any]:
    """Every number of the table and every round, with run ids for provenance."""
    return {
        "schema": 1,
        "table": table_rows(runs),
        "runs": [
            {"run": r.run_id, "method": r.method, "rounds": r.rounds, "final_red": r.final_red}
            for r in runs
        ],
    }


def _curve_svg(runs: Sequence[MethodRun], metric: str, width: int = 560, height: int = 260) -> str:
    """A rate of the evaluation (``vr_held_out``, ``over_refusal`` ...) per round, one line
    per method, with 95% interval bars (inline SVG)."""
    pad = 40
    rounds = max((len(r.rounds) for r in runs), default=1)
    colours = ["#c0392b", "#2471a3", "#229954", "#b9770e", "#7d3c98"]

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + i * (width - 2 * pad) / max(rounds - 1, 1)
        return x, height - pad - v * (height - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{metric} per round">',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#555"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#555"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        _, y = xy(0, tick)
        parts.append(f'<text x="4" y="{y + 4:.0f}" font-size="11">{int(tick * 100)}%</text>')
    for i in range(rounds):
        x, _ = xy(i, 0)
        parts.append(f'<text x="{x - 4:.0f}" y="{height - pad + 16}" font-size="11">{i}</text>')
    for n, run in enumerate(runs):
        colour = colours[n % len(colours)]
        points = []
        for i, rnd in enumerate(run.rounds):
            vr = Rate.from_dict(rnd["eval"][metric])
            if vr.value is None:
                continue
            x, y = xy(i, vr.value)
            _, ylo = xy(i, vr.low)
            _, yhi = xy(i, vr.high)
            parts.append(
                f'<line x1="{x:.1f}" y1="{ylo:.1f}" x2="{x:.1f}" y2="{yhi:.1f}" '
                f'stroke="{colour}" opacity="0.5"/>'
            )
            points.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}">'
            f"<title>{html.escape(run.method)}</title></polyline>"
        )
        parts.append(
            f'<text x="{width - pad + 4}" y="{pad + 14 * n}" font-size="11" '
            f'fill="{colour}">{html.escape(run.method)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_rows(rows: Iterable[Sequence[str]]) -> str:
    return "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )


def write_html(path: Path, runs: Sequence[MethodRun]) -> Path:
    """One offline HTML file: the table, the per-round curve and the per-round counts."""
    body = _html_rows(_cells(row) for row in table_rows(runs))
    why = "".join(
        f"<h3>{html.escape(run.method)} ({html.escape(run.run_id)})</h3><table><tr>"
        f"{''.join(f'<th>{h}</th>' for h in WHY_COLUMNS)}</tr>{_html_rows(why_rows(run))}</table>"
        for run in runs
    )
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>sparring DART report</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        "<h1>DART report</h1><p>Violation rate (VR) on held-out prompts the loop never trained "
        "on, with 95% intervals; reduction is relative to the base target.</p>"
        f"<table><tr>{''.join(f'<th>{h}</th>' for h in COLUMNS)}</tr>{body}</table>"
        f"<h2>Held-out violation rate per round</h2>{_curve_svg(runs, 'vr_held_out')}"
        f"<h2>Over-refusal on benign prompts per round</h2>{_curve_svg(runs, 'over_refusal')}"
        "<h2>Why the loop did what it did</h2><p>Per round: red drafts written, the red "
        "model's refusals and unparsable outputs, drafts rejected by the diversity filter "
        "(duplicate / semantic / lexical), attacks sent to the target and those that "
        "succeeded, prompts picked by active learning, how many got a safe answer (own or by "
        f"context distillation) and the benign replay examples.</p>{why}"
        f"<h2>Data</h2><pre>{html.escape(json.dumps(to_json(runs)['table'], indent=1))}</pre>"
        "</body></html>"
    )
    return write_private(path, doc)
