"""The shared limiter: client budget across threads, server headers, Retry-After pauses."""

from __future__ import annotations

import itertools
import threading
import time
from email.utils import formatdate

from airflow_provider_optimizely.core.ratelimit import Budget, RateLimiter, parse_retry_after


def _acquire_from_threads(limiter: RateLimiter, threads: int, each: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            limiter.acquire()
            with lock:
                times.append(time.monotonic())
            limiter.release()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return sorted(times)


def test_budget_holds_across_eight_threads() -> None:
    budget = Budget(max_requests=10, period=0.25)
    times = _acquire_from_threads(RateLimiter(budget), threads=8, each=5)  # 40 sends: >= 3 periods
    assert len(times) == 40
    # No sliding window of `period` seconds ever holds more than `max_requests` sends.
    for i in range(len(times) - budget.max_requests):
        assert times[i + budget.max_requests] - times[i] >= budget.period - 1e-3
    assert times[-1] - times[0] >= 3 * budget.period - 1e-3


def test_budget_from_rates() -> None:
    assert Budget.per_second(10) == Budget(10, 1.0)
    assert Budget.per_second(0.5) == Budget(1, 2.0)
    assert Budget.per_minute(100) == Budget(100, 60.0)


def test_spent_server_window_blocks_until_reset() -> None:
    limiter = RateLimiter()
    limiter.acquire()
    limiter.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(time.time() + 0.4)})
    limiter.release()
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.4


def test_remaining_budget_is_spread_over_the_window() -> None:
    limiter = RateLimiter()
    limiter.acquire()
    # 4 left in a window that ends 2 s from now (1 s once the rounding margin is taken): 0.25 s apart.
    limiter.observe({"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": str(time.time() + 2.0)})
    limiter.release()
    times = _acquire_from_threads(limiter, threads=2, each=2)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.15


def test_late_answer_from_an_old_window_is_ignored() -> None:
    limiter = RateLimiter()
    now = time.time()
    limiter.observe({"X-RateLimit-Remaining": "50", "X-RateLimit-Reset": str(now + 2)})
    limiter.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(now - 1)})
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started < 0.2


def test_pause_holds_every_thread() -> None:
    limiter = RateLimiter()
    paused_at = time.monotonic()
    limiter.pause(1.0)
    times = _acquire_from_threads(limiter, threads=4, each=1)
    assert len(times) == 4
    assert times[0] - paused_at >= 1.0
    assert times[-1] - times[0] < 0.2  # all released together once the pause is over
    # Each thread waited for most of the pause: on a loaded machine a thread may start a little late.
    assert limiter.throttled_seconds >= 4 * 0.5


def test_retry_after_in_both_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_ten = formatdate(time.time() + 10, usegmt=True)
    assert 8.0 <= (parse_retry_after(in_ten) or 0) <= 10.0


def test_budget_counted_twice_in_flight_is_given_back_once_all_answered() -> None:
    """Three requests in flight; the server counted all three before answering the first. Counting the
    other two as spent again leaves 0 of the 3 the server still has; once all are answered, its lowest
    figure (3) is exact and the limiter may send 3 more at once."""
    limiter = RateLimiter()
    reset = str(time.time() + 30)
    for _ in range(3):
        limiter.acquire()
    for remaining in ("4", "3", "5"):  # answers out of order: the server counted them all by the first
        limiter.observe({"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": reset})
    # While requests are in flight, the estimate is the safe one: 4 - 2 others in flight, then less.
    limiter.release()
    limiter.release()
    limiter.release()
    assert limiter._server_remaining == 3
    started = time.monotonic()
    limiter.acquire()  # 3 left in a 30-s window: spread ~10 s apart, the first at once
    assert time.monotonic() - started < 0.2


def test_a_quiet_moment_never_raises_the_budget_above_the_servers_figure() -> None:
    limiter = RateLimiter()
    reset = str(time.time() + 30)
    limiter.acquire()
    limiter.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    limiter.release()
    assert limiter._server_remaining == 0


def test_requests_in_flight_at_a_window_roll_count_in_the_new_window() -> None:
    """Two requests still unanswered when the window resets may land in the new one: of its 5, 3 are
    left to send at once."""
    clock = [1000.0]
    limiter = RateLimiter(clock=lambda: clock[0], wall_clock=lambda: clock[0])
    limiter.acquire()
    limiter.acquire()
    limiter.observe({"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1001"})
    clock[0] = 1001.1  # past the reset (and its margin), both still in flight
    assert limiter._wait(clock[0]) <= 0
    assert limiter._server_remaining == 3
