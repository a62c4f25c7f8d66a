"""The Guard interface: one step on a defended model's request path, and the record of what
the guards of one request did.

A guard sees the conversation on its way to the model and may rewrite it (prompt-side
guards, input transforms), answer it without the model (a block), ask the model several
times (SmoothLLM), or read the model's reply and replace it (output filters). Guards are
chained: each gets ``call``, the rest of the chain (the next guard, and at the bottom the
protected model), so ``smoothllm+self-reminder`` sends every perturbed copy through the
self-reminder.

Every model call a guard causes (the protected model's, a helper's, a classifier's) is
counted in the request's ``Exchange`` and stored with the final completion
(``Completion.meta["guard"]``, a ``GuardRecord``): the engine stores one attempt per
request, so the calls a guard makes inside it are kept there, with their counts.
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, Field

from sparring.models import ChatModel
from sparring.registry import NoOptions
from sparring.types import Completion, Frozen, GenerationParams, Message

if TYPE_CHECKING:
    from sparring.defenses.kit import GuardKit

GuardKind = Literal["prompt", "transform", "filter"]
"""What a guard does: rewrite the prompt without extra calls (``prompt``), change the input
or query the model several times (``transform``), or block requests or replies
(``filter``)."""

CallRole = Literal["target", "helper", "classifier"]
"""Who answered a call a guard caused: the protected model, a helper model (paraphrase,
backtranslation) or a classifier (a judge, a perplexity scorer)."""

REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
"""What a blocked request is answered with (a plain refusal the refusal rules recognise)."""

GUARD_META = "guard"
"""The key of ``Completion.meta`` under which a defended model stores its GuardRecord."""

LOG_CHARS = 2000
"""Longest text of one logged call (message or reply) kept in the record, characters."""

Next = Callable[[Sequence[Message]], Awaitable[Completion]]
"""The rest of the chain: answers a conversation with one Completion."""

OptionsT = TypeVar("OptionsT", bound=BaseModel)


class GuardCall(Frozen):
    """One model call made while answering a request through the guards."""

    guard: str = Field(
        description="The guard that made it; the protected model's own call "
        "is made by the chain itself ('model')."
    )
    role: CallRole
    sent: str = Field(
        "",
        description="The last message sent (for a classifier: the text scored), cut to LOG_CHARS.",
    )
    reply: str = Field("", description="The answer (for a classifier: its reading), cut.")
    latency_s: float = Field(0.0, ge=0.0, description="Wall time of the call, seconds.")
    error: str | None = None


class GuardRecord(Frozen):
    """What the guards did for one request: stored as ``Completion.meta["guard"]``."""

    defense: str = Field(description="The guard stack, e.g. 'self-reminder+smoothllm'.")
    blocked_by: str | None = Field(
        None, description="The guard that answered with a refusal instead of the model's reply."
    )
    reason: str | None = Field(None, description="Why it blocked, e.g. 'p_unsafe 0.91 > 0.74'.")
    calls: dict[str, int] = Field(
        default_factory=dict, description="Model calls made for this request, by role."
    )
    log: tuple[GuardCall, ...] = Field((), description="Every call, in the order they ended.")
    notes: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per guard: what it measured (votes, scores ...)."
    )

    @property
    def total_calls(self) -> int:
        """Model calls of every role for this request."""
        return sum(self.calls.values())


def guard_record(completion: Completion) -> GuardRecord | None:
    """The record a defended model stored with ``completion``; None for a plain model's."""
    stored = completion.meta.get(GUARD_META)
    return None if stored is None else GuardRecord.model_validate(stored)


def blocked_by(completion: Completion) -> str | None:
    """The guard that blocked the request ``completion`` answers; None when none did."""
    record = guard_record(completion)
    return None if record is None else record.blocked_by


