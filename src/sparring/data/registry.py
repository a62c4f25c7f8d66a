"""The loader registry: each data format is one decorated function, found by name.

A fixed-format loader is ``@register("name", ...)`` on a function ``(path) -> behaviors``,
with the columns its files have (``headers={"csv": ("goal", "target")}``) so that a file
given without a format is recognised; a loader that reads any file through a
``ColumnMapping`` uses ``@register_mapped``. ``LOADERS`` is a ``sparring.registry.Registry``,
so loaders in plugin modules are found as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sparring.data.taxonomy import CATEGORIES, CategoryTable
from sparring.errors import ConfigError
from sparring.registry import Registry
from sparring.types import Behavior

PlainRead = Callable[[Path], list[Behavior]]
MappedRead = Callable[[Path, "ColumnMapping"], list[Behavior]]


@dataclass(frozen=True)
class ColumnMapping:
    """Which fields of a generic CSV or JSON-lines file make up a Behavior.

    Each attribute other than ``text`` may be None: without ``id`` the ids are
    ``<source>-0000``, ``<source>-0001``...; without ``category`` every row is ``other``;
    without ``benign`` every row gets ``benign_default``.
    """

    text: str
    """Field holding the request itself (required, non-empty on every row)."""
    id: str | None = None
    """Field holding a unique id per row."""
    category: str | None = None
    """Field holding the row's category label (a taxonomy id, or a key of category_map)."""
    context: str | None = None
    """Field holding a supporting document for contextual behaviors."""
    benign: str | None = None
    """Field holding a flag (true/false, 1/0, yes/no, safe/unsafe) for benign rows."""
    category_map: Mapping[str, str] | None = None
    """The file's own category labels -> taxonomy ids; other labels that are taxonomy ids
    are kept, the rest become ``other``."""
    source: str | None = None
    """Behavior.source for every row; defaults to the file's name without its suffix."""
    benign_default: bool = False
    """Benign flag for every row when no ``benign`` field is named."""
    table: CategoryTable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        entries = dict(self.category_map or {})
        for label, category in entries.items():
            if category not in CATEGORIES:
                raise ConfigError(
                    f"ColumnMapping.category_map[{label!r}] = {category!r} is not a sparring "
                    f"category; use one of: {', '.join(CATEGORIES)}"
                )
        object.__setattr__(self, "table", CategoryTable("category_map", entries))

    def columns(self) -> dict[str, str]:
        """The named fields, keyed by the attribute that names them."""
        named = {
            "text": self.text,
            "id": self.id,
            "category": self.category,
            "context": self.context,
            "benign": self.benign,
        }
        return {role: column for role, column in named.items() if column is not None}


MAPPING_KEYS = ("text", "id", "category", "context", "benign")
"""The ColumnMapping attributes that ``parse_columns`` accepts as keys."""


def _pair(item: str) -> tuple[str, str]:
    key, equals, column = item.partition("=")
    if not equals:
        raise ConfigError(
            f"column mapping item {item.strip()!r} is not KEY=COLUMN; write e.g. "
            "text=prompt,category=topic,id=id"
        )
    return key.strip(), column.strip()


def parse_columns(spec: str | Mapping[str, str]) -> ColumnMapping:
    """The ColumnMapping that ``spec`` describes: ``text=prompt,category=topic,id=id`` (the
    ``--columns`` flag) or the same pairs as a mapping (the YAML ``columns`` field).

    Keys are ``MAPPING_KEYS`` and ``text`` is required; values are column (or JSON field)
    names, checked against the file when it is read. ConfigError, one line, for anything else.
    """
    pairs: list[tuple[object, object]] = (
        [_pair(item) for item in spec.split(",") if item.strip()]
        if isinstance(spec, str)
        else [*spec.items()]
    )
    named: dict[str, str] = {}
    for key, column in pairs:
        if key not in MAPPING_KEYS:
            raise ConfigError(
                f"column mapping key {key!r} is unknown; use {', '.join(MAPPING_KEYS)}"
            )
        if not isinstance(column, str) or not column.strip():
            raise ConfigError(f"column mapping key {key} needs a column name, got {column!r}")
        if str(key) in named:
            raise ConfigError(f"column mapping names {key} twice; give each key once")
        named[str(key)] = column
    if "text" not in named:
        raise ConfigError("the column mapping must name the text column: text=COLUMN")
    return ColumnMapping(
        text=named["text"],
        id=named.get("id"),
        category=named.get("category"),
        context=named.get("context"),
        benign=named.get("benign"),
    )


FILE_KINDS = ("csv", "jsonl")
"""The kinds of file a header can belong to: CSV, and JSON lines (gzipped or not)."""


@dataclass(frozen=True)
class Loader:
    """A registered data format."""

    name: str
    description: str
    """One line for ``sparring data``."""
    read: Callable[[Path, ColumnMapping | None], list[Behavior]]
    default: str | None = None
    """Where the file (or folder) usually sits, relative to the data directory."""
    expected: str | None = None
    """What the default file is, in words, for the error when it is missing."""
    accepts_dir: bool = False
    """True when the loader reads a whole folder (one file per part)."""
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The columns (CSV) or fields (JSON lines) every file of the format has, by kind of
    file; compared ignoring case. A CSV file is checked against its header before it is
    read, and a file given without a format is read as the one whose header it has."""
    file_hint: str | None = None
    """A word the file's name holds when this format, not another with the same header,
    is meant (JBB's benign file has the harmful file's header)."""


LOADERS: Registry[Loader] = Registry("data source")
"""Every data format by name; ``load_behaviors(name, ...)`` dispatches here."""


def formats() -> dict[str, str]:
    """Every registered data format (``--format``, plugins' included) with its one-line
    description, by name."""
    return {name: loader.description for name, loader in LOADERS.items()}


def register(
    name: str,
    *,
    description: str,
    default: str | None = None,
    expected: str | None = None,
    accepts_dir: bool = False,
    headers: Mapping[str, Sequence[str]] | None = None,
    file_hint: str | None = None,
) -> Callable[[PlainRead], PlainRead]:
    """Register a fixed-format loader ``(path) -> list[Behavior]`` under ``name``; the
    keywords are the ``Loader`` fields, ``headers`` keyed by a kind of ``FILE_KINDS``."""
    columns = {kind: tuple(names) for kind, names in (headers or {}).items()}
    unknown = sorted(set(columns) - set(FILE_KINDS))
    if unknown:
        raise ValueError(f"data source {name!r}: headers kind {unknown[0]!r} is not csv or jsonl")

    def decorate(read: PlainRead) -> PlainRead:
        def read_unmapped(path: Path, mapping: ColumnMapping | None) -> list[Behavior]:
            if mapping is not None:
                raise ConfigError(
                    f"source '{name}' has a fixed format; a column mapping only applies to "
                    "the csv and jsonl sources"
                )
            return read(path)

        loader = Loader(
            name, description, read_unmapped, default, expected, accepts_dir, columns, file_hint
        )
        LOADERS.register(name)(loader)
        return read

    return decorate


def register_mapped(name: str, *, description: str) -> Callable[[MappedRead], MappedRead]:
    """Register a loader ``(path, mapping) -> list[Behavior]`` that needs a ColumnMapping."""

    def decorate(read: MappedRead) -> MappedRead:
        def read_mapped(path: Path, mapping: ColumnMapping | None) -> list[Behavior]:
            if mapping is None:
                raise ConfigError(
                    f"source '{name}' needs a column mapping: pass mapping=ColumnMapping(text=...)"
                )
            return read(path, mapping)

        LOADERS.register(name)(Loader(name, description, read_mapped))
        return read

    return decorate
