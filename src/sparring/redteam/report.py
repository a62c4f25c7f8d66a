"""The red-team report: attack success against the number of target queries, per method,
with Wilson intervals; what each method cost; and, for the adaptive campaign, what it
learned about each arm.

``load_report`` reads a stored run (its episode steps); ``render_console`` prints the
summary (rates only, never a prompt or a reply); ``to_json`` adds every episode, its best
attack and the full conversation of each success (``with_conversations``), which
``redact`` replaces by placeholders. ``gate`` is the ``--fail-above`` verdict. The HTML and
JUnit files are written by ``redteam.html`` and ``redteam.junit`` from the same report.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparring.judges import judge_card
from sparring.redteam.config import RedteamConfig
from sparring.redteam.run import ARMS_STEP
from sparring.report import GateResult, redact_text
from sparring.report.formatting import agreement_text, pct, rate_cell, rate_line, rate_text
from sparring.report.gate import check_fail_above
from sparring.stats import Rate, rate
from sparring.store import RunRecord, Store
from sparring.types import Label

SCHEMA = "sparring-redteam/1"
QUERY_GRID = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""Query counts at which the ASR curve is read, cut at the run's budget (which is added)."""
METHOD_COUNTS = ("pruned_off_topic", "kept_off_topic", "pruned_width", "backtracks")
"""Method-specific counts shown when a method has them."""


@dataclass(frozen=True)
class MethodSummary:
    """One method over every behavior of the run."""

    method: str
    asr: Rate
    """Behaviors broken within the budget, of those attacked."""
    curve: tuple[tuple[int, Rate], ...]
    """(q, behaviors broken within q target queries) on the query grid."""
    mean_queries: float | None
    """Mean target queries spent to the first success, over broken behaviors."""
    median_queries: float | None
    queries: int
    """Target queries spent in all."""
    attacker_refused: Rate
    """Attacker replies that declined, of attacker calls."""
    attacker_unparsed: int
    attacker_gave_up: int
    """Steps abandoned after ``attacker_tries`` unusable attacker replies."""
    unscorable: Rate
    """Target replies the judge could not score, of those answered."""
    target_errors: int
    extra: dict[str, int]
    """Method-specific counts (pruning, backtracks, GOAT's techniques as ``technique:NAME``)."""
    confirmed: dict[str, Rate]
    """By other judge id: behaviors broken whose success reply that judge also labels
    unsafe, of those attacked. Present for judges that re-graded the run (``sparring
    rejudge``): a second opinion on the run judge's successes, never new successes."""


@dataclass(frozen=True)
class ArmSummary:
    """What the adaptive campaign learned about one arm."""

    arm: str
    success: Rate
    """Pulls that succeeded, of pulls."""
    posterior_mean: float
    """Mean of the Beta(1 + successes, 1 + failures) posterior, a probability."""
    queries: int


@dataclass(frozen=True)
class RedteamReport:
    """A stored red-team run, summarised."""

    run: RunRecord
    judge_id: str
    judge_agreement: dict[str, Any] | None
    budget: int
    methods: tuple[MethodSummary, ...]
    arms: tuple[ArmSummary, ...]
    episodes: tuple[dict[str, Any], ...]


def load_report(store: Store, run_id: str) -> RedteamReport:
    """The report of the stored run ``run_id`` (finished or not: the finished episodes)."""
    run = store.get_run(run_id, kind="redteam")
    config = RedteamConfig.model_validate(run.config)
    steps = store.steps(run_id)
    episodes = tuple(p for name, p in steps.items() if name.startswith("episode/"))
    budget = config.budgets.queries
    judge_id = run.model_ids.get("judge", "unknown")
    others = _other_labels(store, run_id, episodes, judge_id)
    methods = tuple(
        _summarise(m, [e for e in episodes if e["method"] == m], budget, others)
        for m in config.methods
    )
    arms = tuple(
        ArmSummary(
            arm=name,
            success=rate(counts["successes"], counts["pulls"]),
            posterior_mean=(1 + counts["successes"]) / (2 + counts["pulls"]),
            queries=counts["queries"],
        )
        for name, counts in steps.get(ARMS_STEP, {}).items()
    )
    return RedteamReport(run, judge_id, judge_card(judge_id), budget, methods, arms, episodes)


