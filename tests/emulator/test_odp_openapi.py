"""The emulated ODP routes hold to odp-openapi.yaml (docs/api-contract.md §5): real requests and the
emulator's real
responses, each validated with openapi-core, covering every operation of the document."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from airflow_provider_optimizely.emulator.handle import EmulatorHandle
from airflow_provider_optimizely.emulator.state import EmulatorState
from tests.emulator.helpers import PRIVATE, PUBLIC, in_process_emulator

_REPO = Path(__file__).resolve().parents[2]
# The workspace copy beside the repository is the contract; the copy under data/ serves a clean clone.
_SPEC_PATHS = (
    _REPO.parent / "shared" / "odp-openapi.yaml",
    Path(__file__).parent / "data" / "odp-openapi.yaml",
)


def _spec_document() -> dict[str, Any]:
    path = next(p for p in _SPEC_PATHS if p.is_file())
    return yaml.safe_load(path.read_text())


def test_the_data_copy_matches_the_shared_contract() -> None:
    shared, copied = _SPEC_PATHS
    if not shared.is_file():
        pytest.skip("no shared/ beside the repository")
    assert yaml.safe_load(shared.read_text()) == yaml.safe_load(copied.read_text())


class Conformance:
    """Sends requests and validates them and their answers against the document, noting each operation."""

    def __init__(self, base_url: str) -> None:
        document = copy.deepcopy(_spec_document())
        self.operations = {
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method in item
            if method != "parameters"
        }
        document["servers"] = [{"url": base_url}]
        self.openapi = OpenAPI.from_dict(document)
        self.base_url = base_url
        self.covered: set[tuple[str, str]] = set()
        self.statuses: set[tuple[str, str, int]] = set()

    def call(
        self, method: str, template: str, path: str, *, valid_request: bool = True, **kwargs: Any
    ) -> requests.Response:
        resp = requests.request(method, f"{self.base_url}{path}", timeout=5, **kwargs)
        request = RequestsOpenAPIRequest(resp.request)
        if valid_request:
            self.openapi.validate_request(request)
        self.openapi.validate_response(request, RequestsOpenAPIResponse(resp))
        self.covered.add((method, template))
        self.statuses.add((method, template, resp.status_code))
        return resp


def test_every_odp_operation_conforms_to_the_openapi_document(emulator: EmulatorHandle) -> None:
    check = Conformance(emulator.urls["odp"])
    c = check.call

    # Schema first: a products object with fields the objects calls below use.
    assert (
        c(
            "POST",
            "/schema/objects/{object_type}",
            "/schema/objects/products",
            json={"display_name": "Products", "description": "Things we sell"},
            headers=PRIVATE,
        ).status_code
        == 201
    )
    field = {"name": "price", "display_name": "Price", "type": "number", "description": "EUR"}
    assert (
        c(
            "POST",
            "/schema/objects/{object_type}/fields",
            "/schema/objects/products/fields",
            json=field,
            headers=PRIVATE,
        ).status_code
        == 201
    )
    assert c("GET", "/schema/objects", "/schema/objects", headers=PRIVATE).status_code == 200
    assert (
        c("GET", "/schema/objects/{object_type}", "/schema/objects/products", headers=PRIVATE).status_code
        == 200
    )

    events = [
        {"type": "order", "action": "purchase", "identifiers": {"email": "a@example.com"}, "data": {"n": 1}}
    ]
    assert c("POST", "/events", "/events", json=events, headers=PUBLIC).status_code == 202
    profile = {
        "identifiers": {"email": "a@example.com"},
        "attributes": {"first_name": "Ann", "country": "NO"},
    }
    assert c("POST", "/profiles", "/profiles", json=profile, headers=PRIVATE).status_code == 200
    got = c(
        "GET",
        "/profiles/{identifier_field}/{identifier_value}",
        "/profiles/email/a@example.com",
        headers=PRIVATE,
        params={"fields": "email,first_name"},
    )
    assert got.status_code == 200 and got.json() == {"email": "a@example.com", "first_name": "Ann"}
    objects = [{"object_id": "p1", "fields": {"price": 3.5}}]
    assert (
        c("POST", "/objects/{object_type}", "/objects/products", json=objects, headers=PUBLIC).status_code
        == 202
    )
    assert (
        c("GET", "/objects/{object_type}/{object_id}", "/objects/products/p1", headers=PRIVATE).status_code
        == 200
    )
    assert c("GET", "/segments", "/segments", headers=PRIVATE).status_code == 200

    # The documented error answers are the ones the emulator gives.
    assert (
        c(
            "POST",
            "/events",
            "/events",
            json=[{"type": "x", "action": "y", "identifiers": {}}],
            headers=PUBLIC,
        ).status_code
        == 400
    )
    assert c("POST", "/events", "/events", json=events, headers={"x-api-key": "wrong"}).status_code == 401
    assert (
        c(
            "POST",
            "/profiles",
            "/profiles",
            json={"identifiers": {"email": "b@example.com"}, "attributes": {"unknown_field": 1}},
            headers=PRIVATE,
        ).status_code
        == 400
    )
    assert (
        c(
            "GET",
            "/profiles/{identifier_field}/{identifier_value}",
            "/profiles/email/zz@example.com",
            headers=PRIVATE,
        ).status_code
        == 404
    )
    assert (
        c(
            "POST",
            "/objects/{object_type}",
            "/objects/products",
            json=[{"object_id": "p2", "fields": {"price": "free"}}],
            headers=PUBLIC,
        ).status_code
        == 400
    )
    assert (
        c("GET", "/objects/{object_type}/{object_id}", "/objects/products/none", headers=PRIVATE).status_code
        == 404
    )
    assert (
        c("GET", "/schema/objects/{object_type}", "/schema/objects/none", headers=PRIVATE).status_code == 404
    )
    assert (
        c(
            "POST",
            "/schema/objects/{object_type}",
            "/schema/objects/products",
            json={"display_name": "P"},
            headers=PRIVATE,
        ).status_code
        == 400
    )
    assert (
        c(
            "POST",
            "/schema/objects/{object_type}/fields",
            "/schema/objects/none/fields",
            json=field,
            headers=PRIVATE,
        ).status_code
        == 404
    )
    assert (
        c(
            "POST",
            "/schema/objects/{object_type}/fields",
            "/schema/objects/products/fields",
            json={"name": "x", "display_name": "X", "type": "date"},
            headers=PRIVATE,
            valid_request=False,
        ).status_code
        == 400
    )
    assert c("GET", "/segments", "/segments", headers=PUBLIC).status_code == 401

    assert check.covered == check.operations


def test_validation_catches_a_nonconforming_answer() -> None:
    """The check above can fail: a field type outside the document's enum is refused by openapi-core."""
    state = EmulatorState()
    state.odp.schema["customers"]["fields"]["email"]["type"] = "date"  # corrupt the emulator's own state
    with in_process_emulator(state) as emulator:
        check = Conformance(emulator.urls["odp"])
        with pytest.raises(Exception, match=r"(?i)valid|enum"):
            check.call("GET", "/schema/objects/{object_type}", "/schema/objects/customers", headers=PRIVATE)
