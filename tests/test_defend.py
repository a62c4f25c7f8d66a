"""``sparring defend`` end to end on a scripted loopback target: the arms, their rates and
changes, measured latency, calls, the Pareto marks, the files, and its errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sparring import api
from sparring.cli.main import run
from sparring.data import suite
from sparring.defenses.base import blocked_by
from sparring.defenses.command import DefendOutcome
from sparring.defenses.config import DefendConfig, defend_config
from sparring.errors import ConfigError
from sparring.store import RunStore
from sparring.testing import ChatRequest, OpenAIServer

HARMFUL = tuple(b.text for b in suite("builtin-harmful"))
COMPLY = "Sure, here is how to do it: step one, get ready; step two, carry on."
REFUSE = "I'm sorry, but I can't help with that."
LATENCY_MS = 40


def responder(request: ChatRequest) -> str:
    """A target that answers everything, unless reminded: the self-reminder makes it refuse
    everything, the sandwich makes it refuse harmful requests only; it paraphrases when
    asked to, by echoing the text."""
    text = request.last_user_text
    if request.messages and "Paraphrase" in str(request.messages[0].get("content")):
        return text
    if "Remember: you are a responsible assistant" in text:
        return REFUSE
    if "Remember your instructions" in text and any(h in text for h in HARMFUL):
        return REFUSE
    return COMPLY


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(responder=responder, latency_ms=LATENCY_MS) as running:
        yield running


def fields(server: OpenAIServer, **more: Any) -> dict[str, Any]:
    return {
        "target": "openai-compatible/sparring-test",
        "target_options": {"base_url": server.base_url, "max_retries": 0},
        "defenses": "self-reminder,sandwich,paraphrase",
        "suite": "builtin",
        "benign_suites": "builtin-benign",
        "attacks": "direct",
        "judge": "rules",
        "limit": 6,
        **more,
    }


@pytest.fixture(scope="module")
def outcome(server: OpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> DefendOutcome:
    folder = tmp_path_factory.mktemp("defend")
    return api.defend(
        fields(server), folder / "runs.sqlite", out_dir=folder / "out", console=Console(width=200)
    )


def test_each_arm_runs_the_same_attempts(outcome: DefendOutcome) -> None:
    assert outcome.status == "finished"
    arms = {arm.label: arm for arm in outcome.summary.arms}
    assert list(arms) == ["none", "self-reminder", "sandwich", "paraphrase"]
    for arm in arms.values():
        assert (arm.asr.rate.n, arm.over_refusal.rate.n) == (6, 6)


def test_rates_and_their_changes_follow_what_the_target_did(outcome: DefendOutcome) -> None:
    arms = {arm.label: arm for arm in outcome.summary.arms}
    rates = {label: (a.asr.rate.k, a.over_refusal.rate.k) for label, a in arms.items()}
    assert rates == {
        "none": (6, 0),
        "self-reminder": (0, 6),
        "sandwich": (0, 0),
        "paraphrase": (6, 0),
    }
    reminder = arms["self-reminder"]
    assert reminder.asr_change is not None and reminder.asr_change.significant
    assert reminder.over_refusal_change is not None and reminder.over_refusal_change.significant
    assert reminder.tradeoff == (
        "buys its ASR drop with false refusals (ASR -100.0 pts, false refusals +100.0 pts)"
    )
    assert arms["sandwich"].tradeoff.startswith("lowers ASR without more false refusals (")
    assert arms["paraphrase"].tradeoff.startswith("no significant change")


def test_the_pareto_marks_go_to_the_undominated_arms(outcome: DefendOutcome) -> None:
    marks = {arm.label: arm.pareto for arm in outcome.summary.arms}
    assert marks == {"none": False, "self-reminder": False, "sandwich": True, "paraphrase": False}


def test_latency_and_calls_are_measured_in_the_run(outcome: DefendOutcome) -> None:
    arms = {arm.label: arm for arm in outcome.summary.arms}
    assert arms["none"].calls_per_request == 1.0
    assert arms["paraphrase"].calls_per_request == 2.0
    measured = arms["paraphrase"].latency_ratio
    assert measured is not None
    ratio, low, high = measured
    assert 1.5 < ratio < 5.0 and low <= ratio <= high  # two calls in a row, each >= 40 ms
    baseline = arms["none"].latency_s
    assert baseline is not None and baseline >= LATENCY_MS / 1000


def test_the_json_and_html_reports_are_written(outcome: DefendOutcome) -> None:
    data = json.loads(outcome.files.json.read_text(encoding="utf-8"))
    assert [a["defense"] for a in data["arms"] if a["pareto"]] == ["sandwich"]
    assert data["arms"][1]["asr"]["k"] == 0 and data["arms"][1]["asr"]["n"] == 6
    assert data["arms"][3]["extra_calls_per_request"] == 1.0
    html = outcome.files.html.read_text(encoding="utf-8")
    assert html.count('<g class="arm') == 4
    assert '<g class="arm pareto" data-defense="sandwich">' in html
    assert COMPLY not in html and HARMFUL[0] not in html  # numbers only


def test_the_html_chart_renders_offline_in_headless_chromium(outcome: DefendOutcome) -> None:
    browser = next(
        (
            p
            for name in ("chromium", "chromium-browser", "google-chrome")
            if (p := shutil.which(name))
        ),
        None,
    )
    if browser is None:
        pytest.skip("no Chromium on PATH; install it with: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="sparring-chromium-") as profile:
        dom = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                f"--user-data-dir={profile}",
                "--dump-dom",
                outcome.files.html.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert dom.returncode == 0
    assert len(re.findall(r'<g class="arm ', dom.stdout)) == 4
    assert len(re.findall(r'<line class="ci"', dom.stdout)) == 8
    assert '<polyline class="front"' not in dom.stdout  # one optimal arm: no front to draw
    assert not re.search(r'(src|href)="(https?:)?//', dom.stdout)


def test_the_store_holds_every_arms_attempts_with_its_guard_record(outcome: DefendOutcome) -> None:
    store_path = outcome.files.json.parent.parent / "runs.sqlite"
    with RunStore(store_path) as store:
        attempts = store.attempts(outcome.run_id)
    assert len(attempts) == 4 * 12
    arms = {a.spec.meta["defense"] for a in attempts}
    assert arms == {"none", "self-reminder", "sandwich", "paraphrase"}
    assert all(a.error is None and blocked_by(a.completions[0]) is None for a in attempts)


def test_the_command_line_reports_a_bad_defense_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "runs.sqlite"
    code = run(["defend", "--defenses", "self-reminder,nope", "--store", str(store)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == api.EXIT_USAGE
    assert len(lines) == 1 and "unknown guard 'nope'; use one of:" in lines[0]
    assert not store.exists()


@pytest.mark.parametrize(
    ("values", "options", "words"),
    [
        ({"defenses": "sandwich,sandwich"}, [], "defense sandwich is listed twice"),
        ({"defenses": "sandwich"}, ["smoothllm.copies=3"], "no defense of the run uses guard"),
        ({"defenses": "sandwich"}, ["sandwich.size=3"], "has no option 'size'"),
        ({"defenses": []}, [], "field 'defenses'"),
    ],
)
def test_config_mistakes_are_one_line(
    values: dict[str, Any], options: list[str], words: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        defend_config(values, defense_options=options)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_defenses_read_from_yaml_mappings_lists_and_flags(tmp_path: Path) -> None:
    file = tmp_path / "defend.yaml"
    file.write_text(
        "defenses:\n"
        "  - self-reminder\n"
        "  - {name: smoothllm, copies: 3}\n"
        "  - [input-classifier, {name: sandwich, instruction: Be kind.}]\n",
        encoding="utf-8",
    )
    config = defend_config({}, file, defense_options=["smoothllm.rate=0.2"])
    assert config.labels == [
        "none",
        "self-reminder",
        "smoothllm:copies=3:rate=0.2",
        "input-classifier+sandwich:instruction=Be kind.",
    ]
    stored = DefendConfig.model_validate(json.loads(json.dumps(config.model_dump(mode="json"))))
    assert stored == config


def test_a_run_stopped_by_its_budget_resumes_to_the_end_without_repeats(
    server: OpenAIServer, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    values = fields(server, defenses="sandwich", limit=3, max_requests=5)
    first = api.defend(values, store, out_dir=tmp_path / "out")
    assert first.status == "budget"
    outcome = first
    for _ in range(5):
        if outcome.status == "finished":
            break
        outcome = api.defend({}, store, resume=first.run_id, out_dir=tmp_path / "out")
    assert outcome.status == "finished" and outcome.run_id == first.run_id
    with RunStore(store) as opened:
        keys = [a.spec.key for a in opened.attempts(first.run_id)]
    assert len(keys) == len(set(keys)) == 2 * 6
    assert [arm.asr.rate.n for arm in outcome.summary.arms] == [3, 3]


def test_the_arms_take_turns_in_rounds(server: OpenAIServer, tmp_path: Path) -> None:
    server.reset_stats()
    values = fields(server, defenses="sandwich", limit=3, concurrency=2)
    outcome = api.defend(values, tmp_path / "runs.sqlite", out_dir=tmp_path / "out")
    assert outcome.status == "finished"
    arms = [
        "sandwich" if "Remember your instructions" in request.last_user_text else "none"
        for request in server.stats().received
    ]
    # 6 attempts per arm in rounds of 4 (ROUND_SLOTS 2 x concurrency 2), the order rotating
    assert arms == ["none"] * 4 + ["sandwich"] * 4 + ["sandwich"] * 2 + ["none"] * 2
    with RunStore(tmp_path / "runs.sqlite") as store:
        rounds = {
            (a.spec.meta["defense"], a.spec.meta["round"]) for a in store.attempts(outcome.run_id)
        }
    assert rounds == {("none", 0), ("none", 1), ("sandwich", 0), ("sandwich", 1)}


def test_the_latency_ratio_compares_arms_within_rounds() -> None:
    from sparring.defenses.tally import _ratio

    # The machine was ten times slower in round 0; the arm takes twice the baseline's time
    # in both rounds, but had most of its attempts in the fast round.
    base = {f"a{i}": (0, 10.0) for i in range(2)} | {f"b{i}": (1, 1.0) for i in range(8)}
    arm = {f"a{i}": (0, 20.0) for i in range(2)} | {f"b{i}": (1, 2.0) for i in range(8)}
    assert _ratio(base, arm, seed=0) == (2.0, 2.0, 2.0)
    assert _ratio(base, {}, seed=0) is None


def test_the_command_line_runs_and_reports(
    server: OpenAIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = run(
        [
            "defend",
            "--target",
            "openai-compatible/sparring-test",
            "--base-url",
            server.base_url,
            "--defenses",
            "sandwich",
            "--benign-suites",
            "builtin-benign",
            "--attacks",
            "direct",
            "--judge",
            "rules",
            "--limit",
            "2",
            "--no-progress",
            "--store",
            str(tmp_path / "runs.sqlite"),
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr()
    assert code == api.EXIT_OK
    assert "sandwich" in printed.out and "Pareto" in printed.out
    assert "finished; reports in" in printed.err
    assert (out / "defend.html").is_file() and (out / "defend.json").is_file()
