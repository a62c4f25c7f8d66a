"""Executors: what the engine calls to turn one AttemptSpec into an AttemptResult.

A plain executor is one async callable that converses and judges. ``TargetExecutor`` also
splits the two (``StagedExecutor``), so the engine can free a request slot as soon as the
target has answered and score the finished conversations in batches on a stage of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from sparring.errors import SparringError
from sparring.judges.base import Judge, JudgeInput
from sparring.models.base import ChatModel
from sparring.store import Store
from sparring.types import (
    AttemptResult,
    AttemptSpec,
    Behavior,
    Completion,
    GenerationParams,
    Label,
    Message,
    Verdict,
)

logger = logging.getLogger(__name__)

Executor = Callable[[AttemptSpec], Awaitable[AttemptResult]]
"""Runs one attempt. Model failures belong in the result (``Completion.failure``); an
exception means a bug, and the engine records it as an error attempt. A SparringError
means nothing can work (e.g. a model that cannot be loaded) and ends the run."""


@runtime_checkable
class StagedExecutor(Protocol):
    """An executor whose attempt has two stages the engine may run apart: the conversation
    (holding a request slot) and the judging (in batches, off the request path).

    Calling it runs both for one attempt. Errors follow ``Executor``: a SparringError from
    either stage ends the run, any other exception makes the attempts concerned errors.
    """

    async def __call__(self, spec: AttemptSpec) -> AttemptResult:
        """Converse and judge one attempt."""
        ...

    async def converse(self, spec: AttemptSpec) -> AttemptResult:
        """The attempt's completions, without verdicts."""
        ...

    async def judge_batch(self, results: Sequence[AttemptResult]) -> list[AttemptResult]:
        """``results`` (from ``converse``) with their verdicts, in order."""
        ...


class TargetExecutor:
    """Converses with ``target`` and has every judge score the last reply.

    ``spec.messages`` go first, behind ``system_prompt`` when given and the conversation has
    no system message of its own; each followup is sent as a further user turn after the
    target's reply. With a ``store``, deterministic requests (temperature 0, or a fixed
    seed) are answered from its completion cache when possible and added to it otherwise,
    keyed by ``target.cache_identity`` (so the same model name on another server or other
    weights misses); sampled requests always go to the target, so repeated samples stay
    independent.

    Judges see the attempt's own conversation (``AttemptResult.transcript``, without the
    system prompt), the same one a later rejudging reads from the store. ``judge_batch``
    hands each judge a whole batch in one call (judges batch internally).

    When a target request fails, the conversation stops there, no judge is asked and the
    result has **no verdicts**: its failed completion marks it as an error, and it is never
    counted as safe. A judge that raises (a bug) gives an ``unscorable`` verdict naming the
    exception, for the items that raise it when judged alone; one that raises SparringError
    (unusable) ends the run.
    """

    def __init__(
        self,
        target: ChatModel,
        judges: Sequence[Judge],
        behaviors: Mapping[str, Behavior],
        *,
        store: Store | None = None,
        system_prompt: str | None = None,
    ) -> None:
        self.target = target
        self.judges = tuple(judges)
        self.behaviors = behaviors
        self.store = store
        self.system_prompt = system_prompt

    async def __call__(self, spec: AttemptSpec) -> AttemptResult:
        """Converse and judge one attempt."""
        result = await self.converse(spec)
        if result.error is not None:
            return result
        (judged,) = await self.judge_batch([result])
        return judged

    async def converse(self, spec: AttemptSpec) -> AttemptResult:
        """The attempt's completions, without verdicts; it stops at a failed request."""
        conversation = list(spec.messages)
        if self.system_prompt is not None and all(m.role != "system" for m in conversation):
            conversation.insert(0, Message(role="system", content=self.system_prompt))
        completions: list[Completion] = []
        for followup in (None, *spec.followups):
            if followup is not None:
                conversation.append(Message(role="assistant", content=completions[-1].text))
                conversation.append(Message(role="user", content=followup))
            completion = await _complete(self.target, spec.params, conversation, self.store)
            completions.append(completion)
            if not completion.ok:
                break
        return AttemptResult(spec=spec, completions=tuple(completions))

    async def judge_batch(self, results: Sequence[AttemptResult]) -> list[AttemptResult]:
        """``results`` with one verdict per judge each; failed ones stay without verdicts."""
        scored = [i for i, result in enumerate(results) if result.error is None]
        if not scored or not self.judges:
            return list(results)
        items = [
            JudgeInput(
                behavior=self.behaviors[results[i].spec.behavior_id],
                transcript=tuple(results[i].transcript),
                meta=results[i].spec.meta,
            )
            for i in scored
        ]
        if len(self.judges) == 1:
            # gather() wraps each judge in a task (about 20 µs); one judge needs no task.
            per_judge = [await _judge_many(self.judges[0], items)]
        else:
            per_judge = list(await asyncio.gather(*(_judge_many(j, items) for j in self.judges)))
        out = list(results)
        for k, i in enumerate(scored):
            verdicts = tuple(verdicts[k] for verdicts in per_judge)
            out[i] = results[i].model_copy(update={"verdicts": verdicts})
        return out


