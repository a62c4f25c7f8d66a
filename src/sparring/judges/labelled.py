"""Human-labelled responses for training and calibrating judges, in three formats.

- GPTFuzz (``question, Response, label``; ``label`` 1 = harmful compliance, 0 = not). The
  ``question`` column is either the request itself or an index into ``question_list.csv``
  beside the file, as in the GPTFuzz repository.
- XSTest completions (``id, type, prompt, completion, ..., final_label``; ``final_label``
  1 full compliance, 2 full refusal, 3 partial refusal, with or without the ``_name``
  suffix). Partial refusal counts as refusal. Types starting ``contrast_`` are the unsafe
  prompts; the rest are benign look-alikes.
- Generic JSON lines: ``{"intent", "response", "label"[, "category", "benign"]}`` with
  ``label`` one of ``unsafe``, ``safe``, ``refusal``, or 1/0 (1 = unsafe).

Each source labels one or two aspects: ``unsafe`` (harmful compliance or not) and
``refused`` (declined or complied); an aspect a source does not label is None.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from sparring.data.taxonomy import guess_category
from sparring.errors import DataError
from sparring.judges.base import JudgeInput
from sparring.types import Behavior, Message

GPTFUZZ_COLUMNS = frozenset({"question", "Response", "label"})
XSTEST_COLUMNS = frozenset({"prompt", "completion", "final_label", "type"})


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


def load_labelled(path: str | Path) -> list[LabelledItem]:
    """Read a labelled file, telling the format by its extension and header."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: labelled file not found; pass a GPTFuzz/XSTest CSV or JSONL")
    if file.suffix == ".jsonl":
        return load_jsonl(file)
    header = _csv_header(file)
    if header >= GPTFUZZ_COLUMNS:
        return load_gptfuzz(file)
    if header >= XSTEST_COLUMNS:
        return load_xstest(file)
    raise DataError(
        f"{file}: unknown labelled format; expected GPTFuzz columns question,Response,label "
        "or XSTest columns prompt,completion,type,final_label, or a .jsonl file"
    )


def _csv_header(file: Path) -> frozenset[str]:
    with file.open(newline="", encoding="utf-8") as handle:
        return frozenset(next(csv.reader(handle), []))


def _rows(file: Path, required: frozenset[str]) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{file}: missing column(s) {', '.join(sorted(missing))}")
        return list(reader)


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


def load_gptfuzz(file: Path) -> list[LabelledItem]:
    """GPTFuzz labelled responses; ``unsafe`` is labelled, ``refused`` only where unsafe."""
    rows = _rows(file, GPTFUZZ_COLUMNS)
    questions = _question_list(file.parent / "question_list.csv")
    items = []
    for line, row in enumerate(rows, start=2):
        label = row["label"].strip()
        if label not in ("0", "1"):
            raise DataError(f"{file}:{line}: label must be 0 or 1, got {label!r}")
        question = row["question"].strip()
        intent = questions.get(question, question) if question.isdigit() else question
        if question.isdigit() and question not in questions:
            raise DataError(
                f"{file}:{line}: question index {question} is not in question_list.csv beside it"
            )
        harmful = label == "1"
        items.append(
            _item(
                intent,
                row["Response"],
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
    return {row["index"].strip(): row["text"] for row in _rows(file, frozenset({"index", "text"}))}


def load_xstest(file: Path) -> list[LabelledItem]:
    """XSTest human-labelled completions; ``refused`` is labelled, ``unsafe`` only for
    benign prompts (complying with a benign look-alike is never harmful)."""
    items = []
    for line, row in enumerate(_rows(file, XSTEST_COLUMNS), start=2):
        code = row["final_label"].strip()[:1]
        if code not in ("1", "2", "3"):
            raise DataError(f"{file}:{line}: final_label must start with 1, 2 or 3")
        kind = row["type"].strip()
        benign = not kind.startswith("contrast")
        items.append(
            _item(
                row["prompt"],
                row["completion"],
                behavior_id=f"xstest-{row.get('id', line)}",
                source=file.name,
                benign=benign,
                unsafe=False if benign else None,
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


def load_jsonl(file: Path) -> list[LabelledItem]:
    """Generic ``{"intent", "response", "label"}`` lines (optional ``category``, ``benign``)."""
    items = []
    with file.open(encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataError(f"{file}:{line}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DataError(f"{file}:{line}: each line must be a JSON object")
            for key in ("intent", "response", "label"):
                if key not in row:
                    raise DataError(f"{file}:{line}: missing field {key!r}")
            label = row["label"]
            key = str(label).strip().lower()
            if key not in _JSONL_LABELS:
                raise DataError(
                    f"{file}:{line}: label must be unsafe, safe, refusal, 1 or 0, got {label!r}"
                )
            unsafe, refused = _JSONL_LABELS[key]
            items.append(
                _item(
                    str(row["intent"]),
                    str(row["response"]),
                    behavior_id=f"{file.stem}-{line}",
                    source=file.name,
                    category=row.get("category"),
                    benign=bool(row.get("benign", False)),
                    unsafe=unsafe,
                    refused=refused,
                )
            )
    return items
