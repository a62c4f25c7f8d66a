"""Judging off the request path: the engine frees a request slot once the target answered
and scores finished conversations in batches, storing each attempt whole or not at all.
Real loopback server, HTTP client and SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from resumable_scan import MarkerJudge, http_model, make_behaviors, make_plan
from sparring.engine import Engine, target_executor
from sparring.errors import EndpointError
from sparring.judges.base import Judge, JudgeInput
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.store import RunStore
from sparring.testing import OpenAIServer
from sparring.types import AttemptResult, AttemptSpec, Label, Verdict

BEHAVIORS = make_behaviors(10)


class GateJudge(MarkerJudge):
    """A MarkerJudge that records its batch sizes and waits for ``gate`` before each."""

    id = "gate@1"

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.batches: list[int] = []
        self.called = asyncio.Event()

    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        self.batches.append(len(items))
        self.called.set()
        await self.gate.wait()
        return await super().judge(items)


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer(latency_ms=20) as running:
        yield running


@pytest.fixture
async def target(server: OpenAIServer) -> AsyncIterator[OpenAICompatibleModel]:
    async with http_model(server.base_url) as model:
        yield model


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.sqlite") as opened:
        yield opened


@pytest.fixture
def run_id(store: RunStore) -> str:
    return store.create_run("scan", {}, 0, {})


def single_turn(count: int) -> list[AttemptSpec]:
    return [s.model_copy(update={"followups": ()}) for s in make_plan(count)]


async def until(condition: object, timeout_s: float = 10.0) -> None:
    """Wait until ``condition()`` holds, polling every 10 ms."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_requests_go_on_while_the_judge_works(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    judge = GateJudge()
    judge.gate.clear()
    plan = single_turn(40)
    execute = target_executor(target, [judge], BEHAVIORS)
    task = asyncio.create_task(
        Engine(store, run_id, concurrency=4, progress=False).run(plan, execute)
    )
    await until(lambda: server.stats().requests == 40)  # every request made, judge still held
    assert store.done_keys(run_id) == set()
    judge.gate.set()
    outcome = await task
    assert (outcome.status, outcome.done) == ("finished", 40)
    assert all(len(r.verdicts) == 1 for r in store.attempts(run_id))
    assert max(judge.batches) > 1 and sum(judge.batches) == 40


async def test_a_slow_judge_holds_the_workers_back(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    judge = GateJudge()
    judge.gate.clear()
    execute = target_executor(target, [judge], BEHAVIORS)
    engine = Engine(store, run_id, concurrency=2, judge_batch=3, progress=False)
    task = asyncio.create_task(engine.run(single_turn(40), execute))
    await judge.called.wait()
    await asyncio.sleep(0.3)  # time for 30 requests at 2 in flight, were nothing waiting
    # Two batches of 3 being judged, 3 waiting, and 2 workers holding a finished attempt.
    assert server.stats().requests <= 2 * 3 + 3 + 2
    judge.gate.set()
    assert (await task).done == 40


async def test_judges_see_batches_and_each_attempt_gets_its_own_verdict(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    plan = make_plan(30)
    judge = GateJudge()
    await Engine(store, run_id, concurrency=8, progress=False).run(
        plan, target_executor(target, [judge, MarkerJudge()], BEHAVIORS)
    )
    by_key = {r.spec.key: r for r in store.attempts(run_id)}
    for spec in plan:
        gate, marker = by_key[spec.key].verdicts
        assert (gate.judge_id, marker.judge_id) == ("gate@1", "marker@1")
        assert gate.label == marker.label
    assert len(judge.batches) < len(plan)


async def test_only_the_items_that_break_a_judge_are_unscorable(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    class Picky(MarkerJudge):
        id = "picky@1"

        async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
            if any("item 3 " in item.transcript[0].content for item in items):
                raise ValueError("cannot read item 3")
            return await super().judge(items)

    plan = single_turn(12)
    await Engine(store, run_id, concurrency=12, progress=False).run(
        plan, target_executor(target, [Picky()], BEHAVIORS)
    )
    verdicts = {r.spec.key: r.verdicts[0] for r in store.attempts(run_id)}
    broken = verdicts.pop(plan[3].key)
    assert (broken.label, broken.rationale) == (
        Label.UNSCORABLE,
        "judge raised ValueError: cannot read item 3",
    )
    assert all(v.label is not Label.UNSCORABLE for v in verdicts.values())


async def test_a_judge_that_cannot_work_ends_the_run(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    class Unreachable(Judge):
        id = "remote@1"

        async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
            raise EndpointError("cannot reach judge endpoint http://127.0.0.1:9/v1")

    execute = target_executor(target, [Unreachable()], BEHAVIORS)
    with pytest.raises(EndpointError):
        await Engine(store, run_id, concurrency=4, progress=False).run(single_turn(20), execute)
    assert store.get_run(run_id).status == "failed"
    assert store.done_keys(run_id) == set()


async def test_judging_that_raises_makes_only_the_attempts_concerned_errors(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    inner = target_executor(target, [MarkerJudge()], BEHAVIORS)
    plan = single_turn(12)

    class Broken:
        converse = inner.converse

        async def __call__(self, spec: AttemptSpec) -> AttemptResult:
            raise AssertionError("the engine runs the stages apart")

        async def judge_batch(self, results: Sequence[AttemptResult]) -> list[AttemptResult]:
            if any(r.spec == plan[3] for r in results):
                raise RuntimeError("bug")
            return await inner.judge_batch(results)

    outcome = await Engine(store, run_id, concurrency=12, progress=False).run(plan, Broken())
    assert (outcome.status, outcome.done, outcome.errors, outcome.exceptions) == (
        "finished",
        11,
        1,
        1,
    )
    by_key = {r.spec.key: r for r in store.attempts(run_id)}
    assert by_key.pop(plan[3].key).error == "executor raised RuntimeError: bug"
    assert all(len(r.verdicts) == 1 for r in by_key.values())


async def test_an_interruption_waits_for_the_judging_of_answered_attempts(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    judge = GateJudge()
    judge.gate.clear()
    execute = target_executor(target, [judge], BEHAVIORS)
    run = Engine(store, run_id, concurrency=4, progress=False).run(single_turn(100), execute)
    task = asyncio.create_task(run)
    await judge.called.wait()
    task.cancel()
    await asyncio.sleep(0.1)
    judge.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    stored = store.attempts(run_id)
    assert 0 < len(stored) < 100
    assert all(len(r.verdicts) == 1 for r in stored)
    assert store.get_run(run_id).status == "interrupted"


async def test_a_second_interruption_stores_no_attempt_without_its_verdict(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    judge = GateJudge()
    judge.gate.clear()
    plan = single_turn(30)
    execute = target_executor(target, [judge], BEHAVIORS)
    engine = Engine(store, run_id, concurrency=4, commit_every=1, progress=False)
    task = asyncio.create_task(engine.run(plan, execute))
    await until(lambda: server.stats().requests >= 10)
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.done_keys(run_id) == set()  # answered, never judged: not stored
    assert store.get_run(run_id).status == "interrupted"
    outcome = await Engine(store, run_id, progress=False).run(
        plan, target_executor(target, [MarkerJudge()], BEHAVIORS)
    )
    assert (outcome.skipped_existing, outcome.done) == (0, 30)
    assert all(len(r.verdicts) == 1 for r in store.attempts(run_id))
