"""What the attempts list and an attempt's page show, built from the store.

Model text (prompts, replies, behavior texts, rationales, errors, attack details) is hostile
and often harmful: it is redacted by default, as ``sparring report --redact`` does, and shown
only for the one attempt a person asks to see. Templates escape all of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

from sparring.report import redact_text
from sparring.store import RunRecord
from sparring.store.browse import AttemptFilter, AttemptPage, Facets
from sparring.store.labels import HumanLabel
from sparring.types import AttemptResult, Behavior
from sparring.view.reader import Reader

PAGE_SIZE = 50
"""Attempts per page of the list."""


@dataclass(frozen=True)
class ListPage:
    """A page of a run's attempts under a filter."""

    run: RunRecord
    facets: Facets
    judge: str | None
    """Whose labels the outcomes are."""
    filter: AttemptFilter
    page: AttemptPage
    number: int
    """This page's number, from 1."""
    pages: int
    """How many pages the filter's matches fill (at least 1)."""


@dataclass(frozen=True)
class Shown:
    """One message of the conversation as the page shows it."""

    role: str
    text: str


@dataclass(frozen=True)
class ShownVerdict:
    judge_id: str
    label: str
    p_unsafe: float | None
    rationale: str | None
    primary: bool


@dataclass(frozen=True)
class ShownCompletion:
    turn: int
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    error: str | None


@dataclass(frozen=True)
class AttemptView:
    """One attempt whole: its behavior, conversation, verdicts and human labels."""

    run: RunRecord
    key: str
    attempt: AttemptResult
    behavior: Behavior | None
    revealed: bool
    behavior_text: str
    meta: str
    turns: tuple[Shown, ...]
    completions: tuple[ShownCompletion, ...]
    verdicts: tuple[ShownVerdict, ...]
    labels: tuple[HumanLabel, ...]
    """Its human labels, newest (the one that counts) first."""
    previous: str | None
    next: str | None
    ok: bool
    """False when the request failed: there is no reply to label."""


def attempts_list(
    reader: Reader, run_id: str, flt: AttemptFilter, judge: str | None, number: int
) -> ListPage:
    """Page ``number`` (from 1) of the run's attempts matching ``flt``; outcomes under
    ``judge``, by default the run's primary judge."""
    run = reader.store.get_run(run_id)
    chosen = judge or reader.primary_judge(run)
    page = reader.store.attempt_page(run_id, chosen, flt, (number - 1) * PAGE_SIZE, PAGE_SIZE)
    return ListPage(
        run=run,
        facets=reader.facets(run),
        judge=chosen,
        filter=flt,
        page=page,
        number=number,
        pages=max(1, math.ceil(page.total / PAGE_SIZE)),
    )


def attempt_view(reader: Reader, run_id: str, key: str, reveal: bool) -> AttemptView:
    """An attempt with its texts redacted, or shown when ``reveal``."""
    run = reader.store.get_run(run_id)
    attempt = reader.store.attempt(run_id, key)
    behaviors = {b.id: b for b in reader.store.behaviors(run_id)}
    behavior = behaviors.get(attempt.spec.behavior_id)
    shown: Callable[[str], str] = (lambda text: text) if reveal else redact_text
    primary = reader.primary_judge(run)
    counted = next((i for i, v in enumerate(attempt.verdicts) if v.judge_id == primary), None)
    previous, following = reader.store.neighbours(run_id, key)
    context = f"\n\n[context]\n{behavior.context}" if behavior and behavior.context else ""
    return AttemptView(
        run=run,
        key=key,
        attempt=attempt,
        behavior=behavior,
        revealed=reveal,
        behavior_text=shown(behavior.text + context) if behavior else "",
        meta=shown(json.dumps(attempt.spec.meta, indent=2, sort_keys=True, ensure_ascii=False)),
        turns=tuple(Shown(m.role, shown(m.content)) for m in attempt.transcript),
        completions=tuple(
            ShownCompletion(
                turn=i,
                finish_reason=c.finish_reason,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                latency_s=c.latency_s,
                error=None if c.error is None else shown(c.error),
            )
            for i, c in enumerate(attempt.completions)
        ),
        verdicts=tuple(
            ShownVerdict(
                judge_id=v.judge_id,
                label=str(v.label),
                p_unsafe=v.p_unsafe,
                rationale=None if v.rationale is None else shown(v.rationale),
                primary=i == counted,
            )
            for i, v in enumerate(attempt.verdicts)
        ),
        labels=tuple(
            sorted(
                (lab for lab in reader.store.labels(run_id) if lab.attempt_key == key),
                key=lambda lab: lab.id,
                reverse=True,
            )
        ),
        previous=previous,
        next=following,
        ok=attempt.error is None,
    )
