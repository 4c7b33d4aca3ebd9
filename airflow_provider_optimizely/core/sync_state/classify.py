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


_NEW, _CHANGED, _UNCHANGED, _CARRIED_OVER, _ACKNOWLEDGED, _RESENT, _OUT_OF_RANGE = (int(c) for c in ItemClass)
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
    """What earlier attempts of this run recorded (parallel arrays of checkpoint entries, in order): per
    hash, the last answer, and the hashes they sent with no answer recorded."""

    def __init__(self, hashes: np.ndarray, fingerprints: np.ndarray, outcomes: np.ndarray) -> None:
        answered = outcomes != DISPATCHED
        order = np.argsort(hashes[answered], kind="stable")
        sorted_hashes = hashes[answered][order]
        last = order[np.r_[sorted_hashes[1:] != sorted_hashes[:-1], True]] if len(order) else order
        self.hashes = hashes[answered][last]
        self.fingerprints = fingerprints[answered][last]
        self.outcomes = outcomes[answered][last]
        dispatched = np.unique(hashes[~answered])
        self.unanswered = dispatched[~np.isin(dispatched, self.hashes)]

    @classmethod
    def none(cls) -> PriorAcks:
        return cls(np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.uint8))

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def acknowledged(self) -> int:
        return int(np.count_nonzero(self.outcomes != DELETED))

    @property
    def deleted(self) -> np.ndarray:
        return self.hashes[self.outcomes == DELETED]


# Hashes (and buckets) handled at a time while a ``HashIndex`` is built: 8 MiB of temporary numbers.
_STRETCH = 1 << 20


class HashIndex:
    """Sorted ``uint64`` hashes with a table of where each value of their top bits starts.

    ``numpy.searchsorted`` of a page's hashes into 10,000,000 sorted ones costs about 0.7 µs a hash (a
    cache miss a step of the binary search); the table narrows each search to a bucket of one or two
    hashes first (a bucket for every two keys, up to 2**23), and a vectorised binary search over all the
    page's buckets at once finishes in a step or two: about 90 ns a hash at 10,000,000 keys, for a table
    of 4 bytes a bucket (at most 32 MiB).
    """

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = hashes
        count = len(hashes)
        self.bits = min(23, max(8, count.bit_length() - 1))
        self.shift = np.uint64(64 - self.bits)
        # Where each bucket starts: the running count of the hashes below it (no search). Counted and
        # summed a stretch at a time, so that building it holds no array the size of the hashes (nor of
        # the table in 8-byte numbers) beside them.
        self.offsets: np.ndarray = np.zeros((1 << self.bits) + 1, np.int32 if count < 1 << 31 else np.int64)
        counts = self.offsets[1:]
        for start in range(0, count, _STRETCH):
            buckets = (hashes[start : start + _STRETCH] >> self.shift).view(np.int64)
            first = int(buckets[0])  # sorted: the stretch's buckets run from its first to its last
            counts[first : int(buckets[-1]) + 1] += np.bincount(buckets - first).astype(counts.dtype)
        carried = 0
        for start in range(0, len(counts), _STRETCH):
            # Summed in int64, then stored: a sum written straight into 4-byte offsets is ten times slower.
            summed = np.cumsum(counts[start : start + _STRETCH], dtype=np.int64) + carried
            counts[start : start + _STRETCH] = summed
            carried = int(summed[-1])

    def __len__(self) -> int:
        return len(self.hashes)

    def find(self, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which ``needles`` are in the index, and where (valid only where found)."""
        count = len(self.hashes)
        if not count:
            return np.zeros(len(needles), dtype=bool), np.zeros(len(needles), dtype=np.intp)
        bucket = (needles >> self.shift).astype(np.intp)
        low, high = self.offsets[bucket], self.offsets[bucket + 1]
        # Each step works on the searches not finished yet: most buckets hold a few hashes.
        active = np.flatnonzero(low < high)
        left, right, wanted = low[active], high[active], needles[active]
        while len(active):
            middle = (left + right) >> 1
            less = self.hashes[middle] < wanted
            left = np.where(less, middle + 1, left)
            right = np.where(less, right, middle)
            low[active] = left
            going = left < right
            if not going.all():
                active, left, right, wanted = active[going], left[going], right[going], wanted[going]
        position = np.minimum(low, count - 1)
        return self.hashes[position] == needles, position


class Classifier:
    """Classifies pages and marks the committed keys it meets as seen (for ``unseen``)."""

    def __init__(self, committed: CommittedKeys, prior: PriorAcks, key_range: KeyRange, full: bool) -> None:
        self.committed = committed
        self.index = HashIndex(committed.hashes)
        self.prior = prior
        self.prior_index = HashIndex(prior.hashes)
        self.unanswered_index = HashIndex(prior.unanswered)
        self.key_range = key_range
        self.sent = SENT_WHEN_FULL if full else SENT_WHEN_INCREMENTAL
        self.seen = np.zeros(len(committed), dtype=bool)
        self.totals = np.zeros(len(ItemClass), dtype=np.int64)

    def classify(self, hashes: Any, fingerprints: Any) -> Classification:
        hashes, fingerprints = as_uint64(hashes), as_uint64(fingerprints)
        if len(hashes) != len(fingerprints):
            raise ValueError(f"{len(hashes)} key hashes but {len(fingerprints)} fingerprints")
        classes = np.full(len(hashes), _NEW, dtype=np.uint8)
        in_range = None if self.key_range.whole else self.key_range.contains(hashes)

        committed = self.committed
        found, position = self.index.find(hashes)
        if in_range is not None:
            found &= in_range
        where = position[found]
        self.seen[where] = True
        known = np.where(committed.fingerprints[where] == fingerprints[found], _UNCHANGED, _CHANGED)
        known[committed.outcomes[where] == FAILED] = _CARRIED_OVER
        classes[found] = known

        if len(self.unanswered_index):
            classes[self.unanswered_index.find(hashes)[0]] = _RESENT
        if len(self.prior_index):
            prior = self.prior
            answered, at = self.prior_index.find(hashes)
            at = at[answered]
            outcome = prior.outcomes[at]
            now = classes[answered]
            # Sent with success with another payload (the source changed between attempts): the API
            # holds that one, so this one differs. Answered before with this very payload: done.
            now[(outcome == OK) & (prior.fingerprints[at] != fingerprints[answered])] = _CHANGED
            now[(outcome != DELETED) & (prior.fingerprints[at] == fingerprints[answered])] = _ACKNOWLEDGED
            now[outcome == DELETED] = _NEW
            classes[answered] = now
        if in_range is not None:
            classes[~in_range] = _OUT_OF_RANGE
        self.totals += np.bincount(classes, minlength=len(ItemClass))
        return Classification(classes, self.sent[classes])

    def totals_by_label(self) -> dict[str, int]:
        return {c.label: int(self.totals[c]) for c in ItemClass}
