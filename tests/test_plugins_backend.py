"""Adding a model backend is one new file: a module with a builder decorated by
``@backend``, found through ``SPARRING_PLUGINS``, is listed among the providers and usable
through ``resolve_model`` and in a scan like sparring's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring.models import providers, resolve_model
from sparring.registry import load_plugins
from sparring.scan import make_config, run_scan
from sparring.store import RunStore
from sparring.types import GenerationParams, Message

PLUGIN = "plugins.echo_backend"


pytestmark = pytest.mark.usefixtures("plugin")


def test_a_plugin_backend_is_listed_among_the_providers() -> None:
    assert "echo" in providers()
    assert PLUGIN in load_plugins()


async def test_a_plugin_backend_answers_through_resolve_model() -> None:
    async with resolve_model("echo/parrot") as model:
        assert model.id == "echo/parrot"
        [reply] = await model.generate(
            [[Message(role="user", content="say this back")]], GenerationParams(max_tokens=8)
        )
    assert reply.text == "say this back"


async def test_a_plugin_backend_is_a_scan_target(tmp_path: Path) -> None:
    config = make_config(
        {"target": "echo/parrot", "judge": "rules", "attacks": ["direct"], "limit": 2}
    )
    store = RunStore(tmp_path / "runs.sqlite")
    try:
        result = await run_scan(config, store, progress=False)
        attempts = list(store.iter_attempts(result.run_id))
    finally:
        store.close()
    assert attempts
    assert all(a.completions[-1].error is None for a in attempts)
    assert store.path.is_file()
