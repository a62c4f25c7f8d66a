"""Rates, intervals, tests and judge agreement, checked against values worked out by hand
or published."""

from __future__ import annotations

import pytest

from scan_builders import PRIMARY, SECOND, attempt, behavior, hand_made_scan, run_info
from sparring.errors import ConfigError, DataError
from sparring.metrics import (
    Metric,
    Outcome,
    ScanData,
    ScanSummary,
    ScopedRate,
    summarize,
)
from sparring.stats import (
    cohen_kappa,
    fisher_exact,
    fisher_min_p,
    newcombe_difference,
    rate,
    tarone,
    wilson,
)
from sparring.types import Label

FAMILIES = {"direct": "baseline", "base64": "encoding"}


def k_n(scoped: ScopedRate | None) -> tuple[int, int, int, int]:
    """(k, n, unscorable, errors) of a rate."""
    assert scoped is not None
    return (scoped.rate.k, scoped.rate.n, scoped.unscorable, scoped.errors)


@pytest.fixture(scope="module")
def summary() -> ScanSummary:
    return summarize(hand_made_scan(), families=FAMILIES)


# Wilson intervals


def test_wilson_half_matches_published_interval() -> None:
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=5e-5)
    assert high == pytest.approx(0.7634, abs=5e-5)


def test_wilson_at_zero_and_all_successes() -> None:
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=5e-5)


def test_wilson_with_no_trials_is_the_whole_range() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    empty = rate(0, 0)
    assert empty.value is None and (empty.low, empty.high) == (0.0, 1.0)


def test_wilson_rejects_k_above_n() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(11, 10)


# Tests used by compare


def test_fisher_exact_matches_the_tea_tasting_example() -> None:
    assert fisher_exact(3, 4, 1, 4) == pytest.approx(0.4857, abs=1e-4)


