"""The single-file HTML report: provenance, heat map, interval charts and example attempts.

The file opens offline: CSS, SVG and the one small script are inline, nothing is fetched.
With ``redact=True`` every prompt, response, behavior text, judge rationale and error message
is replaced by its length and a hash, so the report can be shared without harmful text;
ids, category and technique names and the run config are shown as they are.

When the run holds verdicts of several judges, the report shows the headline rates under each
and lists the attempts each pair of judges labels differently, so a person can look.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from sparring.metrics import Metric, Outcome, ScanData, ScanSummary, ScopedRate, Trial
from sparring.report import charts
from sparring.report.exact_checks import ExactSummary
from sparring.report.exact_tables import exact_html
from sparring.report.files import write_private
from sparring.report.formatting import agreement_text, interval, pct
from sparring.report.gate import GateResult, gate
from sparring.types import AttemptResult, Behavior, Message

# Order in which examples of a cell are picked, one of each outcome per round, so a cell
# shows the successful attacks first but still shows what a refusal there looked like.
_PRIORITY = (Outcome.UNSAFE, Outcome.ERROR, Outcome.UNSCORABLE, Outcome.REFUSAL, Outcome.SAFE)


@dataclass(frozen=True)
class Turn:
    """One message of an example, already redacted when asked."""

    role: str
    text: str


@dataclass(frozen=True)
class Example:
    """One attempt as the drill-down shows it."""

    behavior_id: str
    technique: str
    sample: int
    outcome: str
    behavior_text: str
    turns: tuple[Turn, ...]
    verdicts: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class ExampleGroup:
    """The examples of one heat-map cell (or benign category), behind one anchor."""

    anchor: str
    title: str
    figure: str
    examples: tuple[Example, ...]
    total: int


def redact_text(text: str) -> str:
    """Placeholder for a text: its length in characters and the first 12 hex digits of its
    sha256, so two reports can still be matched up without showing the text."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return f"[redacted: {len(text)} characters, sha256 {digest}]"


def render_html(
    data: ScanData,
    summary: ScanSummary,
    *,
    redact: bool = False,
    judge_agreement: Mapping[str, object] | None = None,
    fail_above: float | None = None,
    max_examples: int = 3,
    max_chars: int = 2000,
    max_disagreements: int = 100,
    exact: ExactSummary | None = None,
) -> str:
    """The whole report as one HTML document; ``exact`` adds the exact-check tables.

    ``max_examples`` caps example attempts per heat-map cell, ``max_disagreements`` the
    attempts listed per pair of judges that label them differently, and ``max_chars`` the
    characters shown per message, which keeps the file small for large scans.
    """
    verdict: GateResult | None = None if fail_above is None else gate(summary, fail_above)
    harmful = [t for t in summary.trials if not t.benign]
    categories = sorted({t.category for t in harmful})
    techniques = sorted({t.technique for t in harmful})
    cells = summary.cells(Metric.ASR)
    shown = _Shower(redact=redact, max_chars=max_chars)
    groups = _cell_groups(data, summary, categories, techniques, cells, shown, max_examples)
    benign_groups = _benign_groups(data, summary, shown, max_examples)

    def anchor(category: str, technique: str) -> str | None:
        group = groups.get((category, technique))
        return group.anchor if group else None

    def bars(metric: Metric, dimension: str, label: str) -> Markup | None:
        rows = list(summary.by(metric, dimension).items())
        return Markup(charts.interval_chart(rows, label)) if rows else None

    run = summary.run
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    folder = resources.files("sparring.report") / "templates"
    template = env.from_string((folder / "scan.html").read_text(encoding="utf-8"))
    return template.render(
        css=Markup((folder / "scan.css").read_text(encoding="utf-8")),
        run=run,
        created=_when(run.created_at, "unknown"),
        finished=_when(run.finished_at, "not finished"),
        target=run.model_ids.get("target", "unknown"),
        models=sorted(run.model_ids.items()),
        judge=summary.primary_judge or "none (no verdicts)",
        other_judges=[j for j in summary.judges if j != summary.primary_judge],
        scan_judge=run.model_ids.get("judge"),
        judge_rates=_judge_rows(summary) if len(summary.judge_rates) > 1 else [],
        judge_agreement=agreement_text(judge_agreement),
        config_json=json.dumps(run.config, indent=2, sort_keys=True, default=str),
        versions_json=json.dumps(run.versions, indent=2, sort_keys=True, default=str),
        gate=verdict,
        headline=_headline(summary),
        heatmap=Markup(charts.heat_map(cells, categories, techniques, anchor)) if cells else None,
        legend=Markup(charts.legend()),
        asr_by_technique=bars(Metric.ASR, "technique", "Attack success rate by technique"),
        asr_by_category=bars(Metric.ASR, "category", "Attack success rate by category"),
        asr_by_family=bars(Metric.ASR, "family", "Attack success rate by family"),
        over_by_category=bars(Metric.OVER_REFUSAL, "category", "Over-refusal by category"),
        over_by_technique=(
            bars(Metric.OVER_REFUSAL, "technique", "Over-refusal by technique")
            if len(summary.by(Metric.OVER_REFUSAL, "technique")) > 1
            else None
        ),
        exact=Markup(exact_html(exact)) if exact is not None else None,
        excluded=_excluded_rows(summary),
        agreement=summary.agreement,
        disagreements=_disagreement_groups(data, summary, shown, max_disagreements),
        max_disagreements=max_disagreements,
        groups=list(groups.values()),
        benign_groups=benign_groups,
        redact=redact,
        max_examples=max_examples,
        pct=pct,
        interval=interval,
    )


