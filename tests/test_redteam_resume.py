"""A red-team campaign stopped part-way (by its request budget, or cancelled) resumes where
it stopped: no stored call reaches a model again, and the result is the one an
uninterrupted campaign gives."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from redteam_scripts import (
    GOAL,
    OTHER,
    Servers,
    servers,
    slow_attacker,
    target_reply,
)
from sparring.config_files import validate_config
from sparring.redteam import RedteamConfig, run_redteam
from sparring.store import RunStore
from sparring.testing import ChatRequest

FIELDS: dict[str, Any] = {
    "methods": "pair,crescendo,adaptive",
    "arms": "direct,pair",
    "streams": 2,
    "depth": 3,
    "turns": 3,
    "pull_queries": 2,
    "queries": 6,
}


def bodies(s: Servers) -> list[str]:
    """Every request the three servers received, as comparable text."""
    return [
        repr(r.body) for server in (s.target, s.attacker, s.judge) for r in server.stats().received
    ]


async def uninterrupted(tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    async with servers(slow_attacker) as s:
        with RunStore(tmp_path / "whole.sqlite") as store:
            result = await run_redteam(s.config(**FIELDS), store, behaviors=[GOAL, OTHER])
            assert result.status == "finished"
            return store.steps(result.run_id), bodies(s)


async def resume(store: RunStore, run_id: str) -> str:
    config = validate_config(RedteamConfig, store.get_run(run_id).config, "stored")
    return (await run_redteam(config, store, resume=run_id)).status


async def test_a_campaign_stopped_by_its_budget_resumes_to_the_same_result(
    tmp_path: Path,
) -> None:
    whole, whole_requests = await uninterrupted(tmp_path)
    async with servers(slow_attacker) as s:
        with RunStore(tmp_path / "parts.sqlite") as store:
            config = s.config(**FIELDS, max_requests=7)
            first = await run_redteam(config, store, behaviors=[GOAL, OTHER])
            statuses = [first.status]
            while statuses[-1] != "finished":
                statuses.append(await resume(store, first.run_id))
            steps = store.steps(first.run_id)
        requests = bodies(s)
    assert statuses[0] == "budget" and len(statuses) > 3
    assert steps == whole
    assert len(requests) == len(set(requests)) == len(whole_requests)
    assert sorted(requests) == sorted(whole_requests)


async def test_a_cancelled_campaign_resumes_without_repeating_a_call(tmp_path: Path) -> None:
    whole, whole_requests = await uninterrupted(tmp_path)
    async with servers(slow_attacker) as s:
        with RunStore(tmp_path / "parts.sqlite") as store:
            reached = asyncio.Event()

            def target(request: ChatRequest) -> str:
                if request.index == 5:
                    reached.set()
                return target_reply(request)

            s.target.set_responder(target)
            task = asyncio.create_task(
                run_redteam(s.config(**FIELDS), store, behaviors=[GOAL, OTHER])
            )
            await reached.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            (run,) = store.list_runs()
            assert run.status == "interrupted"
            assert await resume(store, run.id) == "finished"
            steps = store.steps(run.id)
        requests = bodies(s)
    assert steps == whole
    assert sorted(requests) == sorted(whole_requests)
