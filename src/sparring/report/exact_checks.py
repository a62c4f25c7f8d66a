"""The part of a scan report that only exact checks make possible: success by where the
payload sat or how the prompt asked, task utility with and without the attack, and what a
sponge prompt costs against the same task asked plainly.

Computed from the stored attempts (their meta says what each check and reference answer
was), so the numbers trace to attempt keys like every other rate:

- **Success by variant**: for each technique whose attempts carry a check, the trial rate
  of success (the primary judge's ``unsafe``, which is the exact check's verdict for these
  attempts), overall and by the meta value that varies within it, each slice named by
  that value: its ``position`` (start, middle, end of the document) or its ``style`` (the
  extraction prompt's style or encoding). Continuations also get the rate of exact
  matches (the whole expected text, word for word).
- **Utility**: over attempts whose meta holds a reference answer (``expected``), the rate
  of replies holding every piece of it (``sparring.judges.exact.task_done``: tokens
  compared after dropping case, currency signs, thousands separators and trailing decimal
  zeros), for ``clean-task`` and for each attack that leaves the task in place; the
  difference from clean comes with Newcombe's interval (independent proportions, which is
  conservative for these paired attempts).
- **Cost**: for each technique whose meta names a ``baseline`` technique, the ratio of its
  mean output tokens (and mean latency) to the baseline's over the behaviors and samples
  where both answered, with a 95% percentile bootstrap interval over those pairs (2,000
  resamples, seed 0), and the share of replies cut at the token cap (the EOS-suppression
  rate) for both. Latency is wall time under the scan's concurrency, so its ratio is
  noisier than the token ratio; a low ``--max-tokens`` bounds both ratios (a capped reply
  cannot grow), so measure sponges with a cap well above the task's answers.

Every rate has its n and a Wilson 95% interval; errors are counted apart, never as
failures or successes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparring.attacks.application import CLEAN_TASK
from sparring.judges.exact import ContinuationCheck, check_of, run_check, task_done
from sparring.metrics import SCORED, Outcome, ScanData, ScanSummary, Trial
from sparring.stats import Rate, newcombe_difference, rate
from sparring.types import AttemptResult

VARIANT_KEYS = ("position", "style")
"""Meta fields whose values split a technique's success rate."""

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class SliceRate:
    """The success rate of one technique over one slice of its attempts."""

    family: str
    technique: str
    slice: str
    """``all``; a position (``start``) or style (``base64``); ``exact match``."""
    rate: Rate
    errors: int
    """Attempts of the slice whose request failed, left out of ``rate``."""


@dataclass(frozen=True)
class UtilityRate:
    """The share of replies that did the task, for one technique (and slice)."""

    technique: str
    slice: str
    rate: Rate
    errors: int
    difference: tuple[float, float, float] | None
    """Difference from ``clean-task`` and its 95% interval (probabilities); None for
    clean-task itself, or when either rate has no trials."""


@dataclass(frozen=True)
class Ratio:
    """A ratio of means with its 95% bootstrap interval; None where undefined."""

    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class CostRatio:
    """What a technique's replies cost against its baseline's, on the same behaviors."""

    technique: str
    baseline: str
    pairs: int
    """(behavior, sample) pairs where both answered."""
    tokens: float
    """Mean output tokens of the technique's replies."""
    baseline_tokens: float
    token_ratio: Ratio
    latency_s: float
    """Mean latency of the technique's requests, seconds."""
    baseline_latency_s: float
    latency_ratio: Ratio
    capped: Rate
    """Share of the technique's replies cut at the token cap (finish reason ``length``)."""
    baseline_capped: Rate


@dataclass(frozen=True)
class ExactSummary:
    """Everything the exact-check section of a report shows."""

    slices: tuple[SliceRate, ...]
    utility: tuple[UtilityRate, ...]
    costs: tuple[CostRatio, ...]


