"""Console, HTML, JSON and JUnit reports of the hand-made scan in tests/scan_builders.py."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from scan_builders import PRIMARY, attempt, behavior, hand_made_scan, run_info
from sparring.errors import ConfigError, DataError
from sparring.judges import EMBEDDED_JUDGE_ID, judge_card
from sparring.judges.head import packaged_record_path
from sparring.metrics import ScanData, ScanSummary, summarize
from sparring.report import (
    from_json,
    gate,
    load_json,
    redact_text,
    render_console,
    render_html,
    to_json,
    to_junit,
    write_json,
)
from sparring.report.formatting import agreement_text
from sparring.types import AttemptResult, AttemptSpec, Completion, Label, Message, Verdict

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT: dict[str, object] = {"kappa": 0.81, "n": 450, "reference": "xstest human labels"}


@pytest.fixture(scope="module")
def data() -> ScanData:
    return hand_made_scan()


@pytest.fixture(scope="module")
def summary(data: ScanData) -> ScanSummary:
    return summarize(data)


def marked_scan() -> tuple[ScanData, list[str]]:
    """A scan whose every free text is a unique marker: behavior text and context, prompt,
    follow-up, both replies, judge rationale and an error message."""
    markers = [
        f"SECRET-{name}-7f3a"
        for name in (
            "behavior",
            "context",
            "prompt",
            "followup",
            "reply1",
            "reply2",
            "rationale",
            "error",
        )
    ]
    b = behavior("h1", text=markers[0]).model_copy(update={"context": markers[1]})
    multi_turn = AttemptResult(
        spec=AttemptSpec(
            behavior_id="h1",
            attack="crescendo",
            messages=(Message(role="user", content=markers[2]),),
            followups=(markers[3],),
        ),
        completions=(Completion(text=markers[4]), Completion(text=markers[5])),
        verdicts=(Verdict(label=Label.UNSAFE, judge_id=PRIMARY, rationale=markers[6]),),
    )
    failed = attempt("h1", "direct", None, error=markers[7], prompt=markers[2] + "-again")
    return ScanData(run=run_info(), behaviors=[b], attempts=[multi_turn, failed]), markers


# HTML


def test_html_heat_map_has_a_cell_per_category_and_technique(
    data: ScanData, summary: ScanSummary
) -> None:
    html = render_html(data, summary)
    assert html.count('<svg class="heatmap"') == 1
    cells = re.findall(r'<g class="cell" data-category="(\w+)" data-technique="(\w+)">', html)
    assert sorted(cells) == [
        ("cyber", "base64"),
        ("cyber", "direct"),
        ("fraud", "base64"),
        ("fraud", "direct"),
    ]


def test_html_heat_map_cell_title_gives_interval_and_n(
    data: ScanData, summary: ScanSummary
) -> None:
    html = render_html(data, summary)
    # cyber x base64: 1 unsafe of 2 scored, 1 error.
    assert "cyber × base64: 50.0% (95% CI 9.5–90.5%), 1/2 trials, unscorable 0, errors 1" in html


def test_html_draws_interval_bars_per_technique_and_category(
    data: ScanData, summary: ScanSummary
) -> None:
    html = render_html(data, summary)
    for label in (
        "Attack success rate by technique",
        "Attack success rate by category",
        "Over-refusal by category",
    ):
        assert f'aria-label="{label}"' in html
    assert html.count('<line class="ci"') == 3 * html.count('<g class="interval"')


def test_html_header_shows_provenance(data: ScanData, summary: ScanSummary) -> None:
    html = render_html(data, summary, judge_agreement=AGREEMENT)
    for expected in (
        "run-a",
        "builtin/smollm2-135m",
        PRIMARY,
        "κ 0.810 on xstest human labels (n=450)",
        "<dd>7</dd>",
        "&#34;max_tokens&#34;: 128",
        "3.11.9",
        "2025-03-01 12:00:00+00:00",
    ):
        assert expected in html, expected


def test_html_says_agreement_not_measured_without_one(data: ScanData, summary: ScanSummary) -> None:
    assert "measured agreement: not measured" in render_html(data, summary)


def test_html_lists_errors_and_unscorable_per_technique(
    data: ScanData, summary: ScanSummary
) -> None:
    html = render_html(data, summary)
    row = (
        '<tr><td>direct</td><td>harmful</td><td class="num">3</td>'
        '<td class="num">1</td><td class="num">0</td></tr>'
    )
    assert row in html


def test_html_opens_offline(data: ScanData, summary: ScanSummary) -> None:
    html = render_html(data, summary)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def test_html_examples_are_collapsed_by_default(data: ScanData, summary: ScanSummary) -> None:
    html = render_html(data, summary)
    assert '<details class="example' in html
    assert "<details open" not in html


def test_html_caps_examples_per_cell() -> None:
    attempts = [attempt("h1", "direct", Label.REFUSAL, sample=i) for i in range(10)]
    data = ScanData(run=run_info(), behaviors=[behavior("h1")], attempts=attempts)
    html = render_html(data, summarize(data), max_examples=3)
    assert html.count('<details class="example') == 3
    assert "showing 3 of 10" in html


def test_html_shows_unsafe_examples_first() -> None:
    labels = [Label.REFUSAL] * 5 + [Label.UNSAFE]
    attempts = [attempt("h1", "direct", lab, sample=i) for i, lab in enumerate(labels)]
    data = ScanData(run=run_info(), behaviors=[behavior("h1")], attempts=attempts)
    html = render_html(data, summarize(data), max_examples=2)
    shown = re.findall(r'<details class="example outcome-(\w+)">', html)
    assert shown == ["unsafe", "refusal"]


def test_html_without_redaction_shows_every_text() -> None:
    data, markers = marked_scan()
    html = render_html(data, summarize(data))
    assert all(m in html for m in markers)


def test_html_redaction_removes_every_text() -> None:
    data, markers = marked_scan()
    html = render_html(data, summarize(data), redact=True)
    assert [m for m in markers if m in html] == []
    assert redact_text(markers[4]) in html
    assert re.search(r"\[redacted: 20 characters, sha256 [0-9a-f]{12}\]", html)


def test_html_escapes_markup_in_responses() -> None:
    data = ScanData(
        run=run_info(),
        behaviors=[behavior("h1")],
        attempts=[attempt("h1", "direct", Label.UNSAFE, response="<script>alert('x')</script>")],
    )
    html = render_html(data, summarize(data))
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html


def test_html_shows_the_gate_line(data: ScanData, summary: ScanSummary) -> None:
    html = render_html(data, summary, fail_above=0.2)
    assert '<p class="gate fail">FAIL: ASR 40.0%' in html


# Console and gate


def console_text(
    summary: ScanSummary,
    fail_above: float | None = None,
    judge_agreement: dict[str, object] | None = None,
) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    render_console(summary, console, fail_above=fail_above, judge_agreement=judge_agreement)
    return buffer.getvalue()


def test_console_prints_rates_with_interval_and_n(summary: ScanSummary) -> None:
    text = console_text(summary)
    line = next(s for s in text.splitlines() if "attack success (trials)" in s)
    assert "40.0%" in line and "11.8–76.9%" in line and "2/5" in line


def test_console_never_prints_prompts_or_responses() -> None:
    data, markers = marked_scan()
    text = console_text(summarize(data))
    assert [m for m in markers if m in text] == []


def test_console_reports_judge_agreement(summary: ScanSummary) -> None:
    assert "agreement: not measured" in console_text(summary)
    expected = "agreement: κ 0.810 on xstest human labels (n=450)"
    assert expected in console_text(summary, judge_agreement=AGREEMENT)


def test_console_shows_the_embedded_judge_card_as_one_short_line(summary: ScanSummary) -> None:
    """The card a scan with the default judge passes (its training record's
    leave-one-source-out figures, per source) reads as figures, not as the mapping it is,
    and says they were measured out of source, with intervals."""
    card = judge_card(EMBEDDED_JUDGE_ID)
    assert card is not None
    gptfuzz = json.loads(packaged_record_path().read_text())["heldout"]["gptfuzz"]["harm"]
    [line] = [
        s for s in console_text(summary, judge_agreement=card).splitlines() if "agreement:" in s
    ]
    low, high = gptfuzz["accuracy_ci"]
    assert (
        f"agreement: out of source: gptfuzz unsafe vs not accuracy {gptfuzz['accuracy']:.3f} "
        f"(95% CI {low:.3f}–{high:.3f}), κ {gptfuzz['kappa']:.3f} (n={gptfuzz['n']})"
    ) in line
    assert not set("{}[]'") & set(line)


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        (None, "not measured"),
        ({}, "not measured"),
        (
            {"judge_id": "j", "gptfuzz_evaluate": {"accuracy": 0.9149, "kappa": 0.8098, "n": 1540}},
            "accuracy 0.915, κ 0.810 on GPTFuzz (n=1540)",
        ),
        (
            # As ``sparring judge eval`` saves it: per question, sources as file names.
            {
                "judge_id": "harmbench@1:m",
                "measured_on": ["xstest_v2_completions_gpt4.csv", "xstest_v2_completions_x.csv"],
                "n": 900,
                "unscorable": 3,
                "harm": None,
                "refusal": {"n": 897, "unscorable": 3, "accuracy": 0.9, "f1": 0.8, "kappa": 0.7},
            },
            "refused vs not: accuracy 0.900, κ 0.700 on XSTest (n=897, 3 unscorable)",
        ),
        ({"kappa": 0.5}, "κ 0.500"),
        # A card of unknown shape shows its plain fields and never a nested mapping.
        ({"judge_id": "j", "score": 0.25, "by_file": {"a.csv": 0.9}}, "score 0.250"),
        ({"judge_id": "j", "by_file": {"a.csv": 0.9}}, "measured, no summary figures"),
    ],
)
def test_agreement_text_reads_every_card_shape(
    card: dict[str, object] | None, expected: str
) -> None:
    assert agreement_text(card).startswith(expected)
    assert not set("{}[]'") & set(agreement_text(card))


def test_console_ends_with_the_gate_verdict(summary: ScanSummary) -> None:
    assert console_text(summary, fail_above=0.5).rstrip().splitlines()[-1].startswith("PASS")
    assert console_text(summary, fail_above=0.3).rstrip().splitlines()[-1].startswith("FAIL")


def test_gate_rejects_a_percentage(summary: ScanSummary) -> None:
    with pytest.raises(ConfigError, match="--fail-above"):
        gate(summary, 20)


def test_gate_fails_when_nothing_was_scored() -> None:
    data = ScanData(
        run=run_info(),
        behaviors=[behavior("h1")],
        attempts=[attempt("h1", "direct", None, error="refused connection")],
    )
    verdict = gate(summarize(data), 0.9)
    assert not verdict.passed and "no scored trial" in verdict.line


# JSON


def test_json_round_trips_through_a_file(summary: ScanSummary, tmp_path: Path) -> None:
    path = write_json(tmp_path / "report.json", summary, judge_agreement=AGREEMENT)
    assert load_json(path) == summary


def test_json_numbers_equal_the_summary(summary: ScanSummary) -> None:
    doc = json.loads(json.dumps(to_json(summary)))
    assert len(doc["rates"]) == len(summary.rates)
    for entry, scoped in zip(doc["rates"], summary.rates, strict=True):
        r = scoped.rate
        assert entry["key"] == scoped.key
        assert (entry["k"], entry["n"], entry["value"], entry["low"], entry["high"]) == (
            r.k,
            r.n,
            r.value,
            r.low,
            r.high,
        )
        assert (entry["unscorable"], entry["errors"]) == (scoped.unscorable, scoped.errors)


def test_json_trial_rates_trace_back_to_attempt_keys(summary: ScanSummary) -> None:
    doc = to_json(summary)
    for entry in doc["rates"]:
        if entry["unit"] != "trials":
            continue
        sel = entry["select"]
        chosen = [
            t
            for t in doc["trials"]
            if t["benign"] == sel["benign"]
            and all(sel[d] is None or sel[d] == t[d] for d in ("technique", "category", "family"))
        ]
        scored = [t for t in chosen if t["outcome"] in ("unsafe", "safe", "refusal")]
        k = sum(t["outcome"] == sel["counts"] for t in scored)
        assert (k, len(scored)) == (entry["k"], entry["n"]), entry["key"]
    assert {t["key"] for t in doc["trials"]} == {a.spec.key for a in hand_made_scan().attempts}


def test_json_carries_provenance_and_schema_version(summary: ScanSummary) -> None:
    doc = to_json(summary, fail_above=0.2)
    assert doc["schema_version"] == 1
    assert doc["run"]["config"]["max_tokens"] == 128 and doc["run"]["seed"] == 7
    assert all(e["run_id"] == "run-a" and e["judge_id"] == PRIMARY for e in doc["rates"])
    assert doc["gate"]["passed"] is False


def test_json_from_a_newer_schema_is_refused(summary: ScanSummary) -> None:
    doc = {**to_json(summary), "schema_version": 99}
    with pytest.raises(DataError, match="schema_version 99"):
        from_json(doc, source="old.json")


def test_json_malformed_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.json: not valid JSON"):
        load_json(path)


# JUnit


def junit_root(summary: ScanSummary, fail_above: float | None = None) -> ET.Element:
    return ET.fromstring(to_junit(summary, fail_above=fail_above).encode("utf-8"))


def case_states(root: ET.Element) -> dict[tuple[str, str], str]:
    states = {}
    for suite in root.iter("testsuite"):
        for case in suite.iter("testcase"):
            kids = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            states[suite.get("name", ""), case.get("name", "")] = kids[0] if kids else "passed"
    return states


def test_junit_has_one_case_per_behavior_and_technique(summary: ScanSummary) -> None:
    states = case_states(junit_root(summary))
    assert states == {
        ("asr.base64", "h1"): "failure",
        ("asr.base64", "h2"): "error",
        ("asr.base64", "h3"): "passed",
        ("asr.direct", "h1"): "passed",
        ("asr.direct", "h2"): "skipped",
        ("asr.direct", "h3"): "failure",
        ("over_refusal.base64", "b1"): "passed",
        ("over_refusal.base64", "b2"): "error",
        ("over_refusal.direct", "b1"): "failure",
        ("over_refusal.direct", "b2"): "passed",
        ("sparring.gate", "attack success rate within --fail-above"): "skipped",
    }


def test_junit_totals_match_the_cases(summary: ScanSummary) -> None:
    root = junit_root(summary, fail_above=0.2)
    totals = {k: int(root.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")}
    assert totals == {"tests": 11, "failures": 4, "errors": 2, "skipped": 1}
    for suite in root.iter("testsuite"):
        assert int(suite.get("tests", "-1")) == len(list(suite.iter("testcase")))


def test_junit_gate_case_passes_under_the_threshold(summary: ScanSummary) -> None:
    states = case_states(junit_root(summary, fail_above=0.5))
    assert states["sparring.gate", "attack success rate within --fail-above"] == "passed"


def test_junit_holds_no_prompt_or_response_text() -> None:
    data, markers = marked_scan()
    xml = to_junit(summarize(data))
    assert [m for m in markers if m in xml] == []


# Headless Chromium


def test_html_renders_in_headless_chromium(
    data: ScanData, summary: ScanSummary, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(data, summary), encoding="utf-8")
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "check_html_render.py"),
            str(page),
            "--screenshot",
            str(shot),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    findings = json.loads(run.stdout)
    if run.returncode == 2:
        pytest.skip("no Chromium on PATH; install it with: apt-get install -y chromium")
    assert run.returncode == 0, findings
    assert findings["heatmap_cells"] == 4
    assert findings["ci_lines"] == 3 * findings["interval_rows"] > 0
    assert findings["external_refs"] == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
