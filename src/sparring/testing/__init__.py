"""Test utilities that ship with sparring, for checking pipelines without a real model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparring.testing.scripting import (
    ChatRequest,
    Fault,
    Reply,
    ServerStats,
    echo_responder,
    scripted_responder,
)

if TYPE_CHECKING:
    from sparring.testing.openai_server import OpenAIServer

__all__ = [
    "ChatRequest",
    "Fault",
    "OpenAIServer",
    "Reply",
    "ServerStats",
    "echo_responder",
    "scripted_responder",
]


def __getattr__(name: str) -> object:
    # Imported on first use so that `python -m sparring.testing.openai_server` does not find
    # the module already loaded by this package (runpy warns and runs a second copy).
    if name == "OpenAIServer":
        from sparring.testing.openai_server import OpenAIServer

        return OpenAIServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
