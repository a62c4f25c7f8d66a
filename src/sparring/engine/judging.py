"""The judging stage: finished conversations are scored in batches, off the request path.

A worker hands its result over and goes back to the plan at once, so its request slot is
free while the judge works; the stage takes everything waiting (up to a batch) in one judge
call, which is where a batching judge gains (the embedded judge encodes a batch several
times faster per item than one text at a time; an LLM judge sends a batch at once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from sparring.errors import SparringError
from sparring.types import AttemptResult, Completion

logger = logging.getLogger(__name__)

JudgeBatch = Callable[[Sequence[AttemptResult]], Awaitable[list[AttemptResult]]]
"""Gives results from a conversation their verdicts, in order."""

BATCHES_IN_FLIGHT = 2
"""Judge calls running at once: while one batch's verdicts are assembled and stored, the
next is already being encoded (or sent to an LLM judge)."""


class JudgingStage:
    """A queue of unjudged results and the task that judges them, a batch per judge call.

    ``put`` waits while ``max_batch`` results are waiting already, so a judge slower than
    the target holds the workers back instead of piling up work that an interruption would
    lose. Each judged result goes to ``deliver``, the write buffer. When judging a batch
    raises (a bug), its results are judged one at a time, and those that still raise are
    delivered as error results naming the exception, counted by ``exceptions``; a
    SparringError ends ``run`` with it. ``close`` says nothing more will
    come: ``run`` returns once every result put has been delivered.
    """

    def __init__(
        self,
        judge_batch: JudgeBatch,
        deliver: Callable[[AttemptResult], None],
        *,
        max_batch: int,
        in_flight: int = BATCHES_IN_FLIGHT,
    ) -> None:
        self.judge_batch = judge_batch
        self.deliver = deliver
        self.max_batch = max_batch
        """Most results in one judge call, and most waiting for one."""
        self.in_flight = in_flight
        """Most judge calls running at once."""
        self.exceptions = 0
        """Results delivered as errors because judging their batch raised."""
        self._waiting: list[AttemptResult] = []
        self._changed = asyncio.Event()
        """Set when results arrive, a judge call ends, or the stage is closed."""
        self._room = asyncio.Event()
        self._closed = False

    async def put(self, result: AttemptResult) -> None:
        """Queue ``result`` for judging; waits while the queue is full."""
        while len(self._waiting) >= self.max_batch:
            self._room.clear()
            await self._room.wait()
        self._waiting.append(result)
        self._changed.set()

    def close(self) -> None:
        """No more results will be put; ``run`` ends when all are delivered."""
        self._closed = True
        self._changed.set()

    async def run(self) -> None:
        """Judge batches until closed and empty. Raises the SparringError of a judge; a
        cancellation cancels the judge calls running."""
        running: set[asyncio.Task[None]] = set()
        try:
            while self._waiting or running or not self._closed:
                if self._waiting and len(running) < self.in_flight:
                    batch = self._waiting[: self.max_batch]
                    del self._waiting[: self.max_batch]
                    self._room.set()
                    running.add(asyncio.create_task(self._judge(batch)))
                    continue
                self._changed.clear()
                await self._changed.wait()
                for task in [t for t in running if t.done()]:
                    running.discard(task)
                    task.result()  # a SparringError ends the stage
        finally:
            for task in running:
                task.cancel()

    async def _judge(self, batch: list[AttemptResult]) -> None:
        try:
            for result in await self._verdicts(batch):
                self.deliver(result)
        finally:
            self._changed.set()

    async def _verdicts(self, batch: list[AttemptResult]) -> list[AttemptResult]:
        try:
            judged = await self.judge_batch(batch)
            if len(judged) != len(batch) or any(
                a.spec is not b.spec and a.spec != b.spec
                for a, b in zip(judged, batch, strict=True)
            ):
                raise RuntimeError("judging returned the results of different attempts")
            return judged
        except SparringError:
            raise
        except Exception as err:
            if len(batch) > 1:  # find the results that raise: the others are judged
                return [judged for one in batch for judged in await self._verdicts([one])]
            kind = type(err).__name__
            logger.warning("judging a batch of %d raised %s; stored as errors", len(batch), kind)
            self.exceptions += len(batch)
            failure = Completion.failure(f"executor raised {kind}: {err}")
            return [AttemptResult(spec=r.spec, completions=(failure,)) for r in batch]
