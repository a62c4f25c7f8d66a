"""A model backend outside sparring, in one file: ``echo/NAME`` answers every conversation
with its last message. Named in ``SPARRING_PLUGINS`` (``plugins.echo_backend``), it is
registered by importing it, and then usable wherever a model spec is."""

from __future__ import annotations

from collections.abc import Sequence

from sparring.models import ChatModel, ModelOptions, ModelSpec, backend
from sparring.types import Completion, GenerationParams, Message


class EchoModel(ChatModel):
    """Replies with the last message of each conversation, cut to ``max_tokens`` words."""

    def __init__(self, model_id: str) -> None:
        self.id = model_id

    async def generate(
        self, conversations: Sequence[Sequence[Message]], params: GenerationParams
    ) -> list[Completion]:
        replies = [" ".join(c[-1].content.split()[: params.max_tokens]) for c in conversations]
        return [Completion(text=text, finish_reason="stop") for text in replies]


@backend("echo", description="echoes the last message (a test plugin)", local=True)
def build_echo(spec: ModelSpec, options: ModelOptions) -> EchoModel:
    """``echo/NAME``: options are ignored."""
    return EchoModel(str(spec))
