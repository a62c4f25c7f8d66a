"""Supervised fine-tuning examples: chat-templated, tokenized, loss on the response only.

An example is a conversation and the assistant reply to learn. The prompt is rendered with
the tokenizer's own chat template and generation prompt, exactly as the model sees it when
it answers, and tokenized apart from the reply, as at generation time. Prompt tokens get
the label -100 (ignored by the loss); the reply and the template's end-of-turn marker are
learned, so the model also learns where to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from sparring.errors import DataError
from sparring.types import Frozen, Message

if TYPE_CHECKING:
    import torch

__all__ = [
    "IGNORE_INDEX",
    "Batch",
    "EncodedExample",
    "SFTExample",
    "collate",
    "encode_example",
]

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (torch's cross-entropy default ignore index)."""


class SFTExample(Frozen):
    """A conversation and the assistant reply the model should learn to give to it."""

    messages: tuple[Message, ...] = Field(min_length=1, description="Turns before the reply.")
    response: str = Field(min_length=1, description="The assistant reply to learn.")

    @field_validator("messages")
    @classmethod
    def _ends_before_a_reply(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        if value[-1].role == "assistant":
            raise ValueError("messages must end with a user or system turn, not an assistant one")
        return value


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of prompt and reply, and labels that are -100 on the prompt.

    ``truncated`` tells whether the example was cut to fit the length limit.
    """

    input_ids: list[int]
    labels: list[int]
    prompt_tokens: int
    truncated: bool

    @property
    def response_tokens(self) -> int:
        """Tokens that carry loss."""
        return len(self.input_ids) - self.prompt_tokens


def encode_example(tokenizer: Any, example: SFTExample, max_len: int) -> EncodedExample:
    """Render, tokenize and label one example, at most ``max_len`` tokens long.

    When prompt and reply do not fit, the reply is kept whole if it can be and the prompt
    loses tokens from its start (its end, the generation prompt the reply follows, stays);
    a reply longer than three quarters of ``max_len`` is cut at its end so that a quarter
    of the budget still goes to the prompt.

    Raises DataError when the chat template cannot render the conversation or renders the
    reply in a way that does not extend the prompt.
    """
    messages = [{"role": m.role, "content": m.content} for m in example.messages]
    try:
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": example.response}], tokenize=False
        )
    except Exception as exc:  # templates raise anything; the error names the culprit
        raise DataError(f"training example: the chat template rejected it ({exc})") from exc
    if not isinstance(prompt, str) or not isinstance(full, str) or not full.startswith(prompt):
        raise DataError(
            "training example: the chat template renders the reply differently from the "
            "generation prompt; use a model whose template appends replies after it"
        )
    # Whatever the template writes after the end-of-turn marker (a newline) precedes the
    # next turn, not this reply; learning it would only teach the model to emit it.
    reply = full[len(prompt) :].rstrip()
    prompt_ids = _tokens(tokenizer, prompt)
    reply_ids = _tokens(tokenizer, reply)
    truncated = len(prompt_ids) + len(reply_ids) > max_len
    if truncated:
        prompt_budget = min(len(prompt_ids), max(max_len - len(reply_ids), max_len // 4))
        reply_ids = reply_ids[: max_len - prompt_budget]
        prompt_ids = prompt_ids[len(prompt_ids) - prompt_budget :]
    return EncodedExample(
        input_ids=prompt_ids + reply_ids,
        labels=[IGNORE_INDEX] * len(prompt_ids) + reply_ids,
        prompt_tokens=len(prompt_ids),
        truncated=truncated,
    )


def _tokens(tokenizer: Any, text: str) -> list[int]:
    # The template writes any BOS itself; adding special tokens again would double it.
    return [int(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]


@dataclass(frozen=True)
class Batch:
    """Left-padded tensors for one forward pass.

    ``keep`` is how many final positions need logits: every loss-bearing token lies in the
    last ``keep`` positions, so the vocabulary projection skips the prompts.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor
    keep: int

    @property
    def response_tokens(self) -> int:
        """Tokens in the batch that carry loss."""
        return int((self.labels != IGNORE_INDEX).sum().item())


def collate(examples: Sequence[EncodedExample], pad_id: int, device: torch.device) -> Batch:
    """Stack examples into one left-padded batch on ``device``.

    Left padding puts every reply at the right edge, so logits are needed only for the
    longest reply's span; positions count real tokens only, so padding changes nothing.
    """
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        start = width - len(example.input_ids)
        ids[row, start:] = torch.tensor(example.input_ids)
        labels[row, start:] = torch.tensor(example.labels)
        mask[row, start:] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # The logit at position p predicts token p + 1: one more position than the longest reply.
    keep = min(width, max(e.response_tokens for e in examples) + 1)
    return Batch(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        labels=labels.to(device),
        keep=keep,
    )
