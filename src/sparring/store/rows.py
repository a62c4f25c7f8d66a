"""Conversions between the core types and the store's table rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from sparring.errors import StoreError
from sparring.types import (
    AttemptResult,
    Completion,
    GenerationParams,
    Label,
    Message,
    Verdict,
)

CompletionRow = tuple[str, str, int, str, str, str, int, int, float, str | None, str | None]
VerdictRow = tuple[str, str, str, str, float | None, str | None, str, float | None]


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys, so equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dumps_checked(value: Any, what: str) -> str:
    """``dumps`` with a StoreError naming ``what`` for values JSON cannot hold."""
    try:
        return dumps(value)
    except (TypeError, ValueError) as err:
        raise StoreError(f"{what} cannot be stored as JSON ({err}); use plain values") from err


def cache_key(model_id: str, params: GenerationParams, conversation: Sequence[Message]) -> str:
    """Hash (sha256, hex, 32 chars) of everything that determines a model's answer.

    Built from pydantic's own JSON of the params rather than ``content_hash``: it is on the
    hot path of every request, and this is several times cheaper.
    """
    turns = [[m.role, m.content] for m in conversation]
    blob = json.dumps([model_id, params.model_dump_json(), turns], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def completion_rows(run_id: str, key: str, result: AttemptResult) -> list[CompletionRow]:
    """One row per turn, each with the conversation that was sent for it."""
    spec = result.spec
    request: list[dict[str, str]] = [m.model_dump() for m in spec.messages]
    rows: list[CompletionRow] = []
    for turn, completion in enumerate(result.completions):
        if turn > 0:
            request.append({"role": "assistant", "content": result.completions[turn - 1].text})
            request.append({"role": "user", "content": spec.followups[turn - 1]})
        rows.append(
            (
                run_id,
                key,
                turn,
                json.dumps(request, ensure_ascii=False),
                completion.text,
                completion.finish_reason,
                completion.prompt_tokens,
                completion.completion_tokens,
                completion.latency_s,
                completion.error,
                dumps(completion.meta) if completion.meta else None,
            )
        )
    return rows


def verdict_rows(
    run_id: str, key: str, verdicts: Sequence[Verdict], created_at: str
) -> list[VerdictRow]:
    """One row per verdict; ``str(label)`` so a malformed label reaches the CHECK constraint."""
    return [
        (run_id, key, v.judge_id, str(v.label), v.p_unsafe, v.rationale, created_at, v.p_refusal)
        for v in verdicts
    ]


def completion_from_row(row: Sequence[Any]) -> Completion:
    """Inverse of completion_rows for the columns (text, finish_reason, prompt_tokens,
    completion_tokens, latency_s, error, meta)."""
    text, finish_reason, prompt_tokens, completion_tokens, latency_s, error, meta = row
    return Completion(
        text=text,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_s=latency_s,
        error=error,
        meta=json.loads(meta) if meta else {},
    )


def verdict_from_row(row: Sequence[Any]) -> Verdict:
    """Inverse of verdict_rows for the columns (judge_id, label, p_unsafe, rationale,
    p_refusal)."""
    judge_id, label, p_unsafe, rationale, p_refusal = row
    return Verdict(
        label=Label(label),
        p_unsafe=p_unsafe,
        judge_id=judge_id,
        rationale=rationale,
        p_refusal=p_refusal,
    )


class GroupedRows:
    """Rows sorted by their first column (an attempt key), taken one key at a time.

    Lets three cursors sorted by attempt key be merged in one pass, so reading a run back
    costs three queries however many attempts it holds.
    """

    def __init__(self, rows: Iterator[Sequence[Any]]) -> None:
        self._groups = groupby(rows, key=lambda row: str(row[0]))
        self._current: tuple[str, list[Sequence[Any]]] | None = None
        self._advance()

    def _advance(self) -> None:
        group = next(self._groups, None)
        self._current = None if group is None else (group[0], [r[1:] for r in group[1]])

    def take(self, key: str) -> list[Sequence[Any]]:
        """The rows for ``key`` (without the key column); [] when it has none."""
        while self._current is not None and self._current[0] < key:
            self._advance()
        if self._current is None or self._current[0] != key:
            return []
        rows = self._current[1]
        self._advance()
        return rows
