"""OptimizelyDcpHook: Optimizely Dynamic Customer Profiles (docs/api-contract.md §2, §4).

Services, tables and attributes live on the connection's host; profiles and aliases on the extra
``profile_api_base``. A single-resource ``get_*`` returns None when the API answers 404.

Auth (extra ``auth_scheme``): ``classic`` (the default) sends the password as ``Token: ...``, the only
kind of token DCP takes from a person (it refuses personal tokens); ``oauth`` sends an OAuth access token
as ``Authorization: Bearer ...``, refreshed from the extra ``oauth_refresh_token`` when one is set, else
the password taken as an access token. A personal token is never offered as ``Bearer``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk import Connection
from airflow.sdk.log import mask_secret

from airflow_provider_optimizely.core.errors import NotFoundError, OptimizelyConfigError
from airflow_provider_optimizely.core.oauth import DEFAULT_TOKEN_URL, OAuthRefresher
from airflow_provider_optimizely.core.rest import Authenticator, RestClient
from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook
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
    """Where and how to write a bulk-upload file for one table (docs/api-contract.md §4.4)."""

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
    # No published limit (docs/api-contract.md §3): adaptive concurrency finds what it takes, up to this.
    default_concurrency_cap = 64
    default_host = "https://api.optimizely.com/experiment/v1"
    # docs/api-contract.md §3: DCP publishes no limit (the 100/minute is v2 REST's), so no client budget
    # unless the connection sets requests_per_minute; the server's headers and its 60 s Retry-After hold.
    default_budget = None
    default_retry_after = {429: 60.0, 503: 60.0}
    secret_extras = ("oauth_refresh_token", "oauth_client_secret")

    # -- auth -------------------------------------------------------------------------------------------

    def auth_scheme(self, conn: Connection) -> str:
        """``classic`` or ``oauth``: the extra ``auth_scheme``, else the older ``token_type``."""
        extras = conn.extra_dejson
        scheme = extras.get("auth_scheme")
        if scheme not in (None, ""):
            scheme = str(scheme).strip().lower()
            if scheme in ("classic", "oauth"):
                return scheme
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r}: the extra auth_scheme must be 'classic' or 'oauth', "
                f"got {scheme!r}"
            )
        legacy = extras.get("token_type")
        if legacy in (None, ""):
            return "classic"
        legacy = str(legacy).strip().lower()
        if legacy not in ("classic", "token", "bearer"):
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r}: the extra token_type holds {legacy!r} (Airflow shows, and "
                "may save, an extra named *token* as '***'): remove it and set auth_scheme to 'classic' "
                "or 'oauth'"
            )
        # 'bearer' only ever meant an OAuth access token in password: DCP refuses personal tokens.
        scheme = "oauth" if legacy == "bearer" else "classic"
        warnings.warn(
            f"connection {self.conn_id!r}: the extra token_type is replaced by auth_scheme (Airflow masks "
            f"extras named *token*); token_type {legacy!r} is read as auth_scheme {scheme!r}",
            AirflowProviderDeprecationWarning,
            stacklevel=2,
        )
        return scheme

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        if self.auth_scheme(conn) == "oauth":
            token = self._require_password(conn, "an OAuth access token (or set oauth_refresh_token)")
            return {"Authorization": f"Bearer {token}"}
        return {"Token": self._require_password(conn, "the DCP classic token")}

    def authenticator(self, conn: Connection) -> Authenticator | None:
        if self.auth_scheme(conn) != "oauth" or not conn.extra_dejson.get("oauth_refresh_token"):
            return None
        return self._oauth

    @cached_property
    def _oauth(self) -> OAuthRefresher:
        """One refresher per hook: every thread, and test_connection, share its access token."""
        conn = self.connection
        client_id = conn.extra_dejson.get("oauth_client_id")
        if not client_id:
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r}: auth_scheme 'oauth' with a refresh token needs the extra "
                "oauth_client_id (and oauth_client_secret if the client has one)"
            )
        token_url = str(self._extra(conn, "oauth_refresh_url", "oauth_token_url") or DEFAULT_TOKEN_URL)
        return OAuthRefresher(
            str(conn.extra_dejson["oauth_refresh_token"]),
            str(client_id),
            str(conn.extra_dejson.get("oauth_client_secret") or "") or None,
            token_url=token_url,
            on_secret=mask_secret,
            api_name=self.api_name,
            conn_id=self.conn_id,
            hint=self.auth_hint(conn),
            timeout=self.timeout,
        )

    def auth_hint(self, conn: Connection) -> str:
        if self.auth_scheme(conn) == "classic":
            return (
                "Check the connection's password (a DCP classic token: DCP refuses personal tokens) "
                "and its extra auth_scheme"
            )
        if conn.extra_dejson.get("oauth_refresh_token"):
            return (
                "Check the connection's extras oauth_refresh_token, oauth_client_id, "
                "oauth_client_secret, oauth_refresh_url and auth_scheme"
            )
        return (
            "Check the connection's password (an OAuth access token, which expires: set the extras "
            "oauth_refresh_token and oauth_client_id to refresh it) and its extra auth_scheme"
        )

    @property
    def profile_api_base(self) -> str:
        return str(self.extras.get("profile_api_base") or DEFAULT_PROFILE_API_BASE).rstrip("/")

    @cached_property
    def service_id(self) -> int:
        """The extra ``dcp_service_id``, else the account's one service."""
        configured = self.extras.get("dcp_service_id")
        if configured not in (None, ""):
            try:
                return int(configured)
            except (TypeError, ValueError):
                raise OptimizelyConfigError(
                    f"connection {self.conn_id!r}: the extra dcp_service_id must be a number, "
                    f"got {configured!r}"
                ) from None
        for service in self.list_services():
            if not service.archived:
                return service.id
        raise OptimizelyConfigError(
            f"connection {self.conn_id!r}: the account has no DCP service; create one or set dcp_service_id"
        )

    def _svc(self, service_id: int | str | None) -> str:
        return self.segment(self.service_id if service_id is None else service_id, "service id")

    def _table(self, table_id: int | str) -> str:
        return self.segment(table_id, "table id")

    # -- services ---------------------------------------------------------------------------------------

    def list_services(self) -> Iterator[DcpService]:
        for item in self.client.paginate("dcp_services"):
            yield DcpService.model_validate(item)

    def create_service(self, name: str) -> DcpService:
        return self._model(DcpService, "POST", "dcp_services", json={"name": name}, expected=(201,))

    def get_service(self, service_id: int | str | None = None) -> DcpService | None:
        return self._get(DcpService, f"dcp_services/{self._svc(service_id)}")

    def update_service(self, name: str, service_id: int | str | None = None) -> DcpService:
        path = f"dcp_services/{self._svc(service_id)}"
        return self._model(DcpService, "PUT", path, json={"name": name}, expected=(202,))

    # -- tables (datasources) ---------------------------------------------------------------------------

    def list_tables(self, service_id: int | str | None = None) -> Iterator[DcpTable]:
        for item in self.client.paginate(f"dcp_services/{self._svc(service_id)}/dcp_datasources"):
            yield DcpTable.model_validate(item)

    def create_table(
        self,
        name: str,
        keyfield_locator_type: KeyfieldLocatorType = "uid",
        keyfield_locator_name: str | None = None,
        description: str | None = None,
        service_id: int | str | None = None,
    ) -> DcpTable:
        body = NewTable(
            name=name,
            keyfield_locator_type=keyfield_locator_type,
            keyfield_locator_name=keyfield_locator_name,
            description=description,
        ).to_body()
        path = f"dcp_services/{self._svc(service_id)}/dcp_datasources"
        return self._model(DcpTable, "POST", path, json=body, expected=(201,))

    def get_table(self, table_id: int | str) -> DcpTable | None:
        return self._get(DcpTable, f"dcp_datasources/{self._table(table_id)}")

    def update_table(self, table_id: int | str, **changes: Any) -> DcpTable:
        path = f"dcp_datasources/{self._table(table_id)}"
        return self._model(DcpTable, "PUT", path, json=changes, expected=(202,))

    def delete_table(self, table_id: int | str) -> None:
        self.client.request("DELETE", f"dcp_datasources/{self._table(table_id)}", expected=(204,))

    # -- attributes -------------------------------------------------------------------------------------

    def list_attributes(self, table_id: int | str) -> Iterator[DcpAttribute]:
        path = f"dcp_datasources/{self._table(table_id)}/dcp_datasource_attributes"
        for item in self.client.paginate(path):
            yield DcpAttribute.model_validate(item)

    def create_attribute(
        self,
        table_id: int | str,
        name: str,
        datatype: AttributeDatatype,
        description: str | None = None,
        format: DatetimeFormat | None = None,
    ) -> DcpAttribute:
        body = NewAttribute(name=name, datatype=datatype, description=description, format=format).to_body()
        path = f"dcp_datasources/{self._table(table_id)}/dcp_datasource_attributes"
        return self._model(DcpAttribute, "POST", path, json=body, expected=(201,))

    def get_attribute(self, attribute_id: int | str) -> DcpAttribute | None:
        return self._get(DcpAttribute, self._attribute_path(attribute_id))

    def update_attribute(self, attribute_id: int | str, description: str) -> DcpAttribute:
        path = self._attribute_path(attribute_id)
        return self._model(DcpAttribute, "PUT", path, json={"description": description}, expected=(202,))

    def archive_attribute(self, attribute_id: int | str) -> None:
        self.client.request("DELETE", self._attribute_path(attribute_id), expected=(204,))

    # -- profiles and aliases (on profile_api_base) ------------------------------------------------------

    def get_profile(
        self, table_id: int | str, customer_id: str, service_id: int | str | None = None
    ) -> CustomerProfile | None:
        path = self._profile_path(table_id, customer_id, service_id)
        return self._get(CustomerProfile, path, base_url=self.profile_api_base)

    def upsert_profile(
        self,
        table_id: int | str,
        customer_id: str,
        data: Mapping[str, Any],
        service_id: int | str | None = None,
    ) -> dict[str, Any]:
        """Write some attributes of one profile (hot path: plain dicts in and out)."""
        path = self._profile_path(table_id, customer_id, service_id)
        response = self.client.request(
            "POST", path, json={"data": data}, base_url=self.profile_api_base, expected=(200, 201)
        )
        return response.json() if response.content else {}

    def get_consolidated_view(
        self, optimizely_user_id: str, service_id: int | str | None = None
    ) -> list[CustomerProfile]:
        user = self.segment(optimizely_user_id, "optimizely user id")
        path = f"consolidatedCustomerView/{self._svc(service_id)}/{user}"
        answer = self.client.get_json(path, base_url=self.profile_api_base) or []
        return [CustomerProfile.model_validate(item) for item in answer]

    def get_alias(
        self,
        optimizely_datasource_id: int | str,
        optimizely_user_id: str,
        service_id: int | str | None = None,
    ) -> Alias | None:
        path = self._alias_path(optimizely_datasource_id, optimizely_user_id, service_id)
        return self._get(Alias, path, base_url=self.profile_api_base)

    def create_alias(
        self,
        optimizely_datasource_id: int | str,
        optimizely_user_id: str,
        customer_ids: Mapping[str | int, str],
        service_id: int | str | None = None,
    ) -> Alias:
        """Link an Optimizely user id to customer ids: ``{table_id: customer_id}``."""
        path = self._alias_path(optimizely_datasource_id, optimizely_user_id, service_id)
        body = {"data": {str(table): str(customer) for table, customer in customer_ids.items()}}
        return self._model(
            Alias, "POST", path, json=body, base_url=self.profile_api_base, expected=(200, 201)
        )

    # -- bulk upload ------------------------------------------------------------------------------------

    def list_upload_history(self, table_id: int | str) -> Iterator[UploadHistoryEntry]:
        """Newest first. The path is the extra ``upload_history_path`` (``{table_id}`` filled in) if set."""
        template = str(self.extras.get("upload_history_path") or DEFAULT_UPLOAD_HISTORY_PATH)
        for item in self.client.paginate(template.format(table_id=self._table(table_id))):
            yield UploadHistoryEntry.model_validate(item)

    def s3_credentials(self, table: DcpTable | int | str) -> DcpS3Credentials:
        """The bucket, key prefix and the table's own keys for a bulk upload (the secret key is masked)."""
        if not isinstance(table, DcpTable):
            found = self.get_table(table)
            if found is None:
                raise NotFoundError(
                    404,
                    "table not found",
                    method="GET",
                    path=f"dcp_datasources/{self._table(table)}",
                    api=self.api_name,
                    conn_id=self.conn_id,
                )
            table = found
        if not (table.s3_path and table.aws_access_key and table.aws_secret_key):
            raise OptimizelyConfigError(
                f"connection {self.conn_id!r}: DCP table {table.id} came without its s3_path or S3 keys"
            )
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

    def probe(self, client: RestClient) -> str:
        services = client.get_json("dcp_services", params={"per_page": 1})
        scheme = self.auth_scheme(self.connection)
        return f"DCP accepted the {scheme} credentials ({len(services or [])} service(s) on the first page)"

    # -- helpers ----------------------------------------------------------------------------------------

    def _model(self, model: Any, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        return model.model_validate(response.json())

    def _attribute_path(self, attribute_id: int | str) -> str:
        return f"dcp_datasource_attributes/{self.segment(attribute_id, 'attribute id')}"

    def _profile_path(self, table_id: int | str, customer_id: str, service_id: int | str | None) -> str:
        customer = self.segment(customer_id, "customer id")
        return f"customer_profile/{self._svc(service_id)}/{self._table(table_id)}/{customer}"

    def _alias_path(
        self, optimizely_datasource_id: int | str, optimizely_user_id: str, service_id: int | str | None
    ) -> str:
        datasource = self.segment(optimizely_datasource_id, "optimizely datasource id")
        user = self.segment(optimizely_user_id, "optimizely user id")
        return f"alias/{self._svc(service_id)}/{datasource}/{user}"

    def _get(self, model: Any, path: str, **kwargs: Any) -> Any:
        try:
            answer = self.client.get_json(path, **kwargs)
        except NotFoundError:
            return None
        return model.model_validate(answer)
