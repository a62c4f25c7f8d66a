"""Behaviors to test with: the risk taxonomy, loaders for public safety data sets and for
any CSV or JSON-lines file, and the built-in suite.

    from sparring.data import ColumnMapping, load_behaviors, suite

    harmbench = load_behaviors("harmbench")  # its usual file under the data directory
    mine = load_behaviors("csv", "prompts.csv", mapping=ColumnMapping(text="prompt"))
    guessed, note = load_behaviors_auto("prompts.csv")  # format and columns from the header
    builtin = suite("builtin")
"""

from sparring.data.generic import guess_mapping
from sparring.data.loaders import detect_format, get_loader, load_behaviors, load_behaviors_auto
from sparring.data.locations import data_dir, hub_url
from sparring.data.registry import (
    LOADERS,
    MAPPING_KEYS,
    ColumnMapping,
    Loader,
    formats,
    parse_columns,
    register,
    register_mapped,
)
from sparring.data.suites import SUITES, suite, suites
from sparring.data.taxonomy import CATEGORIES, OTHER, CategoryTable, guess_category, is_category

__all__ = [
    "CATEGORIES",
    "LOADERS",
    "MAPPING_KEYS",
    "OTHER",
    "SUITES",
    "CategoryTable",
    "ColumnMapping",
    "Loader",
    "data_dir",
    "detect_format",
    "formats",
    "get_loader",
    "guess_category",
    "guess_mapping",
    "hub_url",
    "is_category",
    "load_behaviors",
    "load_behaviors_auto",
    "parse_columns",
    "register",
    "register_mapped",
    "suite",
    "suites",
]
