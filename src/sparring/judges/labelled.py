"""Human-labelled responses for training and calibrating judges, in three registered
formats (``LABELLED_FORMATS``; a plugin adds one with ``@labelled_format``).

- GPTFuzz (``question, Response, label``; ``label`` 1 = harmful compliance, 0 = not). The
  ``question`` column is either the request itself or an index into ``question_list.csv``
  beside the file, as in the GPTFuzz repository.
- XSTest completions (``id, type, prompt, completion, ..., final_label``; ``final_label``
  1 full compliance, 2 full refusal, 3 partial refusal, with or without the ``_name``
  suffix). Partial refusal counts as refusal. Types starting ``contrast_`` are the unsafe
  prompts; the rest are benign look-alikes.
- Generic JSON lines: ``{"intent", "response", "label"[, "category", "benign"]}`` with
  ``label`` one of ``unsafe``, ``safe``, ``refusal``, or 1/0 (1 = unsafe).

A JSON-lines file may also hold the records of any registered CSV format, one object per
row with that format's columns as keys (e.g. ``{"question", "Response", "label"}``); its
format is told by the keys its records use.

Each source labels one or two aspects: ``unsafe`` (harmful compliance or not) and
``refused`` (declined or complied); an aspect a source does not label is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sparring.data.readers import (
    Row,
    csv_header,
    csv_rows,
    jsonl_fields,
    jsonl_rows,
    missing_columns,
)
from sparring.data.taxonomy import CATEGORIES, guess_category, is_category
from sparring.errors import DataError
from sparring.judges.base import JudgeInput
from sparring.registry import Registry
from sparring.types import Behavior, Message

GPTFUZZ_COLUMNS = ("question", "Response", "label")
XSTEST_COLUMNS = ("prompt", "completion", "final_label", "type")
_FIX = "pass a GPTFuzz or XSTest labelled CSV (sparring judge eval --help)"


@dataclass(frozen=True)
class LabelledItem:
    """A response with human labels."""

    input: JudgeInput
    unsafe: bool | None
    """True for harmful compliance, False for anything else, None when not labelled."""
    refused: bool | None
    """True when the response declines (fully or partly), None when not labelled."""
    group: str
    """What per-category agreement is grouped by: the category, or XSTest's prompt type."""
    source: str
    """File the item came from (its name)."""


LabelledRead = Callable[[Path], list[LabelledItem]]


@dataclass(frozen=True)
class LabelledFormat:
    """A registered labelled-data format."""

    name: str
    title: str
    """The format's name in messages, e.g. ``GPTFuzz``."""
    kind: str
    """``csv`` or ``jsonl``: the kind of file, told by its extension."""
    columns: tuple[str, ...]
    """The columns a CSV file of the format has (compared ignoring case); empty for JSON
    lines, whose every file is read as the format."""
    read: LabelledRead


LABELLED_FORMATS: Registry[LabelledFormat] = Registry("labelled format")
"""Every labelled-data format by name; ``load_labelled`` finds a file's by its header."""


def labelled_format(
    name: str, *, title: str, kind: str = "csv", columns: Sequence[str] = ()
) -> Callable[[LabelledRead], LabelledRead]:
    """Decorator: register a reader ``(path) -> list[LabelledItem]`` of one format."""

    def add(read: LabelledRead) -> LabelledRead:
        LABELLED_FORMATS.register(name)(LabelledFormat(name, title, kind, tuple(columns), read))
        return read

    return add


