"""A scan's --concurrency is the number of requests in flight unless the user set a lower
limit on the target backend; the scan says both."""

from __future__ import annotations

from pathlib import Path

from sparring.models.options import ModelOptions
from sparring.scan import make_config, run_scan
from sparring.scan.config import ScanConfig, concurrency_line
from sparring.store import RunStore
from sparring.testing import OpenAIServer
from sparring.types import Behavior


def test_the_target_backend_takes_the_scan_concurrency_by_default() -> None:
    assert ScanConfig(concurrency=64).target_options.max_concurrency == 64
    options = make_config({"concurrency": "48", "target_options": {"base_url": "http://h/v1"}})
    assert options.target_options.max_concurrency == 48
    assert options.target_options.base_url == "http://h/v1"


def test_a_backend_limit_the_user_set_is_kept() -> None:
    from_yaml = make_config({"concurrency": 64, "target_options": {"max_concurrency": 8}})
    from_api = ScanConfig(concurrency=64, target_options=ModelOptions(max_concurrency=8))
    assert from_yaml.target_options.max_concurrency == 8
    assert from_api.target_options.max_concurrency == 8


def test_the_stored_config_resumes_with_the_same_limit() -> None:
    config = ScanConfig(concurrency=64)
    assert make_config(config.model_dump(mode="json")) == config


def test_the_line_states_attempts_in_flight_and_the_backend_limit() -> None:
    assert concurrency_line(ScanConfig(concurrency=64)) == (
        "64 attempts in flight; target backend limit 64"
    )
    lower = ScanConfig(concurrency=64, target_options=ModelOptions(max_concurrency=8))
    assert concurrency_line(lower).startswith("64 attempts in flight; target backend limit 8 (")


async def test_a_scan_keeps_concurrency_requests_in_flight(tmp_path: Path) -> None:
    behaviors = [
        Behavior(id=f"b{n}", text=f"behavior {n}", category="test", source="unit")
        for n in range(60)
    ]
    said: list[str] = []
    async with OpenAIServer(latency_ms=150) as server:
        config = make_config(
            {
                "target": "openai-compatible/sparring-test",
                "target_options": {"base_url": server.base_url, "max_retries": 0},
                "attacks": "direct",
                "judge": "rules",
                "concurrency": 30,
                "limit": None,
            }
        )
        with RunStore(tmp_path / "runs.sqlite") as store:
            result = await run_scan(
                config, store, behaviors=behaviors, progress=False, say=said.append
            )
        assert server.stats().max_in_flight == 30  # more than the backend's own default, 16
    assert result.outcome.done == 60
    assert "30 attempts in flight; target backend limit 30" in said