def exact_summary(data: ScanData, summary: ScanSummary) -> ExactSummary | None:
    """The exact-check section of a scan, or None when no attempt carries a check."""
    trials = {t.key: t for t in summary.trials}
    checked = [
        (a, trials[a.spec.key])
        for a in data.attempts
        if "check" in a.spec.meta and a.spec.key in trials
    ]
    if not checked:
        return None
    return ExactSummary(
        slices=tuple(_slices(checked)),
        utility=tuple(_utility(checked)),
        costs=tuple(_costs(checked)),
    )


def _group(
    pairs: Iterable[tuple[AttemptResult, Trial]],
) -> dict[str, list[tuple[AttemptResult, Trial]]]:
    groups: dict[str, list[tuple[AttemptResult, Trial]]] = defaultdict(list)
    for attempt, trial in pairs:
        groups[trial.technique].append((attempt, trial))
    return dict(sorted(groups.items()))


def _variant(attempt: AttemptResult) -> str | None:
    meta = attempt.spec.meta
    return next((str(meta[k]) for k in VARIANT_KEYS if k in meta), None)


def _slices(checked: Sequence[tuple[AttemptResult, Trial]]) -> Iterable[SliceRate]:
    for technique, pairs in _group(checked).items():
        family = pairs[0][1].family
        yield _success(family, technique, "all", [t for _, t in pairs])
        by_variant: dict[str, list[Trial]] = defaultdict(list)
        for attempt, trial in pairs:
            variant = _variant(attempt)
            if variant is not None:
                by_variant[variant].append(trial)
        for variant in sorted(by_variant):
            yield _success(family, technique, variant, by_variant[variant])
        exact = [
            (a, t)
            for a, t in pairs
            if isinstance(check_of(a.spec.meta), ContinuationCheck) and t.outcome in SCORED
        ]
        if exact:
            hits = sum(_exact_match(a) for a, _ in exact)
            errors = sum(t.outcome is Outcome.ERROR for _, t in pairs)
            yield SliceRate(family, technique, "exact match", rate(hits, len(exact)), errors)


def _exact_match(attempt: AttemptResult) -> bool:
    check = check_of(attempt.spec.meta)
    return check is not None and run_check(check, attempt.completions[-1].text).exact is True


def _success(family: str, technique: str, name: str, trials: Sequence[Trial]) -> SliceRate:
    scored = [t for t in trials if t.outcome in SCORED]
    k = sum(t.outcome is Outcome.UNSAFE for t in scored)
    errors = sum(t.outcome is Outcome.ERROR for t in trials)
    return SliceRate(family, technique, name, rate(k, len(scored)), errors)


def _done(pairs: Sequence[tuple[AttemptResult, Trial]]) -> tuple[Rate, int]:
    answered = [a for a, _ in pairs if a.error is None and a.completions]
    k = sum(task_done(a.spec.meta["expected"], a.completions[-1].text) for a in answered)
    return rate(k, len(answered)), len(pairs) - len(answered)


def _utility(checked: Sequence[tuple[AttemptResult, Trial]]) -> Iterable[UtilityRate]:
    with_reference = [(a, t) for a, t in checked if a.spec.meta.get("expected")]
    groups = _group(with_reference)
    clean = _done(groups[CLEAN_TASK])[0] if CLEAN_TASK in groups else None

    def versus(r: Rate, technique: str) -> tuple[float, float, float] | None:
        if technique == CLEAN_TASK or clean is None or not clean.n or not r.n:
            return None
        return newcombe_difference(clean, r)

    for technique, pairs in sorted(groups.items(), key=lambda g: g[0] != CLEAN_TASK):
        overall, errors = _done(pairs)
        yield UtilityRate(technique, "all", overall, errors, versus(overall, technique))
        by_variant: dict[str, list[tuple[AttemptResult, Trial]]] = defaultdict(list)
        for attempt, trial in pairs:
            variant = _variant(attempt)
            if variant is not None:
                by_variant[variant].append((attempt, trial))
        for variant in sorted(by_variant):
            part, part_errors = _done(by_variant[variant])
            yield UtilityRate(technique, variant, part, part_errors, versus(part, technique))


