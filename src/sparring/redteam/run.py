"""Running a red-team campaign: models checked, the run created (or resumed), every episode
run through ``Calls`` and stored as a step.

Each finished episode (one method on one behavior) is stored as the step
``episode/METHOD/BEHAVIOR`` with its outcome, and the adaptive campaign's arms as
``adaptive/arms``; the report reads those steps. A resumed run skips the episodes it has
stored and replays the others from their stored calls, so it asks no model anything it
asked before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sparring.engine import limited_engine, model_executor, target_executor
from sparring.errors import ConfigError, StageStopped
from sparring.judges import Judge, resolve_judge
from sparring.models import ChatModel, resolve_model
from sparring.redteam.adaptive import adaptive
from sparring.redteam.calls import Calls
from sparring.redteam.config import ADAPTIVE, RedteamConfig
from sparring.redteam.episode import Episode
from sparring.redteam.registry import METHODS
from sparring.redteam.static import run_static
from sparring.scan import load_scan_behaviors
from sparring.store import Store
from sparring.types import Behavior

Say = Callable[[str], None]


@dataclass(frozen=True)
class RedteamResult:
    """How a call of ``run_redteam`` ended."""

    run_id: str
    status: str
    """``finished``, or why it stopped early (``budget``, ``interrupted``): resumable."""
    requests: int = 0
    """Model requests (attacker and target, cached ones included) this call spent."""


@dataclass(frozen=True)
class RedteamModels:
    """Models a caller built and checked for ``run_redteam``, used as they are and left
    open: ``sparring defend`` hands it a target behind the guards it calibrated."""

    target: ChatModel
    attacker: ChatModel
    judge: Judge


def episode_step(method: str, behavior_id: str) -> str:
    """The name of the step that stores one episode's outcome."""
    return f"episode/{method}/{behavior_id}"


ARMS_STEP = "adaptive/arms"
"""The step that stores what the adaptive campaign learned about each arm."""


def load_behaviors(config: RedteamConfig, say: Say | None = None) -> list[Behavior]:
    """The harmful behaviors a run attacks: the scan's selection for the same flags."""
    chosen = [b for b in load_scan_behaviors(config.behavior_source(), say) if not b.benign]
    if not chosen:
        raise ConfigError("the red-team run has no harmful behaviors: check --suite / --behaviors")
    return chosen


def create_run(
    config: RedteamConfig, store: Store, behaviors: Sequence[Behavior], judge_id: str
) -> str:
    """A new stored red-team run of ``config`` attacking ``behaviors``; its id. A caller
    that must know the id before any call (to link it) creates the run, then resumes it."""
    run_id = store.create_run(
        "redteam",
        config.model_dump(mode="json"),
        config.seed,
        {"target": config.target, "attacker": config.attacker, "judge": judge_id},
    )
    store.add_behaviors(run_id, behaviors)
    return run_id


async def run_redteam(
    config: RedteamConfig,
    store: Store,
    *,
    resume: str | None = None,
    behaviors: Sequence[Behavior] | None = None,
    say: Say | None = None,
    models: RedteamModels | None = None,
) -> RedteamResult:
    """Run (or resume) a campaign into ``store``; the report is rendered from the store.

    Every model passes its pre-flight check before the run is created. ``behaviors`` are
    ``load_behaviors(config)`` when the caller has them already; a resume uses the run's
    stored ones and runs the calls that failed before again. ``models``, when given, are
    used instead of the config's specs (which are then only recorded), unchecked and left
    open. Raises RunFailedError when the first calls all fail at a model.
    """
    say = say or (lambda line: None)
    ready = models or _build(config)
    try:
        if models is None:
            for model in _distinct(ready):
                await model.check()
            await ready.judge.check()
        if resume is None:
            behaviors = list(behaviors or load_behaviors(config, say))
            run_id = create_run(config, store, behaviors, ready.judge.id)
        else:
            run_id = resume
            store.mark_running(run_id)
            store.forget_errors(run_id)  # so the calls that failed before run again
            behaviors = store.behaviors(run_id)
        status, requests = await _campaign(config, store, run_id, behaviors, ready, say)
    finally:
        if models is None:
            for model in _distinct(ready):
                await model.aclose()
            await ready.judge.aclose()
    return RedteamResult(run_id, status, requests)


def _build(config: RedteamConfig) -> RedteamModels:
    """The config's models; the attacker is the target when both specs and options match."""
    target = resolve_model(config.target, config.target_options)
    shared = (config.attacker, config.attacker_options) == (config.target, config.target_options)
    attacker = target if shared else resolve_model(config.attacker, config.attacker_options)
    return RedteamModels(target, attacker, resolve_judge(config.judge, config.judge_settings()))


def _distinct(models: RedteamModels) -> list[ChatModel]:
    """The target, and the attacker unless it is the target."""
    return [models.target] if models.attacker is models.target else [models.target, models.attacker]


async def _campaign(
    config: RedteamConfig,
    store: Store,
    run_id: str,
    behaviors: Sequence[Behavior],
    models: RedteamModels,
    say: Say,
) -> tuple[str, int]:
    """Run every episode not yet stored; the run's status when it ends and the model
    requests spent."""
    done = store.steps(run_id)
    if done:
        say(f"resuming {run_id}: {len(done)} episodes or steps already stored")
    engine = limited_engine(store, run_id, config, progress=False)
    calls = Calls(
        engine,
        model_executor(models.attacker, store=store),
        target_executor(models.target, [models.judge], {b.id: b for b in behaviors}, store=store),
        {a.spec.key: a for a in store.iter_attempts(run_id)},
    )
    tally = _Tally(len(behaviors), say)

    def episode(behavior: Behavior, method: str) -> Episode:
        queries = config.budgets.queries
        return Episode(calls, config, behavior, method, queries, config.budgets)

    async def one(behavior: Behavior, method: str) -> None:
        current = episode(behavior, method)
        await (METHODS.get(method) if method in METHODS else run_static)(current)
        store.record_step(run_id, episode_step(method, behavior.id), current.outcome())
        tally.add(method, current.success_at is not None)

    async def campaign() -> None:
        episodes = [episode(b, ADAPTIVE) for b in behaviors]
        arms = await adaptive(episodes)
        for current in episodes:
            store.record_step(
                run_id, episode_step(ADAPTIVE, current.behavior.id), current.outcome()
            )
            tally.add(ADAPTIVE, current.success_at is not None)
        store.record_step(run_id, ARMS_STEP, {name: arm.to_dict() for name, arm in arms.items()})

    say(
        f"red-teaming {len(behaviors)} behaviors with {', '.join(config.methods)}: up to "
        f"{config.budgets.queries} target queries each; {config.concurrency} requests in flight"
    )
    work = []
    for method in config.methods:
        if method == ADAPTIVE:
            if ARMS_STEP not in done:
                work.append(campaign())
            continue
        work += [one(b, method) for b in behaviors if episode_step(method, b.id) not in done]
    try:
        await calls.run(work)
    except StageStopped as stopped:
        return str(stopped), engine.meter.requests
    store.finish_run(run_id, "finished")
    return "finished", engine.meter.requests


class _Tally:
    """Says one line per finished episode: counts only, never a prompt or a reply."""

    def __init__(self, behaviors: int, say: Say) -> None:
        self.behaviors = behaviors
        self.say = say
        self.done: Counter[str] = Counter()
        self.broken: Counter[str] = Counter()

    def add(self, method: str, success: bool) -> None:
        self.done[method] += 1
        self.broken[method] += success
        self.say(
            f"  {method}: {self.done[method]}/{self.behaviors} behaviors done, "
            f"{self.broken[method]} broken"
        )
