"""The prompts a DART run works from, split so that evaluation never sees training data.

Seed intents, held-out evaluation prompts and the round gate's validation prompts are
disjoint parts of one shuffled source (Anthropic Harmless by default); the fixed public
suite, the benign prompts for over-refusal and the benign prompts for replay (with
look-alikes and writing tasks written for sparring) come from other sources, and replay and
over-refusal never share a source. The round gate's benign validation prompts are the
over-refusal sources' prompts that ``benign`` did not draw: the same kind of prompt, never
one the table reports.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sparring.dart.config import DartConfig
from sparring.data import guess_category, suite
from sparring.errors import ConfigError
from sparring.types import Behavior


@dataclass(frozen=True)
class DartData:
    """The behaviors of one run, by role."""

    seeds: tuple[Behavior, ...]
    held_out: tuple[Behavior, ...]
    public: tuple[Behavior, ...]
    benign: tuple[Behavior, ...]
    replay: tuple[Behavior, ...]
    """Benign prompts for replay, those written for sparring's replay included (they come
    last)."""
    borderline: tuple[Behavior, ...] = ()
    """The prompts among ``replay`` written for it: look-alikes, then writing tasks."""
    validation: tuple[Behavior, ...] = ()
    """Harmful prompts of the seed source, apart from seeds and held-out: the round gate's."""
    validation_benign: tuple[Behavior, ...] = ()
    """Benign prompts of the over-refusal sources, apart from ``benign``: the round gate's."""

    @property
    def all(self) -> list[Behavior]:
        """Every behavior once, for the store."""
        seen: dict[str, Behavior] = {}
        groups = (self.seeds, self.held_out, self.public, self.benign, self.replay)
        for group in (*groups, self.validation, self.validation_benign):
            for behavior in group:
                seen.setdefault(behavior.id, behavior)
        return list(seen.values())


def _take(behaviors: Sequence[Behavior], n: int, rng: random.Random) -> tuple[Behavior, ...]:
    pool = list(behaviors)
    rng.shuffle(pool)
    return tuple(pool[:n])


def with_category(behavior: Behavior) -> Behavior:
    """Sources without categories (HH-RLHF) get one guessed from keywords, for directions."""
    if behavior.category != "other":
        return behavior
    return behavior.model_copy(update={"category": guess_category(behavior.text)})


def make_splits(config: DartConfig) -> DartData:
    """Draw the run's behaviors reproducibly from ``config.seed``."""
    rng = random.Random(config.seed)
    source = [b for b in suite(config.seeds_source) if not b.benign]
    needed = config.n_seeds + config.n_eval
    if len(source) < needed + config.n_validation:
        raise ConfigError(
            f"{config.seeds_source} has {len(source)} harmful prompts; n_seeds + n_eval + "
            f"n_validation needs {needed + config.n_validation}"
        )
    drawn = _take(source, needed, rng)
    seeds = tuple(with_category(b) for b in drawn[: config.n_seeds])
    held_out = drawn[config.n_seeds :]
    public = _take([b for b in suite(config.public_suite) if not b.benign], config.n_public, rng)
    benign_pool = [b for name in config.benign_suites for b in suite(name) if b.benign]
    benign = _take(benign_pool, config.n_benign, rng)
    for field in ("replay_suite", "borderline_suite", "task_suite"):
        if getattr(config, field) in config.benign_suites:
            raise ConfigError(f"{field} must differ from benign_suites (over-refusal is held out)")
    replay = _take([b for b in suite(config.replay_suite) if b.benign], config.n_replay, rng)
    borderline: tuple[Behavior, ...] = ()
    if config.n_borderline:
        # Drawn last, so the draws above are those of runs without look-alikes.
        taken = {b.id for b in replay}
        pool = [b for b in suite(config.borderline_suite) if b.benign and b.id not in taken]
        borderline = _take(pool, config.n_borderline, rng)
    # The validation splits are drawn after everything else, for the same reason.
    taken = {b.id for b in drawn + replay + borderline}
    validation = _take([b for b in source if b.id not in taken], config.n_validation, rng)
    reported = {b.id for b in benign}
    benign_rest = [b for b in benign_pool if b.id not in reported]
    validation_benign = _take(benign_rest, config.n_validation_benign, rng)
    if config.n_tasks:
        # Drawn last of all, so every split above is that of a run without them.
        pool = [b for b in suite(config.task_suite) if b.benign and b.id not in taken]
        borderline += _take(pool, config.n_tasks, rng)
    return DartData(
        seeds,
        held_out,
        public,
        benign,
        replay + borderline,
        borderline,
        validation,
        validation_benign,
    )