def _other_labels(
    store: Store, run_id: str, episodes: Sequence[Mapping[str, Any]], judge_id: str
) -> dict[str, dict[str, Label]]:
    """By judge id other than ``judge_id``: the label it gave each success reply it graded
    (attempt key to label)."""
    keys = {e["success_key"] for e in episodes if e.get("success_key")}
    labels: dict[str, dict[str, Label]] = {}
    for attempt in store.iter_attempts(run_id):
        if attempt.spec.key in keys:
            for verdict in attempt.verdicts:
                if verdict.judge_id != judge_id:
                    labels.setdefault(verdict.judge_id, {})[attempt.spec.key] = verdict.label
    return labels


def _summarise(
    method: str,
    episodes: Sequence[Mapping[str, Any]],
    budget: int,
    others: Mapping[str, Mapping[str, Label]],
) -> MethodSummary:
    n = len(episodes)
    first = sorted(e["success_at"] for e in episodes if e["success"])
    grid = sorted({q for q in QUERY_GRID if q < budget} | {budget})
    counts: Counter[str] = Counter()
    for e in episodes:
        counts.update(e["counts"])
    queries = sum(e["queries"] for e in episodes)
    answered = queries - counts["target_errors"]
    extra = {k: v for k, v in sorted(counts.items()) if k in METHOD_COUNTS or ":" in k}
    return MethodSummary(
        method=method,
        asr=rate(len(first), n),
        curve=tuple((q, rate(sum(s <= q for s in first), n)) for q in grid),
        mean_queries=statistics.fmean(first) if first else None,
        median_queries=statistics.median(first) if first else None,
        queries=queries,
        attacker_refused=rate(counts["attacker_refused"], counts["attacker_calls"]),
        attacker_unparsed=counts["attacker_unparsed"],
        attacker_gave_up=counts["attacker_gave_up"],
        unscorable=rate(counts["unscorable"], answered),
        target_errors=counts["target_errors"],
        extra=extra,
        confirmed={
            judge: rate(
                sum(labels.get(e.get("success_key") or "") is Label.UNSAFE for e in episodes), n
            )
            for judge, labels in sorted(others.items())
        },
    )


def render_console(report: RedteamReport, console: Console) -> None:
    """Print the run's rates: ASR by queries per method, costs, and the arms learned."""
    run = report.run
    models = run.model_ids
    console.print(
        f"[bold]sparring redteam[/bold] run {escape(run.id)}  target "
        f"{escape(models.get('target', '?'))}  attacker {escape(models.get('attacker', '?'))}  "
        f"status {escape(run.state)}"
    )
    console.print(
        f"success: judge {report.judge_id} labels a reply unsafe; agreement: "
        f"{agreement_text(report.judge_agreement)}",
        markup=False,
    )
    grid = [q for q, _ in report.methods[0].curve] if report.methods else []
    table = Table(title=f"Attack success by target queries (budget {report.budget} per behavior)")
    table.add_column("method")
    for q in grid:
        table.add_column(f"ASR ≤{q}", justify="right")
    table.add_column("queries to success (mean / median)", justify="right")
    for m in report.methods:
        cost = "-" if m.mean_queries is None else f"{m.mean_queries:.1f} / {m.median_queries:g}"
        table.add_row(m.method, *(rate_cell(r) for _, r in m.curve), cost)
    console.print(table)
    for m in report.methods:
        attacker = (
            f"attacker refused {rate_line(m.attacker_refused)} calls, unparsed "
            f"{m.attacker_unparsed}, gave up {m.attacker_gave_up} steps"
            if m.attacker_refused.n
            else "no attacker calls"
        )
        extra = "".join(f", {k} {v}" for k, v in m.extra.items())
        console.print(
            f"{m.method}: {m.queries} target queries; {attacker}; unscorable "
            f"{rate_line(m.unscorable)} replies; target errors {m.target_errors}{extra}",
            markup=False,
        )
    for judge in sorted({j for m in report.methods for j in m.confirmed}):
        shown = "; ".join(
            f"{m.method} {rate_line(m.confirmed[judge])}"
            for m in report.methods
            if judge in m.confirmed
        )
        console.print(
            f"ASR confirmed by {judge} (its success replies also labelled unsafe; agreement: "
            f"{agreement_text(judge_card(judge))}): {shown}",
            markup=False,
        )
    if report.arms:
        arms = Table(title="Adaptive campaign: what it learned per arm")
        for column in ("arm", "pulls", "success per pull", "posterior mean", "queries"):
            arms.add_column(column, justify="left" if column == "arm" else "right")
        for a in sorted(report.arms, key=lambda a: -a.posterior_mean):
            arms.add_row(
                a.arm,
                str(a.success.n),
                rate_cell(a.success),
                f"{a.posterior_mean:.2f}",
                str(a.queries),
            )
        console.print(arms)


