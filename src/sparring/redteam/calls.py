"""Model calls of many concurrent episodes, batched into engine phases.

Each episode (one method on one behavior) is written as plain sequential code that awaits
its attacker and target calls one step at a time, since every step depends on the reply
before it. ``Calls`` runs all episodes at once and, whenever every one of them is waiting
for a call, sends the waiting calls through the engine as one phase (the attacker's, then
the target's), so the models see batches as large as the campaign allows.

A call is an ``AttemptSpec`` whose key is a hash of its content: the messages (which hold
what the parent step produced) and the run seed, behavior, method, stream and step in its
meta and sampling seed. A call already stored, by this process or a killed one, is answered
from the store without reaching a model; a resumed campaign therefore replays its finished
steps and continues with the first missing one. Batching never changes a result: each
episode sees the same replies whichever calls share its phase.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, TypeVar

from sparring.engine import Engine, Executor
from sparring.engine.executor import TargetExecutor
from sparring.errors import StageStopped
from sparring.types import AttemptResult, AttemptSpec

T = TypeVar("T")


class _Keeping:
    """An executor that keeps every result it hands the engine, by attempt key, so the
    campaign reads a phase's results without reading the store back."""

    def __init__(self, inner: Executor, kept: dict[str, AttemptResult]) -> None:
        self.inner = inner
        self.kept = kept

    async def __call__(self, spec: AttemptSpec) -> AttemptResult:
        result = await self.inner(spec)
        self.kept[spec.key] = result
        return result


class _KeepingStaged(_Keeping):
    """``_Keeping`` for a staged target executor: the results kept are the judged ones
    (a failed conversation is never judged, so it is kept as it comes back)."""

    def __init__(self, inner: TargetExecutor, kept: dict[str, AttemptResult]) -> None:
        super().__init__(inner, kept)
        self.staged = inner

    async def converse(self, spec: AttemptSpec) -> AttemptResult:
        result = await self.staged.converse(spec)
        if result.error is not None:
            self.kept[spec.key] = result
        return result

    async def judge_batch(self, results: Sequence[AttemptResult]) -> list[AttemptResult]:
        judged = await self.staged.judge_batch(results)
        for result in judged:
            self.kept[result.spec.key] = result
        return judged


class Calls:
    """The attacker and target calls of a campaign, answered in batched engine phases.

    ``stored`` holds the run's attempts already in the store, by key. Episodes run under
    ``run``; inside one, ``parallel`` runs sub-steps (streams, branches) side by side.
    A phase the engine stops early (budget, Ctrl-C) raises StageStopped out of ``run``.
    """

    def __init__(
        self,
        engine: Engine,
        attacker: Executor,
        target: TargetExecutor,
        stored: dict[str, AttemptResult],
    ) -> None:
        self.engine = engine
        self.results = stored
        self._attacker = _Keeping(attacker, stored)
        self._target = _KeepingStaged(target, stored)
        self._waiting: list[tuple[str, AttemptSpec, asyncio.Future[AttemptResult]]] = []
        self._live = 0
        """Episodes and sub-steps that are running, not waiting for a call or for their
        own sub-steps: a phase starts when this equals the calls waiting."""
        self._wake = asyncio.Event()

    async def attacker(self, spec: AttemptSpec) -> AttemptResult:
        """The attacker's reply to ``spec`` (unjudged)."""
        return await self._call("attacker", spec)

    async def target(self, spec: AttemptSpec) -> AttemptResult:
        """The target's reply to ``spec``, judged by the run's judge."""
        return await self._call("target", spec)

    async def _call(self, role: str, spec: AttemptSpec) -> AttemptResult:
        future: asyncio.Future[AttemptResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((role, spec, future))
        self._check()
        return await future

    async def parallel(self, steps: Sequence[Awaitable[T]]) -> list[T]:
        """Run ``steps`` side by side and return their results in order. The caller stops
        counting as running until the last of them ends, so phases wait for all of them."""
        if not steps:
            return []
        self._live += len(steps) - 1
        remaining = len(steps)

        async def step(awaitable: Awaitable[T]) -> T:
            nonlocal remaining
            try:
                return await awaitable
            finally:
                remaining -= 1
                self._live -= 1 if remaining else 0  # the last one hands over to the caller
                self._check()

        results: list[T] = []
        for outcome in await asyncio.gather(*(step(s) for s in steps), return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
            results.append(outcome)
        return results

    async def run(self, episodes: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
        """Run ``episodes`` to the end, batching their calls; returns their results in
        order. An exception in one (or a phase stopped early) cancels the others and is
        raised once they are gone."""
        self._live = len(episodes)
        tasks = [asyncio.create_task(self._episode(e)) for e in episodes]
        try:
            while self._live > 0:
                await self._wake.wait()
                self._wake.clear()
                for task in tasks:
                    if task.done() and (error := task.exception()) is not None:
                        raise error
                if self._live > 0 and len(self._waiting) == self._live:
                    await self._phase()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return [t.result() for t in tasks]

    async def _episode(self, episode: Coroutine[Any, Any, T]) -> T:
        try:
            return await episode
        finally:
            self._live -= 1
            self._check()

    def _check(self) -> None:
        """Wake the driver when every running step waits for a call, or none runs."""
        if len(self._waiting) >= self._live:
            self._wake.set()

    async def _phase(self) -> None:
        """Answer every waiting call: the attacker's first, then the target's."""
        waiting, self._waiting = self._waiting, []
        for role, executor in (("attacker", self._attacker), ("target", self._target)):
            specs = [spec for r, spec, _ in waiting if r == role]
            missing = [spec for spec in specs if spec.key not in self.results]
            if missing:
                outcome = await self.engine.run(missing, executor, role=role, last=False)
                if outcome.status != "finished":
                    raise StageStopped(outcome.status, self.engine.run_id)
        for _, spec, future in waiting:
            future.set_result(self.results[spec.key])
