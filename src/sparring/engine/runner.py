"""The engine: runs a plan of attempts with bounded concurrency, batched store writes,
budgets, graceful interruption and resume."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence

from sparring.engine.budget import Budget, BudgetMeter
from sparring.engine.executor import Executor, StagedExecutor
from sparring.engine.heap import frozen_heap
from sparring.engine.judging import JudgingStage
from sparring.engine.outcome import RunOutcome
from sparring.engine.progress import Reporter, make_reporter
from sparring.engine.signals import stop_signals_call
from sparring.errors import ConfigError, RunFailedError, SparringError, StoreError
from sparring.store import RunStatus, Store
from sparring.types import AttemptResult, AttemptSpec, Completion

logger = logging.getLogger(__name__)


class Engine:
    """Runs a plan of AttemptSpecs for one stored run.

    At most ``concurrency`` attempts are in flight. With a ``StagedExecutor`` (such as
    ``target_executor``'s) an attempt leaves its slot when the target has answered, and a
    judging stage scores finished conversations in batches of up to ``judge_batch``; an
    attempt is stored once judged, whole (completions and verdicts) or not at all. Results
    are written in batches, when ``commit_every`` results are waiting or every
    ``commit_interval_s`` seconds, and at the end; a crash loses at most the unwritten batch,
    which a resume redoes. Attempts already stored are skipped, so calling run() again with
    the same plan resumes it.

    The ``budget`` covers every run() call of one Engine: a scan's helper calls and its
    target attempts are two calls that spend one budget.

    Stopping: when the ``budget`` is spent, no attempt is started and those in flight
    finish (status ``budget``). A first Ctrl-C or SIGTERM (caught only when run() is on the
    main thread) or cancellation of run() stops scheduling and waits up to
    ``drain_timeout_s`` seconds for attempts in flight and their judging; a second one
    cancels them (conversations not yet judged are not stored). Either way, finished
    results are written and the run is marked ``interrupted``; run() then returns after a
    signal and re-raises after a cancellation.

    Failing fast: when the first ``fail_after_errors`` attempts of this call all failed at
    the model and none succeeded, the endpoint or model is taken to be broken: no more
    attempts start, the run is marked ``failed`` and RunFailedError names the most common
    error; not so for a ``role`` that answered in an earlier run() call (a red-team phase
    of one failed request). A resume after the fix runs what is missing (a scan also
    deletes its failed attempts first, ``Store.forget_errors``, so they run again).

    ``progress`` shows a bar (or plain lines when stderr is not a terminal) with counts,
    rate and ETA, never prompts or responses.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        concurrency: int = 16,
        judge_batch: int = 128,
        budget: Budget | None = None,
        progress: bool = True,
        commit_every: int = 64,
        commit_interval_s: float = 0.5,
        drain_timeout_s: float = 30.0,
        fail_after_errors: int | None = 32,
    ) -> None:
        if min(concurrency, judge_batch, commit_every) < 1:
            raise ConfigError(
                "engine concurrency, judge_batch and commit_every must be at least 1, got "
                f"{concurrency}, {judge_batch} and {commit_every}"
            )
        if commit_interval_s <= 0 or drain_timeout_s < 0:
            raise ConfigError(
                "engine commit_interval_s must be positive and drain_timeout_s not negative, "
                f"got {commit_interval_s} and {drain_timeout_s}"
            )
        self.store = store
        self.run_id = run_id
        self.concurrency = concurrency
        self.judge_batch = judge_batch
        """Most finished conversations scored in one judge call."""
        self.budget = budget
        self.progress = progress
        self.commit_every = commit_every
        self.commit_interval_s = commit_interval_s
        self.drain_timeout_s = drain_timeout_s
        self.fail_after_errors = fail_after_errors
        self.meter = BudgetMeter(budget)
        """What the run() calls of this Engine have spent together."""
        self.working_roles: set[str] = set()  # roles whose model answered in a run() call

    async def run(
        self,
        plan: Sequence[AttemptSpec],
        execute: Executor,
        *,
        role: str = "target",
        last: bool = True,
    ) -> RunOutcome:
        """Run every attempt of ``plan`` not yet stored; see the class docstring.

        ``role`` names the model the executor calls in the fail-fast message. A call that
        is not the ``last`` phase of the run (a scan's helper calls) leaves a run that
        finished its plan ``running``.
        """
        started = time.monotonic()
        self.store.get_run(self.run_id)
        pending, skipped, duplicates = _select(plan, self.store.done_keys(self.run_id))
        self.store.mark_running(self.run_id)
        session = _Session(self, pending, execute, role, last)
        with frozen_heap():
            cancelled = await session.run_workers()
        status = session.finish()
        if (failure := session.fatal or session.crash) is not None:
            raise failure
        if cancelled:
            raise asyncio.CancelledError
        return RunOutcome(
            status=status,
            planned=len(plan),
            skipped_existing=skipped,
            duplicates=duplicates,
            done=session.done,
            errors=session.errors,
            exceptions=session.exceptions + (session.stage.exceptions if session.stage else 0),
            not_started=len(pending) - session.done - session.errors,
            elapsed_s=time.monotonic() - started,
            requests=self.meter.requests - session.requests_before,
            tokens=self.meter.tokens - session.tokens_before,
        )


