"""Every hook method against the emulator over loopback (real HTTP, nothing of ours mocked)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_optimizely.core.errors import (
    AuthError,
    BadRequestError,
    ConflictError,
    InvalidIdentifierError,
)
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook

pytestmark = pytest.mark.integration


def test_dcp_service_tables_attributes_profiles_aliases(emulator, emulator_connections) -> None:
    hook = OptimizelyDcpHook()
    assert hook.test_connection()[0]
    service = hook.create_service("integration")
    assert hook.service_id == service.id
    assert hook.get_service().name == "integration"  # type: ignore[union-attr]
    assert hook.update_service("renamed").name == "renamed"

    table = hook.create_table("crm", "uid", description="CRM rows")
    assert table.s3_path and table.aws_access_key
    assert hook.get_table(table.id).name == "crm"  # type: ignore[union-attr]
    assert [t.id for t in hook.list_tables() if t.id == table.id] == [table.id]
    assert hook.update_table(table.id, description="changed").description == "changed"

    plan = hook.create_attribute(table.id, "plan", "string", description="tier")
    hook.create_attribute(table.id, "signup", "datetime", format="yyyy-mm-dd")
    assert {a.name for a in hook.list_attributes(table.id)} >= {"plan", "signup"}
    assert hook.get_attribute(plan.id).datatype == "string"  # type: ignore[union-attr]
    assert hook.update_attribute(plan.id, "tier, changed").description == "tier, changed"

    hook.upsert_profile(table.id, "cust/1", {"plan": "gold", "signup": "2024-01-31"})
    profile = hook.get_profile(table.id, "cust/1")
    assert profile is not None and profile.data["plan"] == "gold"
    assert hook.get_profile(table.id, "nobody") is None
    with pytest.raises(BadRequestError) as caught:
        hook.upsert_profile(table.id, "cust/2", {"not_registered": 1})
    assert caught.value.uuid  # the vendor-style uuid came through

    # Creating the service created its Optimizely table (is_optimizely), the one aliases hang on.
    optimizely_table = next(t for t in hook.list_tables() if t.is_optimizely)
    hook.create_alias(optimizely_table.id, "ouid-1", {table.id: "cust/1"})
    alias = hook.get_alias(optimizely_table.id, "ouid-1")
    assert alias is not None and alias.data[str(table.id)] == "cust/1"
    view = hook.get_consolidated_view("ouid-1")
    assert any(p.data.get("plan") == "gold" for p in view)

    assert list(hook.list_upload_history(table.id)) == []
    creds = hook.s3_credentials(table)
    assert creds.bucket == "optimizely-import" and creds.key_prefix == table.s3_path
    assert creds.endpoint_url == emulator.s3_endpoint_url

    hook.archive_attribute(plan.id)
    archived = hook.get_attribute(plan.id)
    assert archived is None or archived.archived
    hook.delete_table(table.id)


def test_dcp_pagination_over_several_pages(emulator, emulator_connections) -> None:
    hook = OptimizelyDcpHook(requests_per_second=1000)  # the default 100/min would make this a minute
    hook.create_service("paged")
    table = hook.create_table("wide", "uid")
    names = {f"a{i:03d}" for i in range(130)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda name: hook.create_attribute(table.id, name, "long"), sorted(names)))
    before = emulator.received("dcp")["requests"]
    assert {a.name for a in hook.list_attributes(table.id)} >= names
    after = emulator.received("dcp")["requests"]
    route = "GET /dcp_datasources/{table_id}/dcp_datasource_attributes"
    assert after.get(route, 0) - before.get(route, 0) == 2  # 130 items, 100 a page


def test_odp_events_profiles_objects_schema_segments(emulator, emulator_connections) -> None:
    hook = OptimizelyOdpHook()
    assert hook.test_connection()[0]
    hook.create_schema_object("loyalty_cards", "Loyalty cards", "cards")
    assert hook.get_schema_object("loyalty_cards") is not None
    assert hook.get_schema_object("absent_type") is None
    assert any(o.name == "loyalty_cards" for o in hook.list_schema_objects())
    hook.create_schema_field("customers", "tier", "Tier", "string")
    customers = hook.get_schema_object("customers")
    assert customers is not None and "tier" in {f.name for f in customers.fields}
    with pytest.raises(BadRequestError) as caught:
        hook.create_schema_field("customers", "tier", "Tier", "string")  # already there
    assert caught.value.status == 400

    accepted = hook.send_events(
        [{"type": "order", "action": "buy", "identifiers": {"email": "a@b.c"}, "data": {}}]
    )
    assert accepted.get("status") == 202
    with pytest.raises(BadRequestError) as invalid:
        hook.send_events([{"type": "order", "identifiers": {}}])
    assert invalid.value.invalids and "event" in invalid.value.invalids[0]

    hook.upsert_profiles([{"identifiers": {"email": "a@b.c"}, "attributes": {"tier": "gold"}}])
    profile = hook.get_profile("email", "a@b.c")
    assert profile is not None and profile.email == "a@b.c"
    assert hook.get_profile("email", "nobody@b.c") is None

    hook.upsert_objects("loyalty_cards", [{"object_id": "card-1", "fields": {}}])
    card = hook.get_object("loyalty_cards", "card-1")
    assert card is not None
    assert isinstance(list(hook.list_segments()), list)


def test_profile_store_crud_and_query(emulator, emulator_connections) -> None:
    hook = OptimizelyProfileStoreHook()
    assert hook.test_connection()[0]
    device = str(uuid.uuid4())
    created = hook.create_profile(
        {"DeviceIds": [device], "Name": "Ada", "Visits": 3, "Info": {"Email": "ada@x.y"}}
    )
    assert created.ProfileId
    with pytest.raises(ConflictError):
        hook.create_profile({"DeviceIds": [device]})
    scope = created.Scope or None
    fetched = hook.get_profile(created.ProfileId, scope)
    assert fetched is not None and fetched.Name == "Ada"
    replaced = hook.put_profile(created.ProfileId, {**fetched.to_body(), "Visits": 4})
    assert replaced.created is False and replaced.profile.Visits == 4
    assert [p.ProfileId for p in hook.query_profiles(filter="Visits gt 3")] == [created.ProfileId]
    assert hook.delete_profile(created.ProfileId, scope) is True
    assert hook.delete_profile(created.ProfileId, scope) is False


def test_optimove_create_upload_update(emulator, emulator_connections) -> None:
    hook = OptimoveHook()
    assert hook.test_connection()[0]
    connection = hook.create_connection("customers", "customer_id", "from the warehouse")
    batch = str(uuid.uuid4())
    hook.upload_data(
        connection.data_connection_uuid,
        [{"customer_id": "1", "tier": "a"}],
        batch_uuid=batch,
        batch_completed=False,
    )
    hook.upload_data(connection.data_connection_uuid, [{"customer_id": "2"}], batch_uuid=batch)
    hook.update_data(
        connection.data_connection_uuid, [{"primary_key": "1", "data": {"customer_id": "1"}, "ttl": None}]
    )
    with pytest.raises(BadRequestError):
        hook.upload_data(connection.data_connection_uuid, [{"no_key": 1}])
    assert emulator.received("optimove")["requests"]


def test_wrong_keys_fail_test_connection_without_leaking(emulator, monkeypatch) -> None:
    connection = emulator.connection("optimove")
    connection["password"] = "wrong-canary-key"
    monkeypatch.setenv("AIRFLOW_CONN_BAD_OPTIMOVE", json.dumps(connection))
    ok, message = OptimoveHook("bad_optimove").test_connection()
    assert ok is False and "wrong-canary-key" not in message
    with pytest.raises(AuthError):
        OptimoveHook("bad_optimove").create_connection("x", "id")


def test_pacing_against_the_emulators_rate_limit(emulator, emulator_connections) -> None:
    emulator.set_rate_limit("dcp", 15, window_seconds=100)  # 1 s at the tests' time scale
    hook = OptimizelyDcpHook(requests_per_second=1000)  # the server's headers are what must hold us back
    service = hook.create_service("paced")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: hook.get_service(service.id), range(40)))
    assert hook.client.stats.retries == 0, hook.client.stats
    assert time.monotonic() - started >= 1.0  # 41 requests at 15/s span at least two window resets
    assert hook.client.stats.throttled_seconds > 0  # it waited on the headers instead of being refused


def test_retries_survive_the_emulators_faults(emulator, emulator_connections) -> None:
    emulator.set_faults("odp", "POST /events", next=["503", "drop", "500"], retry_after=1)
    hook = OptimizelyOdpHook(max_attempts=5)
    hook.client.retry = type(hook.client.retry)(max_attempts=5, backoff_initial=0.01, backoff_max=0.05)
    hook.send_events([{"type": "t", "action": "a", "identifiers": {"email": "x@y.z"}, "data": {}}])
    stats = hook.client.stats.as_dict()
    assert stats["retries"] == 3
    assert stats["maybe_applied_twice"] >= 2  # the drop and the 500 to a POST may have been applied


def test_429s_beyond_max_attempts_are_waited_out(emulator, emulator_connections) -> None:
    # The server asking to wait is not a fault: max_attempts=1 still gets through three 429s.
    emulator.set_faults("odp", "POST /events", next=["429", "429", "429"], retry_after=1)
    hook = OptimizelyOdpHook(max_attempts=1, max_retry_seconds=60)
    hook.send_events([{"type": "t", "action": "a", "identifiers": {"email": "w@y.z"}, "data": {}}])
    assert hook.client.stats.retries == 3
    assert hook.client.stats.maybe_applied_twice == 0


def test_a_dot_segment_scope_is_refused_and_nothing_is_deleted(emulator, emulator_connections) -> None:
    # The incident: deleting profile keep2 in scope ".." sent DELETE /api/v1.0/keep2 and counted it gone.
    hook = OptimizelyProfileStoreHook()
    created = hook.create_profile({"DeviceIds": [str(uuid.uuid4())], "Name": "Keep"})
    scope = created.Scope or "default"
    for bad_scope in ("..", "."):
        with pytest.raises(InvalidIdentifierError, match="ProfileStore scope"):
            hook.delete_profile(created.ProfileId, bad_scope)
    assert hook.get_profile(created.ProfileId, scope) is not None
    assert hook.delete_profile(created.ProfileId, "../" + scope) is False  # encoded: a scope of its own


def test_errors_name_the_connection_and_what_to_check(emulator, monkeypatch) -> None:
    connection = emulator.connection("optimizely_odp")
    connection["password"] = "wrong-canary-private"
    monkeypatch.setenv("AIRFLOW_CONN_ODP_WRONG_KEY", json.dumps(connection))
    with pytest.raises(AuthError) as caught:
        OptimizelyOdpHook("odp_wrong_key").upsert_profiles(
            {"identifiers": {"email": "a@b.c"}, "attributes": {}}
        )
    message = str(caught.value)
    assert message.startswith("ODP POST /odp/v3/profiles (connection 'odp_wrong_key', host 127.0.0.1:")
    assert "Check the connection's password (the ODP private API key)" in message
    assert "wrong-canary-private" not in message


def test_dcp_oauth_against_the_emulators_token_endpoint(emulator, monkeypatch, caplog) -> None:
    client = emulator.issue_oauth_token()  # an app's user granted it access: a refresh token
    connection = emulator.connection("optimizely")
    connection["password"] = None
    connection["extra"] = {
        **connection["extra"],
        "auth_scheme": "oauth",
        "oauth_refresh_token": client["refresh_token"],
        "oauth_client_id": client["client_id"],
        "oauth_client_secret": client["client_secret"],
        "oauth_refresh_url": emulator.urls["dcp_oauth_token"],
    }
    monkeypatch.setenv("AIRFLOW_CONN_DCP_OAUTH", json.dumps(connection))
    hook = OptimizelyDcpHook("dcp_oauth")
    with caplog.at_level(logging.DEBUG):
        assert hook.test_connection()[0]
        service = hook.create_service("oauth")
        assert hook.get_service(service.id) is not None
    assert hook._oauth.refreshes == 1  # one access token served every call
    assert emulator.expire_oauth_access_tokens() >= 1
    with caplog.at_level(logging.DEBUG):
        assert hook.get_service(service.id) is not None  # a 401, one refresh, then the answer
    assert hook._oauth.refreshes == 2
    for secret in (client["refresh_token"], client["client_secret"], client["access_token"]):
        assert secret not in caplog.text
    bad = {**connection["extra"], "oauth_refresh_token": "not-a-refresh-token"}
    monkeypatch.setenv("AIRFLOW_CONN_DCP_OAUTH_BAD", json.dumps({**connection, "extra": bad}))
    ok, message = OptimizelyDcpHook("dcp_oauth_bad").test_connection()
    assert not ok and "invalid_grant" in message and "oauth_refresh_token" in message
    assert "not-a-refresh-token" not in message
