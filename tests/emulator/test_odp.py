"""The emulated ODP v3 (docs/api-contract.md §5), driven over loopback HTTP with plain ``requests``."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.emulator.odp import OdpState
from tests.emulator.helpers import NOTHING, PRIVATE, PUBLIC, Api


@pytest.fixture
def odp(emulator: EmulatorHandle) -> Api:
    return Api(emulator, "odp")


def event(i: int = 0, **overrides: Any) -> dict[str, Any]:
    return {"type": "order", "action": "purchase", "identifiers": {"email": f"u{i}@example.com"}, **overrides}


# --- auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}])
def test_missing_or_wrong_key_gets_401_with_v2_body(odp: Api, headers: dict[str, str]) -> None:
    resp = requests.post(f"{odp.url}/events", json=[event()], headers=headers, timeout=5)
    assert resp.status_code == 401
    body = resp.json()
    assert set(body) == {"message", "code", "uuid"} and body["uuid"]
    assert odp.items("odp_events")["total"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/profiles"),
        ("GET", "/profiles/email/a@example.com"),
        ("GET", "/schema/objects"),
        ("GET", "/schema/objects/customers"),
        ("POST", "/schema/objects/products"),
        ("POST", "/schema/objects/customers/fields"),
        ("GET", "/segments"),
    ],
)
def test_private_routes_refuse_the_public_key(odp: Api, method: str, path: str) -> None:
    """docs/api-contract.md §5 and odp-openapi.yaml ``security: privateApiKey``: POST /profiles, every GET
    /profiles,
    all /schema routes and /segments need the private key; the public key gets 401."""
    body: Any = {"display_name": "x", "name": "x", "type": "string"} if method == "POST" else None
    if path == "/profiles":
        body = {"identifiers": {"email": "a@example.com"}}
    resp = requests.request(method, f"{odp.url}{path}", json=body, headers=PUBLIC, timeout=5)
    assert resp.status_code == 401
    assert "private" in resp.json()["message"]


def test_the_public_key_sends_events_and_objects_and_reads_objects(odp: Api) -> None:
    """docs/api-contract.md §5: POST /events, POST /objects/{type} and GET /objects/{type}/{id} take the
    public key (the
    OpenAPI document's global ``security: publicApiKey``); the private key works too."""
    requests.post(
        f"{odp.url}/schema/objects/products", json={"display_name": "Products"}, headers=PRIVATE, timeout=5
    ).raise_for_status()
    for key in (PUBLIC, PRIVATE):
        assert requests.post(f"{odp.url}/events", json=[event()], headers=key, timeout=5).status_code == 202
        objects = [{"object_id": "p1", "fields": {}}]
        sent = requests.post(f"{odp.url}/objects/products", json=objects, headers=key, timeout=5)
        assert sent.status_code == 202
        assert requests.get(f"{odp.url}/objects/products/p1", headers=key, timeout=5).status_code == 200


# --- events -------------------------------------------------------------------------------------------


def test_events_accepted_with_202_body_and_recorded(odp: Api) -> None:
    events = [event(i) for i in range(500)]
    resp = requests.post(f"{odp.url}/events", json=events, headers=PUBLIC, timeout=5)
    assert resp.status_code == 202
    body = resp.json()
    assert body["title"] == "Accepted" and body["status"] == 202 and body["timestamp"]
    assert odp.items("odp_events") == {**NOTHING, "total": 500, "distinct": 500}
    assert odp.stored()["events_total"] == 500


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/events", {"type": "order", "action": "purchase", "identifiers": {"vuid": "v"}}),
        ("/objects/products", {"object_id": "p1"}),
    ],
)
def test_a_bare_object_instead_of_an_array_is_refused(odp: Api, path: str, body: dict[str, Any]) -> None:
    """docs/api-contract.md §5: events are "an **array** (a bare object is 400)"; odp-openapi.yaml: the
    request bodies of
    /events and /objects/{type} are ``type: array``."""
    make_products(odp)
    resp = requests.post(f"{odp.url}{path}", json=body, headers=PUBLIC, timeout=5)
    assert resp.status_code == 400 and "array" in resp.json()["message"]
    assert odp.stored()["events_total"] == 0 and odp.stored()["objects"] == {}