def target_executor(
    target: ChatModel,
    judges: Sequence[Judge],
    behaviors: Mapping[str, Behavior],
    *,
    store: Store | None = None,
    system_prompt: str | None = None,
) -> TargetExecutor:
    """A ``TargetExecutor``: converse with ``target``, then have every judge score the last
    reply (in batches when the engine runs it)."""
    return TargetExecutor(target, judges, behaviors, store=store, system_prompt=system_prompt)


def model_executor(model: ChatModel, *, store: Store | None = None) -> Executor:
    """An executor that sends each attempt's messages to ``model`` once and judges nothing.

    It runs the helper calls a scan makes while planning. Deterministic requests go through
    the completion cache as in ``target_executor``; a failed request is the result's error.
    """

    async def execute(spec: AttemptSpec) -> AttemptResult:
        completion = await _complete(model, spec.params, spec.messages, store)
        return AttemptResult(spec=spec, completions=(completion,))

    return execute


async def _complete(
    target: ChatModel,
    params: GenerationParams,
    conversation: Sequence[Message],
    store: Store | None,
) -> Completion:
    deterministic = params.temperature == 0.0 or params.seed is not None
    if store is None or not deterministic:
        return await _generate_one(target, params, conversation)
    identity = target.cache_identity
    cached = store.cache_get(identity, params, conversation)
    if cached is not None:
        return cached
    completion = await _generate_one(target, params, conversation)
    store.cache_put(identity, params, conversation, completion)
    return completion


async def _generate_one(
    target: ChatModel, params: GenerationParams, conversation: Sequence[Message]
) -> Completion:
    completions = await target.generate([conversation], params)
    if len(completions) != 1:
        raise RuntimeError(f"{target.id} returned {len(completions)} completions for 1 request")
    return completions[0]


async def _judge_many(judge: Judge, items: Sequence[JudgeInput]) -> list[Verdict]:
    """One verdict per item. When the batch raises, each item is judged alone, so that only
    the items that raise get an ``unscorable`` verdict naming the exception."""
    try:
        return await _checked(judge, items)
    except SparringError:
        raise
    except Exception as err:
        if len(items) == 1:
            return [_raised(judge, err)]
    return list(await asyncio.gather(*(_judge_one(judge, item) for item in items)))


async def _judge_one(judge: Judge, item: JudgeInput) -> Verdict:
    try:
        (verdict,) = await _checked(judge, [item])
        return verdict
    except SparringError:
        raise
    except Exception as err:
        return _raised(judge, err)


async def _checked(judge: Judge, items: Sequence[JudgeInput]) -> list[Verdict]:
    verdicts = await judge.judge(items)
    if len(verdicts) != len(items):
        raise RuntimeError(f"returned {len(verdicts)} verdicts for a batch of {len(items)}")
    return verdicts


def _raised(judge: Judge, err: Exception) -> Verdict:
    logger.warning(
        "judge %s raised %s; verdict recorded as unscorable", judge.id, type(err).__name__
    )
    return Verdict(
        label=Label.UNSCORABLE,
        p_unsafe=None,
        judge_id=judge.id,
        rationale=f"judge raised {type(err).__name__}: {err}",
    )
