"""The offline ``redteam.html``: the run's provenance, attack success against target queries
per method as an inline SVG chart with 95% Wilson bands, the per-method and adaptive-arm
tables, and per behavior what each method did, with the conversation of each success (or
of the best-scored attack when none succeeded).

CSS and SVG are inline and there is no script, so the file opens offline. Every text is
escaped by the template (model output is hostile); with ``redact`` each prompt, reply and
behavior text is replaced by its length and a hash (``redact_text``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from sparring.redteam.report import (
    MethodSummary,
    RedteamReport,
    episode_verdict,
    gate,
    with_conversations,
)
from sparring.report import redact_text, write_private
from sparring.report.formatting import agreement_text, rate_cell, rate_line, rate_text
from sparring.store import Store

_W, _H = 720, 360
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 170, 20, 52
_PLOT_W, _PLOT_H = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
"""One colour per method, in order (Okabe-Ito, told apart by colour-blind readers)."""
_BADGES = {"broken": "unsafe", "held": "refusal", "error": "error", "unscored": "unscorable"}
"""The stylesheet's outcome class for each episode verdict."""


@dataclass(frozen=True)
class Attack:
    """One method's episode on one behavior, as the report shows it."""

    method: str
    verdict: str
    """``episode_verdict``: broken, held, error or unscored."""
    badge: str
    summary: str
    """Queries, score and counts in one line."""
    caption: str
    """What the conversation shown is."""
    turns: tuple[tuple[str, str], ...]
    """(role, text) of that conversation, already redacted when asked."""


@dataclass(frozen=True)
class BehaviorView:
    """One behavior: its text and every method's attack on it."""

    id: str
    category: str
    text: str
    headline: str
    attacks: tuple[Attack, ...]


def curve_chart(methods: Sequence[MethodSummary]) -> str:
    """The SVG chart of ASR (y, 0..100%) within each number of target queries on the query
    grid (x, logarithmic): per method a ``g.curve`` with its 95% Wilson interval as a
    ``polygon.band``, the ASR as a ``polyline.asr`` and a ``circle`` per grid point."""
    grid = sorted({q for m in methods for q, _ in m.curve})
    top = max(grid, default=1)

    def x(q: int) -> float:
        share = math.log(q) / math.log(top) if top > 1 else 0.5
        return _LEFT + _PLOT_W * share

    def y(p: float) -> float:
        return _TOP + _PLOT_H * (1.0 - p)

    parts = [
        f'<svg class="asr-curve" xmlns="http://www.w3.org/2000/svg" width="{_W}" '
        f'height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
        'aria-label="Attack success rate against target queries, per method">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{y(tick):.1f}" x2="{_LEFT + _PLOT_W}" '
            f'y2="{y(tick):.1f}"/><text class="tick" x="{_LEFT - 8}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick:.0%}</text>'
        )
    for q in grid:
        parts.append(
            f'<line class="grid" x1="{x(q):.1f}" y1="{_TOP}" x2="{x(q):.1f}" '
            f'y2="{_TOP + _PLOT_H}"/><text class="tick" x="{x(q):.1f}" '
            f'y="{_TOP + _PLOT_H + 16}" text-anchor="middle">{q}</text>'
        )
    parts.append(
        f'<text x="{_LEFT + _PLOT_W / 2:.1f}" y="{_H - 12}" text-anchor="middle">'
        "target queries per behavior (log scale)</text>"
        f'<text transform="translate(14 {_TOP + _PLOT_H / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">behaviors broken (ASR)</text>'
    )
    for i, method in enumerate(methods):
        parts.append(_curve(method, _COLOURS[i % len(_COLOURS)], i, x, y))
    parts.append("</svg>")
    return "".join(parts)


def _curve(
    method: MethodSummary,
    colour: str,
    index: int,
    x: Callable[[int], float],
    y: Callable[[float], float],
) -> str:
    """One method's band, line, points and legend entry; ``x`` and ``y`` place a query
    count and a probability."""
    name = escape(method.method)
    legend_y = _TOP + 12 + 20 * index
    legend = (
        f'<line x1="{_LEFT + _PLOT_W + 16}" y1="{legend_y - 4}" x2="{_LEFT + _PLOT_W + 36}" '
        f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2.5"/>'
        f'<text x="{_LEFT + _PLOT_W + 42}" y="{legend_y}">{name}</text>'
    )
    points = [(q, r) for q, r in method.curve if r.value is not None]
    if not points:
        return f'<g class="curve" data-method="{name}">{legend}</g>'
    band = [f"{x(q):.1f},{y(r.high):.1f}" for q, r in points]
    band += [f"{x(q):.1f},{y(r.low):.1f}" for q, r in reversed(points)]
    line = " ".join(f"{x(q):.1f},{y(r.value or 0.0):.1f}" for q, r in points)
    dots = "".join(
        f'<circle cx="{x(q):.1f}" cy="{y(r.value or 0.0):.1f}" r="3.5" fill="{colour}">'
        f"<title>{name}: ASR within {q} queries {escape(rate_text(r))}</title></circle>"
        for q, r in points
    )
    return (
        f'<g class="curve" data-method="{name}">'
        f'<polygon class="band" points="{" ".join(band)}" fill="{colour}" fill-opacity="0.15"/>'
        f'<polyline class="asr" points="{line}" fill="none" stroke="{colour}" '
        f'stroke-width="2"/>{dots}{legend}</g>'
    )


