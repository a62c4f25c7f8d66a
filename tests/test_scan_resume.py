"""A real ``sparring scan`` killed mid-way and resumed reports exactly what an uninterrupted
scan reports.

Three processes per scan, as a user would run them: the scan (the packaged SmolLM2-135M,
greedy decoding, the embedded judge), and this test, which watches the store file, kills the
scan with SIGKILL once some attempts are stored, and then runs ``sparring scan --resume``.
A second, uninterrupted scan of the same config into another store is the reference; the
two ``report.json`` files must agree on every number.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparring.store import RunStore

pytestmark = pytest.mark.slow

HARMFUL = 4
"""Harmful behaviors (``limit``); the scan also takes as many benign ones."""
ATTACKS = ("direct", "base64")
PLANNED = HARMFUL * len(ATTACKS) + HARMFUL
"""Attempts of the plan: each harmful behavior × each attack, each benign one direct."""
CONFIG: dict[str, Any] = {
    "target": "builtin/smollm2-135m",
    "attacks": list(ATTACKS),
    "limit": HARMFUL,
    "max_tokens": 16,
    "temperature": 0.0,
    "seed": 3,
    # Fewer attempts in flight than planned, so results reach the store in several batches
    # and the kill lands between them; it also makes the resumed run batch its requests
    # differently from the reference, which greedy decoding must not notice.
    "concurrency": 2,
}
CLI = "from sparring.cli import main; main()"
"""The console entry point, run by this interpreter (the venv's ``sparring`` script)."""

RUN_TIMEOUT_S = 120
VOLATILE_RUN_FIELDS = ("id", "created_at", "finished_at")
"""Fields of ``run`` that differ between any two runs: a fresh id, and wall-clock times."""
VOLATILE_RATE_FIELDS = ("run_id",)
"""The run id repeated on every rate, for tracing."""
VOLATILE_TRIAL_FIELDS = ("latency_s",)
"""Wall time of each request: it depends on machine load and on what shared its batch (and
a resumed attempt may be answered from the completion cache, with the first latency)."""


def scan(store: Path, out: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``sparring scan`` into ``store``, writing its reports into ``out``."""
    command = [sys.executable, "-c", CLI, "scan", "--store", str(store), "--out", str(out)]
    return subprocess.Popen(
        [*command, "--no-progress", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(run: subprocess.Popen[str]) -> str:
    """Wait for a scan to end well; its stderr (the closing line names the run)."""
    _, err = run.communicate(timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, err
    return err


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql``, read the way another program would while the scan writes; none
    while the store file or its tables do not exist yet."""
    if not store.exists():
        return []
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def stored_attempts(store: Path) -> int:
    """Attempts committed to ``store`` so far."""
    rows = query(store, "SELECT COUNT(*) FROM attempts")
    return int(rows[0][0]) if rows else 0


def comparable(report: Path) -> dict[str, Any]:
    """A report.json without the fields that legitimately differ between two runs of one
    config (see the VOLATILE_* names); everything else, every number included, is kept."""
    doc: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    for name in VOLATILE_RUN_FIELDS:
        del doc["run"][name]
    judged = [rate for entry in doc.get("judge_rates", []) for rate in entry["rates"]]
    for rate in [*doc["rates"], *judged]:
        for name in VOLATILE_RATE_FIELDS:
            del rate[name]
    for trial in doc["trials"]:
        for name in VOLATILE_TRIAL_FIELDS:
            del trial[name]
    return doc


def test_a_killed_scan_resumes_to_the_report_of_an_uninterrupted_one(tmp_path: Path) -> None:
    config = tmp_path / "scan.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    killed, reference = tmp_path / "killed.sqlite", tmp_path / "reference.sqlite"

    run = scan(killed, tmp_path / "killed-out", "--config", str(config))
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while stored_attempts(killed) < 2:
        assert run.poll() is None, "the scan ended before it could be killed"
        assert time.monotonic() < deadline, "no attempt was stored in time"
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    survived = stored_attempts(killed)
    assert 2 <= survived < PLANNED, "the kill must land mid-scan"
    [(run_id, status)] = query(killed, "SELECT id, status FROM runs")
    assert status == "running"  # a SIGKILL leaves no chance to record anything

    closing = finish(scan(killed, tmp_path / "resumed", "--resume", run_id))
    assert f"run {run_id}: finished" in closing
    finish(scan(reference, tmp_path / "reference", "--config", str(config)))

    with RunStore(killed) as store:
        attempts = store.attempts(run_id)
    assert len(attempts) == len({a.spec.key for a in attempts}) == PLANNED
    assert all(a.error is None for a in attempts)
    resumed = comparable(tmp_path / "resumed" / "report.json")
    assert resumed["run"]["status"] == "finished"
    assert len(resumed["trials"]) == PLANNED
    assert resumed == comparable(tmp_path / "reference" / "report.json")
