"""Every mistake in a data file is one DataError line naming the file, the line and the fix;
and a behavior file given without a format or columns is read from its header. Real files
are written to tmp_path; the public sets come from the shared data directory."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sparring.data import (
    MAPPING_KEYS,
    ColumnMapping,
    load_behaviors,
    load_behaviors_auto,
    parse_columns,
)
from sparring.errors import ConfigError, DataError, SparringError
from sparring.judges import load_labelled
from sparring.scan import ScanConfig, load_scan_behaviors
from sparring.types import Behavior

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPARRING_DATA_DIR") or REPO.parent / "shared" / "data")

BEHAVIORS_HEADER = b"id,prompt,topic\n"
GPTFUZZ_HEADER = b"question,Response,label\n"


def _write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def _one_line(read: Callable[[], object], kind: type[SparringError] = DataError) -> str:
    with pytest.raises(kind) as error:
        read()
    message = str(error.value)
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def _auto(path: Path) -> Callable[[], object]:
    return lambda: load_behaviors_auto(str(path))


def _digest(behaviors: list[Behavior]) -> str:
    blob = json.dumps([b.model_dump() for b in behaviors], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# --- bytes that are not text -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "read"),
    [
        ("mine.csv", BEHAVIORS_HEADER + b"1,fine,cyber\n2,caf\xe9,cyber\n", load_behaviors_auto),
        ("mine.jsonl", b'{"prompt": "fine"}\n{"prompt": "caf\xe9"}\n', load_behaviors_auto),
        ("labels.csv", GPTFUZZ_HEADER + b"q,fine,0\nq,caf\xe9,1\n", load_labelled),
        ("labels.jsonl", b'{"intent": "a"}\n{"intent": "caf\xe9"}\n', load_labelled),
    ],
)
def test_invalid_utf8_names_file_line_and_asks_for_utf8(
    tmp_path: Path, name: str, content: bytes, read: Callable[[str], object]
) -> None:
    path = _write(tmp_path, name, content)
    message = _one_line(lambda: read(str(path)))
    line = 3 if name.endswith(".csv") else 2
    assert f"{path}:{line}: byte " in message
    assert "re-save the file as UTF-8" in message


@pytest.mark.parametrize(
    ("name", "content", "read"),
    [
        ("mine.csv", BEHAVIORS_HEADER + b"1,fine,cyber\n2,a\x00b,cyber\n", load_behaviors_auto),
        ("labels.csv", GPTFUZZ_HEADER + b"q,fine,0\nq,a\x00b,1\n", load_labelled),
    ],
)
def test_nul_byte_names_file_and_line(
    tmp_path: Path, name: str, content: bytes, read: Callable[[str], object]
) -> None:
    path = _write(tmp_path, name, content)
    assert f"{path}:3: holds a NUL character" in _one_line(lambda: read(str(path)))


def test_nul_escaped_in_json_names_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.jsonl", b'{"prompt": "ok"}\n{"prompt": "a\\u0000b"}\n')
    assert f"{path}:2: field 'prompt' holds a NUL character" in _one_line(_auto(path))


def test_utf16_file_asks_for_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", "id,prompt\n1,hello\n".encode("utf-16"))
    message = _one_line(_auto(path))
    assert str(path) in message
    assert "re-save it as UTF-8" in message


# --- quoting -----------------------------------------------------------------------------


def test_quote_never_closed_names_the_line_it_opened(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + b'1,ok,cyber\n2,"oops,cyber\n3,b,c\n')
    message = _one_line(_auto(path))
    assert f"{path}:3: the quote opened on this line is never closed" in message


def test_quote_closed_rows_later_is_found_by_the_rows_it_swallowed(tmp_path: Path) -> None:
    # The stray quote on line 5 closes the one opened on line 2, and the record parses.
    rows = b'1,"oops,cyber\n2,two,cyber\n3,three,cyber\n4,four",cyber\n'
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + rows)
    message = _one_line(_auto(path))
    assert f"{path}:2: the quote opened on this line swallows lines 3-5" in message


def test_quote_that_runs_into_a_later_quoted_field_names_where_it_opened(tmp_path: Path) -> None:
    rows = b'1,"oops,cyber\n2,two,cyber\n3,"say ""hi""",cyber\n'
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + rows)
    message = _one_line(_auto(path))
    assert f"{path}:2: the quoted field opened on this line runs on to line 4" in message


def test_text_after_a_closing_quote_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + b'1,ok,cyber\n2,"ab"c,cyber\n')
    assert f"{path}:3: broken quoting" in _one_line(_auto(path))


def test_multi_line_text_that_does_not_read_as_rows_is_kept(tmp_path: Path) -> None:
    rows = b'q1,"Sure, here it is:\n\nstep one, then two\nthat is all",1\n'
    path = _write(tmp_path, "labels.csv", GPTFUZZ_HEADER + rows)
    [item] = load_labelled(path)
    assert item.input.transcript[-1].content.count("\n") == 3


