"""Reading a store a page at a time, for the viewer: attempts filtered and paged in SQL,
outcome counts per run, the review queue, and one attempt whole.

Each query touches only the rows it shows or counts, so a page of a 100,000-attempt run
costs milliseconds rather than a read of the whole run (``benchmarks/view_speed.py``).

An attempt's **outcome** follows the counting rules of ``sparring.metrics``: ``error`` when
its request failed, else the label of the chosen judge's first verdict on it, and
``unscorable`` when that judge gave none. The judges **disagree** on an attempt when its
verdicts carry two or more different labels other than ``unscorable``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from sparring.store import rows
from sparring.types import (
    HELPER_ATTACK_PREFIX,
    AttemptResult,
    AttemptSpec,
    Verdict,
    content_hash,
)

OUTCOMES = ("unsafe", "safe", "refusal", "unscorable", "error")
"""Every outcome an attempt can have, in the order the viewer offers them."""

_OUTCOME = (
    "CASE WHEN a.status = 'error' THEN 'error' ELSE COALESCE(("
    "SELECT v.label FROM verdicts v WHERE v.run_id = a.run_id AND v.attempt_key = a.key "
    "AND v.judge_id = :judge ORDER BY v.id LIMIT 1), 'unscorable') END"
)
# The filters below test membership in sets built in one pass over the verdicts (or
# behaviors, or replies), which costs a fraction of a subquery per attempt on a large run.
# A bare column beside MIN() takes its value from the row with the minimum (SQLite).
_FIRST = (
    "SELECT attempt_key, label, MIN(id) FROM verdicts WHERE run_id = :run AND judge_id = :judge "
    "GROUP BY attempt_key"
)
_LABELLED_AS = (
    f"a.status = 'done' AND a.key IN (SELECT attempt_key FROM ({_FIRST}) WHERE label = :outcome)"
)
_NOT_SCORED = (
    f"a.status = 'done' AND a.key NOT IN (SELECT attempt_key FROM ({_FIRST}) "
    "WHERE label != 'unscorable')"
)
# Two labels differ exactly when the smallest and largest differ.
_DISAGREE = (
    "a.key IN (SELECT attempt_key FROM verdicts WHERE run_id = :run AND label != 'unscorable' "
    "GROUP BY attempt_key HAVING MIN(label) != MAX(label))"
)
_TEXT = (
    "(a.spec LIKE :text ESCAPE '\\' OR a.behavior_id IN (SELECT id FROM behaviors WHERE "
    "run_id = :run AND behavior LIKE :text ESCAPE '\\') OR a.key IN (SELECT attempt_key FROM "
    "completions WHERE run_id = :run AND text LIKE :text ESCAPE '\\'))"
)
_HUMAN = (
    "(SELECT l.label FROM labels l WHERE l.run_id = a.run_id AND l.attempt_key = a.key "
    "ORDER BY l.id DESC LIMIT 1)"
)
_REPLY = (
    "(SELECT c.text FROM completions c WHERE c.run_id = a.run_id AND c.attempt_key = a.key "
    "ORDER BY c.turn DESC LIMIT 1)"
)
_NOT_HELPER = "substr(a.attack, 1, :helper_len) != :helper"
_FROM = "FROM attempts a LEFT JOIN behaviors b ON b.run_id = a.run_id AND b.id = a.behavior_id"


@dataclass(frozen=True)
class AttemptFilter:
    """Which attempts of a run a page lists; None (or False) means any."""

    technique: str | None = None
    category: str | None = None
    outcome: str | None = None
    """One of OUTCOMES, under the judge the page names."""
    disagreement: bool = False
    """Only attempts on which the judges disagree."""
    text: str | None = None
    """A substring of the prompt, a reply or the behavior (case-insensitive for ASCII)."""


@dataclass(frozen=True)
class AttemptRow:
    """One attempt as a list shows it."""

    seq: int
    """Its place in the store: later attempts have higher numbers."""
    key: str
    behavior_id: str
    category: str | None
    """The behavior's category; None when the run does not hold the behavior."""
    benign: bool
    technique: str
    sample: int
    outcome: str
    verdicts: tuple[Verdict, ...]
    """Every verdict, in the order stored."""
    human: str | None
    """The latest human label, if any."""
    reply: str
    """The last reply's text (empty for a failed request)."""


@dataclass(frozen=True)
class AttemptPage:
    """A page of attempts and how many match the filter in all."""

    rows: tuple[AttemptRow, ...]
    total: int
    offset: int


