"""The emulated DCP profile and alias API (docs/api-contract.md §4.3) driven with plain ``requests``."""

from __future__ import annotations

import pytest

from tests.emulator.conftest import Dcp, Table, assert_v2_error


def write(dcp: Dcp, crm: Table, customer: str, data: dict):
    return dcp.profiles("POST", f"customer_profile/{crm.service_id}/{crm.id}/{customer}", json={"data": data})


def read(dcp: Dcp, crm: Table, customer: str):
    return dcp.profiles("GET", f"customer_profile/{crm.service_id}/{crm.id}/{customer}")


def test_write_a_subset_then_overwrite(dcp: Dcp, crm: Table):
    first = write(dcp, crm, "c1", {"segment": "gold", "orders": 3})
    assert first.status_code == 201, first.text
    assert first.json() == {
        "data": {"segment": "gold", "orders": 3},
        "dcpServiceId": crm.service_id,
        "datasourceId": crm.id,
        "customerId": "c1",
    }
    second = write(dcp, crm, "c1", {"orders": 4, "vip": True})
    assert second.json()["data"] == {"segment": "gold", "orders": 4, "vip": True}
    assert read(dcp, crm, "c1").json()["data"] == {"segment": "gold", "orders": 4, "vip": True}


def test_unknown_customer_is_404(dcp: Dcp, crm: Table):
    assert_v2_error(read(dcp, crm, "nobody"), 404, contains="nobody")


def test_customer_ids_may_hold_slashes(dcp: Dcp, crm: Table):
    assert write(dcp, crm, "a/b", {"segment": "x"}).status_code == 201
    assert read(dcp, crm, "a/b").json()["customerId"] == "a/b"


@pytest.mark.parametrize(
    ("name", "sent", "stored"),
    [
        ("segment", "text", "text"),
        ("segment", " padded ", " padded "),
        ("vip", True, True),
        ("orders", 5, 5),
        ("orders", -5, -5),
        ("ltv", 2, 2.0),
        ("ltv", 2.5, 2.5),
        ("birthday", "2000-02-29", "2000-02-29"),
        ("last_seen", "2024-01-31T23:59:59Z", "2024-01-31T23:59:59Z"),
        ("signup", 1700000000000, 1700000000000),
    ],
)
def test_values_of_each_datatype(dcp: Dcp, crm: Table, name, sent, stored):
    """docs/api-contract.md §4.2-§4.3: a value of the attribute's datatype/format is stored as sent (JSON
    typed)."""
    response = write(dcp, crm, "c1", {name: sent})
    assert response.status_code == 201, response.text
    assert response.json()["data"][name] == stored
    assert type(response.json()["data"][name]) is type(stored)


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("segment", 5),
        ("vip", "yes"),
        ("vip", 1),
        ("orders", 5.0),
        ("orders", "5.5"),
        ("orders", True),
        ("orders", 2**63),
        ("ltv", "NaN"),
        ("ltv", "cheap"),
        ("birthday", "2001-02-29"),
        ("birthday", "2001-2-3"),
        ("last_seen", "2024-01-31T23:59:59"),
        ("last_seen", "2024-01-31 23:59:59Z"),
        ("signup", "2024-01-31"),
        ("signup", 1.5),
        ("segment", None),
        # Strings are not numbers or booleans in JSON (strict reading; value_syntax="permissive" differs).
        ("vip", "true"),
        ("vip", "FALSE"),
        ("orders", "-5"),
        ("ltv", "2.5"),
        ("signup", "1700000000000"),
    ],
)
def test_a_wrong_value_refuses_the_whole_write(dcp: Dcp, crm: Table, name, sent):
    """docs/api-contract.md §4.3: "a value of the wrong datatype/format fails the whole write (400)"."""
    write(dcp, crm, "c1", {"segment": "before"})
    response = write(dcp, crm, "c1", {"orders": 1, name: sent})
    assert_v2_error(response, 400, contains=name)
    assert read(dcp, crm, "c1").json()["data"] == {"segment": "before"}


@pytest.mark.parametrize(
    ("name", "sent", "stored"),
    [("vip", "FALSE", False), ("orders", "+5", 5), ("ltv", ".5", 0.5), ("signup", "17", 17)],
)
def test_permissive_value_syntax_reads_text_in_json(dcp: Dcp, crm: Table, name, sent, stored):
    """The other reading (docs/emulator-fidelity.md): ``value_syntax="permissive"``."""
    assert write(dcp, crm, "c1", {name: sent}).status_code == 400
    dcp.emulator.configure(value_syntax="permissive")
    response = write(dcp, crm, "c1", {name: sent})
    assert response.status_code == 201, response.text
    assert response.json()["data"][name] == stored


@pytest.mark.parametrize("body", [{"data": {}}, {"data": []}, {}, {"data": {"x": 1}, "extra": 1}])
def test_bad_profile_bodies(dcp: Dcp, crm: Table, body):
    response = dcp.profiles("POST", f"customer_profile/{crm.service_id}/{crm.id}/c1", json=body)
    assert_v2_error(response, 400)


