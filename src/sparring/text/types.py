"""The array type every text featurizer returns."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
"""One float32 row per text."""
