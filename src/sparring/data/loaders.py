"""``load_behaviors``: one entry point for every registered data format and every place a
file can come from (the data directory, a local path, a URL, a hub shorthand)."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

# Importing the format modules registers their loaders.
from sparring.data import bipia, generic, public_sets  # noqa: F401
from sparring.data.generic import guess_mapping
from sparring.data.locations import DATA_DIR_ENV, data_dir, is_remote, localize
from sparring.data.readers import (
    csv_header,
    jsonl_fields,
    jsonl_rows,
    missing_columns,
    require_columns,
)
from sparring.data.registry import LOADERS, ColumnMapping, Loader
from sparring.errors import ConfigError, DataError
from sparring.types import Behavior

GENERIC_FORMATS = ("csv", "jsonl")
"""The formats that read any file through a ColumnMapping."""


def get_loader(source: str) -> Loader:
    """The registered loader called ``source``; ConfigError listing the valid names if none."""
    return LOADERS.get(source)


def default_path(loader: Loader) -> Path:
    """Where ``loader``'s file usually sits under the data directory."""
    if loader.default is None:
        raise ConfigError(
            f"source '{loader.name}' has no default file; pass the path of the file to read"
        )
    return data_dir() / loader.default


def _missing(loader: Loader, path: Path) -> DataError:
    if loader.default is None:
        return DataError(f"{path}: file not found; check the path")
    return DataError(
        f"{path}: not found; {loader.name} expects {loader.expected} at "
        f"{default_path(loader)} (set {DATA_DIR_ENV} to the data folder, or pass a path)"
    )


def _inside_folder(loader: Loader, folder: Path) -> Path:
    # A folder may be the data directory itself or the folder holding the file.
    if loader.default is None:
        return folder
    relative = Path(loader.default)
    for candidate in (folder / relative, folder / relative.name):
        if candidate.exists():
            return candidate
    return folder


def resolve_path(loader: Loader, path: str | Path | None) -> Path:
    """The local file (or folder) that ``loader`` should read for ``path``.

    None means the default place under the data directory; a URL or ``hf://`` shorthand
    is downloaded into the cache; a folder is searched for the source's usual file.
    """
    if path is None:
        resolved = default_path(loader)
    elif isinstance(path, str) and is_remote(path):
        return localize(path)
    else:
        resolved = Path(path).expanduser()
        if resolved.is_dir():
            resolved = _inside_folder(loader, resolved)
    if not resolved.exists():
        raise _missing(loader, resolved)
    if resolved.is_dir() and not loader.accepts_dir:
        raise DataError(
            f"{resolved}: is a folder with no {Path(loader.default or '').name or 'data'} file "
            f"in it; pass the {loader.name} file itself"
        )
    return resolved


def _file_name(location: str | Path) -> str:
    # A location's own file name, not the cache's: the last part of a URL's path.
    if isinstance(location, str) and is_remote(location):
        location = urllib.parse.urlparse(location).path
    return Path(location).name


def _origin_name(path: str | Path) -> str:
    # The source name a generic file's behaviors get.
    return Path(_file_name(path).removesuffix(".gz")).stem or "data"


def file_kind(location: str | Path) -> str:
    """``jsonl`` for a .jsonl, .ndjson or .json file (gzipped or not), else ``csv``."""
    name = _file_name(location).removesuffix(".gz")
    return "jsonl" if name.endswith((".jsonl", ".ndjson", ".json")) else "csv"


def _check_public_header(loader: Loader, path: Path) -> None:
    # A wrong CSV file fails on its header, before any row is read.
    columns = loader.headers.get("csv")
    if not columns or not path.is_file() or file_kind(path) != "csv":
        return
    fix = (
        f"if it is not {loader.name} data, pass the --format that fits it, or "
        "--columns text=COLUMN for your own"
    )
    require_columns(path, 1, csv_header(path), {column: column for column in columns}, fix)