def load_labelled(path: str | Path) -> list[LabelledItem]:
    """Read a labelled file, telling the format by its extension and header: the registered
    format with the most columns, all of them in the header. A JSON-lines file's header is
    every key its records use, and it may be read as any CSV format whose columns are all
    among them; failing that, as the JSON-lines format."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: labelled file not found; pass a GPTFuzz/XSTest CSV or JSONL")
    kind = "jsonl" if file.suffix == ".jsonl" else "csv"
    header = csv_header(file) if kind == "csv" else jsonl_fields(list(jsonl_rows(file)))
    tabular = [f for _, f in LABELLED_FORMATS.items() if f.kind == "csv"]
    found = [f for f in tabular if not missing_columns(header, f.columns)]
    if found:
        return max(found, key=lambda f: len(f.columns)).read(file)
    formats = [f for _, f in LABELLED_FORMATS.items() if f.kind == kind]
    if kind == "jsonl" and formats:
        return formats[0].read(file)
    wanted = " or ".join(f"{f.title} columns {','.join(f.columns)}" for f in formats)
    raise DataError(
        f"{file}:1: unknown labelled format; expected {wanted}, or a .jsonl file; found "
        f"{','.join(header)}"
    )


def _rows(file: Path, columns: Iterable[str]) -> Iterator[Row]:
    """A file's records: CSV rows, or JSON-lines records (a missing field is reported by
    ``Row.value`` with ``required=True``)."""
    if file.suffix == ".jsonl":
        return jsonl_rows(file)
    return csv_rows(file, {column: column for column in columns}, _FIX)


def _item(
    intent: str,
    response: str,
    *,
    behavior_id: str,
    source: str,
    category: str | None = None,
    benign: bool = False,
    unsafe: bool | None,
    refused: bool | None,
    group: str | None = None,
) -> LabelledItem:
    cat = category or guess_category(intent)
    behavior = Behavior(id=behavior_id, text=intent, category=cat, source=source, benign=benign)
    transcript = (Message(role="user", content=intent), Message(role="assistant", content=response))
    return LabelledItem(
        input=JudgeInput(behavior=behavior, transcript=transcript),
        unsafe=unsafe,
        refused=refused,
        group=group or cat,
        source=source,
    )


@labelled_format("gptfuzz", title="GPTFuzz", columns=GPTFUZZ_COLUMNS)
def load_gptfuzz(file: Path) -> list[LabelledItem]:
    """GPTFuzz labelled responses; ``unsafe`` is labelled, ``refused`` only where unsafe."""
    questions = _question_list(file.parent / "question_list.csv")
    items = []
    for row in _rows(file, GPTFUZZ_COLUMNS):
        label = row.value("label").strip()
        if label not in ("0", "1"):
            raise DataError(f"{row.where()}: label must be 0 or 1, got {label!r}")
        question = row.value("question").strip()
        intent = questions.get(question, question) if question.isdigit() else question
        if question.isdigit() and question not in questions:
            raise DataError(
                f"{row.where()}: question index {question} is not in question_list.csv beside it"
            )
        harmful = label == "1"
        items.append(
            _item(
                intent,
                row.value("Response"),
                behavior_id=f"gptfuzz-{question}",
                source=file.name,
                unsafe=harmful,
                refused=False if harmful else None,
            )
        )
    return items


def _question_list(file: Path) -> dict[str, str]:
    if not file.is_file():
        return {}
    return {row.value("index").strip(): row.value("text") for row in _rows(file, ("index", "text"))}


@labelled_format("xstest", title="XSTest", columns=XSTEST_COLUMNS)
def load_xstest(file: Path) -> list[LabelledItem]:
    """XSTest human-labelled completions; ``refused`` is labelled, and ``unsafe`` is derived:
    complying with a benign look-alike is never harmful, full compliance (label 1) with an
    unsafe (``contrast_``) prompt is harmful, full refusal (2) of one is not; a partial
    refusal (3) of an unsafe prompt leaves ``unsafe`` unlabelled, since it may or may not
    carry the requested content."""
    items = []
    for row in _rows(file, XSTEST_COLUMNS):
        code = row.value("final_label").strip()[:1]
        if code not in ("1", "2", "3"):
            raise DataError(f"{row.where()}: final_label must start with 1, 2 or 3")
        kind = row.value("type").strip()
        benign = not kind.startswith("contrast")
        items.append(
            _item(
                row.value("prompt"),
                row.value("completion"),
                behavior_id=f"xstest-{row.optional('id') or row.line}",
                source=file.name,
                benign=benign,
                unsafe=False if benign else {"1": True, "2": False}.get(code),
                refused=code in ("2", "3"),
                group=kind,
            )
        )
    return items


_JSONL_LABELS: dict[str, tuple[bool | None, bool | None]] = {
    "unsafe": (True, False),
    "safe": (False, False),
    "refusal": (False, True),
    "1": (True, None),
    "0": (False, None),
    "true": (True, None),
    "false": (False, None),
}


def _category(row: Row) -> str | None:
    category = row.optional("category")
    if category is not None and not is_category(category):
        raise DataError(
            f"{row.where()}: category {category!r} is not a sparring category; use one of "
            f"{', '.join(CATEGORIES)} or leave it out"
        )
    return category


@labelled_format("jsonl", title="JSON lines", kind="jsonl")
def load_jsonl(file: Path) -> list[LabelledItem]:
    """Generic ``{"intent", "response", "label"}`` lines (optional ``category``, ``benign``)."""
    items = []
    for row in jsonl_rows(file):
        label = row.value("label", required=True).strip().lower()
        if label not in _JSONL_LABELS:
            raise DataError(
                f"{row.where()}: label must be unsafe, safe, refusal, 1 or 0, got {label!r}"
            )
        unsafe, refused = _JSONL_LABELS[label]
        items.append(
            _item(
                row.text("intent"),
                row.value("response", required=True),
                behavior_id=f"{file.stem}-{row.line}",
                source=file.name,
                category=_category(row),
                benign=row.flag("benign"),
                unsafe=unsafe,
                refused=refused,
            )
        )
    return items
