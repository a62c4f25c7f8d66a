"""The DART table: base target, MART, DART and the ablations side by side, per round and at
the end, with intervals; the same rates by every judge that graded the held-out
evaluations (the training judge, the second judge, any added by ``sparring rejudge``) with
their disagreements; plus the counts that show why the loop did what it did."""

# Longer than 400 lines because the table, its view by judge and the per-round counts are
# read from the same rows by the console and the HTML page, which live together here.

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sparring.dart.evaluation import (
    evaluate_by_judge,
    judged_evaluations,
    last_kept,
    relative_reduction,
)
from sparring.report.files import write_private
from sparring.report.formatting import estimate_cell, rate_cell
from sparring.stats import Rate
from sparring.store import Store
from sparring.types import AttemptResult


@dataclass(frozen=True)
class MethodRun:
    """One stored DART run reduced to what the table shows."""

    run_id: str
    method: str
    rounds: list[dict[str, Any]]
    """Per round r = 0..N: eval payload, plus attack/train/gate payloads for r >= 1, as
    stored (rates in their JSON form, ``Rate.to_dict``); the eval's ``judges`` are
    recomputed from the verdicts stored with the evaluation's attempts."""
    final_red: dict[str, Any] | None


def load_method_run(store: Store, run_id: str) -> MethodRun:
    """Read a DART run's steps, and its evaluations' verdicts by judge, from the store."""
    record = store.get_run(run_id, kind="dart")
    steps = store.steps(run_id)
    judged = judged_evaluations(store.iter_attempts(run_id))
    sources = {b.id: b.source for b in store.behaviors(run_id)}
    rounds: list[dict[str, Any]] = []
    r = 0
    while f"r{r}/eval" in steps:
        rounds.append(
            {
                "eval": _with_judges(steps[f"r{r}/eval"], judged.get(f"r{r}"), sources),
                "attacks": _summary_of_attacks(steps.get(f"r{r}/attacks")),
                "red_train": steps.get(f"r{r}/red-train"),
                "target_train": steps.get(f"r{r}/target-train"),
                "gate": steps.get(f"r{r}/gate"),
            }
        )
        r += 1
    final_red = steps.get("final/red-eval")
    if final_red is not None:
        final_red = final_red | {
            "judges": {
                name: _with_judges({}, judged.get(f"final-red-{name}"), sources)["judges"]
                for name in ("base", "final")
            }
        }
    return MethodRun(run_id, str(record.config.get("method", "dart")), rounds, final_red)


def _with_judges(
    payload: Mapping[str, Any], results: list[AttemptResult] | None, sources: Mapping[str, str]
) -> dict[str, Any]:
    """``payload`` with its ``judges`` recomputed from the stored verdicts when there are
    results (a rejudging adds judges), over-refusal also per benign source (``sources``:
    behavior id → source); as stored otherwise."""
    if not results:
        return {"judges": {}, **payload}
    return {**payload, "judges": evaluate_by_judge(results, sources)["judges"]}


def kept_round(run: MethodRun) -> int:
    """The last round whose target was kept (0: the base): a round the gate rejected
    left the target as it was."""
    return last_kept(rnd.get("gate") for rnd in run.rounds[1:])


