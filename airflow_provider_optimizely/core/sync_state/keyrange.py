"""Key ranges: a sync split by key hash into ``count`` slices, each with a state of its own.

Slice ``index`` of ``count`` holds the keys whose 64-bit hash ``h`` lies in
``[index * 2**64 // count, (index + 1) * 2**64 // count)``: the slices cover every hash once, whatever
the count, and a key's slice never depends on the other keys. Each slice keeps its own manifest and
files, so two slices of one sync commit at the same time without meeting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HASH_SPACE = 1 << 64


@dataclass(frozen=True)
class KeyRange:
    """Slice ``index`` (from 0) of ``count`` equal slices of the key-hash space; ``KeyRange()`` is all."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 1 << 16:
            raise ValueError(f"a key range splits the keys into 1 to 65536 slices, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"slice {self.index} does not exist among {self.count}")

    @classmethod
    def parse(cls, value: KeyRange | tuple[int, int] | str | None) -> KeyRange:
        """From a ``KeyRange``, ``(index, count)``, the text ``"index/count"``, or None (all keys)."""
        if value is None:
            return cls()
        if isinstance(value, KeyRange):
            return value
        if isinstance(value, str):
            index_text, _, count_text = value.partition("/")
            try:
                return cls(int(index_text), int(count_text))
            except ValueError:
                raise ValueError(f"a key range reads 'index/count', not {value!r}") from None
        index, count = value
        return cls(int(index), int(count))

    @property
    def low(self) -> int:
        return self.index * HASH_SPACE // self.count

    @property
    def high(self) -> int:
        """One past the last hash of the slice (``2**64`` for the last slice)."""
        return (self.index + 1) * HASH_SPACE // self.count

    @property
    def whole(self) -> bool:
        return self.count == 1

    @property
    def name(self) -> str:
        """The slice's folder name: ``keys-all``, ``keys-3-of-16``."""
        return "keys-all" if self.whole else f"keys-{self.index}-of-{self.count}"

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A boolean mask: which of ``hashes`` (``uint64``) lie in the slice."""
        if self.whole:
            return np.ones(len(hashes), dtype=bool)
        return (hashes >= np.uint64(self.low)) & (hashes <= np.uint64(self.high - 1))

    def partition_of(self, hashes: np.ndarray, partitions: int) -> np.ndarray:
        """Which of ``partitions`` equal sub-ranges of the slice each hash falls in (monotone in the
        hash, so files numbered in this order hold the hashes in order)."""
        width = -(-(self.high - self.low) // partitions)  # ceil: the last sub-range may be short
        shifted = hashes - np.uint64(self.low)
        return (shifted // np.uint64(width)).astype(np.int64)

    def __str__(self) -> str:
        return "all keys" if self.whole else f"slice {self.index} of {self.count}"
