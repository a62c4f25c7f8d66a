"""Named suites of behaviors: the built-in suite shipped inside the package, and every
public data set by its source name (read from the data directory).

The built-in suite is written for sparring, not copied from any data set: ``builtin-harmful``
states harmful goals plainly (at the level of the request, never with working details) and
``builtin-benign`` holds risky-looking requests that a model should answer (over-refusal
probes), each labelled with the category it superficially resembles.

``injection`` is a suite of applications to attack rather than of harmful requests: BIPIA's
email, table and code tasks (see ``sparring.data.bipia``). It comes with its own default
attacks (``suite_attacks``): the injection, extraction and energy-latency families, whose
exact checks need no judge model.
``builtin-borderline`` holds more such look-alikes (a harmful word in an ordinary request:
kill a process, launder a jumper); DART replays them so that training to refuse does not
spread to them. ``builtin-tasks`` holds harmless writing tasks on harmful topics (a crime
story, a history of propaganda, a leaflet on mixing alcohol and sleeping pills): the form
that attacks wrapped in fiction take. DART can replay them too. Neither is in ``builtin``.
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
    "builtin-borderline": "builtin_borderline.jsonl",
    "builtin-tasks": "builtin_tasks.jsonl",
}

_BUILTIN_MAPPING = ColumnMapping(text="text", id="id", category="category", benign="benign")

_BUILTIN_DESCRIPTIONS = {
    "builtin": "The built-in suite: builtin-harmful followed by builtin-benign.",
    "builtin-harmful": "Harmful requests written for sparring, spread over the taxonomy.",
    "builtin-benign": "Risky-looking requests that should be answered (over-refusal probes).",
    "builtin-borderline": "Benign requests with a harmful-sounding word, for DART's replay.",
    "builtin-tasks": "Harmless writing tasks on harmful topics, for DART's replay.",
}


_APPLICATION_SUITES = {
    "injection": (
        "bipia",
        "BIPIA email, table and code tasks as applications to inject into and extract from.",
    ),
}
"""Suites of applications to attack: name -> (data source, description)."""

_SUITE_ATTACKS = {
    "injection": (
        "clean-task",
        "injection.direct",
        "extraction.system-prompt",
        "indirect-url",
        "indirect-language",
        "extraction.training-data",
        "sponge-enumerate",
    ),
}
"""Default attacks of the suites that have their own (names or family patterns); sized so
that ``--limit 30`` on the embedded target ends in minutes on two CPU cores. The rest of
each family (``indirect-word``, ``indirect-encoding``, ``sponge-repeat`` ...) runs when named."""


def suite_attacks(name: str | None) -> tuple[str, ...] | None:
    """The attacks a scan of suite ``name`` runs when it names none: attack names or
    family patterns (``injection.*``); None for a suite without defaults of its own."""
    return None if name is None else _SUITE_ATTACKS.get(name)


def suites() -> dict[str, str]:
    """Every suite name with a one-line description, in the order ``sparring data`` shows:
    the built-in ones, the application suites (``injection``), then each registered format
    with a usual file under the data directory (plugins' formats included)."""
    public = {name: loader.description for name, loader in LOADERS.items() if loader.default}
    applications = {name: description for name, (_, description) in _APPLICATION_SUITES.items()}
    return {**_BUILTIN_DESCRIPTIONS, **applications, **public}


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

    ``builtin`` is the harmful part followed by the benign part; ``injection`` reads
    BIPIA's tasks; a public source name reads that source's usual file from the data
    directory. Unknown names raise
    ConfigError listing the valid ones.
    """
    if name == "builtin":
        return [*_builtin("builtin-harmful"), *_builtin("builtin-benign")]
    if name in _BUILTIN_FILES:
        return list(_builtin(name))
    if name in _APPLICATION_SUITES:
        return load_behaviors(_APPLICATION_SUITES[name][0])
    known = suites()
    if name in known:
        return load_behaviors(name)
    raise ConfigError(f"unknown suite {name!r}; use one of: {', '.join(known)}")
