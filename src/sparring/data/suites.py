"""Named suites of behaviors: the built-in suite shipped inside the package, and every
public data set by its source name (read from the data directory).

The built-in suite is written for sparring, not copied from any data set: ``builtin-harmful``
states harmful goals plainly (at the level of the request, never with working details) and
``builtin-benign`` holds risky-looking requests that a model should answer (over-refusal
probes), each labelled with the category it superficially resembles.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources

from sparring.data.generic import behaviors_from_rows
from sparring.data.loaders import load_behaviors
from sparring.data.readers import jsonl_rows
from sparring.data.registry import LOADERS, ColumnMapping
from sparring.errors import ConfigError
from sparring.types import Behavior

_BUILTIN_FILES = {
    "builtin-harmful": "builtin_harmful.jsonl",
    "builtin-benign": "builtin_benign.jsonl",
}

_BUILTIN_MAPPING = ColumnMapping(text="text", id="id", category="category", benign="benign")

_BUILTIN_DESCRIPTIONS = {
    "builtin": "The built-in suite: builtin-harmful followed by builtin-benign.",
    "builtin-harmful": "Harmful requests written for sparring, spread over the taxonomy.",
    "builtin-benign": "Risky-looking requests that should be answered (over-refusal probes).",
}


def suites() -> dict[str, str]:
    """Every suite name with a one-line description, in the order ``sparring data`` shows:
    the built-in ones, then each registered format with a usual file under the data
    directory (plugins' formats included)."""
    public = {name: loader.description for name, loader in LOADERS.items() if loader.default}
    return {**_BUILTIN_DESCRIPTIONS, **public}


class _Suites(Mapping[str, str]):
    """``suites()`` as a read-only mapping, read afresh on every use, so that formats
    registered after import (plugins) are listed too."""

    def __getitem__(self, name: str) -> str:
        return suites()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(suites())

    def __len__(self) -> int:
        return len(suites())


SUITES: Mapping[str, str] = _Suites()
"""Every suite name with a one-line description (see ``suites``)."""


@cache
def _builtin(name: str) -> tuple[Behavior, ...]:
    package_file = resources.files("sparring.data").joinpath("suites", _BUILTIN_FILES[name])
    with resources.as_file(package_file) as path:
        return tuple(behaviors_from_rows(jsonl_rows(path), _BUILTIN_MAPPING, name))


def suite(name: str) -> list[Behavior]:
    """The behaviors of the suite called ``name``, in a fixed order.

    ``builtin`` is the harmful part followed by the benign part; a public source name
    reads that source's usual file from the data directory. Unknown names raise
    ConfigError listing the valid ones.
    """
    if name == "builtin":
        return [*_builtin("builtin-harmful"), *_builtin("builtin-benign")]
    if name in _BUILTIN_FILES:
        return list(_builtin(name))
    known = suites()
    if name in known:
        return load_behaviors(name)
    raise ConfigError(f"unknown suite {name!r}; use one of: {', '.join(known)}")
