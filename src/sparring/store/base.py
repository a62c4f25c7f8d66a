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