@dataclass(frozen=True)
class Facets:
    """What a run's attempts can be filtered by."""

    techniques: tuple[str, ...]
    categories: tuple[str, ...]
    judges: tuple[str, ...]
    """Judges with a verdict in the run, the first to give one first."""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(run_id: str, judge: str | None, flt: AttemptFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a filter, cheap tests first, with its parameters."""
    clauses = ["a.run_id = :run"]
    params: dict[str, Any] = {"run": run_id, "judge": judge}
    if flt.technique is not None:
        clauses.append("a.attack = :technique")
        params["technique"] = flt.technique
    if flt.category is not None:
        clauses.append("b.category = :category")
        params["category"] = flt.category
    if flt.outcome == "error":
        clauses.append("a.status = 'error'")
    elif flt.outcome == "unscorable":
        clauses.append(_NOT_SCORED)
    elif flt.outcome is not None:
        clauses.append(_LABELLED_AS)
        params["outcome"] = flt.outcome
    if flt.disagreement:
        clauses.append(_DISAGREE)
    if flt.text:
        clauses.append(_TEXT)
        params["text"] = f"%{_escape_like(flt.text)}%"
    return " AND ".join(clauses), params


def attempt_page(
    conn: sqlite3.Connection,
    run_id: str,
    judge: str | None,
    flt: AttemptFilter,
    offset: int,
    limit: int,
) -> AttemptPage:
    """Attempts ``offset`` .. ``offset + limit`` of those matching ``flt``, in stored order;
    outcomes are ``judge``'s labels.

    One pass finds every match (its seq only), which gives the count and the page at once;
    a second query reads the shown rows whole.
    """
    where, params = _where(run_id, judge, flt)
    matches = [
        row[0] for row in conn.execute(f"SELECT a.seq {_FROM} WHERE {where} ORDER BY a.seq", params)
    ]
    shown = {f"s{i}": seq for i, seq in enumerate(matches[offset : offset + limit])}
    found = conn.execute(
        f"SELECT a.seq, a.key, a.behavior_id, b.category, b.benign, a.attack, a.sample, "
        f"{_OUTCOME}, {_HUMAN}, {_REPLY} {_FROM} "
        f"WHERE a.seq IN ({', '.join(':' + name for name in shown)}) ORDER BY a.seq",
        {"judge": judge, **shown},
    ).fetchall()
    verdicts = _verdicts(conn, run_id, [row[1] for row in found])
    page = tuple(
        AttemptRow(
            seq=seq,
            key=key,
            behavior_id=behavior_id,
            category=category,
            benign=bool(benign),
            technique=attack,
            sample=sample,
            outcome=outcome,
            verdicts=tuple(verdicts.get(key, ())),
            human=human,
            reply=reply or "",
        )
        for seq, key, behavior_id, category, benign, attack, sample, outcome, human, reply in found
    )
    return AttemptPage(rows=page, total=len(matches), offset=offset)


def _verdicts(conn: sqlite3.Connection, run_id: str, keys: list[str]) -> dict[str, list[Verdict]]:
    out: dict[str, list[Verdict]] = {}
    if not keys:
        return out
    marks = ", ".join("?" * len(keys))
    cursor = conn.execute(
        "SELECT attempt_key, judge_id, label, p_unsafe, rationale, p_refusal FROM verdicts "
        f"WHERE run_id = ? AND attempt_key IN ({marks}) ORDER BY id",
        (run_id, *keys),
    )
    for key, *fields in cursor:
        out.setdefault(key, []).append(rows.verdict_from_row(fields))
    return out


def outcome_counts(
    conn: sqlite3.Connection, run_id: str, judge: str | None
) -> dict[tuple[bool, str], int]:
    """(benign, outcome) → attempts of the run, helper calls left out, under ``judge``."""
    cursor = conn.execute(
        "SELECT a.behavior_id IN (SELECT id FROM behaviors WHERE run_id = :run AND benign), "
        "CASE WHEN a.status = 'error' THEN 'error' ELSE COALESCE(f.label, 'unscorable') END, "
        f"COUNT(*) FROM attempts a LEFT JOIN ({_FIRST}) f ON f.attempt_key = a.key "
        f"WHERE a.run_id = :run AND {_NOT_HELPER} GROUP BY 1, 2",
        {
            "run": run_id,
            "judge": judge,
            "helper": HELPER_ATTACK_PREFIX,
            "helper_len": len(HELPER_ATTACK_PREFIX),
        },
    )
    return {(bool(benign), outcome): n for benign, outcome, n in cursor}


def review_queue(
    conn: sqlite3.Connection, run_id: str | None, offset: int, limit: int
) -> list[tuple[str, str]]:
    """(run id, attempt key) of successful attempts nobody has labelled yet, of one run or
    of all: those the judges disagree on first, then the least certain (a verdict's
    ``p_unsafe`` closest to 0.5), then the rest in stored order."""
    of_run = "WHERE run_id = :run" if run_id is not None else ""
    of_run_too = "a.run_id = :run AND" if run_id is not None else ""
    cursor = conn.execute(
        "SELECT a.run_id, a.key FROM attempts a LEFT JOIN ("
        "SELECT run_id, attempt_key, MIN(CASE WHEN label != 'unscorable' THEN label END) "
        "!= MAX(CASE WHEN label != 'unscorable' THEN label END) AS split, "
        f"MIN(ABS(p_unsafe - 0.5)) AS margin FROM verdicts {of_run} "
        "GROUP BY run_id, attempt_key) v ON v.run_id = a.run_id AND v.attempt_key = a.key "
        f"WHERE {of_run_too} a.status = 'done' AND {_NOT_HELPER} "
        "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.run_id = a.run_id "
        "AND l.attempt_key = a.key) ORDER BY COALESCE(v.split, 0) DESC, v.margin IS NULL, "
        "v.margin, a.seq LIMIT :limit OFFSET :offset",
        {
            "run": run_id,
            "helper": HELPER_ATTACK_PREFIX,
            "helper_len": len(HELPER_ATTACK_PREFIX),
            "limit": limit,
            "offset": offset,
        },
    )
    return [(row[0], row[1]) for row in cursor]


def facets(conn: sqlite3.Connection, run_id: str) -> Facets:
    """The run's techniques, categories and judges."""
    techniques = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT attack FROM attempts WHERE run_id = ? ORDER BY attack", (run_id,)
        )
    ]
    categories = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT category FROM behaviors WHERE run_id = ? ORDER BY category", (run_id,)
        )
    ]
    judges = [
        r[0]
        for r in conn.execute(
            "SELECT judge_id FROM verdicts WHERE run_id = ? GROUP BY judge_id ORDER BY MIN(id)",
            (run_id,),
        )
    ]
    return Facets(tuple(techniques), tuple(categories), tuple(judges))