def _costs(checked: Sequence[tuple[AttemptResult, Trial]]) -> Iterable[CostRatio]:
    answered = {
        (a.spec.attack, a.spec.behavior_id, a.spec.sample): a
        for a, _ in checked
        if a.error is None and a.completions
    }
    for technique, pairs in _group(checked).items():
        baseline = pairs[0][0].spec.meta.get("baseline")
        if not isinstance(baseline, str):
            continue
        # In plan order, not the order requests finished, so the bootstrap is reproducible.
        matched = sorted(
            (
                (a, answered[(baseline, a.spec.behavior_id, a.spec.sample)])
                for a, _ in pairs
                if a.error is None
                and a.completions
                and (baseline, a.spec.behavior_id, a.spec.sample) in answered
            ),
            key=lambda pair: (pair[0].spec.behavior_id, pair[0].spec.sample),
        )
        tokens = np.array([[_tokens(a), _tokens(b)] for a, b in matched], dtype=float)
        latency = np.array([[_latency(a), _latency(b)] for a, b in matched], dtype=float)
        yield CostRatio(
            technique=technique,
            baseline=baseline,
            pairs=len(matched),
            tokens=_mean(tokens, 0),
            baseline_tokens=_mean(tokens, 1),
            token_ratio=ratio_of_means(tokens),
            latency_s=_mean(latency, 0),
            baseline_latency_s=_mean(latency, 1),
            latency_ratio=ratio_of_means(latency),
            capped=rate(sum(_capped(a) for a, _ in matched), len(matched)),
            baseline_capped=rate(sum(_capped(b) for _, b in matched), len(matched)),
        )


def _capped(attempt: AttemptResult) -> bool:
    return attempt.completions[-1].finish_reason == "length"


def _tokens(attempt: AttemptResult) -> int:
    return sum(c.completion_tokens for c in attempt.completions)


def _latency(attempt: AttemptResult) -> float:
    return sum(c.latency_s for c in attempt.completions)


def _mean(pairs: np.ndarray[Any, Any], column: int) -> float:
    return float(pairs[:, column].mean()) if len(pairs) else 0.0


def ratio_of_means(pairs: np.ndarray[Any, Any]) -> Ratio:
    """mean(column 0) / mean(column 1) of paired rows, with a 95% percentile bootstrap
    interval over the rows (``BOOTSTRAP_RESAMPLES`` resamples, ``BOOTSTRAP_SEED``); None
    parts where the baseline's mean is 0 or there are no rows."""
    if len(pairs) == 0 or pairs[:, 1].sum() <= 0:
        return Ratio(None, None, None)
    value = float(pairs[:, 0].sum() / pairs[:, 1].sum())
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(pairs), size=(BOOTSTRAP_RESAMPLES, len(pairs)))
    tops, bottoms = pairs[picks, 0].sum(axis=1), pairs[picks, 1].sum(axis=1)
    ratios = tops[bottoms > 0] / bottoms[bottoms > 0]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Ratio(value, float(low), float(high))


def exact_to_json(exact: ExactSummary) -> dict[str, Any]:
    """The section as JSON-ready data: rates as ``{k, n, value, low, high}``."""
    return {
        "slices": [
            {
                "family": s.family,
                "technique": s.technique,
                "slice": s.slice,
                **s.rate.to_dict(),
                "errors": s.errors,
            }
            for s in exact.slices
        ],
        "utility": [
            {
                "technique": u.technique,
                "slice": u.slice,
                **u.rate.to_dict(),
                "errors": u.errors,
                "difference_from_clean": None if u.difference is None else list(u.difference),
            }
            for u in exact.utility
        ],
        "costs": [
            {
                "technique": c.technique,
                "baseline": c.baseline,
                "pairs": c.pairs,
                "tokens": c.tokens,
                "baseline_tokens": c.baseline_tokens,
                "token_ratio": _ratio_json(c.token_ratio),
                "latency_s": c.latency_s,
                "baseline_latency_s": c.baseline_latency_s,
                "latency_ratio": _ratio_json(c.latency_ratio),
                "capped": c.capped.to_dict(),
                "baseline_capped": c.baseline_capped.to_dict(),
            }
            for c in exact.costs
        ],
    }


def _ratio_json(r: Ratio) -> Mapping[str, float | None]:
    return {"value": r.value, "low": r.low, "high": r.high}
