"""Two tiny DART rounds end to end with the packaged SmolLM2-135M, and a kill mid-round.

Everything is real: llama.cpp generation (base GGUF plus the round's exported adapter),
LoRA training in transformers + peft, the embedded judge, the SQLite store, public data
from ../shared/data. The uninterrupted run is the reference the killed-and-resumed one is
checked against. Two rounds, because the second starts from what the first left: the
archive, the cell statistics, the last attacks and (when round 1 trained) the adapters.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("llama_cpp")
pytest.importorskip("peft")

from sparring.dart import report
from sparring.dart.config import load_dart_config
from sparring.dart.evaluation import is_evaluation
from sparring.dart.loop import run_dart
from sparring.store import RunStore
from sparring.train import LoRAConfig

TINY: dict[str, Any] = {
    "method": "dart",
    "target": "builtin/smollm2-135m",
    "red": "builtin/smollm2-135m",
    "iterations": 2,
    "n_seeds": 12,
    "n_eval": 8,
    "n_public": 4,
    "n_benign": 4,
    "n_replay": 4,
    "n_borderline": 4,
    "n_validation": 4,
    "n_validation_benign": 4,
    "min_replay": 4,
    "min_safety": 4,
    "red_requests": 4,
    "k_red": 2,
    "red_max_tokens": 40,
    "k_tgt": 2,
    "target_max_tokens": 24,
    "budget_fraction": 0.5,
    "anchor_intents": True,
    "target_lora": {"epochs": 1, "batch_size": 4, "max_len": 96},
    "target_scale": 0.5,
    "replay_repair": True,
    "repair_blend": [0.5],
    "red_lora": {"epochs": 1, "batch_size": 4, "max_len": 128},
    "concurrency": 8,
}
ROUND = ("attacks", "red-train", "target-train", "eval")
STAGES = ("r0/eval", *(f"r{r}/{s}" for r in (1, 2) for s in ROUND), "final/red-eval")
CLI = "from sparring.cli import main; main()"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dart-config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def reference(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An uninterrupted tiny run: (store path, run id)."""
    store_path = tmp_path_factory.mktemp("dart-ref") / "runs.sqlite"
    lines: list[str] = []
    with RunStore(store_path) as store:
        run_id = asyncio.run(
            run_dart(load_dart_config(config_file), store, progress=False, say=lines.append)
        )
    assert any(line.startswith("round 2/2") for line in lines)
    with RunStore(store_path) as store:
        assert store.get_run(run_id).status == "finished"
    return store_path, run_id


def steps(store_path: Path, run_id: str) -> dict[str, dict[str, Any]]:
    with RunStore(store_path) as store:
        return store.steps(run_id)