def load_behaviors(
    source: str, path: str | Path | None = None, *, mapping: ColumnMapping | None = None
) -> list[Behavior]:
    """Read the behaviors of a data set in a registered format.

    ``source`` names the format (see ``LOADERS``: ``advbench``, ``harmbench``, ``jbb``,
    ``jbb-benign``, ``hh-harmless``, ``xstest``, ``simplesafetytests``, ``donotanswer``,
    ``strongreject``, ``csv``, ``jsonl``). ``path`` is a local file or folder, an
    ``http(s)://`` URL, or ``hf://datasets/OWNER/NAME/FILE``; None reads the source's
    usual file under the data directory. ``mapping`` says which fields to read and is
    required by (and only allowed for) the generic ``csv`` and ``jsonl`` formats.

    Raises ConfigError for an unknown source or a misplaced mapping, DataError for a file
    that is missing or holds a malformed row.
    """
    loader = get_loader(source)
    if mapping is not None and mapping.source is None and path is not None:
        mapping = dataclasses.replace(mapping, source=_origin_name(path))
    resolved = resolve_path(loader, path)
    _check_public_header(loader, resolved)
    return loader.read(resolved, mapping)


def detect_format(name: str, kind: str, fields: Sequence[str]) -> str | None:
    """The registered format whose ``kind`` header (``Loader.headers``) is within
    ``fields``, the columns of a ``kind`` file called ``name``; None when there is none.

    The format with the most columns wins (AdvBench's goal, target is within JBB's header);
    among formats with the same header, the one whose ``file_hint`` the name holds.
    """
    folded = name.casefold()
    found = [
        loader
        for _, loader in LOADERS.items()
        if kind in loader.headers
        and not missing_columns(fields, loader.headers[kind])
        and (loader.file_hint is None or loader.file_hint in folded)
    ]
    if not found:
        return None
    best = min(found, key=lambda f: (-len(f.headers[kind]), f.file_hint is None, f.name))
    return best.name


def load_behaviors_auto(
    source: str, fmt: str | None = None, columns: ColumnMapping | None = None
) -> tuple[list[Behavior], str | None]:
    """The behaviors in ``source`` (a path, URL or hf:// path), and one line saying how
    they were read when neither ``fmt`` nor ``columns`` said so (None otherwise).

    ``fmt`` names a registered format and ``columns`` the columns of a generic file; given
    together, or ``fmt`` a fixed format, they go to ``load_behaviors`` as they are. Without
    ``fmt`` the kind of file (CSV or JSON lines) comes from its name, and a header that
    matches a registered format (``detect_format``) reads the file as that format. Otherwise
    ``guess_mapping`` picks the columns, and DataError lists the header when no column
    obviously holds the request text. Raises as ``load_behaviors`` does.
    """
    if fmt is not None and (columns is not None or fmt not in GENERIC_FORMATS):
        return load_behaviors(fmt, source, mapping=columns), None
    kind = fmt or file_kind(source)
    if columns is not None:
        return load_behaviors(kind, source, mapping=columns), None
    path = resolve_path(get_loader(kind), source)
    fields = csv_header(path) if kind == "csv" else jsonl_fields(list(jsonl_rows(path)))
    known = None if fmt else detect_format(_file_name(source), kind, fields)
    if known is not None:
        note = f"read as {known}, whose header it has (override with --format or --columns)"
        return load_behaviors(known, path), f"{source}: no --format; {note}"
    mapping = guess_mapping(fields)
    if mapping is None:
        raise DataError(
            f"{source}:1: no column obviously holds the requests (found: "
            f"{', '.join(repr(f) for f in fields) or 'none'}); pass --columns text=COLUMN"
        )
    taken = ", ".join(f"'{column}' as {role}" for role, column in mapping.columns().items())
    mapping = dataclasses.replace(mapping, source=_origin_name(source))
    note = f"{source}: no {'--columns' if fmt else '--format'}; took column {taken}"
    return load_behaviors(kind, path, mapping=mapping), f"{note} (override with --columns)"