class Exchange:
    """One request on its way through the guards: its decoding settings, the calls made for
    it, what each guard noted, and a random source fixed by the request."""

    def __init__(self, params: GenerationParams, conversation: Sequence[Message]) -> None:
        self.params = params
        self.log: list[GuardCall] = []
        self.notes: dict[str, dict[str, Any]] = {}
        self.prompt_tokens = 0
        """Prompt tokens of every model call made for the request."""
        self.completion_tokens = 0
        """Generated tokens of every model call made for the request."""
        self._digest = hashlib.sha256(
            repr((params.seed, [(m.role, m.content) for m in conversation])).encode()
        ).digest()

    def rng(self, guard: str, seed: int) -> random.Random:
        """A generator fixed by (guard, its seed option, the request): a repeated request
        gets the same perturbations, so deterministic requests stay cacheable."""
        digest = hashlib.sha256(self._digest + f"\x00{guard}\x00{seed}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def record(
        self,
        guard: str,
        role: CallRole,
        sent: str,
        reply: Completion | str,
        latency_s: float = 0.0,
    ) -> None:
        """Log one call; ``reply`` is the model's Completion (its tokens are added to the
        request's) or a classifier's reading."""
        if isinstance(reply, Completion):
            text, error, latency_s = reply.text, reply.error, reply.latency_s
            self.prompt_tokens += reply.prompt_tokens
            self.completion_tokens += reply.completion_tokens
        else:
            text, error = reply, None
        self.log.append(
            GuardCall(
                guard=guard,
                role=role,
                sent=sent[:LOG_CHARS],
                reply=text[:LOG_CHARS],
                latency_s=latency_s,
                error=error,
            )
        )

    def note(self, guard: str, **values: Any) -> None:
        """Keep what ``guard`` measured for this request (JSON values)."""
        self.notes.setdefault(guard, {}).update(values)

    def counts(self) -> dict[str, int]:
        """Calls made so far, by role."""
        return dict(Counter(call.role for call in self.log))


def block(guard: str, reason: str) -> Completion:
    """The answer of a request ``guard`` blocks: a refusal, marked as the guard's block
    (the defended model moves the mark into its GuardRecord)."""
    return Completion(text=REFUSAL_TEXT, meta={"blocked_by": guard, "reason": reason})


async def ask_helper(
    model: ChatModel, ex: Exchange, guard: str, instruction: str, text: str, max_tokens: int
) -> Completion:
    """``model``'s greedy answer to ``text`` under the system prompt ``instruction``, logged
    in ``ex`` as ``guard``'s helper call."""
    messages = [Message(role="system", content=instruction), Message(role="user", content=text)]
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=0)
    [reply] = await model.generate([messages], params)
    ex.record(guard, "helper", text, reply)
    return reply


def last_user(conversation: Sequence[Message]) -> int:
    """Index of the last user message; ValueError when there is none."""
    for i in range(len(conversation) - 1, -1, -1):
        if conversation[i].role == "user":
            return i
    raise ValueError("the conversation has no user message")


def with_last_user(conversation: Sequence[Message], text: str) -> tuple[Message, ...]:
    """``conversation`` with the content of its last user message replaced by ``text``."""
    i = last_user(conversation)
    return (*conversation[:i], Message(role="user", content=text), *conversation[i + 1 :])


def with_system(conversation: Sequence[Message], text: str) -> tuple[Message, ...]:
    """``conversation`` with ``text`` as its system prompt: placed before the existing
    system prompt's content when there is one, as a new first message otherwise."""
    if conversation and conversation[0].role == "system":
        merged = f"{text}\n\n{conversation[0].content}"
        return (Message(role="system", content=merged), *conversation[1:])
    return (Message(role="system", content=text), *conversation)


class Guard(ABC, Generic[OptionsT]):
    """A guard: subclasses set the class attributes and implement ``answer``; ``@register``
    (``sparring.defenses.registry``) makes them available by name."""

    name: ClassVar[str]
    """Registry key, kebab-case, e.g. ``self-reminder``."""
    kind: ClassVar[GuardKind]
    description: ClassVar[str]
    """One line for listings: what it does and where it comes from."""
    cost: ClassVar[str]
    """Extra model calls per request, in words, e.g. ``N-1 target calls``."""
    Options: ClassVar[type[BaseModel]] = NoOptions
    """The guard's options, settable in a spec (``NAME:OPTION=V``), YAML and flags."""

    def __init__(self, options: OptionsT | None, kit: GuardKit) -> None:
        self.options: OptionsT = cast(OptionsT, self.Options()) if options is None else options
        self.kit = kit

    @property
    def identity(self) -> str:
        """Everything that changes this guard's behaviour (the cache key's part)."""
        return f"{self.name}{self.options.model_dump_json()}"

    async def prepare(self) -> None:
        """Load or calibrate what the guard needs (its classifier, its threshold); called
        once, before the first request."""

    def calibration(self) -> dict[str, Any] | None:
        """What ``prepare`` calibrated, for the record (e.g. ``{"threshold": 0.74,
        "source": "95% quantile of ..."}``); None for a guard that calibrates nothing."""
        return None

    @abstractmethod
    async def answer(self, conversation: Sequence[Message], call: Next, ex: Exchange) -> Completion:
        """Answer ``conversation``, passing it (changed or not) to ``call`` as needed."""