def test_a_round_stores_every_stage_with_consistent_counts(reference: tuple[Path, str]) -> None:
    store_path, run_id = reference
    done = steps(store_path, run_id)
    assert set(STAGES) <= set(done)
    attacks = done["r1/attacks"]
    # Every request's K_red drafts end as an attack, a refusal, unparsed or given up.
    assert attacks["red_drafts"] + attacks["red_given_up"] == TINY["red_requests"] * TINY["k_red"]
    filtered = (
        attacks["accepted"]
        + attacks["rejected_duplicate"]
        + attacks["rejected_semantic"]
        + attacks["rejected_lexical"]
    )
    assert filtered == attacks["red_drafts"]
    assert len(attacks["candidates"]) == attacks["accepted"] == attacks["sent"]
    for candidate in attacks["candidates"]:
        assert len(candidate["answers"]) == TINY["k_tgt"]
        assert 0 <= candidate["unsafe"] <= candidate["scored"] <= TINY["k_tgt"]
    assert attacks["successful"] == sum(c["unsafe"] > 0 for c in attacks["candidates"])
    target = done["r1/target-train"]
    keys = {c["key"] for c in attacks["candidates"]}
    assert set(target["selected"]) <= keys
    assert target["with_safe_answer"] <= len(target["selected"])
    # Each selected attack's plain intent is anchored at most once, and only in a round
    # that has a safe answer to learn.
    by_key = {c["key"]: c for c in attacks["candidates"]}
    intents = {by_key[key]["behavior_id"] for key in target["selected"]}
    assert target["anchored"] <= (len(intents) if target["with_safe_answer"] else 0)
    # Its safety examples are stored for later rounds' rehearsal, beside the trainer's record.
    new = target["with_safe_answer"] + target["anchored"]
    assert len(target["safety_examples"]) == new
    assert all(isinstance(text, str) for pair in target["safety_examples"] for text in pair)
    with RunStore(store_path) as store:
        texts = {b.id: b.text for b in store.behaviors(run_id)}
    anchored = [prompt for prompt, _ in target["safety_examples"][target["with_safe_answer"] :]]
    assert set(anchored) <= {texts[bid] for bid in intents}
    second = done["r2/target-train"]
    second_new = second["with_safe_answer"] + second["anchored"]
    if second["with_safe_answer"] > 0 and second_new < TINY["min_safety"]:
        assert second["rehearsed"] == min(TINY["min_safety"] - second_new, new)
    if target["with_safe_answer"]:
        assert Path(target["adapter_gguf"]).is_file()
        # The target generates (and is evaluated and exported) at target_scale.
        import gguf

        reader = gguf.GGUFReader(target["adapter_gguf"])
        alpha = reader.fields["adapter.lora.alpha"].contents()
        assert alpha == pytest.approx(TINY["target_scale"] * LoRAConfig().alpha)
        # The trained target was asked the validation prompts first; the round repaired only
        # if its over-refusal failed the gate's check there. The repair asked every replay
        # prompt with an answer to train on; if the trained target refused some, the round
        # trained again with them added, then tried the blend of both adapters and ends with
        # the blend if it passed, else with the repaired adapter.
        blend = target["blend"]
        weights = [check["weight"] for check in blend["checks"]]
        assert [check["passes"] for check in blend["checks"]][:-1] == [False] * (len(weights) - 1)
        if blend["checks"][0]["passes"]:
            assert "repair" not in target and blend["weight"] == 1.0 and weights == [1.0]
        else:
            repair = target["repair"]
            assert 0 < repair["asked"] <= TINY["n_replay"] + TINY["n_borderline"]
            if repair["refused"]:
                assert repair["train"]["examples"] == target["examples"] + repair["refused"]
                assert weights == [1.0, 0.5] and blend["weight"] in (0.5, 0.0)
                ends = "target-r1-blend0.5" if blend["weight"] else "target-r1-repair"
                assert Path(target["adapter_gguf"]).parent.name == ends
    # A round that trains writes a new adapter; one with nothing to learn keeps the last.
    # (Whether the tiny run trains in both rounds depends on sampling; test_dart_slots
    # trains a slot twice for certain.)
    # The target's last adapter is round 1's unless the gate rejected round 1.
    gate = done["r1/gate"]
    for role in ("red", "target"):
        first, second = done[f"r1/{role}-train"], done[f"r2/{role}-train"]
        if role == "target" and gate["rejected"]:
            first = gate["kept"]
        if second.get("steps"):
            assert Path(second["adapter_gguf"]).is_file()
            assert second["adapter_dir"] != first["adapter_dir"]
        else:
            assert second["adapter_dir"] == first["adapter_dir"]
    evaluation = done["r1/eval"]
    assert evaluation["vr_held_out"]["n"] + evaluation["vr_held_out"]["errors"] <= TINY["n_eval"]
    assert evaluation["over_refusal"]["n"] <= TINY["n_benign"]


def test_every_stored_attempt_has_a_verdict_or_an_error(reference: tuple[Path, str]) -> None:
    store_path, run_id = reference
    with RunStore(store_path) as store:
        results = store.attempts(run_id)
    assert results
    for result in results:
        judged = result.spec.meta["phase"] not in ("red", "replay", "repair")
        assert result.error is not None or bool(result.verdicts) == judged