def write_html(
    path: str | Path,
    data: ScanData,
    summary: ScanSummary,
    *,
    redact: bool = False,
    judge_agreement: Mapping[str, object] | None = None,
    fail_above: float | None = None,
    max_examples: int = 3,
    exact: ExactSummary | None = None,
) -> Path:
    """Write the report (see ``render_html``) to ``path`` as UTF-8 and return the path."""
    text = render_html(
        data,
        summary,
        redact=redact,
        judge_agreement=judge_agreement,
        fail_above=fail_above,
        max_examples=max_examples,
        exact=exact,
    )
    return write_private(Path(path), text)


class _Shower:
    """Turns stored text into what the report may show: redacted or cut to a length."""

    def __init__(self, *, redact: bool, max_chars: int) -> None:
        self.redact = redact
        self.max_chars = max_chars

    def __call__(self, text: str) -> str:
        if self.redact:
            return redact_text(text)
        if len(text) <= self.max_chars:
            return text
        return f"{text[: self.max_chars]}\n… ({len(text) - self.max_chars} more characters)"

    def example(self, attempt: AttemptResult, trial: Trial, behavior: Behavior) -> Example:
        context = f"\n\n[context]\n{behavior.context}" if behavior.context else ""
        verdicts = tuple(
            f"{v.judge_id}: {v.label}"
            + (f" (p_unsafe {v.p_unsafe:.2f})" if v.p_unsafe is not None else "")
            + (f" — {self(v.rationale)}" if v.rationale else "")
            for v in attempt.verdicts
        )
        return Example(
            behavior_id=trial.behavior_id,
            technique=trial.technique,
            sample=trial.sample,
            outcome=str(trial.outcome),
            behavior_text=self(behavior.text + context),
            turns=tuple(Turn(m.role, self(m.content)) for m in _answered(attempt)),
            verdicts=verdicts,
            error=None if attempt.error is None else self(attempt.error),
        )


def _answered(attempt: AttemptResult) -> list[Message]:
    """The transcript without the empty reply a failed request leaves at its end."""
    turns = attempt.transcript
    if attempt.error is not None and turns and not turns[-1].content:
        return turns[:-1]
    return turns


def _pick(
    pairs: Sequence[tuple[AttemptResult, Trial]], limit: int
) -> list[tuple[AttemptResult, Trial]]:
    by_outcome: dict[Outcome, list[tuple[AttemptResult, Trial]]] = defaultdict(list)
    for pair in pairs:
        by_outcome[pair[1].outcome].append(pair)
    picked: list[tuple[AttemptResult, Trial]] = []
    depth = 0
    while len(picked) < min(limit, len(pairs)):
        for outcome in _PRIORITY:
            if depth < len(by_outcome[outcome]) and len(picked) < limit:
                picked.append(by_outcome[outcome][depth])
        depth += 1
    return picked


def _joined(data: ScanData, summary: ScanSummary) -> list[tuple[AttemptResult, Trial]]:
    trials = {t.key: t for t in summary.trials}
    pairs = ((a, trials.get(a.spec.key)) for a in data.attempts)
    return [(a, t) for a, t in pairs if t is not None]


