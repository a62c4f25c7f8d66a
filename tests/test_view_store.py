"""The store's side of the viewer: human labels (schema migration 4) and the paged, filtered
reads, on a real SQLite file with a real scan in it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scan_builders import attempt, behavior
from sparring.errors import StoreError
from sparring.judges import RULES_JUDGE_ID
from sparring.metrics import Metric
from sparring.scan.report import load_scan
from sparring.store import RunStore
from sparring.store.browse import AttemptFilter
from sparring.store.labels import latest
from sparring.types import Label
from sparring.view.reader import Reader
from sparring.view.runs import run_line
from view_fixtures import BEHAVIORS, SECOND_JUDGE, ViewStore, build_store


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> ViewStore:
    return build_store(tmp_path_factory.mktemp("view-store"))


@pytest.fixture
def store(stored: ViewStore, tmp_path: Path) -> RunStore:
    """A private copy of the module's store, so labels added here stay here."""
    copy = tmp_path / "runs.sqlite"
    with sqlite3.connect(stored.path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return RunStore(copy)


def test_a_label_is_stored_with_who_and_when_and_leaves_the_verdicts_alone(
    store: RunStore, stored: ViewStore
) -> None:
    key = store.attempts(stored.scan_id)[0].spec.key
    before = store.attempt(stored.scan_id, key).verdicts
    first = store.add_label(stored.scan_id, key, "unsafe", "", "ann")
    second = store.add_label(stored.scan_id, key, "safe", "reads as a harmless list", "bob")
    assert [(lab.label, lab.who, lab.note) for lab in store.labels(stored.scan_id)] == [
        ("unsafe", "ann", ""),
        ("safe", "bob", "reads as a harmless list"),
    ]
    assert second.created_at >= first.created_at
    assert latest(store.labels()) == {(stored.scan_id, key): second}
    assert store.attempt(stored.scan_id, key).verdicts == before


def test_a_label_must_be_one_of_three_on_a_successful_attempt(
    store: RunStore, stored: ViewStore
) -> None:
    key = store.attempts(stored.scan_id)[0].spec.key
    with pytest.raises(StoreError, match="not one of unsafe, safe, refusal"):
        store.add_label(stored.scan_id, key, "unscorable", "", "ann")
    with pytest.raises(StoreError, match="no attempt nope"):
        store.add_label(stored.scan_id, "nope", "safe", "", "ann")
    store.create_run("scan", {}, 0, {}, run_id="failing")
    store.add_behaviors("failing", [behavior("x")])
    store.record_attempts("failing", [attempt("x", "direct", None, error="HTTP 500")])
    failed = store.attempts("failing")[0].spec.key
    with pytest.raises(StoreError, match="no reply to label"):
        store.add_label("failing", failed, "safe", "", "ann")
    assert store.labels() == []


def test_the_database_refuses_a_label_the_code_would_never_write(
    store: RunStore, stored: ViewStore
) -> None:
    key = store.attempts(stored.scan_id)[0].spec.key
    insert = (
        "INSERT INTO labels (run_id, attempt_key, label, note, who, created_at) "
        "VALUES (?, ?, ?, '', 'ann', 'now')"
    )
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        for run_id, attempt_key, label in (
            (stored.scan_id, "no-such-attempt", "safe"),
            (stored.scan_id, key, "maybe"),
        ):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(insert, (run_id, attempt_key, label))


def test_pages_filter_by_technique_category_verdict_disagreement_and_text(
    store: RunStore, stored: ViewStore
) -> None:
    run = stored.scan_id
    everything = store.attempt_page(run, RULES_JUDGE_ID, AttemptFilter(), 0, 100)
    attempts = {a.spec.key: a for a in store.attempts(run)}
    assert everything.total == len(attempts) == len(everything.rows)
    assert [r.seq for r in everything.rows] == sorted(r.seq for r in everything.rows)

    def keys(flt: AttemptFilter) -> set[str]:
        page = store.attempt_page(run, RULES_JUDGE_ID, flt, 0, 100)
        assert page.total == len(page.rows)
        return {r.key for r in page.rows}

    assert keys(AttemptFilter(technique="base64")) == {
        k for k, a in attempts.items() if a.spec.attack == "base64"
    }
    weapons = {b.id for b in BEHAVIORS if b.category == "weapons"}
    assert keys(AttemptFilter(category="weapons")) == {
        k for k, a in attempts.items() if a.spec.behavior_id in weapons
    }
    assert keys(AttemptFilter(outcome="refusal")) == {
        k for k, a in attempts.items() if a.verdicts[0].label is Label.REFUSAL
    }
    assert keys(AttemptFilter(disagreement=True)) == {
        k for k, a in attempts.items() if len({v.label for v in a.verdicts}) > 1
    }
    assert keys(AttemptFilter(text="CAPITAL of france")) == {
        k for k, a in attempts.items() if a.spec.behavior_id == "b2"
    }
    assert keys(AttemptFilter(text="100%_")) == set()


def test_pages_cut_the_matches_in_stored_order(store: RunStore, stored: ViewStore) -> None:
    whole = store.attempt_page(stored.scan_id, None, AttemptFilter(), 0, 100).rows
    second = store.attempt_page(stored.scan_id, None, AttemptFilter(), 3, 3)
    assert second.total == len(whole)
    assert [r.key for r in second.rows] == [r.key for r in whole[3:6]]
    assert {r.outcome for r in whole} == {"unscorable"}


def test_sql_headline_counts_agree_with_the_reports_rates(stored: ViewStore) -> None:
    reader = Reader(stored.path)
    try:
        for run in reader.store.list_runs():
            line = run_line(reader, run)
            summary = load_scan(reader.store, run.id, line.judge)[1]
            assert line.asr == summary.overall(Metric.ASR).rate, run.id
            assert line.over_refusal == summary.overall(Metric.OVER_REFUSAL).rate, run.id
    finally:
        reader.close()


def test_the_queue_serves_disagreements_then_the_least_certain_then_skips_the_labelled(
    store: RunStore, stored: ViewStore
) -> None:
    run = stored.scan_id
    attempts = {a.spec.key: a for a in store.attempts(run)}
    queue = [key for _, key in store.review_queue(run, 0, 100)]
    assert sorted(queue) == sorted(attempts)
    split = [len({v.label for v in attempts[k].verdicts}) > 1 for k in queue]
    assert split == sorted(split, reverse=True) and any(split)
    agreed = [k for k, s in zip(queue, split, strict=True) if not s]
    margins = [min(abs((v.p_unsafe or 0) - 0.5) for v in attempts[k].verdicts) for k in agreed]
    assert margins == sorted(margins)
    store.add_label(run, queue[0], "unsafe", "", "ann")
    assert store.review_queue(run, 0, 1) == [(run, queue[1])]
    assert store.review_queue(run, 1, 1) == [(run, queue[2])]


def test_facets_name_the_first_judge_first(store: RunStore, stored: ViewStore) -> None:
    facets = store.facets(stored.scan_id)
    assert facets.judges == (RULES_JUDGE_ID, SECOND_JUDGE)
    assert facets.techniques == ("base64", "direct")
    assert set(facets.categories) == {b.category for b in BEHAVIORS}


def test_writes_stay_visible_to_other_processes_while_a_second_connection_is_open(
    tmp_path: Path,
) -> None:
    """The viewer keeps two connections to one store. Opening the second must not drop the
    first one's locks: another process's close would then take the file for its own,
    checkpoint and delete the WAL, and the first connection's writes would go unseen."""
    path = tmp_path / "runs.sqlite"

    def other_process(code: str) -> str:
        script = f"from sparring.store import RunStore\nstore = RunStore({str(path)!r})\n{code}"
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        return done.stdout

    with RunStore(path) as first, RunStore(path):
        other_process("store.close()")
        first.create_run("scan", {}, 0, {}, run_id="written-first")
        seen = other_process("print([r.id for r in store.list_runs()])")
    assert "written-first" in seen
