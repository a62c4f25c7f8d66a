"""From a stored scan to its reports: the glue between the store, metrics and report layers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sparring.attacks import ATTACKS
from sparring.judges import judge_card
from sparring.metrics import ScanData, ScanSummary, summarize
from sparring.report import GateResult, render_console, write_html, write_json, write_junit
from sparring.report.exact_checks import exact_summary
from sparring.store import Store


@dataclass(frozen=True)
class ReportFiles:
    """Where the reports of one run were written."""

    html: Path
    json: Path
    junit: Path


def attack_families() -> dict[str, str]:
    """Technique name → taxonomy family, for per-family rates."""
    return {name: cls.family for name, cls in ATTACKS.items()}


def load_scan(store: Store, run_id: str, judge: str | None = None) -> tuple[ScanData, ScanSummary]:
    """A stored run's data and its computed rates (StoreError if the run is unknown).

    ``judge`` is the id of the judge whose stored verdicts count (e.g. ``refusal-rules@1``,
    as ``rejudge`` stored them); the default is the judge the scan ran with. An id that gave
    no verdict in the run raises ConfigError listing the ones that did.
    """
    record = store.get_run(run_id)
    data = ScanData(run=record, behaviors=store.behaviors(run_id), attempts=store.attempts(run_id))
    primary = judge
    if primary is None:
        judges = {v.judge_id for a in data.attempts for v in a.verdicts}
        configured = record.model_ids.get("judge")
        primary = configured if configured in judges else None
    return data, summarize(data, primary_judge=primary, families=attack_families())


def agreement_of(summary: ScanSummary) -> Mapping[str, object] | None:
    """The measured agreement of the report's primary judge (the run's judge when no verdict
    was stored) with human labels, when it was measured."""
    judge_id = summary.primary_judge or summary.run.model_ids.get("judge")
    return judge_card(judge_id) if judge_id else None


def write_reports(
    store: Store,
    run_id: str,
    out_dir: Path,
    *,
    redact: bool = False,
    fail_above: float | None = None,
    console: Console | None = None,
    judge: str | None = None,
) -> tuple[ReportFiles, GateResult | None]:
    """Print the console summary and write HTML, JSON and JUnit reports into ``out_dir``;
    ``judge`` picks whose stored verdicts the rates count (see ``load_scan``)."""
    data, summary = load_scan(store, run_id, judge)
    agreement = agreement_of(summary)
    exact = exact_summary(data, summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        html=write_html(
            out_dir / "report.html",
            data,
            summary,
            redact=redact,
            judge_agreement=agreement,
            fail_above=fail_above,
            exact=exact,
        ),
        json=write_json(
            out_dir / "report.json",
            summary,
            judge_agreement=agreement,
            fail_above=fail_above,
            exact=exact,
        ),
        junit=write_junit(out_dir / "junit.xml", summary, fail_above=fail_above),
    )
    verdict = render_console(
        summary, console, fail_above=fail_above, judge_agreement=agreement, exact=exact
    )
    return files, verdict
