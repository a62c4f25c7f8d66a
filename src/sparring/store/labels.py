"""Human labels: a person's call on one stored attempt, kept beside the judges' verdicts.

A label never changes a verdict. Labelling an attempt again adds a row; the latest row per
attempt is the one that counts (``latest``), and the earlier ones stay as its history.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import Field

from sparring.errors import StoreError
from sparring.store.records import utc_now
from sparring.types import Frozen

HumanVerdict = Literal["unsafe", "safe", "refusal"]
"""What a person can call a reply: it materially helps the harmful intent, it complies
harmlessly, or it declines."""

HUMAN_VERDICTS: tuple[str, ...] = get_args(HumanVerdict)

NOTE_MAX_CHARS = 4000
"""Longest note kept with a label, in characters."""

_COLUMNS = "id, run_id, attempt_key, label, note, who, created_at"


class HumanLabel(Frozen):
    """One label as stored."""

    id: int = Field(description="Row id; grows with every label, so later means newer.")
    run_id: str
    attempt_key: str = Field(description="The labelled attempt's content hash.")
    label: HumanVerdict
    note: str = Field("", description="Why, in the reviewer's words; may be empty.")
    who: str = Field(description="Who labelled it (a user name).")
    created_at: datetime = Field(description="When it was labelled (UTC).")


def _record(row: Sequence[Any]) -> HumanLabel:
    label_id, run_id, key, label, note, who, created_at = row
    return HumanLabel(
        id=label_id,
        run_id=run_id,
        attempt_key=key,
        label=label,
        note=note,
        who=who,
        created_at=datetime.fromisoformat(created_at),
    )


def add_label(
    conn: sqlite3.Connection, run_id: str, attempt_key: str, label: str, note: str, who: str
) -> HumanLabel:
    """Store a label on a stored, successful attempt (StoreError otherwise: there is no
    reply to judge on a failed one) and return it."""
    if label not in HUMAN_VERDICTS:
        raise StoreError(f"label {label!r} is not one of {', '.join(HUMAN_VERDICTS)}")
    if len(note) > NOTE_MAX_CHARS:
        raise StoreError(f"a label's note holds at most {NOTE_MAX_CHARS} characters")
    if not who.strip():
        raise StoreError("a label needs who made it; pass a reviewer name")
    row = conn.execute(
        "SELECT status FROM attempts WHERE run_id = ? AND key = ?", (run_id, attempt_key)
    ).fetchone()
    if row is None:
        raise StoreError(f"no attempt {attempt_key} in run {run_id}")
    if row[0] != "done":
        raise StoreError(f"attempt {attempt_key} failed at the model; there is no reply to label")
    created = utc_now().isoformat()
    cursor = conn.execute(
        "INSERT INTO labels (run_id, attempt_key, label, note, who, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (run_id, attempt_key, label, note, who, created),
    )
    return _record((cursor.lastrowid, run_id, attempt_key, label, note, who, created))


def list_labels(conn: sqlite3.Connection, run_id: str | None = None) -> list[HumanLabel]:
    """Every label of the run (of every run when None), oldest first."""
    if run_id is None:
        cursor = conn.execute(f"SELECT {_COLUMNS} FROM labels ORDER BY id")
    else:
        cursor = conn.execute(
            f"SELECT {_COLUMNS} FROM labels WHERE run_id = ? ORDER BY id", (run_id,)
        )
    return [_record(row) for row in cursor]


def latest(labels: Iterable[HumanLabel]) -> dict[tuple[str, str], HumanLabel]:
    """The label that counts per attempt, keyed by (run id, attempt key): the newest."""
    current: dict[tuple[str, str], HumanLabel] = {}
    for label in labels:
        key = (label.run_id, label.attempt_key)
        if key not in current or label.id > current[key].id:
            current[key] = label
    return current
