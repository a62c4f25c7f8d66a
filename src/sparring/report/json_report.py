"""The machine-readable report: every rate with its n, interval and provenance, and the trials
behind the rates so each number can be recomputed from attempt keys.

Tracing a rate: take the ``trials`` whose ``benign`` flag equals the rate's ``select.benign``
and whose technique, category and family equal the non-null fields of ``select``; ``n`` is
the number of them with a scored outcome (unsafe, safe, refusal) and ``k`` the number with
the outcome in ``select.counts``. Best-of ASR counts behaviors: a behavior is one unit,
broken when any of its trials is unsafe. ``key`` on each trial is the attempt's content hash
in the run store.

When the run holds verdicts of several judges, ``judge_rates`` gives the overall rates under
each judge's labels (entries shaped like ``rates``, ``judge_id`` naming the judge) and
``judge_disagreements`` gives, per pair, the keys of the trials they label differently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sparring.errors import DataError
from sparring.metrics import (
    JudgeAgreement,
    JudgeRates,
    Metric,
    Outcome,
    ScanSummary,
    Scope,
    ScopedRate,
    Trial,
)
from sparring.report.exact_checks import ExactSummary, exact_to_json
from sparring.report.files import write_private
from sparring.report.gate import gate
from sparring.stats import Rate
from sparring.store.records import RunRecord

SCHEMA = "sparring.scan-report"
SCHEMA_VERSION = 1
"""Bumped whenever a field changes meaning or goes away; readers refuse newer versions."""


def to_json(
    summary: ScanSummary,
    *,
    judge_agreement: Mapping[str, object] | None = None,
    fail_above: float | None = None,
    exact: ExactSummary | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring for tracing a rate);
    ``exact`` adds the ``exact_checks`` section (``exact_checks.exact_to_json``)."""
    run = summary.run
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": run.id,
            "kind": run.kind,
            "status": run.status,
            "created_at": _time(run.created_at),
            "finished_at": _time(run.finished_at),
            "seed": run.seed,
            "model_ids": dict(run.model_ids),
            "judge_id": run.model_ids.get("judge"),
            "versions": dict(run.versions),
            "config": dict(run.config),
        },
        "primary_judge": summary.primary_judge,
        "judges": list(summary.judges),
        "judge_agreement": dict(judge_agreement) if judge_agreement else None,
        "inter_judge_agreement": [
            {
                "judge_a": a.judge_a,
                "judge_b": a.judge_b,
                "n": a.n,
                "observed": a.observed,
                "kappa": a.kappa,
            }
            for a in summary.agreement
        ],
        "judge_rates": [
            {
                "judge_id": j.judge_id,
                "primary": j.judge_id == summary.primary_judge,
                "rates": [_rate_entry(r, summary, j.judge_id) for r in j.rates],
            }
            for j in summary.judge_rates
        ],
        "judge_disagreements": [
            {
                "judge_a": a.judge_a,
                "judge_b": a.judge_b,
                "n": a.n,
                "count": len(a.disagreements),
                "trial_keys": list(a.disagreements),
            }
            for a in summary.agreement
        ],
        "rates": [_rate_entry(r, summary) for r in summary.rates],
        "trials": [
            {
                "key": t.key,
                "behavior_id": t.behavior_id,
                "technique": t.technique,
                "category": t.category,
                "family": t.family,
                "sample": t.sample,
                "benign": t.benign,
                "outcome": str(t.outcome),
                "latency_s": t.latency_s,
            }
            for t in summary.trials
        ],
    }
    if exact is not None:
        doc["exact_checks"] = exact_to_json(exact)
    if fail_above is not None:
        verdict = gate(summary, fail_above)
        doc["gate"] = {"fail_above": fail_above, "passed": verdict.passed, "line": verdict.line}
    return doc


