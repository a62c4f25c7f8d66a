"""The SQLite run store: every run, attempt, completion and verdict, and a completion cache.

One file holds any number of runs. The file is in WAL mode, so readers (a report, ``sparring
runs list``) never block the writer, and a killed process loses nothing it had committed.
Writes of attempts go in batches, one transaction per batch: an attempt is either stored
whole (attempt, completions, verdicts) or not at all.

A store object is not thread-safe; use it from one thread (the engine's event loop).
"""

# Longer than 400 lines because it is one class: the SQLite Store, whose methods share one
# connection and one transaction discipline.

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from sparring.errors import StoreError
from sparring.store import browse, labels, rows
from sparring.store.browse import AttemptFilter, AttemptPage, Facets
from sparring.store.labels import HumanLabel
from sparring.store.records import (
    RUN_STATUSES,
    RunRecord,
    RunStatus,
    environment_versions,
    new_run_id,
    run_from_row,
    this_process,
    utc_now,
    valid_run_id,
)
from sparring.store.schema import connect
from sparring.types import (
    AttemptResult,
    AttemptSpec,
    Behavior,
    Completion,
    GenerationParams,
    Message,
    Verdict,
)

_RUN_COLUMNS = "id, kind, created_at, finished_at, status, config, seed, model_ids, versions, owner"

CACHE_BATCH = 256
"""Pending completion-cache entries that trigger a write of their own."""

# A fresh id collides only with a run created in the same minute with the same 16-bit suffix.
_ID_ATTEMPTS = 32


