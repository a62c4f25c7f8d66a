"""The one interface every model backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from sparring.types import Completion, GenerationParams, Message


class ChatModel(ABC):
    """An asynchronous chat model.

    ``generate`` answers each conversation with one Completion, in order. A failure of one
    request is returned as ``Completion.failure(...)``, never raised, so that callers can
    record it; exceptions are reserved for a model that cannot be used at all (missing
    package, bad path), which are raised as ``SparringError`` at construction or first use.
    Backends batch internally where they can and run requests concurrently where they
    cannot, so callers may issue many ``generate`` calls at once.
    """

    #: Stable spec string naming the model, e.g. ``builtin/smollm2-135m``.
    id: str

    @abstractmethod
    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """Answer each conversation; the result has one Completion per conversation."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release sessions, threads and memory; the model is unusable afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
