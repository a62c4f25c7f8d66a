"""Which prompts a model was trained on, kept beside its weights so that an evaluation of it
can tell seen prompts from unseen ones.

A model folder (the one holding a GGUF file or a LoRA adapter) may hold
``trained_prompts.json``: the SHA-256 digests of every prompt text the weights were
fine-tuned on, or could have been (``sparring dart export`` writes one), and the names of the
suites they came from. Digests only: the file carries no prompt text, harmful or not. A scan
of such a model counts how many of its behaviors are among them (``scan.plan.seen_note``): a
model's refusal or compliance on prompts it trained on says little about prompts it has not
seen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sparring.errors import ConfigError
from sparring.models.options import ModelOptions
from sparring.models.spec import parse_spec

__all__ = ["TRAINED_PROMPTS_FILE", "TrainedPrompts", "prompt_digest", "trained_prompts"]

TRAINED_PROMPTS_FILE = "trained_prompts.json"


def prompt_digest(text: str) -> str:
    """SHA-256 (hex) of a prompt text, surrounding whitespace stripped."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrainedPrompts:
    """The contents of one ``trained_prompts.json``."""

    path: Path
    digests: frozenset[str]
    suites: tuple[str, ...]
    """Names of the suites the prompts were drawn from, for the message that names them."""

    @staticmethod
    def write(path: Path, texts: Iterable[str], suites: Iterable[str]) -> None:
        """Write the digests of ``texts`` (sorted, each once) and ``suites`` to ``path``."""
        body = {
            "schema": 1,
            "sha256": sorted({prompt_digest(t) for t in texts}),
            "suites": sorted(set(suites)),
        }
        path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")

    def seen(self, texts: Iterable[str]) -> int:
        """How many of ``texts`` the model trained on."""
        return sum(prompt_digest(t) in self.digests for t in texts)


def trained_prompts(spec: str, options: ModelOptions) -> TrainedPrompts | None:
    """The trained-prompts record beside the weights ``spec`` and its adapters name: the
    GGUF file of a ``llamacpp/PATH`` spec, then each adapter in ``options`` (the first
    record found). None when there is none, or for a spec that names no local file.
    Raises ConfigError for a record that cannot be read."""
    parsed = parse_spec(spec)
    files = [Path(a.path) for a in options.adapters]
    if parsed.provider == "llamacpp":
        files.insert(0, Path(parsed.name))
    for file in files:
        record = file.expanduser().parent / TRAINED_PROMPTS_FILE
        if record.is_file():
            return _read(record)
    return None


def _read(path: Path) -> TrainedPrompts:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        digests = frozenset(str(d) for d in body["sha256"])
        suites = tuple(str(s) for s in body.get("suites", ()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not a readable trained-prompts record ({exc}); delete it or re-export "
            "the model"
        ) from exc
    return TrainedPrompts(path, digests, suites)
