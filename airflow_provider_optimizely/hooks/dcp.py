"""OptimizelyDcpHook: Optimizely Dynamic Customer Profiles (API.md §4).

Services, tables and attributes live on the connection's host; profiles and aliases on the extra
``profile_api_base``. A single-resource ``get_*`` returns None when the API answers 404.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

from airflow.sdk import Connection
from airflow.sdk.log import mask_secret

from airflow_provider_optimizely.core.errors import NotFoundError
from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook, OptimizelyConfigError
from airflow_provider_optimizely.models.dcp import (
    Alias,
    AttributeDatatype,
    CustomerProfile,
    DatetimeFormat,
    DcpAttribute,
    DcpService,
    DcpTable,
    KeyfieldLocatorType,
    NewAttribute,
    NewTable,
    UploadHistoryEntry,
)

DEFAULT_PROFILE_API_BASE = "https://vis.optimizely.com/api"
DEFAULT_UPLOAD_HISTORY_PATH = "dcp_datasources/{table_id}/upload_history"
IMPORT_BUCKET = "optimizely-import"


@dataclass(frozen=True)
class DcpS3Credentials:
    """Where and how to write a bulk-upload file for one table (API.md §4.4)."""

    bucket: str
    key_prefix: str
    aws_access_key_id: str
    aws_secret_access_key: str = field(repr=False)
    endpoint_url: str | None = None
    region: str | None = None

    def key_for(self, file_name: str) -> str:
        return f"{self.key_prefix.strip('/')}/{file_name}"


class OptimizelyDcpHook(OptimizelyBaseHook):
    """Optimizely DCP: services, tables, attributes, customer profiles, aliases, Upload History."""

    conn_name_attr = "optimizely_conn_id"
    default_conn_name = "optimizely_default"
    conn_type = "optimizely"
    hook_name = "Optimizely DCP"
    api_name = "DCP"
    default_host = "https://api.optimizely.com/experiment/v1"
    # API.md §3: DCP publishes no limit (the 100/minute is v2 REST's), so no client budget unless the
    # connection sets requests_per_minute; the server's headers and its 60 s Retry-After still hold.
    default_budget = None
    default_retry_after = {429: 60.0, 503: 60.0}

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        token = self._require_password(conn, "the API token")
        token_type = str(conn.extra_dejson.get("token_type") or "classic").lower()
        if token_type == "bearer":  # noqa: S105 (a token kind, not a token)
            return {"Authorization": f"Bearer {token}"}
        if token_type in ("classic", "token"):
            return {"Token": token}
        raise OptimizelyConfigError(f"token_type must be 'classic' or 'bearer', got {token_type!r}")

    @property
    def profile_api_base(self) -> str:
        return str(self.extras.get("profile_api_base") or DEFAULT_PROFILE_API_BASE).rstrip("/")

    @cached_property
    def service_id(self) -> int:
        """The extra ``dcp_service_id``, else the account's one service."""
        configured = self.extras.get("dcp_service_id")
        if configured not in (None, ""):
            return int(configured)
        for service in self.list_services():
            if not service.archived:
                return service.id
        raise OptimizelyConfigError(
            f"connection {self.conn_id!r}: the account has no DCP service; create one or set dcp_service_id"
        )

    def _svc(self, service_id: int | None) -> int:
        return self.service_id if service_id is None else service_id

    # -- services ---------------------------------------------------------------------------------------

    def list_services(self) -> Iterator[DcpService]:
        for item in self.client.paginate("dcp_services"):
            yield DcpService.model_validate(item)

    def create_service(self, name: str) -> DcpService:
        return self._model(DcpService, "POST", "dcp_services", json={"name": name}, expected=(201,))

    def get_service(self, service_id: int | None = None) -> DcpService | None:
        return self._get(DcpService, f"dcp_services/{self._svc(service_id)}")

    def update_service(self, name: str, service_id: int | None = None) -> DcpService:
        path = f"dcp_services/{self._svc(service_id)}"
        return self._model(DcpService, "PUT", path, json={"name": name}, expected=(202,))

    # -- tables (datasources) ---------------------------------------------------------------------------

    def list_tables(self, service_id: int | None = None) -> Iterator[DcpTable]:
        for item in self.client.paginate(f"dcp_services/{self._svc(service_id)}/dcp_datasources"):
            yield DcpTable.model_validate(item)

    def create_table(
        self,
        name: str,
        keyfield_locator_type: KeyfieldLocatorType = "uid",
        keyfield_locator_name: str | None = None,
        description: str | None = None,
        service_id: int | None = None,
    ) -> DcpTable:
        body = NewTable(
            name=name,
            keyfield_locator_type=keyfield_locator_type,
            keyfield_locator_name=keyfield_locator_name,
            description=description,
        ).to_body()
        path = f"dcp_services/{self._svc(service_id)}/dcp_datasources"
        return self._model(DcpTable, "POST", path, json=body, expected=(201,))

    def get_table(self, table_id: int) -> DcpTable | None:
        return self._get(DcpTable, f"dcp_datasources/{table_id}")

    def update_table(self, table_id: int, **changes: Any) -> DcpTable:
        return self._model(DcpTable, "PUT", f"dcp_datasources/{table_id}", json=changes, expected=(202,))

    def delete_table(self, table_id: int) -> None:
        self.client.request("DELETE", f"dcp_datasources/{table_id}", expected=(204,))

    # -- attributes -------------------------------------------------------------------------------------

    def list_attributes(self, table_id: int) -> Iterator[DcpAttribute]:
        for item in self.client.paginate(f"dcp_datasources/{table_id}/dcp_datasource_attributes"):
            yield DcpAttribute.model_validate(item)

    def create_attribute(
        self,
        table_id: int,
        name: str,
        datatype: AttributeDatatype,
        description: str | None = None,
        format: DatetimeFormat | None = None,
    ) -> DcpAttribute:
        body = NewAttribute(name=name, datatype=datatype, description=description, format=format).to_body()
        path = f"dcp_datasources/{table_id}/dcp_datasource_attributes"
        return self._model(DcpAttribute, "POST", path, json=body, expected=(201,))

    def get_attribute(self, attribute_id: int) -> DcpAttribute | None:
        return self._get(DcpAttribute, f"dcp_datasource_attributes/{attribute_id}")

    def update_attribute(self, attribute_id: int, description: str) -> DcpAttribute:
        path = f"dcp_datasource_attributes/{attribute_id}"
        return self._model(DcpAttribute, "PUT", path, json={"description": description}, expected=(202,))

    def archive_attribute(self, attribute_id: int) -> None:
        self.client.request("DELETE", f"dcp_datasource_attributes/{attribute_id}", expected=(204,))

    # -- profiles and aliases (on profile_api_base) ------------------------------------------------------

    def get_profile(
        self, table_id: int, customer_id: str, service_id: int | None = None
    ) -> CustomerProfile | None:
        path = self._profile_path(table_id, customer_id, service_id)
        return self._get(CustomerProfile, path, base_url=self.profile_api_base)

    def upsert_profile(
        self, table_id: int, customer_id: str, data: Mapping[str, Any], service_id: int | None = None
    ) -> dict[str, Any]:
        """Write some attributes of one profile (hot path: plain dicts in and out)."""
        path = self._profile_path(table_id, customer_id, service_id)
        response = self.client.request(
            "POST", path, json={"data": data}, base_url=self.profile_api_base, expected=(200, 201)
        )
        return response.json() if response.content else {}

    def get_consolidated_view(
        self, optimizely_user_id: str, service_id: int | None = None
    ) -> list[CustomerProfile]:
        path = f"consolidatedCustomerView/{self._svc(service_id)}/{_segment(optimizely_user_id)}"
        answer = self.client.get_json(path, base_url=self.profile_api_base) or []
        return [CustomerProfile.model_validate(item) for item in answer]

    def get_alias(
        self, optimizely_datasource_id: int, optimizely_user_id: str, service_id: int | None = None
    ) -> Alias | None:
        path = self._alias_path(optimizely_datasource_id, optimizely_user_id, service_id)
        return self._get(Alias, path, base_url=self.profile_api_base)

    def create_alias(
        self,
        optimizely_datasource_id: int,
        optimizely_user_id: str,
        customer_ids: Mapping[str | int, str],
        service_id: int | None = None,
    ) -> Alias:
        """Link an Optimizely user id to customer ids: ``{table_id: customer_id}``."""
        path = self._alias_path(optimizely_datasource_id, optimizely_user_id, service_id)
        body = {"data": {str(table): str(customer) for table, customer in customer_ids.items()}}
        return self._model(
            Alias, "POST", path, json=body, base_url=self.profile_api_base, expected=(200, 201)
        )

    # -- bulk upload ------------------------------------------------------------------------------------

    def list_upload_history(self, table_id: int) -> Iterator[UploadHistoryEntry]:
        """Newest first. The path is the extra ``upload_history_path`` (``{table_id}`` filled in) if set."""
        template = str(self.extras.get("upload_history_path") or DEFAULT_UPLOAD_HISTORY_PATH)
        for item in self.client.paginate(template.format(table_id=table_id)):
            yield UploadHistoryEntry.model_validate(item)

    def s3_credentials(self, table: DcpTable | int) -> DcpS3Credentials:
        """The bucket, key prefix and the table's own keys for a bulk upload (the secret key is masked)."""
        if not isinstance(table, DcpTable):
            found = self.get_table(table)
            if found is None:
                raise NotFoundError(
                    404, "table not found", method="GET", path=f"dcp_datasources/{table}", api="DCP"
                )
            table = found
        if not (table.s3_path and table.aws_access_key and table.aws_secret_key):
            raise OptimizelyConfigError(f"DCP table {table.id} came without its s3_path or S3 keys")
        secret = table.aws_secret_key.get_secret_value()
        mask_secret(secret)
        self.client.add_secret(secret)
        extras = self.extras
        return DcpS3Credentials(
            bucket=IMPORT_BUCKET,
            key_prefix=table.s3_path,
            aws_access_key_id=table.aws_access_key,
            aws_secret_access_key=secret,
            endpoint_url=extras.get("s3_endpoint_url") or None,
            region=extras.get("s3_region") or None,
        )

    # -- test_connection --------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        def probe() -> str:
            services = self.client.get_json("dcp_services", params={"per_page": 1})
            return f"DCP token accepted ({len(services or [])} service(s) on the first page)"

        return self._check(probe)

    # -- helpers ----------------------------------------------------------------------------------------

    def _model(self, model: Any, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        return model.model_validate(response.json())

    def _profile_path(self, table_id: int, customer_id: str, service_id: int | None) -> str:
        return f"customer_profile/{self._svc(service_id)}/{table_id}/{_segment(customer_id)}"

    def _alias_path(
        self, optimizely_datasource_id: int, optimizely_user_id: str, service_id: int | None
    ) -> str:
        return f"alias/{self._svc(service_id)}/{optimizely_datasource_id}/{_segment(optimizely_user_id)}"

    def _get(self, model: Any, path: str, **kwargs: Any) -> Any:
        try:
            answer = self.client.get_json(path, **kwargs)
        except NotFoundError:
            return None
        return model.model_validate(answer)


def _segment(value: str) -> str:
    """One path segment: a customer id may hold ``/`` or ``?`` and must not change the path."""
    return quote(str(value), safe="")
