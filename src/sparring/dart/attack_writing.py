"""Stages 1 and 2 of a DART round: the red model writes attacks in sampled directions, and
the global-diversity filter tells the novel ones (the only ones the target answers, unless
``target_sees`` is ``all``).

Directions are (risk category × attack style) cells, weighted toward cells where the target
is still vulnerable but the archive is sparse (DART) or uniformly (MART). Each request gets
K_red drafts through the engine; a refused or unparseable draft is retried with a new seed
up to ``red_tries`` times.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from sparring.dart.config import NoveltyScope
from sparring.dart.context import DartRun
from sparring.dart.directions import cell_key, direction_weights, sample_directions
from sparring.dart.diversity import DiversityArchive
from sparring.dart.plans import red_plan
from sparring.dart.red import ATTACK_STYLES, REFUSED, UNPARSED, RedRequest, read_draft
from sparring.types import Behavior

Draft = tuple[RedRequest, str]
"""A red request and one attack the red model wrote for it."""


def red_requests(run: DartRun, r: int, diversity: bool) -> list[RedRequest]:
    """The round's ``red_requests`` requests: a sampled direction each, a seed intent of
    its category, and the last attack on that intent with the target's answer."""
    rng = random.Random(run.config.seed * 1000 + r)
    by_category: dict[str, list[Behavior]] = defaultdict(list)
    for seed in run.data.seeds:
        by_category[seed.category].append(seed)
    cells = [(c, s) for c in sorted(by_category) for s in ATTACK_STYLES]
    weights = direction_weights(cells, run.stats) if diversity else dict.fromkeys(cells, 1.0)
    requests = []
    for cell in sample_directions(weights, run.config.red_requests, rng):
        behavior = rng.choice(by_category[cell[0]])
        previous = run.last_attack.get(behavior.id)
        requests.append(RedRequest(behavior, cell, *(previous if previous else (None, None))))
    return requests


async def write_attacks(
    run: DartRun, r: int, requests: Sequence[RedRequest]
) -> tuple[list[Draft], dict[str, int]]:
    """K_red drafts per request through the engine; refused drafts are retried. Returns the
    drafts and the counts stored in the step (requests, drafts, refusals, unparsed, given up)."""
    drafts: list[Draft] = []
    refusals = unparsed = 0
    pending = [(req, k) for req in requests for k in range(run.config.k_red)]
    async with run.chat(run.red) as model:
        for attempt in range(run.config.red_tries):
            if not pending:
                break
            plan = red_plan(run.config, pending, r, attempt)
            results = await run.run_phase(model, plan, judged=False)
            retry = []
            for (req, k), spec in zip(pending, plan, strict=True):
                draft = read_draft(results[spec.key].completions[0].text)
                if draft in (REFUSED, UNPARSED):
                    refusals += draft == REFUSED
                    unparsed += draft == UNPARSED
                    retry.append((req, k))
                else:
                    drafts.append((req, draft))
            pending = retry
    counts = {
        "red_requests": len(requests),
        "red_drafts": len(drafts),
        "red_refusals": refusals,
        "red_unparsed": unparsed,
        "red_given_up": len(pending),
    }
    return drafts, counts


def filter_drafts(
    archive: DiversityArchive,
    drafts: Sequence[Draft],
    *,
    diversity: bool,
    target_sees: NoveltyScope = "novel",
) -> tuple[list[Draft], list[bool], dict[str, int]]:
    """Global novelty against ``archive`` and within the batch (with ``diversity``, DART),
    or exact de-duplication only (MART). Returns the drafts the target is to answer, whether
    each is novel, and the counts: exact duplicates, drafts that failed the semantic or the
    lexical test, novel ones (``accepted``) and those sent to the target. With
    ``target_sees="all"`` a draft that is not novel is still sent, marked as such."""
    kept: list[Draft] = []
    novel: list[bool] = []
    batch = DiversityArchive(archive.embedder, archive.max_cosine, archive.max_bleu)
    duplicates = semantic = lexical = 0
    novelties = archive.score([text for _, text in drafts]) if diversity else []
    seen: set[str] = set()
    for i, (req, text) in enumerate(drafts):
        norm = " ".join(text.lower().split())
        if norm in seen or (diversity and novelties[i].duplicate):
            duplicates += 1
            continue
        seen.add(norm)
        is_novel = True
        if diversity:
            novelty = novelties[i]
            [within] = batch.accept([text], [cell_key(req.cell)])
            if not (novelty.novel and within.novel):
                is_novel = False
                worst = novelty if not novelty.novel else within
                if worst.max_cosine > archive.max_cosine:
                    semantic += 1
                else:
                    lexical += 1
        if is_novel or target_sees == "all":
            kept.append((req, text))
            novel.append(is_novel)
    return (
        kept,
        novel,
        {
            "rejected_duplicate": duplicates,
            "rejected_semantic": semantic,
            "rejected_lexical": lexical,
            "accepted": sum(novel),
            "sent": len(kept),
        },
    )
