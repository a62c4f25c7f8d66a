"""The chat-completions wire format: request bodies, response parsing and error text.

Kept apart from the transport so that what counts as a valid answer, and how a failure is
described to the user, can be read in one place.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparring.types import FinishReason, GenerationParams, Message

ERROR_TEXT_CHARS = 200
"""Longest server error text quoted in a failure cause, characters."""
QUOTE_CHARS = 60
"""Longest stretch of an unexpected body (HTML, not JSON) quoted back, characters."""


@dataclass(frozen=True)
class Answer:
    """A successful reply; token counts are the server's, zero when it reports none."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class AttemptFailure:
    """One attempt's failure: ``summary`` is safe to log; ``detail`` quotes the server."""

    summary: str
    retryable: bool
    status: int | None = None
    detail: str = ""
    retry_after_s: float | None = None

    def cause(self, attempts: int) -> str:
        """The one-line cause after ``attempts`` tries: ``HTTP 500 after 5 attempts: boom``."""
        plural = "attempt" if attempts == 1 else "attempts"
        if self.status is not None:
            tail = f": {self.detail}" if self.detail else ""
            return f"{self.summary} after {attempts} {plural}{tail}"
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.summary}{tail} ({attempts} {plural})"


def request_body(
    model: str, conversation: Sequence[Message], params: GenerationParams
) -> dict[str, Any]:
    """The JSON body of a non-streaming chat-completions request."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in conversation],
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": False,
    }
    # Omitted rather than null: several servers reject "seed": null or "stop": [].
    if params.seed is not None:
        payload["seed"] = params.seed
    if params.stop:
        payload["stop"] = list(params.stop)
    return payload


def parse_answer(body: bytes, base_url: str) -> Answer | AttemptFailure:
    """Read a 2xx response body; anything without ``choices[0].message.content`` fails.

    Malformed answers are not retryable: a server that sends one usually always will.
    """
    where = f"malformed response from {base_url}"
    data = json_object(body)
    if isinstance(data, str):
        return AttemptFailure(where, retryable=False, detail=f"body is {data}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        detail = "choices is empty" if choices == [] else "no choices[0]"
        if "error" in data:
            detail += f"; server error: {short_error(body)}"
        return AttemptFailure(where, retryable=False, detail=detail)
    choice = choices[0]
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None and isinstance(message, dict):
        # OpenAI puts a model's refusal in "refusal" and leaves "content" null.
        content = message.get("refusal")
    if not isinstance(content, str):
        return AttemptFailure(where, retryable=False, detail="choices[0].message.content missing")
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Answer(
        text=content,
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


def _count(value: object) -> int:
    # Usage is optional in the protocol; servers that omit it get zero, not a failure.
    return value if type(value) is int and value >= 0 else 0


def json_object(body: bytes) -> dict[str, Any] | str:
    """``body`` as a JSON object, or what it is instead, e.g. ``HTML, not JSON: '<html>…'``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        if not body.strip():
            return "empty"
        kind = "HTML, not JSON" if body.lstrip()[:1] == b"<" else "not JSON"
        return f"{kind}: {quote(body)}"
    return data if isinstance(data, dict) else f"JSON but not an object: {quote(body)}"


def quote(body: bytes) -> str:
    """The start of an untrusted body, safe to show: at most ``QUOTE_CHARS`` characters on
    one line, in quotes, control characters dropped (see ``printable``)."""
    return repr(printable(body.decode("utf-8", errors="replace"), QUOTE_CHARS))


def printable(text: str, limit: int) -> str:
    """``text`` on one line without control or format characters, cut to ``limit`` characters.

    Server and model text is hostile: a terminal escape sequence or a bidirectional
    override in an error line could rewrite what the user sees, so every character of a
    Unicode ``C*`` category (controls, format, unassigned) becomes a space before whitespace
    runs are collapsed. Rich markup is escaped where the line is printed (the CLI).
    """
    head = text[: limit * 8]  # a body may be megabytes; this leaves room for indentation
    kept = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in head)
    flat = re.sub(r"\s+", " ", kept).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def short_error(body: bytes) -> str:
    """An error body as one short line: the OpenAI ``error.message`` when present."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            text = error["message"]
        elif isinstance(error, str):
            text = error
    return printable(text, ERROR_TEXT_CHARS)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header in delay-seconds form, or None.

    The HTTP-date form is not read: chat APIs send seconds, and a date would tie the wait
    to clock agreement between client and server.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
