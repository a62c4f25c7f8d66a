"""Executors: what the engine calls to turn one AttemptSpec into an AttemptResult."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from sparring.errors import SparringError
from sparring.judges.base import Judge, JudgeInput
from sparring.models.base import ChatModel
from sparring.store import RunStore
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


def target_executor(
    target: ChatModel,
    judges: Sequence[Judge],
    behaviors: Mapping[str, Behavior],
    *,
    store: RunStore | None = None,
    system_prompt: str | None = None,
) -> Executor:
    """An executor that converses with ``target`` and has every judge score the last reply.

    ``spec.messages`` go first, behind ``system_prompt`` when given and the conversation has
    no system message of its own; each followup is sent as a further user turn after the
    target's reply. With a ``store``, deterministic requests (temperature 0, or a fixed
    seed) are answered from its completion cache when possible and added to it otherwise,
    keyed by ``target.cache_identity`` (so the same model name on another server or other
    weights misses); sampled requests always go to the target, so repeated samples stay
    independent.

    Judges see the attempt's own conversation (``AttemptResult.transcript``, without the
    system prompt), the same one a later rejudging reads from the store.

    When a target request fails, the conversation stops there, no judge is asked and the
    result has **no verdicts**: its failed completion marks it as an error, and it is never
    counted as safe. A judge that raises (a bug) gives an ``unscorable`` verdict naming the
    exception; one that raises SparringError (unusable) ends the run.
    """

    async def execute(spec: AttemptSpec) -> AttemptResult:
        behavior = behaviors[spec.behavior_id]
        conversation = list(spec.messages)
        if system_prompt is not None and all(m.role != "system" for m in conversation):
            conversation.insert(0, Message(role="system", content=system_prompt))
        completions: list[Completion] = []
        for followup in (None, *spec.followups):
            if followup is not None:
                conversation.append(Message(role="assistant", content=completions[-1].text))
                conversation.append(Message(role="user", content=followup))
            completion = await _complete(target, spec.params, conversation, store)
            completions.append(completion)
            if not completion.ok:
                return AttemptResult(spec=spec, completions=tuple(completions))
        result = AttemptResult(spec=spec, completions=tuple(completions))
        item = JudgeInput(behavior=behavior, transcript=tuple(result.transcript))
        return result.model_copy(update={"verdicts": await _judge_all(judges, item)})

    return execute


def model_executor(model: ChatModel, *, store: RunStore | None = None) -> Executor:
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
    store: RunStore | None,
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


async def _judge_all(judges: Sequence[Judge], item: JudgeInput) -> tuple[Verdict, ...]:
    if len(judges) == 1:
        # gather() wraps each judge in a task (about 20 µs); one judge needs no task.
        return (await _judge_one(judges[0], item),)
    return tuple(await asyncio.gather(*(_judge_one(judge, item) for judge in judges)))


async def _judge_one(judge: Judge, item: JudgeInput) -> Verdict:
    try:
        verdicts = await judge.judge([item])
        if len(verdicts) != 1:
            raise RuntimeError(f"returned {len(verdicts)} verdicts for 1 item")
        return verdicts[0]
    except SparringError:
        raise
    except Exception as err:
        logger.warning(
            "judge %s raised %s; verdict recorded as unscorable", judge.id, type(err).__name__
        )
        return Verdict(
            label=Label.UNSCORABLE,
            p_unsafe=None,
            judge_id=judge.id,
            rationale=f"judge raised {type(err).__name__}: {err}",
        )
