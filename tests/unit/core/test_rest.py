"""RestClient against a real HTTP server on loopback: pacing, retries, pagination, errors, secrets."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from airflow_provider_optimizely.core.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    ConnectFailedError,
    NotFoundError,
    OptimizelyApiError,
    OptimizelyTransportError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerError,
    TransientError,
)
from airflow_provider_optimizely.core.ratelimit import Budget, RateLimiter
from airflow_provider_optimizely.core.rest import (
    InsecureUrlError,
    RestClient,
    check_url_is_safe,
    encode_json,
)
from airflow_provider_optimizely.core.retry import RetryPolicy
from tests.http_test_server import FixedWindowLimit, Reply, ScriptedServer, paged_list

CANARY = "canary-s3cr3t-token-8c1f"
FAST_RETRY = RetryPolicy(max_attempts=4, max_retry_seconds=30, backoff_initial=0.01, backoff_max=0.05)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def make_client(server: ScriptedServer, **kwargs: object) -> RestClient:
    options: dict = {
        "headers": {"Token": CANARY},
        "secrets": [CANARY],
        "retry": FAST_RETRY,
        "timeout": (2.0, 2.0),
        "api_name": "DCP",
        "conn_id": "dcp_test",
    }
    options.update(kwargs)
    return RestClient(f"{server.url}/v1", **options)


# -- pacing ---------------------------------------------------------------------------------------------


def test_pacing_from_headers_means_no_429_at_all(server: ScriptedServer) -> None:
    limit = FixedWindowLimit(limit=12, window=1)
    server.handle(limit)
    client = make_client(server)
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda _: client.request("GET", "things").status_code, range(30)))
    assert statuses == [200] * 30
    assert limit.refused == 0, "the server had to refuse: the client did not pace itself"
    assert client.stats.retries == 0
    assert client.stats.throttled_seconds > 0  # it did wait, for the window to reset


def test_client_budget_holds_across_threads(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.handle(lambda request: Reply(200, {}))
    # When each request leaves, read in the sending thread: the server's arrival times bunch whenever
    # its one thread waits for a core, which on a loaded 2-core machine says nothing of the client.
    sent: list[float] = []
    send = requests.Session.request

    def timed(session: requests.Session, *args: Any, **kwargs: Any) -> requests.Response:
        sent.append(time.monotonic())
        return send(session, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", timed)
    client = make_client(server, rate_limiter=RateLimiter(Budget(max_requests=10, period=0.5)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: client.request("GET", "x"), range(30)))
    assert len(server.received) == 30
    sent.sort()
    for i in range(len(sent) - 10):
        # A budget that did not hold would send all 30 at once; a thread descheduled between its grant
        # and its send only moves its time later, by a few ms.
        assert sent[i + 10] - sent[i] >= 0.5 * 0.9


def test_retry_after_is_honoured_by_every_thread(server: ScriptedServer) -> None:
    server.script("GET", "/v1/first", Reply(429, {"message": "slow", "uuid": "u"}, {"Retry-After": "1"}))
    server.handle(lambda request: Reply(200, {}))
    client = make_client(server)
    got_429 = threading.Event()
    original_pause = client.rate_limiter.pause

    def pause_and_signal(seconds: float) -> None:
        original_pause(seconds)
        got_429.set()

    client.rate_limiter.pause = pause_and_signal  # type: ignore[method-assign]
    first = threading.Thread(target=lambda: client.request("GET", "first"))
    first.start()
    assert got_429.wait(5)
    client.request("GET", "other")  # another caller, sent during the pause
    first.join(5)
    refused_at = server.received[0].at
    retried_at = next(r.at for r in server.received[1:] if r.path == "/v1/first")
    other_at = next(r.at for r in server.received if r.path == "/v1/other")
    assert retried_at - refused_at >= 1.0
    assert other_at - refused_at >= 1.0
    assert client.stats.retries == 1
    assert client.stats.maybe_applied_twice == 0  # a 429 was refused, never applied


def test_503_without_header_uses_the_configured_default_pause(server: ScriptedServer) -> None:
    server.script("POST", "/v1/things", Reply(503, {"message": "busy"}), Reply(201, {"id": 1}))
    policy = RetryPolicy(max_attempts=3, backoff_initial=0.01, default_retry_after={503: 0.5})
    client = make_client(server, retry=policy)
    assert client.request("POST", "things", json={"a": 1}).status_code == 201
    assert server.received[1].at - server.received[0].at >= 0.5


# -- what is retried and what is not ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
    ],
)
def test_client_errors_are_never_retried(server: ScriptedServer, status: int, error: type) -> None:
    server.script("POST", "/v1/things", Reply(status, {"message": "no", "code": "X", "uuid": "u-1"}))
    server.handle(lambda request: Reply(200, {}))
    client = make_client(server)
    with pytest.raises(error):
        client.request("POST", "things", json={})
    assert server.count() == 1
    assert client.stats.retries == 0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(
    server: ScriptedServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server.script("PUT", "/v1/things/1", Reply(status, {"message": "oops"}), Reply(202, {"id": 1}))
    client = make_client(server)
    with caplog.at_level(logging.WARNING):
        assert client.request("PUT", "things/1", json={"name": "n"}).status_code == 202
    assert server.count("PUT") == 2
    assert client.stats.retries == 1
    assert f"({status}" in caplog.text and "retrying" in caplog.text  # every retry logged with its reason


def test_a_dropped_connection_is_retried_and_counted_as_maybe_applied(server: ScriptedServer) -> None:
    server.script("POST", "/v1/events", Reply(drop=True), Reply(202, {"status": 202}))
    client = make_client(server)
    assert client.request("POST", "events", json=[{"type": "t"}]).status_code == 202
    assert server.count("POST") == 2
    assert server.received[0].body == server.received[1].body  # the same bytes, serialised once
    assert client.stats.as_dict()["maybe_applied_twice"] == 1


def test_a_read_timeout_is_retried_and_counted_as_maybe_applied(server: ScriptedServer) -> None:
    server.script("POST", "/v1/events", Reply(202, {}, delay=1.0), Reply(202, {}))
    client = make_client(server, timeout=(1.0, 0.3))
    assert client.request("POST", "events", json=[]).status_code == 202
    assert client.stats.retries == 1
    assert client.stats.maybe_applied_twice == 1


def test_a_5xx_to_a_post_counts_as_maybe_applied_but_not_to_a_get(server: ScriptedServer) -> None:
    server.script("POST", "/v1/a", Reply(500, {}), Reply(201, {}))
    server.script("GET", "/v1/b", Reply(500, {}), Reply(200, {}))
    client = make_client(server)
    client.request("POST", "a", json={})
    client.request("GET", "b")
    assert client.stats.retries == 2
    assert client.stats.maybe_applied_twice == 1


def test_attempts_are_bounded(server: ScriptedServer) -> None:
    server.handle(lambda request: Reply(503, {"message": "down", "uuid": "u-503"}))
    client = make_client(server)
    with pytest.raises(ServerError) as caught:
        client.request("GET", "x")
    assert server.count() == FAST_RETRY.max_attempts
    assert caught.value.uuid == "u-503"


def test_429_is_retried_beyond_max_attempts_while_time_allows(server: ScriptedServer) -> None:
    # max_attempts bounds real faults; a server asking to wait is retried for as long as the budget lasts.
    wait = Reply(429, {"message": "later", "code": "TOO_MANY_REQUESTS"}, {"Retry-After": "0.05"})
    server.script("POST", "/v1/profiles", *[wait] * (FAST_RETRY.max_attempts + 3), Reply(200, {"ok": True}))
    client = make_client(server)
    assert client.request("POST", "profiles", json={"a": 1}).json() == {"ok": True}
    assert server.count("POST") == FAST_RETRY.max_attempts + 4
    assert client.stats.retries == FAST_RETRY.max_attempts + 3
    assert client.stats.maybe_applied_twice == 0


def test_429_without_retry_after_backs_off_and_is_still_not_a_fault(server: ScriptedServer) -> None:
    wait = Reply(429, {"message": "later"})
    server.script("GET", "/v1/x", *[wait] * (FAST_RETRY.max_attempts + 1), Reply(200, {}))
    client = make_client(server)
    assert client.request("GET", "x").status_code == 200
    assert client.stats.backoff_seconds > 0


def test_503_with_retry_after_is_a_wait_and_without_it_a_fault(server: ScriptedServer) -> None:
    asked = Reply(503, {"message": "busy"}, {"Retry-After": "0.05"})
    server.script("PUT", "/v1/a", *[asked] * (FAST_RETRY.max_attempts + 1), Reply(202, {}))
    server.script("PUT", "/v1/b", *[Reply(503, {"message": "busy"})] * (FAST_RETRY.max_attempts + 1))
    client = make_client(server)
    assert client.request("PUT", "a", json={}).status_code == 202
    with pytest.raises(ServerError) as caught:
        client.request("PUT", "b", json={})
    assert server.count("PUT", "/v1/b") == FAST_RETRY.max_attempts
    assert f"(after {FAST_RETRY.max_attempts} attempts)" in str(caught.value)


def test_total_retry_time_is_bounded(server: ScriptedServer) -> None:
    server.handle(lambda request: Reply(429, {"message": "later"}, {"Retry-After": "30"}))
    client = make_client(server, retry=RetryPolicy(max_attempts=10, max_retry_seconds=2))
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        client.request("GET", "x")
    assert time.monotonic() - started < 1.0  # a 30 s wait would overrun 2 s: give up at once
    assert server.count() == 1
    assert caught.value.retry_after == 30


def test_transport_failure_after_retries_is_a_transport_error() -> None:
    client = RestClient(
        "http://127.0.0.1:9/v1", retry=FAST_RETRY, timeout=(0.5, 0.5), api_name="ODP", conn_id="odp_test"
    )  # port 9: nobody
    with pytest.raises(OptimizelyTransportError) as caught:
        client.request("POST", "events", json=[], params={"secret_param": "x"})
    assert isinstance(caught.value, ConnectFailedError) and isinstance(caught.value, TransientError)
    assert caught.value.attempts == FAST_RETRY.max_attempts
    assert client.stats.maybe_applied_twice == 0  # refused connections never reached a server
    assert str(caught.value) == (
        "ODP POST /v1/events (connection 'odp_test', host 127.0.0.1:9): could not connect: "
        f"connection refused (after {FAST_RETRY.max_attempts} attempt(s))"
    )
    pickle.loads(pickle.dumps(caught.value))


def test_transport_errors_are_told_apart_by_type_not_by_the_urls_text() -> None:
    # The path holds the names the old text matching looked for; the failure is a refused connection.
    client = RestClient("http://127.0.0.1:9/v1", retry=FAST_RETRY, timeout=(0.5, 0.5))
    with pytest.raises(OptimizelyTransportError) as caught:
        client.request("GET", "RemoteDisconnected/SSLError/ProtocolError")
    assert "connection refused" in str(caught.value)
    assert "closed by the server" not in str(caught.value)


# -- pagination -----------------------------------------------------------------------------------------


def test_pagination_follows_link_headers_lazily(server: ScriptedServer) -> None:
    items = [{"id": i} for i in range(250)]
    server.handle(paged_list(items, server.url))
    client = make_client(server)
    pages = client.paginate("dcp_services", per_page=100)
    assert next(pages) == {"id": 0}
    assert server.count() == 1  # nothing fetched ahead
    assert [item["id"] for item in pages] == list(range(1, 250))
    assert server.count() == 3
    assert [r.query["page"] for r in server.received] == [["1"], ["2"], ["3"]]


def test_pagination_refuses_per_page_over_100(server: ScriptedServer) -> None:
    with pytest.raises(ValueError):
        next(make_client(server).paginate("x", per_page=101))


def test_pagination_never_follows_a_link_to_another_host(server: ScriptedServer) -> None:
    server.script(
        "GET", "/v1/x", Reply(200, [1], {"Link": '<https://evil.example/steal?page=2>; rel="next"'})
    )
    pages = make_client(server).paginate("x")
    assert next(pages) == 1
    with pytest.raises(InsecureUrlError):
        next(pages)
    assert server.count() == 1


# -- errors and secrets ---------------------------------------------------------------------------------


def test_typed_error_carries_the_vendors_uuid(server: ScriptedServer) -> None:
    body = {"message": "name is required", "code": "BAD_REQUEST", "uuid": "9f1e-uuid"}
    server.script("POST", "/v1/dcp_services/12/dcp_datasources", Reply(400, body))
    with pytest.raises(BadRequestError) as caught:
        make_client(server).request("POST", "dcp_services/12/dcp_datasources", json={})
    err = caught.value
    assert (err.status, err.code, err.uuid, err.method, err.path, err.conn_id) == (
        400,
        "BAD_REQUEST",
        "9f1e-uuid",
        "POST",
        "/v1/dcp_services/12/dcp_datasources",
        "dcp_test",
    )
    host = server.url.removeprefix("http://")
    assert str(err) == (
        f"DCP POST /v1/dcp_services/12/dcp_datasources (connection 'dcp_test', host {host}) "
        "-> 400 BAD_REQUEST: name is required (uuid 9f1e-uuid)"
    )


def test_the_token_never_reaches_a_log_line_or_an_error(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A hostile answer that echoes the credential back, on a retry path and on a final error.
    echo = {"message": f"bad token {CANARY}", "code": "UNAUTHORIZED", "uuid": "u"}
    server.script("GET", "/v1/a", Reply(503, {"message": f"busy for {CANARY}"}), Reply(401, echo))
    server.script("GET", "/v1/b", Reply(drop=True), Reply(drop=True), Reply(drop=True), Reply(drop=True))
    client = make_client(server)
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(AuthError) as auth:
            client.request("GET", "a", params={"q": "1"})
        with pytest.raises(OptimizelyTransportError) as transport:
            client.request("GET", "b")
    for err in (auth.value, transport.value):
        texts += [str(err), repr(err), repr(getattr(err, "body", "")), str(pickle.dumps(err))]
    texts.append(caplog.text)
    texts += [str(record.args) for record in caplog.records]
    assert server.received[0].headers["Token"] == CANARY  # it was sent, so the search below means something
    assert "retrying" in caplog.text
    for text in texts:
        assert CANARY not in text
    assert "q=1" not in str(auth.value)  # no query string in an error


@pytest.mark.parametrize(
    "url",
    [
        "http://api.optimizely.com/v1",
        "http://10.0.0.5/v1",
        "ftp://127.0.0.1/x",
        "api.optimizely.com/v1",
        # A name under .localhost resolves wherever the machine's resolver says: not trusted by name.
        "http://api.localhost/v1",
        "http://evil.example.localhost:8080/v1",
    ],
)
def test_plain_http_is_refused_except_to_loopback(url: str) -> None:
    with pytest.raises(InsecureUrlError):
        RestClient(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.optimizely.com/v1",
        "http://127.0.0.1:8080/v1",
        "http://127.9.8.7/v1",
        "http://localhost/x",
        "http://LOCALHOST:1/x",
        "http://[::1]:80/",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    check_url_is_safe(url)


def test_a_per_call_base_url_is_checked_too(server: ScriptedServer) -> None:
    with pytest.raises(InsecureUrlError):
        make_client(server).request("GET", "x", base_url="http://vis.optimizely.com/api")
    assert server.count() == 0


# -- threads share one client -----------------------------------------------------------------------------


def test_threads_share_the_pool_and_the_counters(server: ScriptedServer) -> None:
    server.handle(lambda request: Reply(200, {"n": 1}))
    client = make_client(server, pool_size=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: client.request("GET", "x").json()["n"], range(200)))
    assert sum(results) == 200
    assert client.stats.requests == 200


def test_core_never_imports_airflow() -> None:
    code = (
        "import sys\n"
        "import airflow_provider_optimizely.core.rest, airflow_provider_optimizely.core.ratelimit\n"
        "import airflow_provider_optimizely.core.errors, airflow_provider_optimizely.core.retry\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_other_errors_keep_the_base_class(server: ScriptedServer) -> None:
    server.script("GET", "/v1/x", Reply(418, "I'm a teapot"))
    with pytest.raises(OptimizelyApiError) as caught:
        make_client(server).request("GET", "x")
    assert caught.value.status == 418
    assert caught.value.message == "I'm a teapot"


def test_the_body_sent_is_encode_json_of_the_argument(server: ScriptedServer) -> None:
    server.handle(lambda request: Reply(201, {}))
    body = {"data": [{"id": "1", "at": datetime(2026, 3, 1, tzinfo=timezone.utc), "x": "é"}]}
    make_client(server).request("POST", "things", json=body)
    (received,) = server.received
    assert received.body == encode_json(body)
    assert json.loads(received.body) == {"data": [{"id": "1", "at": "2026-03-01T00:00:00Z", "x": "é"}]}
