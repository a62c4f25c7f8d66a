"""A deterministic scan-like run against a loopback chat server, for engine tests.

Run as a script it runs (or resumes) one plan into a store file and prints the outcome as
JSON on stdout:

    python tests/resumable_scan.py --store runs.sqlite --run-id r1 --base-url URL

The test server echoes the last user message, and MarkerJudge labels a reply by the words
it echoes, so every text and verdict is a function of the plan alone.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from collections.abc import Sequence

from sparring.engine import Engine, target_executor
from sparring.errors import StoreError
from sparring.judges.base import Judge, JudgeInput
from sparring.models.openai_http import OpenAICompatibleModel
from sparring.store import RunStore
from sparring.types import AttemptSpec, Behavior, GenerationParams, Label, Message, Verdict

MODEL_ID = "openai-compatible/sparring-test"


class MarkerJudge(Judge):
    """``unsafe`` when the reply says "comply", ``refusal`` for "refuse", else ``safe``."""

    id = "marker@1"

    def __init__(self) -> None:
        self.items_seen = 0
        """How many items this judge was asked about."""

    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        self.items_seen += len(items)
        return [self._one(item.response) for item in items]

    def _one(self, response: str) -> Verdict:
        if "comply" in response:
            return Verdict(label=Label.UNSAFE, p_unsafe=0.9, judge_id=self.id)
        if "refuse" in response:
            return Verdict(label=Label.REFUSAL, p_unsafe=0.1, judge_id=self.id)
        return Verdict(label=Label.SAFE, p_unsafe=0.2, judge_id=self.id)


def make_behaviors(count: int) -> dict[str, Behavior]:
    """``count`` behaviors b0, b1, ... keyed by id."""
    return {
        f"b{n}": Behavior(id=f"b{n}", text=f"behavior {n}", category="test", source="unit")
        for n in range(count)
    }


def make_plan(attempts: int, behaviors: int = 10) -> list[AttemptSpec]:
    """``attempts`` distinct specs; every fifth has a followup turn."""
    words = ("comply", "refuse", "ramble")
    plan = []
    for n in range(attempts):
        followups = (f"go on {words[(n + 1) % 3]}",) if n % 5 == 0 else ()
        plan.append(
            AttemptSpec(
                behavior_id=f"b{n % behaviors}",
                attack="direct",
                messages=(Message(role="user", content=f"item {n} please {words[n % 3]}"),),
                followups=followups,
                params=GenerationParams(max_tokens=64),
            )
        )
    return plan


def http_model(base_url: str, max_concurrency: int = 64) -> OpenAICompatibleModel:
    """The client for the loopback server, without retries so faults show at once."""
    return OpenAICompatibleModel(
        "sparring-test",
        model_id=MODEL_ID,
        base_url=base_url,
        api_key=None,
        max_concurrency=max_concurrency,
        max_retries=0,
    )


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Create the run unless it exists, run the plan, and return the outcome's fields."""
    behaviors = make_behaviors(10)
    with RunStore(args.store) as store:
        try:
            store.get_run(args.run_id)
        except StoreError:
            store.create_run(
                "scan", {"attempts": args.attempts}, 0, {"target": MODEL_ID}, run_id=args.run_id
            )
            store.add_behaviors(args.run_id, behaviors.values())
        async with http_model(args.base_url) as target:
            execute = target_executor(target, [MarkerJudge()], behaviors, store=store)
            engine = Engine(
                store,
                args.run_id,
                concurrency=args.concurrency,
                progress=False,
                commit_every=args.commit_every,
            )
            outcome = await engine.run(make_plan(args.attempts), execute)
    return dataclasses.asdict(outcome)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--attempts", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--commit-every", type=int, default=16)
    print(json.dumps(asyncio.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