def test_broken_quote_in_a_labelled_file_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "labels.csv", GPTFUZZ_HEADER + b'q,"fine",0\nq,"never closed,1\n')
    assert f"{path}:3: the quote opened on this line is never closed" in _one_line(
        lambda: load_labelled(path)
    )


# --- row width and size ------------------------------------------------------------------


@pytest.mark.parametrize(("row", "fields"), [(b"2,too short\n", 2), (b"2,too,many,fields\n", 4)])
def test_row_of_the_wrong_width_names_line_and_header(
    tmp_path: Path, row: bytes, fields: int
) -> None:
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + b"1,ok,cyber\n" + row)
    message = _one_line(_auto(path))
    assert f"{path}:3: row has {fields} fields but the header has 3 (id, prompt, topic)" in message


def test_field_over_the_csv_limit_names_its_line(tmp_path: Path) -> None:
    huge = b"x" * (csv.field_size_limit() + 1)
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + b"1,ok,cyber\n2," + huge + b",c\n")
    message = _one_line(_auto(path))
    assert f"{path}:3: a field starting on this line is longer than" in message


def test_header_over_the_csv_limit_names_line_one(tmp_path: Path) -> None:
    huge = b"x" * (csv.field_size_limit() + 1)
    path = _write(tmp_path, "mine.csv", b"id," + huge + b"\n1,ok\n")
    assert f"{path}:1: a field starting on this line is longer than" in _one_line(_auto(path))


def test_empty_file_asks_for_a_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", b"\n\n")
    assert f"{path}:1: the file is empty" in _one_line(_auto(path))


def test_header_repeating_a_column_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", b"id,prompt,prompt\n1,a,b\n")
    assert f"{path}:1: the header repeats column 'prompt'" in _one_line(_auto(path))


# --- headers -----------------------------------------------------------------------------


def test_wrong_header_for_a_public_format_lists_expected_and_found(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + b"1,ok,cyber\n")
    message = _one_line(lambda: load_behaviors("advbench", path))
    assert message.startswith(f"{path}:1: missing column 'goal', 'target'")
    assert "expected goal, target; found 'id', 'prompt', 'topic'" in message


def test_wrong_header_for_a_labelled_file_lists_expected_and_found(tmp_path: Path) -> None:
    from sparring.judges.labelled import load_gptfuzz

    path = _write(tmp_path, "labels.csv", b"question,reply,label\nq,r,0\n")
    message = _one_line(lambda: load_gptfuzz(path))
    assert message.startswith(f"{path}:1: missing column 'Response'")
    assert "expected question, Response, label; found 'question', 'reply', 'label'" in message


def test_unknown_labelled_format_shows_the_header_found(tmp_path: Path) -> None:
    path = _write(tmp_path, "labels.csv", b"a,b\n1,2\n")
    assert "found a,b" in _one_line(lambda: load_labelled(path))


def test_labelled_jsonl_missing_field_lists_the_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, "labels.jsonl", b'{"intent": "x", "answer": "y", "label": "safe"}\n')
    message = _one_line(lambda: load_labelled(path))
    assert f"{path}:1: field 'response' is missing (fields: 'intent', 'answer', 'label')" in message


def test_labelled_jsonl_category_outside_the_taxonomy_is_an_error(tmp_path: Path) -> None:
    line = {"intent": "x", "response": "y", "label": "safe", "category": "hacking"}
    path = _write(tmp_path, "labels.jsonl", json.dumps(line).encode() + b"\n")
    assert f"{path}:1: category 'hacking' is not a sparring category" in _one_line(
        lambda: load_labelled(path)
    )


def test_labelled_jsonl_benign_reads_as_a_flag(tmp_path: Path) -> None:
    line = {"intent": "x", "response": "y", "label": "safe", "benign": "false"}
    path = _write(tmp_path, "labels.jsonl", json.dumps(line).encode() + b"\n")
    assert not load_labelled(path)[0].input.behavior.benign


# --- reading a file without a format: the header decides ----------------------------------


def test_plain_csv_needs_no_flag_and_says_which_columns_it_took(tmp_path: Path) -> None:
    rows = b"a1,first prompt,cyber\na2,second prompt,Self harm\na3,third,gardening\n"
    path = _write(tmp_path, "behaviors.csv", BEHAVIORS_HEADER + rows)
    behaviors, note = load_behaviors_auto(str(path))
    assert [(b.id, b.category, b.source) for b in behaviors] == [
        ("a1", "cyber", "behaviors"),
        ("a2", "self_harm", "behaviors"),
        ("a3", "other", "behaviors"),
    ]
    assert note == (
        f"{path}: no --format; took column 'prompt' as text, 'id' as id, 'topic' as category "
        "(override with --columns)"
    )


