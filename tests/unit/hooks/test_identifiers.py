"""No identifier can make a request leave its route (issue: ``..`` as a scope deleted another route).

Every identifier slot of every hook gets values that a URL can mistake for structure. Against a real
loopback server that records the request line as sent, each request either stays on its route with the
value intact once decoded, or is refused before anything is sent (``.``, ``..`` and empty, which HTTP
stacks collapse).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest

from airflow_provider_optimizely.core.errors import InvalidIdentifierError
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from tests.http_test_server import Reply, ScriptedServer

REFUSED = [".", "..", ""]
KEPT = [
    "%2e%2e",
    "%2E.",
    "/",
    "../admin",
    "a/../b",
    "?",
    "a?b=c",
    "#",
    "a#b",
    "%2F",
    "%",
    " ",
    "a b",
    "\r\n",
    "x\r\nX-Injected: 1",
    "\t",
    ";",
    "@",
    "é",
    "...",
    "~",
]

# (slot, HTTP method, route with {v} where the value goes, the call with the value in that slot)
Call = Callable[[Any, str], object]
DCP: list[tuple[str, str, str, Call]] = [
    ("service id", "GET", "/v1/dcp_services/{v}", lambda h, v: h.get_service(v)),
    ("service id", "PUT", "/v1/dcp_services/{v}", lambda h, v: h.update_service("n", v)),
    ("service id", "GET", "/v1/dcp_services/{v}/dcp_datasources", lambda h, v: next(h.list_tables(v))),
    (
        "service id",
        "POST",
        "/v1/dcp_services/{v}/dcp_datasources",
        lambda h, v: h.create_table("t", service_id=v),
    ),
    (
        "service id",
        "POST",
        "/profile-api/customer_profile/{v}/7/c",
        lambda h, v: h.upsert_profile(7, "c", {}, service_id=v),
    ),
    (
        "service id",
        "GET",
        "/profile-api/consolidatedCustomerView/{v}/u",
        lambda h, v: h.get_consolidated_view("u", v),
    ),
    ("service id", "GET", "/profile-api/alias/{v}/1/u", lambda h, v: h.get_alias(1, "u", v)),
    ("table id", "GET", "/v1/dcp_datasources/{v}", lambda h, v: h.get_table(v)),
    ("table id", "PUT", "/v1/dcp_datasources/{v}", lambda h, v: h.update_table(v, description="d")),
    ("table id", "DELETE", "/v1/dcp_datasources/{v}", lambda h, v: h.delete_table(v)),
    (
        "table id",
        "GET",
        "/v1/dcp_datasources/{v}/dcp_datasource_attributes",
        lambda h, v: next(h.list_attributes(v)),
    ),
    (
        "table id",
        "POST",
        "/v1/dcp_datasources/{v}/dcp_datasource_attributes",
        lambda h, v: h.create_attribute(v, "a", "string"),
    ),
    ("table id", "GET", "/profile-api/customer_profile/3/{v}/c", lambda h, v: h.get_profile(v, "c")),
    ("table id", "POST", "/profile-api/customer_profile/3/{v}/c", lambda h, v: h.upsert_profile(v, "c", {})),
    (
        "table id",
        "GET",
        "/v1/dcp_datasources/{v}/upload_history",
        lambda h, v: next(h.list_upload_history(v)),
    ),
    ("table id", "GET", "/v1/dcp_datasources/{v}", lambda h, v: h.s3_credentials(v)),
    ("attribute id", "GET", "/v1/dcp_datasource_attributes/{v}", lambda h, v: h.get_attribute(v)),
    ("attribute id", "PUT", "/v1/dcp_datasource_attributes/{v}", lambda h, v: h.update_attribute(v, "d")),
    ("attribute id", "DELETE", "/v1/dcp_datasource_attributes/{v}", lambda h, v: h.archive_attribute(v)),
    ("customer id", "GET", "/profile-api/customer_profile/3/7/{v}", lambda h, v: h.get_profile(7, v)),
    ("customer id", "POST", "/profile-api/customer_profile/3/7/{v}", lambda h, v: h.upsert_profile(7, v, {})),
    (
        "optimizely user id",
        "GET",
        "/profile-api/consolidatedCustomerView/3/{v}",
        lambda h, v: h.get_consolidated_view(v),
    ),
    ("optimizely user id", "GET", "/profile-api/alias/3/1/{v}", lambda h, v: h.get_alias(1, v)),
    ("optimizely user id", "POST", "/profile-api/alias/3/1/{v}", lambda h, v: h.create_alias(1, v, {7: "c"})),
    ("optimizely datasource id", "GET", "/profile-api/alias/3/{v}/u", lambda h, v: h.get_alias(v, "u")),
    (
        "optimizely datasource id",
        "POST",
        "/profile-api/alias/3/{v}/u",
        lambda h, v: h.create_alias(v, "u", {7: "c"}),
    ),
]
ODP: list[tuple[str, str, str, Call]] = [
    ("identifier field", "GET", "/v3/profiles/{v}/x", lambda h, v: h.get_profile(v, "x")),
    ("identifier value", "GET", "/v3/profiles/email/{v}", lambda h, v: h.get_profile("email", v)),
    ("object type", "POST", "/v3/objects/{v}", lambda h, v: h.upsert_objects(v, [])),
    ("object type", "GET", "/v3/objects/{v}/o", lambda h, v: h.get_object(v, "o")),
    ("object id", "GET", "/v3/objects/t/{v}", lambda h, v: h.get_object("t", v)),
    ("object type", "GET", "/v3/schema/objects/{v}", lambda h, v: h.get_schema_object(v)),
    ("object type", "POST", "/v3/schema/objects/{v}", lambda h, v: h.create_schema_object(v, "D")),
    (
        "object type",
        "POST",
        "/v3/schema/objects/{v}/fields",
        lambda h, v: h.create_schema_field(v, "f", "F", "string"),
    ),
]
PROFILE_STORE: list[tuple[str, str, str, Call]] = [
    ("scope", "GET", "/ps/api/v1.0/profiles/{v}/p", lambda h, v: h.get_profile("p", v)),
    ("scope", "DELETE", "/ps/api/v1.0/profiles/{v}/p", lambda h, v: h.delete_profile("p", v)),
    ("profile id", "GET", "/ps/api/v1.0/profiles/shop/{v}", lambda h, v: h.get_profile(v)),
    ("profile id", "PUT", "/ps/api/v1.0/profiles/{v}", lambda h, v: h.put_profile(v, {})),
    ("profile id", "DELETE", "/ps/api/v1.0/profiles/shop/{v}", lambda h, v: h.delete_profile(v)),
]
OPTIMOVE: list[tuple[str, str, str, Call]] = [
    ("data connection uuid", "POST", "/dc/v1/connections/{v}/upload_data", lambda h, v: h.upload_data(v, [])),
    ("data connection uuid", "PUT", "/dc/v1/connections/{v}/update_data", lambda h, v: h.update_data(v, [])),
]


def _hooks(server: ScriptedServer, set_connection: Callable[..., None]) -> dict[str, Any]:
    set_connection(
        "ids_dcp",
        "optimizely",
        f"{server.url}/v1",
        "dcp-token",
        profile_api_base=f"{server.url}/profile-api",
        dcp_service_id=3,
    )
    set_connection("ids_odp", "optimizely_odp", f"{server.url}/v3", "odp-private")
    set_connection("ids_ps", "optimizely_profile_store", f"{server.url}/ps", "ps-key", default_scope="shop")
    set_connection("ids_om", "optimove", f"{server.url}/dc/v1", "om-key", brand_api_key="om-brand")
    return {
        "DCP": OptimizelyDcpHook("ids_dcp", max_attempts=1),
        "ODP": OptimizelyOdpHook("ids_odp", max_attempts=1),
        "ProfileStore": OptimizelyProfileStoreHook("ids_ps", max_attempts=1),
        "Optimove": OptimoveHook("ids_om", max_attempts=1),
    }


CASES = (
    [("DCP", *case) for case in DCP]
    + [("ODP", *case) for case in ODP]
    + [("ProfileStore", *case) for case in PROFILE_STORE]
    + [("Optimove", *case) for case in OPTIMOVE]
)


@pytest.mark.parametrize(
    ("api", "slot", "method", "route", "call"),
    CASES,
    ids=[f"{api} {method} {route}" for api, _, method, route, _ in CASES],
)
def test_every_identifier_stays_on_its_route_or_is_refused(
    server: ScriptedServer,
    set_connection: Callable[..., None],
    api: str,
    slot: str,
    method: str,
    route: str,
    call: Call,
) -> None:
    server.handle(lambda request: Reply(200, {}))
    hook = _hooks(server, set_connection)[api]
    for value in REFUSED:
        with pytest.raises(InvalidIdentifierError) as refused:
            call(hook, value)
        assert f"{api} {slot}" in str(refused.value) and "connection 'ids_" in str(refused.value)
        assert server.count() == 0, f"{value!r} was sent"
    for value in KEPT:
        server.received.clear()
        # The scripted answer need not make sense to the hook: only the request matters here.
        with contextlib.suppress(StopIteration, ValueError, TypeError, KeyError):
            call(hook, value)
        assert len(server.received) == 1, f"{value!r}: {len(server.received)} request(s)"
        sent = server.received[0]
        path, _, query = sent.target.partition("?")
        expected = [value if part == "{v}" else part for part in route.split("/")]
        assert (sent.method, [unquote(part) for part in path.split("/")]) == (method, expected), value
        assert set(parse_qs(query)) <= {"per_page", "page", "fields"}, (value, query)
