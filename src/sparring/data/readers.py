"""Row readers for CSV and JSON-lines files that remember where each row came from, so
that every complaint about a file names the file, the line and the field.

Every mistake a person can make in such a file ends in one DataError line: bytes that are
not UTF-8, a NUL character, broken or unclosed quoting, a row of the wrong width, a field
over the CSV field limit, a header that lacks a column the reader needs.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.errors import DataError

_TRUE = frozenset({"1", "true", "t", "yes", "y", "benign", "safe"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "harmful", "unsafe"})
_NEWLINE = re.compile(r"\r\n?|\n")
_QUOTE_FIX = 'write "" for a quote inside a quoted field'
HEADER_FIX = "fix the header, or read the file with the format (or --columns) that fits it"
"""The remedy a header check names when the caller has no better one."""


def read_text(path: Path) -> str:
    """The whole of ``path`` as text: UTF-8 (a BOM is dropped), gunzipped when it ends in .gz.

    DataError for a file that is missing or unreadable, that is not UTF-8 (naming the line
    and byte offset of the first bad byte), or that holds a NUL character (naming its line).
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError):
        raise DataError(f"{path}: not a complete gzip file; re-compress it or drop .gz") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from exc
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path}: is UTF-16 text; re-save it as UTF-8")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}:{line}: byte {exc.start} (0x{raw[exc.start]:02x}) is not UTF-8; "
            "re-save the file as UTF-8"
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        raise DataError(
            f"{path}:{text.count(chr(10), 0, nul) + 1}: holds a NUL character (0x00), so the "
            "file is binary or UTF-16; re-save it as UTF-8 text"
        )
    return text


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

    def value(self, field: str, *, required: bool = False) -> str:
        """The field's value as text exactly as written; "" when it is empty or JSON null,
        and when the record lacks it unless ``required``.

        DataError for a missing required field (naming the fields the record has), a JSON
        object or list, or a NUL character (one escaped as ``\\u0000`` in JSON).
        """
        key = self._key(field)
        if key is None:
            if required:
                known = ", ".join(repr(k) for k in self.values) or "none"
                raise DataError(
                    f"{self.where()}: field '{field}' is missing (fields: {known}); add it "
                    "or name an existing field"
                )
            return ""
        raw = self.values[key]
        if isinstance(raw, (dict, list)):
            raise DataError(
                f"{self.where()}: field '{field}' holds a JSON {type(raw).__name__}, not text; "
                "point the mapping at a text field"
            )
        text = "" if raw is None else str(raw)
        if "\0" in text:
            raise DataError(f"{self.where()}: field '{field}' holds a NUL character; remove it")
        return text

    def text(self, field: str) -> str:
        """The field's value as stripped text; DataError when it is absent or empty."""
        value = self.value(field, required=True).strip()
        if not value:
            raise DataError(f"{self.where()}: field '{field}' is empty; fill it in or drop the row")
        return value

    def optional(self, field: str) -> str | None:
        """The field's value as stripped text, or None when it is absent or empty."""
        return self.value(field).strip() or None

    def flag(self, field: str) -> bool:
        """The field read as a yes/no flag (1/0, true/false, yes/no, benign/harmful,
        safe/unsafe); an empty value is False, anything else is a DataError."""
        value = self.get(field)
        if isinstance(value, bool):
            return value
        text = self.value(field).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE or not text:
            return False
        raise DataError(
            f"{self.where()}: field '{field}' is {text!r}, not a flag; "
            "use true/false, 1/0, yes/no or safe/unsafe"
        )


