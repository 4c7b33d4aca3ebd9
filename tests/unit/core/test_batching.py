from __future__ import annotations

import threading

import pytest

from airflow_provider_optimizely.core.batching import BoundedPool, chunked
from tests.waiting import wait_until


def test_chunked():
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError):
        list(chunked([1], 0))


def test_chunked_is_lazy():
    pulled = []

    def source():
        for i in range(10):
            pulled.append(i)
            yield i

    first = next(chunked(source(), 2))
    assert first == [0, 1] and pulled == [0, 1]


def test_pool_never_holds_more_than_its_bound_and_hands_every_result_back():
    lock = threading.Lock()
    running = 0
    peak = 0
    results = []

    def job(n):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(0.01)
        with lock:
            running -= 1
        return n

    gate = threading.Event()
    caller = threading.get_ident()
    threads_seen = set()

    def on_done(future):
        threads_seen.add(threading.get_ident())
        results.append(future.result())

    with BoundedPool(3, on_done) as pool:
        for n in range(20):
            pool.submit(job, n)
            assert pool.in_flight <= 3
        pool.drain()
    assert sorted(results) == list(range(20))
    assert peak <= 3
    assert threads_seen == {caller}  # results are counted in the producer's thread only


def test_a_job_waits_for_a_job_in_flight_that_writes_the_same_key():
    order = []
    first_started = threading.Event()
    release_first = threading.Event()

    def first():
        first_started.set()
        release_first.wait(5)
        order.append("first")

    def second():
        order.append("second")

    def unrelated():
        order.append("unrelated")

    with BoundedPool(4, lambda f: f.result()) as pool:
        pool.submit(first, keys={"k1"})
        assert first_started.wait(5)
        pool.submit(unrelated, keys={"k2"})  # no shared key: goes at once
        threading.Timer(0.05, release_first.set).start()
        pool.submit(second, keys={"k1", "k3"})  # blocks until first is done
        pool.drain()
    assert order.index("first") < order.index("second")
    assert order[0] == "unrelated"


def test_an_error_in_a_job_reaches_the_producer():
    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), BoundedPool(2, lambda f: f.result()) as pool:
        pool.submit(boom)
        pool.drain()


def test_a_finished_job_releases_its_keys_before_it_is_collected():
    release = threading.Event()
    second_done = threading.Event()

    def slow():
        release.wait(5)

    with BoundedPool(4, lambda f: f.result()) as pool:
        pool.submit(slow, keys=["k1"])
        pool.submit(second_done.set, keys=["k2"])
        assert second_done.wait(5)
        busy = list(pool._in_flight.values())
        # The job's finally runs just after it set the event: wait on it with a deadline.
        wait_until(lambda: not busy[1], timeout=5, what="the finished job's keys released")
        assert busy[0] == {"k1"}, "a job still running keeps its keys"
        assert pool.in_flight == 2  # not collected yet, yet its keys block nothing
        release.set()
        pool.drain()
