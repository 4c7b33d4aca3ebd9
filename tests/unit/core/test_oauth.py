"""OAuth 2.0 for DCP against a loopback token endpoint: refresh before expiry and once on a 401, one
refresh at a time for all threads, and neither token in a log line or an error."""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest

from airflow_provider_optimizely.core.errors import AuthError, ServerError
from airflow_provider_optimizely.core.oauth import OAuthRefresher
from airflow_provider_optimizely.core.rest import RestClient
from airflow_provider_optimizely.core.retry import RetryPolicy
from tests.http_test_server import Received, Reply, ScriptedServer

REFRESH = "refresh-canary-7f2a"
CLIENT_SECRET = "client-secret-canary-91bd"
FAST_RETRY = RetryPolicy(max_attempts=3, max_retry_seconds=30, backoff_initial=0.01, backoff_max=0.02)


@dataclass
class FakeOAuth:
    """A token endpoint and an API that takes only the last access token issued (and not revoked)."""

    expires_in: int = 3600
    rotate: bool = False
    down: bool = False  # the token endpoint answers 503
    refresh_token: str = REFRESH
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    forms: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> Reply:
        if request.path == "/oauth2/token":
            return self.token(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not self.issued or token != self.issued[-1] or token in self.revoked:
            return Reply(401, {"message": "expired or unknown token", "code": "UNAUTHORIZED", "uuid": "u"})
        return Reply(200, [{"id": 1, "name": "svc"}])

    def token(self, request: Received) -> Reply:
        form = parse_qs(request.body.decode())
        with self.lock:
            self.forms.append(form)
            if self.down:
                return Reply(503, {"message": "token service down"})
            if request.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                return Reply(400, {"error": "invalid_request"})
            if form.get("client_secret") != [CLIENT_SECRET]:
                return Reply(401, {"error": "invalid_client"})
            if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [
                self.refresh_token
            ]:
                # A hostile server that echoes what it got must not put it in our error.
                return Reply(400, {"error": "invalid_grant", "error_description": f"unknown {form}"})
            token = f"access-canary-{len(self.issued) + 1}"
            self.issued.append(token)
            answer = {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
            if self.rotate:
                self.refresh_token = f"{REFRESH}-rotated-{len(self.issued)}"
                answer["refresh_token"] = self.refresh_token
            return Reply(200, answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def make(server: ScriptedServer, fake: FakeOAuth, clock: Clock | None = None, **kwargs: object) -> RestClient:
    server.handle(fake)
    secrets: list[str] = []
    hint = "Check the connection's extras oauth_refresh_token, oauth_client_id and oauth_client_secret"
    refresher = OAuthRefresher(
        str(kwargs.pop("refresh_token", REFRESH)),
        "client-1",
        str(kwargs.pop("client_secret", CLIENT_SECRET)),
        token_url=f"{server.url}/oauth2/token",
        on_secret=secrets.append,
        api_name="DCP",
        conn_id="dcp_oauth",
        hint=hint,
        clock=clock or Clock(),
        retry=FAST_RETRY,
    )
    client = RestClient(
        f"{server.url}/v1",
        auth=refresher,
        retry=FAST_RETRY,
        api_name="DCP",
        conn_id="dcp_oauth",
        auth_hint=hint,
        **kwargs,  # type: ignore[arg-type]
    )
    client.registered = secrets  # type: ignore[attr-defined]
    return client


def _api_requests(server: ScriptedServer) -> list[Received]:
    return [r for r in server.received if r.path != "/oauth2/token"]


def test_the_access_token_comes_from_the_refresh_token(server: ScriptedServer) -> None:
    fake = FakeOAuth()
    client = make(server, fake)
    assert client.get_json("dcp_services") == [{"id": 1, "name": "svc"}]
    assert fake.forms == [
        {
            "grant_type": ["refresh_token"],
            "refresh_token": [REFRESH],
            "client_id": ["client-1"],
            "client_secret": [CLIENT_SECRET],
        }
    ]
    (sent,) = _api_requests(server)
    assert sent.headers["Authorization"] == "Bearer access-canary-1"
    assert "Token" not in sent.headers
    assert "access-canary-1" in client.registered  # type: ignore[attr-defined]


def test_the_token_is_refreshed_before_it_expires(server: ScriptedServer) -> None:
    fake = FakeOAuth(expires_in=3600)
    clock = Clock()
    client = make(server, fake, clock)
    client.get_json("dcp_services")
    clock.now += 3500  # 100 s left: still used
    client.get_json("dcp_services")
    assert len(fake.issued) == 1
    clock.now += 45  # 55 s left: refreshed first, so no request leaves with a token about to expire
    client.get_json("dcp_services")
    assert len(fake.issued) == 2
    assert [r.headers["Authorization"] for r in _api_requests(server)] == [
        "Bearer access-canary-1",
        "Bearer access-canary-1",
        "Bearer access-canary-2",
    ]
    assert client.stats.retries == 0  # never refused


def test_a_401_refreshes_once_and_sends_again(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeOAuth()
    client = make(server, fake)
    client.get_json("dcp_services")
    fake.revoked.add("access-canary-1")  # revoked early, e.g. by an administrator
    with caplog.at_level(logging.DEBUG):
        assert client.get_json("dcp_services") == [{"id": 1, "name": "svc"}]
    assert len(fake.issued) == 2
    assert client.stats.retries == 1
    fake.revoked.add("access-canary-2")
    fake.revoked.add("access-canary-3")  # every new token refused too: one refresh, then the AuthError
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        client.get_json("dcp_services")
    assert len(fake.issued) == 3
    message = str(caught.value)
    assert "connection 'dcp_oauth'" in message and "oauth_refresh_token" in message
    for text in (message, caplog.text, str(pickle.dumps(caught.value))):
        for secret in (REFRESH, CLIENT_SECRET, *fake.issued):
            assert secret not in text


def test_one_refresh_at_a_time_for_all_threads(server: ScriptedServer) -> None:
    fake = FakeOAuth()
    clock = Clock()
    client = make(server, fake, clock, pool_size=16)
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert all(pool.map(lambda _: client.get_json("dcp_services"), range(64)))
    assert len(fake.forms) == 1
    clock.now += 3590  # every thread now finds the token about to expire at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert all(pool.map(lambda _: client.get_json("dcp_services"), range(64)))
    assert len(fake.forms) == 2
    fake.revoked.add("access-canary-2")  # every thread gets a 401 to the same token at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert all(pool.map(lambda _: client.get_json("dcp_services"), range(64)))
    assert len(fake.forms) == 3


def test_a_refused_refresh_token_is_terminal_and_names_what_to_check(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeOAuth()
    client = make(server, fake, refresh_token="refresh-canary-wrong")
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as caught:
        client.get_json("dcp_services")
    message = str(caught.value)
    assert "invalid_grant" in message and "oauth_refresh_token" in message
    assert "connection 'dcp_oauth'" in message and "/oauth2/token" in message
    assert len(fake.forms) == 1  # not retried
    assert _api_requests(server) == []  # nothing sent to the API without a token
    for text in (message, caplog.text, repr(caught.value.body)):
        assert "refresh-canary-wrong" not in text and CLIENT_SECRET not in text


def test_a_refused_client_is_an_auth_error(server: ScriptedServer) -> None:
    client = make(server, FakeOAuth(), client_secret="client-secret-canary-wrong")
    with pytest.raises(AuthError, match="invalid_client") as caught:
        client.get_json("dcp_services")
    assert "client-secret-canary-wrong" not in str(caught.value)


def test_a_rotated_refresh_token_is_used_from_then_on(server: ScriptedServer) -> None:
    fake = FakeOAuth(rotate=True)
    clock = Clock()
    client = make(server, fake, clock)
    client.get_json("dcp_services")
    clock.now += 3590
    client.get_json("dcp_services")
    assert [form["refresh_token"] for form in fake.forms] == [[REFRESH], [f"{REFRESH}-rotated-1"]]
    assert f"{REFRESH}-rotated-2" in client.registered  # type: ignore[attr-defined]
    assert client.scrub(f"x {REFRESH}-rotated-2 access-canary-2") == "x *** ***"


def test_a_token_endpoint_that_is_down_is_a_bounded_fault(server: ScriptedServer) -> None:
    fake = FakeOAuth(down=True)
    client = make(server, fake)
    with pytest.raises(ServerError, match="token service down"):
        client.request("POST", "dcp_services", json={"name": "n"})
    # Each of the API call's 3 attempts asked the token endpoint 3 times; nothing went to the API.
    assert len(fake.forms) == FAST_RETRY.max_attempts**2
    assert _api_requests(server) == []
    assert client.stats.maybe_applied_twice == 0
