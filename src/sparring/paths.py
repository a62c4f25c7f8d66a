"""Where sparring keeps things on disk: the one home for every default folder and file.

Each location is read from its environment variable when set (``~`` expanded) and falls
back to a fixed default otherwise. Functions, not constants, so a variable set after
import (a test, a notebook) still counts. Ground floor: imports nothing from sparring.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "DATA_DIR_ENV",
    "STORE_ENV",
    "cache_dir",
    "data_dir",
    "data_download_dir",
    "default_store",
    "judge_cards_dir",
]

CACHE_ENV = "SPARRING_CACHE"
"""Environment variable naming sparring's cache folder (models, downloads, judge cards)."""

DATA_DIR_ENV = "SPARRING_DATA_DIR"
"""Environment variable naming the folder that holds the public data sets."""

STORE_ENV = "SPARRING_STORE"
"""Environment variable naming the default run store (a SQLite file)."""

DEFAULT_STORE = Path("sparring-runs") / "runs.sqlite"
"""The run store when ``$SPARRING_STORE`` is unset, relative to the working directory."""


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """sparring's cache folder: ``$SPARRING_CACHE`` or ``~/.cache/sparring``. The zoo
    keeps assembled models in its ``models/`` and their stamps in ``verified/``."""
    return _from_env(CACHE_ENV) or Path.home() / ".cache" / "sparring"


def data_download_dir() -> Path:
    """Where downloaded data files are kept: ``cache_dir()/data``."""
    return cache_dir() / "data"


def judge_cards_dir() -> Path:
    """Where judge evaluations (cards) are saved: ``cache_dir()/judge_cards``."""
    return cache_dir() / "judge_cards"


def data_dir() -> Path:
    """The folder holding the public data sets.

    ``$SPARRING_DATA_DIR`` when set; otherwise ``shared/data`` beside the project checkout
    (``<repo>/../shared/data``), which is where developers and CI keep it.
    """
    configured = _from_env(DATA_DIR_ENV)
    if configured is not None:
        return configured
    repo_root = Path(__file__).resolve().parents[2]
    return (repo_root.parent / "shared" / "data").resolve()


def default_store() -> Path:
    """The run store used when none is named: ``$SPARRING_STORE`` or
    ``sparring-runs/runs.sqlite`` (relative to the working directory)."""
    return _from_env(STORE_ENV) or DEFAULT_STORE
