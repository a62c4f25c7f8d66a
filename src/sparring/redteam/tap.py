"""TAP: Tree of Attacks with Pruning (Mehrotra et al., "Tree of Attacks: Jailbreaking
Black-Box LLMs Automatically", 2023).

A tree of PAIR-style refinements. At each depth every leaf branches into ``branching``
children (attacker samples with their own seeds); children whose prompt has drifted off the
goal are pruned before they cost a query (phase 1); the rest are sent to the target and
judged, and only the ``width`` best-scored children stay as the next leaves (phase 2). The
search stops at the first success, at ``depth``, or when the query budget is spent.

Off-topic pruning needs no model call: a prompt is on topic when the MiniLM cosine between
it and the goal reaches ``on_topic`` (TAP's paper asks the evaluator LLM instead). Pruning
never empties the tree unnoticed: when every child of a depth is off topic, the most
on-topic one is kept (counted as ``kept_off_topic``), and a tree left with no child because
the attacker gave up on every branch ends with that reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sparring.attacks import request_text
from sparring.redteam.episode import Episode
from sparring.redteam.parsing import AttackerReply
from sparring.redteam.refine import Refinement
from sparring.redteam.registry import method
from sparring.types import Message


@dataclass(frozen=True)
class Node:
    """A leaf of the tree: its path (``r.0.1``), its refinement and its judged score."""

    name: str
    refinement: Refinement
    score: int | None = None


@dataclass(frozen=True)
class _Draft:
    """A child the attacker wrote: its parent, its name and the reply."""

    parent: Node
    name: str
    reply: AttackerReply


@method("tap")
async def tap(episode: Episode) -> None:
    """Run TAP on the episode's behavior."""
    budgets = episode.budgets
    frontier = [Node("r", Refinement())]
    for depth in range(budgets.depth):
        if episode.over:
            return
        drafts = await _branch(episode, frontier, depth)
        if not drafts:
            episode.notes["stop"] = "attacker gave up on every branch"
            return
        drafts = (await _on_topic(episode, drafts))[: episode.remaining]
        trials = await episode.calls.parallel(
            [
                episode.query(
                    [Message(role="user", content=d.reply.text or "")], stream=d.name, step=depth
                )
                for d in drafts
            ]
        )
        children = [
            Node(d.name, d.parent.refinement.after(episode.behavior, d.reply, t), t.score)
            for d, t in zip(drafts, trials, strict=True)
        ]
        if depth + 1 == budgets.depth:
            return
        # sorted() is stable, so equal scores keep the order the children were written in
        frontier = sorted(children, key=lambda n: -1 if n.score is None else n.score, reverse=True)
        episode.counts["pruned_width"] += max(0, len(frontier) - budgets.width)
        frontier = frontier[: budgets.width]


async def _branch(episode: Episode, frontier: list[Node], depth: int) -> list[_Draft]:
    """``branching`` attacker children of every leaf; those the attacker gave up on are
    left out (the episode counts them)."""
    names = [
        (node, f"{node.name}.{b}") for node in frontier for b in range(episode.budgets.branching)
    ]
    replies = await episode.calls.parallel(
        [
            episode.write(
                node.refinement.messages(episode.behavior), "prompt", stream=name, step=depth
            )
            for node, name in names
        ]
    )
    return [
        _Draft(node, name, reply)
        for (node, name), reply in zip(names, replies, strict=True)
        if reply.text is not None
    ]


async def _on_topic(episode: Episode, drafts: list[_Draft]) -> list[_Draft]:
    """Phase 1: the drafts whose prompt stays on the goal, or the most on-topic one when
    none does; counts what it prunes."""
    threshold = episode.config.on_topic
    if threshold is None:
        return drafts
    from sparring.text import shared_encoder

    texts = [request_text(episode.behavior), *(d.reply.text or "" for d in drafts)]
    vectors = await asyncio.wrap_future(shared_encoder().submit(texts))
    cosines = [float(c) for c in vectors[1:] @ vectors[0]]
    kept = [d for d, c in zip(drafts, cosines, strict=True) if c >= threshold]
    if not kept:
        kept = [drafts[max(range(len(drafts)), key=cosines.__getitem__)]]
        episode.counts["kept_off_topic"] += 1
    episode.counts["pruned_off_topic"] += len(drafts) - len(kept)
    return kept