def test_profiles_take_one_object_or_an_array(odp: Api) -> None:
    """odp-openapi.yaml: POST /profiles takes one ``ProfileInput``; docs/api-contract.md §5: an array of them
    too."""
    one = {"identifiers": {"vuid": "v1"}}
    assert requests.post(f"{odp.url}/profiles", json=one, headers=PRIVATE, timeout=5).status_code == 200
    many = [{"identifiers": {"vuid": "v2"}}, {"identifiers": {"vuid": "v3"}}]
    assert requests.post(f"{odp.url}/profiles", json=many, headers=PRIVATE, timeout=5).status_code == 200
    assert len(odp.stored()["profiles"]) == 3


@pytest.mark.parametrize("action", [None, "", 7])
def test_an_event_without_an_action_is_refused_in_invalids(odp: Api, action: Any) -> None:
    """docs/api-contract.md §5 and odp-openapi.yaml ``EventInput.required: [type, action]``."""
    bad = event(1)
    if action is None:
        del bad["action"]
    else:
        bad["action"] = action
    resp = requests.post(f"{odp.url}/events", json=[event(0), bad], headers=PUBLIC, timeout=5)
    assert resp.status_code == 400
    invalids = resp.json()["detail"]["invalids"]
    assert [i["event"] for i in invalids] == [1] and "action" in invalids[0]["message"]
    assert odp.stored()["events_total"] == 0


def test_the_same_event_twice_shows_as_a_duplicate(odp: Api) -> None:
    for _ in range(2):
        requests.post(f"{odp.url}/events", json=[event(7)], headers=PUBLIC, timeout=5).raise_for_status()
    assert odp.items("odp_events")["duplicates"] == 1


def test_more_than_500_events_is_400_and_nothing_stored(odp: Api) -> None:
    resp = requests.post(f"{odp.url}/events", json=[event(i) for i in range(501)], headers=PUBLIC, timeout=5)
    assert resp.status_code == 400
    assert "500" in resp.json()["message"]
    assert odp.stored()["events_total"] == 0


def test_invalid_events_are_listed_by_index_and_none_of_the_batch_is_stored(odp: Api) -> None:
    events = [
        event(0),
        {"action": "x", "identifiers": {"email": "a@example.com"}},  # no type
        event(2, identifiers={}),  # no identifier
        event(3, identifiers={"email": 5}),  # identifier value not a string
        event(4, data=[1]),
    ]
    resp = requests.post(f"{odp.url}/events", json=events, headers=PUBLIC, timeout=5)
    assert resp.status_code == 400
    invalids = resp.json()["detail"]["invalids"]
    assert sorted({i["event"] for i in invalids}) == [1, 2, 3, 4]
    assert all(isinstance(i["message"], str) and i["message"] for i in invalids)
    assert odp.stored()["events_total"] == 0
    assert odp.items("odp_events")["total"] == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b""])
def test_malformed_or_empty_event_bodies_are_400(odp: Api, body: bytes) -> None:
    headers = {**PUBLIC, "content-type": "application/json"}
    assert requests.post(f"{odp.url}/events", data=body, headers=headers, timeout=5).status_code == 400


# --- profiles -----------------------------------------------------------------------------------------


def test_profile_upsert_then_get_by_any_identifier_and_fields(odp: Api) -> None:
    first = {"identifiers": {"email": "ann@example.com"}, "attributes": {"first_name": "Ann", "city": "Oslo"}}
    second = {
        "identifiers": {"email": "ann@example.com", "customer_id": "c1"},
        "attributes": {"city": "Bergen"},
    }
    for body in (first, second):
        resp = requests.post(f"{odp.url}/profiles", json=body, headers=PRIVATE, timeout=5)
        assert resp.status_code == 200
    got = requests.get(f"{odp.url}/profiles/customer_id/c1", headers=PRIVATE, timeout=5)
    assert got.status_code == 200
    assert got.json() == {
        "email": "ann@example.com",
        "customer_id": "c1",
        "first_name": "Ann",
        "city": "Bergen",
    }
    chosen = requests.get(
        f"{odp.url}/profiles/email/ann@example.com",
        params={"fields": "city,vuid"},
        headers=PRIVATE,
        timeout=5,
    )
    assert chosen.json() == {"city": "Bergen"}


