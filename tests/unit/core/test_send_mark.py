"""The send mark (core.send_mark) made by RestClient: once a block, past every wait, before the wire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_optimizely.core.ratelimit import RateLimiter
from airflow_provider_optimizely.core.rest import RestClient
from airflow_provider_optimizely.core.retry import RetryPolicy
from airflow_provider_optimizely.core.send_mark import marked_on_send, take_mark
from tests.http_test_server import Received, Reply, ScriptedServer

FAST_RETRY = RetryPolicy(max_attempts=3, max_retry_seconds=10, backoff_initial=0.01, backoff_max=0.02)


class Timeline:
    """What happened, in order: a limiter's wait ending, the mark, the server receiving a request."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def mark(self) -> None:
        self.events.append("marked")

    def limiter(self) -> RateLimiter:
        events = self.events

        class Recording(RateLimiter):
            def acquire(self) -> float:
                waited = super().acquire()
                events.append("waited")
                return waited

        return Recording()

    def replying(self, *replies: Reply):
        pending = list(replies)

        def handler(request: Received) -> Reply:
            self.events.append(f"{request.method} received")
            return pending.pop(0)

        return handler


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def client_for(server: ScriptedServer, limiter: RateLimiter) -> RestClient:
    return RestClient(f"{server.url}/v1", rate_limiter=limiter, retry=FAST_RETRY, timeout=(2.0, 2.0))


def test_the_mark_is_made_after_the_wait_before_the_request_and_not_again_on_a_retry(
    server: ScriptedServer,
) -> None:
    timeline = Timeline()
    server.handle(timeline.replying(Reply(503, {}), Reply(202, {})))
    client = client_for(server, timeline.limiter())
    with marked_on_send(timeline.mark):
        assert client.request("POST", "profiles", json=[{"id": 1}]).status_code == 202
    assert timeline.events == ["waited", "marked", "POST received", "waited", "POST received"]


def test_only_the_first_request_that_may_change_something_takes_the_mark(server: ScriptedServer) -> None:
    timeline = Timeline()
    server.handle(timeline.replying(Reply(200, {}), Reply(202, {}), Reply(202, {})))
    client = client_for(server, timeline.limiter())
    with marked_on_send(timeline.mark):
        client.request("GET", "schema")  # a read: it leaves the mark to the write that follows
        client.request("POST", "profiles", json=[{"id": 1}, {"id": 2}])
        client.request("POST", "profiles", json=[{"id": 2}])  # the same batch without a refused item
    assert timeline.events == [
        "waited",
        "GET received",
        "waited",
        "marked",
        "POST received",
        "waited",
        "POST received",
    ]
    assert take_mark() is None  # nothing left pending once the block is over


def test_a_request_stopped_while_it_waits_for_the_budget_is_not_marked(server: ScriptedServer) -> None:
    class Killed(BaseException):
        """The worker dying while this thread waits for the rate budget."""

    class DiesWhileWaiting(RateLimiter):
        def acquire(self) -> float:
            raise Killed

    marks: list[str] = []
    client = client_for(server, DiesWhileWaiting())
    with pytest.raises(Killed), marked_on_send(lambda: marks.append("marked")):
        client.request("POST", "profiles", json=[{"id": 1}])
    assert marks == [] and server.count() == 0


def test_a_mark_that_fails_sends_nothing_and_frees_the_limiter(server: ScriptedServer) -> None:
    def broken_store() -> None:
        raise OSError("the sync state could not be written")

    class Counting(RateLimiter):
        held = 0

        def acquire(self) -> float:
            self.held += 1
            return super().acquire()

        def release(self) -> None:
            self.held -= 1
            super().release()

    limiter = Counting()
    client = client_for(server, limiter)
    with pytest.raises(OSError, match="could not be written"), marked_on_send(broken_store):
        client.request("POST", "profiles", json=[{"id": 1}])
    assert server.count() == 0 and limiter.held == 0
