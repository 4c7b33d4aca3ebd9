"""The emulated DCP REST API (docs/api-contract.md §3, §4.1, §4.2) driven with plain ``requests``."""

from __future__ import annotations

import pytest
import requests

from tests.emulator.conftest import Dcp, Table, assert_v2_error

# --- auth -------------------------------------------------------------------------------------------


def test_missing_token_is_401_with_a_v2_body(emulator):
    """Seed 000 / docs/api-contract.md §2-§3: DCP needs a token; errors carry the v2 body."""
    response = requests.get(f"{emulator.urls['dcp']}/dcp_services", timeout=10)
    body = assert_v2_error(response, 401, contains="token")
    assert body["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "headers", [{"Token": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]
)
def test_wrong_token_is_401_and_never_echoed(emulator, headers):
    response = requests.get(f"{emulator.urls['dcp']}/dcp_services", headers=headers, timeout=10)
    assert_v2_error(response, 401)
    assert "wrong" not in response.text


def test_profile_api_needs_the_token_too(emulator):
    response = requests.get(f"{emulator.urls['dcp_profiles']}/customer_profile/1/2/c", timeout=10)
    assert_v2_error(response, 401)


def test_a_classic_token_in_the_token_header_is_the_way_in(emulator):
    """Seed 000: "all DCP REST APIs make use of only classic tokens for authorization"."""
    headers = {"Token": emulator.keys["dcp_token"]}
    response = requests.get(f"{emulator.urls['dcp']}/dcp_services", headers=headers, timeout=10)
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize(
    "header", [lambda t: {"Authorization": f"Bearer {t}"}, lambda t: {"Token": t}], ids=["bearer", "token"]
)
def test_a_personal_token_is_refused_in_any_header(emulator, header):
    """Seed 000: DCP "don't accept personal-tokens to authorize API requests" (seed 004 sends personal
    tokens "with the same headers as OAuth 2.0 access tokens", i.e. as Bearer)."""
    response = requests.get(
        f"{emulator.urls['dcp']}/dcp_services",
        headers=header(emulator.keys["dcp_personal_token"]),
        timeout=10,
    )
    assert_v2_error(response, 401, contains="personal")


def test_the_classic_token_sent_as_bearer_is_refused(emulator):
    """docs/api-contract.md §2: Bearer carries an OAuth access token; a classic token goes in ``Token:``."""
    headers = {"Authorization": f"Bearer {emulator.keys['dcp_token']}"}
    response = requests.get(f"{emulator.urls['dcp']}/dcp_services", headers=headers, timeout=10)
    assert_v2_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_an_oauth_access_token_works_until_it_expires(emulator):
    """Seed 000 recommends OAuth 2.0 for integrations; seed 004 sends its access tokens as Bearer, and they
    expire (docs/api-contract.md §2: 401 once expired)."""
    grant = emulator.issue_oauth_token()
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    for url in (f"{emulator.urls['dcp']}/dcp_services", f"{emulator.urls['dcp_profiles']}/alias/1/2/u"):
        assert requests.get(url, headers=headers, timeout=10).status_code in (200, 404)
    assert emulator.expire_oauth_access_tokens() >= 1
    expired = requests.get(f"{emulator.urls['dcp']}/dcp_services", headers=headers, timeout=10)
    assert_v2_error(expired, 401, contains="expired")
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]


# --- services ---------------------------------------------------------------------------------------


def test_service_create_read_update_and_one_per_account(dcp: Dcp):
    service = dcp.service()
    assert service["s3_path"] == f"dcp/{service['id']}"
    assert {
        "id",
        "account_id",
        "archived",
        "aws_access_key",
        "aws_secret_key",
        "created",
        "last_modified",
    } <= set(service)
    assert dcp.ok("GET", f"dcp_services/{service['id']}", 200) == service
    assert_v2_error(
        dcp.rest("POST", "dcp_services", json={"name": "second"}), 409, contains=str(service["id"])
    )

    renamed = dcp.ok("PUT", f"dcp_services/{service['id']}", 202, json={"name": "renamed"})
    assert renamed["name"] == "renamed"
    assert_v2_error(
        dcp.rest("PUT", f"dcp_services/{service['id']}", json={"s3_path": "x"}), 400, contains="s3_path"
    )
    assert [s["name"] for s in dcp.ok("GET", "dcp_services", 200)] == ["renamed"]


