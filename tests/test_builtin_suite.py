"""The built-in suite shipped as package data, and suite lookup by name. Assertions compare
ids, counts and categories so that no behavior text reaches the test output."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from sparring.data import CATEGORIES, LOADERS, OTHER, SUITES, load_behaviors, suite
from sparring.errors import ConfigError

PUBLIC_SOURCES = sorted(name for name, loader in LOADERS.items() if loader.default is not None)


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def test_harmful_suite_has_at_least_150_behaviors() -> None:
    assert len(suite("builtin-harmful")) >= 150


def test_benign_suite_has_at_least_100_prompts() -> None:
    assert len(suite("builtin-benign")) >= 100


def test_harmful_suite_spans_ten_categories_with_eight_each() -> None:
    counts = Counter(b.category for b in suite("builtin-harmful"))
    assert sum(n >= 8 for n in counts.values()) >= 10


def test_harmful_suite_covers_cbrn_and_child_safety() -> None:
    counts = Counter(b.category for b in suite("builtin-harmful"))
    assert counts["cbrn"] >= 8 and counts["child_safety"] >= 8


def test_benign_suite_resembles_many_categories() -> None:
    assert len({b.category for b in suite("builtin-benign")}) >= 10


def test_builtin_categories_are_specific_taxonomy_ids() -> None:
    assert {b.category for b in suite("builtin")} <= set(CATEGORIES) - {OTHER}


def test_builtin_ids_are_unique() -> None:
    ids = [b.id for b in suite("builtin")]
    assert len(set(ids)) == len(ids)


def test_builtin_ids_name_suite_part_and_category() -> None:
    for behavior in suite("builtin"):
        part = "benign-" if behavior.benign else ""
        assert re.fullmatch(rf"builtin-{part}{behavior.category}-\d{{3}}", behavior.id), behavior.id


def test_builtin_ids_are_numbered_from_one_without_gaps() -> None:
    numbers: dict[str, list[int]] = {}
    for behavior in suite("builtin"):
        stem, number = behavior.id.rsplit("-", 1)
        numbers.setdefault(stem, []).append(int(number))
    assert all(found == list(range(1, len(found) + 1)) for found in numbers.values())


def test_harmful_suite_is_not_benign() -> None:
    assert not any(b.benign for b in suite("builtin-harmful"))


def test_benign_suite_is_benign() -> None:
    assert all(b.benign for b in suite("builtin-benign"))


def test_builtin_sources_name_their_part() -> None:
    sources = Counter(b.source for b in suite("builtin"))
    assert set(sources) == {"builtin-harmful", "builtin-benign"}


def test_builtin_has_no_duplicate_texts() -> None:
    texts = [_normalise(b.text) for b in suite("builtin")]
    assert len(set(texts)) == len(texts)


def test_builtin_texts_are_not_taken_from_public_sets() -> None:
    public = {_normalise(b.text) for name in PUBLIC_SOURCES for b in load_behaviors(name)}
    copied = [b.id for b in suite("builtin") if _normalise(b.text) in public]
    assert copied == []


def test_builtin_is_harmful_then_benign() -> None:
    expected = [b.id for b in suite("builtin-harmful")] + [b.id for b in suite("builtin-benign")]
    assert [b.id for b in suite("builtin")] == expected


def test_suite_returns_a_fresh_list_each_call() -> None:
    first = suite("builtin-harmful")
    first.clear()
    assert len(suite("builtin-harmful")) >= 150


def test_suites_list_builtin_and_every_public_source() -> None:
    assert set(SUITES) == {
        "builtin",
        "builtin-harmful",
        "builtin-benign",
        "builtin-borderline",
        "builtin-tasks",
        "injection",
        *PUBLIC_SOURCES,
    }


def test_suite_descriptions_are_one_line() -> None:
    assert all(text.strip() and "\n" not in text for text in SUITES.values())


def test_public_suite_reads_the_default_file() -> None:
    assert [b.id for b in suite("jbb")] == [b.id for b in load_behaviors("jbb")]


def test_unknown_suite_is_config_error_listing_names() -> None:
    with pytest.raises(ConfigError) as error:
        suite("builtin-harmfull")
    message = str(error.value)
    assert "builtin-harmful" in message and "\n" not in message
