"""Each API hook: its auth header, paths and bodies, answers parsed, test_connection (scripted server)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_optimizely.core.errors import BadRequestError, ConflictError
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.models.dcp import DcpTable
from tests.http_test_server import Reply, ScriptedServer, paged_list

TABLE = {
    "id": 7,
    "name": "crm",
    "dcp_service_id": 3,
    "s3_path": "dcp/3/7",
    "aws_access_key": "AKIA-TEST",
    "aws_secret_key": "table-secret-canary",
    "keyfield_locator_type": "uid",
}


# -- DCP ------------------------------------------------------------------------------------------------


def dcp(server: ScriptedServer, set_connection: Callable[..., None], **extra: object) -> OptimizelyDcpHook:
    extra.setdefault("profile_api_base", f"{server.url}/profile-api")
    set_connection("dcp_test", "optimizely", f"{server.url}/v1", "dcp-token", **extra)
    return OptimizelyDcpHook("dcp_test", max_attempts=2)


@pytest.mark.parametrize(
    ("auth_scheme", "header", "value"),
    [(None, "Token", "dcp-token"), ("oauth", "Authorization", "Bearer dcp-token")],
)
def test_dcp_auth_header(
    server: ScriptedServer,
    set_connection: Callable[..., None],
    auth_scheme: str | None,
    header: str,
    value: str,
) -> None:
    server.script("GET", "/v1/dcp_services", Reply(200, [{"id": 3, "name": "svc"}]))
    hook = dcp(server, set_connection, **({"auth_scheme": auth_scheme} if auth_scheme else {}))
    assert [s.id for s in hook.list_services()] == [3]
    assert server.received[0].headers[header] == value


def test_dcp_service_id_is_looked_up_once_when_not_configured(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.script("GET", "/v1/dcp_services", Reply(200, [{"id": 3, "name": "svc"}]))
    server.handle(paged_list([TABLE, {**TABLE, "id": 8}], server.url))
    hook = dcp(server, set_connection)
    assert [t.id for t in hook.list_tables()] == [7, 8]
    assert [t.id for t in hook.list_tables()] == [7, 8]
    assert server.count("GET", "/v1/dcp_services") == 1
    assert server.count("GET", "/v1/dcp_services/3/dcp_datasources") == 2


def test_dcp_create_table_and_attribute_send_the_documented_bodies(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.script("POST", "/v1/dcp_services/3/dcp_datasources", Reply(201, TABLE))
    attribute = {"id": 11, "name": "signup", "datatype": "datetime", "format": "epoch"}
    server.script("POST", "/v1/dcp_datasources/7/dcp_datasource_attributes", Reply(201, attribute))
    hook = dcp(server, set_connection, dcp_service_id=3)
    table = hook.create_table("crm", "cookie", "crm_id", description="CRM")
    created = hook.create_attribute(table.id, "signup", "datetime", format="epoch")
    assert server.received[0].json() == {
        "name": "crm",
        "keyfield_locator_type": "cookie",
        "keyfield_locator_name": "crm_id",
        "description": "CRM",
    }
    assert server.received[1].json() == {"name": "signup", "datatype": "datetime", "format": "epoch"}
    assert (created.id, created.format) == (11, "epoch")
    assert "table-secret-canary" not in repr(table)  # S3 secret kept as SecretStr


def test_dcp_profiles_go_to_the_profile_api_base_with_quoted_ids(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    answer = {"data": {"plan": "gold"}, "customerId": "a/b?c", "datasourceId": 7, "dcpServiceId": 3}
    server.script("POST", "/profile-api/customer_profile/3/7/a%2Fb%3Fc", Reply(200, answer))
    server.script(
        "GET", "/profile-api/customer_profile/3/7/nobody", Reply(404, {"message": "no", "uuid": "u"})
    )
    hook = dcp(server, set_connection, dcp_service_id=3)
    assert hook.upsert_profile(7, "a/b?c", {"plan": "gold"}) == answer
    assert server.received[0].json() == {"data": {"plan": "gold"}}
    assert hook.get_profile(7, "nobody") is None


def test_dcp_upload_history_path_override(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    entry = {"file_name": "a.csv", "status": "processed", "rows_total": 2, "rows_failed": 0, "errors": []}
    server.script("GET", "/v1/custom/7/history", Reply(200, [entry]))
    hook = dcp(server, set_connection, dcp_service_id=3, upload_history_path="custom/{table_id}/history")
    assert [e.status for e in hook.list_upload_history(7)] == ["processed"]


def test_dcp_s3_credentials(server: ScriptedServer, set_connection: Callable[..., None]) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    hook = dcp(server, set_connection, s3_endpoint_url="http://127.0.0.1:5999", s3_region="us-east-1")
    creds = hook.s3_credentials(DcpTable.model_validate(TABLE))
    assert (creds.bucket, creds.key_prefix, creds.aws_access_key_id) == (
        "optimizely-import",
        "dcp/3/7",
        "AKIA-TEST",
    )
    assert creds.aws_secret_access_key == "table-secret-canary"
    assert (creds.endpoint_url, creds.region) == ("http://127.0.0.1:5999", "us-east-1")
    assert creds.key_for("f.csv") == "dcp/3/7/f.csv"
    assert "table-secret-canary" not in repr(creds)
    assert redact("x table-secret-canary") == "x ***"


def test_dcp_test_connection(server: ScriptedServer, set_connection: Callable[..., None]) -> None:
    server.script("GET", "/v1/dcp_services", Reply(200, [{"id": 3, "name": "svc"}]))
    ok, message = dcp(server, set_connection).test_connection()
    assert ok, message
    assert "dcp-token" not in message


# -- ODP ------------------------------------------------------------------------------------------------


def odp(server: ScriptedServer, set_connection: Callable[..., None]) -> OptimizelyOdpHook:
    set_connection(
        "odp_test", "optimizely_odp", f"{server.url}/v3", "odp-private", public_api_key="odp-public"
    )
    return OptimizelyOdpHook("odp_test", max_attempts=2)


def test_odp_events_with_invalids(server: ScriptedServer, set_connection: Callable[..., None]) -> None:
    invalid = {"detail": {"invalids": [{"event": 1, "message": "identifiers required"}]}}
    server.script("POST", "/v3/events", Reply(202, {"title": "Accepted", "status": 202}), Reply(400, invalid))
    hook = odp(server, set_connection)
    events = [{"type": "order", "action": "buy", "identifiers": {"email": "a@b.c"}, "data": {}}]
    assert hook.send_events(events)["status"] == 202
    assert server.received[0].headers["x-api-key"] == "odp-private"
    assert server.received[0].json() == events
    with pytest.raises(BadRequestError) as caught:
        hook.send_events([{"type": "order"}, {"type": "x"}])
    assert caught.value.invalids == [{"event": 1, "message": "identifiers required"}]
    with pytest.raises(ValueError):
        hook.send_events([{"type": "t"}] * 501)


def test_odp_profiles_have_their_own_limit(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.handle(lambda request: Reply(200, {}))
    hook = odp(server, set_connection)
    assert hook.profiles_rate_limiter.budget is not None
    assert hook.profiles_rate_limiter.budget.max_requests == 10
    assert hook.client.rate_limiter.budget is None  # events and objects: no published limit
    for _ in range(12):
        hook.upsert_profiles({"identifiers": {"email": "a@b.c"}, "attributes": {"x": 1}})
    arrivals = [r.at for r in server.received]
    assert arrivals[10] - arrivals[0] >= 0.95  # the 11th waited for the first second to pass


def test_odp_schema_and_reads(server: ScriptedServer, set_connection: Callable[..., None]) -> None:
    server.script(
        "GET",
        "/v3/schema/objects/customers",
        Reply(200, {"name": "customers", "fields": [{"name": "email"}]}),
    )
    server.script("GET", "/v3/schema/objects/nope", Reply(404, {}))
    server.script(
        "POST", "/v3/schema/objects/orders", Reply(201, {"name": "orders", "display_name": "Orders"})
    )
    server.script("POST", "/v3/schema/objects/orders/fields", Reply(201, {"name": "total", "type": "number"}))
    server.script("GET", "/v3/segments", Reply(200, [{"name": "vip", "customer_count": 3}]))
    server.script("GET", "/v3/profiles/email/a%40b.c", Reply(200, {"email": "a@b.c", "new_field": 1}))
    hook = odp(server, set_connection)
    assert [f.name for f in hook.get_schema_object("customers").fields] == ["email"]  # type: ignore[union-attr]
    assert hook.get_schema_object("nope") is None
    assert hook.create_schema_object("orders", "Orders").display_name == "Orders"
    assert hook.create_schema_field("orders", "total", "Total", "number").type == "number"
    assert server.received[3].json() == {"name": "total", "display_name": "Total", "type": "number"}
    assert [s.name for s in hook.list_segments()] == ["vip"]
    profile = hook.get_profile("email", "a@b.c", fields=["email"])
    assert profile is not None and profile.email == "a@b.c"
    assert profile.model_extra == {"new_field": 1}  # a vendor's new field is kept
    assert server.received[-1].query == {"fields": ["email"]}


# -- Profile Store --------------------------------------------------------------------------------------


def profile_store(server: ScriptedServer, set_connection: Callable[..., None]) -> OptimizelyProfileStoreHook:
    set_connection("ps_test", "optimizely_profile_store", f"{server.url}/ps", "ps-key", default_scope="shop")
    return OptimizelyProfileStoreHook("ps_test", max_attempts=2)


def test_profile_store_crud(server: ScriptedServer, set_connection: Callable[..., None]) -> None:
    stored = {"ProfileId": "p1", "DeviceIds": ["d1"], "Scope": "shop", "Visits": 1}
    server.script("POST", "/ps/api/v1.0/profiles/", Reply(201, stored), Reply(409, {"message": "duplicate"}))
    server.script("PUT", "/ps/api/v1.0/profiles/p1", Reply(200, stored), Reply(201, stored))
    server.script("GET", "/ps/api/v1.0/profiles/shop/p1", Reply(200, stored))
    server.script("DELETE", "/ps/api/v1.0/profiles/shop/p1", Reply(200, {}), Reply(404, {}))
    hook = profile_store(server, set_connection)
    assert hook.create_profile({"DeviceIds": ["d1"]}).ProfileId == "p1"
    assert server.received[0].headers["Authorization"] == "epi-single ps-key"
    with pytest.raises(ConflictError):
        hook.create_profile({"DeviceIds": ["d1"]})
    assert hook.put_profile("p1", stored).created is False
    assert hook.put_profile("p1", stored).created is True
    assert hook.get_profile("p1").Visits == 1  # type: ignore[union-attr]
    assert hook.delete_profile("p1") is True
    assert hook.delete_profile("p1") is False


def test_profile_store_query_pages_lazily(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    profiles = [{"ProfileId": f"p{i}"} for i in range(5)]

    def query(request):  # type: ignore[no-untyped-def]
        top, skip = int(request.query["$top"][0]), int(request.query["$skip"][0])
        return Reply(200, {"items": profiles[skip : skip + top], "total": len(profiles)})

    server.handle(query)
    hook = profile_store(server, set_connection)
    found = hook.query_profiles(filter="Visits gt 0", page_size=2)
    assert next(found).ProfileId == "p0"
    assert server.count() == 1
    assert [p.ProfileId for p in found] == ["p1", "p2", "p3", "p4"]
    assert server.count() == 3
    assert server.received[0].query["$filter"] == ["Visits gt 0"]


def test_profile_store_test_connection_treats_404_as_authenticated(
    server: ScriptedServer, set_connection: Callable[..., None]
) -> None:
    server.handle(lambda request: Reply(404, {}))
    ok, _ = profile_store(server, set_connection).test_connection()
    assert ok


# -- Optimove -------------------------------------------------------------------------------------------


def optimove(server: ScriptedServer, set_connection: Callable[..., None]) -> OptimoveHook:
    set_connection("om_test", "optimove", f"{server.url}/dc/v1", "om-key", brand_api_key="om-brand")
    return OptimoveHook("om_test", max_attempts=2)


def test_optimove_create_and_upload(server: ScriptedServer, set_connection: Callable[..., None]) -> None:
    server.script("POST", "/dc/v1/connections", Reply(200, {"data_connection_uuid": "c-1"}))
    server.script("POST", "/dc/v1/connections/c-1/upload_data", Reply(200, {}))
    server.script("PUT", "/dc/v1/connections/c-1/update_data", Reply(200, {}))
    hook = optimove(server, set_connection)
    assert hook.create_connection("crm", "id", "desc").data_connection_uuid == "c-1"
    assert server.received[0].headers["x-api-key"] == "om-key"
    assert server.received[0].headers["x-brand-key"] == "om-brand"
    hook.upload_data("c-1", [{"id": 1}], batch_uuid="b-1", batch_completed=False)
    assert server.received[1].json() == {
        "data": [{"id": 1}],
        "ttl_seconds": None,
        "batch_completed": False,
        "batch_uuid": "b-1",
    }
    hook.update_data("c-1", [{"primary_key": 1, "data": {"id": 1}, "ttl": None}])
    assert server.received[2].json() == [{"primary_key": 1, "data": {"id": 1}, "ttl": None}]
    with pytest.raises(ValueError):
        hook.upload_data("c-1", [{"id": 1}] * 5001)


@pytest.mark.parametrize(("status", "ok"), [(404, True), (400, True), (401, False)])
def test_optimove_test_connection(
    server: ScriptedServer, set_connection: Callable[..., None], status: int, ok: bool
) -> None:
    server.handle(lambda request: Reply(status, {"message": "m"}))
    assert optimove(server, set_connection).test_connection()[0] is ok
