"""The vectorised pieces: the hash index's look-ups and the merge of answers into a generation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from airflow_provider_optimizely.core.sync_state.checkpoints import entries
from airflow_provider_optimizely.core.sync_state.classify import HashIndex
from airflow_provider_optimizely.core.sync_state.generation import (
    DELETED,
    DISPATCHED,
    FAILED,
    OK,
    SCHEMA,
    Answers,
    merge,
)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 300, 100_000])
def test_the_index_finds_what_searchsorted_finds(count):
    rng = np.random.default_rng(count)
    hashes = np.unique(rng.integers(0, 2**64 - 1, count, dtype=np.uint64, endpoint=True))
    if count > 3:
        hashes = np.unique(np.concatenate([hashes, np.array([0, 2**64 - 1], np.uint64)]))
    present = hashes[rng.integers(0, len(hashes), 50)] if len(hashes) else np.empty(0, np.uint64)
    needles = np.concatenate(
        [
            present,
            rng.integers(0, 2**64 - 1, 50, dtype=np.uint64, endpoint=True),
            np.array([0, 2**64 - 1], np.uint64),
        ]
    )
    found, position = HashIndex(hashes).find(needles)
    assert found.tolist() == np.isin(needles, hashes).tolist()
    assert (hashes[position[found]] == needles[found]).all()


def test_the_index_counts_every_bucket_across_the_stretches_it_is_built_in():
    rng = np.random.default_rng(7)
    # More hashes than one stretch holds, with a run of equal buckets across a stretch's end.
    hashes = np.unique(rng.integers(0, 2**64 - 1, 2_500_000, dtype=np.uint64, endpoint=True))
    hashes[(1 << 20) - 3 : (1 << 20) + 3] = hashes[(1 << 20) - 3] + np.arange(6, dtype=np.uint64)
    index = HashIndex(hashes)
    buckets = (hashes >> index.shift).astype(np.int64)
    expected = np.r_[0, np.cumsum(np.bincount(buckets, minlength=1 << index.bits))]
    assert index.offsets.tolist() == expected.tolist()


def committed(rows: list[tuple[int, int, int, str]]) -> pa.Table:
    return pa.table(
        {
            "key_hash": pa.array([r[0] for r in rows], pa.uint64()),
            "fingerprint": pa.array([r[1] for r in rows], pa.uint64()),
            "outcome": pa.array([r[2] for r in rows], pa.uint8()),
            "key": [r[3] for r in rows],
        },
        schema=SCHEMA,
    )


def answers(rows: list[tuple[int, int, int, str]]) -> Answers:
    table = entries([r[0] for r in rows], [r[3] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    return Answers.of([table])


def test_the_last_answer_decides_and_a_failure_keeps_the_last_good_fingerprint():
    base = committed([(10, 100, OK, "a"), (20, 200, OK, "b"), (30, 300, OK, "c"), (40, 400, FAILED, "d")])
    acks = answers(
        [
            (10, 101, OK, "a"),  # changed
            (20, 201, OK, "b"),  # sent twice in the run: ok, then failed: keeps 201
            (20, 202, FAILED, "b"),
            (30, 0, DELETED, "c"),  # deleted
            (40, 401, OK, "d"),  # the carried-over key went through
            (50, 500, FAILED, "e"),  # a new key that failed: kept, fingerprint 0, sent next run
            (60, 600, OK, "f"),
        ]
    )
    merged = merge(base, acks)
    assert merged.to_pydict() == {
        "key_hash": [10, 20, 40, 50, 60],
        "fingerprint": [101, 201, 401, 0, 600],
        "outcome": [OK, FAILED, OK, FAILED, OK],
        "key": ["a", "b", "d", "e", "f"],
    }


def test_merge_into_nothing_and_of_nothing():
    acks = answers([(7, 70, OK, "x"), (3, 30, DISPATCHED, ""), (3, 30, OK, "y")])
    assert merge(SCHEMA.empty_table(), acks).column("key").to_pylist() == ["y", "x"]
    base = committed([(1, 10, OK, "k")])
    assert merge(base, answers([])) is base
