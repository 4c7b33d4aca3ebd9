"""Reading ahead: the same items in the same order, the source's error where the next item is asked
for, a bounded number of items waiting, and the reading thread gone when the context ends."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_optimizely.core.read_ahead import read_ahead
from tests.waiting import wait_until


def test_items_come_in_order_from_another_thread():
    threads: set[str] = set()

    def source():
        for number in range(100):
            threads.add(threading.current_thread().name)
            yield number

    with read_ahead(source()) as items:
        assert list(items) == list(range(100))
    assert threads == {"optimizely-read-ahead"}


def test_the_source_s_error_is_raised_where_its_item_was_due():
    def source():
        yield 1
        yield 2
        raise ValueError("line 3: a quote never closed")

    got = []
    with pytest.raises(ValueError, match="line 3"), read_ahead(source()) as items:
        for item in items:
            got.append(item)
    assert got == [1, 2]


def test_the_reader_stays_at_most_depth_items_ahead():
    produced = []

    def source():
        for number in range(50):
            produced.append(number)
            yield number

    with read_ahead(source(), depth=2) as items:
        assert next(items) == 0
        # the queue holds 2, and the reader holds one more it waits to put
        wait_until(lambda: len(produced) >= 4, timeout=5, what="the reader filled the queue")
        assert len(produced) == 4


def test_leaving_early_stops_the_reader_and_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            yield from range(1_000_000)
        finally:
            closed.set()

    before = {thread.ident for thread in threading.enumerate()}
    with read_ahead(source(), depth=2) as items:
        assert next(items) == 0
    assert closed.is_set()
    assert {thread.ident for thread in threading.enumerate()} <= before
