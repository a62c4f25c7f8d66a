"""``sparring dart export``: a DART run's hardened target as a model file every command takes.

The run is written into a real SQLite store with the store's API, step by step as the loop
records it, around a real adapter exported for the packaged SmolLM2-135M (a tiny DART run
takes minutes; test_dart_loop runs one). The exported spec is then used by ``sparring chat``
and ``sparring scan`` as a user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp")
pytest.importorskip("gguf")

from lora_builders import random_adapter
from sparring import api
from sparring.cli.main import run
from sparring.dart.config import dart_config
from sparring.dart.splits import make_splits
from sparring.models import zoo
from sparring.models.options import ModelOptions
from sparring.models.provenance import prompt_digest, trained_prompts
from sparring.stats import rate
from sparring.store import RunStore

pytestmark = pytest.mark.slow

SPARRING = Path(sys.executable).with_name("sparring")
TARGET = "builtin/smollm2-135m"
EXPORTED = {
    "model.gguf",
    "adapter.gguf",
    "adapter.json",
    "MODEL_CARD.md",
    "card.json",
    "trained_prompts.json",
}
DART_CONFIG: dict[str, Any] = {"method": "dart", "target": TARGET, "red": TARGET, "n_tasks": 2}
ATTACKS: dict[str, Any] = {
    "candidates": [],
    "red_drafts": 8,
    "red_refusals": 1,
    "red_unparsed": 0,
    "rejected_duplicate": 0,
    "rejected_semantic": 1,
    "rejected_lexical": 1,
    "accepted": 6,
    "successful": 3,
    "red_asr": rate(3, 6).to_dict(),
}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different adapters for the packaged SmolLM2-135M (rounds 1 and 2)."""
    base = zoo.gguf_path("smollm2-135m")
    return (
        random_adapter(tmp_path_factory.mktemp("r1"), base, std=0.05, seed=1),
        random_adapter(tmp_path_factory.mktemp("r2"), base, std=0.05, seed=2),
    )


def _eval(violations: int, refusals: int) -> dict[str, Any]:
    return {
        "vr_held_out": rate(violations, 100).to_dict(),
        "vr_public": rate(2, 20).to_dict(),
        "over_refusal": rate(refusals, 80).to_dict(),
    }


def dart_run(
    store_path: Path,
    adapters: list[Path | None],
    *,
    rejected: frozenset[int] = frozenset(),
    trained: tuple[str, ...] = (),
    scale: float = 1.0,
) -> str:
    """A stored DART run of ``len(adapters)`` rounds; round r trained ``adapters[r-1]``
    (None: nothing to train) on the prompts ``trained`` (with a refusal each), the gate
    rejected the rounds in ``rejected``, and the config's ``target_scale`` is ``scale``."""
    config = DART_CONFIG | {"iterations": len(adapters), "target_scale": scale}
    model_ids = {"target": TARGET, "red": TARGET, "judge": "embedded-minilm@2"}
    with RunStore(store_path) as store:
        run_id = store.create_run("dart", config, 7, model_ids)
        store.record_step(run_id, "r0/eval", _eval(30, 20))
        kept: dict[str, str | None] = {"adapter_dir": None, "adapter_gguf": None}
        for r, adapter in enumerate(adapters, 1):
            paths = {
                "adapter_dir": str(adapter.parent / "peft") if adapter else kept["adapter_dir"],
                "adapter_gguf": str(adapter) if adapter else kept["adapter_gguf"],
            }
            examples = [[prompt, "I won't help with that."] for prompt in trained]
            store.record_step(run_id, f"r{r}/attacks", ATTACKS)
            store.record_step(
                run_id,
                f"r{r}/target-train",
                {"selected": ["a", "b"], "with_safe_answer": 2, "distilled": 0, "replay": 2}
                | {"safety_examples": examples}
                | paths,
            )
            store.record_step(run_id, f"r{r}/eval", _eval(30 - 10 * r, 20 + 5 * r))
            if r in rejected:
                store.record_step(run_id, f"r{r}/gate", {"rejected": True, "kept": kept})
            else:
                kept = paths
        store.finish_run(run_id, "finished")
    return run_id


