"""A plugin attack in one file: the request in capitals, with an option. Importing this
module (SPARRING_PLUGINS=tests.plugins.shout_attack) registers it; nothing else changes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sparring.attacks.base import Attack, AttackContext, AttackPrompt, register, single_turn
from sparring.types import Behavior


class ShoutOptions(BaseModel):
    """How loud."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    marks: int = 1


@register
class Shout(Attack[ShoutOptions]):
    """The request in capital letters, followed by ``marks`` exclamation marks."""

    name = "shout"
    family = "jailbreak.template"
    description = "The request in capitals (a test plugin)."
    Options = ShoutOptions

    async def realize(self, behavior: Behavior, ctx: AttackContext) -> list[AttackPrompt]:
        return [single_turn(behavior.text.upper() + "!" * self.options.marks)]
