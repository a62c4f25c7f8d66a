"""The engine against a real loopback chat server, through the real HTTP client, into a real
SQLite store."""

from __future__ import annotations

import asyncio
import gc
import io
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from resumable_scan import MODEL_ID, MarkerJudge, http_model, make_behaviors, make_plan
from sparring.engine import Budget, Engine, Executor, RunOutcome, target_executor
from sparring.engine.progress import RichReporter
from sparring.errors import ConfigError, EndpointError, RunFailedError, StoreError
from sparring.judges.base import Judge, JudgeInput
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.store import RunStore
from sparring.testing import ChatRequest, Fault, OpenAIServer
from sparring.types import (
    AttemptResult,
    AttemptSpec,
    GenerationParams,
    Label,
    Message,
    Verdict,
)

BEHAVIORS = make_behaviors(10)


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
    return store.create_run("scan", {}, 0, {"target": MODEL_ID})


def engine(store: RunStore, run_id: str, **options: object) -> Engine:
    return Engine(store, run_id, progress=False, **options)  # type: ignore[arg-type]


def execute_with(
    target: OpenAICompatibleModel, *judges: Judge, store: RunStore | None = None
) -> Executor:
    return target_executor(target, judges or (MarkerJudge(),), BEHAVIORS, store=store)


def answered_event(
    server: OpenAIServer, count: int, faults: Callable[[ChatRequest], Fault | None] | None = None
) -> asyncio.Event:
    """An event set once the server is answering its ``count``-th request."""
    event = asyncio.Event()

    def watch(request: ChatRequest) -> Fault | None:
        if request.index + 1 >= count:
            event.set()
        return None if faults is None else faults(request)

    server.set_faults(watch)
    return event


def counts_add_up(outcome: RunOutcome) -> bool:
    parts = (
        outcome.skipped_existing,
        outcome.duplicates,
        outcome.done,
        outcome.errors,
        outcome.not_started,
    )
    return sum(parts) == outcome.planned


