"""The shared rate budget: key, ``limits`` item, one budget for two limiters, and degrading.

The store is the machine's Redis (127.0.0.1:6379), under keys of this test alone; "unreachable" is a port
nothing listens on, so the failure is the real ``ConnectionError`` of redis-py.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from airflow_provider_optimizely.core.ratelimit import Budget
from airflow_provider_optimizely.core.shared_budget import SharedRateLimiter, account_key, limits_item


@pytest.fixture
def store() -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return client


@pytest.fixture
def key(store: redis.Redis) -> str:
    name = f"optimizely:test:{uuid.uuid4().hex}"
    yield name
    for found in store.scan_iter(f"*{name}*"):
        store.delete(found)


# redis-py retries a refused connection with a backoff (seconds); these tests see the first refusal.
NO_RETRY = Retry(NoBackoff(), 0)


def _unreachable() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=NO_RETRY)


def test_account_key_is_a_digest_per_account_and_route() -> None:
    key = account_key("ODP", "https://api.zaius.com/v3", ["", "secret-key"])
    assert "secret-key" not in key
    assert key == account_key("ODP", "https://api.zaius.com/v3", ["", "secret-key"])
    assert key != account_key("ODP", "https://api.zaius.com/v3", ["", "other-key"])
    assert account_key("ODP", "h", ["k"], "POST /profiles").endswith(":POST /profiles")


def test_limits_item_is_never_looser_than_the_budget() -> None:
    assert (limits_item(Budget(10, 1.0)).amount, limits_item(Budget(10, 1.0)).get_expiry()) == (10, 1)
    assert limits_item(Budget(1, 3.3)).get_expiry() == 4
    assert (limits_item(Budget(5, 0.5)).amount, limits_item(Budget(5, 0.5)).get_expiry()) == (10, 1)


def _send_times(limiters: list[SharedRateLimiter], each: int) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()

    def work(limiter: SharedRateLimiter) -> None:
        for _ in range(each):
            limiter.acquire()
            with lock:
                times.append(time.time())
            limiter.release()

    threads = [threading.Thread(target=work, args=(limiter,)) for limiter in limiters for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(times)


def test_two_limiters_of_one_account_share_one_client_budget(store: redis.Redis, key: str) -> None:
    budget = Budget(5, 1.0)
    workers = [SharedRateLimiter(budget, redis=store, key=key) for _ in range(2)]
    times = _send_times(workers, each=4)  # 16 sends at 5 a second: at least 3 s
    assert len(times) == 16
    # Each time is read just after its grant, late by however long the thread waited for a core; a
    # budget that did not hold would grant all 16 at once.
    for i in range(len(times) - budget.max_requests):
        assert times[i + budget.max_requests] - times[i] >= budget.period * 0.9
    assert not any(worker.degraded for worker in workers)


def test_what_one_worker_learns_from_the_server_holds_the_other(store: redis.Redis, key: str) -> None:
    learner, other = (SharedRateLimiter(None, redis=store, key=key) for _ in range(2))
    learner.acquire()
    learner.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(time.time() + 0.5)})
    learner.release()
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started >= 0.45


def test_a_retry_after_pauses_every_worker(store: redis.Redis, key: str) -> None:
    refused, other = (SharedRateLimiter(None, redis=store, key=key) for _ in range(2))
    refused.pause(0.4)
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started >= 0.35


def test_an_unreachable_store_degrades_to_a_share_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    limiter = SharedRateLimiter(Budget(10, 1.0), redis=_unreachable(), key="k", workers=2)
    with caplog.at_level(logging.WARNING):
        times = _send_times([limiter], each=6)  # 12 sends at 5 a second (half of 10): over 2 s
    assert limiter.degraded
    assert limiter.budget == Budget(5, 1.0)
    assert times[-1] - times[0] >= 2.0 - 0.01
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1


def test_a_store_lost_mid_run_degrades_without_failing(
    store: redis.Redis, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5, retry=NO_RETRY)
    limiter = SharedRateLimiter(Budget(4, 1.0), redis=client, key=key, workers=2)
    limiter.acquire()
    limiter.release()
    assert not limiter.degraded
    # The store goes away: every pooled connection dropped, and the next ones go to a closed port.
    client.connection_pool.connection_kwargs["port"] = 1
    client.connection_pool.reset()
    with caplog.at_level(logging.WARNING):
        limiter.observe({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(time.time() + 30)})
        limiter.acquire()
        limiter.release()
    assert limiter.degraded
    assert limiter.budget == Budget(2, 1.0)
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1