def test_the_table_has_a_base_and_a_dart_row(reference: tuple[Path, str], tmp_path: Path) -> None:
    store_path, run_id = reference
    with RunStore(store_path) as store:
        runs = [report.load_method_run(store, run_id)]
    rows = report.table_rows(runs)
    assert [row["method"] for row in rows] == ["base", "dart"]
    html = report.write_html(tmp_path / "dart.html", runs).read_text()
    assert "<svg" in html and "dart" in html


def test_held_out_evaluations_are_graded_by_both_judges_and_every_round_gated(
    reference: tuple[Path, str],
) -> None:
    store_path, run_id = reference
    judges = ["embedded-minilm@2", "refusal-rules@1"]
    with RunStore(store_path) as store:
        graded = {
            tuple(v.judge_id for v in a.verdicts)
            for a in store.attempts(run_id)
            if is_evaluation(a.spec) and a.error is None
        }
        runs = [report.load_method_run(store, run_id)]
    assert graded == {tuple(judges)}
    done = steps(store_path, run_id)
    assert all(isinstance(done[f"r{r}/gate"]["rejected"], bool) for r in (1, 2))
    assert list(done["final/red-eval"]["judges"]["final"]) == judges
    for row in report.table_rows(runs):
        assert list(row["judges"]) == judges
        assert set(row["judges"][judges[1]]["disagreement"]) == {
            "held_out",
            "public",
            "benign",
            "validation",
            "validation_benign",
            "final_red",
        }


def _stored_steps(store: Path) -> set[str]:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
            return {row[0] for row in conn.execute("SELECT name FROM steps")}
    except sqlite3.OperationalError:
        return set()


def _attempts(store_path: Path, run_id: str) -> dict[str, Any]:
    with RunStore(store_path) as store:
        return {
            r.spec.key: [c.model_dump(exclude={"latency_s"}) for c in r.completions]
            for r in store.attempts(run_id)
        }


def test_a_run_killed_mid_round_resumes_with_nothing_lost(
    config_file: Path, reference: tuple[Path, str], tmp_path: Path
) -> None:
    store_path = tmp_path / "runs.sqlite"
    base = [sys.executable, "-c", CLI, "dart", "--store", str(store_path), "--no-progress"]
    run = subprocess.Popen([*base, "--config", str(config_file), "--out", str(tmp_path / "a")])
    try:
        # Kill once round 1's attacks are stored: the red and target training are ahead.
        while "r1/attacks" not in _stored_steps(store_path):
            assert run.poll() is None, "the run ended before the test could kill it"
            time.sleep(0.2)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    with RunStore(store_path) as store:
        [record] = store.list_runs()
    before = _attempts(store_path, record.id)
    resumed = subprocess.run(
        [*base, "--resume", record.id, "--out", str(tmp_path / "b")], timeout=600, check=False
    )
    assert resumed.returncode == 0
    after = _attempts(store_path, record.id)
    # Nothing stored before the kill was lost or redone: same keys, same answers.
    assert {k: after[k] for k in before} == before
    done = steps(store_path, record.id)
    assert set(STAGES) <= set(done)
    # Same seed and config as the uninterrupted run: the same red requests and the same
    # evaluation prompts. (Texts may differ: llama.cpp's sums depend on which sequences
    # share a batch, so sampled drafts can drift between two runs; greedy ones rarely.)
    ref = steps(*reference)
    assert done["r1/attacks"]["red_requests"] == ref["r1/attacks"]["red_requests"]
    assert done["r1/eval"]["vr_held_out"]["n"] + done["r1/eval"]["vr_held_out"]["errors"] == (
        ref["r1/eval"]["vr_held_out"]["n"] + ref["r1/eval"]["vr_held_out"]["errors"]
    )
