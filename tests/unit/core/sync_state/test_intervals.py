"""Events by data interval: done intervals are not sent again, crashed ones resume, event by event."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from airflow_provider_optimizely.core.sync_state import ItemClass, RunClosedError, fingerprints
from tests.unit.core.sync_state.conftest import all_files

DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)
NEXT = DAY + timedelta(days=1)


def events(count: int) -> list[bytes]:
    # Rows 0 and 1 are the same row twice: two events with one identity.
    return [b'{"user":"u0","type":"view"}'] * 2 + [
        f'{{"user":"u{i}","type":"view"}}'.encode() for i in range(2, count)
    ]


def test_a_done_interval_sends_nothing_unless_forced(new_store):
    ids = fingerprints(events(100))
    run = new_store().sync("events").begin_interval(DAY, NEXT)
    assert run.already_done is None
    assert run.classify(ids).send.all()
    run.acknowledge(ids)
    record = run.complete({"rows_read": 100})
    assert record["acknowledged"] == {"ok": 100, "failed": 0}

    again = new_store().sync("events").begin_interval(DAY, NEXT)
    assert again.already_done is not None and again.already_done["rows_read"] == 100
    assert not again.classify(ids).send.any()
    assert again.counts["acknowledged"] == 100

    forced = new_store().sync("events").begin_interval(DAY, NEXT, force=True)
    assert forced.classify(ids).send.all()

    other_day = new_store().sync("events").begin_interval(NEXT, NEXT + timedelta(days=1))
    assert other_day.already_done is None
    assert [r["start"] for r in new_store().sync("events").intervals.done()] == [DAY.isoformat()]


def test_a_crashed_interval_resumes_and_counts_each_occurrence(new_store):
    rows = events(300)
    ids = fingerprints(rows)
    run = new_store().sync("events").begin_interval(DAY, NEXT)
    run.classify(ids)
    run.acknowledge(ids[:1])  # one of the two identical rows
    run.acknowledge(ids[2:100])
    run.dispatching(ids[100:150])  # in flight at the crash

    run = new_store().sync("events").begin_interval(DAY, NEXT)
    assert (run.resumed, run.acknowledged_before, run.unanswered_before) == (True, 99, 50)
    result = run.classify(ids[:150])
    result2 = run.classify(ids[150:])
    classes = np.concatenate([result.classes, result2.classes])
    assert classes[0] == ItemClass.ACKNOWLEDGED and classes[1] == ItemClass.NEW  # the second occurrence
    assert (classes[2:100] == ItemClass.ACKNOWLEDGED).all()
    assert (classes[100:150] == ItemClass.RESENT).all()
    assert (classes[150:] == ItemClass.NEW).all()
    assert run.counts == {"new": 151, "acknowledged": 99, "resent": 50}


def test_identical_events_split_over_pages_are_counted(local_store):
    ids = np.array([7, 7, 7, 8], dtype=np.uint64)
    run = local_store().sync("e").begin_interval("2026-03-01", "2026-03-02")
    run.acknowledge(ids[:2])
    run = local_store().sync("e").begin_interval("2026-03-01", "2026-03-02")
    first = run.classify(ids[:1])
    second = run.classify(ids[1:])
    assert first.classes.tolist() == [ItemClass.ACKNOWLEDGED]
    assert second.classes.tolist() == [ItemClass.ACKNOWLEDGED, ItemClass.NEW, ItemClass.NEW]


def test_a_dry_interval_run_writes_nothing(local_store):
    store = local_store()
    run = store.sync("e").begin_interval(DAY, NEXT, dry_run=True)
    run.classify(fingerprints(events(10)))
    with pytest.raises(RunClosedError):
        run.acknowledge([1])
    run.abandon()
    assert all_files(store) == []
