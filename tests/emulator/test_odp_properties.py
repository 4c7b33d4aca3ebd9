"""The emulated ODP under generated requests (schemathesis): its answers hold to odp-openapi.yaml
(docs/api-contract.md §5),
schema-invalid requests are refused, and the key rules hold for every request, whatever its body.

``test_odp_openapi.py`` walks each operation by hand; here hypothesis draws the requests from the document.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from airflow_provider_optimizely.emulator.handle import EmulatorHandle

DOCUMENT = yaml.safe_load((Path(__file__).parent / "data" / "odp-openapi.yaml").read_text())


def load_schema(*modes: GenerationMode) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_dict(DOCUMENT)
    # The key is the test's to choose: schemathesis draws none of its own.
    loaded.config.generation.update(modes=list(modes), with_security_parameters=False)
    return loaded


schema = load_schema(GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# The key rules are about the documented method of each route (another method is a 405 before any key).
documented_requests = load_schema(GenerationMode.POSITIVE)

# Operations whose own ``security`` names the private key; the others inherit the global public key.
PRIVATE_OPERATIONS = {
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if operation.get("security") == [{"privateApiKey": []}]
}
EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


def test_the_document_names_the_private_routes_of_api_md() -> None:
    """docs/api-contract.md §5: POST /profiles, every GET /profiles, all /schema routes and /segments need
    the private
    key."""
    assert {
        ("POST", "/profiles"),
        ("GET", "/profiles/{identifier_field}/{identifier_value}"),
        ("GET", "/schema/objects"),
        ("GET", "/schema/objects/{object_type}"),
        ("POST", "/schema/objects/{object_type}"),
        ("POST", "/schema/objects/{object_type}/fields"),
        ("GET", "/segments"),
    } == PRIVATE_OPERATIONS


def call_with_key(case: schemathesis.Case, base_url: str, key: str | None) -> requests.Response:
    """Send the drawn request with ``x-api-key: key`` (None: without one), whatever headers it drew."""
    case.headers = {
        name: value for name, value in (case.headers or {}).items() if name.lower() != "x-api-key"
    }
    if key is not None:
        case.headers["x-api-key"] = key
    return case.call(base_url=base_url)


@pytest.fixture
def odp(emulator: EmulatorHandle) -> EmulatorHandle:
    # The document lists no 429: shrink the 10/s window of POST /profiles so that no drawn burst meets it.
    emulator.set_time_scale(0.0001)
    return emulator


@schema.parametrize()
@EXAMPLES
def test_answers_conform_to_the_openapi_document(case: schemathesis.Case, odp: EmulatorHandle) -> None:
    """Every check schemathesis has (no 5xx, documented statuses, content types and bodies, schema-invalid
    requests refused, auth enforced), but one: the emulator refuses some schema-valid requests on purpose,
    for the rules docs/api-contract.md §5 adds to the document (a non-empty ``type``/``action``, at least one
    identifier,
    fields that exist in the ODP schema), each with a documented 400."""
    response = call_with_key(case, odp.urls["odp"], odp.keys["odp_private_key"])
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


@documented_requests.parametrize()
@EXAMPLES
def test_key_rules_hold_for_every_request(case: schemathesis.Case, odp: EmulatorHandle) -> None:
    """docs/api-contract.md §5: the public key gets 401 on the private routes and never on the others; no key
    or a wrong
    key gets 401 everywhere. Checked before the body is looked at, so it holds for any body."""
    base_url = odp.urls["odp"]
    private = (case.method.upper(), case.path) in PRIVATE_OPERATIONS
    public = call_with_key(case, base_url, odp.keys["odp_public_key"])
    if private:
        assert public.status_code == 401, (case.method, case.path, public.text)
        assert "private" in public.json()["message"]
    else:
        assert public.status_code != 401, (case.method, case.path, public.text)
    for key in ("not-a-key", None):
        refused = call_with_key(case, base_url, key)
        assert refused.status_code == 401, (case.method, case.path, key, refused.text)