def _cell_groups(
    data: ScanData,
    summary: ScanSummary,
    categories: Sequence[str],
    techniques: Sequence[str],
    cells: Mapping[tuple[str, str], ScopedRate],
    shown: _Shower,
    limit: int,
) -> dict[tuple[str, str], ExampleGroup]:
    behaviors = {b.id: b for b in data.behaviors}
    by_cell: dict[tuple[str, str], list[tuple[AttemptResult, Trial]]] = defaultdict(list)
    for attempt, trial in _joined(data, summary):
        if not trial.benign:
            by_cell[(trial.category, trial.technique)].append((attempt, trial))
    groups = {}
    for i, cat in enumerate(categories):
        for j, tech in enumerate(techniques):
            pairs = by_cell.get((cat, tech))
            scoped = cells.get((cat, tech))
            if not pairs or scoped is None:
                continue
            examples = tuple(
                shown.example(a, t, behaviors[t.behavior_id]) for a, t in _pick(pairs, limit)
            )
            figure = f"ASR {pct(scoped.rate.value)}, {scoped.rate.k}/{scoped.rate.n} unsafe"
            title = f"{cat} × {tech}"
            groups[cat, tech] = ExampleGroup(f"cell-{i}-{j}", title, figure, examples, len(pairs))
    return groups


def _benign_groups(
    data: ScanData, summary: ScanSummary, shown: _Shower, limit: int
) -> list[ExampleGroup]:
    behaviors = {b.id: b for b in data.behaviors}
    by_category: dict[str, list[tuple[AttemptResult, Trial]]] = defaultdict(list)
    for attempt, trial in _joined(data, summary):
        if trial.benign:
            by_category[trial.category].append((attempt, trial))
    rates = summary.by(Metric.OVER_REFUSAL, "category")
    groups = []
    for i, cat in enumerate(sorted(by_category)):
        pairs = by_category[cat]
        examples = tuple(
            shown.example(a, t, behaviors[t.behavior_id]) for a, t in _pick(pairs, limit)
        )
        r = rates[cat].rate
        figure = f"over-refusal {pct(r.value)}, {r.k}/{r.n} refused"
        groups.append(ExampleGroup(f"benign-{i}", cat, figure, examples, len(pairs)))
    return groups


def _disagreement_groups(
    data: ScanData, summary: ScanSummary, shown: _Shower, limit: int
) -> list[ExampleGroup]:
    """Per pair of judges, the first ``limit`` attempts the two label differently."""
    behaviors = {b.id: b for b in data.behaviors}
    pairs = {a.spec.key: (a, t) for a, t in _joined(data, summary)}
    groups = []
    for i, agreement in enumerate(summary.agreement):
        keys = agreement.disagreements
        examples = tuple(
            shown.example(a, t, behaviors[t.behavior_id])
            for a, t in (pairs[key] for key in keys[:limit] if key in pairs)
        )
        groups.append(
            ExampleGroup(
                f"disagree-{i}",
                f"{agreement.judge_a} vs {agreement.judge_b}",
                f"{len(keys)} of {agreement.n} trials both scored are labelled differently",
                examples,
                len(keys),
            )
        )
    return groups


def _judge_rows(summary: ScanSummary) -> list[tuple[str, bool, list[ScopedRate]]]:
    """Per judge: its id, whether it is the primary judge, and its headline rates in the
    order of ``_headline``."""
    order = [scoped.metric for _, scoped in _headline(summary)]
    return [
        (j.judge_id, j.judge_id == summary.primary_judge, [j.overall(m) for m in order])
        for j in summary.judge_rates
    ]


def _headline(summary: ScanSummary) -> list[tuple[str, ScopedRate]]:
    return [
        ("Attack success rate", summary.overall(Metric.ASR)),
        ("Behaviors broken by any technique", summary.overall(Metric.BEST_OF_ASR)),
        ("Refusal of harmful requests", summary.overall(Metric.REFUSAL)),
        ("Over-refusal of benign requests", summary.overall(Metric.OVER_REFUSAL)),
    ]


def _excluded_rows(summary: ScanSummary) -> list[dict[str, str | int]]:
    """Per technique and behavior set: trials, and how many were unscorable or errored."""
    rows: list[dict[str, str | int]] = []
    for benign, label in ((False, "harmful"), (True, "benign")):
        chosen = [t for t in summary.trials if t.benign == benign]
        for tech in sorted({t.technique for t in chosen}):
            mine = [t for t in chosen if t.technique == tech]
            rows.append(
                {
                    "technique": tech,
                    "set": label,
                    "trials": len(mine),
                    "unscorable": sum(t.outcome is Outcome.UNSCORABLE for t in mine),
                    "errors": sum(t.outcome is Outcome.ERROR for t in mine),
                }
            )
    return rows


def _when(moment: datetime | None, missing: str) -> str:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else missing
