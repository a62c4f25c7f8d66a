"""Finding and loading the weights behind an ``hf/NAME`` spec.

``NAME`` is a transformers model folder, a ``.gguf`` file (transformers dequantises it), the
zoo's GGUF for a builtin model (``builtin/ZOO_NAME``; a hub owner called ``builtin`` is
thus out of reach), or a hub name. Local sources are opened with ``local_files_only`` so
loading never touches the network; hub names do so too when ``HF_HUB_OFFLINE`` is set.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.errors import ConfigError, MissingPackageError, ModelNotFoundError

__all__ = ["ModelSource", "load_pretrained", "locate"]

_BUILTIN_PREFIX = "builtin/"
_TRUTHY = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ModelSource:
    """What to hand to ``from_pretrained``: a folder or hub name, and the GGUF file in it."""

    location: str
    gguf_file: str | None
    local: bool


def locate(name: str) -> ModelSource:
    """Resolve ``NAME`` of ``hf/NAME`` without loading anything.

    Raises ModelNotFoundError for a local path that does not exist or holds no model.
    """
    if name.startswith(_BUILTIN_PREFIX):
        from sparring.models import zoo

        return _gguf_source(zoo.gguf_path(name.removeprefix(_BUILTIN_PREFIX)))
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelNotFoundError(
                f"hf/{name}: a file must be a .gguf model; otherwise give the model's folder"
            )
        return _gguf_source(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"hf/{name}: folder has no config.json; point hf/ at a transformers model "
                "folder (config.json, weights, tokenizer files) or at a .gguf file"
            )
        return ModelSource(str(path), None, local=True)
    if name.lower().endswith(".gguf") or name.startswith(("/", ".", "~")):
        raise ModelNotFoundError(f"hf/{name}: no such file or folder: {path}")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY
    return ModelSource(name, None, local=offline)


def _gguf_source(path: Path) -> ModelSource:
    return ModelSource(str(path.parent), path.name, local=True)


def load_pretrained(name: str, *, model_id: str, device: str) -> tuple[Any, Any]:
    """Load (model, tokenizer) for ``hf/NAME`` onto ``device``, in eval mode.

    Weights are float32 on CPU (this CPU class has no fast bfloat16; see
    benchmarks/hf_generation.py) and bfloat16 on CUDA.
    """
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingPackageError("hf/ models", "'sparring[train]'") from exc
    target = _device(torch, device)
    source = locate(name)
    dtype = torch.bfloat16 if target.type == "cuda" else torch.float32
    kwargs: dict[str, Any] = {"local_files_only": source.local}
    if source.gguf_file is not None:
        kwargs["gguf_file"] = source.gguf_file
    try:
        with _quiet_loading():
            tokenizer: Any = transformers.AutoTokenizer.from_pretrained(source.location, **kwargs)
            model: Any = transformers.AutoModelForCausalLM.from_pretrained(
                source.location, dtype=dtype, **kwargs
            )
    except ImportError as exc:
        raise MissingPackageError(f"{model_id} ({_first_line(exc)})", "'sparring[train]'") from exc
    except OSError as exc:
        where = "local files" if source.local else "the hub"
        raise ModelNotFoundError(
            f"{model_id}: cannot load from {where}: {_first_line(exc)}"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{model_id}: transformers cannot load it: {_first_line(exc)}") from exc
    model.to(target)
    model.eval()
    return model, tokenizer


def _device(torch: Any, device: str) -> Any:
    """``auto`` is CUDA when available, else CPU; anything else must be a torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"--device {device!r} is not a device; use auto, cpu or cuda") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device!r}: no CUDA device is available; use auto or cpu")
    return chosen


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide loading progress bars: a library should not draw on the user's terminal.

    transformers' own bars obey its switch; the GGUF dequantiser imports tqdm directly, so
    its module-level name is pointed at transformers' switch-aware tqdm for the duration.
    """
    from transformers.utils import logging as untyped_logging

    hf_logging: Any = untyped_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    gguf_module = sys.modules.get("transformers.modeling_gguf_pytorch_utils")
    if gguf_module is None:
        with contextlib.suppress(ImportError):
            import transformers.modeling_gguf_pytorch_utils as gguf_module
    original = getattr(gguf_module, "tqdm", None)
    if original is not None:
        gguf_module.tqdm = hf_logging.tqdm  # type: ignore[union-attr]
    try:
        yield
    finally:
        if original is not None:
            gguf_module.tqdm = original  # type: ignore[union-attr]
        if was_enabled:
            hf_logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
