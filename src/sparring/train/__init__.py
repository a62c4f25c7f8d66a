"""LoRA fine-tuning for DART, and fast generation from the updated weights.

- ``SFTExample`` / ``LoRAConfig`` / ``train_lora``: response-only LoRA SFT of a
  transformers model (an ``HFModel`` or a model/tokenizer pair); the adapter and a
  ``TrainRecord`` are saved in the run directory.
- ``load_adapter`` / ``read_record``: a saved run back into a model, or its record.
- ``export_gguf_adapter``: the adapter as a llama.cpp LoRA GGUF for the base model's GGUF.
  Generation then runs in llama.cpp with ``LlamaCppModel(..., lora=[(path, 1.0)])``.
- ``merge_adapter``: such an adapter folded into a copy of the base GGUF, a model of its own.
- ``blend_adapters``: two adapters of one base as one, applying a weighted sum of their updates.
"""

from sparring.train.checkpoint import ModelInput, load_adapter, read_record
from sparring.train.config import DEFAULT_TARGET_MODULES, LoRAConfig, StepInfo, TrainRecord
from sparring.train.gguf_export import export_gguf_adapter
from sparring.train.gguf_merge import MergeReport, merge_adapter
from sparring.train.lora_blend import blend_adapters
from sparring.train.sft import TrainResult, train_lora
from sparring.train.sft_data import SFTExample

__all__ = [
    "DEFAULT_TARGET_MODULES",
    "LoRAConfig",
    "MergeReport",
    "ModelInput",
    "SFTExample",
    "StepInfo",
    "TrainRecord",
    "TrainResult",
    "blend_adapters",
    "export_gguf_adapter",
    "load_adapter",
    "merge_adapter",
    "read_record",
    "train_lora",
]
