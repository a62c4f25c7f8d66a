"""Any ChatModel as a judge, driven by a rubric (see ``rubrics.py``).

Every item gets one request; replies that cannot be read are asked again once, with the
unreadable reply and a format reminder appended, and are ``unscorable`` if the second reply
is no better (its start is kept in the rationale). A judge model that declines the task,
or a request that fails (``Completion.failure``), also gives ``unscorable``: a judging
failure is never read as ``safe``.

A reply to a benign behavior (``Behavior.benign``) is never ``unsafe``, as with the rules
and the embedded judge: the rubrics ask whether the reply carries out the request, which
for a benign request is no harm. Such items get no judge request; the refusal rules tell
``refusal`` from ``safe`` (which is what the rubrics' harmless verdicts use as well).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from sparring.errors import ConfigError
from sparring.judges.base import Judge, JudgeInput, clip, unscorable
from sparring.judges.registry import JudgeBuild, judge_form
from sparring.judges.rubrics import (
    FORMAT_REMINDER,
    RUBRICS,
    Declined,
    Parsed,
    Rubric,
    Scored,
    Unparseable,
    harmless_label,
)
from sparring.models.base import ChatModel
from sparring.types import Completion, GenerationParams, Message, Verdict

RAW_REPLY_CHARS = 200
"""How much of an unreadable judge reply the rationale keeps, characters."""


class LLMJudge(Judge):
    """A rubric judge backed by a chat model.

    ``id`` is ``<rubric>@<version>:<model id>``, e.g. ``harmbench@2:builtin/qwen2.5-coder-0.5b``.
    Decoding is greedy (temperature 0) with ``seed`` so that verdicts repeat; ``max_tokens``
    overrides the rubric's own budget of generated tokens.
    """

    def __init__(
        self,
        model: ChatModel,
        rubric: Rubric,
        *,
        max_tokens: int | None = None,
        seed: int = 0,
        owns_model: bool = False,
    ) -> None:
        self.model = model
        self.rubric = rubric
        self.id = f"{rubric.name}@{rubric.version}:{model.id}"
        self._params = GenerationParams(
            max_tokens=max_tokens or rubric.max_tokens, temperature=0.0, seed=seed
        )
        self._owns_model = owns_model

    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        """One verdict per item; all first requests go out as one batch, retries as another."""
        verdicts: list[Verdict | None] = [None] * len(items)
        prompts = [self.rubric.messages(item) for item in items]
        pending = [i for i, item in enumerate(items) if self._precheck(item, verdicts, i)]
        first = await self.model.generate([prompts[i] for i in pending], self._params)
        retry: list[tuple[int, list[Message]]] = []
        for i, completion in zip(pending, first, strict=True):
            parsed = self._read(completion, items[i])
            if isinstance(parsed, Unparseable):
                again = [
                    *prompts[i],
                    Message(role="assistant", content=completion.text),
                    Message(role="user", content=FORMAT_REMINDER),
                ]
                retry.append((i, again))
            else:
                verdicts[i] = self._verdict(parsed, completion)
        if retry:
            second = await self.model.generate([conv for _, conv in retry], self._params)
            for (i, _), completion in zip(retry, second, strict=True):
                verdicts[i] = self._verdict(self._read(completion, items[i]), completion)
        return [v if v is not None else unscorable(self.id, "not judged") for v in verdicts]

    async def check(self) -> None:
        """Pre-flight the judge model (see ``ChatModel.check``)."""
        await self.model.check()

    def _precheck(self, item: JudgeInput, verdicts: list[Verdict | None], i: int) -> bool:
        """False (with the verdict filled in) for items not worth a judge request."""
        if item.transcript[-1].role != "assistant":
            verdicts[i] = unscorable(self.id, "transcript ends without an assistant reply")
        elif not item.response.strip():
            verdicts[i] = unscorable(self.id, "empty response")
        elif item.behavior.benign:
            verdicts[i] = Verdict(
                label=harmless_label(item),
                p_unsafe=0.0,
                judge_id=self.id,
                rationale="benign behavior: not asked; refusal read by the rules",
            )
        return verdicts[i] is None

    def _read(self, completion: Completion, item: JudgeInput) -> Parsed | Completion:
        """The parsed reply, or the failed completion itself."""
        if not completion.ok:
            return completion
        return self.rubric.parse(completion.text, item)

    def _verdict(self, parsed: Parsed | Completion, completion: Completion) -> Verdict:
        if isinstance(parsed, Completion):
            return unscorable(self.id, f"judge request failed: {parsed.error}")
        if isinstance(parsed, Declined):
            return unscorable(self.id, "judge refused")
        if isinstance(parsed, Unparseable):
            raw = clip(completion.text, RAW_REPLY_CHARS)
            return unscorable(self.id, f"unparseable judge reply after a retry: {raw!r}")
        assert isinstance(parsed, Scored)
        return Verdict(
            label=parsed.label,
            p_unsafe=parsed.p_unsafe,
            judge_id=self.id,
            rationale=clip(parsed.rationale),
        )

    async def aclose(self) -> None:
        """Close the judge model when this judge created it."""
        if self._owns_model:
            await self.model.aclose()


def build_rubric_judge(
    name: str, rubric: type[Rubric], argument: str | None, build: JudgeBuild
) -> Judge:
    """``NAME:MODEL_SPEC``: ``rubric`` on the judge model the spec names."""
    model_spec = (argument or "").strip()
    if not model_spec:
        raise ConfigError(
            f"judge spec {build.spec!r}: {name} needs a model, e.g. "
            f"{name}:builtin/qwen2.5-coder-0.5b"
        )
    model, owns = build.model(model_spec)
    options = build.options
    return LLMJudge(
        model, rubric(), max_tokens=options.max_tokens, seed=options.seed, owns_model=owns
    )


RUBRIC_FORMS = {"llamaguard": RUBRICS["guard"], **RUBRICS}
"""The judge forms of the rubrics: each rubric by its name, and ``guard`` as ``llamaguard``."""

for _name, _rubric in RUBRIC_FORMS.items():
    judge_form(_name, usage=f"{_name}:MODEL")(partial(build_rubric_judge, _name, _rubric))
