"""Judge spec strings: one string names a judge everywhere (CLI ``--judge``, configs, API).

Grammar::

    spec     := single | combined
    single   := "rules" | "embedded" | "embedded@" HEAD_PATH | RUBRIC ":" MODEL_SPEC
    RUBRIC   := "llamaguard" | "guard" | "harmbench" | "strongreject"
    combined := "escalate:" single "," single
              | ("majority" | "unanimous" | "any") ":" single ("," single)+

``MODEL_SPEC`` is a model spec as ``sparring.models.resolve_model`` reads it
(``builtin/qwen2.5-coder-0.5b``, ``openai-compatible/NAME`` with ``base_url`` in the options,
``ollama/llama3:8b`` ...); everything after the rubric's colon up to the next comma is the
model spec. ``embedded`` is the default judge. Examples::

    rules
    embedded
    harmbench:builtin/qwen2.5-coder-0.5b
    escalate:embedded,harmbench:openai-compatible/judge
    majority:rules,embedded,strongreject:vllm/llama-3-8b
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from sparring.errors import ConfigError
from sparring.judges.base import Judge
from sparring.judges.ensemble import DEFAULT_BAND, VOTE_POLICIES, EscalationJudge, VoteJudge
from sparring.judges.rubrics import RUBRICS
from sparring.models.base import ChatModel
from sparring.models.options import ModelOptions
from sparring.types import Frozen

DEFAULT_JUDGE = "embedded"

RUBRIC_ALIASES = {
    "llamaguard": "guard",
    "guard": "guard",
    "harmbench": "harmbench",
    "strongreject": "strongreject",
}

VALID_FORMS = (
    "rules | embedded | embedded@HEAD.npz | llamaguard:MODEL | harmbench:MODEL | "
    "strongreject:MODEL | escalate:A,B | majority:A,B[,C...] | unanimous:A,B[,...] | any:A,B[,...]"
)


class JudgeOptions(Frozen):
    """Settings for building judges from spec strings."""

    model: ModelOptions = Field(
        default_factory=ModelOptions, description="Options for judge models (base_url ...)."
    )
    band: tuple[float, float] = Field(
        DEFAULT_BAND, description="Escalation band of p_unsafe (probabilities, inclusive)."
    )
    max_tokens: int | None = Field(
        None, ge=1, description="Judge reply budget in tokens; None keeps each rubric's own."
    )
    seed: int = Field(0, description="Sampling seed sent with judge requests.")


def resolve_judge(spec: str, options: JudgeOptions | None = None) -> Judge:
    """Build the judge a spec names; ConfigError (listing the valid forms) when it names none.

    Judge models are built once per distinct model spec and closed with the judge.
    """
    opts = options or JudgeOptions()
    models: dict[str, ChatModel] = {}
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    if sep and kind in ("escalate", *VOTE_POLICIES):
        members = [part.strip() for part in rest.split(",")]
        if any(not m for m in members):
            raise ConfigError(f"judge spec {spec!r} has an empty member; use {VALID_FORMS}")
        judges = [_single(m, opts, models, spec) for m in members]
        if kind == "escalate":
            if len(judges) != 2:
                raise ConfigError(
                    f"judge spec {spec!r}: escalate takes exactly two judges, e.g. "
                    "escalate:embedded,harmbench:MODEL"
                )
            return EscalationJudge(judges[0], judges[1], opts.band)
        policy = next(p for p in VOTE_POLICIES if p == kind)
        return VoteJudge(judges, policy)
    return _single(text, opts, models, spec)


def _single(text: str, opts: JudgeOptions, models: dict[str, ChatModel], spec: str) -> Judge:
    if text == "rules":
        from sparring.judges.rules import RefusalRulesJudge

        return RefusalRulesJudge()
    if text == "embedded" or text.startswith("embedded@"):
        from sparring.judges.embedded import EmbeddedJudge

        head = text.partition("@")[2]
        return EmbeddedJudge(Path(head).expanduser() if head else None)
    rubric_name, sep, model_spec = text.partition(":")
    if sep and rubric_name in RUBRIC_ALIASES:
        if not model_spec.strip():
            raise ConfigError(
                f"judge spec {spec!r}: {rubric_name} needs a model, e.g. "
                f"{rubric_name}:builtin/qwen2.5-coder-0.5b"
            )
        from sparring.judges.llm import LLMJudge
        from sparring.models import resolve_model

        key = model_spec.strip()
        owns = key not in models
        if owns:
            models[key] = resolve_model(key, opts.model)
        rubric = RUBRICS[RUBRIC_ALIASES[rubric_name]]()
        return LLMJudge(
            models[key], rubric, max_tokens=opts.max_tokens, seed=opts.seed, owns_model=owns
        )
    raise ConfigError(f"unknown judge spec {spec!r}; valid forms: {VALID_FORMS}")