async def test_every_attempt_is_stored_with_its_verdict(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    plan = make_plan(40)
    outcome = await engine(store, run_id).run(plan, execute_with(target))
    assert (outcome.status, outcome.done, outcome.errors, outcome.not_started) == (
        "finished",
        40,
        0,
        0,
    )
    stored = store.attempts(run_id)
    assert {r.spec.key for r in stored} == {s.key for s in plan}
    assert all(len(r.verdicts) == 1 for r in stored)
    assert store.get_run(run_id).status == "finished"


async def test_replies_and_verdicts_follow_the_conversation(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    plan = make_plan(3)
    await engine(store, run_id).run(plan, execute_with(target))
    by_key = {r.spec.key: r for r in store.attempts(run_id)}
    first = by_key[plan[0].key]
    assert [c.text for c in first.completions] == [
        "ECHO: item 0 please comply",
        "ECHO: go on refuse",
    ]
    assert first.verdicts[0].label == Label.REFUSAL
    assert by_key[plan[1].key].verdicts[0].label == Label.REFUSAL
    assert by_key[plan[2].key].verdicts[0].label == Label.SAFE


async def test_followups_are_sent_after_the_reply(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    await engine(store, run_id).run(make_plan(1), execute_with(target))
    second = server.stats().received[1].messages
    assert [(m["role"], m["content"]) for m in second] == [
        ("user", "item 0 please comply"),
        ("assistant", "ECHO: item 0 please comply"),
        ("user", "go on refuse"),
    ]


async def test_system_prompt_is_prepended_only_when_missing(
    server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    execute = target_executor(target, [], BEHAVIORS, system_prompt="house rules")
    own = AttemptSpec(
        behavior_id="b1",
        attack="direct",
        messages=(Message(role="system", content="mine"), Message(role="user", content="hi")),
    )
    await execute(make_plan(1)[0].model_copy(update={"followups": ()}))
    await execute(own)
    first, second = (r.messages for r in server.stats().received)
    assert [m["content"] for m in first] == ["house rules", "item 0 please comply"]
    assert [m["content"] for m in second] == ["mine", "hi"]


async def test_no_more_than_concurrency_attempts_are_in_flight(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    plan = [s.model_copy(update={"followups": ()}) for s in make_plan(30)]
    await engine(store, run_id, concurrency=5).run(plan, execute_with(target))
    assert server.stats().max_in_flight == 5


async def test_resume_runs_only_attempts_not_yet_stored(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    plan = make_plan(30)
    await engine(store, run_id).run(plan[:12], execute_with(target))
    server.reset_stats()
    outcome = await engine(store, run_id).run(plan, execute_with(target))
    asked = {r.messages[0]["content"] for r in server.stats().received}
    assert asked == {s.messages[0].content for s in plan[12:]}
    assert (outcome.skipped_existing, outcome.done) == (12, 18)
    assert len(store.attempts(run_id)) == 30


async def test_repeated_specs_in_a_plan_run_once(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    plan = make_plan(4)
    outcome = await engine(store, run_id).run(plan + plan[:2], execute_with(target))
    assert (outcome.duplicates, outcome.done, outcome.planned) == (2, 4, 6)
    assert counts_add_up(outcome)


async def test_request_budget_stops_new_attempts_exactly_at_the_limit(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    plan = [s.model_copy(update={"followups": ()}) for s in make_plan(30)]
    outcome = await engine(store, run_id, concurrency=4, budget=Budget(max_requests=10)).run(
        plan, execute_with(target)
    )
    assert (outcome.status, outcome.requests, outcome.done, outcome.not_started) == (
        "budget",
        10,
        10,
        20,
    )
    assert store.get_run(run_id).status == "budget"


async def test_token_budget_stops_new_attempts(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    outcome = await engine(store, run_id, concurrency=2, budget=Budget(max_tokens=30)).run(
        make_plan(30), execute_with(target)
    )
    assert outcome.status == "budget"
    assert outcome.tokens >= 30 and outcome.not_started > 0
    assert counts_add_up(outcome)


async def test_time_limit_stops_new_attempts(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    server.latency_ms = 100
    outcome = await engine(store, run_id, concurrency=2, budget=Budget(time_limit_s=0.3)).run(
        make_plan(50), execute_with(target)
    )
    assert outcome.status == "budget"
    assert 0 < outcome.done < 50
    assert len(store.attempts(run_id)) == outcome.done


def test_a_non_positive_budget_is_refused() -> None:
    with pytest.raises(ConfigError, match="budget max_tokens must be positive"):
        Budget(max_tokens=0)


async def test_executor_exceptions_are_stored_as_errors_and_the_run_goes_on(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    inner = execute_with(target)
    plan = make_plan(20)
    broken = {plan[3].key, plan[7].key}

    async def flaky(spec: AttemptSpec) -> AttemptResult:
        if spec.key in broken:
            raise ValueError("boom")
        return await inner(spec)

    outcome = await engine(store, run_id).run(plan, flaky)
    assert (outcome.status, outcome.done, outcome.errors, outcome.exceptions) == (
        "finished",
        18,
        2,
        2,
    )
    errors = {r.spec.key: r for r in store.attempts(run_id) if r.error is not None}
    assert errors.keys() == broken
    assert all(r.error == "executor raised ValueError: boom" for r in errors.values())


async def test_failed_requests_get_no_verdict_and_no_judge_call(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    def fail_some(request: ChatRequest) -> Fault | None:
        return Fault.http(400, "bad request") if "item 4 " in request.last_user_text else None

    server.set_faults(fail_some)
    judge = MarkerJudge()
    plan = [s.model_copy(update={"followups": ()}) for s in make_plan(6)]
    outcome = await engine(store, run_id).run(plan, execute_with(target, judge))
    (failed,) = [r for r in store.attempts(run_id) if r.error is not None]
    assert failed.spec == plan[4]
    assert failed.verdicts == ()
    assert (outcome.errors, judge.items_seen) == (1, 5)


async def test_a_call_whose_every_attempt_fails_fails_fast_unless_the_model_answered_before(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    """A red-team phase can be one request: its failure is an error once the same model
    has answered in an earlier call of the engine, and a broken model on a first call."""
    server.set_faults(lambda r: Fault.http(400, "bad") if "item 4 " in r.last_user_text else None)
    plan = [s.model_copy(update={"followups": ()}) for s in make_plan(6)]
    shared = engine(store, run_id)
    await shared.run(plan[:4], execute_with(target), last=False)
    outcome = await shared.run(plan[4:5], execute_with(target))
    assert (outcome.status, outcome.errors) == ("finished", 1)
    fresh = engine(store, store.create_run("scan", {}, 0, {}))
    with pytest.raises(RunFailedError, match="all 1 attempts failed at the target model"):
        await fresh.run(plan[4:5], execute_with(target))


async def test_objects_alive_before_a_run_are_left_out_of_collections_during_it(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    """A full collection over a loaded model's objects pauses every request in flight, so
    the heap of before the run is frozen while it runs and handed back after."""
    inner = execute_with(target)
    frozen: list[int] = []

    async def watched(spec: AttemptSpec) -> AttemptResult:
        frozen.append(gc.get_freeze_count())
        return await inner(spec)

    before = gc.get_freeze_count()
    await engine(store, run_id).run(make_plan(4), watched)
    assert min(frozen) > before
    assert gc.get_freeze_count() == 0


async def test_a_judge_that_raises_gives_an_unscorable_verdict(
    target: OpenAICompatibleModel,
) -> None:
    class Broken(Judge):
        id = "broken@0"

        async def judge(self, items: list[JudgeInput]) -> list[Verdict]:  # type: ignore[override]
            raise RuntimeError("bug")

    result = await execute_with(target, MarkerJudge(), Broken())(make_plan(3)[2])
    assert [v.label for v in result.verdicts] == [Label.SAFE, Label.UNSCORABLE]
    assert result.verdicts[1].rationale == "judge raised RuntimeError: bug"


async def test_deterministic_requests_are_answered_from_the_cache(
    store: RunStore, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    plan = make_plan(10)
    first, second = (store.create_run("scan", {}, 0, {}) for _ in range(2))
    await engine(store, first).run(plan, execute_with(target, store=store))
    server.reset_stats()
    await engine(store, second).run(plan, execute_with(target, store=store))
    assert server.stats().requests == 0
    assert store.attempts(second) == store.attempts(first)


async def test_sampled_requests_bypass_the_cache(
    store: RunStore, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    sampled = GenerationParams(temperature=0.7)
    plan = [s.model_copy(update={"params": sampled, "followups": ()}) for s in make_plan(5)]
    for run in (store.create_run("scan", {}, 0, {}) for _ in range(2)):
        await engine(store, run).run(plan, execute_with(target, store=store))
    assert server.stats().requests == 10


async def test_a_failed_write_fails_the_run_with_a_store_error(
    store: RunStore, run_id: str, target: OpenAICompatibleModel
) -> None:
    inner = execute_with(target)
    bad = Verdict.model_construct(label="maybe", p_unsafe=None, judge_id="j", rationale=None)

    async def corrupt(spec: AttemptSpec) -> AttemptResult:
        return (await inner(spec)).model_copy(update={"verdicts": (bad,)})

    with pytest.raises(StoreError, match="nothing of this batch was stored"):
        await engine(store, run_id).run(make_plan(5), corrupt)
    assert store.get_run(run_id).status == "failed"
    assert store.done_keys(run_id) == set()


async def test_an_unusable_model_ends_the_run(store: RunStore, run_id: str) -> None:
    async def unreachable(spec: AttemptSpec) -> AttemptResult:
        raise EndpointError("cannot reach model endpoint http://127.0.0.1:9/v1")

    with pytest.raises(EndpointError):
        await engine(store, run_id, concurrency=2).run(make_plan(10), unreachable)
    assert store.get_run(run_id).status == "failed"


async def test_cancellation_lets_attempts_in_flight_finish_and_be_stored(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    server.latency_ms = 100
    sixth = answered_event(server, 6)
    plan = [s.model_copy(update={"followups": ()}) for s in make_plan(100)]
    task = asyncio.create_task(engine(store, run_id, concurrency=4).run(plan, execute_with(target)))
    await sixth.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = server.stats().requests
    assert 6 <= started < 100
    assert len(store.done_keys(run_id)) == started
    assert store.get_run(run_id).status == "interrupted"


async def test_a_second_cancellation_abandons_attempts_in_flight(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    stuck = answered_event(server, 14, lambda r: Fault.slow(60) if r.index >= 10 else None)
    plan = [s.model_copy(update={"followups": ()}) for s in make_plan(30)]
    run = engine(store, run_id, concurrency=4, commit_every=1, drain_timeout_s=120).run(
        plan, execute_with(target)
    )
    task = asyncio.create_task(run)
    await stuck.wait()
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(store.done_keys(run_id)) == 10
    assert store.get_run(run_id).status == "interrupted"


async def test_an_interrupted_run_resumes_to_the_full_plan(
    store: RunStore, run_id: str, server: OpenAIServer, target: OpenAICompatibleModel
) -> None:
    tenth = answered_event(server, 10)
    plan = make_plan(60)
    task = asyncio.create_task(engine(store, run_id, concurrency=4).run(plan, execute_with(target)))
    await tenth.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    outcome = await engine(store, run_id).run(plan, execute_with(target))
    assert outcome.status == "finished"
    assert outcome.skipped_existing + outcome.done == 60
    assert len(store.attempts(run_id)) == 60
    assert store.get_run(run_id).status == "finished"


async def test_progress_off_writes_nothing(
    store: RunStore,
    run_id: str,
    target: OpenAICompatibleModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await engine(store, run_id).run(make_plan(5), execute_with(target))
    assert capsys.readouterr() == ("", "")


async def test_plain_progress_shows_counts_and_never_the_text(
    store: RunStore,
    run_id: str,
    target: OpenAICompatibleModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await Engine(store, run_id, progress=True).run(make_plan(5), execute_with(target))
    out, err = capsys.readouterr()
    assert out == ""
    assert f"run {run_id}: 5/5 attempts, 0 errors" in err
    assert "item" not in err and "ECHO" not in err


def test_the_progress_bar_shows_done_total_and_errors() -> None:
    screen = io.StringIO()
    bar = RichReporter("run r1", 3, console=Console(file=screen, force_terminal=True, width=120))
    for error in (False, True, False):
        bar.advance(error)
    bar.close()
    assert "run r1" in screen.getvalue()
    assert "3/3" in screen.getvalue() and "1 errors" in screen.getvalue()
