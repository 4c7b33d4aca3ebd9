"""OptimoveHook: Optimove Data Connections (docs/api-contract.md §7).

Records go out as plain dicts, at most 5000 a request. Each record replaces the stored one whole.
The brand key (``x-brand-key``) is the extra ``brand_api_key``: Airflow hides an extra only when its
name says it is secret, and ``brand_key`` (still read) is shown in clear by Airflow's UI and REST API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from airflow.sdk import Connection

from airflow_provider_optimizely.core.errors import (
    BadRequestError,
    InvalidRequestError,
    NotFoundError,
    OptimizelyConfigError,
)
from airflow_provider_optimizely.core.rest import RestClient
from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook
from airflow_provider_optimizely.models.optimove import DataConnection, NewDataConnection

MAX_RECORDS = 5000
# No connection has this id. An empty upload to it is answered 404 (or 400) once the keys are accepted,
# and 401 when they are not: the API has no read endpoint, so this is the cheapest honest check.
_PROBE_CONNECTION = "00000000-0000-0000-0000-000000000000"


class OptimoveHook(OptimizelyBaseHook):
    """Optimove Data Connections: create a connection, upload and update records."""

    conn_name_attr = "optimove_conn_id"
    default_conn_name = "optimove_default"
    conn_type = "optimove"
    hook_name = "Optimove Data Connections"
    api_name = "Optimove"
    # No published concurrency (only a budget in headers): adaptive concurrency goes up to this.
    default_concurrency_cap = 32
    default_host = "https://api.opti-x.optimove.net/api/data-connections/v1"
    secret_extras = ("brand_api_key", "brand_key")

    @property
    def brand_key(self) -> str:
        """The brand key (``x-brand-key``): it names the Optimove account the connection writes to."""
        return str(self._extra(self.connection, "brand_api_key", "brand_key") or "")

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        api_key = self._require_password(conn, "the x-api-key")
        brand_key = self._extra(conn, "brand_api_key", "brand_key")
        if not brand_key:
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r} (optimove) needs the extra brand_api_key (the x-brand-key)"
            )
        return {"x-api-key": api_key, "x-brand-key": str(brand_key)}

    def auth_hint(self, conn: Connection) -> str:
        return "Check the connection's password (the x-api-key) and its extra brand_api_key (the x-brand-key)"

    def create_connection(self, name: str, primary_key: str, description: str = "") -> DataConnection:
        body = NewDataConnection(name=name, primary_key=primary_key, description=description).to_body()
        response = self.client.request("POST", "connections", json=body, expected=(200, 201))
        return DataConnection.model_validate(response.json())

    def upload_data(
        self,
        connection_uuid: str,
        records: Sequence[Mapping[str, Any]],
        *,
        ttl_seconds: int | None = None,
        batch_uuid: str | None = None,
        batch_completed: bool = True,
    ) -> dict[str, Any]:
        """Upload at most 5000 records; a longer load shares one ``batch_uuid`` with
        ``batch_completed=False`` on every request but the last."""
        _check_batch(records)
        body: dict[str, Any] = {
            "data": records,
            "ttl_seconds": ttl_seconds,
            "batch_completed": batch_completed,
        }
        if batch_uuid is not None:
            body["batch_uuid"] = batch_uuid
        path = f"connections/{self._data_connection(connection_uuid)}/upload_data"
        response = self.client.request("POST", path, json=body)
        return response.json() if response.content else {}

    def update_data(self, connection_uuid: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Replace records: ``[{primary_key, data, ttl}]``."""
        _check_batch(items)
        path = f"connections/{self._data_connection(connection_uuid)}/update_data"
        response = self.client.request("PUT", path, json=items)
        return response.json() if response.content else {}

    def probe(self, client: RestClient) -> str:
        # Past authentication, the bogus connection is refused (404/400): the keys are good.
        body: dict[str, Any] = {"data": [], "ttl_seconds": None, "batch_completed": True}
        with suppress(NotFoundError, BadRequestError):
            client.request("POST", f"connections/{_PROBE_CONNECTION}/upload_data", json=body)
        return "Optimove keys accepted"

    def _data_connection(self, connection_uuid: str) -> str:
        return self.segment(connection_uuid, "data connection uuid")


def _check_batch(records: Sequence[Any]) -> None:
    if len(records) > MAX_RECORDS:
        raise InvalidRequestError(
            f"Optimove takes at most {MAX_RECORDS} records per request, got {len(records)}"
        )