class RunStore:
    """A run store file; created with its folder when missing, migrated when older.

    Raises StoreError when the file is not an SQLite database, belongs to something else,
    or was written by a newer sparring.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        """The store file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"cannot create the folder for run store {self.path}: {err.strerror}; "
                "pass a writable store path"
            ) from err
        self._conn = connect(self.path)
        self._cache_pending: dict[str, tuple[str, Completion]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Write pending cache entries and close the file; the store is unusable afterwards."""
        try:
            if self._cache_pending:
                with self._transaction("cached completions"):
                    pass
        finally:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        kind: str,
        config: dict[str, Any],
        seed: int,
        model_ids: dict[str, str],
        run_id: str | None = None,
    ) -> str:
        """Record a new run with status ``running`` and return its id.

        ``config`` must be JSON-serialisable. Without ``run_id`` an id like
        ``20261122-0631-ab12`` is made; a given one must be new and made of letters, digits,
        '.', '_' or '-'.
        """
        now = utc_now()
        fields = (
            kind,
            now.isoformat(),
            rows.dumps_checked(config, "run config"),
            seed,
            rows.dumps(model_ids),
            rows.dumps(environment_versions()),
            this_process().model_dump_json(),
        )
        if run_id is not None:
            if not valid_run_id(run_id):
                raise StoreError(
                    f"run id {run_id!r} is not valid; use up to 64 letters, digits, '.', '_' "
                    "or '-', starting with a letter or digit"
                )
            if not self._insert_run(run_id, fields):
                raise StoreError(
                    f"run {run_id} already exists in {self.path}; pick another id or resume it"
                )
            return run_id
        for _ in range(_ID_ATTEMPTS):
            candidate = new_run_id(now)
            if self._insert_run(candidate, fields):
                return candidate
        raise StoreError(f"could not find a free run id in {self.path}; pass one explicitly")

    def _insert_run(self, run_id: str, fields: tuple[Any, ...]) -> bool:
        cursor = self._conn.execute(
            f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, NULL, 'running', ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (run_id, *fields),
        )
        return cursor.rowcount == 1

    def get_run(self, run_id: str, kind: str | None = None) -> RunRecord:
        """The run with this id; StoreError when the file has none, or when ``kind`` is
        given and the run is of another kind (a scan where a DART run is expected)."""
        row = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in {self.path}; see `sparring runs list`")
        record = run_from_row(row)
        if kind is not None and record.kind != kind:
            raise StoreError(
                f"run {run_id} is a {record.kind} run, not a {kind} run; "
                f"`sparring runs show {run_id}` tells what it is"
            )
        return record

    def list_runs(self) -> list[RunRecord]:
        """Every run in the file, oldest first."""
        cursor = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at, id")
        return [run_from_row(row) for row in cursor]

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        """Mark a run ended, with why: finished, interrupted, failed or budget."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish_run status must be one of {RUN_STATUSES[1:]}, not {status!r}")
        self._set_status(run_id, status, utc_now().isoformat())

    def mark_running(self, run_id: str) -> None:
        """Mark a run as running in this process (a start or resume); clears its finish time.

        StoreError when another process that is still alive is running it.
        """
        record = self.get_run(run_id)
        me = this_process()
        owner = record.owner
        if record.status == "running" and owner is not None and owner != me and owner.alive():
            raise StoreError(
                f"run {run_id} is still running in process {owner.pid} on {owner.host}; "
                "wait for it or stop it before resuming"
            )
        self._conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, owner = ? WHERE id = ?",
            (me.model_dump_json(), run_id),
        )

    def interrupt_own_runs(self) -> list[str]:
        """Mark ``interrupted`` every run this process left ``running`` (Ctrl-C or SIGTERM
        outside the engine, e.g. while a model loads or trains); returns their ids."""
        me = this_process().model_dump_json()
        ids = [
            row[0]
            for row in self._conn.execute(
                "SELECT id FROM runs WHERE status = 'running' AND owner = ?", (me,)
            )
        ]
        for run_id in ids:
            self.finish_run(run_id, "interrupted")
        return ids

    def _set_status(self, run_id: str, status: str, finished_at: str | None) -> None:
        cursor = self._conn.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, finished_at, run_id),
        )
        if cursor.rowcount == 0:
            self.get_run(run_id)

    # -- behaviors -------------------------------------------------------------------------

    def add_behaviors(self, run_id: str, behaviors: Iterable[Behavior]) -> None:
        """Attach behaviors to a run. Re-adding an identical behavior is a no-op (resume);
        a different behavior under an id already used in the run is a StoreError."""
        self.get_run(run_id)
        with self._transaction("behaviors"):
            for behavior in behaviors:
                blob = behavior.model_dump_json()
                stored = self._conn.execute(
                    "SELECT behavior FROM behaviors WHERE run_id = ? AND id = ?",
                    (run_id, behavior.id),
                ).fetchone()
                if stored is None:
                    self._conn.execute(
                        "INSERT INTO behaviors (run_id, id, category, benign, behavior) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (run_id, behavior.id, behavior.category, behavior.benign, blob),
                    )
                elif stored[0] != blob:
                    raise StoreError(
                        f"behavior id {behavior.id!r} is already in run {run_id} with different "
                        "content; give each behavior of a run a unique id"
                    )

    def behaviors(self, run_id: str) -> list[Behavior]:
        """The run's behaviors in the order they were added."""
        self.get_run(run_id)
        cursor = self._conn.execute(
            "SELECT behavior FROM behaviors WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [Behavior.model_validate_json(row[0]) for row in cursor]

    # -- attempts --------------------------------------------------------------------------

    def done_keys(self, run_id: str) -> set[str]:
        """Keys of the run's stored attempts, whether they succeeded or failed."""
        cursor = self._conn.execute("SELECT key FROM attempts WHERE run_id = ?", (run_id,))
        return {row[0] for row in cursor}

    def forget_errors(self, run_id: str) -> int:
        """Delete the run's failed attempts (with their completions and any verdicts), so
        that a resume runs them again; returns how many there were."""
        self.get_run(run_id)
        with self._transaction("failed attempts"):
            keys = "SELECT key FROM attempts WHERE run_id = ? AND status = 'error'"
            for table in ("verdicts", "completions"):
                self._conn.execute(
                    f"DELETE FROM {table} WHERE run_id = ? AND attempt_key IN ({keys})",
                    (run_id, run_id),
                )
            cursor = self._conn.execute(
                "DELETE FROM attempts WHERE run_id = ? AND status = 'error'", (run_id,)
            )
        return cursor.rowcount

    def record_attempts(self, run_id: str, results: Sequence[AttemptResult]) -> None:
        """Store a batch of results in one transaction: all of it lands, or none of it.

        A result whose spec key is already stored for the run (or repeats an earlier one in
        the batch) is ignored, so the first recording of an attempt wins and a resumed run
        never holds an attempt twice. Raises StoreError, with nothing written, when the
        write fails.
        """
        if not results:
            return
        self.get_run(run_id)
        created_at = utc_now().isoformat()
        completion_rows: list[rows.CompletionRow] = []
        verdict_rows: list[rows.VerdictRow] = []
        with self._transaction("attempts"):
            for result in results:
                spec = result.spec
                key = spec.key
                error = result.error
                cursor = self._conn.execute(
                    "INSERT INTO attempts "
                    "(run_id, key, behavior_id, attack, sample, spec, status, error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO NOTHING",
                    (
                        run_id,
                        key,
                        spec.behavior_id,
                        spec.attack,
                        spec.sample,
                        spec.model_dump_json(),
                        "done" if error is None else "error",
                        error,
                    ),
                )
                if cursor.rowcount == 1:
                    completion_rows.extend(rows.completion_rows(run_id, key, result))
                    verdict_rows.extend(rows.verdict_rows(run_id, key, result.verdicts, created_at))
            self._conn.executemany(
                "INSERT INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", completion_rows
            )
            self._insert_verdicts(verdict_rows)

    def add_verdicts(self, run_id: str, attempt_key: str, verdicts: Sequence[Verdict]) -> None:
        """Add verdicts to a stored attempt (rejudging); earlier verdicts are kept."""
        exists = self._conn.execute(
            "SELECT 1 FROM attempts WHERE run_id = ? AND key = ?", (run_id, attempt_key)
        ).fetchone()
        if exists is None:
            self.get_run(run_id)
            raise StoreError(f"no attempt {attempt_key} in run {run_id} in {self.path}")
        with self._transaction("verdicts"):
            self._insert_verdicts(
                rows.verdict_rows(run_id, attempt_key, verdicts, utc_now().isoformat())
            )

    def _insert_verdicts(self, verdict_rows: list[rows.VerdictRow]) -> None:
        self._conn.executemany(
            "INSERT INTO verdicts "
            "(run_id, attempt_key, judge_id, label, p_unsafe, rationale, created_at, p_refusal) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            verdict_rows,
        )

    def record_step(self, run_id: str, name: str, payload: Mapping[str, Any]) -> None:
        """Mark stage ``name`` of a run as finished, with what it produced (JSON-able).

        A step is written once: recording a name again is a StoreError, since a finished
        stage that finishes twice means two processes are driving one run.
        """
        self.get_run(run_id)
        with self._transaction(f"step {name}"):
            try:
                self._conn.execute(
                    "INSERT INTO steps VALUES (?, ?, ?, ?)",
                    (
                        run_id,
                        name,
                        utc_now().isoformat(),
                        rows.dumps_checked(payload, f"step {name}"),
                    ),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"step {name} of run {run_id} is already recorded") from None

    def steps(self, run_id: str, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Finished steps of a run whose name starts with ``prefix``, in the order written."""
        rows_ = self._conn.execute(
            "SELECT name, payload FROM steps WHERE run_id = ? AND name LIKE ? || '%' "
            "ORDER BY rowid",
            (run_id, prefix),
        )
        return {name: json.loads(payload) for name, payload in rows_}

    def attempts(self, run_id: str) -> list[AttemptResult]:
        """The run's attempts, ordered by spec key (see iter_attempts)."""
        return list(self.iter_attempts(run_id))

    def iter_attempts(self, run_id: str) -> Iterator[AttemptResult]:
        """Stream the run's attempts, rebuilt exactly as recorded, ordered by spec key.

        Key order does not depend on which attempt finished first, so two runs of one plan
        list their attempts identically. Verdicts come in the order they were stored, every
        judge's and every rejudging's. Do not write to the run while iterating.
        """
        self.get_run(run_id)
        completions = rows.GroupedRows(
            self._conn.execute(
                "SELECT attempt_key, text, finish_reason, prompt_tokens, completion_tokens, "
                "latency_s, error, meta FROM completions WHERE run_id = ? "
                "ORDER BY attempt_key, turn",
                (run_id,),
            )
        )
        verdicts = rows.GroupedRows(
            self._conn.execute(
                "SELECT attempt_key, judge_id, label, p_unsafe, rationale, p_refusal FROM verdicts "
                "WHERE run_id = ? ORDER BY attempt_key, id",
                (run_id,),
            )
        )
        cursor = self._conn.execute(
            "SELECT key, spec FROM attempts WHERE run_id = ? ORDER BY key", (run_id,)
        )
        for key, spec in cursor:
            yield AttemptResult(
                spec=AttemptSpec.model_validate_json(spec),
                completions=tuple(rows.completion_from_row(r) for r in completions.take(key)),
                verdicts=tuple(rows.verdict_from_row(r) for r in verdicts.take(key)),
            )

    # -- human labels and browsing (the viewer) -------------------------------------------

    def add_label(
        self, run_id: str, attempt_key: str, label: str, note: str, who: str
    ) -> HumanLabel:
        """Record a person's label (unsafe, safe or refusal) on a successful attempt; the
        attempt's verdicts are left as they are. StoreError for an unknown or failed
        attempt, or a label other than those three."""
        self.get_run(run_id)
        return labels.add_label(self._conn, run_id, attempt_key, label, note, who)

    def labels(self, run_id: str | None = None) -> list[HumanLabel]:
        """Every label of the run (of all runs when None), oldest first; relabelling adds a
        label, so ``sparring.store.labels.latest`` picks the ones that count."""
        return labels.list_labels(self._conn, run_id)

    def attempt(self, run_id: str, attempt_key: str) -> AttemptResult:
        """One stored attempt whole; StoreError when the run has no such attempt."""
        found = browse.get_attempt(self._conn, run_id, attempt_key)
        if found is None:
            self.get_run(run_id)
            raise StoreError(f"no attempt {attempt_key} in run {run_id} in {self.path}")
        return found

    def attempt_page(
        self, run_id: str, judge: str | None, flt: AttemptFilter, offset: int, limit: int
    ) -> AttemptPage:
        """A page of the run's attempts matching ``flt`` (see ``sparring.store.browse``)."""
        return browse.attempt_page(self._conn, run_id, judge, flt, offset, limit)

    def outcome_counts(self, run_id: str, judge: str | None) -> dict[tuple[bool, str], int]:
        """(benign, outcome) → attempts, under ``judge``'s labels; helper calls left out."""
        return browse.outcome_counts(self._conn, run_id, judge)

    def review_queue(self, run_id: str | None, offset: int, limit: int) -> list[tuple[str, str]]:
        """(run id, attempt key) of unlabelled attempts, most in need of a person first."""
        return browse.review_queue(self._conn, run_id, offset, limit)

    def facets(self, run_id: str) -> Facets:
        """The run's techniques, categories and judges, for filters."""
        return browse.facets(self._conn, run_id)

    def neighbours(self, run_id: str, attempt_key: str) -> tuple[str | None, str | None]:
        """Keys of the attempts stored just before and after this one in its run."""
        return browse.neighbours(self._conn, run_id, attempt_key)

    def run_signature(self, run_id: str) -> tuple[int, ...]:
        """Counts that change whenever the run's attempts, verdicts or labels do."""
        return browse.run_signature(self._conn, run_id)

    def signature(self) -> str:
        """A short text that changes whenever anything in the store does."""
        return browse.store_signature(self._conn)

    # -- completion cache ------------------------------------------------------------------

    def cache_get(
        self, model_id: str, params: GenerationParams, conversation: Sequence[Message]
    ) -> Completion | None:
        """The stored answer of this model to this conversation with these settings."""
        key = rows.cache_key(model_id, params, conversation)
        pending = self._cache_pending.get(key)
        if pending is not None:
            return pending[1]
        row = self._conn.execute(
            "SELECT completion FROM completion_cache WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else Completion.model_validate_json(row[0])

    def cache_put(
        self,
        model_id: str,
        params: GenerationParams,
        conversation: Sequence[Message],
        completion: Completion,
    ) -> None:
        """Remember a successful completion; failures are not cached, so they are retried.

        The first answer stored for a key is kept. Entries are written with the next batch
        of attempts (or every CACHE_BATCH entries, or on close): a commit per entry would
        cost more than the rest of an attempt's bookkeeping, and a crash then loses only
        the entries of attempts it loses anyway.
        """
        if not completion.ok:
            return
        key = rows.cache_key(model_id, params, conversation)
        self._cache_pending.setdefault(key, (model_id, completion))
        if len(self._cache_pending) >= CACHE_BATCH:
            with self._transaction("cached completions"):
                pass

    def _write_cache(self) -> None:
        created_at = utc_now().isoformat()
        self._conn.executemany(
            "INSERT INTO completion_cache (key, model_id, completion, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            [
                (key, model_id, completion.model_dump_json(), created_at)
                for key, (model_id, completion) in self._cache_pending.items()
            ],
        )

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """One write transaction; it also carries the pending completion-cache entries."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                if self._cache_pending:
                    self._write_cache()
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._cache_pending.clear()
        except sqlite3.Error as err:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StoreError(
                f"could not write {what} to {self.path} ({err}); nothing of this batch was stored"
            ) from err
