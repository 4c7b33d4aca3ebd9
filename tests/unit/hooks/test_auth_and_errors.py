"""Each hook's credentials and what its errors say: DCP's auth schemes (classic, OAuth; a personal token
is never offered as Bearer), ODP's private-key routes, and errors that name the connection, the API, the
method, the URL path and the connection field to check, never a secret."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk._shared.secrets_masker import redact

from airflow_provider_optimizely.core.errors import (
    AuthError,
    ConnectFailedError,
    OptimizelyConfigError,
)
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from tests.http_test_server import Reply, ScriptedServer
from tests.unit.core.test_oauth import CLIENT_SECRET, REFRESH, FakeOAuth

# -- DCP auth -------------------------------------------------------------------------------------------


def _dcp(server: ScriptedServer, set_connection: Callable[..., None], password: str | None, **extra: Any):
    set_connection("dcp_auth", "optimizely", f"{server.url}/v1", password, **extra)
    return OptimizelyDcpHook("dcp_auth", max_attempts=1)


@pytest.mark.parametrize(
    ("extra", "headers"),
    [
        ({}, {"Token": "tok-1"}),
        ({"auth_scheme": "classic"}, {"Token": "tok-1"}),
        ({"auth_scheme": "OAuth"}, {"Authorization": "Bearer tok-1"}),  # an access token in password
    ],
)
def test_dcp_auth_schemes(
    server: ScriptedServer, set_connection: Callable[..., None], extra: dict, headers: dict
) -> None:
    server.handle(lambda request: Reply(200, []))
    list(_dcp(server, set_connection, "tok-1", **extra).list_services())
    sent = server.received[0].headers
    assert {name: sent[name] for name in headers} == headers
    assert ("Authorization" in sent) == ("Authorization" in headers)  # classic: never also as Bearer
    assert ("Token" in sent) == ("Token" in headers)


@pytest.mark.parametrize(
    ("token_type", "headers"),
    [("classic", {"Token": "tok-1"}), ("bearer", {"Authorization": "Bearer tok-1"})],
)
def test_dcp_reads_the_old_token_type_with_a_warning(
    server: ScriptedServer, set_connection: Callable[..., None], token_type: str, headers: dict
) -> None:
    server.handle(lambda request: Reply(200, []))
    with pytest.warns(AirflowProviderDeprecationWarning, match="auth_scheme"):
        list(_dcp(server, set_connection, "tok-1", token_type=token_type).list_services())
    assert {name: server.received[0].headers.get(name) for name in headers} == headers


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"token_type": "***"}, "Airflow shows, and may save, an extra named \\*token\\* as '\\*\\*\\*'"),
        ({"auth_scheme": "personal"}, "auth_scheme must be 'classic' or 'oauth'"),
        ({"auth_scheme": "oauth", "oauth_refresh_token": "r"}, "needs the extra oauth_client_id"),
    ],
)
def test_dcp_auth_configuration_errors_say_what_to_change(
    server: ScriptedServer, set_connection: Callable[..., None], extra: dict, message: str
) -> None:
    hook = _dcp(server, set_connection, "tok-1", **extra)
    with pytest.raises(OptimizelyConfigError, match=message):
        list(hook.list_services())
    assert server.count() == 0


def test_dcp_oauth_from_a_refresh_token(
    server: ScriptedServer, set_connection: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeOAuth()
    server.handle(fake)
    hook = _dcp(
        server,
        set_connection,
        None,  # no password at all: the refresh token is the credential
        auth_scheme="oauth",
        oauth_refresh_token=REFRESH,
        oauth_client_id="client-1",
        oauth_client_secret=CLIENT_SECRET,
        oauth_refresh_url=f"{server.url}/oauth2/token",
    )
    with caplog.at_level(logging.DEBUG):
        assert [s.id for s in hook.list_services()] == [1]
        ok, message = hook.test_connection()
    assert ok, message
    assert len(fake.issued) == 1  # the connection test shares the hook's access token
    assert redact(f"a {fake.issued[0]} b {REFRESH} c {CLIENT_SECRET}") == "a *** b *** c ***"
    for secret in (REFRESH, CLIENT_SECRET, *fake.issued):
        assert secret not in caplog.text + message


def test_dcp_oauth_reads_the_old_token_url_name(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    fake = FakeOAuth()
    server.handle(fake)
    hook = _dcp(
        server,
        set_connection,
        None,
        auth_scheme="oauth",
        oauth_refresh_token=REFRESH,
        oauth_client_id="client-1",
        oauth_client_secret=CLIENT_SECRET,
        oauth_token_url=f"{server.url}/oauth2/token",
    )
    with pytest.warns(AirflowProviderDeprecationWarning, match="oauth_refresh_url"):
        assert [s.id for s in hook.list_services()] == [1]


def test_optimove_reads_the_old_brand_key_name(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.handle(lambda request: Reply(200, {}))
    set_connection("om_old", "optimove", f"{server.url}/v1", "k", brand_key="brand-1")
    with pytest.warns(AirflowProviderDeprecationWarning, match="brand_api_key"):
        OptimoveHook("om_old").update_data("c", [])
    assert server.received[0].headers["x-brand-key"] == "brand-1"


# -- ODP: private-key routes with only the public key fail before sending ------------------------------

PRIVATE_ROUTES: list[tuple[str, Callable[[OptimizelyOdpHook], object]]] = [
    ("POST /profiles", lambda h: h.upsert_profiles([{"identifiers": {"email": "a@b.c"}, "attributes": {}}])),
    ("GET /profiles", lambda h: h.get_profile("email", "a@b.c")),
    ("GET /schema/objects", lambda h: list(h.list_schema_objects())),
    ("GET /schema/objects/{object_type}", lambda h: h.get_schema_object("customers")),
    ("POST /schema/objects/{object_type}", lambda h: h.create_schema_object("orders", "Orders")),
    ("POST /schema/objects/{object_type}/fields", lambda h: h.create_schema_field("c", "f", "F", "string")),
    ("GET /segments", lambda h: list(h.list_segments())),
]


@pytest.mark.parametrize(("route", "call"), PRIVATE_ROUTES, ids=[route for route, _ in PRIVATE_ROUTES])
def test_odp_private_routes_need_the_private_key(
    server: ScriptedServer, set_connection: Callable[..., None], route: str, call: Callable
) -> None:
    server.handle(lambda request: Reply(200, {}))
    set_connection("odp_public", "optimizely_odp", f"{server.url}/v3", None, public_api_key="odp-public")
    with pytest.raises(OptimizelyConfigError) as caught:
        call(OptimizelyOdpHook("odp_public"))
    message = str(caught.value)
    assert "connection 'odp_public'" in message and route in message and "password" in message
    assert "odp-public" not in message
    assert server.count() == 0


def test_odp_public_routes_go_with_the_public_key(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.handle(lambda request: Reply(202, {}))
    set_connection("odp_public", "optimizely_odp", f"{server.url}/v3", None, public_api_key="odp-public")
    hook = OptimizelyOdpHook("odp_public")
    hook.send_events([{"type": "t", "action": "a", "identifiers": {"email": "a@b.c"}, "data": {}}])
    hook.upsert_objects("orders", [{"object_id": "1", "fields": {}}])
    assert [r.headers["x-api-key"] for r in server.received] == ["odp-public", "odp-public"]
    ok, message = hook.test_connection()
    assert not ok and "private API key" in message and server.count() == 2


# -- every error names the connection, the API, the method, the URL path and the field to check --------


def _each_hook(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> list[tuple[Any, Callable, str]]:
    set_connection("e_dcp", "optimizely", f"{server.url}/dcp/v1", "dcp-canary-secret")
    set_connection("e_odp", "optimizely_odp", f"{server.url}/odp/v3", "odp-canary-secret")
    set_connection("e_odp_pub", "optimizely_odp", f"{server.url}/odp/v3", None, public_api_key="pub-canary-1")
    set_connection("e_ps", "optimizely_profile_store", f"{server.url}/ps", "ps-canary-secret")
    set_connection(
        "e_om", "optimove", f"{server.url}/om/v1", "om-canary-secret", brand_api_key="om-brand-canary-e"
    )
    return [
        (OptimizelyDcpHook("e_dcp", max_attempts=1), lambda h: h.get_table(7), "password"),
        (OptimizelyOdpHook("e_odp", max_attempts=1), lambda h: h.get_profile("email", "x"), "password"),
        (OptimizelyOdpHook("e_odp_pub", max_attempts=1), lambda h: h.send_events([]), "public_api_key"),
        (OptimizelyProfileStoreHook("e_ps", max_attempts=1), lambda h: h.get_profile("p1", "s"), "password"),
        (OptimoveHook("e_om", max_attempts=1), lambda h: h.update_data("c-1", []), "brand_api_key"),
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_name_everything_needed_to_fix_them(
    server: ScriptedServer, set_connection: Callable[..., None], status: int
) -> None:
    server.handle(lambda request: Reply(status, {"message": "no", "code": "DENIED", "uuid": "u-1"}))
    host = server.url.removeprefix("http://")
    for hook, call, field in _each_hook(server, set_connection):
        server.received.clear()
        with pytest.raises(AuthError) as caught:
            call(hook)
        message = str(caught.value)
        path = server.received[0].target.split("?")[0]
        assert message.startswith(f"{hook.api_name} {server.received[0].method} {path} ")
        assert f"(connection {hook.conn_id!r}, host {host})" in message
        assert f"-> {status} DENIED: no (uuid u-1). Check the connection's" in message
        assert field in message.split("Check", 1)[1], message
        assert "canary" not in message


def test_dcp_auth_errors_name_the_scheme_fields(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.handle(lambda request: Reply(401, {"message": "no"}))
    classic = _dcp(server, set_connection, "tok-1")
    with pytest.raises(AuthError, match=r"a DCP classic token: DCP refuses personal tokens.*auth_scheme"):
        classic.get_table(1)
    access = _dcp(server, set_connection, "tok-1", auth_scheme="oauth")
    with pytest.raises(AuthError, match=r"an OAuth access token, which expires.*oauth_refresh_token"):
        access.get_table(1)


def test_transport_errors_name_the_connection_and_where(set_connection: Callable[..., None]) -> None:
    set_connection("nobody_home", "optimove", "http://127.0.0.1:9/api/v1", "k", brand_api_key="b")
    hook = OptimoveHook("nobody_home", max_attempts=2)
    hook.client.retry = type(hook.client.retry)(max_attempts=2, backoff_initial=0.01, backoff_max=0.02)
    with pytest.raises(ConnectFailedError) as caught:
        hook.update_data("c-1", [])
    assert str(caught.value) == (
        "Optimove PUT /api/v1/connections/c-1/update_data (connection 'nobody_home', host 127.0.0.1:9): "
        "could not connect: connection refused (after 2 attempt(s))"
    )


def test_test_connection_is_bounded_whatever_the_connection_allows(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.handle(lambda request: Reply(503, {"message": "down"}))
    set_connection("patient", "optimizely_profile_store", f"{server.url}/ps", "k", max_attempts=50)
    ok, message = OptimizelyProfileStoreHook("patient").test_connection()
    assert not ok and "connection 'patient'" in message and "503" in message
    assert server.count() == 2