class _Session:
    """The state of one Engine.run call: workers, write buffer, counters, stop reason."""

    def __init__(
        self,
        engine: Engine,
        pending: list[AttemptSpec],
        execute: Executor,
        role: str,
        last: bool,
    ) -> None:
        self.engine = engine
        self.role = role
        self.last = last
        self.store = engine.store
        self.meter = engine.meter
        self.requests_before = engine.meter.requests
        """Requests spent by earlier run() calls, so the outcome counts this call's."""
        self.tokens_before = engine.meter.tokens
        self.reporter: Reporter = make_reporter(
            engine.progress, f"run {engine.run_id}", len(pending)
        )
        self.queue: Iterator[AttemptSpec] = iter(pending)
        self.buffer: list[AttemptResult] = []
        self.workers: set[asyncio.Task[None]] = set()
        self.stop_reason: RunStatus | None = None
        self.fatal: SparringError | None = None
        self.crash: BaseException | None = None
        self.interrupts = 0
        self.drain_timer: asyncio.TimerHandle | None = None
        self.done = 0
        self.errors = 0
        self.exceptions = 0
        self.model_errors: Counter[str] | None = None if role in engine.working_roles else Counter()
        """Failed attempts' errors while none has succeeded yet; None once one has."""
        self.n_workers = min(engine.concurrency, len(pending))
        """Workers started: no more than there are attempts to run."""
        self.live_workers = self.n_workers
        self.converse: Executor = execute
        """What a worker awaits: the conversation alone when the executor is staged."""
        self.stage: JudgingStage | None = None
        """Where a staged executor's conversations are judged; None for a plain one."""
        if isinstance(execute, StagedExecutor):
            self.converse = execute.converse
            self.stage = JudgingStage(
                execute.judge_batch, self.deliver, max_batch=engine.judge_batch
            )
        self.stage_task: asyncio.Task[None] | None = None

    async def run_workers(self) -> bool:
        """Run until the workers end; True when run() itself was cancelled."""
        if self.n_workers == 0:
            return False
        self.workers = {asyncio.create_task(self.worker()) for _ in range(self.n_workers)}
        tasks = set(self.workers)
        if self.stage is not None:
            self.stage_task = asyncio.create_task(self.judge(self.stage))
            tasks.add(self.stage_task)
        ticker = asyncio.create_task(self.tick())
        cancelled = False
        try:
            with stop_signals_call(self.interrupt):
                while not all(t.done() for t in tasks):
                    try:
                        await asyncio.wait(tasks)
                    except asyncio.CancelledError:
                        cancelled = True
                        self.interrupt()
        finally:
            ticker.cancel()
            if self.drain_timer is not None:
                self.drain_timer.cancel()
        # A worker that raised is a bug in the engine itself: record the run as failed.
        crashed = (t.exception() for t in tasks if not t.cancelled())
        self.crash = next((exc for exc in crashed if exc is not None), None)
        if self.crash is not None:
            self.stop_reason = "failed"
        return cancelled

    def finish(self) -> RunStatus:
        """Write what is left, record how the run ended, and close the progress display.

        A run that ended with every attempt of this call failed (fewer than
        ``fail_after_errors`` of them) has failed too."""
        self.flush()
        self.reporter.close()
        if self.stop_reason is None and self.model_errors and self.fatal is None:
            self.fatal = self.dead_model_error()
            self.stop_reason = "failed"
        status: RunStatus = self.stop_reason or "finished"
        if status != "finished" or self.last:
            with contextlib.suppress(StoreError):
                self.store.finish_run(self.engine.run_id, status)
        return status

    async def worker(self) -> None:
        try:
            await self.work()
        finally:
            self.live_workers -= 1
            if self.live_workers == 0 and self.stage is not None:
                self.stage.close()

    async def work(self) -> None:
        while self.stop_reason is None:
            spec = next(self.queue, None)
            if spec is None:
                return
            turns = 1 + len(spec.followups)
            if not self.meter.try_reserve(turns):
                self.stop("budget")
                return
            try:
                result, raised = await self.run_one(spec)
            except SparringError as err:
                self.fail(err)
                return
            requests = 0 if raised else len(result.completions)
            tokens = sum(c.prompt_tokens + c.completion_tokens for c in result.completions)
            self.meter.settle(turns, requests, tokens)
            self.exceptions += raised
            self.watch_for_dead_model(result)
            if self.stage is not None and result.error is None:
                await self.stage.put(result)
            else:
                self.deliver(result)

    async def judge(self, stage: JudgingStage) -> None:
        """Run the judging stage; a judge that cannot work ends the run."""
        try:
            await stage.run()
        except SparringError as err:
            self.fail(err)
        except Exception:
            self.cancel_workers()  # nothing would judge their results: a bug, see crash
            raise

    def deliver(self, result: AttemptResult) -> None:
        """Take a finished (judged) result into the write buffer."""
        self.buffer.append(result)
        self.reporter.advance(result.error is not None)
        if len(self.buffer) >= self.engine.commit_every:
            self.flush()

    async def run_one(self, spec: AttemptSpec) -> tuple[AttemptResult, bool]:
        """The executor's result (unjudged when staged), or one standing for its exception."""
        try:
            result = await self.converse(spec)
            if result.spec != spec:
                raise RuntimeError("the executor returned the result of a different attempt")
        except SparringError:
            raise
        except Exception as err:
            logger.warning(
                "executor raised %s on attempt %s; recorded as an error",
                type(err).__name__,
                spec.key,
            )
            failure = Completion.failure(f"executor raised {type(err).__name__}: {err}")
            return AttemptResult(spec=spec, completions=(failure,)), True
        return result, False

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(self.engine.commit_interval_s)
            self.flush()
            self.reporter.tick()

    def flush(self) -> None:
        """Write the buffered results in one transaction; a failed write ends the run."""
        if not self.buffer or self.fatal is not None:
            return
        batch, self.buffer = self.buffer, []
        try:
            self.store.record_attempts(self.engine.run_id, batch)
        except StoreError as err:
            self.fail(err)
            return
        errors = sum(result.error is not None for result in batch)
        self.errors += errors
        self.done += len(batch) - errors

    def watch_for_dead_model(self, result: AttemptResult) -> None:
        """Fail the run when the first ``fail_after_errors`` results all failed."""
        limit = self.engine.fail_after_errors
        if limit is None or self.model_errors is None:
            return
        if result.error is None:
            self.model_errors = None  # the model works: later failures are its own business
            self.engine.working_roles.add(self.role)
            return
        self.model_errors[_error_kind(result.error)] += 1
        if self.model_errors.total() >= limit:
            self.fail(self.dead_model_error())

    def dead_model_error(self) -> RunFailedError:
        """The error for a run whose every result so far failed, naming the commonest."""
        errors = self.model_errors or Counter({"unknown": 0})
        (kind, count), *_ = errors.most_common(1)
        total = errors.total()
        return RunFailedError(
            f"run {self.engine.run_id}: all {total} attempts failed at the {self.role} model "
            f"({count} of them: {kind}); nothing was judged. Fix the {self.role} or its "
            "endpoint, then resume: failed attempts run again",
            self.engine.run_id,
        )

    def stop(self, reason: RunStatus) -> None:
        """Start no more attempts; the first reason given is the one recorded."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def fail(self, err: SparringError) -> None:
        """End the run at once: nothing more can work or be stored."""
        if self.fatal is None:
            self.fatal = err
        self.stop_reason = "failed"
        self.cancel_workers()

    def interrupt(self) -> None:
        """First call: stop scheduling and give in-flight attempts a bounded wait; then
        cancel them."""
        self.interrupts += 1
        self.stop("interrupted")
        if self.interrupts == 1:
            loop = asyncio.get_running_loop()
            self.drain_timer = loop.call_later(self.engine.drain_timeout_s, self.cancel_workers)
        else:
            self.cancel_workers()

    def cancel_workers(self) -> None:
        """Cancel the workers and the judging stage."""
        for task in self.workers:
            task.cancel()
        if self.stage_task is not None:
            self.stage_task.cancel()


def _error_kind(error: str) -> str:
    """An error message without its digits and cut short, so that failures of one kind
    (HTTP 500 on different attempts, timeouts after different waits) count together."""
    return re.sub(r"\d+(\.\d+)?", "N", error)[:120]


def _select(plan: Sequence[AttemptSpec], stored: set[str]) -> tuple[list[AttemptSpec], int, int]:
    """The specs to run, and how many were skipped as stored and as repeated keys."""
    pending: list[AttemptSpec] = []
    seen: set[str] = set()
    skipped = duplicates = 0
    for spec in plan:
        key = spec.key
        if key in stored:
            skipped += 1
        elif key in seen:
            duplicates += 1
        else:
            seen.add(key)
            pending.append(spec)
    return pending, skipped, duplicates
