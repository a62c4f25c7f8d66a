"""Running ``sparring defend``: the same attacks and benign prompts against the target with
no guard and behind each defense, in one stored run.

The plan is a scan's (``sparring.scan.build_plan``): every harmful behavior under every
static technique, every benign behavior asked plainly. Each arm (``none``, then each
defense) runs the whole plan, its attempts tagged ``meta["defense"]`` so that their keys
differ and a resume skips what is stored. One target model is loaded and shared by every
arm; so are the guards' judges and calibrations (one GuardKit).

Latency is measured, not assumed: every arm, the baseline included, answers through a
DefendedModel (no guard for the baseline), which times each request from its start to
its final answer, and the completion cache is not used, so every time is of this run.
The plan runs in rounds of ``ROUND_SLOTS`` x concurrency attempts; within a round the
arms take turns, each alone on the model with the same concurrency, and the order of the
turns rotates from one round to the next. An arm's requests are thus never slowed by
another arm's, and the latency ratio compares arms round by round (see ``tally``), so a
change in the machine's load during the run (another job starting) does not fall on the
arms that happened to run at that time. Each attempt records its round
(``meta["round"]``).

With ``adaptive`` methods, the static arms are followed by the adaptive check (``adaptive``):
each arm's model, built once here, is attacked by the red-team methods in a run of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sparring.data import suite
from sparring.defenses.adaptive import build_attacker, run_adaptive
from sparring.defenses.config import BASELINE, DefendConfig
from sparring.defenses.kit import GuardKit
from sparring.defenses.model import DefendedModel
from sparring.engine import limited_engine, target_executor
from sparring.errors import ConfigError
from sparring.judges import resolve_judge
from sparring.models import resolve_model
from sparring.scan.plan import build_plan, scan_attacks, select_behaviors
from sparring.store import RunStatus, Store
from sparring.types import AttemptSpec, Behavior

RUN_KIND = "defend"
DEFENSE_KEY = "defense"
"""The AttemptSpec.meta key holding the arm (``none`` or a defense's label)."""
ROUND_KEY = "round"
"""The AttemptSpec.meta key holding the round an attempt ran in (from 0)."""
THRESHOLDS_STEP = "defend:thresholds"
"""The run step that records each filter's threshold and how it was calibrated."""
ROUND_SLOTS = 2
"""A round gives each arm this many attempts per attempt in flight (``concurrency``)."""

Say = Callable[[str], None]


@dataclass(frozen=True)
class DefendRun:
    """What a finished (or stopped) defend run left in the store."""

    run_id: str
    status: RunStatus
    """``finished`` when every arm finished its plan; else how the run stopped."""


def load_defend_behaviors(config: DefendConfig) -> list[Behavior]:
    """The harmful behaviors of ``config.suite`` and the benign ones of the benign suites,
    each at most ``config.limit``, chosen as a scan chooses them."""
    harmful = [b for b in suite(config.suite) if not b.benign]
    benign = [b for name in config.benign_suites for b in suite(name) if b.benign]
    if not harmful:
        raise ConfigError(f"suite {config.suite!r} has no harmful behaviors; name another")
    if not benign:
        names = ", ".join(config.benign_suites)
        raise ConfigError(f"benign suites {names} hold no benign behaviors; name others")
    return [
        *select_behaviors(harmful, config.limit, config.seed),
        *select_behaviors(benign, config.limit, config.seed),
    ]


def arm_spec(spec: AttemptSpec, label: str, round_index: int) -> AttemptSpec:
    """``spec`` as the attempt of arm ``label`` in round ``round_index``."""
    meta = {**spec.meta, DEFENSE_KEY: label, ROUND_KEY: round_index}
    return spec.model_copy(update={"meta": meta})


def arm_of(spec: AttemptSpec) -> str:
    """The arm an attempt belongs to."""
    return str(spec.meta.get(DEFENSE_KEY, BASELINE))


def round_of(spec: AttemptSpec) -> int:
    """The round an attempt ran in."""
    return int(spec.meta.get(ROUND_KEY, 0))


def pair_key(spec: AttemptSpec) -> str:
    """The same key for the same planned attempt in every arm."""
    meta = {k: v for k, v in spec.meta.items() if k not in (DEFENSE_KEY, ROUND_KEY)}
    return spec.model_copy(update={"meta": meta}).key


async def run_defend(
    config: DefendConfig,
    store: Store,
    *,
    resume: str | None = None,
    behaviors: Sequence[Behavior] | None = None,
    progress: bool = True,
    say: Say | None = None,
) -> DefendRun:
    """Run (or resume) the arms of ``config`` into ``store``; see the module docstring.

    The target, the judge, every guard (judges loaded, thresholds calibrated) and the
    adaptive check's attacker are checked before the run is created, so a bad input leaves
    nothing in the store. Raises RunFailedError when an arm's first attempts all fail at
    the model.
    """
    tell = say or (lambda line: None)
    behaviors = list(behaviors) if behaviors is not None else load_defend_behaviors(config)
    scan_config = config.scan_config()
    attacks = scan_attacks(scan_config)
    helpers = sorted(name for name, attack in attacks.items() if attack.needs_helper)
    if helpers:
        raise ConfigError(
            f"defend runs static techniques; {', '.join(helpers)} need a helper model: drop them"
        )
    # The scan's target options: an HTTP backend's limit follows --concurrency, as in a scan.
    target_options = scan_config.target_options
    target = resolve_model(config.target, target_options)
    judge = resolve_judge(config.judge, config.judge_settings())
    kit = GuardKit(target, model_options=target_options, judge_options=config.judge_settings())
    arms = {
        label: DefendedModel(kit, stack)
        for label, stack in zip(config.labels, ((), *config.defenses), strict=True)
    }
    attacker = build_attacker(config, target)
    status: RunStatus = "finished"
    try:
        await judge.check()
        for model in arms.values():
            await model.check()
        if attacker is not None and attacker is not target:
            await attacker.check()
        plan = await build_plan(scan_config, behaviors, attacks)
        run_id = _open_run(config, store, resume, behaviors, judge.id, arms)
        started = time.monotonic()
        engine = limited_engine(store, run_id, config, progress=progress)
        by_id = {b.id: b for b in behaviors}
        executors = {label: target_executor(model, [judge], by_id) for label, model in arms.items()}
        size = ROUND_SLOTS * config.concurrency
        rounds = [plan[i : i + size] for i in range(0, len(plan), size)]
        tell(
            f"{len(arms)} arms ({', '.join(arms)}) x {len(plan)} attempts, in "
            f"{len(rounds)} rounds of up to {size} attempts per arm"
        )
        labels = list(arms)
        turns = [
            (r, label)
            for r in range(len(rounds))
            for label in labels[r % len(labels) :] + labels[: r % len(labels)]
        ]
        for n, (r, label) in enumerate(turns):
            if n % len(labels) == 0:
                tell(f"round {r + 1}/{len(rounds)}")
            chunk = [arm_spec(spec, label, r) for spec in rounds[r]]
            last = attacker is None and n == len(turns) - 1
            outcome = await engine.run(chunk, executors[label], last=last)
            if outcome.status != "finished":
                status = outcome.status
                break
        if attacker is not None and status == "finished":
            status = await run_adaptive(
                config,
                store,
                run_id,
                behaviors,
                arms,
                attacker,
                judge,
                spent_requests=engine.meter.requests,
                started=started,
                say=tell,
            )
            store.finish_run(run_id, status)
    finally:
        await kit.aclose()
        await judge.aclose()
        await target.aclose()
        if attacker is not None and attacker is not target:
            await attacker.aclose()
    return DefendRun(run_id=run_id, status=status)


def _open_run(
    config: DefendConfig,
    store: Store,
    resume: str | None,
    behaviors: Sequence[Behavior],
    judge_id: str,
    arms: dict[str, DefendedModel],
) -> str:
    """A new run of ``config`` with its behaviors and its filters' calibrated thresholds
    (recomputed alike on a resume), or the stored run ``resume`` marked running again."""
    if resume is not None:
        store.mark_running(resume)
        store.forget_errors(resume)
        return resume
    run_id = store.create_run(
        RUN_KIND,
        config.model_dump(mode="json"),
        config.seed,
        {"target": config.target, "judge": judge_id},
    )
    store.add_behaviors(run_id, behaviors)
    store.record_step(run_id, THRESHOLDS_STEP, {"thresholds": _calibrations(arms)})
    return run_id


def _calibrations(arms: dict[str, DefendedModel]) -> list[dict[str, Any]]:
    """What each guard calibrated (a threshold and its source), by arm."""
    return [
        {"defense": label, "guard": guard.name, **calibration}
        for label, model in arms.items()
        for guard in model.guards
        if (calibration := guard.calibration()) is not None
    ]