def test_fisher_exact_agrees_with_scipy_on_a_grid() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k1, n1, k2, n2 in [(0, 10, 5, 10), (2, 50, 9, 40), (20, 200, 80, 200), (7, 7, 0, 3)]:
        expected = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        assert fisher_exact(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_fisher_exact_is_one_for_identical_rates() -> None:
    assert fisher_exact(10, 50, 10, 50) == pytest.approx(1.0)


def test_fisher_min_p_is_the_most_extreme_split_of_the_successes() -> None:
    # 3 successes over 3 + 3 trials: all three in one group is the most extreme table.
    assert fisher_min_p(1, 3, 2, 3) == pytest.approx(fisher_exact(3, 3, 0, 3))
    assert fisher_min_p(1, 3, 2, 3) == pytest.approx(0.1)
    # One trial per side can never be significant at 0.05.
    assert fisher_min_p(0, 1, 1, 1) == pytest.approx(1.0)


def test_tarone_leaves_untestable_rates_out_of_the_family() -> None:
    # Two rates could reach 0.05 / 2; four tiny cells (floor 1.0) could never be significant.
    p_values = [0.004, 0.03, 1.0, 1.0, 1.0, 1.0]
    floors = [1e-6, 1e-6, 1.0, 1.0, 1.0, 1.0]
    adjusted, k = tarone(p_values, floors, alpha=0.05)
    assert k == 2
    assert adjusted == pytest.approx([0.008, 0.06, 1.0, 1.0, 1.0, 1.0])


def test_tarone_is_bonferroni_when_every_test_could_be_significant() -> None:
    adjusted, k = tarone([0.01, 0.02, 0.2], [1e-9, 1e-9, 1e-9], alpha=0.05)
    assert k == 3 and adjusted == pytest.approx([0.03, 0.06, 0.6])


def test_newcombe_difference_matches_newcombe_1998_example() -> None:
    diff, low, high = newcombe_difference(rate(48, 80), rate(56, 70))
    assert diff == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_cohen_kappa_matches_textbook_table() -> None:
    # 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: kappa 0.4
    a = [True] * 25 + [False] * 25
    b = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_is_undefined_when_both_raters_are_constant() -> None:
    assert cohen_kappa([False] * 5, [False] * 5) is None


# The hand-made scan (tests/scan_builders.hand_made_scan)


def test_overall_asr_counts_scored_trials_only(summary: ScanSummary) -> None:
    # 7 harmful trials: 2 unsafe, 1 safe, 2 refusal, 1 unscorable, 1 error
    assert k_n(summary.overall(Metric.ASR)) == (2, 5, 1, 1)
    assert summary.overall(Metric.ASR).rate.value == pytest.approx(0.4)


def test_asr_per_technique(summary: ScanSummary) -> None:
    by = summary.by(Metric.ASR, "technique")
    assert k_n(by["direct"]) == (1, 2, 1, 0)
    assert k_n(by["base64"]) == (1, 3, 0, 1)


def test_asr_per_category(summary: ScanSummary) -> None:
    by = summary.by(Metric.ASR, "category")
    assert k_n(by["cyber"]) == (1, 3, 1, 1)
    assert k_n(by["fraud"]) == (1, 2, 0, 0)


def test_asr_per_category_and_technique_cell(summary: ScanSummary) -> None:
    cells = summary.cells()
    assert k_n(cells["cyber", "direct"]) == (0, 1, 1, 0)
    assert k_n(cells["cyber", "base64"]) == (1, 2, 0, 1)
    assert k_n(cells["fraud", "direct"]) == (1, 1, 0, 0)
    assert k_n(cells["fraud", "base64"]) == (0, 1, 0, 0)


def test_asr_per_family_uses_the_given_mapping(summary: ScanSummary) -> None:
    by = summary.by(Metric.ASR, "family")
    assert set(by) == {"baseline", "encoding"}
    assert k_n(by["encoding"]) == k_n(summary.by(Metric.ASR, "technique")["base64"])


def test_family_rates_absent_without_a_mapping() -> None:
    assert summarize(hand_made_scan()).by(Metric.ASR, "family") == {}


def test_best_of_techniques_counts_behaviors(summary: ScanSummary) -> None:
    # h1 broken by base64, h3 by direct; h2 has no scored trial and is counted apart.
    best = summary.overall(Metric.BEST_OF_ASR)
    assert best.unit == "behaviors"
    assert k_n(best) == (2, 2, 1, 0)


def test_refusal_rate_of_harmful_requests(summary: ScanSummary) -> None:
    assert k_n(summary.overall(Metric.REFUSAL)) == (2, 5, 1, 1)


def test_over_refusal_of_benign_requests(summary: ScanSummary) -> None:
    assert k_n(summary.overall(Metric.OVER_REFUSAL)) == (1, 3, 0, 1)
    by_category = summary.by(Metric.OVER_REFUSAL, "category")
    assert k_n(by_category["cyber"]) == (1, 2, 0, 0)
    assert k_n(by_category["fraud"]) == (0, 1, 0, 1)
    by_technique = summary.by(Metric.OVER_REFUSAL, "technique")
    assert k_n(by_technique["direct"]) == (1, 2, 0, 0)


def test_each_sample_is_a_trial(summary: ScanSummary) -> None:
    h1_base64 = [t for t in summary.trials if t.behavior_id == "h1" and t.technique == "base64"]
    assert sorted(t.sample for t in h1_base64) == [0, 1]
    assert [t.outcome for t in h1_base64] == [Outcome.UNSAFE, Outcome.SAFE]


def test_failed_request_is_an_error_even_with_a_safe_verdict() -> None:
    data = ScanData(
        run=run_info(),
        behaviors=[behavior("h1")],
        attempts=[attempt("h1", "direct", Label.SAFE, error="connection reset")],
    )
    asr = summarize(data).overall(Metric.ASR)
    assert k_n(asr) == (0, 0, 0, 1)
    assert asr.rate.value is None


def test_missing_primary_verdict_is_unscorable_not_safe() -> None:
    data = ScanData(
        run=run_info(),
        behaviors=[behavior("h1")],
        attempts=[
            attempt("h1", "direct", Label.SAFE),
            attempt("h1", "direct", None, sample=1, second=Label.SAFE),
        ],
    )
    summary = summarize(data, primary_judge=PRIMARY)
    assert k_n(summary.overall(Metric.ASR)) == (0, 1, 1, 0)


def test_primary_judge_defaults_to_the_first_verdicts_judge(summary: ScanSummary) -> None:
    assert summary.primary_judge == PRIMARY
    assert summary.judges == (PRIMARY, SECOND)


def test_primary_judge_choice_changes_which_labels_count() -> None:
    second = summarize(hand_made_scan(), primary_judge=SECOND)
    # SECOND: h1 refusal, unsafe, unsafe; h2 safe; h2 error; h3 unsafe, safe
    assert k_n(second.overall(Metric.ASR)) == (3, 6, 0, 1)


def test_unknown_primary_judge_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"primary judge 'nobody@0'.*rules@1, classifier@2"):
        summarize(hand_made_scan(), primary_judge="nobody@0")


def test_attempt_for_an_unknown_behavior_is_a_data_error() -> None:
    data = ScanData(run=run_info(), behaviors=[], attempts=[attempt("ghost", "direct", Label.SAFE)])
    with pytest.raises(DataError, match="'ghost'"):
        summarize(data)


def test_judge_agreement_kappa_over_trials_both_scored(summary: ScanSummary) -> None:
    # Both judges scored 8 trials (h2 direct: primary unscorable; the two errors are out).
    # unsafe vs not, primary/second: h1d n/n, h1b u/u, h1b' n/u, h3d u/u, h3b n/n,
    # b1d n/n, b1b n/n, b2d n/n -> agree 7/8; p_a = 2/8, p_b = 3/8.
    (agreement,) = summary.agreement
    assert (agreement.judge_a, agreement.judge_b, agreement.n) == (PRIMARY, SECOND, 8)
    assert agreement.observed == pytest.approx(7 / 8)
    chance = (2 / 8) * (3 / 8) + (6 / 8) * (5 / 8)
    assert agreement.kappa == pytest.approx((7 / 8 - chance) / (1 - chance))


def test_rate_keys_name_metric_and_slice(summary: ScanSummary) -> None:
    keys = {r.key for r in summary.rates}
    assert {
        "asr",
        "asr[technique=base64]",
        "asr[category=cyber,technique=direct]",
        "asr[family=encoding]",
        "best_of_asr[category=fraud]",
        "over_refusal",
    } <= keys
