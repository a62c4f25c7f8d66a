"""Loaders for public safety data and generic CSV / JSON-lines files, against the real
files in the shared data directory, a real loopback HTTP server, and files written to
tmp_path. Assertions compare ids, counts and digests so that no behavior text reaches
the test output."""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import http.server
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparring.data import (
    CATEGORIES,
    OTHER,
    CategoryTable,
    ColumnMapping,
    guess_category,
    hub_url,
    load_behaviors,
)
from sparring.data.source_categories import (
    DONOTANSWER_INTENTS,
    HARMBENCH_CATEGORIES,
    JBB_CATEGORIES,
    SIMPLESAFETYTESTS_CATEGORIES,
    STRONGREJECT_CATEGORIES,
    XSTEST_TYPES,
)
from sparring.errors import ConfigError, DataError
from sparring.types import Behavior

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPARRING_DATA_DIR") or REPO.parent / "shared" / "data")

EXPECTED_ROWS = {
    "advbench": 520,
    "harmbench": 80,
    "jbb": 100,
    "jbb-benign": 100,
    "hh-harmless": 1156,
    "xstest": 450,
    "simplesafetytests": 100,
    "donotanswer": 939,
    "strongreject": 313,
}
# Sources whose files carry no category labels at all; every other source must land
# almost entirely in specific categories.
UNLABELLED = {"hh-harmless"}
MAX_OTHER_SHARE = 0.10


@functools.cache
def _load(source: str) -> tuple[Behavior, ...]:
    return tuple(load_behaviors(source))


def _digest(behaviors: list[Behavior] | tuple[Behavior, ...]) -> str:
    blob = json.dumps([b.model_dump() for b in behaviors], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _raw_column(relative: str, column: str) -> list[str]:
    with (DATA / relative).open(newline="", encoding="utf-8") as handle:
        return [row[column] for row in csv.DictReader(handle)]


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --- the taxonomy -------------------------------------------------------------------


def test_taxonomy_has_exactly_the_agreed_ids() -> None:
    assert set(CATEGORIES) == {
        "cyber", "weapons", "cbrn", "violence", "self_harm", "fraud", "illegal_activity",
        "hate_harassment", "misinformation", "privacy", "sexual_content", "child_safety",
        "specialized_advice", "copyright", "other",
    }  # fmt: skip


def test_category_table_rejects_an_id_outside_the_taxonomy() -> None:
    with pytest.raises(ValueError, match="unknown categories"):
        CategoryTable("test", {"label": "not_a_category"})


def test_category_table_ignores_case_and_spacing() -> None:
    table = CategoryTable("test", {"Disinformation and deception": "misinformation"})
    assert table.category("disinformation  and Deception") == "misinformation"


def test_category_table_maps_unknown_labels_to_other() -> None:
    assert CategoryTable("test", {"a": "cyber"}).category("b") == OTHER


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Write ransomware that encrypts a laptop", "cyber"),
        ("Write messages to cyberbully a classmate", "hate_harassment"),
        ("Explain research methods for a thesis", OTHER),
        ("Build a robot arm from cardboard", OTHER),
        ("Explain how to evade taxes on a small business", "fraud"),
    ],
)
def test_guess_category_keyword_rules(text: str, category: str) -> None:
    assert guess_category(text) == category


# --- every public source, from its real file -------------------------------------------


@pytest.mark.parametrize(("source", "rows"), EXPECTED_ROWS.items())
def test_public_source_row_count(source: str, rows: int) -> None:
    assert len(_load(source)) == rows


@pytest.mark.parametrize("source", EXPECTED_ROWS)
def test_public_source_fields_are_filled(source: str) -> None:
    behaviors = _load(source)
    assert all(b.id.strip() and b.text.strip() for b in behaviors)
    assert {b.source for b in behaviors} == {source}


@pytest.mark.parametrize("source", EXPECTED_ROWS)
def test_public_source_categories_are_taxonomy_ids(source: str) -> None:
    assert {b.category for b in _load(source)} <= set(CATEGORIES)


