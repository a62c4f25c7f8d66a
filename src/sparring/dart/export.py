"""Export a DART run's hardened target as a model anyone can use: one merged GGUF, the
adapter with its base named by SHA-256, and a model card holding the run's table.

The exported model is the target of the last round the run kept (a round its over-refusal
gate rejected left the target as it was), the one DART's table reports, so the card's
held-out table describes exactly the weights in the folder. ``model.gguf`` is a plain GGUF
that every command reaches with the spec ``llamacpp/DIR/model.gguf``; ``adapter.gguf`` is
the same update for the base GGUF that ``adapter.json`` names by hash. Beside them,
``trained_prompts.json`` holds the digests of every prompt the target could have trained on
(so a scan of the folder's model says which of its prompts are not out of sample); listing
them draws the run's splits again, so the run's data must be where it was. The
folder is built beside its destination and renamed into place, so it is complete or absent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from sparring.dart import report
from sparring.dart.config import dart_config
from sparring.dart.slots import base_gguf
from sparring.dart.splits import make_splits
from sparring.errors import ConfigError, ModelNotFoundError
from sparring.models.provenance import TRAINED_PROMPTS_FILE, TrainedPrompts
from sparring.store import RunRecord, Store
from sparring.train import MergeReport, merge_adapter

__all__ = [
    "ADAPTER_FILE",
    "ADAPTER_INFO",
    "CARD_FILE",
    "CARD_JSON",
    "MODEL_FILE",
    "DartExport",
    "export_run",
]

MODEL_FILE = "model.gguf"
ADAPTER_FILE = "adapter.gguf"
ADAPTER_INFO = "adapter.json"
CARD_FILE = "MODEL_CARD.md"
CARD_JSON = "card.json"
_CARD_WIDTH = 240
"""Characters per line of the tables in the card (the per-round counts have 16 columns)."""


@dataclass(frozen=True)
class DartExport:
    """What ``export_run`` wrote."""

    folder: Path
    spec: str
    """The model spec of the merged model, e.g. ``llamacpp//abs/DIR/model.gguf``."""
    card: dict[str, Any]
    """The contents of ``card.json``."""


def export_run(
    store: Store, run_id: str, out_dir: Path, say: Callable[[str], None] = lambda line: None
) -> DartExport:
    """Write the hardened target of the DART run ``run_id`` into the new folder ``out_dir``.

    Raises ConfigError when ``out_dir`` exists and is not an empty folder, or when no round
    the run kept trained the target; StoreError for a run id the store lacks or that is no
    DART run; ModelNotFoundError when the adapter file is gone.
    """
    out_dir = Path(out_dir)
    _check_destination(out_dir)
    record = store.get_run(run_id, kind="dart")
    run = report.load_method_run(store, run_id)
    adapter, rnd = _final_adapter(record, run)
    target = str(record.config.get("target", ""))
    base = base_gguf(target)
    say(f"merging the round-{rnd} adapter into {target} ({base.name})")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent)
        )
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create it ({exc.strerror})") from exc
    try:
        merged = merge_adapter(base, adapter, staging / MODEL_FILE)
        shutil.copyfile(adapter, staging / ADAPTER_FILE)
        folder = out_dir.resolve()
        base_info = {"spec": target, "file": base.name, "sha256": _sha256(base)}
        adapter_info = {
            "schema": 1,
            "file": ADAPTER_FILE,
            "sha256": _sha256(adapter),
            "scale": 1.0,
            "round": rnd,
            "base": base_info,
        }
        texts, suites = _trained_prompts(record, run, rnd)
        card = _card(record, run, rnd, folder, base_info, adapter_info, merged)
        card["trained_suites"] = suites
        _write_json(staging / ADAPTER_INFO, adapter_info)
        _write_json(staging / CARD_JSON, card)
        TrainedPrompts.write(staging / TRAINED_PROMPTS_FILE, texts, suites)
        (staging / CARD_FILE).write_text(_card_markdown(card, run), encoding="utf-8")
        os.replace(staging, out_dir)  # over an empty folder too, as POSIX allows
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"--out {out_dir}: cannot write the export ({exc.strerror})") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return DartExport(folder=out_dir, spec=card["merged"]["spec"], card=card)


def _check_destination(out_dir: Path) -> None:
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        return
    if out_dir.exists():
        raise ConfigError(
            f"--out {out_dir} exists and is not an empty folder; give a new folder for the "
            "exported model"
        )