def test_service_creation_makes_the_optimizely_table(dcp: Dcp):
    service = dcp.service()
    tables = dcp.ok("GET", f"dcp_services/{service['id']}/dcp_datasources", 200)
    assert [t["is_optimizely"] for t in tables] == [True]
    assert tables[0]["s3_path"] == f"dcp/{service['id']}/{tables[0]['id']}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
def test_service_body_errors(dcp: Dcp, body, message):
    assert_v2_error(dcp.rest("POST", "dcp_services", json=body), 400, contains=message)


def test_body_that_is_not_json_is_400(dcp: Dcp):
    response = dcp.rest(
        "POST", "dcp_services", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_v2_error(response, 400, contains="json")


def test_unknown_ids_are_404(dcp: Dcp):
    for path in (
        "dcp_services/999",
        "dcp_services/abc",
        "dcp_datasources/999",
        "dcp_datasource_attributes/999",
    ):
        assert_v2_error(dcp.rest("GET", path), 404)


def test_unknown_route_and_wrong_method_answer_in_the_v2_body(dcp: Dcp):
    """docs/api-contract.md §3 (v2 error body); RFC 9110 §15.5.6: a 405 lists every method of the resource in
    Allow."""
    assert_v2_error(dcp.rest("GET", "no_such_thing"), 404)
    refused = dcp.rest("DELETE", "dcp_services")
    assert_v2_error(refused, 405)
    assert refused.headers["Allow"] == "GET, POST"
    assert dcp.rest("POST", "dcp_datasources/1").headers["Allow"] == "DELETE, GET, PUT"


# --- tables -----------------------------------------------------------------------------------------


def test_table_fields_and_own_s3_credentials(dcp: Dcp):
    service = dcp.service()
    table = dcp.table(service["id"], description="CRM export")
    assert table["s3_path"] == f"dcp/{service['id']}/{table['id']}"
    assert table["aws_access_key"] != service["aws_access_key"]
    assert table["aws_secret_key"]
    assert table["is_optimizely"] is False
    assert table["attributes"] == []
    assert table["dcp_service_id"] == service["id"]
    assert dcp.ok("GET", f"dcp_datasources/{table['id']}", 200) == table


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"keyfield_locator_type": "header"}, "keyfield_locator_type"),
        ({"keyfield_locator_name": "1starts_with_digit"}, "keyfield_locator_name"),
        ({"keyfield_locator_name": "has-dash"}, "keyfield_locator_name"),
        ({"keyfield_locator_name": None}, "keyfield_locator_name"),
        ({"is_optimizely": True}, "is_optimizely"),
    ],
)
def test_table_validation(dcp: Dcp, fields, message):
    service = dcp.service()
    body = {"name": "t", "keyfield_locator_type": "cookie", "keyfield_locator_name": "crm_id", **fields}
    response = dcp.rest("POST", f"dcp_services/{service['id']}/dcp_datasources", json=body)
    assert_v2_error(response, 400, contains=message)


@pytest.mark.parametrize(
    "fields",
    [
        {"keyfield_locator_type": "uid"},
        {"keyfield_locator_type": "query parameter", "keyfield_locator_name": "user"},
        {"keyfield_locator_type": "js_variable", "keyfield_locator_name": "window_user$id"},
    ],
)
def test_table_keyfields_accepted(dcp: Dcp, fields):
    service = dcp.service()
    body = {"name": "t", **fields}
    created = dcp.ok("POST", f"dcp_services/{service['id']}/dcp_datasources", 201, json=body)
    assert created["keyfield_locator_type"] == fields["keyfield_locator_type"]


