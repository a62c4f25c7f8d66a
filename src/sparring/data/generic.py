"""Loaders for any CSV or JSON-lines file of requests, its fields named by a ColumnMapping,
and ``guess_mapping``, which names them from the header when nobody did."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from sparring.data.readers import (
    Row,
    UniqueIds,
    csv_rows,
    jsonl_fields,
    jsonl_rows,
    require_columns,
)
from sparring.data.registry import ColumnMapping, register_mapped
from sparring.data.taxonomy import OTHER, is_category
from sparring.types import Behavior

MAPPING_FIX = "name columns that are in the file (--columns text=COLUMN,...)"

# Column names that obviously hold each part of a behavior, most likely first; compared
# ignoring case. Text is required, the rest are taken when present.
GUESSES: dict[str, tuple[str, ...]] = {
    "text": ("prompt", "text", "goal", "behavior", "question", "query", "instruction", "request"),
    "category": (
        "category",
        "topic",
        "semantic_category",
        "semanticcategory",
        "harm_category",
        "harm_area",
        "risk_area",
    ),
    "id": ("id", "behavior_id", "behaviorid", "prompt_id", "uid", "key"),
    "context": ("context", "contextstring", "context_string"),
    "benign": ("benign", "is_benign"),
}


def guess_mapping(fields: Sequence[str]) -> ColumnMapping | None:
    """The mapping that takes each part of a behavior from its obvious column (see
    ``GUESSES``), or None when no column obviously holds the request text."""
    by_name: dict[str, str] = {}
    for field in fields:
        by_name.setdefault(field.strip().casefold(), field)
    chosen = {
        role: next((by_name[name] for name in names if name in by_name), None)
        for role, names in GUESSES.items()
    }
    text = chosen["text"]
    if text is None:
        return None
    return ColumnMapping(
        text=text,
        id=chosen["id"],
        category=chosen["category"],
        context=chosen["context"],
        benign=chosen["benign"],
    )


def _category(row: Row, mapping: ColumnMapping) -> str:
    if mapping.category is None:
        return OTHER
    label = row.optional(mapping.category)
    if label is None:
        return OTHER
    mapped = mapping.table.get(label)
    if mapped is not None:
        return mapped
    # A taxonomy id however it is written: "Self harm", "self-harm", "SELF_HARM".
    folded = "_".join(re.split(r"[\s_-]+", label.casefold()))
    return folded if is_category(folded) else OTHER


def behaviors_from_rows(rows: Iterable[Row], mapping: ColumnMapping, source: str) -> list[Behavior]:
    """Build one Behavior per row as ``mapping`` says; ``source`` names the data set."""
    ids = UniqueIds()
    behaviors = []
    for index, row in enumerate(rows):
        if mapping.id is None:
            behavior_id = f"{source}-{index:04d}"
        else:
            behavior_id = ids.claim(row.text(mapping.id), row, mapping.id)
        behaviors.append(
            Behavior(
                id=behavior_id,
                text=row.text(mapping.text),
                category=_category(row, mapping),
                source=source,
                context=row.optional(mapping.context) if mapping.context else None,
                benign=row.flag(mapping.benign) if mapping.benign else mapping.benign_default,
            )
        )
    return behaviors


def _source_name(path: Path, mapping: ColumnMapping) -> str:
    if mapping.source:
        return mapping.source
    name = path.name.removesuffix(".gz")
    return Path(name).stem


@register_mapped("csv", description="Any CSV file with a header line, read by a ColumnMapping.")
def load_csv(path: Path, mapping: ColumnMapping) -> list[Behavior]:
    """Behaviors from a CSV file; every field the mapping names must be in its header."""
    rows = csv_rows(path, mapping.columns(), MAPPING_FIX)
    return behaviors_from_rows(rows, mapping, _source_name(path, mapping))


@register_mapped(
    "jsonl", description="Any JSON-lines file (one object a line), by a ColumnMapping."
)
def load_jsonl(path: Path, mapping: ColumnMapping) -> list[Behavior]:
    """Behaviors from a JSON-lines file.

    A field the mapping names must occur in at least one record (records may omit optional
    fields such as the context); one that occurs in none is reported at the first record.
    """
    rows = list(jsonl_rows(path))
    if rows:
        require_columns(path, rows[0].line, jsonl_fields(rows), mapping.columns(), MAPPING_FIX)
    return behaviors_from_rows(rows, mapping, _source_name(path, mapping))
