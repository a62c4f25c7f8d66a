"""Reading an attacker model's reply: the fields it was asked for, whether it declined, or
that it wrote nothing usable.

Attackers are asked for a JSON object, and small local models answer loosely: JSON inside a
code fence or after a preamble, raw line breaks inside strings, an unclosed object, or plain
text with a label. The reader takes, in order: a JSON object holding the wanted field; the
field's quoted value found by pattern in broken JSON; then the plain-text forms DART's red
model uses (``<attack>`` tags, a ``prompt:`` label, the whole reply after a preamble). A
reply whose text, or whose extracted prompt, reads as a refusal by the refusal rules is a
refusal, never an attack.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sparring.dart.red import MIN_ATTACK_CHARS, parse_attack
from sparring.judges.rules import read_response

ReplyStatus = Literal["ok", "refused", "unparsed", "error"]


@dataclass(frozen=True)
class AttackerReply:
    """What one attacker reply gave: the text for the target (``text``), the other fields
    of its JSON, or why there is no text."""

    status: ReplyStatus
    text: str | None = None
    """The prompt or question for the target; None unless ``status`` is ``ok``."""
    fields: dict[str, str] = field(default_factory=dict)
    """Every string field the reply's JSON object held (lower-cased keys), e.g. its
    ``improvement`` or ``technique``."""


_DECODER = json.JSONDecoder(strict=False)
"""Allows raw control characters (line breaks) inside JSON strings, as small models write."""


def read_reply(raw: str, want: str) -> AttackerReply:
    """The attacker's ``want`` field (``prompt``, ``question``) from its reply ``raw``."""
    data = _json_object(raw, want)
    if data is not None:
        text = data[want]
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
    else:
        fields = {}
        text = _quoted_field(raw, want) or _plain_text(raw, want)
    if text is None:
        return AttackerReply("refused" if read_response(raw).refused else "unparsed")
    if read_response(text).refused:
        return AttackerReply("refused")
    return AttackerReply("ok", text, fields)


def _json_object(raw: str, want: str) -> dict[str, Any] | None:
    """The first JSON object in ``raw`` whose ``want`` key holds a usable string; keys
    lower-cased."""
    for match in re.finditer(r"\{", raw):
        try:
            value, _ = _DECODER.raw_decode(raw, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            data = {str(k).strip().lower(): v for k, v in value.items()}
            text = data.get(want)
            if isinstance(text, str) and _usable(text):
                data[want] = text.strip()
                return data
    return None


def _quoted_field(raw: str, want: str) -> str | None:
    """``"want": "..."`` in JSON too broken to decode (unescaped quotes, no closing brace):
    the text up to the last quote before a closing brace, the next key, or the end."""
    match = re.search(rf'"{re.escape(want)}"\s*:\s*"', raw, re.IGNORECASE)
    if match is None:
        return None
    rest = raw[match.end() :]
    end = re.search(r'"\s*(?:,\s*"\w+"\s*:|\}|$)', rest)
    text = rest[: end.start()] if end else rest
    text = text.replace('\\"', '"').replace("\\n", "\n").strip()
    return text if _usable(text) else None


def _plain_text(raw: str, want: str) -> str | None:
    """A reply without JSON: a ``want:`` label's text, or DART's plain-text forms."""
    labelled = re.search(rf"^\W*{re.escape(want)}\W*\s*:\s*", raw, re.IGNORECASE | re.MULTILINE)
    if labelled is not None and want != "prompt":  # parse_attack reads prompt labels itself
        raw = raw[labelled.end() :]
    if "{" in raw and '"' in raw.split("{", 1)[1][:20]:
        return None  # a JSON object without the wanted field: nothing to take as plain text
    return parse_attack(raw)


def _usable(text: str) -> bool:
    """Long enough to be a prompt: DART's red model draws the same line."""
    return len(text.strip()) >= MIN_ATTACK_CHARS
