"""OptimizelyUpsertProfilesOperator: stream rows into customer profiles, on whichever API the connection is.

| connection type | writes | checked before sending | per request |
| --- | --- | --- | --- |
| ``optimizely`` (DCP) | ``customer_profile/{svc}/{table}/{id}`` | the table's attributes | 1 profile |
| ``optimizely_odp`` | ``POST /profiles`` | the ``customers`` fields | up to 500 |
| ``optimizely_profile_store`` | ``PUT api/v1.0/profiles/{id}`` | properties, 256 KB | 1 profile |
| ``optimove`` | ``upload_data``, whole records, one ``batch_uuid`` a run | the primary key | up to 5000 |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_optimizely.core.sync import SyncConfigError, Writer
from airflow_provider_optimizely.core.writers.dcp import DcpProfileWriter
from airflow_provider_optimizely.core.writers.odp import OdpProfileWriter
from airflow_provider_optimizely.core.writers.optimove import OptimoveWriter
from airflow_provider_optimizely.core.writers.profile_store import ProfileStorePutWriter
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.hooks.profile_store import OptimizelyProfileStoreHook
from airflow_provider_optimizely.operators._data import SOURCE_TEMPLATE_FIELDS, DataOperator
from airflow_provider_optimizely.operators._dispatch import UPSERT_PROFILES

if TYPE_CHECKING:
    from airflow_provider_optimizely.hooks.base import OptimizelyBaseHook


class OptimizelyUpsertProfilesOperator(DataOperator):
    """Create or update one profile per source row and return a run report (the XCom).

    :param conn_id: the Optimizely/Optimove connection; its type picks the API.
    :param identifier_column: the source column holding each profile's key (DCP customer id, ODP identifier,
        Profile Store profile id, Optimove primary key).
    :param identifier_name: the API's name for that key where it has one: the ODP identifier field
        (``email``, ``customer_id``...) or the Optimove primary-key field. Defaults to the column's name.
    :param table: the DCP table (datasource) id, or the Optimove data connection uuid.
    :param column_mapping: ``{source column: attribute}`` (or a list of columns). Without it, every column
        but the identifier is written under its own name.
    :param scope: Profile Store scope (default: the connection's ``default_scope``, else ``default``).
    :param allow_partial_records: Optimove only. Optimove replaces records whole; a mapping that leaves
        source columns out removes those fields from the stored records, so it must be asked for.
    :param ttl_seconds: Optimove only: the records' time to live (None: never expire).
    :param batch_size: items per request, at most the API's limit (ODP 500, Optimove 5000).
    :param sql: a query (or a ``.sql`` file) run on ``sql_conn_id``; ``parameters`` bind into it.
    :param path: a CSV/TSV/JSON Lines file, local or on object storage (``path_conn_id``); ``file_format``
        when the name does not tell.
    :param rows: a list of mappings.
    :param max_rejected: rejected rows that still let the task succeed: a count, or a fraction in [0, 1)
        of the rows read. Default 0: any reject fails the task, after every good row was written.
    :param max_concurrency: requests in flight at once (all within the connection's rate budget).
    """

    capability = UPSERT_PROFILES
    template_fields: Sequence[str] = (
        "conn_id",
        *SOURCE_TEMPLATE_FIELDS,
        "identifier_column",
        "identifier_name",
        "table",
        "column_mapping",
        "scope",
        "max_rejected",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "sql": "sql",
        "parameters": "json",
        "column_mapping": "json",
    }
    ui_color = "#d6e9ff"

    def __init__(
        self,
        *,
        identifier_column: str,
        conn_id: str = "optimizely_default",
        identifier_name: str | None = None,
        table: str | int | None = None,
        column_mapping: Mapping[str, str] | Sequence[str] | None = None,
        scope: str | None = None,
        allow_partial_records: bool = False,
        ttl_seconds: int | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=conn_id, **kwargs)
        self.identifier_column = identifier_column
        self.identifier_name = identifier_name
        self.table = table
        self.column_mapping = column_mapping
        self.scope = scope
        self.allow_partial_records = allow_partial_records
        self.ttl_seconds = ttl_seconds
        self.batch_size = batch_size

    def build_writer(self, hook: OptimizelyBaseHook) -> Writer:
        if isinstance(hook, OptimizelyDcpHook):
            return DcpProfileWriter(
                hook,
                table_id=int(self._required_table("the DCP table id")),
                identifier_column=self.identifier_column,
                columns=self.column_mapping,
            )
        if isinstance(hook, OptimizelyOdpHook):
            return OdpProfileWriter(
                hook,
                identifier_column=self.identifier_column,
                identifier_name=self.identifier_name,
                columns=self.column_mapping,
                batch_size=self.batch_size,
            )
        if isinstance(hook, OptimizelyProfileStoreHook):
            return ProfileStorePutWriter(
                hook,
                identifier_column=self.identifier_column,
                columns=self.column_mapping,
                scope=self.scope or hook.extras.get("default_scope") or None,
            )
        if not isinstance(hook, OptimoveHook):
            raise SyncConfigError(f"connection {self.conn_id!r}: no profile writer for {type(hook).__name__}")
        return OptimoveWriter(
            hook,
            connection_uuid=str(self._required_table("the Optimove data connection uuid")),
            identifier_column=self.identifier_column,
            primary_key=self.identifier_name,
            columns=self.column_mapping,
            allow_partial_records=self.allow_partial_records,
            ttl_seconds=self.ttl_seconds,
            batch_size=self.batch_size,
            logger=self.log,
        )

    def _required_table(self, what: str) -> str | int:
        if self.table is None or self.table == "":
            raise SyncConfigError(f"set table to {what} (connection {self.conn_id!r})")
        return self.table