def with_conversations(
    report: RedteamReport, store: Store, *, redact: bool = False
) -> list[dict[str, Any]]:
    """Every episode with ``best_attack`` (the conversation of its best-scored query) and
    ``success_conversation`` (that of its first success), each a list of ``{"role",
    "content"}`` or None; placeholders instead of texts when ``redact``."""
    wanted = {e[k] for e in report.episodes for k in ("best_key", "success_key") if e.get(k)}
    attempts = {a.spec.key: a for a in store.iter_attempts(report.run.id) if a.spec.key in wanted}

    def text(value: str) -> str:
        return redact_text(value) if redact else value

    def conversation(key: str | None) -> list[dict[str, str]] | None:
        if key is None or key not in attempts:
            return None
        return [{"role": m.role, "content": text(m.content)} for m in attempts[key].transcript]

    return [
        {
            **e,
            "best_attack": conversation(e.get("best_key")),
            "success_conversation": conversation(e.get("success_key")),
        }
        for e in report.episodes
    ]


def to_json(report: RedteamReport, store: Store, *, redact: bool = False) -> dict[str, Any]:
    """The report as JSON: rates, arms, and every episode with its best attack and the
    conversation of each success (placeholders instead of texts when ``redact``)."""
    return {
        "schema": SCHEMA,
        "run": report.run.model_dump(mode="json"),
        "judge": {"id": report.judge_id, "agreement": report.judge_agreement},
        "budget_per_behavior": report.budget,
        "redacted": redact,
        "methods": [_method_json(m) for m in report.methods],
        "adaptive_arms": [
            {
                "arm": a.arm,
                "success": a.success.to_dict(),
                "posterior_mean": a.posterior_mean,
                "queries": a.queries,
            }
            for a in report.arms
        ],
        "episodes": with_conversations(report, store, redact=redact),
    }


def _method_json(m: MethodSummary) -> dict[str, Any]:
    return {
        "method": m.method,
        "asr": m.asr.to_dict(),
        "asr_by_queries": [{"queries": q, **r.to_dict()} for q, r in m.curve],
        "mean_queries_to_success": m.mean_queries,
        "median_queries_to_success": m.median_queries,
        "queries": m.queries,
        "attacker_refused": m.attacker_refused.to_dict(),
        "attacker_unparsed": m.attacker_unparsed,
        "attacker_gave_up": m.attacker_gave_up,
        "unscorable": m.unscorable.to_dict(),
        "target_errors": m.target_errors,
        "counts": m.extra,
        "asr_confirmed_by": {judge: r.to_dict() for judge, r in m.confirmed.items()},
    }


def episode_verdict(episode: Mapping[str, Any]) -> str:
    """What one stored episode shows: ``broken`` (a success within its budget), ``error``
    (target requests failed and none of the others broke it, so holding is unproven),
    ``unscored`` (no reply could be scored: all unscorable, or no query was made) or
    ``held``."""
    counts = episode["counts"]
    if episode["success"]:
        return "broken"
    if counts.get("target_errors", 0):
        return "error"
    if episode["queries"] == counts.get("unscorable", 0):
        return "unscored"
    return "held"


def gate(report: RedteamReport, fail_above: float) -> GateResult:
    """The ``--fail-above`` verdict: fail when any method's ASR (behaviors broken within the
    budget, a probability) is above ``fail_above``. ``asr`` is the highest method's rate; a
    method that attacked nothing counts as 0."""
    check_fail_above(fail_above)
    limit = f"--fail-above {pct(fail_above)}"
    worst = max(report.methods, key=lambda m: m.asr.value or 0.0, default=None)
    if worst is None:
        return GateResult(True, fail_above, rate(0, 0), f"PASS: no method was run ({limit})")
    shown = f"{worst.method} ASR {rate_text(worst.asr)}"
    if (worst.asr.value or 0.0) > fail_above:
        return GateResult(False, fail_above, worst.asr, f"FAIL: {shown} is above {limit}")
    line = f"PASS: every method's ASR is within {limit} (highest: {shown})"
    return GateResult(True, fail_above, worst.asr, line)
