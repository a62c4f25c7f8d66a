"""What the guards of one or more defended models share: the protected model, and the
classifiers, helper models and calibrations they ask for, each built once.

``sparring defend`` wraps one loaded target in several guard stacks; with one kit, the
embedded judge, a perplexity scorer or a calibrated threshold is loaded or computed once
for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sparring.judges import Judge, JudgeOptions, resolve_judge
from sparring.models import ChatModel, ModelOptions, resolve_model

T = TypeVar("T")


class GuardKit:
    """The protected model and the shared resources of its guards.

    ``model_options`` are used for helper models named by spec (the protected model's own
    options, by default), ``judge_options`` for the judges guards classify with. The kit
    closes what it built; the protected model belongs to whoever built it.
    """

    def __init__(
        self,
        target: ChatModel,
        *,
        model_options: ModelOptions | None = None,
        judge_options: JudgeOptions | None = None,
    ) -> None:
        self.target = target
        self.model_options = model_options or ModelOptions()
        self.judge_options = judge_options or JudgeOptions()
        self._shared: dict[str, asyncio.Future[Any]] = {}

    async def shared(self, key: str, build: Callable[[], Awaitable[T]]) -> T:
        """The value built for ``key``: built by the first caller's ``build``, which later
        callers wait for (a build may ask for other shared values)."""
        if key not in self._shared:
            self._shared[key] = asyncio.ensure_future(build())
        value: T = await self._shared[key]
        return value

    async def judge(self, spec: str) -> Judge:
        """The judge ``spec`` names, built and checked once."""

        async def build() -> Judge:
            judge = resolve_judge(spec, self.judge_options)
            await judge.check()
            return judge

        return await self.shared(f"judge:{spec}", build)

    async def helper(self, spec: str | None) -> ChatModel:
        """The model ``spec`` names (built once), or the protected model for None."""
        if spec is None:
            return self.target

        async def build() -> ChatModel:
            model = resolve_model(spec, self.model_options)
            await model.check()
            return model

        return await self.shared(f"model:{spec}", build)

    async def aclose(self) -> None:
        """Close every judge and model the kit built."""
        built, self._shared = list(self._shared.values()), {}
        for future in built:
            if not future.done():
                future.cancel()
            elif not future.cancelled() and future.exception() is None:
                close = getattr(future.result(), "aclose", None)
                if close is not None:
                    await close()
