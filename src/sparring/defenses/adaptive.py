"""The adaptive check of ``sparring defend --adaptive METHODS``: the red-team methods named
run against the undefended target and behind each defense, because a fixed list of prompts
overstates what a defense holds against an attacker that adapts to its replies.

Each arm gets its own ``redteam`` run in the same store, with the same attacker, judge,
behaviors (the defend run's harmful ones, at most ``adaptive_limit`` of them), budgets and
seed, so that the arms are compared on equal terms. The target of an arm's run is the very
model its static arm answered through: the arm's guard stack with its options, on the same
loaded target, with the thresholds the run calibrated (one GuardKit). Every attacker,
target and judge call goes through the red-team run's engine into the store.

Before an arm's red-team run makes a call, the defend run records the step
``defend:adaptive/ARM`` with its id; a resumed defend run resumes each red-team run where it
stopped (its calls are answered from the store, not made again) and skips finished ones.
The arms run one after the other, the undefended target first. The defend run's budgets
(``max_requests``, ``time_limit_s``) cover the whole process: each red-team run gets what
the static arms and the runs before it left. Unlike the static arms (timed, so uncached),
the red-team runs use the completion cache as ``sparring redteam`` does: an attacker
request that two arms make alike (their first prompts) is sent once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sparring.defenses.config import BASELINE, DefendConfig
from sparring.errors import RunFailedError
from sparring.judges import Judge
from sparring.models import ChatModel, resolve_model
from sparring.redteam.config import RedteamConfig
from sparring.redteam.run import RedteamModels, Say, create_run, run_redteam
from sparring.scan.plan import select_behaviors
from sparring.store import RunStatus, Store
from sparring.types import Behavior

ADAPTIVE_STEP = "defend:adaptive/"
"""Prefix of the defend run's steps that link an arm (the rest of the name) to its
red-team run: ``{"defense": ARM, "run_id": ID, "methods": [...]}``."""


def adaptive_step(label: str) -> str:
    """The step linking arm ``label`` to its red-team run."""
    return f"{ADAPTIVE_STEP}{label}"


def arm_redteam_config(config: DefendConfig, label: str) -> RedteamConfig:
    """The red-team config of arm ``label``'s adaptive check, as stored with its run.

    The target spec names the arm (``defended/STACK/TARGET``) for the record; the run itself
    is handed the arm's model. The target's reply length, temperature and system prompt are
    the defend run's; budgets of requests and time are set per process, not stored.
    """
    target = config.target if label == BASELINE else f"defended/{label}/{config.target}"
    fields = config.model_dump(
        mode="json",
        include={
            "target_options",
            "attacker",
            "attacker_options",
            "judge",
            "judge_options",
            "system_prompt",
            "suite",
            "max_tokens",
            "temperature",
            "seed",
            "concurrency",
        },
    )
    return RedteamConfig.model_validate(
        {
            **fields,
            "target": target,
            "limit": config.adaptive_limit or config.limit,
            "methods": config.adaptive,
            "budgets": config.adaptive_budgets.model_dump(),
        }
    )


def adaptive_behaviors(config: DefendConfig, behaviors: Sequence[Behavior]) -> list[Behavior]:
    """The behaviors every arm's red-team run attacks: the run's harmful ones, at most
    ``adaptive_limit`` of them, chosen as a scan chooses."""
    harmful = [b for b in behaviors if not b.benign]
    return select_behaviors(harmful, config.adaptive_limit, config.seed)


def build_attacker(config: DefendConfig, target: ChatModel) -> ChatModel | None:
    """The attacker of the adaptive check (None without one): ``target`` itself when the
    attacker's spec and options are the target's, so one model is loaded once."""
    if not config.adaptive:
        return None
    if (config.attacker, config.attacker_options) == (config.target, config.target_options):
        return target
    return resolve_model(config.attacker, arm_redteam_config(config, BASELINE).attacker_options)


async def run_adaptive(
    config: DefendConfig,
    store: Store,
    run_id: str,
    behaviors: Sequence[Behavior],
    arms: Mapping[str, ChatModel],
    attacker: ChatModel,
    judge: Judge,
    *,
    spent_requests: int,
    started: float,
    say: Say,
) -> RunStatus:
    """Run (or resume) each arm's red-team run; how the adaptive part ended.

    ``arms`` are the checked models of the static arms, by label; ``spent_requests`` the
    requests this process already made and ``started`` when it started (``time.monotonic``).
    Raises RunFailedError naming the defend run when a red-team run fails at a model.
    """
    links = store.steps(run_id, ADAPTIVE_STEP)
    chosen = adaptive_behaviors(config, behaviors)
    requests = spent_requests
    for label, model in arms.items():
        link = links.get(adaptive_step(label))
        red_id = None if link is None else str(link["run_id"])
        if red_id is not None and store.get_run(red_id).status == "finished":
            continue
        limits = _left(config, requests, started)
        if limits is None:
            return "budget"
        arm_config = arm_redteam_config(config, label)
        if red_id is None:
            red_id = create_run(arm_config, store, chosen, judge.id)
            store.record_step(
                run_id,
                adaptive_step(label),
                {"defense": label, "run_id": red_id, "methods": list(config.adaptive)},
            )
        say(f"adaptive check of {label}: {', '.join(config.adaptive)} in red-team run {red_id}")
        try:
            result = await run_redteam(
                arm_config.model_copy(update=limits),
                store,
                resume=red_id,
                say=say,
                models=RedteamModels(target=model, attacker=attacker, judge=judge),
            )
        except RunFailedError as failed:
            store.finish_run(run_id, "failed")
            raise RunFailedError(
                f"the adaptive check of {label} (red-team run {red_id}): {failed}", run_id
            ) from failed
        requests += result.requests
        if result.status != "finished":
            return cast(RunStatus, result.status)
    return "finished"


def _left(config: DefendConfig, requests: int, started: float) -> dict[str, Any] | None:
    """The request and time budgets this process has left, as red-team config fields;
    None when one is spent."""
    left: dict[str, Any] = {}
    if config.max_requests is not None:
        if requests >= config.max_requests:
            return None
        left["max_requests"] = config.max_requests - requests
    if config.time_limit_s is not None:
        remaining_s = config.time_limit_s - (time.monotonic() - started)
        if remaining_s <= 0:
            return None
        left["time_limit_s"] = remaining_s
    return left
