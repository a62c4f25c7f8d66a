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

    @property
    def cache_identity(self) -> str:
        """Names everything that can change a reply: the completion cache's key.

        The spec string alone is not enough when the same name can mean other weights or
        another server (a different ``base_url``, GGUF file or LoRA adapter); backends
        add what they know. Never holds a secret in clear.
        """
        return self.id

    @abstractmethod
    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        """Answer each conversation; the result has one Completion per conversation."""

    async def check(self) -> None:  # noqa: B027 - optional hook, local models check by loading
        """Raise EndpointError (one line) when the model cannot answer requests at all.

        Call it once before a run so that a wrong address or key stops the run up front
        instead of turning every attempt into an error. In-process backends were checked
        when they loaded, so the default checks nothing.
        """

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