def test_unregistered_attribute_is_refused_and_named(dcp: Dcp, crm: Table):
    response = write(dcp, crm, "c1", {"segment": "a", "favourite_colour": "red"})
    assert_v2_error(response, 400, contains="favourite_colour")
    assert_v2_error(read(dcp, crm, "c1"), 404)


def test_archived_attribute_can_be_neither_read_nor_written(dcp: Dcp, crm: Table):
    """docs/api-contract.md §4.2: "an archived attribute can't be read or written"."""
    write(dcp, crm, "c1", {"segment": "gold", "orders": 2})
    orders = next(
        a for a in dcp.ok("GET", f"dcp_datasources/{crm.id}", 200)["attributes"] if a["name"] == "orders"
    )
    dcp.rest("DELETE", f"dcp_datasource_attributes/{orders['id']}")
    assert read(dcp, crm, "c1").json()["data"] == {"segment": "gold"}
    assert_v2_error(write(dcp, crm, "c1", {"orders": 3}), 400, contains="orders")
    # A new attribute of the same name starts empty.
    dcp.attribute(crm.id, "orders", "string")
    assert read(dcp, crm, "c1").json()["data"] == {"segment": "gold"}


def test_profiles_of_unknown_or_foreign_or_archived_tables_are_404(dcp: Dcp, crm: Table):
    assert_v2_error(dcp.profiles("GET", f"customer_profile/{crm.service_id}/999/c1"), 404)
    assert_v2_error(dcp.profiles("GET", f"customer_profile/999/{crm.id}/c1"), 404)
    dcp.rest("DELETE", f"dcp_datasources/{crm.id}")
    assert_v2_error(write(dcp, crm, "c1", {"segment": "a"}), 404, contains="archived")


def test_writes_are_recorded_with_duplicates(dcp: Dcp, crm: Table):
    write(dcp, crm, "c1", {"segment": "a"})
    write(dcp, crm, "c1", {"segment": "a"})
    write(dcp, crm, "c2", {"segment": "a"})
    write(dcp, crm, "c2", {"segment": 5})  # refused: not recorded
    items = dcp.emulator.received("dcp")["items"]["dcp_profiles"]
    assert (items["total"], items["distinct"], items["duplicates"]) == (3, 2, 1)
    route = "POST /customer_profile/{service_id}/{table_id}/{customer_id}"
    assert dcp.emulator.received("dcp")["requests"][route] == 4


# --- aliases and the consolidated view --------------------------------------------------------------


def optimizely_table_id(dcp: Dcp, crm: Table) -> int:
    tables = dcp.ok("GET", f"dcp_services/{crm.service_id}/dcp_datasources", 200)
    return next(t["id"] for t in tables if t["is_optimizely"])


def test_alias_links_tables_into_the_consolidated_view(dcp: Dcp, crm: Table):
    oid = optimizely_table_id(dcp, crm)
    svc = crm.service_id
    dcp.attribute(oid, "browser", "string")
    loyalty = dcp.table(svc, "loyalty")
    dcp.attribute(loyalty["id"], "points", "long")
    write(dcp, crm, "crm-7", {"segment": "gold"})
    dcp.profiles("POST", f"customer_profile/{svc}/{loyalty['id']}/L-7", json={"data": {"points": 10}})
    dcp.profiles("POST", f"customer_profile/{svc}/{oid}/oeu-1", json={"data": {"browser": "firefox"}})

    created = dcp.profiles("POST", f"alias/{svc}/{oid}/oeu-1", json={"data": {str(crm.id): "crm-7"}})
    assert created.status_code == 201, created.text
    dcp.profiles("POST", f"alias/{svc}/{oid}/oeu-1", json={"data": {str(loyalty["id"]): "L-7"}})
    alias = dcp.profiles("GET", f"alias/{svc}/{oid}/oeu-1").json()
    assert alias["data"] == {str(crm.id): "crm-7", str(loyalty["id"]): "L-7"}

    view = dcp.profiles("GET", f"consolidatedCustomerView/{svc}/oeu-1")
    assert view.status_code == 200
    assert [(p["datasourceId"], p["customerId"], p["data"]) for p in view.json()] == [
        (oid, "oeu-1", {"browser": "firefox"}),
        (crm.id, "crm-7", {"segment": "gold"}),
        (loyalty["id"], "L-7", {"points": 10}),
    ]


def test_alias_errors(dcp: Dcp, crm: Table):
    oid = optimizely_table_id(dcp, crm)
    svc = crm.service_id
    # Aliases hang off the Optimizely table only.
    response = dcp.profiles("POST", f"alias/{svc}/{crm.id}/u1", json={"data": {str(crm.id): "c"}})
    assert_v2_error(response, 400, contains="optimizely")
    for data in ({"999": "c"}, {str(oid): "c"}, {str(crm.id): ""}, {}):
        assert_v2_error(dcp.profiles("POST", f"alias/{svc}/{oid}/u1", json={"data": data}), 400)
    assert_v2_error(dcp.profiles("GET", f"alias/{svc}/{oid}/u1"), 404)
    assert_v2_error(dcp.profiles("GET", f"consolidatedCustomerView/{svc}/u1"), 404)
