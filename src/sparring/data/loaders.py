"""``load_behaviors``: one entry point for every registered data format and every place a
file can come from (the data directory, a local path, a URL, a hub shorthand)."""

from __future__ import annotations

import dataclasses
import urllib.parse
from pathlib import Path

# Importing the format modules registers their loaders.
from sparring.data import generic, public_sets  # noqa: F401
from sparring.data.locations import DATA_DIR_ENV, data_dir, is_remote, localize
from sparring.data.registry import LOADERS, ColumnMapping, Loader
from sparring.errors import ConfigError, DataError
from sparring.types import Behavior


def get_loader(source: str) -> Loader:
    """The registered loader called ``source``; ConfigError listing the valid names if none."""
    try:
        return LOADERS[source]
    except KeyError:
        raise ConfigError(
            f"unknown data source {source!r}; use one of: {', '.join(sorted(LOADERS))}"
        ) from None


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


def _origin_name(path: str | Path) -> str:
    # The source name a generic file's behaviors get: its own name, not the cache's.
    name = urllib.parse.urlparse(path).path if isinstance(path, str) else str(path)
    base = Path(name).name.removesuffix(".gz")
    return Path(base).stem or "data"


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
    return loader.read(resolve_path(loader, path), mapping)
