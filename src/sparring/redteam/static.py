"""Static techniques of the scan's catalogue inside a red-team run: a baseline method
(``--method direct``) and the static arms of the adaptive campaign.

A technique's prompts for a behavior are the ones the scan would send (same seed, same
realisation); each user turn is one target query, judged, and the technique succeeds when
any reply is unsafe.
"""

from __future__ import annotations

from sparring.attacks import AttackContext, AttackPrompt, get_attack
from sparring.redteam.episode import Episode
from sparring.types import Message


async def static_prompts(episode: Episode, technique: str) -> list[AttackPrompt]:
    """The prompts ``technique`` writes for the episode's behavior, as in a scan."""
    attack = get_attack(technique)
    return await attack.realize(episode.behavior, AttackContext(seed=episode.config.seed))


async def send_static(episode: Episode, prompt: AttackPrompt, stream: str) -> None:
    """Send ``prompt`` turn by turn (its messages, then each followup after the target's
    reply) while the episode has queries left and no success."""
    conversation = list(prompt.messages)
    for step, followup in enumerate((None, *prompt.followups)):
        if episode.over:
            return
        if followup is not None:
            conversation.append(Message(role="user", content=followup))
        trial = await episode.query(conversation, stream=stream, step=step)
        if trial.error is not None:
            return
        conversation.append(Message(role="assistant", content=trial.response))


async def run_static(episode: Episode) -> None:
    """The technique named by ``episode.method``: each of its prompts in turn, within the
    episode's queries."""
    for index, prompt in enumerate(await static_prompts(episode, episode.method)):
        await send_static(episode, prompt, f"p{index}")
