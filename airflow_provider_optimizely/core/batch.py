"""A batch of items made ready for an API, held as parallel sequences (``core.sync`` cuts and sends them)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np


class Item(NamedTuple):
    """One row made ready for its API: its source row number, its key (profile id...), and its body."""

    row: int
    key: str
    body: Any


@dataclass(slots=True)
class Batch:
    """Items as parallel sequences: a few objects a batch rather than a few objects a row.

    ``bodies`` is a list, or any sequence that slices and adds like one (``EncodedRecords``: bodies
    already JSON). ``extend`` and ``take`` replace the sequences rather than change them, so that a batch
    can take over another's without a copy. An incremental sync adds each item's key hash and the
    fingerprint of what is sent (``hashes``, ``prints``: ``uint64`` arrays), to record the API's answer.
    """

    rows: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    bodies: Sequence[Any] = field(default_factory=list)
    hashes: np.ndarray | None = None
    prints: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def item(self, index: int) -> Item:
        return Item(self.rows[index], self.keys[index], self.bodies[index])

    def items(self) -> Iterator[Item]:
        return map(Item._make, zip(self.rows, self.keys, self.bodies, strict=True))

    def append(self, item: Item) -> None:
        assert self.hashes is None, "items are appended before they are fingerprinted"
        self.rows.append(item.row)
        self.keys.append(item.key)
        if type(self.bodies) is not list:
            self.bodies = list(self.bodies)
        self.bodies.append(item.body)

    def extend(self, other: Batch) -> None:
        if not self.keys:  # the usual case, a page that fills whole batches: no copy
            self.rows, self.keys, self.bodies = other.rows, other.keys, other.bodies
            self.hashes, self.prints = other.hashes, other.prints
            return
        self.rows = self.rows + other.rows
        self.keys = self.keys + other.keys
        if type(self.bodies) is type(other.bodies):
            self.bodies = self.bodies + other.bodies  # type: ignore[operator]
        else:  # a page read one way after one read another: one list of both
            self.bodies = [*self.bodies, *other.bodies]
        if self.hashes is not None and other.hashes is not None:
            self.hashes = np.concatenate([self.hashes, other.hashes])
            self.prints = np.concatenate([self.prints, other.prints])

    def take(self, count: int) -> Batch:
        """The first ``count`` items, removed from this batch."""
        if count >= len(self):
            taken = Batch(self.rows, self.keys, self.bodies, self.hashes, self.prints)
            self.rows, self.keys, self.bodies, self.hashes, self.prints = [], [], [], None, None
            return taken
        taken = Batch(
            self.rows[:count],
            self.keys[:count],
            self.bodies[:count],
            None if self.hashes is None else self.hashes[:count],
            None if self.prints is None else self.prints[:count],
        )
        self.rows, self.keys, self.bodies = self.rows[count:], self.keys[count:], self.bodies[count:]
        if self.hashes is not None and self.prints is not None:
            self.hashes, self.prints = self.hashes[count:], self.prints[count:]
        return taken

    def subset(self, indexes: Sequence[int] | np.ndarray) -> Batch:
        """The items at ``indexes`` (in that order), as a new batch."""
        return Batch(
            [self.rows[i] for i in indexes],
            [self.keys[i] for i in indexes],
            [self.bodies[i] for i in indexes],
            None if self.hashes is None else self.hashes[indexes],
            None if self.prints is None else self.prints[indexes],
        )

    def without(self, indexes: Collection[int]) -> Batch:
        return self.subset([i for i in range(len(self)) if i not in indexes])
