"""Change detection: each item of a page against the committed keys and this run's earlier attempts.

Vectorised: ``numpy.searchsorted`` of a page's key hashes into the committed hashes (sorted), a handful
of array operations a page whatever its size, no Python object a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_provider_optimizely.core.sync_state.generation import (
    DELETED,
    DISPATCHED,
    FAILED,
    OK,
    CommittedKeys,
)
from airflow_provider_optimizely.core.sync_state.keyrange import KeyRange


class ItemClass(IntEnum):
    """What an item is to this run; ``send`` says which are sent."""

    NEW = 0  # not in the committed state: sent
    CHANGED = 1  # its fingerprint differs from the committed one: sent
    UNCHANGED = 2  # same fingerprint, last sent with success: sent only by a full run
    CARRIED_OVER = 3  # its last send failed: sent again
    ACKNOWLEDGED = 4  # an earlier attempt of this run sent it and the API answered: not sent again
    RESENT = 5  # an earlier attempt sent it but did not record an answer (in flight at a crash): sent
    OUT_OF_RANGE = 6  # another key range's key: not this run's

    @property
    def label(self) -> str:
        return self.name.lower()


SENT_WHEN_INCREMENTAL = np.array([True, True, False, True, False, True, False])
SENT_WHEN_FULL = np.array([True, True, True, True, False, True, False])


@dataclass
class Classification:
    """Per item of a page: its class (``ItemClass`` codes, uint8) and whether to send it."""

    classes: np.ndarray
    send: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    def indexes(self, *classes: ItemClass) -> np.ndarray:
        """Positions of the items of these classes (of the items to send when none are named)."""
        if not classes:
            return np.flatnonzero(self.send)
        return np.flatnonzero(np.isin(self.classes, [int(c) for c in classes]))

    def count(self, item_class: ItemClass) -> int:
        return int(np.count_nonzero(self.classes == item_class))

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.classes, minlength=len(ItemClass))
        return {c.label: int(found[c]) for c in ItemClass}


def as_uint64(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == np.uint64:
        return values
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return np.asarray(values.cast(pa.uint64()).to_numpy(zero_copy_only=False), dtype=np.uint64)
    return np.asarray(values, dtype=np.uint64)


class PriorAcks:
    """What earlier attempts of this run recorded: per hash, the last answer, and the hashes they sent
    with no answer recorded."""

    def __init__(self, table: pa.Table) -> None:
        hashes = table.column("key_hash").to_numpy()
        outcomes = table.column("outcome").to_numpy()
        answered = outcomes != DISPATCHED
        order = np.argsort(hashes[answered], kind="stable")
        sorted_hashes = hashes[answered][order]
        last = order[np.r_[sorted_hashes[1:] != sorted_hashes[:-1], True]] if len(order) else order
        self.hashes = hashes[answered][last]
        self.fingerprints = table.column("fingerprint").to_numpy()[answered][last]
        self.outcomes = outcomes[answered][last]
        dispatched = np.unique(hashes[~answered])
        self.unanswered = dispatched[~_found(self.hashes, dispatched)[0]]

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def acknowledged(self) -> int:
        return int(np.count_nonzero(self.outcomes != DELETED))

    @property
    def deleted(self) -> np.ndarray:
        return self.hashes[self.outcomes == DELETED]


class Classifier:
    """Classifies pages and marks the committed keys it meets as seen (for ``unseen``)."""

    def __init__(self, committed: CommittedKeys, prior: PriorAcks, key_range: KeyRange, full: bool) -> None:
        self.committed = committed
        self.prior = prior
        self.key_range = key_range
        self.sent = SENT_WHEN_FULL if full else SENT_WHEN_INCREMENTAL
        self.seen = np.zeros(len(committed), dtype=bool)
        self.totals = np.zeros(len(ItemClass), dtype=np.int64)

    def classify(self, hashes: Any, fingerprints: Any) -> Classification:
        hashes, fingerprints = as_uint64(hashes), as_uint64(fingerprints)
        if len(hashes) != len(fingerprints):
            raise ValueError(f"{len(hashes)} key hashes but {len(fingerprints)} fingerprints")
        classes = np.full(len(hashes), ItemClass.NEW, dtype=np.uint8)

        committed = self.committed
        found, position = _found(committed.hashes, hashes)
        in_range = self.key_range.contains(hashes)
        found &= in_range
        where = position[found]
        self.seen[where] = True
        failed = committed.outcomes[where] == FAILED
        same = committed.fingerprints[where] == fingerprints[found]
        classes[found] = np.where(
            failed, ItemClass.CARRIED_OVER, np.where(same, ItemClass.UNCHANGED, ItemClass.CHANGED)
        )

        prior = self.prior
        if len(prior.unanswered):
            classes[_found(prior.unanswered, hashes)[0]] = ItemClass.RESENT
        if len(prior):
            answered, at = _found(prior.hashes, hashes)
            outcome = prior.outcomes[at[answered]]
            same = prior.fingerprints[at[answered]] == fingerprints[answered]
            deleted = outcome == DELETED
            # Answered before with this very payload: done. Sent with success with another payload (the
            # source changed between attempts): the API holds that one, so this one differs.
            classes[answered] = np.where(
                deleted,
                ItemClass.NEW,
                np.where(
                    same,
                    ItemClass.ACKNOWLEDGED,
                    np.where(outcome == OK, ItemClass.CHANGED, classes[answered]),
                ),
            )
        classes[~in_range] = ItemClass.OUT_OF_RANGE
        self.totals += np.bincount(classes, minlength=len(ItemClass))
        return Classification(classes, self.sent[classes])

    def totals_by_label(self) -> dict[str, int]:
        return {c.label: int(self.totals[c]) for c in ItemClass}


def _found(sorted_hashes: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ``hashes`` are in ``sorted_hashes``, and where (valid only where found)."""
    if not len(sorted_hashes):
        return np.zeros(len(hashes), dtype=bool), np.zeros(len(hashes), dtype=np.intp)
    position = np.searchsorted(sorted_hashes, hashes)
    np.minimum(position, len(sorted_hashes) - 1, out=position)
    return sorted_hashes[position] == hashes, position