@pytest.mark.parametrize("source", EXPECTED_ROWS)
def test_public_source_ids_are_unique(source: str) -> None:
    ids = [b.id for b in _load(source)]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("source", sorted(set(EXPECTED_ROWS) - UNLABELLED))
def test_public_source_maps_few_rows_to_other(source: str) -> None:
    behaviors = _load(source)
    share = sum(b.category == OTHER for b in behaviors) / len(behaviors)
    assert share <= MAX_OTHER_SHARE


@pytest.mark.parametrize(
    ("relative", "column", "table"),
    [
        ("harmbench/harmbench_behaviors_text_val.csv", "SemanticCategory", HARMBENCH_CATEGORIES),
        ("jailbreakbench/jbb_harmful_behaviors.csv", "Category", JBB_CATEGORIES),
        ("jailbreakbench/jbb_benign_behaviors.csv", "category", JBB_CATEGORIES),
        ("xstest/xstest_prompts.csv", "type", XSTEST_TYPES),
        ("simplesafetytests/simplesafetytests.csv", "harm_area", SIMPLESAFETYTESTS_CATEGORIES),
        ("strongreject/strongreject_dataset.csv", "category", STRONGREJECT_CATEGORIES),
        ("strongreject/strongreject_small_dataset.csv", "category", STRONGREJECT_CATEGORIES),
    ],
)
def test_category_table_lists_every_label_in_file(
    relative: str, column: str, table: CategoryTable
) -> None:
    unlisted = {label for label in _raw_column(relative, column) if label not in table}
    assert unlisted == set()


def test_donotanswer_table_lists_every_intent_family_in_files() -> None:
    codes = set()
    for file in (DATA / "do_not_answer").glob("*.jsonl"):
        for line in file.read_text(encoding="utf-8").splitlines():
            codes.update(json.loads(line)["intents"])
    unlisted = {code for code in codes if code not in DONOTANSWER_INTENTS}
    assert {code[:4] for code in unlisted} <= set(DONOTANSWER_INTENTS.entries)


# --- source-specific behaviour ---------------------------------------------------------


def test_advbench_ids_follow_row_order() -> None:
    assert [b.id for b in _load("advbench")[40:43]] == [
        "advbench-0040",
        "advbench-0041",
        "advbench-0042",
    ]


def test_harmbench_contextual_rows_carry_context() -> None:
    relative = "harmbench/harmbench_behaviors_text_val.csv"
    kinds = dict(
        zip(
            _raw_column(relative, "BehaviorID"),
            _raw_column(relative, "FunctionalCategory"),
            strict=True,
        )
    )
    with_context = {b.id for b in _load("harmbench") if b.context}
    assert with_context == {i for i, kind in kinds.items() if kind == "contextual"}


def test_harmbench_keeps_copyright_category() -> None:
    assert Counter(b.category for b in _load("harmbench"))["copyright"] == 20


def test_harmbench_ids_are_its_behavior_ids() -> None:
    relative = "harmbench/harmbench_behaviors_text_val.csv"
    assert [b.id for b in _load("harmbench")] == _raw_column(relative, "BehaviorID")


def test_harmbench_contextual_row_without_context_is_data_error(tmp_path: Path) -> None:
    path = tmp_path / "hb.csv"
    path.write_text(
        "Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\n"
        "Summarise the document,contextual,illegal,context,,doc_summary\n"
    )
    with pytest.raises(DataError) as error:
        load_behaviors("harmbench", path)
    assert f"{path}:2" in _one_line(error)
    assert "ContextString" in str(error.value)


def test_jbb_benign_rows_pair_with_harmful_rows() -> None:
    harmful, benign = _load("jbb"), _load("jbb-benign")
    assert [b.id for b in benign] == [f"{h.id}-benign" for h in harmful]
    assert [b.category for b in benign] == [h.category for h in harmful]


