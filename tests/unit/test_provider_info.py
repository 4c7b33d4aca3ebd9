"""get_provider_info(): valid for Airflow's schema, and every connection type points at its hook."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import airflow
import jsonschema
import pytest
from airflow._shared.secrets_masker import DEFAULT_SENSITIVE_FIELDS, SecretsMasker

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


SECRET_EXTRAS = {
    "optimizely": {"oauth_refresh_token", "oauth_client_secret"},
    "optimizely_odp": {"public_api_key"},
    "optimizely_profile_store": set(),
    "optimove": {"brand_api_key"},
}
# Older names still read; each was renamed because Airflow misjudges it (see below).
OLD_NAMES = {
    "token_type": "auth_scheme",
    "oauth_token_url": "oauth_refresh_url",
    "brand_key": "brand_api_key",
}


def _sensitive(name: str) -> bool:
    """Airflow's own rule (``SecretsMasker.should_hide_value_for_key``) with its default sensitive names:
    what its UI and REST API show as ``***``."""
    masker = SecretsMasker()
    masker.sensitive_variables_fields = list(DEFAULT_SENSITIVE_FIELDS)
    masker.hide_sensitive_var_conn_fields = True
    return bool(masker.should_hide_value_for_key(name))


@pytest.mark.parametrize("entry", get_provider_info()["connection-types"], ids=lambda e: e["connection-type"])
def test_an_extra_is_secret_exactly_when_airflow_hides_it(entry: dict) -> None:
    conn_type = entry["connection-type"]
    declared = entry["conn-fields"]
    secret = {name for name, spec in declared.items() if spec["schema"].get("format") == "password"}
    assert secret == SECRET_EXTRAS[conn_type]
    for name in declared:
        # A non-secret with a sensitive name is shown, and may be saved, as "***"; a secret with a
        # harmless name is shown in clear to anyone who may read connections.
        assert _sensitive(name) == (name in secret), name
    hook_class = getattr(
        importlib.import_module(entry["hook-class-name"].rpartition(".")[0]), EXPECTED[conn_type]
    )
    assert secret <= set(hook_class.secret_extras)  # masked in logs and scrubbed from errors


def test_the_renamed_extras_were_misjudged_by_airflow() -> None:
    # token_type -> auth_scheme, oauth_token_url -> oauth_refresh_url, brand_key -> brand_api_key
    assert _sensitive("token_type") and _sensitive("oauth_token_url")  # non-secrets shown as ***
    assert not _sensitive("brand_key")  # a secret shown in clear


def test_the_dcp_form_never_offers_a_personal_token() -> None:
    (dcp,) = [e for e in get_provider_info()["connection-types"] if e["connection-type"] == "optimizely"]
    assert dcp["conn-fields"]["auth_scheme"]["schema"]["enum"] == ["classic", "oauth", None]
    texts = json.dumps(dcp).lower()
    assert "personal" not in texts and "token_type" not in texts


def test_providers_manager_loads_our_forms() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert widgets["extra__optimove__brand_api_key"].is_sensitive
    assert widgets["extra__optimizely__oauth_refresh_token"].is_sensitive
    assert not widgets["extra__optimizely__auth_scheme"].is_sensitive
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