def sparring(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``sparring`` command in ``cwd`` and capture what it printed."""
    return subprocess.run(
        [str(SPARRING), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_exported_model_is_a_spec_that_chat_and_scan_take(
    adapters: tuple[Path, Path], tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    scan_fields = {"attacks": "direct", "limit": 1}
    harmful, benign = api.scan_behaviors(api.scan_config(scan_fields, None, []))
    run_id = dart_run(store, [adapters[0]], trained=(harmful.text,))
    out = tmp_path / "hardened"
    exported = sparring("dart", "export", run_id, "--out", out, "--store", store, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    spec = exported.stdout.strip()
    assert spec == f"llamacpp/{out.resolve() / 'model.gguf'}"
    assert {p.name for p in out.iterdir()} == EXPORTED
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert (out / "adapter.gguf").read_bytes() == adapters[0].read_bytes()
    info = json.loads((out / "adapter.json").read_text())
    assert info["base"] == {
        "spec": TARGET,
        "file": zoo.gguf_path("smollm2-135m").name,
        "sha256": _sha256(zoo.gguf_path("smollm2-135m")),
    }
    assert info["sha256"] == _sha256(adapters[0]) and info["round"] == 1
    card = json.loads((out / "card.json").read_text())
    assert (card["run"], card["method"], card["seed"], card["round"]) == (run_id, "dart", 7, 1)
    assert card["merged"]["types"] == {"Q4_1->F16": 6}
    assert [row["method"] for row in card["table"]] == ["base", "dart"]
    assert card["table"][1]["vr_held_out"]["k"] == 20
    assert card["target_scale"] == 1.0
    text = (out / "MODEL_CARD.md").read_text()
    assert run_id in text and "DART table" in text and spec in text
    assert "target_scale" not in text
    # It trained on the harmful prompt above and could have on each of the replay pool's.
    assert card["trained_suites"] == ["hh-harmless", "builtin-benign", "builtin-tasks"]
    pool = [b.text for b in make_splits(dart_config(DART_CONFIG)).replay]
    record = trained_prompts(spec, ModelOptions())
    assert record is not None
    assert record.digests == {prompt_digest(t) for t in [*pool, harmful.text]}
    assert harmful.text not in record.path.read_text()  # digests only
    seen_benign = record.seen([benign.text])

    chat = sparring("chat", spec, "Say hello.", "--max-tokens", "8", cwd=tmp_path)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip()
    scan = sparring(
        "scan",
        "--target",
        spec,
        "--attacks",
        "direct",
        "--limit",
        "1",
        "--judge",
        "rules",
        "--max-tokens",
        "8",
        "--no-progress",
        "--store",
        tmp_path / "scans.sqlite",
        "--out",
        tmp_path / "scan-report",
        cwd=tmp_path,
    )
    assert scan.returncode == 0, scan.stderr
    assert f"trained on 1 of the 1 harmful and {seen_benign} of the 1 benign" in scan.stderr
    with RunStore(tmp_path / "scans.sqlite") as scans:
        [record] = scans.list_runs()
        assert record.model_ids["target"] == spec
        assert all(a.error is None for a in scans.attempts(record.id))


def test_the_export_is_the_target_of_the_last_round_the_gate_kept(
    adapters: tuple[Path, Path], tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite"
    run_id = dart_run(store, list(adapters), rejected=frozenset({2}), scale=0.5)
    out = tmp_path / "empty"
    out.mkdir()  # an empty folder is taken as a new one
    with api.open_store(store) as opened:
        exported = api.dart_export(opened, run_id, out)
    assert (out / "adapter.gguf").read_bytes() == adapters[0].read_bytes()
    assert exported.card["round"] == 1 and exported.card["rounds_evaluated"] == 2
    assert exported.card["table"][1]["kept_round"] == 1
    # The adapter file already applies the scale; the card says so.
    assert (
        "round 1's LoRA update at `target_scale` 0.5 folded" in (out / "MODEL_CARD.md").read_text()
    )


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a command that must exit 2."""
    code = run(args)
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == api.EXIT_USAGE
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_a_run_that_trained_no_target_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "runs.sqlite"
    run_id = dart_run(store, [None, None])
    out = tmp_path / "hardened"
    line = _refused(["dart", "export", run_id, "--out", str(out), "--store", str(store)], capsys)
    assert f"run {run_id} has no trained target adapter" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.sqlite"]


def test_an_unknown_or_scan_run_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "runs.sqlite"
    with RunStore(store) as opened:
        scan_id = opened.create_run("scan", {}, 0, {"target": TARGET})
    args = ["--out", str(tmp_path / "hardened"), "--store", str(store)]
    assert "no run nope" in _refused(["dart", "export", "nope", *args], capsys)
    assert "is a scan run, not a dart run" in _refused(["dart", "export", scan_id, *args], capsys)
    assert not (tmp_path / "hardened").exists()


def test_an_out_folder_that_holds_files_is_one_line_and_left_alone(
    adapters: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "runs.sqlite"
    run_id = dart_run(store, [adapters[0]])
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    line = _refused(["dart", "export", run_id, "--out", str(out), "--store", str(store)], capsys)
    assert f"--out {out} exists and is not an empty folder" in line
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
