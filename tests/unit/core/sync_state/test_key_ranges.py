"""Key ranges: slices of the key-hash space that together hold every key exactly once."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_optimizely.core.sync_state import ItemClass, KeyRange, key_hashes
from tests.unit.core.sync_state.syncing import run_sync, source


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_slices_cover_every_hash_once(count):
    hashes = np.concatenate(
        [
            key_hashes([f"k{i}" for i in range(20_000)]),
            np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1], dtype=np.uint64),
        ]
    )
    inside = np.array([KeyRange(i, count).contains(hashes) for i in range(count)])
    assert (inside.sum(axis=0) == 1).all()


def test_partition_numbers_follow_the_hash_order():
    key_range = KeyRange(1, 3)
    hashes = np.sort(key_hashes([f"k{i}" for i in range(30_000)]))
    hashes = hashes[key_range.contains(hashes)]
    parts = key_range.partition_of(hashes, 16)
    assert parts.min() >= 0 and parts.max() <= 15
    assert (np.diff(parts) >= 0).all()


def test_parse():
    assert KeyRange.parse(None) == KeyRange()
    assert KeyRange.parse("2/8") == KeyRange(2, 8) == KeyRange.parse((2, 8))
    assert KeyRange(2, 8).name == "keys-2-of-8" and KeyRange().name == "keys-all"
    with pytest.raises(ValueError, match="does not exist"):
        KeyRange(3, 3)
    with pytest.raises(ValueError, match="index/count"):
        KeyRange.parse("two of three")


def test_a_range_run_leaves_other_keys_alone(local_store):
    rows = source(1000)
    run = local_store().sync("s", "0/4").begin_run("r1", {"t": 1})
    sent = run_sync(run, rows)
    mine = KeyRange(0, 4).contains(key_hashes(list(rows)))
    assert len(sent.keys) == mine.sum()
    assert run.counts["out_of_range"] == 1000 - mine.sum()
    run.commit()
    other = local_store().sync("s", "1/4").begin_run("r1", {"t": 1})
    assert other.full_reason == "first run"

    with pytest.raises(ValueError, match="outside slice 0 of 4"):
        run = local_store().sync("s", "0/4").begin_run("r2", {"t": 1})
        keys = np.array(list(rows))[~mine][:1].tolist()
        run.acknowledge(key_hashes(keys), keys, [1], True)


def test_out_of_range_items_are_not_seen_and_not_sent(local_store):
    run = local_store().sync("s", "1/2").begin_run("r1", {"t": 1})
    keys = [f"k{i}" for i in range(100)]
    result = run.classify(key_hashes(keys), np.zeros(100, np.uint64))
    outside = ~KeyRange(1, 2).contains(key_hashes(keys))
    assert (result.classes[outside] == ItemClass.OUT_OF_RANGE).all()
    assert not result.send[outside].any()
