"""A run killed or interrupted in another process resumes with nothing lost or done twice.

Three processes, as in real use: the loopback chat server, the run (tests/resumable_scan.py)
and this test, which watches the store file and kills or interrupts the run mid-way.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparring.store import RunStore
from sparring.testing.processes import server_process

SCRIPT = Path(__file__).with_name("resumable_scan.py")
ATTEMPTS = 300
TURNS = sum(2 if n % 5 == 0 else 1 for n in range(ATTEMPTS))
"""Completions a full run stores: every fifth attempt of the plan has a followup."""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    command = [sys.executable, "-m", "sparring.testing.openai_server", "--port", "0"]
    with server_process([*command, "--latency-ms", "40"]) as url:
        yield url


def start_run(store: Path, run_id: str, base_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--store",
            str(store),
            "--run-id",
            run_id,
            "--base-url",
            base_url,
            "--attempts",
            str(ATTEMPTS),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def finish_run(store: Path, run_id: str, base_url: str) -> dict[str, Any]:
    out, _ = start_run(store, run_id, base_url).communicate(timeout=120)
    return json.loads(out)


def table_count(store: Path, table: str) -> int:
    """Rows of ``table``, read the way another program would while the run writes."""
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def wait_for_stored(store: Path, at_least: int, run: subprocess.Popen[str]) -> int:
    while (count := table_count(store, "attempts")) < at_least:
        assert run.poll() is None, "the run ended before the test could stop it"
        time.sleep(0.01)
    return count


def results_by_key(store: Path, run_id: str) -> dict[str, Any]:
    """What a run produced per attempt, less wall-clock latencies."""
    with RunStore(store) as opened:
        results = opened.attempts(run_id)
    return {
        r.spec.key: (
            [c.model_dump(exclude={"latency_s"}) for c in r.completions],
            [v.model_dump() for v in r.verdicts],
        )
        for r in results
    }


def test_a_killed_run_resumes_with_no_attempt_lost_or_stored_twice(
    tmp_path: Path, base_url: str
) -> None:
    killed, reference = tmp_path / "killed.sqlite", tmp_path / "reference.sqlite"
    run = start_run(killed, "r1", base_url)
    seen = wait_for_stored(killed, 40, run)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    assert seen < ATTEMPTS
    survived = table_count(killed, "attempts")

    outcome = finish_run(killed, "r1", base_url)
    assert (outcome["status"], outcome["skipped_existing"]) == ("finished", survived)
    assert outcome["done"] + outcome["errors"] == ATTEMPTS - survived
    assert finish_run(reference, "r1", base_url)["done"] == ATTEMPTS

    resumed = results_by_key(killed, "r1")
    assert len(resumed) == ATTEMPTS
    assert resumed == results_by_key(reference, "r1")
    counts = [table_count(killed, t) for t in ("attempts", "completions", "verdicts")]
    assert counts == [ATTEMPTS, TURNS, ATTEMPTS]


def test_ctrl_c_finishes_attempts_in_flight_and_resume_completes(
    tmp_path: Path, base_url: str
) -> None:
    store = tmp_path / "runs.sqlite"
    run = start_run(store, "r1", base_url)
    wait_for_stored(store, 20, run)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=60)
    outcome = json.loads(out)
    assert outcome["status"] == "interrupted" and outcome["not_started"] > 0
    stored = table_count(store, "attempts")
    assert outcome["done"] + outcome["errors"] == stored
    assert outcome["requests"] == table_count(store, "completions")
    with RunStore(store) as opened:
        assert opened.get_run("r1").status == "interrupted"

    resumed = finish_run(store, "r1", base_url)
    assert (resumed["status"], resumed["skipped_existing"]) == ("finished", stored)
    assert table_count(store, "attempts") == ATTEMPTS
