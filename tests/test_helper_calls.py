"""Helper-model calls made while planning are engine attempts: stored with the run, counted
against its request budget, not asked again on resume, and left out of every rate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sparring.scan import ScanConfig, load_scan, make_config, run_scan
from sparring.store import RunStore
from sparring.testing import ChatRequest, OpenAIServer
from sparring.types import is_helper_attack

HARMFUL = 2
"""Harmful behaviors (``limit``); the scan takes as many benign ones, sent direct."""
TARGET_ATTEMPTS = HARMFUL * 2 + HARMFUL
"""direct and translation on each harmful behavior, direct on each benign one."""


def translate(request: ChatRequest) -> str:
    return f"[zu] {request.last_user_text}"


@pytest.fixture
async def servers() -> AsyncIterator[tuple[OpenAIServer, OpenAIServer]]:
    async with (
        OpenAIServer(responder=lambda request: "I cannot help with that.") as target,
        OpenAIServer(responder=translate) as helper,
    ):
        yield target, helper


def config_for(servers: tuple[OpenAIServer, OpenAIServer], **fields: Any) -> ScanConfig:
    target, helper = servers
    return make_config(
        {
            "target": "openai-compatible/target",
            "target_options": {"base_url": target.base_url},
            "helper": "openai-compatible/helper",
            "helper_options": {"base_url": helper.base_url},
            "judge": "rules",
            "attacks": ["direct", {"name": "translation", "language": "Zulu"}],
            "limit": HARMFUL,
            "concurrency": 1,
            **fields,
        }
    )


async def test_helper_calls_are_stored_as_attempts_of_the_run(
    servers: tuple[OpenAIServer, OpenAIServer], tmp_path: Path
) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        result = await run_scan(config_for(servers), store, progress=False)
        attempts = store.attempts(result.run_id)
    helpers = [a for a in attempts if is_helper_attack(a.spec.attack)]
    assert {a.spec.attack for a in helpers} == {"helper:translation"}
    assert len(helpers) == HARMFUL == servers[1].stats().requests
    assert all(a.completions[0].text.startswith("[zu] ") for a in helpers)
    translated = [a for a in attempts if a.spec.attack == "translation"]
    assert {a.spec.messages[-1].content for a in translated} == {
        a.completions[0].text for a in helpers
    }
    assert len(attempts) - len(helpers) == TARGET_ATTEMPTS
    assert result.helper is not None and result.helper.requests == HARMFUL


async def test_helper_calls_are_left_out_of_the_rates(
    servers: tuple[OpenAIServer, OpenAIServer], tmp_path: Path
) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        result = await run_scan(config_for(servers), store, progress=False)
        _, summary = load_scan(store, result.run_id)
    assert len(summary.trials) == TARGET_ATTEMPTS
    assert {t.technique for t in summary.trials} == {"direct", "translation"}


async def test_helper_calls_count_against_max_requests(
    servers: tuple[OpenAIServer, OpenAIServer], tmp_path: Path
) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        result = await run_scan(config_for(servers, max_requests=3), store, progress=False)
        attempts = store.attempts(result.run_id)
    target, helper = servers
    assert result.outcome.status == "budget"
    assert helper.stats().requests == HARMFUL
    assert target.stats().requests == 3 - HARMFUL
    assert len(attempts) == 3


async def test_a_resume_does_not_ask_the_helper_again(
    servers: tuple[OpenAIServer, OpenAIServer], tmp_path: Path
) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        first = await run_scan(config_for(servers, max_requests=3), store, progress=False)
        config = config_for(servers)
        resumed = await run_scan(config, store, resume=first.run_id, progress=False)
        attempts = store.attempts(first.run_id)
    assert resumed.outcome.status == "finished"
    assert servers[1].stats().requests == HARMFUL
    assert resumed.helper is not None and resumed.helper.skipped_existing == HARMFUL
    assert len(attempts) == HARMFUL + TARGET_ATTEMPTS
