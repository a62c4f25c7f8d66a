"""Loaders for any CSV or JSON-lines file of requests, its fields named by a ColumnMapping."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sparring.data.readers import Row, UniqueIds, csv_header, csv_rows, jsonl_rows, require_columns
from sparring.data.registry import ColumnMapping, register_mapped
from sparring.data.taxonomy import OTHER, is_category
from sparring.types import Behavior


def _category(row: Row, mapping: ColumnMapping) -> str:
    if mapping.category is None:
        return OTHER
    label = row.optional(mapping.category)
    if label is None:
        return OTHER
    mapped = mapping.table.get(label)
    if mapped is not None:
        return mapped
    return label if is_category(label) else OTHER


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
    require_columns(path, 1, csv_header(path), mapping.columns())
    return behaviors_from_rows(csv_rows(path), mapping, _source_name(path, mapping))


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
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row.values))
        require_columns(path, rows[0].line, list(seen), mapping.columns())
    return behaviors_from_rows(rows, mapping, _source_name(path, mapping))
