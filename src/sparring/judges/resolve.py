"""Judge spec strings: one string names a judge everywhere (CLI ``--judge``, configs, API).

Grammar::

    spec     := single | combined | exact
    single   := "rules" | "embedded" | "embedded@" HEAD_PATH | RUBRIC ":" MODEL_SPEC
    RUBRIC   := "llamaguard" | "guard" | "harmbench" | "strongreject"
    combined := "escalate:" single "," single
              | ("majority" | "unanimous" | "any") ":" single ("," single)+
    exact    := "exact" | "exact:" spec

``MODEL_SPEC`` is a model spec as ``sparring.models.resolve_model`` reads it
(``builtin/qwen2.5-coder-0.5b``, ``openai-compatible/NAME`` with ``base_url`` in the options,
``ollama/llama3:8b`` ...); everything after the rubric's colon up to the next comma is the
model spec. ``embedded`` is the default judge. ``exact`` scores attempts by the exact check
their attack wrote into their meta (``sparring.judges.exact``); ``exact:SPEC`` sends the
attempts without one to ``SPEC``, and a scan whose attacks carry checks uses these forms by
itself. Examples::

    rules
    embedded
    harmbench:builtin/qwen2.5-coder-0.5b
    escalate:embedded,harmbench:openai-compatible/judge
    majority:rules,embedded,strongreject:vllm/llama-3-8b

Each form is registered in the module of its judge (``sparring.judges.registry``); a
plugin adds forms of its own.
"""

from __future__ import annotations

# Importing the modules of the built-in judges registers their forms.
from sparring.judges import embedded, ensemble, exact, llm, rules  # noqa: F401
from sparring.judges.base import Judge
from sparring.judges.registry import JUDGE_FORMS, JudgeBuild, JudgeOptions, valid_forms

__all__ = ["DEFAULT_JUDGE", "JUDGE_FORMS", "JudgeOptions", "resolve_judge", "valid_forms"]

DEFAULT_JUDGE = "embedded"


def resolve_judge(spec: str, options: JudgeOptions | None = None) -> Judge:
    """Build the judge a spec names; ConfigError (listing the registered forms) when it
    names none.

    Judge models are built once per distinct model spec and closed with the judge.
    """
    return JudgeBuild(spec, options or JudgeOptions()).judge(spec)