def test_profiles_sharing_identifiers_are_merged(odp: Api) -> None:
    batch = [
        {"identifiers": {"email": "a@example.com"}, "attributes": {"first_name": "A"}},
        {"identifiers": {"customer_id": "c9"}, "attributes": {"last_name": "Z"}},
        {"identifiers": {"email": "a@example.com", "customer_id": "c9"}},
    ]
    requests.post(f"{odp.url}/profiles", json=batch, headers=PRIVATE, timeout=5).raise_for_status()
    assert len(odp.stored()["profiles"]) == 1
    got = requests.get(f"{odp.url}/profiles/customer_id/c9", headers=PRIVATE, timeout=5).json()
    assert got["first_name"] == "A" and got["last_name"] == "Z"


def test_null_attribute_clears_it(odp: Api) -> None:
    ids = {"vuid": "v1"}
    for attributes in ({"city": "Oslo"}, {"city": None}):
        body = {"identifiers": ids, "attributes": attributes}
        requests.post(f"{odp.url}/profiles", json=body, headers=PRIVATE, timeout=5).raise_for_status()
    assert requests.get(f"{odp.url}/profiles/vuid/v1", headers=PRIVATE, timeout=5).json() == {"vuid": "v1"}


def test_unknown_profile_is_404(odp: Api) -> None:
    resp = requests.get(f"{odp.url}/profiles/email/nobody@example.com", headers=PRIVATE, timeout=5)
    assert resp.status_code == 404
    assert resp.json()["uuid"]


def test_unknown_attribute_or_wrong_type_is_400_naming_the_field_and_nothing_stored(odp: Api) -> None:
    batch = [
        {"identifiers": {"email": "ok@example.com"}, "attributes": {"city": "Oslo"}},
        {"identifiers": {"email": "b@example.com"}, "attributes": {"shoe_size": 42}},
        {"identifiers": {"email": "c@example.com"}, "attributes": {"city": 7}},
        {"identifiers": {"emial": "d@example.com"}},
        {"identifiers": {"email": "not-an-email"}},
    ]
    resp = requests.post(f"{odp.url}/profiles", json=batch, headers=PRIVATE, timeout=5)
    assert resp.status_code == 400
    invalids = resp.json()["detail"]["invalids"]
    assert {(i["profile"], i["field"]) for i in invalids} == {
        (1, "shoe_size"),
        (2, "city"),
        (3, "emial"),
        (4, "email"),
    }
    assert all(i["reason"] for i in invalids)
    assert odp.stored()["profiles"] == []


def test_a_field_added_to_customers_becomes_writable(odp: Api) -> None:
    field = {"name": "shoe_size", "display_name": "Shoe size", "type": "number"}
    created = requests.post(
        f"{odp.url}/schema/objects/customers/fields", json=field, headers=PRIVATE, timeout=5
    )
    assert created.status_code == 201
    body = {"identifiers": {"email": "b@example.com"}, "attributes": {"shoe_size": 42}}
    assert requests.post(f"{odp.url}/profiles", json=body, headers=PRIVATE, timeout=5).status_code == 200


def test_more_than_500_profiles_is_400(odp: Api) -> None:
    batch = [{"identifiers": {"customer_id": str(i)}} for i in range(501)]
    assert requests.post(f"{odp.url}/profiles", json=batch, headers=PRIVATE, timeout=5).status_code == 400
    assert odp.stored()["profiles"] == []


def test_profiles_are_recorded_with_duplicates(odp: Api) -> None:
    body = [{"identifiers": {"customer_id": "1"}}, {"identifiers": {"customer_id": "1"}}]
    requests.post(f"{odp.url}/profiles", json=body, headers=PRIVATE, timeout=5).raise_for_status()
    assert odp.items("odp_profiles")["total"] == 2 and odp.items("odp_profiles")["duplicates"] == 1


# --- objects ------------------------------------------------------------------------------------------


