"""sparring: find where a language model behaves unsafely, then fix it."""

from sparring.errors import SparringError
from sparring.types import (
    AttemptResult,
    AttemptSpec,
    Behavior,
    Completion,
    GenerationParams,
    Label,
    Message,
    Verdict,
)

__version__ = "0.1.0"

__all__ = [
    "AttemptResult",
    "AttemptSpec",
    "Behavior",
    "Completion",
    "GenerationParams",
    "Label",
    "Message",
    "SparringError",
    "Verdict",
    "__version__",
]