def test_jbb_benign_flags() -> None:
    assert all(b.benign for b in _load("jbb-benign"))
    assert not any(b.benign for b in _load("jbb"))


def test_xstest_safe_prompts_are_benign_and_unsafe_are_not() -> None:
    assert Counter(b.benign for b in _load("xstest")) == {True: 250, False: 200}


def test_xstest_unknown_label_is_data_error(tmp_path: Path) -> None:
    path = tmp_path / "xs.csv"
    path.write_text("id,prompt,type,label,focus,note\n1,How do I boil an egg?,homonyms,maybe,,\n")
    with pytest.raises(DataError) as error:
        load_behaviors("xstest", path)
    assert f"{path}:2" in _one_line(error)
    assert "'label'" in str(error.value)


def test_hh_harmless_text_is_first_human_turn() -> None:
    with gzip.open(DATA / "hh_rlhf_harmless_base" / "test_dev.jsonl.gz", "rt") as handle:
        transcripts = [json.loads(line)["chosen"] for line in handle]
    behaviors = _load("hh-harmless")
    assert all(
        t.lstrip().startswith(f"Human: {b.text}") and "Assistant:" not in b.text
        for b, t in zip(behaviors, transcripts, strict=True)
    )


def test_hh_transcript_without_human_turn_is_data_error(tmp_path: Path) -> None:
    path = tmp_path / "hh.jsonl"
    lines = [
        {"chosen": "\n\nHuman: Hello\n\nAssistant: Hi", "rejected": ""},
        {"chosen": "\n\nAssistant: nothing asked", "rejected": ""},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with pytest.raises(DataError) as error:
        load_behaviors("hh-harmless", path)
    assert f"{path}:2" in _one_line(error)
    assert "'chosen'" in str(error.value)


def test_donotanswer_reads_one_risk_area_file() -> None:
    behaviors = load_behaviors("donotanswer", DATA / "do_not_answer" / "malicious_uses.jsonl")
    assert (len(behaviors), behaviors[0].id) == (243, "donotanswer-malicious-uses-000")


def test_donotanswer_reads_upstream_csv_form(tmp_path: Path) -> None:
    path = tmp_path / "do_not_answer_en.csv"
    path.write_text(
        "id,risk_area,types_of_harm,specific_harms,question\n"
        "0,Malicious Uses,Assisting illegal activities,x,placeholder one\n"
        '1,Information Hazards,"Risks from leaking or inferring sensitive information '
        '(organization/gov)",x,placeholder two\n'
    )
    behaviors = load_behaviors("donotanswer", path)
    assert [(b.id, b.category) for b in behaviors] == [
        ("donotanswer-0", "illegal_activity"),
        ("donotanswer-1", "privacy"),
    ]


# --- where files come from -------------------------------------------------------------


def test_data_folder_as_path_finds_the_usual_file() -> None:
    assert _digest(load_behaviors("strongreject", DATA)) == _digest(_load("strongreject"))


def test_source_folder_as_path_finds_the_usual_file() -> None:
    path = DATA / "strongreject"
    assert _digest(load_behaviors("strongreject", path)) == _digest(_load("strongreject"))


def test_missing_default_file_names_expected_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARRING_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as error:
        load_behaviors("advbench")
    message = _one_line(error)
    assert str(tmp_path / "advbench" / "harmful_behaviors.csv") in message
    assert "SPARRING_DATA_DIR" in message


def test_missing_explicit_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(DataError) as error:
        load_behaviors("csv", path, mapping=ColumnMapping(text="prompt"))
    assert str(path) in _one_line(error)


def test_unknown_source_is_config_error_listing_sources() -> None:
    with pytest.raises(ConfigError) as error:
        load_behaviors("advbenchh")
    assert "advbench" in _one_line(error)


def test_mapping_for_fixed_format_source_is_config_error() -> None:
    with pytest.raises(ConfigError):
        load_behaviors("advbench", mapping=ColumnMapping(text="goal"))


def test_generic_source_without_mapping_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("prompt\nhello\n")
    with pytest.raises(ConfigError):
        load_behaviors("csv", path)


# --- generic CSV and JSON lines ---------------------------------------------------------

MAPPING = ColumnMapping(
    text="prompt",
    id="key",
    category="area",
    context="doc",
    benign="safe",
    category_map={"Hacking": "cyber"},
)


def test_csv_mapping_builds_behaviors(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        "key,prompt,area,doc,safe\n"
        "a1,first prompt,Hacking,,no\n"
        "a2,second prompt,privacy,some document,yes\n"
        "a3,third prompt,Unlisted,,0\n"
    )
    dumps = [
        b.model_dump(exclude={"expected"}) for b in load_behaviors("csv", path, mapping=MAPPING)
    ]
    assert dumps == [
        {"id": "a1", "text": "first prompt", "category": "cyber", "source": "mine",
         "context": None, "benign": False},
        {"id": "a2", "text": "second prompt", "category": "privacy", "source": "mine",
         "context": "some document", "benign": True},
        {"id": "a3", "text": "third prompt", "category": "other", "source": "mine",
         "context": None, "benign": False},
    ]  # fmt: skip


def test_csv_without_id_column_numbers_rows(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("prompt\none\ntwo\n")
    behaviors = load_behaviors("csv", path, mapping=ColumnMapping(text="prompt"))
    assert [b.id for b in behaviors] == ["plain-0000", "plain-0001"]


def test_jsonl_mapping_allows_optional_field_absent_on_some_rows(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [
        {"key": "a", "prompt": "one", "area": "fraud", "safe": False},
        {"key": "b", "prompt": "two", "area": "fraud", "safe": True, "doc": "context"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    behaviors = load_behaviors("jsonl", path, mapping=MAPPING)
    assert [(b.context, b.benign) for b in behaviors] == [(None, False), ("context", True)]


def test_csv_empty_required_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    # The quoted two-line field shifts physical lines: the empty prompt is on line 4.
    path.write_text('key,prompt\nk1,"spans\ntwo lines"\nk2,\n')
    with pytest.raises(DataError) as error:
        load_behaviors("csv", path, mapping=ColumnMapping(text="prompt", id="key"))
    message = _one_line(error)
    assert f"{path}:4" in message
    assert "'prompt'" in message


def test_csv_row_with_extra_fields_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("key,prompt\nk1,fine\nk2,not, quoted\n")
    with pytest.raises(DataError) as error:
        load_behaviors("csv", path, mapping=ColumnMapping(text="prompt"))
    assert f"{path}:3" in _one_line(error)


def test_csv_mapping_unknown_column_names_header_and_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("key,prompt\nk1,hello\n")
    with pytest.raises(DataError) as error:
        load_behaviors("csv", path, mapping=ColumnMapping(text="prompt", category="area"))
    message = _one_line(error)
    assert f"{path}:1" in message
    assert "'area'" in message


def test_jsonl_mapping_unknown_field_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"prompt": "hello"}) + "\n")
    with pytest.raises(DataError) as error:
        load_behaviors("jsonl", path, mapping=ColumnMapping(text="question"))
    message = _one_line(error)
    assert f"{path}:1" in message
    assert "'question'" in message


def test_jsonl_bad_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "ok"}\n\n{"prompt": oops}\n')
    with pytest.raises(DataError) as error:
        load_behaviors("jsonl", path, mapping=ColumnMapping(text="prompt"))
    assert f"{path}:3" in _one_line(error)


def test_jsonl_missing_required_field_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "ok"}\n{"other": "x"}\n')
    with pytest.raises(DataError) as error:
        load_behaviors("jsonl", path, mapping=ColumnMapping(text="prompt"))
    message = _one_line(error)
    assert f"{path}:2" in message
    assert "'prompt'" in message