def make_products(odp: Api) -> None:
    requests.post(
        f"{odp.url}/schema/objects/products", json={"display_name": "Products"}, headers=PRIVATE, timeout=5
    ).raise_for_status()
    for name, kind in (("name", "string"), ("price", "number"), ("live", "boolean"), ("since", "timestamp")):
        field = {"name": name, "display_name": name, "type": kind}
        requests.post(
            f"{odp.url}/schema/objects/products/fields", json=field, headers=PRIVATE, timeout=5
        ).raise_for_status()


def test_objects_upsert_merges_fields_and_get_returns_them(odp: Api) -> None:
    make_products(odp)
    first = [{"object_id": "p1", "fields": {"name": "Hat", "price": 9.5, "since": "2024-01-02T03:04:05Z"}}]
    second = [{"object_id": "p1", "fields": {"live": True}}]
    for body in (first, second):
        resp = requests.post(f"{odp.url}/objects/products", json=body, headers=PUBLIC, timeout=5)
        assert resp.status_code == 202 and resp.json()["status"] == 202
    got = requests.get(f"{odp.url}/objects/products/p1", headers=PRIVATE, timeout=5)
    assert got.status_code == 200
    body = got.json()
    assert body["object_id"] == "p1" and body["type"] == "products"
    assert body["fields"] == {"name": "Hat", "price": 9.5, "since": "2024-01-02T03:04:05Z", "live": True}
    assert body["created"] and body["updated"]
    assert odp.items("odp_objects")["total"] == 2


def test_unknown_object_is_404(odp: Api) -> None:
    make_products(odp)
    assert requests.get(f"{odp.url}/objects/products/nope", headers=PRIVATE, timeout=5).status_code == 404
    assert requests.get(f"{odp.url}/objects/nothing/nope", headers=PRIVATE, timeout=5).status_code == 404


def test_objects_invalid_items_are_400_and_nothing_stored(odp: Api) -> None:
    make_products(odp)
    body = [
        {"object_id": "p1", "fields": {"name": "ok"}},
        {"fields": {"name": "no id"}},
        {"object_id": "p3", "fields": {"colour": "red"}},
        {"object_id": "p4", "fields": {"price": "cheap"}},
        {"object_id": "p5", "fields": {"since": "yesterday"}},
    ]
    resp = requests.post(f"{odp.url}/objects/products", json=body, headers=PUBLIC, timeout=5)
    assert resp.status_code == 400
    invalids = resp.json()["detail"]["invalids"]
    assert {(i["object"], i["field"]) for i in invalids} == {
        (1, "object_id"),
        (2, "colour"),
        (3, "price"),
        (4, "since"),
    }
    assert odp.stored()["objects"] == {}


def test_objects_of_an_unknown_type_or_too_many_are_400(odp: Api) -> None:
    unknown = requests.post(
        f"{odp.url}/objects/widgets", json=[{"object_id": "w"}], headers=PUBLIC, timeout=5
    )
    assert unknown.status_code == 400
    assert unknown.json()["detail"]["invalids"][0]["field"] == "object_type"
    make_products(odp)
    too_many = [{"object_id": str(i)} for i in range(501)]
    assert (
        requests.post(f"{odp.url}/objects/products", json=too_many, headers=PUBLIC, timeout=5).status_code
        == 400
    )


# --- schema -------------------------------------------------------------------------------------------


def test_customers_exists_from_the_start_with_identifier_fields(odp: Api) -> None:
    resp = requests.get(f"{odp.url}/schema/objects/customers", headers=PRIVATE, timeout=5)
    assert resp.status_code == 200
    names = {f["name"] for f in resp.json()["fields"]}
    assert {"email", "customer_id", "vuid"} <= names


def test_create_schema_object_and_field(odp: Api) -> None:
    created = requests.post(
        f"{odp.url}/schema/objects/stores",
        json={"display_name": "Stores", "description": "Shops"},
        headers=PRIVATE,
        timeout=5,
    )
    assert created.status_code == 201
    assert created.json() == {
        "name": "stores",
        "display_name": "Stores",
        "description": "Shops",
        "fields": [],
    }
    field = {"name": "opened", "display_name": "Opened", "type": "timestamp"}
    made = requests.post(f"{odp.url}/schema/objects/stores/fields", json=field, headers=PRIVATE, timeout=5)
    assert made.status_code == 201 and made.json()["type"] == "timestamp"
    listed = requests.get(f"{odp.url}/schema/objects", headers=PRIVATE, timeout=5).json()
    assert [o["name"] for o in listed] == ["customers", "stores"]
    assert listed[1]["fields"][0]["name"] == "opened"


