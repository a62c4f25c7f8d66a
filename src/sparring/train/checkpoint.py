"""Adapters on disk: writing a finished run, reading its record, loading it into a model.

A run directory holds peft's ``adapter_config.json`` and ``adapter_model.safetensors`` and
sparring's ``train_record.json``. It is written under a temporary name and renamed into
place, so a directory that exists is complete: a DART loop that was killed finds either a
whole checkpoint or none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sparring.errors import ConfigError, DataError, MissingPackageError, ModelNotFoundError
from sparring.models.hf import HFModel
from sparring.train.config import RECORD_FILE, TrainRecord

__all__ = [
    "ADAPTER_CONFIG",
    "ModelInput",
    "check_out_dir",
    "load_adapter",
    "quiet_peft",
    "read_record",
    "refuse_lora_layers",
    "save_run",
    "training_packages",
    "unpack_model",
    "write_whole",
]

ADAPTER_CONFIG = "adapter_config.json"
"""peft's adapter settings file; its presence marks an adapter directory."""

ModelInput = HFModel | tuple[Any, Any]
"""An HFModel, or a (transformers causal LM, tokenizer) pair."""


def training_packages() -> tuple[Any, Any]:
    """The ``torch`` and ``peft`` modules; MissingPackageError when either is absent."""
    try:
        import peft
        import torch
    except ImportError as exc:
        raise MissingPackageError("LoRA training", "'sparring[train]'") from exc
    return torch, peft


def unpack_model(
    model: ModelInput,
) -> tuple[Any, Any, contextlib.AbstractContextManager[Any], str]:
    """(model, tokenizer, lock to hold while changing weights, name for the record)."""
    if isinstance(model, HFModel):
        return model.model, model.tokenizer, model.lock, model.id
    base, tokenizer = model
    name = str(getattr(getattr(base, "config", None), "_name_or_path", "") or type(base).__name__)
    return base, tokenizer, contextlib.nullcontext(), name


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence peft's call of a transformers method that transformers 5 renamed (a
    FutureWarning per model wrapped, with nothing for our caller to act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        yield


def check_out_dir(out_dir: Path) -> None:
    """Refuse (ConfigError) an output directory that exists and is not empty."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(
            f"{out_dir}: already exists and is not empty; give train_lora a new output directory"
        )


def refuse_lora_layers(base: Any) -> None:
    """Raise ConfigError when ``base`` already carries LoRA layers (a peft model or a base
    model that peft injected them into): adding another adapter would stack them."""
    import peft
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(base, peft.PeftModel) or any(
        isinstance(m, BaseTunerLayer) for m in base.modules()
    ):
        raise ConfigError(
            "the model already carries LoRA layers; pass the peft model from the earlier run "
            "to train it further, or call .unload() on it to get the plain base model"
        )


def save_run(model: Any, record: TrainRecord, out_dir: Path) -> None:
    """Write the peft ``model``'s adapter and ``record`` into ``out_dir``, all or nothing.

    Raises ConfigError when the directory cannot be written.
    """

    def fill(staging: Path) -> None:
        # The embeddings are frozen; "auto" would look for a hub config to decide that.
        model.save_pretrained(str(staging), save_embedding_layers=False)
        (staging / RECORD_FILE).write_text(record.model_dump_json(indent=2), encoding="utf-8")

    write_whole(out_dir, fill, "the adapter")


def write_whole(out_dir: Path, fill: Callable[[Path], None], what: str) -> None:
    """Write the folder ``out_dir`` whole or not at all: ``fill`` writes into a new staging
    folder beside it, which then takes its place (replacing what was there).

    Raises ConfigError naming ``what`` when the folder cannot be written.
    """
    staging = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        fill(staging)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(
            f"{out_dir}: cannot write {what} ({exc.strerror}); choose a writable folder"
        ) from exc


def read_record(adapter_dir: Path) -> TrainRecord:
    """The record of the run saved in ``adapter_dir``.

    Raises DataError when it is missing (the run did not finish) or unreadable.
    """
    path = Path(adapter_dir) / RECORD_FILE
    try:
        return TrainRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: missing; that training run did not finish, train again") from exc
    except (OSError, ValidationError) as exc:
        raise DataError(f"{path}: unreadable training record; train again ({exc})") from exc


def load_adapter(model: ModelInput, adapter_dir: Path, *, trainable: bool = False) -> Any:
    """Attach the adapter saved in ``adapter_dir`` to a base model; returns the peft model.

    As with training, peft changes the base model in place. ``trainable=True`` loads it for
    further training (pass the result to ``train_lora``); otherwise it is in eval mode.

    Raises ModelNotFoundError when ``adapter_dir`` holds no adapter, ConfigError when the
    model already carries LoRA layers.
    """
    _, peft = training_packages()
    base, _, lock, _ = unpack_model(model)
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise ModelNotFoundError(
            f"{adapter_dir}: no {ADAPTER_CONFIG} there; point at a directory written by train_lora"
        )
    with lock:
        refuse_lora_layers(base)
        with quiet_peft():
            loaded = peft.PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=trainable)
        if not trainable:
            loaded.eval()
    return loaded
