"""The sync loop with a fake writer: batching, rejects, ordering, the held last batch, bounded reading."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from airflow_provider_optimizely.core.report import TooManyRejectedRows
from airflow_provider_optimizely.core.sources import Page, Unreadable
from airflow_provider_optimizely.core.sync import BatchResult, Item, RowRejected, RowWriter, run_sync


class FakeWriter(RowWriter):
    operation = "upsert-profiles"
    api = "Fake"
    target = "t"

    def __init__(self, batch_size=3, orders_by_key=True, holds_last_batch=False, refuse_keys=()):
        self.batch_size = batch_size
        self.orders_by_key = orders_by_key
        self.holds_last_batch = holds_last_batch
        self.refuse_keys = set(refuse_keys)
        self.sent: list[tuple[list[str], bool]] = []
        self.lock = threading.Lock()
        self.store: dict[str, object] = {}

    def prepare(self, row_number, row):
        if row.get("id") in (None, ""):
            raise RowRejected("no identifier", column="id")
        if row.get("bad"):
            raise RowRejected("not a long: 'x'", column="bad", key=row["id"])
        return Item(row_number, str(row["id"]), row.get("v"))

    def send(self, batch, final):
        result = BatchResult()
        with self.lock:
            self.sent.append((list(batch.keys), final))
            for item in batch.items():
                if item.key in self.refuse_keys:
                    result.refuse(item, "refused by the API")
                else:
                    self.store[item.key] = item.body
                    result.succeeded += 1
        return result


def numbered(rows, page_size=2):
    """Pages of the rows (a few rows a page, so that batches and pages don't line up)."""
    return [Page(rows[i : i + page_size]) for i in range(0, len(rows), page_size)]


def test_rows_go_in_batches_and_the_report_counts_them():
    writer = FakeWriter(batch_size=3)
    report = run_sync(numbered([{"id": i, "v": i} for i in range(7)]), writer, max_concurrency=2)
    assert sorted(len(keys) for keys, _ in writer.sent) == [1, 3, 3]
    assert (report.rows_read, report.rows_sent, report.rows_succeeded, report.rows_rejected) == (7, 7, 7, 0)
    assert report.as_dict()["duration_seconds"] >= 0


def test_bad_rows_are_reported_and_good_rows_still_go_before_the_task_fails():
    rows = numbered(
        [{"id": 1}, {"id": ""}, {"id": 3, "bad": True}, {"id": 4}, {"id": 5}, Unreadable("not valid JSON")]
    )
    writer = FakeWriter(batch_size=2, refuse_keys={"5"})
    with pytest.raises(TooManyRejectedRows) as raised:
        run_sync(rows, writer)
    report = raised.value.report
    assert set(writer.store) == {"1", "4"}
    assert (report.rows_read, report.rows_sent, report.rows_succeeded, report.rows_rejected) == (6, 3, 2, 4)
    rejected = {r.row: r for r in report.rejected_rows}
    assert rejected[2].column == "id" and rejected[2].reason == "no identifier"
    assert (rejected[3].key, rejected[3].column) == ("3", "bad")
    assert rejected[5].reason == "refused by the API"
    assert rejected[6].reason == "not valid JSON"


def test_max_rejected_lets_a_run_with_few_rejects_succeed():
    rows = numbered([{"id": 1}, {"id": ""}, {"id": 3}])
    assert run_sync(rows, FakeWriter(), max_rejected=1).rows_rejected == 1
    assert run_sync(rows, FakeWriter(), max_rejected="40%").rows_rejected == 1
    with pytest.raises(TooManyRejectedRows):
        run_sync(rows, FakeWriter(), max_rejected=0.2)


def test_an_empty_source_sends_nothing_and_succeeds():
    writer = FakeWriter(holds_last_batch=True)
    report = run_sync([], writer)
    assert writer.sent == [] and report.rows_read == 0


def test_the_held_last_batch_goes_alone_after_all_others_with_final():
    writer = FakeWriter(batch_size=2, holds_last_batch=True)
    run_sync(numbered([{"id": i} for i in range(7)]), writer, max_concurrency=3)
    finals = [final for _, final in writer.sent]
    assert finals == [False, False, False, True]
    assert writer.sent[-1][0] == ["6"]


def test_a_single_batch_is_the_final_one():
    writer = FakeWriter(batch_size=5, holds_last_batch=True)
    run_sync(numbered([{"id": 1}, {"id": 2}]), writer)
    assert writer.sent == [(["1", "2"], True)]


def test_two_writes_of_one_key_land_in_source_order_despite_concurrency():
    class SlowFirstWriter(FakeWriter):
        def send(self, batch, final):
            if batch.bodies[0] == "old":
                threading.Event().wait(0.05)  # the older write is slower: without ordering it would land last
            return super().send(batch, final)

    rows = numbered([{"id": "k", "v": "old"}, {"id": "other", "v": 1}, {"id": "k", "v": "new"}])
    writer = SlowFirstWriter(batch_size=1)
    run_sync(rows, writer, max_concurrency=4)
    assert writer.store["k"] == "new"


def test_reading_stays_bounded_by_the_batches_in_flight():
    pulled = 0
    most_ahead = 0
    sent_items = 0
    lock = threading.Lock()

    def source():
        nonlocal pulled
        for i in range(0, 2000, 7):
            page = Page([{"id": n} for n in range(i, min(i + 7, 2000))])
            pulled += len(page)
            yield page

    class Watching(FakeWriter):
        def send(self, batch, final):
            nonlocal most_ahead, sent_items
            with lock:
                most_ahead = max(most_ahead, pulled - sent_items)
            result = super().send(batch, final)
            with lock:
                sent_items += len(batch)
            return result

    report = run_sync(source(), Watching(batch_size=10, orders_by_key=False), max_concurrency=3)
    assert report.rows_succeeded == 2000
    # Never more rows read ahead than the batches in flight, the one being filled and one page.
    assert most_ahead <= 10 * (3 + 1) + 7


def test_an_error_that_is_not_about_a_row_stops_the_run_and_reading():
    pulled = 0

    def source():
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield Page([{"id": i}])

    class Broken(FakeWriter):
        def send(self, batch, final):
            raise PermissionError("401 wrong key")

    with pytest.raises(PermissionError):
        run_sync(source(), Broken(batch_size=5), max_concurrency=2)
    assert pulled < 100


def test_the_report_carries_this_run_s_request_counters():
    counters = Counter(requests=1, retries=0, maybe_applied_twice=0, throttled_seconds=0.5)

    def stats():
        return dict(counters)

    class Counting(FakeWriter):
        def send(self, batch, final):
            counters.update(requests=2, retries=1, maybe_applied_twice=1)
            return super().send(batch, final)

    report = run_sync(numbered([{"id": 1}]), Counting(), request_stats=stats)
    data = report.as_dict()
    assert (data["requests"], data["retried_requests"], data["requests_maybe_applied_twice"]) == (3, 1, 1)
    assert data["throttled_seconds"] == 0.5