def test_table_update_and_archive(dcp: Dcp):
    service = dcp.service()
    table = dcp.table(service["id"])
    updated = dcp.ok(
        "PUT", f"dcp_datasources/{table['id']}", 202, json={"description": "new", "name": "crm2"}
    )
    assert (updated["description"], updated["name"]) == ("new", "crm2")
    assert_v2_error(dcp.rest("PUT", f"dcp_datasources/{table['id']}", json={"s3_path": "elsewhere"}), 400)

    assert dcp.rest("DELETE", f"dcp_datasources/{table['id']}").status_code == 204
    assert dcp.rest("DELETE", f"dcp_datasources/{table['id']}").status_code == 204
    assert dcp.ok("GET", f"dcp_datasources/{table['id']}", 200)["archived"] is True
    assert_v2_error(
        dcp.rest("PUT", f"dcp_datasources/{table['id']}", json={"name": "x"}), 400, contains="archived"
    )


def test_optimizely_table_cannot_be_deleted(dcp: Dcp):
    service = dcp.service()
    optimizely = dcp.ok("GET", f"dcp_services/{service['id']}/dcp_datasources", 200)[0]
    assert_v2_error(dcp.rest("DELETE", f"dcp_datasources/{optimizely['id']}"), 400, contains="optimizely")


# --- attributes -------------------------------------------------------------------------------------


def test_attribute_lifecycle(dcp: Dcp):
    service = dcp.service()
    table = dcp.table(service["id"])
    attribute = dcp.attribute(table["id"], "ltv", "double")
    assert (attribute["name"], attribute["datatype"], attribute["archived"]) == ("ltv", "double", False)
    assert dcp.ok("GET", f"dcp_datasource_attributes/{attribute['id']}", 200) == attribute

    changed = dcp.ok(
        "PUT", f"dcp_datasource_attributes/{attribute['id']}", 202, json={"description": "value"}
    )
    assert changed["description"] == "value"
    for forbidden in ({"name": "other"}, {"datatype": "long"}):
        response = dcp.rest("PUT", f"dcp_datasource_attributes/{attribute['id']}", json=forbidden)
        assert_v2_error(response, 400, contains=next(iter(forbidden)))

    assert dcp.rest("DELETE", f"dcp_datasource_attributes/{attribute['id']}").status_code == 204
    # Archive and create anew: the name is free again, with another datatype.
    again = dcp.attribute(table["id"], "ltv", "long")
    assert again["id"] != attribute["id"]
    listed = dcp.ok("GET", f"dcp_datasources/{table['id']}/dcp_datasource_attributes", 200)
    assert [(a["name"], a["archived"]) for a in listed] == [("ltv", True), ("ltv", False)]
    assert len(dcp.ok("GET", f"dcp_datasources/{table['id']}", 200)["attributes"]) == 2


def test_an_archived_attribute_can_be_neither_read_nor_written(dcp: Dcp):
    """docs/api-contract.md §4.2: "DELETE archives it: an archived attribute can't be read or written" (404 /
    400)."""
    service = dcp.service()
    table = dcp.table(service["id"])
    attribute = dcp.attribute(table["id"], "ltv", "double")
    path = f"dcp_datasource_attributes/{attribute['id']}"
    assert dcp.rest("DELETE", path).status_code == 204
    assert_v2_error(dcp.rest("GET", path), 404, contains="archived")
    assert_v2_error(dcp.rest("PUT", path, json={"description": "x"}), 400, contains="archived")
    assert_v2_error(dcp.rest("DELETE", path), 400, contains="archived")
    # Lists still show it, marked, so a client that forgets to filter meets it.
    listed = dcp.ok("GET", f"dcp_datasources/{table['id']}/dcp_datasource_attributes", 200)
    assert [(a["id"], a["archived"]) for a in listed] == [(attribute["id"], True)]


