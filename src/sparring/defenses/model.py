"""A ChatModel behind a stack of guards: what ``defended/STACK/MODEL`` resolves to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from sparring.defenses.base import GUARD_META, Exchange, Guard, GuardRecord, Next, last_user
from sparring.defenses.kit import GuardKit
from sparring.defenses.registry import Stack, stack_label
from sparring.models import ChatModel
from sparring.types import Completion, GenerationParams, Message


class DefendedModel(ChatModel):
    """``kit.target`` answering through ``stack`` (outermost guard first).

    Each conversation goes through the guards on its own; the Completion returned carries
    the final text, the wall time of the whole guarded request (``latency_s``, seconds),
    the tokens of every model call it caused, and its GuardRecord in
    ``meta["guard"]``: the block, if a guard blocked it, and every call with its count.
    With no guard it passes requests straight through and still records them, so that an
    undefended baseline is timed and counted the same way. ``owns`` closes the kit and
    the protected model with this model.
    """

    def __init__(self, kit: GuardKit, stack: Stack, *, owns: bool = False) -> None:
        self.kit = kit
        self.stack = stack
        self.label = stack_label(stack)
        self.guards: tuple[Guard[Any], ...] = tuple(choice.build(kit) for choice in stack)
        self.id = f"defended/{self.label}/{kit.target.id}"
        self._owns = owns
        self._prepared: asyncio.Future[None] | None = None

    @property
    def cache_identity(self) -> str:
        """The guards with all their options, over the protected model's identity."""
        guards = "+".join(guard.identity for guard in self.guards) or "none"
        return f"defended {guards} over {self.kit.target.cache_identity}"

    async def check(self) -> None:
        """Check the protected model, then load and calibrate the guards."""
        await self.kit.target.check()
        await self._prepare()

    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """Answer each conversation through the guards, concurrently."""
        await self._prepare()
        return list(await asyncio.gather(*(self._answer(c, params) for c in conversations)))

    async def _prepare(self) -> None:
        if self._prepared is None:
            self._prepared = asyncio.ensure_future(self._prepare_all())
        await self._prepared

    async def _prepare_all(self) -> None:
        for guard in self.guards:
            await guard.prepare()

    async def _answer(
        self, conversation: Sequence[Message], params: GenerationParams
    ) -> Completion:
        started = time.perf_counter()
        ex = Exchange(params, conversation)
        try:
            last_user(conversation)
        except ValueError:
            return Completion.failure("the conversation has no user message for the guards")
        chain = self._bottom(ex)
        for guard in reversed(self.guards):
            chain = _link(guard, chain, ex)
        final = await chain(tuple(conversation))
        record = GuardRecord(
            defense=self.label,
            blocked_by=final.meta.get("blocked_by"),
            reason=final.meta.get("reason"),
            calls=ex.counts(),
            log=tuple(ex.log),
            notes=ex.notes,
        )
        return final.model_copy(
            update={
                "latency_s": time.perf_counter() - started,
                "prompt_tokens": ex.prompt_tokens,
                "completion_tokens": ex.completion_tokens,
                "meta": {GUARD_META: record.model_dump(mode="json")},
            }
        )

    def _bottom(self, ex: Exchange) -> Next:
        """The protected model's call, logged in ``ex``."""
        target = self.kit.target

        async def call(conversation: Sequence[Message]) -> Completion:
            [completion] = await target.generate([list(conversation)], ex.params)
            ex.record("model", "target", conversation[-1].content, completion)
            return completion

        return call

    async def aclose(self) -> None:
        """Close the kit and the protected model when this model owns them."""
        if self._owns:
            await self.kit.aclose()
            await self.kit.target.aclose()


def _link(guard: Guard[Any], rest: Next, ex: Exchange) -> Next:
    """``guard`` in front of ``rest``."""

    async def call(conversation: Sequence[Message]) -> Completion:
        return await guard.answer(conversation, rest, ex)

    return call
