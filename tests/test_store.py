"""The SQLite run store: what goes in comes back out, exactly once, or not at all."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from sparring.errors import StoreError
from sparring.store import SCHEMA_VERSION, RunStore
from sparring.store.schema import MIGRATIONS
from sparring.types import (
    AttemptResult,
    AttemptSpec,
    Behavior,
    Completion,
    GenerationParams,
    Label,
    Message,
    Verdict,
)


def user(text: str) -> Message:
    return Message(role="user", content=text)


def behavior(n: int) -> Behavior:
    return Behavior(id=f"b{n}", text=f"request {n}", category="cyber", source="unit")


def spec(n: int, followups: tuple[str, ...] = ()) -> AttemptSpec:
    return AttemptSpec(
        behavior_id=f"b{n}",
        attack="direct",
        messages=(Message(role="system", content="be brief"), user(f"prompt {n}")),
        followups=followups,
        sample=n % 3,
        params=GenerationParams(max_tokens=32, seed=n, stop=("###",)),
        meta={"template": f"t{n}", "weight": 0.25, "tags": ["a", "b"]},
    )


def answered(n: int, followups: tuple[str, ...] = ()) -> AttemptResult:
    completions = tuple(
        Completion(
            text=f"reply {n}.{turn}",
            finish_reason="length" if turn else "stop",
            prompt_tokens=10 + turn,
            completion_tokens=5,
            latency_s=0.125 + n / 1000,
        )
        for turn in range(1 + len(followups))
    )
    verdicts = (
        Verdict(label=Label.REFUSAL, p_unsafe=0.1, judge_id="rules@1", rationale="declines"),
        Verdict(label=Label.UNSAFE, p_unsafe=0.875, judge_id="harm@2", p_refusal=0.25),
    )
    return AttemptResult(spec=spec(n, followups), completions=completions, verdicts=verdicts)


def failed(n: int) -> AttemptResult:
    return AttemptResult(spec=spec(n), completions=(Completion.failure("HTTP 500", 0.5),))


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    with RunStore(tmp_path / "runs.sqlite") as opened:
        yield opened


@pytest.fixture
def run_id(store: RunStore) -> str:
    return store.create_run("scan", {"attacks": ["direct"]}, 7, {"target": "builtin/x"})


def test_opening_a_path_in_a_missing_folder_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "runs.sqlite"
    with RunStore(path):
        pass
    assert path.is_file()


def test_store_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_run_round_trips_with_config_seed_models_and_versions(store: RunStore) -> None:
    config = {"attacks": ["direct", "base64"], "samples": 2, "nested": {"k": None}}
    run_id = store.create_run("dart", config, 42, {"target": "builtin/a", "judge": "rules"})
    run = store.get_run(run_id)
    assert (run.id, run.kind, run.status, run.seed) == (run_id, "dart", "running", 42)
    assert run.config == config
    assert run.model_ids == {"target": "builtin/a", "judge": "rules"}
    assert run.versions["sparring"] and run.versions["python"]
    assert "pydantic" in run.versions["packages"]
    assert run.finished_at is None


def test_finish_run_records_status_and_time(store: RunStore, run_id: str) -> None:
    store.finish_run(run_id, "budget")
    run = store.get_run(run_id)
    assert run.status == "budget"
    assert run.finished_at is not None and run.finished_at >= run.created_at


def test_mark_running_reopens_a_finished_run(store: RunStore, run_id: str) -> None:
    store.finish_run(run_id, "interrupted")
    store.mark_running(run_id)
    run = store.get_run(run_id)
    assert (run.status, run.finished_at) == ("running", None)


def test_generated_run_ids_are_dated_short_and_distinct(store: RunStore) -> None:
    ids = [store.create_run("scan", {}, 0, {}) for _ in range(20)]
    assert len(set(ids)) == 20
    assert all(re.fullmatch(r"\d{8}-\d{4}-[0-9a-f]{4}", run_id) for run_id in ids)


def test_list_runs_returns_runs_oldest_first(store: RunStore) -> None:
    ids = [store.create_run("scan", {}, n, {}, run_id=f"run-{n}") for n in range(3)]
    assert [run.id for run in store.list_runs()] == ids


def test_explicit_run_id_that_exists_is_refused(store: RunStore, run_id: str) -> None:
    with pytest.raises(StoreError, match=f"run {run_id} already exists"):
        store.create_run("scan", {}, 0, {}, run_id=run_id)


def test_unknown_run_error_names_the_file_and_the_remedy(store: RunStore) -> None:
    with pytest.raises(StoreError) as err:
        store.get_run("nope")
    assert str(err.value) == f"no run nope in {store.path}; see `sparring runs list`"


def test_behaviors_come_back_in_the_order_added(store: RunStore, run_id: str) -> None:
    behaviors = [behavior(n) for n in (3, 1, 2)]
    behaviors.append(Behavior(id="x", text="t", category="c", source="s", benign=True))
    store.add_behaviors(run_id, behaviors)
    assert store.behaviors(run_id) == behaviors


def test_adding_the_same_behavior_twice_stores_it_once(store: RunStore, run_id: str) -> None:
    store.add_behaviors(run_id, [behavior(1)])
    store.add_behaviors(run_id, [behavior(1), behavior(2)])
    assert store.behaviors(run_id) == [behavior(1), behavior(2)]


def test_a_different_behavior_under_a_used_id_is_refused(store: RunStore, run_id: str) -> None:
    store.add_behaviors(run_id, [behavior(1)])
    clash = behavior(1).model_copy(update={"text": "something else"})
    with pytest.raises(StoreError, match="behavior id 'b1' is already in run"):
        store.add_behaviors(run_id, [clash])


def test_attempts_come_back_equal_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    results = [answered(1), answered(2, ("and then?", "more")), failed(3)]
    with RunStore(path) as store:
        run_id = store.create_run("scan", {}, 0, {})
        store.record_attempts(run_id, results)
    with RunStore(path) as store:
        stored = store.attempts(run_id)
    assert stored == sorted(results, key=lambda r: r.spec.key)


def test_attempts_are_ordered_by_spec_key(store: RunStore, run_id: str) -> None:
    results = [answered(n) for n in range(20)]
    store.record_attempts(run_id, results[10:])
    store.record_attempts(run_id, results[:10])
    keys = [r.spec.key for r in store.iter_attempts(run_id)]
    assert keys == sorted(r.spec.key for r in results)


def test_each_turn_stores_the_conversation_sent_for_it(store: RunStore, run_id: str) -> None:
    result = answered(5, ("why?",))
    store.record_attempts(run_id, [result])
    with sqlite3.connect(store.path) as conn:
        requests = [
            json.loads(row[0])
            for row in conn.execute("SELECT request FROM completions ORDER BY turn")
        ]
    assert [m["content"] for m in requests[0]] == ["be brief", "prompt 5"]
    assert [m["content"] for m in requests[1]] == ["be brief", "prompt 5", "reply 5.0", "why?"]


def test_done_keys_include_failed_attempts(store: RunStore, run_id: str) -> None:
    store.record_attempts(run_id, [answered(1), failed(2)])
    assert store.done_keys(run_id) == {spec(1).key, spec(2).key}


def test_failed_attempt_is_stored_with_error_status(store: RunStore, run_id: str) -> None:
    store.record_attempts(run_id, [failed(2)])
    with sqlite3.connect(store.path) as conn:
        row = conn.execute("SELECT status, error FROM attempts").fetchone()
    assert row == ("error", "HTTP 500")


def test_recording_a_stored_key_again_keeps_the_first(store: RunStore, run_id: str) -> None:
    first = answered(1)
    again = AttemptResult(spec=spec(1), completions=(Completion(text="different"),))
    store.record_attempts(run_id, [first])
    store.record_attempts(run_id, [again, answered(2), answered(2)])
    assert store.attempts(run_id) == sorted([first, answered(2)], key=lambda r: r.spec.key)
    with sqlite3.connect(store.path) as conn:
        counts = [
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("attempts", "completions", "verdicts")
        ]
    assert counts == [2, 2, 4]


def test_a_batch_with_a_bad_verdict_writes_nothing(store: RunStore, run_id: str) -> None:
    store.record_attempts(run_id, [answered(0)])
    bad = Verdict.model_construct(label="maybe", p_unsafe=None, judge_id="j", rationale=None)
    broken = answered(2).model_copy(update={"verdicts": (bad,)})
    with pytest.raises(StoreError, match="nothing of this batch was stored"):
        store.record_attempts(run_id, [answered(1), broken, answered(3)])
    assert store.done_keys(run_id) == {spec(0).key}
    with sqlite3.connect(store.path) as conn:
        counts = [
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("attempts", "completions", "verdicts")
        ]
    assert counts == [1, 1, 2]


def test_recording_into_an_unknown_run_is_refused(store: RunStore) -> None:
    with pytest.raises(StoreError, match="no run ghost in"):
        store.record_attempts("ghost", [answered(1)])


def test_rejudging_adds_verdicts_after_the_first(store: RunStore, run_id: str) -> None:
    store.record_attempts(run_id, [answered(1)])
    later = Verdict(label=Label.SAFE, p_unsafe=0.0, judge_id="rubric@1", rationale="fine")
    store.add_verdicts(run_id, spec(1).key, [later])
    (stored,) = store.attempts(run_id)
    assert stored.verdicts == (*answered(1).verdicts, later)


def test_verdicts_for_an_unknown_attempt_are_refused(store: RunStore, run_id: str) -> None:
    verdict = Verdict(label=Label.SAFE, p_unsafe=None, judge_id="j")
    with pytest.raises(StoreError, match=f"no attempt abc in run {run_id}"):
        store.add_verdicts(run_id, "abc", [verdict])


def test_cache_misses_then_returns_what_was_put(store: RunStore) -> None:
    params, convo = GenerationParams(), [user("hi")]
    completion = Completion(text="hello", prompt_tokens=1, completion_tokens=1, latency_s=0.2)
    assert store.cache_get("m", params, convo) is None
    store.cache_put("m", params, convo, completion)
    assert store.cache_get("m", params, convo) == completion


def test_cache_key_covers_model_params_and_conversation(store: RunStore) -> None:
    params, convo = GenerationParams(), [user("hi")]
    store.cache_put("m", params, convo, Completion(text="hello"))
    assert store.cache_get("other", params, convo) is None
    assert store.cache_get("m", GenerationParams(max_tokens=8), convo) is None
    assert store.cache_get("m", params, [user("hi"), user("again")]) is None


def test_cached_completions_survive_closing_the_store(tmp_path: Path) -> None:
    params, convo = GenerationParams(), [user("hi")]
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.cache_put("m", params, convo, Completion(text="hello"))
    with RunStore(tmp_path / "runs.sqlite") as store:
        assert store.cache_get("m", params, convo) == Completion(text="hello")


def test_cached_completions_are_written_with_the_next_attempt_batch(
    store: RunStore, run_id: str
) -> None:
    params, convo = GenerationParams(), [user("hi")]
    store.cache_put("m", params, convo, Completion(text="hello"))
    store.record_attempts(run_id, [answered(1)])
    with RunStore(store.path) as other:
        assert other.cache_get("m", params, convo) == Completion(text="hello")


def test_failed_completions_are_not_cached(store: RunStore) -> None:
    params, convo = GenerationParams(), [user("hi")]
    store.cache_put("m", params, convo, Completion.failure("timeout"))
    assert store.cache_get("m", params, convo) is None


def test_a_file_that_is_not_sqlite_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StoreError, match=re.escape(f"{path} is not a sparring run store")):
        RunStore(path)
    assert path.read_text().startswith("these are not")


def test_an_sqlite_file_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE things (x)")
    with pytest.raises(StoreError, match="is an SQLite database but not a sparring run store"):
        RunStore(path)


def test_a_new_file_is_at_the_current_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert int(version[0]) == SCHEMA_VERSION


def test_a_file_from_a_newer_sparring_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(StoreError, match=f"newer sparring \\(store schema v{SCHEMA_VERSION + 1}"):
        RunStore(path)


def test_steps_record_once_and_list_in_order_by_prefix(tmp_path: Path) -> None:
    with RunStore(tmp_path / "s.sqlite") as store:
        run = store.create_run("dart", {}, 0, {})
        store.record_step(run, "iter1/attacks", {"n": 3})
        store.record_step(run, "iter1/train", {"checkpoint": "a/b"})
        store.record_step(run, "iter2/attacks", {"n": 5})
        assert list(store.steps(run, "iter1/")) == ["iter1/attacks", "iter1/train"]
        assert store.steps(run)["iter2/attacks"] == {"n": 5}
        with pytest.raises(StoreError, match="already recorded"):
            store.record_step(run, "iter1/train", {})


def test_a_version_1_store_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.close()
    with RunStore(path) as store:
        run = store.create_run("dart", {}, 0, {})
        store.record_step(run, "x", {})
        assert store.steps(run) == {"x": {}}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
