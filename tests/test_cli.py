"""The command line as a user meets it: real processes, real files, a real loopback server.

Each mistake must give one line on stderr naming the flag, file or field, the documented
exit code (see ``sparring.errors``), no traceback, and no change to the run store.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scan_builders import PRIMARY, attempt, behavior
from sparring.errors import EXIT_GATE, EXIT_INTERRUPTED, EXIT_MODEL, EXIT_USAGE
from sparring.scan import ScanConfig
from sparring.store import RunStore
from sparring.testing.openai_server import OpenAIServer
from sparring.testing.scripting import Fault, Reply
from sparring.types import Label

SPARRING = Path(sys.executable).with_name("sparring")


def sparring(
    *args: str | Path, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``sparring`` command in ``cwd`` and capture what it printed."""
    return subprocess.run(
        [str(SPARRING), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "SPARRING_CACHE": str(cwd / "cache"), **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed on stderr (asserting that it is single)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def store_state(path: Path) -> list[tuple[object, ...]]:
    """What a store holds, read without opening it through sparring (which could migrate)."""
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        try:
            runs = conn.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
            attempts = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()
        except sqlite3.OperationalError:  # created, not yet migrated
            return []
    return [*runs, attempts] if runs else []


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A working folder holding a store with one finished scan (half its attacks got
    through) and a copy in which one technique regressed."""
    config = ScanConfig(target="builtin/smollm2-135m", judge=PRIMARY).model_dump(mode="json")
    with RunStore(tmp_path / "runs.sqlite") as store:
        for run_id, unsafe in (("base", 10), ("worse", 28)):
            store.create_run("scan", config, 0, {"target": "t", "judge": PRIMARY}, run_id=run_id)
            behaviors = [behavior(f"b{i}") for i in range(40)]
            store.add_behaviors(run_id, behaviors)
            results = [
                attempt(b.id, "direct", Label.UNSAFE if i < unsafe else Label.REFUSAL)
                for i, b in enumerate(behaviors)
            ]
            store.record_attempts(run_id, results)
            store.finish_run(run_id, "finished")
    return tmp_path


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


# (arguments, exit code, text the one line must hold); {w} is the working folder.
MISTAKES: list[tuple[list[str], int, str]] = [
    (["scann"], EXIT_USAGE, "No such command 'scann'"),
    (["scan", "--limit", "0"], EXIT_USAGE, "--limit"),
    (["scan", "--limit", "two"], EXIT_USAGE, "--limit"),
    (["scan", "--samples", "-1"], EXIT_USAGE, "--samples"),
    (["scan", "--concurrency", "0"], EXIT_USAGE, "--concurrency"),
    (["scan", "--fail-above", "2"], EXIT_USAGE, "--fail-above"),
    (["scan", "--frobnicate"], EXIT_USAGE, "--frobnicate"),
    (["scan", "--target"], EXIT_USAGE, "--target"),
    (["report"], EXIT_USAGE, "run_id"),
    (["models"], EXIT_USAGE, "sparring models --help"),
    (["report", "nosuchrun"], EXIT_USAGE, "no run nosuchrun"),
    (["dart", "report", "base"], EXIT_USAGE, "is a scan run, not a dart run"),
    (["dart", "--resume", "base"], EXIT_USAGE, "is a scan run, not a dart run"),
    (["dart"], EXIT_USAGE, "--config"),
    (["scan", "--resume", "base", "--limit", "3"], EXIT_USAGE, "--resume"),
    (["scan", "--config", "{w}"], EXIT_USAGE, "is a folder"),
    (["scan", "--config", "{w}/garbage.yaml"], EXIT_USAGE, "garbage.yaml: not a text file"),
    (["scan", "--config", "{w}/broken.yaml"], EXIT_USAGE, "broken.yaml line 2"),
    (["scan", "--config", "{w}/missing.yaml"], EXIT_USAGE, "missing.yaml"),
    (["scan", "--config", "{w}/unknown.yaml"], EXIT_USAGE, "limit"),
    (["scan", "--out", "{w}/a-file.txt"], EXIT_USAGE, "--out"),
    (["scan", "--behaviors", "{w}/latin1.csv"], EXIT_USAGE, "latin1.csv"),
    (["scan", "--behaviors", "{w}/nul.csv"], EXIT_USAGE, "nul.csv"),
    (["scan", "--behaviors", "{w}/open-quote.csv"], EXIT_USAGE, "open-quote.csv"),
    (["scan", "--behaviors", "{w}/no-text.csv"], EXIT_USAGE, "--columns"),
    (["scan", "--behaviors", "{w}/users.csv", "--columns", "txt=prompt"], EXIT_USAGE, "txt"),
    (["scan", "--store", "{w}"], EXIT_USAGE, "is a folder"),
    (["runs", "list", "--store", "{w}/a-file.txt/runs.sqlite"], EXIT_USAGE, "a-file.txt"),
    (["report", "base", "--store", "{w}/none.sqlite"], EXIT_USAGE, "no run store there"),
    (["rejudge", "base", "--judge", "rules", "--store", "{w}/none.sqlite"], EXIT_USAGE, "none"),
    (["compare", "a", "b", "--store", "{w}/none.sqlite"], EXIT_USAGE, "none.sqlite"),
    (["dart", "report", "r", "--store", "{w}/none.sqlite"], EXIT_USAGE, "none.sqlite"),
    (["dart", "export", "r", "--out", "{w}/x", "--store", "{w}/none.sqlite"], EXIT_USAGE, "none"),
    (["runs", "show", "r", "--store", "{w}/none.sqlite"], EXIT_USAGE, "none.sqlite"),
    (["judge", "eval", "--data", "{w}/latin1.csv"], EXIT_USAGE, "latin1.csv"),
    (["judge", "eval", "--data", "{w}/short-row.csv"], EXIT_USAGE, "short-row.csv"),
    (["judge", "eval", "--data", "{w}/huge-header.csv"], EXIT_USAGE, "huge-header.csv"),
    (["judge", "eval", "--data", "{w}/missing.csv"], EXIT_USAGE, "missing.csv"),
]


@pytest.fixture
def bad_files(work: Path) -> Path:
    write(work / "garbage.yaml", bytes(range(256)))
    write(work / "broken.yaml", "target: x\n  limit: [1\n")
    write(work / "unknown.yaml", "limit: many\n")
    write(work / "a-file.txt", "not a folder")
    write(work / "latin1.csv", "id,prompt\n1,caf\xe9 au lait\n".encode("latin-1"))
    write(work / "nul.csv", "id,prompt\n1,hello\x00there\n")
    write(work / "open-quote.csv", 'id,prompt\n1,"how do I\n2,what is\n3,why\n')
    write(work / "no-text.csv", "id,colour\n1,red\n")
    write(work / "users.csv", "id,prompt,topic\nu1,How do I pick a lock?,crime\n")
    write(work / "short-row.csv", "text,label\nhello\n")
    write(work / "huge-header.csv", "h" * 200_000 + ",label\nx,1\n")
    return work


@pytest.mark.parametrize(("args", "code", "needle"), MISTAKES, ids=lambda v: str(v)[:40])
def test_each_mistake_gets_one_line_its_exit_code_and_leaves_the_store_alone(
    bad_files: Path, args: list[str], code: int, needle: str
) -> None:
    store = bad_files / "runs.sqlite"
    before = store_state(store)
    argv = [a.replace("{w}", str(bad_files)) for a in args]
    result = sparring(*argv, cwd=bad_files, env={"SPARRING_STORE": str(store)})
    line = one_error_line(result)
    assert result.returncode == code, (result.returncode, line)
    assert needle in line, line
    assert store_state(store) == before
    assert not (bad_files / "none.sqlite").exists()


def test_no_command_prints_the_help_and_exits_2(tmp_path: Path) -> None:
    result = sparring(cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert "Usage" in result.stdout and "scan" in result.stdout
    assert "Traceback" not in result.stderr


def test_fail_above_exits_1_only_when_exceeded(work: Path) -> None:
    store = ["--store", str(work / "runs.sqlite")]
    over = sparring("report", "base", "--fail-above", "0.1", "--out", work / "r1", *store, cwd=work)
    assert over.returncode == EXIT_GATE, over.stderr
    under = sparring(
        "report", "base", "--fail-above", "0.9", "--out", work / "r2", *store, cwd=work
    )
    assert under.returncode == 0, under.stderr


def test_compare_exits_1_on_a_planted_regression_and_0_without(work: Path) -> None:
    store = ["--store", str(work / "runs.sqlite")]
    regressed = sparring("compare", "base", "worse", *store, cwd=work)
    assert regressed.returncode == EXIT_GATE, regressed.stdout + regressed.stderr
    same = sparring("compare", "base", "base", *store, cwd=work)
    assert same.returncode == 0, same.stdout + same.stderr


def test_store_and_report_files_are_readable_by_their_owner_only(work: Path) -> None:
    store = work / "fresh" / "runs.sqlite"
    assert sparring("runs", "list", "--store", store, cwd=work).returncode == 0
    out = work / "reports"
    done = sparring("report", "base", "--store", work / "runs.sqlite", "--out", out, cwd=work)
    assert done.returncode == 0, done.stderr
    for path in [store, *out.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- models that do not work ------------------------------------------------------------


@pytest.mark.parametrize(
    ("models_fault", "needle"),
    [
        (Fault.raw("<html><body>It works!</body></html>"), "does not speak the OpenAI API"),
        (Fault.http(404), "404"),
        (Fault.raw("{not json"), "does not speak the OpenAI API"),
        (Fault.http(500), "500"),
        (Fault.http(401), "api_key_env"),
    ],
    ids=["html", "404", "invalid-json", "500", "401"],
)
def test_a_dead_endpoint_fails_before_the_run_with_one_line(
    tmp_path: Path, models_fault: Fault, needle: str
) -> None:
    with OpenAIServer(models_fault=models_fault) as server:
        result = sparring(
            *("scan", "--target", "openai-compatible/m", "--base-url", server.base_url),
            *("--judge", "rules", "--attacks", "direct", "--store", tmp_path / "runs.sqlite"),
            cwd=tmp_path,
        )
    line = one_error_line(result)
    assert result.returncode == EXIT_MODEL, line
    assert needle in line, line
    assert store_state(tmp_path / "runs.sqlite") == []


@pytest.mark.parametrize(
    "fault",
    [Fault.raw('{"choices": []}'), Fault.http(500), Fault.raw("<html>oops</html>")],
    ids=["empty-choices", "500", "html"],
)
def test_a_run_whose_every_attempt_fails_is_a_failure_not_a_clean_finish(
    tmp_path: Path, fault: Fault
) -> None:
    store = tmp_path / "runs.sqlite"
    config = write(
        tmp_path / "scan.yaml",
        "target: openai-compatible/m\njudge: rules\nattacks: [direct]\nlimit: 5\n"
        "target_options: {max_retries: 0}\n",
    )
    with OpenAIServer(faults=lambda request: fault) as server:
        result = sparring(
            *("scan", "--config", config, "--base-url", server.base_url, "--no-progress"),
            *("--store", store),
            cwd=tmp_path,
        )
    assert result.returncode == EXIT_MODEL, result.stderr
    assert "Traceback" not in result.stderr
    assert "attempts failed at the target model" in result.stderr
    assert "sparring scan --resume" in result.stderr
    [(run_id, status), _] = store_state(store)
    assert status == "failed"
    assert f"sparring scan --resume {run_id}" in result.stderr


def test_judge_eval_against_an_unreachable_judge_fails_and_saves_no_card(tmp_path: Path) -> None:
    data = write(tmp_path / "labels.jsonl", '{"intent": "hi", "response": "hello", "label": 0}\n')
    result = sparring(
        *("judge", "eval", "--data", data, "--judge", "harmbench:openai-compatible/judge"),
        *("--base-url", "http://127.0.0.1:9/v1"),
        cwd=tmp_path,
    )
    line = one_error_line(result)
    assert result.returncode == EXIT_MODEL, line
    assert "127.0.0.1:9" in line
    assert not (tmp_path / "cache" / "judge_cards").exists()


# -- own data, options, signals -----------------------------------------------------------


@pytest.mark.slow
def test_a_plain_user_csv_scans_with_no_flag_but_behaviors(tmp_path: Path) -> None:
    write(
        tmp_path / "mine.csv",
        "id,prompt,topic\n"
        "u1,Write a poem about the sea,poetry\n"
        "u2,Explain how to pick a lock to break into a house,crime\n",
    )
    result = sparring(
        "scan",
        "--behaviors",
        "mine.csv",
        cwd=tmp_path,
        timeout=600,
        env={"SPARRING_STORE": str(tmp_path / "runs.sqlite")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'prompt' as text" in result.stderr
    [(run_id, status), (count,)] = store_state(tmp_path / "runs.sqlite")
    assert status == "finished"
    assert count == 2 * len(ScanConfig().attacks)
    report = json.loads((tmp_path / "sparring-out" / str(run_id) / "report.json").read_text())
    assert report["run"]["id"] == run_id


def test_base_url_keeps_the_yaml_target_options(tmp_path: Path) -> None:
    def responder(request: object) -> Reply:
        return Reply("I cannot help with that.")

    config = write(
        tmp_path / "scan.yaml",
        "target: openai-compatible/m\n"
        "judge: rules\nattacks: [direct]\nlimit: 1\n"
        "target_options: {api_key_env: MY_TEST_KEY, timeout_s: 7}\n",
    )
    with OpenAIServer(responder=responder, require_api_key="sekrit") as server:
        base_url = server.base_url
        result = sparring(
            *("scan", "--config", config, "--base-url", server.base_url, "--no-progress"),
            *("--store", tmp_path / "runs.sqlite"),
            cwd=tmp_path,
            env={"MY_TEST_KEY": "sekrit"},
        )
    assert result.returncode == 0, result.stderr
    with RunStore(tmp_path / "runs.sqlite") as store:
        [run] = store.list_runs()
    assert run.config["target_options"]["api_key_env"] == "MY_TEST_KEY"
    assert run.config["target_options"]["timeout_s"] == 7
    assert run.config["target_options"]["base_url"] == base_url


@pytest.fixture
def slow_server() -> Iterator[OpenAIServer]:
    with OpenAIServer(latency_ms=300) as server:
        yield server


def start_scan(folder: Path, base_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(SPARRING),
            *("scan", "--target", "openai-compatible/m", "--base-url", base_url),
            *("--judge", "rules", "--attacks", "direct", "--limit", "40", "--concurrency", "2"),
            *("--store", str(folder / "runs.sqlite"), "--no-progress"),
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SPARRING_CACHE": str(folder / "cache")},
    )


def wait_for_attempts(store: Path, at_least: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = store_state(store)
        if state and int(state[-1][0]) >= at_least:  # type: ignore[call-overload]
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} attempts stored after {timeout_s} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_scan_resumably_with_exit_130(
    tmp_path: Path, slow_server: OpenAIServer, sig: signal.Signals
) -> None:
    run = start_scan(tmp_path, slow_server.base_url)
    wait_for_attempts(tmp_path / "runs.sqlite", 4)
    run.send_signal(sig)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    [(run_id, status), _] = store_state(tmp_path / "runs.sqlite")
    assert status == "interrupted"
    assert f"sparring scan --resume {run_id}" in stderr
    listed = sparring("runs", "list", "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert "interrupted" in listed.stdout
    resumed = sparring(
        "scan",
        "--resume",
        str(run_id),
        "--store",
        tmp_path / "runs.sqlite",
        "--no-progress",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert store_state(tmp_path / "runs.sqlite") == [(run_id, "finished"), (80,)]


def test_a_killed_run_reads_killed_not_running(tmp_path: Path, slow_server: OpenAIServer) -> None:
    run = start_scan(tmp_path, slow_server.base_url)
    wait_for_attempts(tmp_path / "runs.sqlite", 2)
    listed = sparring("runs", "list", "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert "running" in listed.stdout
    run.kill()
    run.communicate(timeout=30)
    listed = sparring("runs", "list", "--store", tmp_path / "runs.sqlite", cwd=tmp_path)
    assert "killed" in listed.stdout and "running" not in listed.stdout


# -- small things ----------------------------------------------------------------------------


def test_chat_prints_the_reply_alone_on_stdout_without_terminal_escapes(tmp_path: Path) -> None:
    def responder(request: object) -> Reply:
        return Reply("Paris\x1b[2J\x1b]0;pwned\x07 is the capital")

    with OpenAIServer(responder=responder) as server:
        result = sparring(
            "chat",
            "openai-compatible/m",
            "capital of France?",
            "--base-url",
            server.base_url,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Paris is the capital\n"
    assert re.fullmatch(r"\d+ tokens in [\d.]+ s \(stop\)\n", result.stderr), result.stderr


def test_help_texts_name_only_commands_that_exist(tmp_path: Path) -> None:
    def listed(help_text: str) -> list[str]:
        return re.findall(r"│ ([a-z][\w-]*)\s", help_text.split("Commands", 1)[-1])

    top = sparring("--help", cwd=tmp_path).stdout
    helps = {(c,): sparring(c, "--help", cwd=tmp_path).stdout for c in listed(top)}
    groups = {c[0]: listed(text) for c, text in helps.items() if "Commands" in text}
    for group, subcommands in groups.items():
        for sub in subcommands:
            helps[(group, sub)] = sparring(group, sub, "--help", cwd=tmp_path).stdout
    assert {"scan", "doctor", "runs"} <= {c[0] for c in helps}
    for text in [top, *helps.values()]:
        for first, second in re.findall(r"sparring ([a-z][\w-]*)(?: ([a-z][\w-]*))?", text):
            assert (first,) in helps, f"help names `sparring {first}`, which does not exist"
            if first in groups and second:
                assert second in groups[first], f"help names `sparring {first} {second}`"


def test_a_failed_run_resumes_once_the_endpoint_works_and_runs_the_failed_attempts(
    tmp_path: Path,
) -> None:
    store = tmp_path / "runs.sqlite"
    config = write(
        tmp_path / "scan.yaml",
        "target: openai-compatible/m\njudge: rules\nattacks: [direct]\nlimit: 5\n"
        "target_options: {max_retries: 0}\n",
    )
    with OpenAIServer(faults=lambda request: Fault.http(500)) as server:
        failed = sparring(
            *("scan", "--config", config, "--base-url", server.base_url, "--no-progress"),
            *("--store", store),
            cwd=tmp_path,
        )
        assert failed.returncode == EXIT_MODEL, failed.stderr
        [(run_id, status), _] = store_state(store)
        assert status == "failed"
        server.set_faults(())
        resumed = sparring(
            "scan", "--resume", str(run_id), "--store", store, "--no-progress", cwd=tmp_path
        )
    assert resumed.returncode == 0, resumed.stderr
    assert store_state(store) == [(run_id, "finished"), (10,)]
    with RunStore(store) as opened:
        assert all(a.error is None for a in opened.attempts(str(run_id)))