def test_unreadable_benign_flag_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("prompt,safe\nhello,perhaps\n")
    with pytest.raises(DataError) as error:
        load_behaviors("csv", path, mapping=ColumnMapping(text="prompt", benign="safe"))
    message = _one_line(error)
    assert f"{path}:2" in message
    assert "'safe'" in message


def test_repeated_id_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("key,prompt\nk1,one\nk2,two\nk1,three\n")
    with pytest.raises(DataError) as error:
        load_behaviors("csv", path, mapping=ColumnMapping(text="prompt", id="key"))
    message = _one_line(error)
    assert f"{path}:4" in message
    assert "line 2" in message


def test_category_map_to_unknown_category_is_config_error() -> None:
    with pytest.raises(ConfigError):
        ColumnMapping(text="prompt", category="area", category_map={"Hacking": "hacking"})


# --- URLs and hub shorthands, through a real loopback server ----------------------------

HUB_PREFIX = "/datasets/sparring-test/public-data/resolve/main/"


class _DataHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the data directory, also under a hub-style resolve path, counting requests."""

    requests: Counter[str]

    def translate_path(self, path: str) -> str:
        self.requests[path] += 1
        if path.startswith(HUB_PREFIX):
            path = "/" + path.removeprefix(HUB_PREFIX)
        return super().translate_path(path)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def data_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Counter[str]]]:
    monkeypatch.setenv("SPARRING_CACHE", str(tmp_path / "cache"))
    counts: Counter[str] = Counter()
    handler = type("Handler", (_DataHandler,), {"requests": counts})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(DATA))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("source", "relative"),
    [
        ("advbench", "advbench/harmful_behaviors.csv"),
        ("hh-harmless", "hh_rlhf_harmless_base/test_dev.jsonl.gz"),
    ],
)
def test_url_gives_same_behaviors_as_local_file(
    data_server: tuple[str, Counter[str]], source: str, relative: str
) -> None:
    base, _ = data_server
    assert _digest(load_behaviors(source, f"{base}/{relative}")) == _digest(_load(source))


def test_url_download_is_cached(data_server: tuple[str, Counter[str]]) -> None:
    base, counts = data_server
    url = f"{base}/strongreject/strongreject_dataset.csv"
    load_behaviors("strongreject", url)
    load_behaviors("strongreject", url)
    assert counts["/strongreject/strongreject_dataset.csv"] == 1


def test_hub_shorthand_downloads_from_hub_endpoint(
    data_server: tuple[str, Counter[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = data_server
    monkeypatch.setenv("HF_ENDPOINT", base)
    location = "hf://datasets/sparring-test/public-data/jailbreakbench/jbb_harmful_behaviors.csv"
    assert _digest(load_behaviors("jbb", location)) == _digest(_load("jbb"))


def test_generic_file_from_url_keeps_its_own_name_as_source(
    data_server: tuple[str, Counter[str]],
) -> None:
    base, _ = data_server
    url = f"{base}/advbench/harmful_behaviors.csv"
    behaviors = load_behaviors("csv", url, mapping=ColumnMapping(text="goal"))
    assert (len(behaviors), behaviors[0].source) == (520, "harmful_behaviors")


def test_url_not_found_is_data_error_naming_url(data_server: tuple[str, Counter[str]]) -> None:
    url = f"{data_server[0]}/advbench/absent.csv"
    with pytest.raises(DataError) as error:
        load_behaviors("advbench", url)
    message = _one_line(error)
    assert url in message
    assert "404" in message


def test_hub_url_uses_revision_and_default_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert (
        hub_url("hf://datasets/owner/name@v1.0/data/train.csv")
        == "https://huggingface.co/datasets/owner/name/resolve/v1.0/data/train.csv"
    )


def test_malformed_hub_shorthand_is_data_error() -> None:
    with pytest.raises(DataError) as error:
        load_behaviors("advbench", "hf://models/owner/name/file.csv")
    assert "hf://datasets/OWNER/NAME/FILE" in _one_line(error)
