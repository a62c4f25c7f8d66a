"""The DART loop (MART and the ablations are flags of it).

Each round: the red model writes attacks in chosen directions, taking the target's last
answers into account; novel ones (against the global archive) are sent to the target K
times and judged against the original intent; successful, novel attacks join the archive
and train the red model; active learning picks the prompts the target trains on, with its
own safe answers (or context-distilled ones) and a replay of benign self-distillation;
then the new target is evaluated on held-out prompts.

Every generation goes through the engine, so it is stored as it happens and a killed run
redoes nothing stored. Each stage ends with a named step in the store (``r2/attacks``,
``r2/target-train`` ...) carrying what it produced; a resumed run replays finished steps
from the store and continues at the first unfinished one.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.dart.active import (
    PromptOutcome,
    best_safe_answer,
    select_all_unsafe,
    select_uncertain,
)
from sparring.dart.config import DartConfig
from sparring.dart.directions import Cell, CellStats, cell_key, direction_weights, sample_directions
from sparring.dart.diversity import DiversityArchive, Embedder
from sparring.dart.evaluation import evaluate_round, helpfulness, rate_line, red_metrics
from sparring.dart.red import ATTACK_STYLES, REFUSED, UNPARSED, RedRequest, read_draft, red_messages
from sparring.dart.slots import ModelSlot
from sparring.dart.splits import DartData, make_splits, with_category
from sparring.engine import Engine, target_executor
from sparring.judges import Judge
from sparring.judges.rules import read_response
from sparring.models import ChatModel
from sparring.store import RunStore
from sparring.train import SFTExample, StepInfo
from sparring.types import (
    AttemptResult,
    AttemptSpec,
    Behavior,
    GenerationParams,
    Label,
    Message,
    content_hash,
)


class StageStopped(Exception):
    """An engine phase ended early (Ctrl-C, budget): the run stops and can be resumed."""

    def __init__(self, status: str, run_id: str) -> None:
        super().__init__(status)
        self.run_id = run_id


@dataclass
class Candidate:
    """A red attack that passed the filters, with what the target did with it."""

    key: str
    behavior_id: str
    cell: Cell
    text: str
    request: dict[str, Any]
    unsafe: int = 0
    scored: int = 0
    answers: list[tuple[str, float | None, str]] = field(default_factory=list)
    """(answer, p_unsafe, label) per target sample."""


@dataclass
class DartLoop:
    """One DART run against a store; build with ``DartLoop.open``."""

    config: DartConfig
    store: RunStore
    run_id: str
    data: DartData
    judge: Judge
    embedder: Embedder
    workdir: Path
    progress: bool = True
    say: Callable[[str], None] = field(default=lambda line: None)
    """Receives one line per stage (counts and rates only, never attack or answer text)."""
    target: ModelSlot = field(init=False)
    red: ModelSlot = field(init=False)
    archive: DiversityArchive = field(init=False)
    stats: dict[Cell, CellStats] = field(default_factory=dict)
    last_attack: dict[str, tuple[str, str]] = field(default_factory=dict)
    """behavior id → (latest attack on it, the target's first answer)."""

    def __post_init__(self) -> None:
        self.target = ModelSlot("target", self.config.target, self.workdir)
        self.red = ModelSlot("red", self.config.red, self.workdir)
        self.archive = DiversityArchive(
            self.embedder, max_cosine=self.config.max_cosine, max_bleu=self.config.max_bleu
        )
        self.behaviors = {b.id: b for b in self.data.all}

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Run (or finish) every round, then the final red-team evaluation."""
        done = self.store.steps(self.run_id)
        if done:
            self.say(f"resuming {self.run_id}: {len(done)} stages already stored")
        self.archive.add([b.text for b in self.data.seeds], ["seed"] * len(self.data.seeds))
        if "r0/eval" not in done:
            self.say(
                f"evaluating the base target on {len(self.data.held_out)} held-out, "
                f"{len(self.data.public)} public and {len(self.data.benign)} benign prompts"
            )
            await self._evaluate(0)
        for r in range(1, self.config.iterations + 1):
            await self._round(r, done)
        if "final/red-eval" not in done:
            await self._final_red_eval()
        self.store.finish_run(self.run_id, "finished")

    async def _round(self, r: int, done: dict[str, dict[str, Any]]) -> None:
        self.say(f"round {r}/{self.config.iterations}")
        if f"r{r}/attacks" in done:
            candidates = self._replay_attacks(done[f"r{r}/attacks"])
        else:
            candidates = await self._attack_stage(r)
        self._learn_from(candidates)
        if f"r{r}/red-train" in done:
            self.red.restore(**_paths(done[f"r{r}/red-train"]))
        else:
            await self._train_red(r, candidates)
        if f"r{r}/target-train" in done:
            self.target.restore(**_paths(done[f"r{r}/target-train"]))
        else:
            await self._train_target(r, candidates)
        if f"r{r}/eval" not in done:
            await self._evaluate(r)

    # -- stage 1-3: attacks, diversity, target interaction ---------------------------------

    async def _attack_stage(self, r: int) -> list[Candidate]:
        diversity, _ = self.config.flags
        requests = self._red_requests(r, diversity)
        drafts, red_counts = await self._write_attacks(r, requests)
        accepted, filter_counts = self._filter(drafts, diversity)
        self.say(
            f"  red model: {red_counts['red_drafts']} drafts for {len(requests)} requests, "
            f"{red_counts['red_refusals']} refusals, {red_counts['red_unparsed']} unparsed; "
            f"diversity filter kept {filter_counts['accepted']} (rejected "
            f"{filter_counts['rejected_duplicate']} duplicate, "
            f"{filter_counts['rejected_semantic']} semantic, "
            f"{filter_counts['rejected_lexical']} lexical)"
        )
        candidates = await self._query_target(r, accepted)
        metrics = red_metrics(candidates, self.embedder)
        self.say(
            f"  target: {metrics['successful']} of {len(candidates)} attacks succeeded at "
            f"least once in {self.config.k_tgt} samples"
        )
        self.store.record_step(
            self.run_id,
            f"r{r}/attacks",
            {
                "candidates": [_candidate_json(c) for c in candidates],
                **red_counts,
                **filter_counts,
                **metrics,
            },
        )
        return candidates

    def _red_requests(self, r: int, diversity: bool) -> list[RedRequest]:
        rng = random.Random(self.config.seed * 1000 + r)
        by_category: dict[str, list[Behavior]] = defaultdict(list)
        for seed in self.data.seeds:
            by_category[seed.category].append(seed)
        cells = [(c, s) for c in sorted(by_category) for s in ATTACK_STYLES]
        weights = direction_weights(cells, self.stats) if diversity else dict.fromkeys(cells, 1.0)
        requests = []
        for cell in sample_directions(weights, self.config.red_requests, rng):
            behavior = rng.choice(by_category[cell[0]])
            previous = self.last_attack.get(behavior.id)
            requests.append(RedRequest(behavior, cell, *(previous if previous else (None, None))))
        return requests

    async def _write_attacks(
        self, r: int, requests: Sequence[RedRequest]
    ) -> tuple[list[tuple[RedRequest, str]], dict[str, int]]:
        """K_red drafts per request through the engine; refused drafts are retried."""
        params = GenerationParams(
            max_tokens=self.config.red_max_tokens,
            temperature=self.config.red_temperature,
            top_p=0.95,
        )
        drafts: list[tuple[RedRequest, str]] = []
        refusals = unparsed = 0
        pending = [(req, k) for req in requests for k in range(self.config.k_red)]
        async with self.red.chat_model(n_seq_max=self.config.concurrency) as model:
            for attempt in range(self.config.red_tries):
                if not pending:
                    break
                plan = [
                    _spec(
                        req.behavior.id,
                        "red-writer",
                        red_messages(req),
                        params,
                        r,
                        "red",
                        seed=[self.config.seed, r, i, k, attempt],
                        cell=cell_key(req.cell),
                        k=k,
                        attempt=attempt,
                    )
                    for i, (req, k) in enumerate(pending)
                ]
                results = await self._run_phase(model, plan, judged=False)
                retry = []
                for (req, k), spec in zip(pending, plan, strict=True):
                    raw = results[spec.key].completions[0].text
                    draft = read_draft(raw)
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

    def _filter(
        self, drafts: Sequence[tuple[RedRequest, str]], diversity: bool
    ) -> tuple[list[tuple[RedRequest, str]], dict[str, int]]:
        """Global novelty against the archive (DART) or exact de-duplication only (MART)."""
        accepted: list[tuple[RedRequest, str]] = []
        batch = DiversityArchive(self.embedder, self.config.max_cosine, self.config.max_bleu)
        duplicates = semantic = lexical = 0
        novelties = self.archive.score([text for _, text in drafts]) if diversity else []
        seen: set[str] = set()
        for i, (req, text) in enumerate(drafts):
            norm = " ".join(text.lower().split())
            if norm in seen or (diversity and novelties[i].duplicate):
                duplicates += 1
                continue
            seen.add(norm)
            if diversity:
                novelty = novelties[i]
                [within] = batch.accept([text], [cell_key(req.cell)])
                if not (novelty.novel and within.novel):
                    worst = novelty if not novelty.novel else within
                    if worst.max_cosine > self.config.max_cosine:
                        semantic += 1
                    else:
                        lexical += 1
                    continue
            accepted.append((req, text))
        return accepted, {
            "rejected_duplicate": duplicates,
            "rejected_semantic": semantic,
            "rejected_lexical": lexical,
            "accepted": len(accepted),
        }

    async def _query_target(
        self, r: int, accepted: Sequence[tuple[RedRequest, str]]
    ) -> list[Candidate]:
        params = GenerationParams(
            max_tokens=self.config.target_max_tokens, temperature=self.config.target_temperature
        )
        plan: list[AttemptSpec] = []
        candidates: list[Candidate] = []
        for req, text in accepted:
            key = content_hash([r, req.behavior.id, text])
            candidates.append(Candidate(key, req.behavior.id, req.cell, text, _request_json(req)))
            for k in range(self.config.k_tgt):
                plan.append(
                    _spec(
                        req.behavior.id,
                        "red",
                        [Message(role="user", content=text)],
                        params,
                        r,
                        "attack",
                        seed=[self.config.seed, key, k],
                        candidate=key,
                        cell=cell_key(req.cell),
                        sample=k,
                    )
                )
        async with self.target.chat_model(n_seq_max=self.config.concurrency) as model:
            results = await self._run_phase(model, plan, judged=True)
        by_key = {c.key: c for c in candidates}
        for spec in plan:
            _tally(by_key[spec.meta["candidate"]], results[spec.key])
        return candidates

    # -- stage 4: red update ----------------------------------------------------------------

    def _learn_from(self, candidates: Sequence[Candidate]) -> None:
        """Update the archive, cell statistics and last-attack memory from a round."""
        for c in candidates:
            s = self.stats.get(c.cell, CellStats())
            success = c.unsafe > 0
            self.stats[c.cell] = CellStats(
                s.successes + int(success), s.trials + 1, s.archived + int(success)
            )
            if c.answers:
                self.last_attack[c.behavior_id] = (c.text, c.answers[0][0])
        winners = [c for c in candidates if c.unsafe > 0]
        self.archive.add([c.text for c in winners], [cell_key(c.cell) for c in winners])

    async def _train_red(self, r: int, candidates: Sequence[Candidate]) -> None:
        winners = [c for c in candidates if c.unsafe > 0]
        payload: dict[str, Any] = {"examples": len(winners)}
        if winners:
            self.say(f"  training the red model on {len(winners)} successful attacks")
            examples = [
                SFTExample(
                    messages=tuple(red_messages(_request_from(c.request, self.behaviors))),
                    response=f"<attack>{c.text}</attack>",
                )
                for c in winners
            ]
            payload |= self.red.train(
                examples, self.config.red_lora, f"r{r}", self.config.seed + r, self._steps("red")
            )
        else:
            payload |= _slot_paths(self.red)
        self.store.record_step(self.run_id, f"r{r}/red-train", payload)

    # -- stage 5: target active learning ----------------------------------------------------

    async def _train_target(self, r: int, candidates: Sequence[Candidate]) -> None:
        _, active = self.config.flags
        outcomes = [PromptOutcome(c.key, c.unsafe, c.scored) for c in candidates]
        if active:
            budget = max(1, math.ceil(self.config.budget_fraction * len(candidates)))
            chosen = select_uncertain(outcomes, budget)
        else:
            chosen = select_all_unsafe(outcomes)
        by_key = {c.key: c for c in candidates}
        selected = [by_key[o.key] for o in chosen]
        answers, distilled = await self._safe_answers(r, selected)
        examples = [
            SFTExample(messages=(Message(role="user", content=c.text),), response=answers[c.key])
            for c in selected
            if c.key in answers
        ]
        replay = await self._replay_examples()
        replay = replay[: math.floor(self.config.replay_ratio * len(examples))]
        payload: dict[str, Any] = {
            "selected": [c.key for c in selected],
            "with_safe_answer": len(examples),
            "distilled": distilled,
            "replay": len(replay),
        }
        self.say(
            f"  active learning picked {len(selected)} prompts; {len(examples)} have a safe "
            f"answer ({distilled} by context distillation); {len(replay)} replay examples"
        )
        if examples:
            payload |= self.target.train(
                examples + replay,
                self.config.target_lora,
                f"r{r}",
                self.config.seed + r,
                self._steps("target"),
            )
        else:
            payload |= _slot_paths(self.target)
        self.store.record_step(self.run_id, f"r{r}/target-train", payload)

    def _best(self, answers: Sequence[tuple[str, float | None, str]]) -> str | None:
        return best_safe_answer(
            answers,
            self.config.safe_threshold,
            self.config.helpful_threshold,
            helpfulness,
            refusals_only=self.config.safe_answers == "refusal",
        )

    async def _safe_answers(
        self, r: int, selected: Sequence[Candidate]
    ) -> tuple[dict[str, str], int]:
        """Best own safe answer per prompt; for those without one, the best of K_tgt answers
        written under the safety system prompt (context distillation). In round 1 with
        ``distill_first_round`` every prompt is distilled. A prompt with no passing answer
        either way is left out of training (counted in the step record)."""
        own = not (r == 1 and self.config.distill_first_round)
        answers = {c.key: a for c in selected if own and (a := self._best(c.answers)) is not None}
        missing = [c for c in selected if c.key not in answers]
        if not missing:
            return answers, 0
        params = GenerationParams(max_tokens=self.config.target_max_tokens, temperature=0.7)
        system = Message(role="system", content=self.config.safety_prompt)
        plan = [
            _spec(
                c.behavior_id,
                "distill",
                [system, Message(role="user", content=c.text)],
                params,
                r,
                "distill",
                seed=[self.config.seed, c.key, k],
                candidate=c.key,
                sample=k,
            )
            for c in missing
            for k in range(self.config.k_tgt)
        ]
        async with self.target.chat_model(n_seq_max=self.config.concurrency) as model:
            results = await self._run_phase(model, plan, judged=True)
        grouped: dict[str, list[tuple[str, float | None, str]]] = defaultdict(list)
        for spec in plan:
            grouped[spec.meta["candidate"]].extend(_answers(results[spec.key]))
        distilled = 0
        for c in missing:
            best = self._best(grouped[c.key])
            if best is not None:
                answers[c.key] = best
                distilled += 1
        return answers, distilled

    async def _replay_examples(self) -> list[SFTExample]:
        """The base target's own answers to benign prompts (self-distillation), generated
        once per run; refusals are left out so replay teaches answering, not refusing."""
        params = GenerationParams(max_tokens=self.config.target_max_tokens, temperature=0.0)
        plan = [
            _spec(
                b.id,
                "replay",
                [Message(role="user", content=b.text)],
                params,
                0,
                "replay",
                seed=[b.id],
            )
            for b in self.data.replay
        ]
        base = ModelSlot("target", self.config.target, self.workdir)
        async with base.chat_model(n_seq_max=self.config.concurrency) as model:
            results = await self._run_phase(model, plan, judged=False)
        examples = []
        for spec in plan:
            text = results[spec.key].completions[0].text
            if results[spec.key].error is None and not read_response(text).refused:
                examples.append(SFTExample(messages=spec.messages, response=text))
        return examples

    # -- stage 6: evaluation ----------------------------------------------------------------

    async def _evaluate(self, r: int) -> None:
        plan = _eval_plan(self.data, self.config, r)
        async with self.target.chat_model(n_seq_max=self.config.concurrency) as model:
            results = await self._run_phase(model, plan, judged=True)
        scores = evaluate_round([results[s.key] for s in plan])
        self.store.record_step(self.run_id, f"r{r}/eval", scores)
        self.say(
            f"  evaluation after round {r}: "
            + ", ".join(f"{name} {rate_line(scores[name])}" for name in sorted(scores))
        )

    async def _final_red_eval(self) -> None:
        """Attacks from the final red model on held-out intents, against base and final target."""
        rng = random.Random(self.config.seed + 7)
        styles = sorted(ATTACK_STYLES)
        requests = [
            RedRequest(with_cat, (with_cat.category, rng.choice(styles)))
            for with_cat in (with_category(b) for b in self.data.held_out[: self.config.n_red_eval])
        ]
        self.say(f"final red-team evaluation on {len(requests)} held-out intents")
        drafts, _ = await self._write_attacks(self.config.iterations + 1, requests)
        firsts: dict[str, str] = {}
        for req, text in drafts:
            firsts.setdefault(req.behavior.id, text)
        params = GenerationParams(max_tokens=self.config.target_max_tokens, temperature=0.0)
        payload: dict[str, Any] = {"attacks": len(firsts)}
        base = ModelSlot("target", self.config.target, self.workdir)
        for name, slot in (("base", base), ("final", self.target)):
            plan = [
                _spec(
                    bid,
                    "final-red",
                    [Message(role="user", content=text)],
                    params,
                    self.config.iterations + 1,
                    f"final-red-{name}",
                    seed=[bid],
                )
                for bid, text in sorted(firsts.items())
            ]
            async with slot.chat_model(n_seq_max=self.config.concurrency) as model:
                results = await self._run_phase(model, plan, judged=True)
            payload[name] = evaluate_round([results[s.key] for s in plan])["vr_held_out"]
        self.store.record_step(self.run_id, "final/red-eval", payload)

    # -- plumbing ---------------------------------------------------------------------------

    def _steps(self, role: str) -> Callable[[StepInfo], None]:
        """A training progress callback that says about ten lines per run."""

        def show(info: StepInfo) -> None:
            every = max(1, info.total_steps // 10)
            if info.step % every == 0 or info.step == info.total_steps:
                self.say(
                    f"    {role} LoRA step {info.step}/{info.total_steps}: loss {info.loss:.3f}, "
                    f"{info.elapsed_s:.0f} s"
                )

        return show

    async def _run_phase(
        self, model: ChatModel, plan: Sequence[AttemptSpec], *, judged: bool
    ) -> dict[str, AttemptResult]:
        engine = Engine(
            self.store, self.run_id, concurrency=self.config.concurrency, progress=self.progress
        )
        executor = target_executor(
            model, [self.judge] if judged else [], self.behaviors, store=self.store
        )
        outcome = await engine.run(plan, executor)
        if outcome.status != "finished":
            raise StageStopped(outcome.status, self.run_id)
        wanted = {s.key for s in plan}
        return {
            a.spec.key: a for a in self.store.iter_attempts(self.run_id) if a.spec.key in wanted
        }

    def _replay_attacks(self, payload: dict[str, Any]) -> list[Candidate]:
        return [
            Candidate(
                key=c["key"],
                behavior_id=c["behavior_id"],
                cell=(c["cell"][0], c["cell"][1]),
                text=c["text"],
                request=c["request"],
                unsafe=c["unsafe"],
                scored=c["scored"],
                answers=[(a[0], a[1], a[2]) for a in c["answers"]],
            )
            for c in payload["candidates"]
        ]


def _spec(
    behavior_id: str,
    attack: str,
    messages: Sequence[Message],
    params: GenerationParams,
    r: int,
    phase: str,
    *,
    seed: list[Any],
    sample: int = 0,
    **meta: Any,
) -> AttemptSpec:
    sampled = params.model_copy(update={"seed": int(content_hash(seed)[:8], 16)})
    return AttemptSpec(
        behavior_id=behavior_id,
        attack=attack,
        messages=tuple(messages),
        sample=sample,
        params=sampled,
        meta={"round": r, "phase": phase, **meta},
    )


def _eval_plan(data: DartData, config: DartConfig, r: int) -> list[AttemptSpec]:
    params = GenerationParams(max_tokens=config.target_max_tokens, temperature=0.0)
    groups = (("held_out", data.held_out), ("public", data.public), ("benign", data.benign))
    return [
        _spec(
            b.id,
            "direct",
            [Message(role="user", content=b.text)],
            params,
            r,
            f"eval-{group}",
            seed=[b.id],
            group=group,
        )
        for group, behaviors in groups
        for b in behaviors
    ]


def _answers(result: AttemptResult) -> list[tuple[str, float | None, str]]:
    if result.error is not None or not result.verdicts:
        return []
    verdict = result.verdicts[0]
    return [(result.completions[-1].text, verdict.p_unsafe, str(verdict.label))]


def _tally(candidate: Candidate, result: AttemptResult) -> None:
    for answer in _answers(result):
        candidate.answers.append(answer)
        if answer[2] != Label.UNSCORABLE:
            candidate.scored += 1
            candidate.unsafe += int(answer[2] == Label.UNSAFE)


def _request_json(req: RedRequest) -> dict[str, Any]:
    return {
        "behavior_id": req.behavior.id,
        "cell": list(req.cell),
        "previous_attack": req.previous_attack,
        "target_response": req.target_response,
    }


def _request_from(data: dict[str, Any], behaviors: dict[str, Behavior]) -> RedRequest:
    return RedRequest(
        behaviors[data["behavior_id"]],
        (data["cell"][0], data["cell"][1]),
        data["previous_attack"],
        data["target_response"],
    )


def _candidate_json(c: Candidate) -> dict[str, Any]:
    return {
        "key": c.key,
        "behavior_id": c.behavior_id,
        "cell": list(c.cell),
        "text": c.text,
        "request": c.request,
        "unsafe": c.unsafe,
        "scored": c.scored,
        "answers": [list(a) for a in c.answers],
    }


def _paths(payload: dict[str, Any]) -> dict[str, str | None]:
    return {"adapter_dir": payload.get("adapter_dir"), "adapter_gguf": payload.get("adapter_gguf")}


def _slot_paths(slot: ModelSlot) -> dict[str, str | None]:
    return {
        "adapter_dir": str(slot.adapter_dir) if slot.adapter_dir else None,
        "adapter_gguf": str(slot.adapter_gguf) if slot.adapter_gguf else None,
    }


async def run_dart(
    config: DartConfig,
    store: RunStore,
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
    with ``resume`` continues it.
    """
    from sparring.embeddings import default_embedder
    from sparring.judges import resolve_judge

    data = make_splits(config)
    judge = resolve_judge(config.judge)
    if resume is None:
        run_id = store.create_run(
            "dart",
            config.model_dump(mode="json"),
            config.seed,
            {"target": config.target, "red": config.red, "judge": judge.id},
        )
        store.add_behaviors(run_id, data.all)
    else:
        run_id = resume
    folder = workdir or store.path.parent / "dart-checkpoints" / run_id
    loop = DartLoop(config, store, run_id, data, judge, default_embedder(), folder, progress, say)
    try:
        await loop.run()
    finally:
        await judge.aclose()
    return run_id