def test_attribute_names_are_unique_and_case_sensitive(dcp: Dcp):
    service = dcp.service()
    table = dcp.table(service["id"])
    dcp.attribute(table["id"], "Score", "long")
    dcp.attribute(table["id"], "score", "long")
    body = {"name": "Score", "datatype": "string"}
    response = dcp.rest("POST", f"dcp_datasources/{table['id']}/dcp_datasource_attributes", json=body)
    assert_v2_error(response, 409, contains="Score")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "a", "datatype": "text"}, "datatype"),
        ({"name": "a", "datatype": "datetime"}, "format"),
        ({"name": "a", "datatype": "datetime", "format": "dd/mm/yyyy"}, "format"),
        ({"name": "a", "datatype": "long", "format": "epoch"}, "format"),
        ({"name": "customerID", "datatype": "string"}, "customerId"),
        ({"datatype": "string"}, "name"),
        ({"name": "a", "datatype": "string", "unit": "kg"}, "unit"),
    ],
)
def test_attribute_validation(dcp: Dcp, body, message):
    service = dcp.service()
    table = dcp.table(service["id"])
    response = dcp.rest("POST", f"dcp_datasources/{table['id']}/dcp_datasource_attributes", json=body)
    assert_v2_error(response, 400, contains=message)


@pytest.mark.parametrize("fmt", ["yyyy-mm-dd", "yyyy-mm-ddThh:mm:ssZ", "epoch"])
def test_datetime_formats_accepted(dcp: Dcp, fmt):
    service = dcp.service()
    table = dcp.table(service["id"])
    assert dcp.attribute(table["id"], "when", "datetime", fmt)["format"] == fmt


def test_archived_table_takes_no_attributes(dcp: Dcp, crm: Table):
    dcp.rest("DELETE", f"dcp_datasources/{crm.id}")
    body = {"name": "new", "datatype": "string"}
    response = dcp.rest("POST", f"dcp_datasources/{crm.id}/dcp_datasource_attributes", json=body)
    assert_v2_error(response, 400, contains="archived")


# --- pagination (docs/api-contract.md §3) -------------------------------------------------------------------


def test_no_link_header_when_everything_fits_on_page_one(dcp: Dcp, crm: Table):
    response = dcp.rest("GET", f"dcp_datasources/{crm.id}/dcp_datasource_attributes")
    assert response.status_code == 200
    assert len(response.json()) == 7
    assert "Link" not in response.headers


def test_pages_follow_next_links_to_the_end(dcp: Dcp, crm: Table):
    path = f"dcp_datasources/{crm.id}/dcp_datasource_attributes"
    first = dcp.rest("GET", path, params={"per_page": 3})
    assert "page=2" in first.links["next"]["url"] and "per_page=3" in first.links["next"]["url"]
    assert "prev" not in first.links
    assert "page=3" in first.links["last"]["url"]

    names, url = [], f"{dcp.emulator.urls['dcp']}/{path}?per_page=3"
    pages = 0
    while url:
        response = dcp.session.get(url, timeout=10)
        names += [a["name"] for a in response.json()]
        url = response.links.get("next", {}).get("url")
        pages += 1
    assert pages == 3
    assert names == ["segment", "vip", "orders", "ltv", "birthday", "last_seen", "signup"]

    last = dcp.rest("GET", path, params={"per_page": 3, "page": 3})
    assert len(last.json()) == 1
    assert "next" not in last.links and "page=2" in last.links["prev"]["url"]


@pytest.mark.parametrize("params", [{"per_page": 101}, {"per_page": 0}, {"page": 0}, {"per_page": "ten"}])
def test_bad_pagination_parameters_are_400(dcp: Dcp, crm: Table, params):
    response = dcp.rest("GET", f"dcp_datasources/{crm.id}/dcp_datasource_attributes", params=params)
    assert_v2_error(response, 400)


def test_default_page_size_is_25(dcp: Dcp):
    service = dcp.service()
    table = dcp.table(service["id"])
    for index in range(26):
        dcp.attribute(table["id"], f"a{index}", "string")
    response = dcp.rest("GET", f"dcp_datasources/{table['id']}/dcp_datasource_attributes")
    assert len(response.json()) == 25
    assert "page=2" in response.links["next"]["url"]
