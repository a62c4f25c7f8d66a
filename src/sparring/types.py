"""The nouns every layer shares: messages, generation settings, completions, behaviors,
verdicts and attempts.

All are frozen pydantic models, so that whatever reaches the store can be written as JSON
and read back unchanged.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """Base for immutable records; unknown fields are rejected so typos surface early."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Role = Literal["system", "user", "assistant"]


class Message(Frozen):
    """One turn of a chat conversation."""

    role: Role
    content: str


Conversation = list[Message]


class GenerationParams(Frozen):
    """Decoding settings for one request."""

    max_tokens: int = Field(256, ge=1, description="Upper bound on generated tokens.")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int | None = Field(None, description="Sampling seed; None lets the backend choose.")
    stop: tuple[str, ...] = Field((), description="Strings that end generation when produced.")


FinishReason = Literal["stop", "length", "error"]


class Completion(Frozen):
    """A model's answer to one conversation, or the error that prevented one."""

    text: str = ""
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    latency_s: float = Field(0.0, ge=0.0, description="Wall time of the request, seconds.")
    error: str | None = Field(None, description="Why no answer came back; None on success.")
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="What produced the answer beyond the model's text, stored with it: a "
        "guard wrapper (sparring.defenses) records its block and its own model calls here.",
    )

    @property
    def ok(self) -> bool:
        """True when the model produced an answer (possibly empty), False on error."""
        return self.error is None

    @classmethod
    def failure(cls, error: str, latency_s: float = 0.0) -> Completion:
        """A completion that records an error instead of text."""
        return cls(text="", finish_reason="error", error=error, latency_s=latency_s)


class Behavior(Frozen):
    """A harmful (or benign look-alike) request that a scan tries to elicit."""

    id: str = Field(description="Stable identifier, unique within its source.")
    text: str = Field(description="The request in plain words, as a user would make it.")
    category: str = Field(description="sparring risk category (see sparring.data.taxonomy).")
    source: str = Field(description="Data set or suite the behavior comes from.")
    context: str | None = Field(None, description="Supporting document for contextual ones.")
    benign: bool = Field(False, description="True for over-refusal probes that should be answered.")
    expected: tuple[str, ...] = Field(
        (),
        description="Reference answer of a task (BIPIA's): every piece appears in a reply "
        "that does the task; empty when the behavior has none. Utility checks read it.",
    )


class Label(StrEnum):
    """What a judge concluded about one response."""

    UNSAFE = "unsafe"
    """The response materially helps the harmful intent."""
    SAFE = "safe"
    """The response complies harmlessly, or completes safely."""
    REFUSAL = "refusal"
    """The response declines."""
    UNSCORABLE = "unscorable"
    """No judgment: an error, an empty answer or a judge failure. Never counted as safe."""


class Verdict(Frozen):
    """One judge's verdict on one response."""

    label: Label
    p_unsafe: float | None = Field(
        None, ge=0.0, le=1.0, description="Judge's probability that the response is unsafe."
    )
    judge_id: str = Field(description="Judge name and version, e.g. 'refusal-rules@1'.")
    rationale: str | None = None
    p_refusal: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Judge's probability that the response declines; None when it has none.",
    )


HELPER_ATTACK_PREFIX = "helper:"
"""How the ``attack`` of a helper-model call made while planning begins (``helper:NAME``):
such attempts are stored with the run but are not target attempts, and no rate counts them."""


def is_helper_attack(attack: str) -> bool:
    """True for the ``attack`` of a helper call made while planning (see HELPER_ATTACK_PREFIX)."""
    return attack.startswith(HELPER_ATTACK_PREFIX)


class AttemptSpec(Frozen):
    """One planned interaction with the target, fully determined before it runs.

    ``messages`` is sent first; each entry of ``followups`` is sent as a further user turn
    after the target's previous reply, so multi-turn attacks are plain data.
    """

    behavior_id: str
    attack: str = Field(description="Attack technique name from the registry.")
    messages: tuple[Message, ...]
    followups: tuple[str, ...] = ()
    sample: int = Field(0, ge=0, description="Index among repeated samples of the same prompt.")
    params: GenerationParams = GenerationParams()
    meta: dict[str, Any] = Field(default_factory=dict, description="Attack-specific details.")

    @property
    def key(self) -> str:
        """Content hash that identifies this attempt within a run (resume uses it)."""
        return content_hash(self.model_dump(mode="json"))


class AttemptResult(Frozen):
    """What running an AttemptSpec produced: the target's completions and the verdicts."""

    spec: AttemptSpec
    completions: tuple[Completion, ...]
    verdicts: tuple[Verdict, ...] = ()

    @property
    def error(self) -> str | None:
        """The first error among the completions, if any."""
        return next((c.error for c in self.completions if c.error is not None), None)

    @property
    def transcript(self) -> list[Message]:
        """The whole conversation as the target saw it, its replies included."""
        turns = list(self.spec.messages)
        for i, completion in enumerate(self.completions):
            turns.append(Message(role="assistant", content=completion.text))
            if i < len(self.spec.followups):
                turns.append(Message(role="user", content=self.spec.followups[i]))
        return turns


def content_hash(value: Any) -> str:
    """Stable sha256 (hex, first 32 chars) of a JSON-serialisable value."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
