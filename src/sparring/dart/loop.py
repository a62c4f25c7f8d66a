"""The DART loop (MART and the ablations are flags of it): ``run_dart`` and the order of
stages.

Each round: the red model writes attacks in chosen directions, taking the target's last
answers into account; novel ones (against the global archive), or with ``target_sees:
all`` every one but exact duplicates, are sent to the target K times and judged against the
original intent (``attack_writing``, ``target_eval``);
successful, novel attacks join the archive and train the red model (``red_training``);
active learning picks the prompts the target trains on, with its own safe answers (or
context-distilled ones; earlier rounds' are rehearsed when a round has few) and a replay
of benign self-distillation (``target_training``);
then the new target is evaluated on held-out prompts by the training judge and a second
judge (``target_eval``), and a round that did worse on the validation prompts (more
violations than the target it would replace, or over-refusal too far above the base's) is
rejected: the target keeps the adapter it had before it (``rN/gate``).

Every generation goes through the engine, so it is stored as it happens and a killed run
redoes nothing stored. Each stage ends with a named step in the store (``r2/attacks``,
``r2/target-train`` ...) carrying what it produced; a resumed run replays finished steps
from the store and continues at the first unfinished one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sparring.dart.attack_writing import filter_drafts, red_requests, write_attacks
from sparring.dart.candidate import Candidate, candidate_from_json, candidate_json
from sparring.dart.config import DartConfig
from sparring.dart.context import DartRun, adapter_paths, kept_evaluation, stored_adapter
from sparring.dart.diversity import Embedder, mean_pairwise_cosine, self_bleu
from sparring.dart.red_training import learn_from, train_red
from sparring.dart.splits import make_splits
from sparring.dart.target_eval import evaluate, final_red_eval, gate_round, query_target
from sparring.dart.target_training import train_target
from sparring.errors import StageStopped
from sparring.stats import rate
from sparring.store import Store

__all__ = ["StageStopped", "run_dart"]


async def run_dart(
    config: DartConfig,
    store: Store,
    *,
    resume: str | None = None,
    workdir: Path | None = None,
    progress: bool = True,
    say: Callable[[str], None] = lambda line: None,
) -> str:
    """Run (or resume) a DART run into ``store``; returns its run id.

    Checkpoints (adapters) go under ``workdir`` (default: beside the store, in
    ``dart-checkpoints/RUN_ID``). ``say`` receives a line per stage. A run stopped by
    Ctrl-C raises StageStopped after everything finished so far is stored; calling again
    with ``resume`` continues it. The run is ``running`` until its last stage is stored
    (then ``finished``); an error in a stage marks it ``failed`` and is raised.
    """
    from sparring.judges import resolve_judge
    from sparring.text import shared_encoder

    data = make_splits(config)
    judge = resolve_judge(config.judge)
    second = resolve_judge(config.second_judge) if config.second_judge else None
    if second is not None and second.id == judge.id:
        await second.aclose()
        second = None
    try:
        if resume is None:
            model_ids = {"target": config.target, "red": config.red, "judge": judge.id}
            if second is not None:
                model_ids["second_judge"] = second.id
            run_id = store.create_run(
                "dart", config.model_dump(mode="json"), config.seed, model_ids
            )
            store.add_behaviors(run_id, data.all)
        else:
            run_id = resume
        folder = workdir or store.path.parent / "dart-checkpoints" / run_id
        run = DartRun(
            config,
            store,
            run_id,
            data,
            judge,
            shared_encoder(),
            folder,
            progress,
            say,
            second_judge=second,
        )
        try:
            await run_all(run)
        except StageStopped:
            raise
        except Exception:
            # The engine leaves a run ``running`` between stages; a crash must not.
            store.finish_run(run_id, "failed")
            raise
    finally:
        await judge.aclose()
        if second is not None:
            await second.aclose()
    return run_id


async def run_all(run: DartRun) -> None:
    """Run (or finish) every round, then the final red-team evaluation."""
    done = run.store.steps(run.run_id)
    if done:
        run.say(f"resuming {run.run_id}: {len(done)} stages already stored")
    run.archive.add([b.text for b in run.data.seeds], ["seed"] * len(run.data.seeds))
    if "r0/eval" not in done:
        run.say(
            f"evaluating the base target on {len(run.data.held_out)} held-out, "
            f"{len(run.data.public)} public and {len(run.data.benign)} benign prompts"
        )
        done["r0/eval"] = await evaluate(run, 0)
    for r in range(1, run.config.iterations + 1):
        await run_round(run, r, done)
    if "final/red-eval" not in done:
        await final_red_eval(run)
    run.store.finish_run(run.run_id, "finished")


async def run_round(run: DartRun, r: int, done: dict[str, dict[str, Any]]) -> None:
    """Round ``r``: each stage runs unless ``done`` (the stored steps) has it, in which
    case its record is replayed so later stages see the same state."""
    run.say(f"round {r}/{run.config.iterations}")
    if f"r{r}/attacks" in done:
        candidates = [candidate_from_json(c) for c in done[f"r{r}/attacks"]["candidates"]]
    else:
        candidates = await attack_stage(run, r)
    learn_from(run, candidates)
    if f"r{r}/red-train" in done:
        run.red.restore(**stored_adapter(done[f"r{r}/red-train"]))
    else:
        await train_red(run, r, candidates)
    kept = adapter_paths(run.target)
    if f"r{r}/target-train" in done:
        run.target.restore(**stored_adapter(done[f"r{r}/target-train"]))
    else:
        await train_target(run, r, candidates)
    if f"r{r}/eval" not in done:
        done[f"r{r}/eval"] = await evaluate(run, r)
    margin = run.config.refusal_gate
    if f"r{r}/gate" in done:
        if done[f"r{r}/gate"]["rejected"]:
            run.target.restore(**stored_adapter(done[f"r{r}/gate"]["kept"]))
    elif margin is not None and run.data.validation:
        evaluations = (done["r0/eval"], kept_evaluation(done, r), done[f"r{r}/eval"])
        done[f"r{r}/gate"] = gate_round(run, r, evaluations, kept, margin)


async def attack_stage(run: DartRun, r: int) -> list[Candidate]:
    """Stages 1-3: write, filter and try the round's attacks; stored as ``rN/attacks``."""
    diversity, _ = run.config.flags
    requests = red_requests(run, r, diversity)
    drafts, red_counts = await write_attacks(run, r, requests)
    sent, novel, filter_counts = filter_drafts(
        run.archive, drafts, diversity=diversity, target_sees=run.config.target_sees
    )
    run.say(
        f"  red model: {red_counts['red_drafts']} drafts for {len(requests)} requests, "
        f"{red_counts['red_refusals']} refusals, {red_counts['red_unparsed']} unparsed; "
        f"diversity filter kept {filter_counts['accepted']} (rejected "
        f"{filter_counts['rejected_duplicate']} duplicate, "
        f"{filter_counts['rejected_semantic']} semantic, "
        f"{filter_counts['rejected_lexical']} lexical)"
        + ("" if all(novel) else f"; the target answers all {len(sent)}")
    )
    candidates = await query_target(run, r, sent, novel)
    metrics = red_metrics(candidates, run.embedder)
    run.say(
        f"  target: {metrics['successful']} of {len(candidates)} attacks succeeded at "
        f"least once in {run.config.k_tgt} samples"
    )
    run.record(
        f"r{r}/attacks",
        {
            "candidates": [candidate_json(c) for c in candidates],
            **red_counts,
            **filter_counts,
            **metrics,
        },
    )
    return candidates


def red_metrics(candidates: Sequence[Candidate], embedder: Embedder) -> dict[str, Any]:
    """Red attack success rate over target samples, and diversity of the successful attacks."""
    unsafe = sum(c.unsafe for c in candidates)
    scored = sum(c.scored for c in candidates)
    winners = [c for c in candidates if c.unsafe > 0]
    texts = [c.text for c in winners]
    diversity: dict[str, Any] = {
        "successful": len(winners),
        "cells_hit": len({c.cell for c in winners}),
    }
    if len(texts) >= 2:
        diversity["one_minus_self_bleu"] = 1.0 - self_bleu(texts, sample=200)
        diversity["one_minus_mean_cosine"] = 1.0 - mean_pairwise_cosine(embedder.encode(texts))
    return {"red_asr": rate(unsafe, scored).to_dict(), **diversity}
