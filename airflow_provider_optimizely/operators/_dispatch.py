"""Which API a connection speaks, and what each API can do.

Operators are named by capability, not by API (API.md §1): the connection's type picks the hook. An API
without the asked-for capability fails at once, naming the connection type and what it does have.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook

CREATE_TABLE = "create-table"
REGISTER_ATTRIBUTES = "register-attributes"
BULK_UPLOAD = "bulk-upload"
UPSERT_PROFILES = "upsert-profiles"
SEND_EVENTS = "send-events"
DELETE_PROFILES = "delete-profile"
UPLOAD_HISTORY = "upload-history"

HOOK_CLASSES: dict[str, str] = {
    "optimizely": "airflow_provider_optimizely.hooks.dcp.OptimizelyDcpHook",
    "optimizely_odp": "airflow_provider_optimizely.hooks.odp.OptimizelyOdpHook",
    "optimizely_profile_store": "airflow_provider_optimizely.hooks.profile_store.OptimizelyProfileStoreHook",
    "optimove": "airflow_provider_optimizely.hooks.optimove.OptimoveHook",
}

CAPABILITIES: dict[str, frozenset[str]] = {
    "optimizely": frozenset(
        {CREATE_TABLE, REGISTER_ATTRIBUTES, BULK_UPLOAD, UPSERT_PROFILES, UPLOAD_HISTORY}
    ),
    "optimizely_odp": frozenset({CREATE_TABLE, REGISTER_ATTRIBUTES, UPSERT_PROFILES, SEND_EVENTS}),
    "optimizely_profile_store": frozenset({UPSERT_PROFILES, DELETE_PROFILES}),
    "optimove": frozenset({CREATE_TABLE, UPSERT_PROFILES}),
}


class UnsupportedCapabilityError(AirflowException):
    """The connection's API has no such capability (for example send-events on Optimove)."""


def require_capability(conn_type: str, capability: str, conn_id: str) -> None:
    if conn_type not in CAPABILITIES:
        known = ", ".join(sorted(CAPABILITIES))
        raise UnsupportedCapabilityError(
            f"connection {conn_id!r} has type {conn_type!r}, which is not an Optimizely connection type "
            f"(one of: {known})"
        )
    if capability not in CAPABILITIES[conn_type]:
        has = ", ".join(sorted(CAPABILITIES[conn_type]))
        raise UnsupportedCapabilityError(
            f"{capability} is not available on connection {conn_id!r} of type {conn_type!r}; "
            f"that API can do: {has}"
        )


def hook_for(conn_id: str, capability: str) -> OptimizelyBaseHook:
    """The hook of ``conn_id``'s API, once it is known to offer ``capability``."""
    conn_type = BaseHook.get_connection(conn_id).conn_type or ""
    require_capability(conn_type, capability, conn_id)
    module_name, _, class_name = HOOK_CLASSES[conn_type].rpartition(".")
    hook_class = getattr(importlib.import_module(module_name), class_name)
    return hook_class(**{hook_class.conn_name_attr: conn_id})
