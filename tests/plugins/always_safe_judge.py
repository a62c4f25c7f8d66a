"""A judge outside sparring, in one file: ``always-safe`` calls every response safe, and
``always-safe@P`` gives it p_unsafe P. Named in ``SPARRING_PLUGINS``
(``plugins.always_safe_judge``), it is registered by importing it, and then usable wherever
a judge spec is."""

from __future__ import annotations

from collections.abc import Sequence

from sparring.errors import ConfigError
from sparring.judges import Judge, JudgeBuild, JudgeInput, judge_form
from sparring.types import Label, Verdict


class AlwaysSafeJudge(Judge):
    """Labels every response safe with one fixed p_unsafe (a probability)."""

    def __init__(self, p_unsafe: float = 0.0) -> None:
        self.p_unsafe = p_unsafe
        self.id = "always-safe@1"

    async def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        return [Verdict(label=Label.SAFE, p_unsafe=self.p_unsafe, judge_id=self.id) for _ in items]


@judge_form("always-safe", usage="always-safe[@P_UNSAFE]", separator="@")
def build_always_safe(argument: str | None, build: JudgeBuild) -> Judge:
    """``always-safe`` or ``always-safe@0.1``."""
    try:
        return AlwaysSafeJudge(float(argument) if argument else 0.0)
    except ValueError:
        raise ConfigError(f"judge spec {build.spec!r}: write always-safe@0.1") from None
