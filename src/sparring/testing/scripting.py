"""What the loopback test server is scripted with, and what it records.

Faults say how to misbehave on a request, responders say what to answer, and ChatRequest
and ServerStats are the server's record of what it received.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["status", "slow", "drop", "raw"]


@dataclass(frozen=True)
class Fault:
    """One way for the server to misbehave on one request; build with the class methods."""

    kind: FaultKind
    status: int = 500
    body: str = ""
    retry_after: str | None = None
    delay_s: float = 0.0

    @classmethod
    def http(cls, status: int, body: str = "", retry_after: str | None = None) -> Fault:
        """Answer with HTTP ``status`` and ``body``; ``retry_after`` sets that header."""
        return cls("status", status=status, body=body or f"error {status}", retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after_s: float | None = 1.0) -> Fault:
        """HTTP 429 with ``Retry-After`` in seconds (no header when None)."""
        header = None if retry_after_s is None else f"{retry_after_s:g}"
        return cls.http(429, "rate limit exceeded", retry_after=header)

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """Wait ``delay_s`` seconds more than the normal latency, then answer normally."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending any response."""
        return cls("drop")

    @classmethod
    def raw(cls, body: str, status: int = 200) -> Fault:
        """Answer with ``body`` verbatim as ``application/json``, e.g. a hand-built reply."""
        return cls("raw", status=status, body=body)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 whose JSON body is cut off mid-object."""
        return cls.raw('{"choices": [{"message": ')


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions request as the server received it."""

    index: int
    """Arrival order among chat requests, from 0."""
    arrived_at: float
    """``time.monotonic()`` at arrival, seconds."""
    body: dict[str, Any] = field(repr=False)
    """The decoded JSON body."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` array of the request."""
        value = self.body.get("messages")
        return value if isinstance(value, list) else []

    @property
    def last_user_text(self) -> str:
        """Content of the last user message, or an empty string."""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content", ""))
        return ""


@dataclass(frozen=True)
class Reply:
    """What a responder wants the server to answer; token counts default to word counts."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class ServerStats:
    """A snapshot of the server's counters."""

    requests: int
    """Chat-completions requests received, faulted ones included."""
    models_requests: int
    """``GET /models`` requests received."""
    max_in_flight: int
    """Most chat requests being handled at the same moment."""
    arrivals: tuple[float, ...]
    """``time.monotonic()`` of each chat request's arrival, seconds, in arrival order."""
    received: tuple[ChatRequest, ...]
    """Every chat request, in arrival order."""


Responder = Callable[[ChatRequest], str | Reply]
"""Writes the answer to a request: plain text, or a Reply with finish reason and counts."""
FaultRule = Callable[[ChatRequest], Fault | None]
"""Decides per request whether to misbehave; None serves it normally."""
FaultPlan = Sequence[Fault | None] | FaultRule
"""Faults by arrival index (a sequence) or by rule (a function of the request)."""


def echo_responder(request: ChatRequest) -> Reply:
    """The default reply: ``ECHO: `` and the first 40 characters of the last user message."""
    return Reply(f"ECHO: {request.last_user_text[:40]}")


def scripted_responder(
    replies: Iterable[str | Reply], then: Responder = echo_responder
) -> Responder:
    """Answer with ``replies`` in order, one per request, then fall back to ``then``."""
    queue: deque[str | Reply] = deque(replies)
    lock = threading.Lock()

    def respond(request: ChatRequest) -> str | Reply:
        with lock:
            if queue:
                return queue.popleft()
        return then(request)

    return respond
