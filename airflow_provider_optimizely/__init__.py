"""Apache Airflow provider for Optimizely customer profiles and Optimove Data Connections."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_PACKAGE = "airflow_provider_optimizely"
_HOOKS = f"{_PACKAGE}.hooks"


def _number(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["number", "null"], "minimum": 0}}


def _text(label: str, description: str, *, secret: bool = False, url: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        # Airflow treats a conn-field with format "password" as sensitive: masked in the UI and in logs.
        schema["format"] = "password"
    elif url:
        schema["format"] = "url"
    return {"label": label, "description": description, "schema": schema}


# Every connection type: the base of its extra link (airflow_provider_optimizely.links; docs/lineage.md).
_UI_FIELDS = {
    "ui_base_url": _text(
        "Web UI base URL",
        "Base of the task's link to its target in the vendor's web UI (the default pattern is inferred).",
        url=True,
    ),
}

_RETRY_FIELDS = {
    "max_attempts": _number(
        "Max attempts",
        "Attempts per request against faults (5xx, dropped connections, timeouts), the first included "
        "(default 5). A 429 asking to wait is not a fault.",
    ),
    "max_retry_seconds": _number(
        "Max retry seconds",
        "Time budget of a request's retries and waits, a 429's Retry-After included (default 600).",
    ),
}

_CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": "optimizely",
        "hook-class-name": f"{_HOOKS}.dcp.OptimizelyDcpHook",
        "hook-name": "Optimizely DCP",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "API base URL", "password": "Classic token or OAuth access token"},
            "placeholders": {
                "host": "https://api.optimizely.com/experiment/v1",
                "password": "DCP classic token (empty with auth_scheme oauth and a refresh token)",
            },
        },
        # No extra that holds a non-secret may have a name Airflow treats as sensitive (containing
        # token, secret, password, api_key, ...): Airflow's UI and REST API would show it as ***.
        "conn-fields": {
            "auth_scheme": {
                "label": "Auth scheme",
                "description": "classic: the password is a DCP classic token, sent as 'Token: ...'. "
                "oauth: an OAuth 2.0 access token, sent as 'Authorization: Bearer ...', refreshed from "
                "the OAuth refresh token below (without one, the password is the access token).",
                "schema": {
                    "type": ["string", "null"],
                    "enum": ["classic", "oauth", None],
                    "default": "classic",
                },
            },
            "oauth_refresh_token": _text(
                "OAuth refresh token", "With auth_scheme oauth: exchanged for access tokens.", secret=True
            ),
            "oauth_client_id": _text("OAuth client id", "The OAuth app the refresh token was issued to."),
            "oauth_client_secret": _text("OAuth client secret", "The OAuth app's secret.", secret=True),
            "oauth_refresh_url": _text(
                "OAuth token endpoint",
                "Where the refresh token is exchanged (default https://app.optimizely.com/oauth2/token).",
                url=True,
            ),
            "profile_api_base": _text(
                "Profile API base URL",
                "Base URL of customer_profile and alias calls (default https://vis.optimizely.com/api).",
                url=True,
            ),
            "dcp_service_id": _number("DCP service id", "The account's DCP service; looked up when empty."),
            "requests_per_minute": _number(
                "Requests per minute", "Client-side budget (none by default: DCP publishes no limit)."
            ),
            "upload_history_path": _text(
                "Upload History path",
                "Path of the Upload History list; {table_id} is filled in "
                "(default dcp_datasources/{table_id}/upload_history).",
            ),
            "s3_endpoint_url": _text("S3 endpoint URL", "Only for an emulator or a proxy.", url=True),
            "s3_region": _text("S3 region", "Region of the optimizely-import bucket."),
            **_RETRY_FIELDS,
            **_UI_FIELDS,
        },
    },
    {
        "connection-type": "optimizely_odp",
        "hook-class-name": f"{_HOOKS}.odp.OptimizelyOdpHook",
        "hook-name": "Optimizely Data Platform (ODP)",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "API base URL", "password": "Private API key"},
            "placeholders": {
                "host": "https://api.zaius.com/v3 (EU: https://api.eu1.odp.optimizely.com/v3)",
            },
        },
        "conn-fields": {
            "public_api_key": _text(
                "Public API key", "May send data; reads need the private key.", secret=True
            ),
            "requests_per_second": _number(
                "Requests per second", "Client-side budget (profiles: at most 10)."
            ),
            **_RETRY_FIELDS,
            **_UI_FIELDS,
        },
    },
    {
        "connection-type": "optimizely_profile_store",
        "hook-class-name": f"{_HOOKS}.profile_store.OptimizelyProfileStoreHook",
        "hook-name": "Optimizely Profile Store",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "Instance URL", "password": "API key"},
            "placeholders": {"host": "https://<your-instance>.profilestore.episerver.net"},
        },
        "conn-fields": {
            "default_scope": _text("Default scope", "Scope used when a call names none (default 'default')."),
            "requests_per_second": _number("Requests per second", "Client-side budget (none by default)."),
            **_RETRY_FIELDS,
            **_UI_FIELDS,
        },
    },
    {
        "connection-type": "optimove",
        "hook-class-name": f"{_HOOKS}.optimove.OptimoveHook",
        "hook-name": "Optimove Data Connections",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "API base URL", "password": "API key (x-api-key)"},
            "placeholders": {"host": "https://api.opti-x.optimove.net/api/data-connections/v1"},
        },
        "conn-fields": {
            "brand_api_key": _text("Brand key", "Sent as x-brand-key.", secret=True),
            "requests_per_second": _number("Requests per second", "Client-side budget (none by default)."),
            **_RETRY_FIELDS,
            **_UI_FIELDS,
        },
    },
]


# The [optimizely] section of airflow.cfg (AIRFLOW__OPTIMIZELY__*), read by the row-sync operators.
_CONFIG: dict[str, Any] = {
    "optimizely": {
        "description": "Settings of airflow-provider-optimizely.",
        "options": {
            "sync_state_uri": {
                "description": (
                    "Where incremental syncs keep their state when an operator names no state_store: a "
                    "folder, or an object-storage URI (s3://bucket/prefix) that every worker can reach. "
                    "Default: the folder optimizely_sync_state in the Airflow home."
                ),
                "version_added": "0.1.0",
                "type": "string",
                "example": "s3://my-bucket/airflow/optimizely-sync-state",
                "default": None,
            },
            "sync_state_conn_id": {
                "description": "The connection of an object-storage sync_state_uri (its credentials).",
                "version_added": "0.1.0",
                "type": "string",
                "example": "aws_default",
                "default": None,
            },
        },
    }
}


_ASSET_FACTORIES = {
    "optimizely-dcp": "create_dcp_asset",
    "optimizely-odp": "create_odp_asset",
    "optimizely-profile-store": "create_profile_store_asset",
    "optimove": "create_optimove_asset",
}
_LINKS = ("DcpTableLink", "OdpObjectLink", "ProfileStoreScopeLink", "OptimoveConnectionLink")


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads: the hooks, connection types and their forms, as data."""
    return {
        "package-name": "airflow-provider-optimizely",
        "name": "Optimizely",
        "description": "Optimizely DCP, ODP, Profile Store and Optimove Data Connections.",
        "versions": [__version__],
        "connection-types": _CONNECTION_TYPES,
        "integrations": [
            {
                "integration-name": "Optimizely",
                "external-doc-url": "https://docs.developers.optimizely.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Optimizely",
                "python-modules": [
                    f"{_HOOKS}.base",
                    f"{_HOOKS}.dcp",
                    f"{_HOOKS}.odp",
                    f"{_HOOKS}.profile_store",
                    f"{_HOOKS}.optimove",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Optimizely",
                "python-modules": [
                    f"{_PACKAGE}.operators.dcp",
                    f"{_PACKAGE}.operators.odp",
                    f"{_PACKAGE}.operators.profile_store",
                    f"{_PACKAGE}.operators.optimove",
                ],
            }
        ],
        "sensors": [{"integration-name": "Optimizely", "python-modules": [f"{_PACKAGE}.sensors.dcp"]}],
        "triggers": [{"integration-name": "Optimizely", "python-modules": [f"{_PACKAGE}.triggers.dcp"]}],
        "config": _CONFIG,
        # One scheme per API (airflow_provider_optimizely.assets): a normaliser and a factory each.
        "asset-uris": [
            {
                "schemes": [scheme],
                "handler": f"{_PACKAGE}.assets.sanitize_uri",
                "factory": f"{_PACKAGE}.assets.{factory}",
            }
            for scheme, factory in _ASSET_FACTORIES.items()
        ],
        "extra-links": [f"{_PACKAGE}.links.{link}" for link in _LINKS],
    }