def write_json(
    path: str | Path,
    summary: ScanSummary,
    *,
    judge_agreement: Mapping[str, object] | None = None,
    fail_above: float | None = None,
    exact: ExactSummary | None = None,
) -> Path:
    """Write the report (see ``to_json``) to ``path`` as indented UTF-8 and return the path."""
    doc = to_json(summary, judge_agreement=judge_agreement, fail_above=fail_above, exact=exact)
    text = json.dumps(doc, indent=2, ensure_ascii=False, default=str)
    return write_private(Path(path), text + "\n")


def from_json(doc: Mapping[str, Any], source: str = "report") -> ScanSummary:
    """Rebuild the ScanSummary a report was written from; ``source`` names it in errors."""
    if doc.get("schema") != SCHEMA:
        raise DataError(f"{source}: not a sparring scan report (schema {doc.get('schema')!r})")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise DataError(
            f"{source}: schema_version {version!r} is not one this sparring reads "
            f"(up to {SCHEMA_VERSION}); upgrade sparring"
        )
    try:
        run = doc["run"]
        info = RunRecord(
            id=run["id"],
            kind=run["kind"],
            status=run["status"],
            created_at=datetime.fromisoformat(run["created_at"]),
            finished_at=_parse_time(run["finished_at"]),
            seed=run["seed"],
            model_ids=run["model_ids"],
            versions=run["versions"],
            config=run["config"],
        )
        return ScanSummary(
            run=info,
            primary_judge=doc["primary_judge"],
            judges=tuple(doc["judges"]),
            rates=tuple(_read_rate(r) for r in doc["rates"]),
            trials=tuple(Trial(**{**t, "outcome": Outcome(t["outcome"])}) for t in doc["trials"]),
            agreement=_read_agreement(doc),
            judge_rates=tuple(
                JudgeRates(j["judge_id"], tuple(_read_rate(r) for r in j["rates"]))
                for j in doc.get("judge_rates", ())
            ),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{source}: malformed scan report ({type(err).__name__}: {err})") from None


def load_json(path: str | Path) -> ScanSummary:
    """Read a JSON report written by ``write_json``."""
    target = Path(path)
    try:
        doc = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{target}: no such report file; pass the path of a report.json") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{target}: not valid JSON (line {err.lineno}); regenerate it") from None
    if not isinstance(doc, dict):
        raise DataError(f"{target}: not a sparring scan report (top level is not an object)")
    return from_json(doc, source=str(target))


def _read_agreement(doc: Mapping[str, Any]) -> tuple[JudgeAgreement, ...]:
    """Pairs of judges with their disagreeing trials; reports written before
    ``judge_disagreements`` existed read with none listed."""
    differ = {
        (d["judge_a"], d["judge_b"]): tuple(d["trial_keys"])
        for d in doc.get("judge_disagreements", ())
    }
    return tuple(
        JudgeAgreement(**a, disagreements=differ.get((a["judge_a"], a["judge_b"]), ()))
        for a in doc["inter_judge_agreement"]
    )


def _rate_entry(
    scoped: ScopedRate, summary: ScanSummary, judge_id: str | None = None
) -> dict[str, Any]:
    r = scoped.rate
    counts = "unsafe" if scoped.metric in (Metric.ASR, Metric.BEST_OF_ASR) else "refusal"
    return {
        "key": scoped.key,
        "metric": str(scoped.metric),
        "unit": scoped.unit,
        "scope": _scope(scoped.scope),
        **r.to_dict(),
        "confidence": 0.95,
        "unscorable": scoped.unscorable,
        "errors": scoped.errors,
        "run_id": summary.run.id,
        "judge_id": judge_id or summary.primary_judge,
        "select": {**_scope(scoped.scope), "benign": scoped.metric.benign, "counts": counts},
    }


def _scope(scope: Scope) -> dict[str, str | None]:
    return {"technique": scope.technique, "category": scope.category, "family": scope.family}


def _read_rate(entry: Mapping[str, Any]) -> ScopedRate:
    return ScopedRate(
        metric=Metric(entry["metric"]),
        scope=Scope(**entry["scope"]),
        rate=Rate.from_dict(entry),
        unscorable=entry["unscorable"],
        errors=entry["errors"],
        unit=entry["unit"],
    )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
