"""Run-to-run comparison: real shifts are flagged, seed noise is not."""

from __future__ import annotations

import io
import json

from rich.console import Console

from scan_builders import attempt, behavior, run_info, simulated_scan
from sparring.metrics import Metric, ScanData, ScanSummary, summarize
from sparring.report.compare import compare, comparison_to_json, render_comparison
from sparring.types import Label

TECHNIQUES = {"direct": 0.1, "base64": 0.3, "roleplay": 0.2, "suffix": 0.05}


def fixed_scan(run_id: str, unsafe: int, total: int) -> ScanSummary:
    """``total`` harmful behaviors, one direct trial each, exactly ``unsafe`` of them unsafe."""
    behaviors = [behavior(f"h{i}") for i in range(total)]
    attempts = [
        attempt(f"h{i}", "direct", Label.UNSAFE if i < unsafe else Label.REFUSAL)
        for i in range(total)
    ]
    return summarize(ScanData(run=run_info(run_id), behaviors=behaviors, attempts=attempts))


def test_planted_regression_is_flagged() -> None:
    comparison = compare(fixed_scan("before", 20, 200), fixed_scan("after", 80, 200))
    flagged = {c.key: c for c in comparison.changes}
    asr = flagged["asr"]
    assert (asr.a.k, asr.b.k) == (20, 80)
    assert asr.direction == "up" and asr.regression
    assert asr.p_adjusted < 1e-6
    assert asr.low > 0.2 and asr.high < 0.4  # difference 0.3 with its interval


def test_improvement_is_flagged_but_not_as_a_regression() -> None:
    comparison = compare(fixed_scan("before", 80, 200), fixed_scan("after", 20, 200))
    asr = next(c for c in comparison.changes if c.key == "asr")
    assert asr.direction == "down"
    assert not asr.regression


def test_fewer_refusals_of_harmful_requests_is_a_regression() -> None:
    comparison = compare(fixed_scan("before", 20, 200), fixed_scan("after", 80, 200))
    refusal = next(c for c in comparison.changes if c.key == "refusal")
    assert refusal.metric is Metric.REFUSAL and refusal.direction == "down"
    assert refusal.regression


def test_reruns_differing_only_by_seed_are_rarely_flagged() -> None:
    # 20 pairs of scans at identical rates (4 techniques x 3 categories x 20 behaviors); with
    # Tarone at alpha 0.05: at most ~1 pair in 20 may show any change.
    flagged_pairs = 0
    for seed in range(20):
        a = summarize(simulated_scan(TECHNIQUES, seed=2 * seed, run_id="a"))
        b = summarize(simulated_scan(TECHNIQUES, seed=2 * seed + 1, run_id="b"))
        comparison = compare(a, b)
        assert len(comparison.tested) == 29
        flagged_pairs += bool(comparison.changes)
    assert flagged_pairs <= 1


def test_only_the_shifted_technique_is_flagged() -> None:
    before = summarize(
        simulated_scan(
            {"direct": 0.1, "base64": 0.2}, seed=11, run_id="a", behaviors_per_category=60
        )
    )
    after = summarize(
        simulated_scan(
            {"direct": 0.1, "base64": 0.6}, seed=12, run_id="b", behaviors_per_category=60
        )
    )
    keys = {c.key for c in compare(before, after).changes}
    assert "asr[technique=base64]" in keys
    assert not any("direct" in k for k in keys)


def test_rates_present_in_one_run_only_are_listed_not_tested() -> None:
    a = summarize(simulated_scan({"direct": 0.1}, seed=1, run_id="a"))
    b = summarize(simulated_scan({"direct": 0.1, "base64": 0.1}, seed=2, run_id="b"))
    comparison = compare(a, b)
    assert "asr[technique=base64]" in comparison.only_in_b
    assert all("base64" not in c.key for c in comparison.tested)


def test_different_targets_are_noted() -> None:
    a = fixed_scan("a", 20, 100)
    b = summarize(
        ScanData(
            run=run_info("b", target="builtin/qwen2.5-coder-0.5b"),
            behaviors=[behavior("h0")],
            attempts=[attempt("h0", "direct", Label.SAFE)],
        )
    )
    assert any("targets differ" in note for note in compare(a, b).notes)


def test_json_rendering_lists_every_tested_rate() -> None:
    comparison = compare(fixed_scan("before", 20, 200), fixed_scan("after", 80, 200))
    doc = json.loads(json.dumps(comparison_to_json(comparison)))
    assert len(doc["rates"]) == len(comparison.tested)
    asr = next(r for r in doc["rates"] if r["key"] == "asr")
    assert asr["significant"] and asr["regression"] and asr["direction"] == "up"
    assert (asr["a"]["k"], asr["b"]["k"]) == (20, 80)


def test_console_rendering_names_the_changed_rate() -> None:
    comparison = compare(fixed_scan("before", 20, 200), fixed_scan("after", 80, 200))
    buffer = io.StringIO()
    render_comparison(comparison, Console(file=buffer, width=160))
    text = buffer.getvalue()
    assert "regression" in text and "+30.0 pts" in text


def test_console_rendering_says_when_nothing_changed() -> None:
    same = fixed_scan("a", 20, 200)
    buffer = io.StringIO()
    render_comparison(compare(same, fixed_scan("b", 20, 200)), Console(file=buffer, width=160))
    assert "no rate changed significantly" in buffer.getvalue()