def missing_columns(present: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The ``wanted`` columns that are not in ``present``, in order; names compare ignoring
    case and surrounding spaces, as ``Row`` looks them up."""
    found = {p.strip().casefold() for p in present}
    return [c for c in wanted if c.strip().casefold() not in found]


def require_columns(
    path: Path,
    line: int,
    present: Sequence[str],
    wanted: Mapping[str, str],
    fix: str = HEADER_FIX,
) -> None:
    """DataError unless every column in ``wanted`` (role -> column) is in ``present``.

    Names compare ignoring case and surrounding spaces, as ``Row`` looks them up. ``line``
    is where the columns were read from: the header, or the first JSON record. The one-line
    message lists the missing columns, every wanted one (``role=column`` where the role
    differs from the column) and every one found, then ``fix``.
    """
    missing = missing_columns(present, wanted.values())
    if missing:
        expected = ", ".join(c if r == c else f"{r}={c}" for r, c in wanted.items())
        raise DataError(
            f"{path}:{line}: missing column {', '.join(repr(c) for c in missing)}; expected "
            f"{expected}; found {', '.join(repr(p) for p in present) or 'none'}; {fix}"
        )


def csv_header(path: Path) -> list[str]:
    """The column names on the first non-blank line of a CSV file."""
    return next(_csv_records(path))[1]


def csv_rows(
    path: Path, needs: Mapping[str, str] | None = None, fix: str = HEADER_FIX
) -> Iterator[Row]:
    """The data rows of a CSV file with a header line, blank lines skipped.

    ``needs`` (role -> column) is checked against the header first (see ``require_columns``).
    Every row must have exactly the header's number of fields, and quoting must be strict:
    a closing quote followed by anything but a comma or a line end is an error, and so is a
    quote still open at the end of the file, reported at the line where it opened.

    An unclosed quote that happens to close on a later row swallows the rows between into
    one field without any CSV error. It is caught by this rule: a field that spans lines is
    an unclosed quote when, read without its quotes, its lines are whole rows, each exactly
    as wide as the header (the fields before it completing its first line, those after it
    its last). The rule needs a header of at least two columns; none of the 4,500 multi-line
    fields in the public data sets (HarmBench contexts, GPTFuzz and XSTest responses,
    jailbreak templates) has that shape.
    """
    records = _csv_records(path)
    line, header = next(records)
    _check_header(path, line, header)
    require_columns(path, line, header, needs or {}, fix)
    for start, fields in records:
        swallowed = _swallowing_field(fields, len(header))
        if swallowed is not None:
            opened = start + sum(_line_breaks(f) for f in fields[:swallowed])
            end = start + sum(_line_breaks(f) for f in fields)
            raise DataError(
                f"{path}:{opened}: the quote opened on this line swallows lines "
                f"{opened + 1}-{end}, which read as whole rows; close it on line {opened} "
                f"({_QUOTE_FIX})"
            )
        if len(fields) != len(header):
            remedy = (
                "quote fields that contain commas"
                if len(fields) > len(header)
                else "add the missing fields (an empty field is just a comma)"
            )
            raise DataError(
                f"{path}:{start}: row has {len(fields)} fields but the header has "
                f"{len(header)} ({', '.join(header)}); {remedy}"
            )
        yield Row(path, start, dict(zip(header, fields, strict=True)))


def _check_header(path: Path, line: int, header: Sequence[str]) -> None:
    named = [h.strip() for h in header if h.strip()]
    repeated = sorted({h for h in named if named.count(h) > 1})
    if repeated:
        raise DataError(
            f"{path}:{line}: the header repeats column {', '.join(map(repr, repeated))}; "
            "give every column its own name"
        )


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of every non-blank record, the header first; DataError for
    an empty file or broken quoting."""
    lines = list(io.StringIO(read_text(path), newline=""))
    reader = csv.reader(lines, strict=True)
    seen = False
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            if not seen:
                raise DataError(f"{path}:1: the file is empty; expected a header line") from None
            return
        except csv.Error as exc:
            raise _quoting_error(path, lines, start, reader.line_num, exc) from None
        if any(f.strip() for f in fields):
            seen = True
            yield start, fields


def _quoting_error(
    path: Path, lines: Sequence[str], start: int, end: int, exc: csv.Error
) -> DataError:
    """The DataError for a csv.Error raised while reading lines ``start``..``end``."""
    opened = _quote_opened(lines[start - 1 : end], start)
    if "field limit" in str(exc):
        return DataError(
            f"{path}:{opened}: a field starting on this line is longer than "
            f"{csv.field_size_limit()} characters; close its quote if it is left open, "
            "or shorten it"
        )
    if "end of data" in str(exc):
        return DataError(
            f"{path}:{opened}: the quote opened on this line is never closed, so the rest of "
            f"the file (to line {end}) ran into one field; close it ({_QUOTE_FIX})"
        )
    if opened < end:
        return DataError(
            f"{path}:{opened}: the quoted field opened on this line runs on to line {end} and "
            f"breaks there ({exc}); close its quote where the field ends ({_QUOTE_FIX})"
        )
    return DataError(
        f"{path}:{end}: broken quoting ({exc}); a closing quote must be followed by a comma "
        f"or the line end ({_QUOTE_FIX})"
    )


def _quote_opened(lines: Sequence[str], start: int) -> int:
    """The line (1-based) where the quoted field that breaks a record opened: the field
    closed just before stray text, or else the last one opened. ``lines`` are the record's
    lines, the first being line ``start``."""
    opened, quoted, field_start, after_quote = start, False, True, False
    for number, text in enumerate(lines, start=start):
        for char in text:
            if quoted:
                quoted = char != '"'
                after_quote = not quoted
            elif char == '"' and (field_start or after_quote):
                opened = number if field_start else opened
                quoted, field_start, after_quote = True, False, False
            elif after_quote and char not in ",\r\n":
                return opened
            else:
                field_start, after_quote = char in ",\r\n", False
    return opened


def _line_breaks(field: str) -> int:
    return len(_NEWLINE.findall(field))


def _width(text: str) -> int:
    return len(next(csv.reader([text]), []))


def _swallowing_field(fields: Sequence[str], width: int) -> int | None:
    """Index of the field whose lines are whole rows of ``width`` fields (with the fields
    before it joining its first line and those after it its last), or None."""
    if width < 2:
        return None
    for index, field in enumerate(fields):
        segments = _NEWLINE.split(field)
        if len(segments) < 2:
            continue
        widths = [_width(segment) for segment in segments]
        widths[0] += index
        widths[-1] += len(fields) - index - 1
        if all(w == width for w in widths):
            return index
    return None


def jsonl_rows(path: Path) -> Iterator[Row]:
    """The records of a JSON-lines file (one JSON object per line), blank lines skipped."""
    for number, line in enumerate(io.StringIO(read_text(path)), start=1):
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


def jsonl_fields(rows: Sequence[Row]) -> list[str]:
    """Every field name used by any of ``rows``, in order of first use."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row.values))
    return list(seen)


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