def _summary_of_attacks(payload: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if payload is None:
        return None
    return {k: v for k, v in payload.items() if k != "candidates"}


def table_rows(runs: Sequence[MethodRun]) -> list[dict[str, Any]]:
    """One row for the base target (round 0 of the first run), then one per run: the
    evaluation of its last kept round (``kept_round``), the red side of its last round."""
    if not runs or not runs[0].rounds:
        return []
    first = runs[0]
    base_eval = first.rounds[0]["eval"]
    rows = [_row("base", first, base_eval, 0, None, "base")]
    for run in runs:
        if len(run.rounds) < 2:
            continue
        kept = kept_round(run)
        rows.append(_row(run.method, run, base_eval, kept, run.rounds[-1]["attacks"], "final"))
    rows[0]["reduction"] = {"value": None, "low": None, "high": None}
    return rows


def _row(
    method: str,
    run: MethodRun,
    base: Mapping[str, Any],
    kept: int,
    attacks: Mapping[str, Any] | None,
    target: str,
) -> dict[str, Any]:
    """A table row: ``kept`` is the round whose evaluation counts, ``target`` which target
    of the final red-team evaluation (``base`` or ``final``) it is."""
    now = run.rounds[kept]["eval"]
    red = run.final_red or {}
    red_judges = red.get("judges", {}).get(target, {})
    judges = {}
    for judge_id, rates in now.get("judges", {}).items():
        red_rates = red_judges.get(judge_id, {})
        disagree = dict(rates.get("disagreement", {}))
        if "disagreement" in red_rates:
            disagree["final_red"] = red_rates["disagreement"]["held_out"]
        judges[judge_id] = rates | {
            "vr_final_red": red_rates.get("vr_held_out"),
            "disagreement": disagree,
        }
    return {
        "method": method,
        "run": run.run_id,
        "rounds": len(run.rounds) - 1,
        "kept_round": kept,
        "vr_held_out": now["vr_held_out"],
        "reduction": relative_reduction(
            Rate.from_dict(base["vr_held_out"]), Rate.from_dict(now["vr_held_out"])
        ),
        "vr_public": now["vr_public"],
        "vr_final_red": red.get(target),
        "over_refusal": now["over_refusal"],
        "compliance": now.get("compliance"),
        "helpfulness": now.get("helpfulness"),
        "judges": judges,
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
    "round",
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
        str(row["kept_round"]),
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


JUDGE_COLUMNS = (
    "method",
    "judge",
    "VR held-out",
    "VR public",
    "VR final red",
    "over-refusal",
    "refused by source",
    "compliance",
    "helpfulness",
    "disagree held/public/benign/red",
)
"""Columns of the table by judge: each row's rates as each judge graded them, and on how
many answers it disagrees with the training judge (of those both scored)."""

DISAGREEMENT_GROUPS = ("held_out", "public", "benign", "final_red")
"""The evaluations a disagreement is counted on, in the order of the table's column."""


def _estimate(stored: Mapping[str, Any] | None) -> str:
    return estimate_cell(stored["value"], stored["low"], stored["high"]) if stored else "-"


def _disagreement_cell(counts: Mapping[str, Mapping[str, int]]) -> str:
    if not counts:
        return "-"
    return " ".join(
        f"{counts[g]['count']}/{counts[g]['n']}" if g in counts else "-"
        for g in DISAGREEMENT_GROUPS
    )


def _by_source_cell(by_source: Mapping[str, Mapping[str, Any]] | None) -> str:
    if not by_source:
        return "-"
    return "; ".join(f"{source} {r['k']}/{r['n']}" for source, r in by_source.items())


def judge_rows(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """One row of JUDGE_COLUMNS per table row and judge (training judge first)."""
    return [
        (
            row["method"],
            judge_id,
            rate_cell(_rate(rates["vr_held_out"])),
            rate_cell(_rate(rates["vr_public"])),
            rate_cell(_rate(rates["vr_final_red"])),
            rate_cell(_rate(rates["over_refusal"])),
            _by_source_cell(rates.get("over_refusal_by_source")),
            rate_cell(_rate(rates.get("compliance"))),
            _estimate(rates.get("helpfulness")),
            _disagreement_cell(rates["disagreement"]),
        )
        for row in rows
        for judge_id, rates in row.get("judges", {}).items()
    ]


WHY_COLUMNS = (
    "round",
    "VR held-out",
    "over-refusal",
    "compliance",
    "helpfulness",
    "gate",
    "red drafts",
    "red refusals",
    "unparsed",
    "rejected dup/sem/lex",
    "sent",
    "successful",
    "AL picks",
    "safe answers",
    "distilled",
    "anchored",
    "replay",
    "repaired",
    "blend",
)
"""Per-round counts that show why the loop did what it did (console and HTML); the rates
are the training judge's, on the benign prompts for compliance and helpfulness; "sent" counts
the attacks the target answered (runs stored before it have only "accepted"); "repaired"
counts the replay prompts the round's repair pass trained again (``replay_repair``), and
"blend" is the trained adapter's weight in the one the round kept (``repair_blend``: 1, no
repair; 0, the repaired adapter)."""


def why_rows(run: MethodRun) -> list[tuple[str, ...]]:
    """One row of WHY_COLUMNS per round; round 0 is the base target's evaluation."""
    rows: list[tuple[str, ...]] = []
    for r, rnd in enumerate(run.rounds):
        a, t, gate = rnd["attacks"] or {}, rnd["target_train"] or {}, rnd.get("gate")
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
                rate_cell(_rate(rnd["eval"].get("compliance"))),
                _estimate(rnd["eval"].get("helpfulness")),
                "-" if gate is None else ("rejected" if gate["rejected"] else "kept"),
                str(a.get("red_drafts", "-")),
                str(a.get("red_refusals", "-")),
                str(a.get("red_unparsed", "-")),
                rejected,
                str(a.get("sent", a.get("accepted", "-"))),
                str(a.get("successful", "-")),
                str(len(t["selected"])) if t else "-",
                str(t.get("with_safe_answer", "-")),
                str(t.get("distilled", "-")),
                str(t.get("anchored", "-")),
                str(t.get("replay", "-")),
                str(t["repair"]["refused"]) if "repair" in t else "-",
                f"{t['blend']['weight']:g}" if "blend" in t else "-",
            )
        )
    return rows


def render_console(runs: Sequence[MethodRun], console: Console | None = None) -> None:
    """The DART table and the per-round counts, in the terminal."""
    out = console or Console()
    rows = table_rows(runs)
    table = Table(*COLUMNS, title="DART table (held-out prompts; 95% intervals)")
    for row in rows:
        table.add_row(*_cells(row))
    out.print(table)
    by_judge = Table(*JUDGE_COLUMNS, title="By judge (disagreements with the training judge)")
    for cells in judge_rows(rows):
        by_judge.add_row(*cells)
    out.print(by_judge)
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
    rows = table_rows(runs)
    body = _html_rows(_cells(row) for row in rows)
    judges = _html_rows(judge_rows(rows))
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
        "<h2>By judge</h2><p>The same rates as each judge graded them: the training judge "
        "picks what the target learns, so a method that wins only by its verdicts is not "
        "shown to work. Disagree: answers on which a judge and the training judge differ "
        "(unsafe on harmful prompts, refusal on benign ones) of those both scored. "
        "Helpfulness: mean compliance probability on benign prompts.</p>"
        f"<table><tr>{''.join(f'<th>{h}</th>' for h in JUDGE_COLUMNS)}</tr>{judges}</table>"
        f"<h2>Held-out violation rate per round</h2>{_curve_svg(runs, 'vr_held_out')}"
        f"<h2>Over-refusal on benign prompts per round</h2>{_curve_svg(runs, 'over_refusal')}"
        "<h2>Why the loop did what it did</h2><p>Per round: red drafts written, the red "
        "model's refusals and unparsable outputs, drafts rejected by the diversity filter "
        "(duplicate / semantic / lexical; with <code>target_sees: all</code> the target still "
        "answers the semantic and lexical ones), attacks sent to the target and those that "
        "succeeded, prompts picked by active learning, how many got a safe answer (own or by "
        "context distillation) and the benign replay examples; the gate's decision (a "
        f"rejected round leaves the target as it was).</p>{why}"
        f"<h2>Data</h2><pre>{html.escape(json.dumps(to_json(runs)['table'], indent=1))}</pre>"
        "</body></html>"
    )
    return write_private(path, doc)
