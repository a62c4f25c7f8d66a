"""The DART table's arithmetic: relative reduction with its interval, rows per method, and
the per-round counts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sparring.dart.evaluation import helpfulness
from sparring.dart.report import (
    WHY_COLUMNS,
    MethodRun,
    relative_reduction,
    table_rows,
    why_rows,
    write_html,
)
from sparring.stats import rate


def stored(k: int, n: int) -> dict[str, object]:
    """A rate as DART step payloads store it."""
    return rate(k, n).to_dict()


def _eval(k: int, n: int) -> dict[str, object]:
    return {"vr_held_out": stored(k, n), "vr_public": stored(0, 10), "over_refusal": stored(1, 10)}


def test_relative_reduction_is_the_share_of_violations_removed() -> None:
    red = relative_reduction(rate(40, 100), rate(10, 100))
    assert red["value"] == pytest.approx(0.75)
    assert red["low"] is not None and red["high"] is not None
    assert red["low"] < 0.75 < red["high"] <= 1.0


def test_reduction_interval_matches_the_katz_log_risk_ratio() -> None:
    red = relative_reduction(rate(40, 100), rate(20, 100))
    se = math.sqrt(1 / 40 - 1 / 100 + 1 / 20 - 1 / 100)
    assert red["low"] == pytest.approx(1 - math.exp(math.log(0.5) + 1.959964 * se))
    assert red["high"] == pytest.approx(1 - math.exp(math.log(0.5) - 1.959964 * se))


def test_reduction_to_zero_violations_still_gets_a_finite_interval() -> None:
    red = relative_reduction(rate(30, 100), rate(0, 100))
    assert red["value"] == 1.0
    assert red["low"] is not None and 0 < red["low"] < 1
    assert red["high"] == 1.0  # the interval holds its own point estimate


def test_no_reduction_is_defined_when_the_base_never_violated() -> None:
    assert relative_reduction(rate(0, 50), rate(0, 50))["value"] is None


def test_table_has_a_base_row_then_one_row_per_finished_run() -> None:
    dart = MethodRun(
        "A",
        "dart",
        [
            {"eval": _eval(30, 100), "attacks": None},
            {"eval": _eval(5, 100), "attacks": {"red_asr": stored(3, 10), "cells_hit": 4}},
        ],
        None,
    )
    mart = MethodRun(
        "B",
        "mart",
        [{"eval": _eval(30, 100), "attacks": None}, {"eval": _eval(12, 100), "attacks": None}],
        None,
    )
    rows = table_rows([dart, mart])
    assert [r["method"] for r in rows] == ["base", "dart", "mart"]
    assert rows[0]["reduction"]["value"] is None
    assert rows[1]["reduction"]["value"] == pytest.approx(25 / 30)
    assert rows[2]["vr_held_out"]["k"] == 12 and rows[1]["cells_hit"] == 4


def test_helpfulness_proxy_rewards_explained_answers_over_bare_refusals() -> None:
    bare = "I can't help with that."
    explained = (
        "I can't help with that, because it could hurt people. If you are worried about "
        "your own account, here is how to reset your password safely and enable "
        "two-factor authentication instead."
    )
    assert helpfulness(bare) < 0.4 < helpfulness(explained)


def test_why_rows_show_refusals_rejections_and_picks_per_round(tmp_path: Path) -> None:
    attacks = {
        "red_drafts": 40,
        "red_refusals": 7,
        "red_unparsed": 2,
        "rejected_duplicate": 1,
        "rejected_semantic": 5,
        "rejected_lexical": 9,
        "accepted": 25,
        "successful": 6,
    }
    train = {"selected": ["a", "b", "c"], "with_safe_answer": 2, "distilled": 1, "replay": 8}
    run = MethodRun(
        "A",
        "dart",
        [
            {"eval": _eval(30, 100), "attacks": None, "target_train": None},
            {"eval": _eval(20, 100), "attacks": attacks, "target_train": train},
        ],
        None,
    )
    base, first = why_rows(run)
    assert base[0] == "0" and set(base[3:]) == {"-"}
    named = dict(zip(WHY_COLUMNS, first, strict=True))
    assert named["red refusals"] == "7" and named["unparsed"] == "2"
    assert named["rejected dup/sem/lex"] == "1/5/9" and named["accepted"] == "25"
    assert named["AL picks"] == "3" and named["safe answers"] == "2"
    assert named["distilled"] == "1" and named["replay"] == "8"
    page = write_html(tmp_path / "dart.html", [run]).read_text()
    assert "1/5/9" in page and "Why the loop did what it did" in page
