"""The Store protocol: what the engine, the scan and DART need from a run store.

``RunStore`` (SQLite, one file) implements it; a second backend (PostgreSQL for a team) is
another implementation of these methods, with the same guarantees: an attempt is stored
whole or not at all, the first recording of an attempt key wins, and a run's status says
how it ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sparring.store.browse import AttemptFilter, AttemptPage, Facets
from sparring.store.labels import HumanLabel
from sparring.store.records import RunRecord, RunStatus
from sparring.types import AttemptResult, Behavior, Completion, GenerationParams, Message, Verdict


class Store(Protocol):
    """A run store. Not thread-safe: use one from one thread (the engine's event loop)."""

    @property
    def path(self) -> Path:
        """Where the store lives; files that belong to its runs (DART checkpoints) go in
        a folder beside it."""

    # runs

    def create_run(
        self,
        kind: str,
        config: dict[str, Any],
        seed: int,
        model_ids: dict[str, str],
        run_id: str | None = None,
    ) -> str:
        """Record a new ``running`` run owned by this process; returns its id."""

    def get_run(self, run_id: str, kind: str | None = None) -> RunRecord:
        """The run (StoreError when absent, or of another ``kind`` than asked)."""

    def list_runs(self) -> list[RunRecord]:
        """Every run, oldest first."""

    def mark_running(self, run_id: str) -> None:
        """Mark a run running in this process (StoreError if another live one runs it)."""

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        """Record how a run ended."""

    def interrupt_own_runs(self) -> list[str]:
        """Mark ``interrupted`` the runs this process left ``running``; their ids."""

    # behaviors, attempts, verdicts, steps

    def add_behaviors(self, run_id: str, behaviors: Iterable[Behavior]) -> None:
        """Attach behaviors to a run (re-adding an identical one is a no-op)."""

    def behaviors(self, run_id: str) -> list[Behavior]:
        """A run's behaviors."""

    def done_keys(self, run_id: str) -> set[str]:
        """Keys of the run's stored attempts, failed ones included."""

    def forget_errors(self, run_id: str) -> int:
        """Delete the run's failed attempts so a resume runs them again; how many."""

    def record_attempts(self, run_id: str, results: Sequence[AttemptResult]) -> None:
        """Store a batch of attempts in one transaction."""

    def add_verdicts(self, run_id: str, attempt_key: str, verdicts: Sequence[Verdict]) -> None:
        """Add verdicts to a stored attempt (a rejudging)."""

    def attempts(self, run_id: str) -> list[AttemptResult]:
        """A run's attempts in the order they were stored."""

    def iter_attempts(self, run_id: str) -> Iterator[AttemptResult]:
        """The same, one at a time."""

    def record_step(self, run_id: str, name: str, payload: Mapping[str, Any]) -> None:
        """Record a named stage of a multi-stage run, with what it produced."""

    def steps(self, run_id: str, prefix: str = "") -> dict[str, dict[str, Any]]:
        """A run's recorded steps whose names start with ``prefix``."""

    # human labels and browsing (the viewer)

    def add_label(
        self, run_id: str, attempt_key: str, label: str, note: str, who: str
    ) -> HumanLabel:
        """Record a person's label (unsafe, safe, refusal) on a successful attempt; verdicts
        are never changed."""

    def labels(self, run_id: str | None = None) -> list[HumanLabel]:
        """Every label of the run (of all runs when None), oldest first."""

    def attempt(self, run_id: str, attempt_key: str) -> AttemptResult:
        """One stored attempt whole (StoreError when absent)."""

    def attempt_page(
        self, run_id: str, judge: str | None, flt: AttemptFilter, offset: int, limit: int
    ) -> AttemptPage:
        """A page of the run's attempts matching ``flt``, outcomes under ``judge``."""

    def outcome_counts(self, run_id: str, judge: str | None) -> dict[tuple[bool, str], int]:
        """(benign, outcome) → attempts, under ``judge``'s labels; helper calls left out."""

    def review_queue(self, run_id: str | None, offset: int, limit: int) -> list[tuple[str, str]]:
        """(run id, attempt key) of unlabelled attempts: judges disagree first, then the
        least certain."""

    def facets(self, run_id: str) -> Facets:
        """The run's techniques, categories and judges."""

    def neighbours(self, run_id: str, attempt_key: str) -> tuple[str | None, str | None]:
        """Keys of the attempts stored just before and after this one."""

    def run_signature(self, run_id: str) -> tuple[int, ...]:
        """Counts that change whenever the run's attempts, verdicts or labels do."""

    def signature(self) -> str:
        """A short text that changes whenever anything in the store does."""

    # completion cache

    def cache_get(
        self, model_id: str, params: GenerationParams, conversation: Sequence[Message]
    ) -> Completion | None:
        """A stored answer of the model ``model_id`` (its cache identity), or None."""

    def cache_put(
        self,
        model_id: str,
        params: GenerationParams,
        conversation: Sequence[Message],
        completion: Completion,
    ) -> None:
        """Remember a successful answer."""
