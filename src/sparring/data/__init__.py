"""Behaviors to test with: the risk taxonomy, loaders for public safety data sets and for
any CSV or JSON-lines file, and the built-in suite.

    from sparring.data import ColumnMapping, load_behaviors, suite

    harmbench = load_behaviors("harmbench")  # its usual file under the data directory
    mine = load_behaviors("csv", "prompts.csv", mapping=ColumnMapping(text="prompt"))
    builtin = suite("builtin")
"""

from sparring.data.loaders import get_loader, load_behaviors
from sparring.data.locations import cache_dir, data_dir, hub_url
from sparring.data.registry import LOADERS, ColumnMapping, Loader, register, register_mapped
from sparring.data.suites import SUITES, suite
from sparring.data.taxonomy import CATEGORIES, OTHER, CategoryTable, guess_category, is_category

__all__ = [
    "CATEGORIES",
    "LOADERS",
    "OTHER",
    "SUITES",
    "CategoryTable",
    "ColumnMapping",
    "Loader",
    "cache_dir",
    "data_dir",
    "get_loader",
    "guess_category",
    "hub_url",
    "is_category",
    "load_behaviors",
    "register",
    "register_mapped",
    "suite",
]
