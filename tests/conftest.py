"""Fixtures shared by several test files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sparring.registry import PLUGINS_ENV, load_plugins


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    """Name the test module's ``PLUGIN`` module in the environment; plugins are loaded once
    per process, so forget what was loaded before and after. Yields the module name."""
    module: str = request.module.PLUGIN
    monkeypatch.setenv(PLUGINS_ENV, module)
    load_plugins.cache_clear()
    yield module
    load_plugins.cache_clear()
