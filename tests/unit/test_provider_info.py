"""get_provider_info(): valid for Airflow's schema, and every connection type points at its hook."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_provider_optimizely import get_provider_info

EXPECTED = {
    "optimizely": "OptimizelyDcpHook",
    "optimizely_odp": "OptimizelyOdpHook",
    "optimizely_profile_store": "OptimizelyProfileStoreHook",
    "optimove": "OptimoveHook",
}


def _schema(name: str) -> dict:
    return json.loads((Path(airflow.__file__).parent / name).read_text())


def test_provider_info_matches_airflows_schemas() -> None:
    info = get_provider_info()
    jsonschema.validate(info, _schema("provider_info.schema.json"))
    # provider.yaml's schema is the one that spells out conn-fields and ui-field-behaviour.
    jsonschema.validate(
        {"connection-types": info["connection-types"]},
        {
            "type": "object",
            "properties": {
                "connection-types": _schema("provider.yaml.schema.json")["properties"]["connection-types"]
            },
        },
    )
    assert info["package-name"] == "airflow-provider-optimizely"


@pytest.mark.parametrize("entry", get_provider_info()["connection-types"], ids=lambda e: e["connection-type"])
def test_each_connection_type_points_at_its_hook(entry: dict) -> None:
    module_name, _, class_name = entry["hook-class-name"].rpartition(".")
    hook_class = getattr(importlib.import_module(module_name), class_name)
    assert class_name == EXPECTED[entry["connection-type"]]
    assert hook_class.conn_type == entry["connection-type"]
    assert hook_class.default_conn_name == f"{entry['connection-type']}_default"
    assert hook_class.hook_name == entry["hook-name"]
    hidden = entry["ui-field-behaviour"]["hidden-fields"]
    assert "password" not in hidden and "host" not in hidden


def test_secret_extras_are_declared_as_passwords() -> None:
    fields = {e["connection-type"]: e["conn-fields"] for e in get_provider_info()["connection-types"]}
    assert fields["optimizely_odp"]["public_api_key"]["schema"]["format"] == "password"
    assert fields["optimove"]["brand_key"]["schema"]["format"] == "password"
    for conn_type, declared in fields.items():
        hook_extras = {"optimizely_odp": {"public_api_key"}, "optimove": {"brand_key"}}.get(conn_type, set())
        secret = {name for name, spec in declared.items() if spec["schema"].get("format") == "password"}
        assert secret == hook_extras


def test_providers_manager_loads_our_forms() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert widgets["extra__optimove__brand_key"].is_sensitive
    assert widgets["extra__optimizely_odp__public_api_key"].is_sensitive
    assert not widgets["extra__optimizely__dcp_service_id"].is_sensitive
    behaviours = manager.field_behaviours
    assert behaviours["optimizely_profile_store"]["relabeling"]["host"] == "Instance URL"
    assert "login" in behaviours["optimove"]["hidden_fields"]


@pytest.mark.parametrize("kind", ["hooks", "operators", "sensors", "triggers"])
def test_every_listed_module_imports(kind: str) -> None:
    modules = [m for entry in get_provider_info()[kind] for m in entry["python-modules"]]
    assert modules
    for module in modules:
        importlib.import_module(module)