def run_signature(conn: sqlite3.Connection, run_id: str) -> tuple[int, ...]:
    """(attempts, last attempt's seq, verdicts, labels) of the run: while it is unchanged,
    nothing computed from the run's rows needs computing again (rows are added, and only a
    resume removes some: its failed attempts, which come back with higher seqs)."""
    return tuple(
        conn.execute(
            "SELECT (SELECT COUNT(*) FROM attempts WHERE run_id = :run), "
            "(SELECT COALESCE(MAX(seq), 0) FROM attempts WHERE run_id = :run), "
            "(SELECT COUNT(*) FROM verdicts WHERE run_id = :run), "
            "(SELECT COUNT(*) FROM labels WHERE run_id = :run)",
            {"run": run_id},
        ).fetchone()
    )


def get_attempt(conn: sqlite3.Connection, run_id: str, key: str) -> AttemptResult | None:
    """One attempt whole, as ``iter_attempts`` rebuilds it; None when the run has none."""
    row = conn.execute(
        "SELECT spec FROM attempts WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    if row is None:
        return None
    completions = conn.execute(
        "SELECT text, finish_reason, prompt_tokens, completion_tokens, latency_s, error, meta "
        "FROM completions WHERE run_id = ? AND attempt_key = ? ORDER BY turn",
        (run_id, key),
    )
    verdicts = _verdicts(conn, run_id, [key]).get(key, [])
    return AttemptResult(
        spec=AttemptSpec.model_validate_json(row[0]),
        completions=tuple(rows.completion_from_row(r) for r in completions),
        verdicts=tuple(verdicts),
    )


def neighbours(conn: sqlite3.Connection, run_id: str, key: str) -> tuple[str | None, str | None]:
    """The keys of the attempts stored just before and just after ``key`` in its run."""
    row = conn.execute(
        "SELECT seq FROM attempts WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    if row is None:
        return None, None
    before = conn.execute(
        "SELECT key FROM attempts WHERE run_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
        (run_id, row[0]),
    ).fetchone()
    after = conn.execute(
        "SELECT key FROM attempts WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT 1",
        (run_id, row[0]),
    ).fetchone()
    return (before[0] if before else None), (after[0] if after else None)


def store_signature(conn: sqlite3.Connection) -> str:
    """A short text that changes whenever anything in the store does: a run starts or
    ends, or an attempt, verdict or label is added (a live page polls it)."""
    row = conn.execute(
        "SELECT (SELECT COALESCE(MAX(seq), 0) FROM attempts), "
        "(SELECT COALESCE(MAX(id), 0) FROM verdicts), (SELECT COALESCE(MAX(id), 0) FROM labels), "
        "(SELECT COUNT(*) || ':' || COALESCE(group_concat(status || COALESCE(finished_at, ''), "
        "','), '') FROM runs)"
    ).fetchone()
    return content_hash(list(row))[:16]
