"""A fast reader of a GGUF file's header: scalar metadata and tensor shapes.

``gguf.GGUFReader`` decodes every metadata array into numpy objects, which takes tens of
seconds for a 150k-token vocabulary on a small CPU; exporting an adapter needs only the
architecture, a few counts and the tensors' names and shapes, so arrays are skipped here.
The layout follows the GGUF specification (versions 2 and 3, little-endian).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.errors import DataError

__all__ = ["GGUFHeader", "read_header"]

_MAGIC = b"GGUF"
_STRING = 8
_ARRAY = 9
# Value type -> struct format of one fixed-size value (strings and arrays are handled apart).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}

Scalar = int | float | bool | str


@dataclass(frozen=True)
class GGUFHeader:
    """Scalar metadata and tensor shapes of a GGUF file.

    ``tensors`` maps each tensor name to its dimensions in ggml order: the first number is
    the innermost (row length), so a linear layer's weight is ``(in_features, out_features)``.
    """

    metadata: dict[str, Scalar]
    tensors: dict[str, tuple[int, ...]]

    @property
    def architecture(self) -> str:
        """``general.architecture``, e.g. ``llama`` or ``qwen2``."""
        return str(self.metadata.get("general.architecture", ""))

    def arch_int(self, key: str) -> int | None:
        """An integer ``<architecture>.<key>`` value (e.g. ``block_count``), if present."""
        value = self.metadata.get(f"{self.architecture}.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Cursor:
    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.at = 0

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def u32(self) -> int:
        return int(self.unpack("<I")[0])

    def u64(self) -> int:
        return int(self.unpack("<Q")[0])

    def string(self) -> str:
        size = self.u64()
        raw = self.data[self.at : self.at + size]
        if len(raw) != size:
            raise struct.error("string runs past the end of the file")
        self.at += size
        return raw.decode("utf-8", "replace")

    def value(self, kind: int) -> Scalar | None:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            self.skip_array()
            return None
        fmt = _SCALARS.get(kind)
        if fmt is None:
            raise struct.error(f"unknown metadata value type {kind}")
        value: Scalar = self.unpack(fmt)[0]
        return value

    def skip_array(self) -> None:
        kind, count = self.u32(), self.u64()
        if kind == _STRING:
            for _ in range(count):
                size = self.u64()  # read before adding: `at += u64()` would use the old `at`
                self.at += size
        elif kind == _ARRAY:
            for _ in range(count):
                self.skip_array()
        elif kind in _SCALARS:
            self.at += struct.calcsize(_SCALARS[kind]) * count
        else:
            raise struct.error(f"unknown array element type {kind}")


def read_header(path: Path) -> GGUFHeader:
    """Read the header of the GGUF file at ``path``.

    Raises DataError when the file is missing, not GGUF, of an unsupported version or cut
    short.
    """
    try:
        with (
            path.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            if data[:4] != _MAGIC:
                raise DataError(
                    f"{path}: not a GGUF file (no GGUF magic bytes); give a .gguf model"
                )
            cursor = _Cursor(data)
            cursor.at = 4
            version = cursor.u32()
            if version not in (2, 3):
                raise DataError(f"{path}: GGUF version {version} is not supported; convert it anew")
            n_tensors, n_kv = cursor.u64(), cursor.u64()
            metadata: dict[str, Scalar] = {}
            for _ in range(n_kv):
                key = cursor.string()
                value = cursor.value(cursor.u32())
                if value is not None:
                    metadata[key] = value
            tensors: dict[str, tuple[int, ...]] = {}
            for _ in range(n_tensors):
                name = cursor.string()
                dims = tuple(cursor.u64() for _ in range(cursor.u32()))
                cursor.unpack("<IQ")  # ggml type and data offset: not needed here
                tensors[name] = dims
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such GGUF file; give the base model's .gguf path") from exc
    except (OSError, ValueError, struct.error) as exc:
        raise DataError(f"{path}: unreadable GGUF header ({exc}); is the file complete?") from exc
    return GGUFHeader(metadata=metadata, tensors=tensors)