def test_plain_jsonl_picks_columns_ignoring_case(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.jsonl", b'{"Question": "one", "Category": "fraud"}\n')
    behaviors, note = load_behaviors_auto(str(path))
    assert [(b.id, b.text, b.category) for b in behaviors] == [("mine-0000", "one", "fraud")]
    assert note is not None
    assert "'Question' as text, 'Category' as category" in note


def test_csv_format_without_columns_guesses_them(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.txt", b"prompt\none\n")
    behaviors, note = load_behaviors_auto(str(path), "csv")
    assert [b.text for b in behaviors] == ["one"]
    assert note == f"{path}: no --columns; took column 'prompt' as text (override with --columns)"


def test_no_obvious_text_column_lists_the_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", b"key,sentence\n1,hello\n")
    message = _one_line(_auto(path))
    assert message == (
        f"{path}:1: no column obviously holds the requests (found: 'key', 'sentence'); "
        "pass --columns text=COLUMN"
    )


@pytest.mark.parametrize(
    ("source", "relative"),
    [
        ("advbench", "advbench/harmful_behaviors.csv"),
        ("harmbench", "harmbench/harmbench_behaviors_text_val.csv"),
        ("jbb", "jailbreakbench/jbb_harmful_behaviors.csv"),
        ("jbb-benign", "jailbreakbench/jbb_benign_behaviors.csv"),
        ("xstest", "xstest/xstest_prompts.csv"),
        ("simplesafetytests", "simplesafetytests/simplesafetytests.csv"),
        ("strongreject", "strongreject/strongreject_dataset.csv"),
        ("donotanswer", "do_not_answer/malicious_uses.jsonl"),
        ("hh-harmless", "hh_rlhf_harmless_base/test_dev.jsonl.gz"),
    ],
)
def test_public_file_is_recognised_by_its_header(source: str, relative: str) -> None:
    behaviors, note = load_behaviors_auto(str(DATA / relative))
    assert _digest(behaviors) == _digest(load_behaviors(source, DATA / relative))
    assert note is not None
    assert f"read as {source}," in note


# --- an explicit column mapping ---------------------------------------------------------


def test_columns_flag_maps_any_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", b"key,question,area\nk1,hello,privacy\n")
    mapping = parse_columns("text=question, category=area,id=key")
    behaviors, note = load_behaviors_auto(str(path), None, mapping)
    assert [(b.id, b.text, b.category) for b in behaviors] == [("k1", "hello", "privacy")]
    assert note is None


def test_columns_from_yaml_mapping() -> None:
    assert parse_columns({"text": "prompt", "benign": "safe"}) == ColumnMapping(
        text="prompt", benign="safe"
    )


def test_columns_naming_a_column_not_in_the_header_lists_the_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.csv", BEHAVIORS_HEADER + b"1,ok,cyber\n")
    message = _one_line(lambda: load_behaviors_auto(str(path), None, parse_columns("text=goal")))
    assert message.startswith(f"{path}:1: missing column 'goal'; expected text=goal; found 'id'")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("txt=prompt", f"key 'txt' is unknown; use {', '.join(MAPPING_KEYS)}"),
        ("text", "item 'text' is not KEY=COLUMN"),
        ("id=id", "must name the text column"),
        ("text=a,text=b", "names text twice"),
        ("text=", "needs a column name"),
    ],
)
def test_bad_columns_spec_is_one_config_error_line(spec: str, says: str) -> None:
    assert says in _one_line(lambda: parse_columns(spec), ConfigError)


def test_columns_for_a_fixed_format_is_a_config_error() -> None:
    path = DATA / "advbench" / "harmful_behaviors.csv"
    _one_line(
        lambda: load_behaviors_auto(str(path), "advbench", parse_columns("text=goal")), ConfigError
    )


# --- the scan's entry point ---------------------------------------------------------------


def test_scan_reads_a_plain_csv_and_says_how(tmp_path: Path) -> None:
    path = _write(tmp_path, "behaviors.csv", BEHAVIORS_HEADER + b"1,hello,cyber\n")
    notes: list[str] = []
    behaviors = load_scan_behaviors(ScanConfig(behaviors=str(path)), notes.append)
    assert [b.id for b in behaviors] == ["1"]
    assert notes == [
        f"{path}: no --format; took column 'prompt' as text, 'id' as id, 'topic' as category "
        "(override with --columns)"
    ]


@pytest.mark.parametrize("columns", [{"text": "ask", "id": "n"}, "text=ask,id=n"])
def test_scan_columns_field_maps_the_file(tmp_path: Path, columns: dict[str, str] | str) -> None:
    path = _write(tmp_path, "behaviors.csv", b"n,ask\n1,hello\n")
    config = ScanConfig(behaviors=str(path), columns=columns)
    notes: list[str] = []
    assert [b.id for b in load_scan_behaviors(config, notes.append)] == ["1"]
    assert notes == []


def test_scan_columns_without_a_behaviors_file_is_a_config_error() -> None:
    _one_line(lambda: load_scan_behaviors(ScanConfig(columns={"text": "x"})), ConfigError)