def _final_adapter(record: RunRecord, run: report.MethodRun) -> tuple[Path, int]:
    """The target adapter of the run's last kept round (the one its table reports: later
    rounds the over-refusal gate rejected left the target as it was), and that round."""
    kept = report.kept_round(run)
    trained = run.rounds[kept].get("target_train") if kept else None
    path = (trained or {}).get("adapter_gguf")
    if not path:
        evaluated = max(len(run.rounds) - 1, 0)
        hint = (
            f"; resume it with: sparring dart --resume {record.id}"
            if record.state != "finished"
            else ""
        )
        raise ConfigError(
            f"run {record.id} has no trained target adapter (of {evaluated} evaluated "
            f"round(s), none trained a target that was kept); nothing to export{hint}"
        )
    if not Path(path).is_file():
        raise ModelNotFoundError(
            f"run {record.id}: its target adapter {path} is gone; the run's checkpoints "
            "folder was moved or deleted"
        )
    return Path(path), kept


def _trained_prompts(
    record: RunRecord, run: report.MethodRun, rnd: int
) -> tuple[list[str], list[str]]:
    """The prompts the exported target could have trained on, and their suites: the safety
    examples of rounds 1 to ``rnd`` (attacks and the intents they were written from), and
    the run's replay pool (each round replays a sample of it)."""
    config = dart_config(record.config)
    texts = [
        prompt
        for past in run.rounds[1 : rnd + 1]
        for prompt, _ in (past.get("target_train") or {}).get("safety_examples", [])
    ]
    texts += [b.text for b in make_splits(config).replay]
    suites = [config.seeds_source, config.replay_suite]
    suites += [
        name
        for name, n in (
            (config.borderline_suite, config.n_borderline),
            (config.task_suite, config.n_tasks),
        )
        if n
    ]
    return texts, suites


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _card(
    record: RunRecord,
    run: report.MethodRun,
    rnd: int,
    folder: Path,
    base: dict[str, Any],
    adapter: dict[str, Any],
    merged: MergeReport,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "run": record.id,
        "method": run.method,
        "seed": record.seed,
        "status": record.state,
        "judge": record.model_ids.get("judge"),
        "second_judge": record.model_ids.get("second_judge"),
        "round": rnd,
        "rounds_evaluated": len(run.rounds) - 1,
        "iterations": record.config.get("iterations"),
        "target_scale": record.config.get("target_scale", 1.0),
        "base": base,
        "adapter": {k: v for k, v in adapter.items() if k not in ("schema", "base")},
        "folder": str(folder),
        "merged": {
            "file": MODEL_FILE,
            "spec": f"llamacpp/{folder / MODEL_FILE}",
            "tensors": merged.tensors,
            "updated_tensors": merged.merged,
            "types": merged.types,
            "size_bytes": merged.size_bytes,
        },
        "table": report.table_rows([run]),
    }


def _card_markdown(card: dict[str, Any], run: report.MethodRun) -> str:
    tables = Console(record=True, width=_CARD_WIDTH, file=io.StringIO(), color_system=None)
    report.render_console([run], tables)
    types = ", ".join(
        f"{how.replace('->', ' → ')} ({n})" for how, n in sorted(card["merged"]["types"].items())
    )
    base, adapter, merged = card["base"], card["adapter"], card["merged"]
    scale = card["target_scale"]
    at_scale = "" if scale == 1 else f" at `target_scale` {scale:g}"
    return "\n".join(
        [
            f"# {base['spec']} hardened by {card['method']} (run {card['run']})",
            "",
            f"- Run: `{card['run']}`, method {card['method']}, seed {card['seed']}, status "
            f"{card['status']}; {card['rounds_evaluated']} of {card['iterations']} rounds "
            f"evaluated, the target of round {card['round']} kept; rates judged by "
            f"`{card['judge']}`"
            + (f" and `{card['second_judge']}`." if card["second_judge"] else "."),
            f"- Base model: `{base['spec']}` ({base['file']}, sha256 `{base['sha256']}`).",
            f"- `{merged['file']}`: the base with round {adapter['round']}'s LoRA update"
            f"{at_scale} folded into {merged['updated_tensors']} of its {merged['tensors']} "
            f"tensors, stored as {types}; every other tensor and metadata key is the base's, "
            "byte for byte.",
            f"- `{adapter['file']}` (sha256 `{adapter['sha256']}`): the same update as a "
            f"llama.cpp LoRA adapter, for the base GGUF named in `{ADAPTER_INFO}`.",
            "",
            "## Use it",
            "",
            "```",
            f"sparring chat {merged['spec']} 'Hello'",
            f"sparring scan --target {merged['spec']}",
            "```",
            "",
            f"It trained on prompts of {', '.join(card['trained_suites'])} "
            f"(digests in `{TRAINED_PROMPTS_FILE}`); a scan says how many of its prompts are "
            "among them, since rates on those are not out of sample.",
            "",
            "Or the base with the adapter applied at run time, in a scan config:",
            "",
            "```yaml",
            f"target: {base['spec']}",
            "target_options:",
            f"  adapters: [{{path: {Path(card['folder']) / adapter['file']}}}]",
            "```",
            "",
            "## Held-out evaluation",
            "",
            "DART's table for this run: the base target, then the exported one; 95% intervals.",
            "",
            "```text",
            tables.export_text().rstrip(),
            "```",
            "",
        ]
    )
