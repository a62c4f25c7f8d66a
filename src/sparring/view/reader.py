"""The viewer's side of the store: one connection on one thread for pages, a second for
run summaries, and what they computed.

SQLite objects must stay on the thread that made them, and a query over a large run must not
hold up the event loop, so every read and write goes through ``StoreWorker.call`` onto one
thread of its own. A run's full summary (the rates its HTML report shows) reads every
attempt, which takes seconds on a run of 100,000: it is computed on a second thread with
its own connection, so pages stay quick while it runs, and kept until the run changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sparring.metrics import ScanSummary
from sparring.scan.report import load_scan
from sparring.store import RunRecord, RunStore
from sparring.store.browse import Facets

T = TypeVar("T")

WAIT_AT_MOST = 5000
"""Attempts up to which a page waits a moment for a run's summary (about a second's work on
2 cores); a larger run's page is shown at once and fills in its charts when they are done."""

SETTLE = 5.0
"""A running run's summary is recomputed at most once per SETTLE times the seconds it took
last time, so a large run in progress keeps the summary thread mostly idle."""


@dataclass(frozen=True)
class _Job:
    """A summary being computed (or computed) for a run as it looked then."""

    signature: object
    started: float
    """``time.monotonic()`` when it was started, seconds."""
    future: Future[tuple[ScanSummary, float]]
    """The summary and the seconds it took."""


class _Summariser:
    """Computes run summaries on a thread and store connection of their own."""

    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparring-view-rates")
        self._store: RunStore = self._pool.submit(RunStore, path).result()

    def submit(self, run_id: str, judge: str | None) -> Future[tuple[ScanSummary, float]]:
        return self._pool.submit(self._summarise, run_id, judge)

    def _summarise(self, run_id: str, judge: str | None) -> tuple[ScanSummary, float]:
        start = time.monotonic()
        summary = load_scan(self._store, run_id, judge)[1]
        return summary, time.monotonic() - start

    def close(self) -> None:
        self._pool.submit(self._store.close).result()
        self._pool.shutdown(cancel_futures=True)


class Reader:
    """The store and what the viewer computed from it; used from the store's thread only."""

    def __init__(self, path: Path) -> None:
        self.store = RunStore(path)
        self._summariser = _Summariser(path)
        self._cache: dict[tuple[str, str], tuple[object, Any]] = {}
        self._jobs: dict[str, _Job] = {}

    def _signature(self, run: RunRecord) -> object:
        return run.status, run.finished_at, self.store.run_signature(run.id)

    def cached(self, what: str, run: RunRecord, compute: Callable[[], T]) -> T:
        """``compute()``, or its value from when the run last looked the same."""
        signature = self._signature(run)
        hit = self._cache.get((what, run.id))
        if hit is not None and hit[0] == signature:
            kept: T = hit[1]
            return kept
        value = compute()
        self._cache[what, run.id] = (signature, value)
        return value

    def facets(self, run: RunRecord) -> Facets:
        """The run's techniques, categories and judges."""
        return self.cached("facets", run, lambda: self.store.facets(run.id))

    def primary_judge(self, run: RunRecord) -> str | None:
        """Whose labels count as the run's outcomes: the judge the run was configured with
        when it gave verdicts, else the first judge that gave one, else None."""
        judges = self.facets(run).judges
        configured = run.model_ids.get("judge")
        if configured in judges:
            return configured
        return judges[0] if judges else None

    def summary_job(self, run: RunRecord) -> Future[tuple[ScanSummary, float]]:
        """The computation of the run's summary: the last one while the run looks the same
        (or, while it runs, for a while after; see SETTLE), else a new one."""
        signature = self._signature(run)
        job = self._jobs.get(run.id)
        if job is not None and (job.signature == signature or not job.future.done()):
            return job.future
        if job is not None and run.status == "running" and job.future.exception() is None:
            cost = job.future.result()[1]
            if time.monotonic() - job.started < SETTLE * cost:
                return job.future
        future = self._summariser.submit(run.id, self.primary_judge(run))
        self._jobs[run.id] = _Job(signature, time.monotonic(), future)
        return future

    def summary(self, run: RunRecord) -> ScanSummary | None:
        """The run's rates as its HTML report counts them, or None while they are being
        computed (SparringError when the run cannot be summarised, e.g. an attempt names a
        behavior the run does not hold)."""
        job = self.summary_job(run)
        return job.result()[0] if job.done() else None

    def version(self) -> str:
        """Changes whenever the store does, or a summary finishes (a live page polls it)."""
        done = sum(job.future.done() for job in self._jobs.values())
        return f"{self.store.signature()}-{done}"

    def close(self) -> None:
        """Close both connections."""
        self._summariser.close()
        self.store.close()


class StoreWorker:
    """Runs functions of the Reader on its one thread, from async code."""

    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparring-view")
        self._reader: Reader = self._pool.submit(Reader, path).result()

    async def call(self, fn: Callable[[Reader], T]) -> T:
        """``fn(reader)`` on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self._reader)

    async def summaries(self, run_ids: list[str], wait_s: float) -> None:
        """Start the summaries of these runs and, when they are small enough to be done
        soon (WAIT_AT_MOST attempts), wait up to ``wait_s`` seconds for them: a small run's
        page comes with its charts, and a large one's answers at once and fills in."""

        def start(reader: Reader) -> tuple[list[Future[tuple[ScanSummary, float]]], int]:
            runs = [reader.store.get_run(run_id) for run_id in run_ids]
            size = sum(reader.store.run_signature(run.id)[0] for run in runs)
            return [reader.summary_job(run) for run in runs], size

        started, size = await self.call(start)
        jobs = [asyncio.wrap_future(job) for job in started]
        for job in jobs:  # its failure is shown by the page; here it is only awaited
            job.add_done_callback(lambda done: done.cancelled() or done.exception())
        if size <= WAIT_AT_MOST:
            await asyncio.wait(jobs, timeout=wait_s)

    def close(self) -> None:
        """Close the store and stop the threads."""
        self._pool.submit(self._reader.close).result()
        self._pool.shutdown()
