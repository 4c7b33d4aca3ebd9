"""Airflow Assets of what the provider's data operators write: one URI scheme per API.

- DCP: ``optimizely-dcp://<conn_id>/<table_id>`` (a table, or datasource, id);
- ODP: ``optimizely-odp://<conn_id>/<object type>`` (``customers`` for profiles, ``events``);
- Profile Store: ``optimizely-profile-store://<conn_id>/<scope>``;
- Optimove: ``optimove://<conn_id>/<data connection uuid>``.

The authority is the Airflow connection id, not the API's host: it names the account as this Airflow
knows it, and it is known when the DAG is parsed (a host would need the connection read at every parse).
OpenLineage datasets, built in the worker, name the host instead (``operators._lineage``).

Each scheme is registered under ``asset-uris`` in ``get_provider_info`` with ``sanitize_uri`` as its
normaliser, so ``Asset("optimizely-dcp://optimizely_default/0123/")`` and the URI an operator emits are
the same asset. A downstream DAG is scheduled on a sync with ``schedule=[dcp_table_asset(12345)]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from airflow.sdk import Asset

if TYPE_CHECKING:
    from urllib.parse import SplitResult


@dataclass(frozen=True)
class TargetKind:
    """What one API's data operators write to, as an asset URI names it."""

    scheme: str
    #: What the last segment of the URI is, for error messages.
    what: str
    default_conn_id: str
    numeric: bool = False


DCP_TABLE = TargetKind("optimizely-dcp", "a DCP table id", "optimizely_default", numeric=True)
ODP_OBJECT = TargetKind("optimizely-odp", "an ODP object type", "optimizely_odp_default")
PROFILE_STORE_SCOPE = TargetKind(
    "optimizely-profile-store", "a Profile Store scope", "optimizely_profile_store_default"
)
OPTIMOVE_CONNECTION = TargetKind("optimove", "an Optimove data connection uuid", "optimove_default")
KINDS = {kind.scheme: kind for kind in (DCP_TABLE, ODP_OBJECT, PROFILE_STORE_SCOPE, OPTIMOVE_CONNECTION)}


def _canonical_name(kind: TargetKind, name: str) -> str:
    text = name.strip()
    if kind.numeric:
        if not text.isdigit():
            raise ValueError(f"{kind.scheme}:// URIs end with {kind.what} (a number), got {name!r}")
        return str(int(text))  # 012 and 12 are one table
    if not text or text in (".", ".."):
        raise ValueError(f"{kind.scheme}:// URIs end with {kind.what}, got {name!r}")
    return text


def target_uri(kind: TargetKind, conn_id: str, name: str | int) -> str:
    """The URI of ``name`` (a table id, object type, scope or uuid) on connection ``conn_id``, normalised."""
    if not conn_id or "/" in conn_id or "@" in conn_id:
        raise ValueError(f"{kind.scheme}:// URIs need a connection id without '/' or '@', got {conn_id!r}")
    return f"{kind.scheme}://{conn_id}/{quote(_canonical_name(kind, str(name)), safe='')}"


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """The ``asset-uris`` normaliser of every scheme here: ``<scheme>://<conn_id>/<one segment>``."""
    kind = KINDS[uri.scheme]
    if not uri.netloc:
        raise ValueError(f"a {kind.scheme}:// URI names the connection: {kind.scheme}://<conn_id>/<...>")
    segments = [segment for segment in uri.path.split("/") if segment]
    if len(segments) != 1:
        raise ValueError(f"a {kind.scheme}:// URI has one path segment, {kind.what}; got {uri.path!r}")
    name = quote(_canonical_name(kind, unquote(segments[0])), safe="")
    return uri._replace(path=f"/{name}", query="", fragment="")


def _asset(kind: TargetKind, conn_id: str | None, name: str | int) -> Asset:
    return Asset(uri=target_uri(kind, conn_id or kind.default_conn_id, name))


def dcp_table_asset(table_id: int | str, conn_id: str | None = None) -> Asset:
    """The asset of a DCP table: profiles of it were written (upserts, bulk uploads)."""
    return _asset(DCP_TABLE, conn_id, table_id)


def odp_object_asset(object_type: str = "customers", conn_id: str | None = None) -> Asset:
    """The asset of an ODP object type: ``customers`` (profile upserts) or ``events`` (events sent)."""
    return _asset(ODP_OBJECT, conn_id, object_type)


def profile_store_scope_asset(scope: str = "default", conn_id: str | None = None) -> Asset:
    """The asset of a Profile Store scope: profiles in it were replaced or deleted."""
    return _asset(PROFILE_STORE_SCOPE, conn_id, scope)


def optimove_connection_asset(data_connection_uuid: str, conn_id: str | None = None) -> Asset:
    """The asset of an Optimove data connection: records were uploaded to it."""
    return _asset(OPTIMOVE_CONNECTION, conn_id, data_connection_uuid)


# The ``factory`` entries of ``asset-uris``: Airflow's hook-lineage collector calls them with keywords.
def create_dcp_asset(*, table_id: int | str, conn_id: str | None = None) -> Asset:
    return dcp_table_asset(table_id, conn_id)


def create_odp_asset(*, object_type: str, conn_id: str | None = None) -> Asset:
    return odp_object_asset(object_type, conn_id)


def create_profile_store_asset(*, scope: str, conn_id: str | None = None) -> Asset:
    return profile_store_scope_asset(scope, conn_id)


def create_optimove_asset(*, data_connection_uuid: str, conn_id: str | None = None) -> Asset:
    return optimove_connection_asset(data_connection_uuid, conn_id)


__all__ = [
    "DCP_TABLE",
    "ODP_OBJECT",
    "OPTIMOVE_CONNECTION",
    "PROFILE_STORE_SCOPE",
    "TargetKind",
    "dcp_table_asset",
    "odp_object_asset",
    "optimove_connection_asset",
    "profile_store_scope_asset",
    "sanitize_uri",
    "target_uri",
]
