"""Adaptive concurrency (AIMD on requests in flight), fed outcomes by hand on a fake clock: no network."""

from __future__ import annotations

import threading

from airflow_provider_optimizely.core.batching import BoundedPool
from airflow_provider_optimizely.core.concurrency import AdaptiveConcurrency


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _adaptive(**kwargs: int) -> tuple[AdaptiveConcurrency, FakeClock]:
    clock = FakeClock()
    return AdaptiveConcurrency(clock=clock, **kwargs), clock


def _round(adaptive: AdaptiveConcurrency, clock: FakeClock, latency: float, status: int | None = 200) -> None:
    """As many requests as the limit, all in flight at once, all answered after ``latency``."""
    count = adaptive.limit
    for _ in range(count):
        adaptive.started()
    clock.now += latency
    for _ in range(count):
        adaptive.record(status, latency)


def test_slow_start_doubles_while_the_server_keeps_up_and_stops_at_the_cap() -> None:
    adaptive, clock = _adaptive(cap=64)
    for _ in range(6):
        _round(adaptive, clock, 0.02)
    assert adaptive.history == [4, 8, 16, 32, 64]
    assert adaptive.limit == 64


def test_a_refusal_halves_once_a_round_then_growth_is_additive() -> None:
    adaptive, clock = _adaptive(cap=64, start=16)
    adaptive.started()
    adaptive.started()
    clock.now += 0.01
    adaptive.record(429, 0.01)
    adaptive.record(503, 0.01)  # the same overload: one decrease
    assert adaptive.limit == 8
    for _ in range(8):
        adaptive.record(200, 0.02)  # the rest of the round
    _round(adaptive, clock, 0.02)
    _round(adaptive, clock, 0.02)
    assert adaptive.limit == 10  # +1 a round after a back-off, no more doubling


def test_rising_latency_backs_off_by_a_fifth() -> None:
    adaptive, clock = _adaptive(cap=64, start=10)
    _round(adaptive, clock, 0.02)  # baseline 20 ms, 500 answers a second; the limit doubles
    assert adaptive.limit == 20
    _round(adaptive, clock, 0.1)  # 5x the best latency, 200 a second: the server queues
    assert adaptive.limit == 16


def test_latency_may_rise_while_answers_a_second_still_grow() -> None:
    adaptive, clock = _adaptive(cap=64, start=8)
    _round(adaptive, clock, 0.02)  # 400 a second
    _round(adaptive, clock, 0.05)  # 16 in flight: 2.5x the latency, but 320 a second: fewer -> back off
    assert adaptive.limit == 12
    _round(adaptive, clock, 0.025)  # 12 at 25 ms: 480 a second, more than before: grow again
    assert adaptive.limit == 13


def test_no_growth_while_the_limit_is_not_used() -> None:
    adaptive, clock = _adaptive(cap=64)
    for _ in range(5):
        adaptive.started()  # one at a time: the source, not the server, sets the pace
        clock.now += 0.02
        adaptive.record(200, 0.02)
    assert adaptive.limit == 4


def test_a_request_with_no_answer_counts_as_a_refusal() -> None:
    adaptive, _ = _adaptive(cap=8, start=8)
    adaptive.started()
    adaptive.record(None, 10.0)
    assert adaptive.limit == 4


def test_bounded_pool_follows_a_moving_limit() -> None:
    limit = [2]
    running = 0
    peak: list[int] = []
    lock = threading.Lock()
    # Once the limit is raised, each job holds its slot until three run at once: with the limit still at
    # 2 that never happens, and the jobs give up at the deadline, leaving a peak of 2.
    overlapping = threading.Event()
    overlapping.set()

    def job() -> None:
        nonlocal running
        with lock:
            running += 1
            peak.append(running)
            if running >= 3:
                overlapping.set()
        overlapping.wait(timeout=5)
        with lock:
            running -= 1

    with BoundedPool[None](8, lambda future: future.result(), limit=lambda: limit[0]) as pool:
        for _ in range(20):
            pool.submit(job)
        pool.drain()
        assert max(peak) <= 2
        limit[0] = 6
        peak.clear()
        overlapping.clear()
        for _ in range(40):
            pool.submit(job)
        pool.drain()
        assert 2 < max(peak) <= 6