def render_html(
    report: RedteamReport, store: Store, *, redact: bool = False, fail_above: float | None = None
) -> str:
    """The whole page as one HTML document; ``fail_above`` adds the gate's verdict."""
    run = report.run
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    folder = resources.files("sparring.report") / "templates"
    template = env.from_string((folder / "redteam.html").read_text(encoding="utf-8"))
    return template.render(
        css=Markup((folder / "scan.css").read_text(encoding="utf-8")),
        run=run,
        status=run.state,
        created=run.created_at.isoformat(sep=" ", timespec="seconds"),
        models=run.model_ids,
        judge=report.judge_id,
        judge_agreement=agreement_text(report.judge_agreement),
        budget=report.budget,
        config_json=json.dumps(run.config, indent=2, sort_keys=True, default=str),
        gate=None if fail_above is None else gate(report, fail_above),
        chart=Markup(curve_chart(report.methods)),
        grid=[q for q, _ in report.methods[0].curve] if report.methods else [],
        methods=[_method_row(m) for m in report.methods],
        arms=sorted(report.arms, key=lambda a: -a.posterior_mean),
        behaviors=_behaviors(report, store, redact),
        redact=redact,
        rate_cell=rate_cell,
    )


def write_html(
    path: Path,
    report: RedteamReport,
    store: Store,
    *,
    redact: bool = False,
    fail_above: float | None = None,
) -> Path:
    """Write ``render_html`` to ``path`` (UTF-8, owner-only) and return the path."""
    return write_private(path, render_html(report, store, redact=redact, fail_above=fail_above))


def _method_row(m: MethodSummary) -> dict[str, Any]:
    cost = "-" if m.mean_queries is None else f"{m.mean_queries:.1f} / {m.median_queries:g}"
    refused = rate_line(m.attacker_refused) if m.attacker_refused.n else "no attacker calls"
    return {
        "method": m.method,
        "cells": [rate_cell(r) for _, r in m.curve],
        "cost": cost,
        "queries": m.queries,
        "refused": refused,
        "unparsed": m.attacker_unparsed,
        "gave_up": m.attacker_gave_up,
        "unscorable": rate_line(m.unscorable),
        "errors": m.target_errors,
        "extra": ", ".join(f"{k} {v}" for k, v in m.extra.items()) or "-",
        "confirmed": "; ".join(f"{j} {rate_line(r)}" for j, r in m.confirmed.items()) or "-",
    }


def _behaviors(report: RedteamReport, store: Store, redact: bool) -> list[BehaviorView]:
    """Per behavior of the run, in its order, the attacks of every method in run order."""
    episodes = with_conversations(report, store, redact=redact)
    order = [m.method for m in report.methods]
    views = []
    for behavior in store.behaviors(report.run.id):
        mine = sorted(
            (e for e in episodes if e["behavior_id"] == behavior.id),
            key=lambda e: order.index(e["method"]) if e["method"] in order else len(order),
        )
        if not mine:
            continue
        attacks = tuple(_attack(e, report.budget) for e in mine)
        views.append(
            BehaviorView(
                id=behavior.id,
                category=behavior.category,
                text=redact_text(behavior.text) if redact else behavior.text,
                headline=_headline(attacks, mine),
                attacks=attacks,
            )
        )
    return views


def _attack(episode: dict[str, Any], budget: int) -> Attack:
    verdict = episode_verdict(episode)
    counts = episode["counts"]
    score = episode["best_score"]
    spent = (
        f"broken at target query {episode['success_at']} of {budget}"
        if verdict == "broken"
        else f"{episode['queries']} of {budget} target queries spent"
    )
    summary = (
        f"{spent}; best score {'-' if score is None else f'{score}/10'}; unscorable "
        f"{counts.get('unscorable', 0)}, target errors {counts.get('target_errors', 0)}"
    )
    if verdict == "broken":
        caption, turns = "the conversation of its first success", episode["success_conversation"]
    else:
        caption, turns = "its best-scored attack", episode["best_attack"]
    return Attack(
        method=str(episode["method"]),
        verdict=verdict,
        badge=_BADGES[verdict],
        summary=summary,
        caption=caption if turns else "no scored reply to show",
        turns=tuple((m["role"], m["content"]) for m in turns or ()),
    )


def _headline(attacks: Sequence[Attack], episodes: Sequence[dict[str, Any]]) -> str:
    """Which methods broke the behavior and how fast, or the best score any reached."""
    broken = [
        f"{a.method} (at target query {e['success_at']})"
        for a, e in zip(attacks, episodes, strict=True)
        if a.verdict == "broken"
    ]
    if broken:
        return "broken by " + ", ".join(broken)
    scores = [e["best_score"] for e in episodes if e["best_score"] is not None]
    return f"not broken; best score {max(scores)}/10" if scores else "not broken; nothing scored"