def test_duplicate_object_type_or_field_is_400_already_exists(odp: Api) -> None:
    again = requests.post(
        f"{odp.url}/schema/objects/customers", json={"display_name": "C"}, headers=PRIVATE, timeout=5
    )
    assert again.status_code == 400
    assert "already exists" in again.json()["detail"]["invalids"][0]["reason"]
    field = {"name": "email", "display_name": "Email", "type": "string"}
    dup = requests.post(f"{odp.url}/schema/objects/customers/fields", json=field, headers=PRIVATE, timeout=5)
    assert dup.status_code == 400
    assert dup.json()["detail"]["invalids"] == [
        {"field": "name", "reason": "'email' already exists on customers"}
    ]


def test_invalid_field_definition_is_400_with_field_and_reason(odp: Api) -> None:
    bad = {"name": "Bad Name", "type": "date"}
    resp = requests.post(f"{odp.url}/schema/objects/customers/fields", json=bad, headers=PRIVATE, timeout=5)
    assert resp.status_code == 400
    assert {i["field"] for i in resp.json()["detail"]["invalids"]} == {"name", "display_name", "type"}


def test_invalid_object_type_name_or_missing_display_name_is_400(odp: Api) -> None:
    resp = requests.post(f"{odp.url}/schema/objects/Bad-Type", json={}, headers=PRIVATE, timeout=5)
    assert resp.status_code == 400
    assert {i["field"] for i in resp.json()["detail"]["invalids"]} == {"object_type", "display_name"}


def test_field_on_an_unknown_object_is_404(odp: Api) -> None:
    field = {"name": "a", "display_name": "A", "type": "string"}
    resp = requests.post(f"{odp.url}/schema/objects/nothing/fields", json=field, headers=PRIVATE, timeout=5)
    assert resp.status_code == 404
    assert requests.get(f"{odp.url}/schema/objects/nothing", headers=PRIVATE, timeout=5).status_code == 404


def test_schema_objects_paginate_with_link_headers(odp: Api) -> None:
    for i in range(3):
        requests.post(
            f"{odp.url}/schema/objects/t{i}", json={"display_name": f"T{i}"}, headers=PRIVATE, timeout=5
        ).raise_for_status()
    first = requests.get(f"{odp.url}/schema/objects", params={"per_page": 2}, headers=PRIVATE, timeout=5)
    assert len(first.json()) == 2 and 'rel="next"' in first.headers["Link"]
    second = requests.get(first.links["next"]["url"], headers=PRIVATE, timeout=5)
    assert [o["name"] for o in second.json()] == ["t1", "t2"]
    assert "next" not in second.links


# --- segments -----------------------------------------------------------------------------------------


def test_segments_list_counts_customers(odp: Api) -> None:
    body = [{"identifiers": {"customer_id": str(i)}} for i in range(3)]
    requests.post(f"{odp.url}/profiles", json=body, headers=PRIVATE, timeout=5).raise_for_status()
    resp = requests.get(f"{odp.url}/segments", headers=PRIVATE, timeout=5)
    assert resp.status_code == 200
    assert resp.json() == [
        {"name": "all_customers", "description": "Every customer profile", "customer_count": 3}
    ]


# --- state --------------------------------------------------------------------------------------------


def test_state_round_trips_through_to_dict_and_from_dict(odp: Api) -> None:
    make_products(odp)
    requests.post(
        f"{odp.url}/profiles", json={"identifiers": {"email": "r@example.com"}}, headers=PRIVATE, timeout=5
    ).raise_for_status()
    requests.post(
        f"{odp.url}/objects/products", json=[{"object_id": "p"}], headers=PUBLIC, timeout=5
    ).raise_for_status()
    requests.post(f"{odp.url}/events", json=[event()], headers=PUBLIC, timeout=5).raise_for_status()
    saved = odp.stored()
    restored = OdpState.from_dict(saved)
    assert restored.to_dict() == saved
    assert restored.identity[("email", "r@example.com")]
