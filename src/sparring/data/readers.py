"""Row readers for CSV and JSON-lines files that remember where each row came from, so
that every complaint about a row names the file, the line and the field."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sparring.errors import DataError

_TRUE = frozenset({"1", "true", "t", "yes", "y", "benign", "safe"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "harmful", "unsafe"})


def open_text(path: Path) -> IO[str]:
    """Open ``path`` for reading text: UTF-8 (a BOM is dropped), gunzipped when it ends in .gz.

    A missing or unreadable file raises DataError naming it.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
        return path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from exc


@dataclass(frozen=True)
class Row:
    """One record of a data file and the line it starts on (1-based)."""

    path: Path
    line: int
    values: Mapping[str, Any]

    def where(self) -> str:
        """``file:line``, the prefix of every message about this row."""
        return f"{self.path}:{self.line}"

    def has(self, field: str) -> bool:
        """True when the record has ``field`` at all (its value may still be empty)."""
        return self._key(field) is not None

    def get(self, field: str) -> Any:
        """The raw value of ``field``, or None when the record lacks it."""
        key = self._key(field)
        return None if key is None else self.values[key]

    def _key(self, field: str) -> str | None:
        # Exact spelling first; otherwise any spelling that differs only in case, because
        # copies of the same data set disagree on header case (JBB's "Goal" and "goal").
        if field in self.values:
            return field
        folded = field.casefold()
        return next((k for k in self.values if k.strip().casefold() == folded), None)

    def text(self, field: str) -> str:
        """The field's value as stripped text; DataError when it is absent or empty."""
        value = self.optional(field)
        if value is None:
            state = "is empty" if self.has(field) else "is missing"
            raise DataError(f"{self.where()}: field '{field}' {state}; fill it in or drop the row")
        return value

    def optional(self, field: str) -> str | None:
        """The field's value as stripped text, or None when it is absent or empty."""
        value = self.get(field)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            raise DataError(
                f"{self.where()}: field '{field}' holds a JSON {type(value).__name__}, not text; "
                "point the mapping at a text field"
            )
        stripped = str(value).strip()
        return stripped or None

    def flag(self, field: str) -> bool:
        """The field read as a yes/no flag (1/0, true/false, yes/no, benign/harmful,
        safe/unsafe); an empty value is False, anything else is a DataError."""
        value = self.get(field)
        if isinstance(value, bool):
            return value
        text = "" if value is None else str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE or not text:
            return False
        raise DataError(
            f"{self.where()}: field '{field}' is {text!r}, not a flag; "
            "use true/false, 1/0, yes/no or safe/unsafe"
        )


def csv_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file."""
    with open_text(path) as handle:
        try:
            return next(csv.reader(handle))
        except StopIteration:
            raise DataError(f"{path}:1: the file is empty; expected a header line") from None
        except csv.Error as exc:
            raise DataError(f"{path}:1: header is not valid CSV ({exc}); fix the file") from exc


def csv_rows(path: Path) -> Iterator[Row]:
    """The data rows of a CSV file with a header line, blank lines skipped.

    A row with more fields than the header means broken quoting, and is a DataError; a
    shorter row leaves its missing fields empty for the caller's checks to catch.
    """
    with open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}:1: the file is empty; expected a header line") from None
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{path}:{start}: not valid CSV ({exc}); fix the quoting") from exc
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) > len(header):
                raise DataError(
                    f"{path}:{start}: row has {len(fields)} fields but the header has "
                    f"{len(header)}; quote fields that contain commas"
                )
            yield Row(path, start, dict(zip(header, fields, strict=False)))


def jsonl_rows(path: Path) -> Iterator[Row]:
    """The records of a JSON-lines file (one JSON object per line), blank lines skipped."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                    "fix or remove the line"
                ) from exc
            if not isinstance(record, dict):
                raise DataError(
                    f"{path}:{number}: expected a JSON object, found {type(record).__name__}; "
                    "write one object per line"
                )
            yield Row(path, number, record)


def require_columns(
    path: Path, line: int, present: Sequence[str], wanted: Mapping[str, str]
) -> None:
    """DataError unless every column in ``wanted`` (mapping field -> column) is in ``present``.

    ``line`` is where the columns were read from: the header, or the first JSON record.
    """
    for role, column in wanted.items():
        if column not in present:
            known = ", ".join(repr(p) for p in present) or "none"
            raise DataError(
                f"{path}:{line}: field '{column}' named by mapping.{role} is not in the file "
                f"(fields: {known}); name an existing field"
            )


class UniqueIds:
    """Remembers the ids handed out while reading one file and rejects a repeat."""

    def __init__(self) -> None:
        self._first_line: dict[str, int] = {}

    def claim(self, behavior_id: str, row: Row, field: str) -> str:
        """Return ``behavior_id`` after checking it is new; DataError naming both lines if not."""
        first = self._first_line.setdefault(behavior_id, row.line)
        if first != row.line:
            raise DataError(
                f"{row.where()}: field '{field}' repeats id {behavior_id!r} from line {first}; "
                "ids must be unique within a file"
            )
        return behavior_id
